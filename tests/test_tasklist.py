"""tasklist parser: default table, /v, /svc, /fo csv (with /v, /nh), en and zh-CN, encodings.

Fixtures are written by hand in the layouts of formats.md section 2: the `=` ruler gives the
column widths (25 8 16 11 12, /v adds 15 50 12 72, /svc 44), zh headers are shorter than
the ruler, and Chinese values take two console cells each.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import assert_same_in_every_encoding, encodings
from wormhunt.sources import tasklist
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_head
from wormhunt.sources.text import decode

EN_TABLE = """C:\\Users\\analyst>tasklist

Image Name                     PID Session Name        Session#    Mem Usage
========================= ======== ================ =========== ============
System Idle Process              0 Services                   0          8 K
System                           4 Services                   0      3,568 K
svchost.exe                   1172 Services                   0     25,200 K
ollama app.exe               39268 Console                    1     18,204 K
WindowsInternal.Composabl     5184 Console                    1     12,000 K
ollama_llama_server.exe      43844 Console                    1  5,201,756 K
"""

ZH_TABLE = """PS C:\\Users\\li> tasklist

映像名称                       PID 会话名              会话#       内存使用
========================= ======== ================ =========== ============
System Idle Process              0 Services                   0          8 K
System                           4 Services                   0      3,568 K
svchost.exe                   1172 Services                   0     25,200 K
ollama app.exe               39268 Console                    1     18,204 K
WindowsInternal.Composabl     5184 Console                    1     12,000 K
ollama_llama_server.exe      43844 Console                    1  5,201,756 K
微信.exe                      6612 Console                    1     88,100 K
"""

TABLE_ROWS = [
    ("System Idle Process", 0, "Services", 0, 8),
    ("System", 4, "Services", 0, 3568),
    ("svchost.exe", 1172, "Services", 0, 25200),
    ("ollama app.exe", 39268, "Console", 1, 18204),
    ("WindowsInternal.Composabl", 5184, "Console", 1, 12000),
    ("ollama_llama_server.exe", 43844, "Console", 1, 5201756),
]

EN_V = """
Image Name                     PID Session Name        Session#    Mem Usage Status          User Name                                          CPU Time Window Title
========================= ======== ================ =========== ============ =============== ================================================== ============ ========================================================================
System Idle Process              0 Services                   0          8 K Unknown         NT AUTHORITY\\SYSTEM                                  2918:04:51 N/A
svchost.exe                   1304 Services                   0     21,736 K Unknown         NT AUTHORITY\\NETWORK SERVICE                            0:01:07 N/A
explorer.exe                  5932 Console                    1     96,120 K Running         WKS-017\\Wang Fang                                       0:02:44 Program Manager
powershell.exe                8816 Console                    1  5,201,756 K Not Responding  CORP\\Li Wei                                            12:09:37 Administrator: Windows PowerShell
sqlservr.exe                  3388 Services                   0    412,904 K Unknown         CORP-SQL-CLUSTER-01\\svc_sql_engine_prod_cluster_account    124:51:02 N/A
"""  # noqa: E501 - console width

# The narrower `/v` layout of formats.md 2.2: the CPU time runs past its column into the
# window title's, so the last columns cannot be sliced by the ruler.
EN_V_NARROW = """
Image Name                     PID Session Name        Session#    Mem Usage Status          User Name                      CPU Time Window Title
========================= ======== ================ =========== ============ =============== ========================   ===============================
System Idle Process              0 Services                   0          8 K Unknown         NT AUTHORITY\\SYSTEM              1987:03:11 N/A
svchost.exe                   1304 Services                   0     21,736 K Unknown         NT AUTHORITY\\NETWORK SERVICE     0:01:07 N/A
explorer.exe                  5932 Console                    1     96,120 K Running         WKS-017\\Wang Fang                0:02:44 Program Manager
"""  # noqa: E501 - console width

ZH_V = """
映像名称                       PID 会话名              会话#       内存使用  状态            用户名                                                 CPU 时间 窗口标题
========================= ======== ================ =========== ============ =============== ================================================== ============ ========================================================================
System                           4 Services                   0        924 K Unknown         暂缺                                                    0:24:14 暂缺
svchost.exe                   1304 Services                   0     21,736 K Unknown         NT AUTHORITY\\NETWORK SERVICE                            0:01:07 暂缺
微信.exe                      6612 Console                    1     88,100 K Running         CORP\\李伟                                               0:00:41 微信
notepad.exe                   7040 Console                    1     14,880 K Running         CORP\\李伟                                               0:00:01 无标题 - 记事本
"""  # noqa: E501 - console width

EN_SVC = """C:\\Users\\student> tasklist /svc

Image Name                     PID Services
========================= ======== ============================================
System Idle Process              0 N/A
lsass.exe                      788 EFS, KeyIso, SamSs, VaultSvc
svchost.exe                   1172 BrokerInfrastructure, DcomLaunch, PlugPlay,
                                   Power, SystemEventsBroker
svchost.exe                   2648 Appinfo, BITS, Browser, CertPropSvc,
                                   DsmSvc, gpsvc, iphlpsvc, LanmanServer,
                                   ProfSvc, Schedule, SENS, ShellHWDetection
pg_ctl.exe                    2852 Acunetix Database
WindowsInternal.Composabl     5184 N/A
"""

ZH_SVC = """PS C:\\Users\\Administrator> tasklist /svc

映像名称                       PID 服务
========================= ======== ============================================
System Idle Process              0 暂缺
lsass.exe                      788 EFS, KeyIso, SamSs, VaultSvc
svchost.exe                   1172 BrokerInfrastructure, DcomLaunch, PlugPlay,
                                   Power, SystemEventsBroker
svchost.exe                   2648 Appinfo, BITS, Browser, CertPropSvc,
                                   DsmSvc, gpsvc, iphlpsvc, LanmanServer,
                                   ProfSvc, Schedule, SENS, ShellHWDetection
pg_ctl.exe                    2852 Acunetix Database
WindowsInternal.Composabl     5184 暂缺
"""

SVC_ROWS = [
    ("System Idle Process", 0, None),
    ("lsass.exe", 788, ["EFS", "KeyIso", "SamSs", "VaultSvc"]),
    ("svchost.exe", 1172, ["BrokerInfrastructure", "DcomLaunch", "PlugPlay", "Power", "SystemEventsBroker"]),
    (
        "svchost.exe",
        2648,
        [
            "Appinfo",
            "BITS",
            "Browser",
            "CertPropSvc",
            "DsmSvc",
            "gpsvc",
            "iphlpsvc",
            "LanmanServer",
            "ProfSvc",
            "Schedule",
            "SENS",
            "ShellHWDetection",
        ],
    ),
    ("pg_ctl.exe", 2852, ["Acunetix Database"]),
    ("WindowsInternal.Composabl", 5184, None),
]

EN_CSV = """"Image Name","PID","Session Name","Session#","Mem Usage"
"System Idle Process","0","Services","0","8 K"
"Secure System","72","Services","0","22,332 K"
"ollama app.exe","39268","Console","1","18,204 K"
"ollama_llama_server.exe","43844","Console","1","5,201,756 K"
"""

ZH_CSV = """"映像名称","PID","会话名","会话#","内存使用"
"System Idle Process","0","Services","0","8 K"
"Secure System","72","Services","0","22,332 K"
"ollama app.exe","39268","Console","1","18,204 K"
"ollama_llama_server.exe","43844","Console","1","5,201,756 K"
"""

CSV_ROWS = [
    ("System Idle Process", 0, "Services", 0, 8),
    ("Secure System", 72, "Services", 0, 22332),
    ("ollama app.exe", 39268, "Console", 1, 18204),
    ("ollama_llama_server.exe", 43844, "Console", 1, 5201756),
]

EN_V_CSV = """\
"Image Name","PID","Session Name","Session#","Mem Usage","Status","User Name","CPU Time","Window Title"
"csrss.exe","380","Console","1","7,016 K","Running","NT AUTHORITY\\SYSTEM","0:00:18","N/A"
"svchost.exe","1304","Services","0","21,736 K","Unknown","NT AUTHORITY\\NETWORK SERVICE","0:01:07","N/A"
"notepad.exe","7040","Console","1","14,880 K","Running","CORP\\Li Wei","0:00:01","a, ""quoted"" title"
"""

ZH_V_CSV = """"映像名称","PID","会话名","会话#","内存使用","状态","用户名","CPU 时间","窗口标题"
"csrss.exe","380","Console","1","7,016 K","Running","NT AUTHORITY\\SYSTEM","0:00:18","暂缺"
"svchost.exe","1304","Services","0","21,736 K","Unknown","暂缺","0:01:07","暂缺"
"notepad.exe","7040","Console","1","14,880 K","Running","CORP\\李伟","0:00:01","无标题 - 记事本"
"""

# `/fo csv /nh`: no header line at all.
NH_CSV = """
"System Idle Process","0","Services","0","8 K"
"System","4","Services","0","3,568 K"
"svchost.exe","1172","Services","0","25,200 K"
"ollama app.exe","39268","Console","1","18,204 K"
"""

NH_V_CSV = """"csrss.exe","380","Console","1","7,016 K","Running","NT AUTHORITY\\SYSTEM","0:00:18","N/A"
"svchost.exe","1304","Services","0","21,736 K","Unknown","NT AUTHORITY\\NETWORK SERVICE","0:01:07","N/A"
"notepad.exe","7040","Console","1","14,880 K","Running","CORP\\Li Wei","0:00:01","notes.txt - Notepad"
"""

EN_EMPTY = """C:\\Users\\analyst>tasklist /fi "imagename eq wmiprvse.exe"
INFO: No tasks are running which match the specified criteria.
"""

ZH_EMPTY = """PS C:\\Users\\li> tasklist /fi "imagename eq wmiprvse.exe"
信息: 没有运行的任务匹配指定标准。
"""


def parse(text: str) -> MemorySink:
    sink = MemorySink()
    tasklist.parse(text, sink)
    return sink


def table(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["name"], r["pid"], r["session_name"], r["session"], r["mem_kb"]) for r in rows]


def test_default_table_english() -> None:
    sink = parse(EN_TABLE)
    assert sink.skipped == 0
    rows = sink.of("processes")
    assert table(rows) == TABLE_ROWS
    assert [r["line"] for r in rows] == [5, 6, 7, 8, 9, 10]
    assert {r["source"] for r in rows} == {"tasklist"}
    first = rows[0]
    assert first["status"] is None and first["user"] is None and first["services"] is None
    assert first["ppid"] is None and first["command_line"] is None and first["created"] is None


def test_default_table_chinese_headers_and_chinese_image_name() -> None:
    sink = parse(ZH_TABLE)
    assert sink.skipped == 0
    rows = sink.of("processes")
    # The two-cell characters of 微信 do not shift the PID/session/memory slices.
    assert table(rows) == [*TABLE_ROWS, ("微信.exe", 6612, "Console", 1, 88100)]
    assert [r["line"] for r in rows] == [5, 6, 7, 8, 9, 10, 11]


def test_image_names_truncated_and_with_spaces() -> None:
    names = [r["name"] for r in parse(EN_TABLE).of("processes")]
    assert "WindowsInternal.Composabl" in names and len("WindowsInternal.Composabl") == 25
    assert "System Idle Process" in names and "ollama app.exe" in names


def test_memory_with_thousands_separators() -> None:
    mem = {r["name"]: r["mem_kb"] for r in parse(EN_TABLE).of("processes")}
    assert mem["ollama_llama_server.exe"] == 5_201_756
    assert mem["System"] == 3_568 and mem["System Idle Process"] == 8


def test_verbose_english_users_with_spaces_and_overflowing_cpu_time() -> None:
    sink = parse(EN_V)
    assert sink.skipped == 0
    rows = sink.of("processes")
    got = [(r["name"], r["pid"], r["mem_kb"], r["status"], r["user"], r["cpu_time"], r["window_title"]) for r in rows]
    assert got == [
        ("System Idle Process", 0, 8, "Unknown", "NT AUTHORITY\\SYSTEM", "2918:04:51", None),
        ("svchost.exe", 1304, 21736, "Unknown", "NT AUTHORITY\\NETWORK SERVICE", "0:01:07", None),
        ("explorer.exe", 5932, 96120, "Running", "WKS-017\\Wang Fang", "0:02:44", "Program Manager"),
        (
            "powershell.exe",
            8816,
            5201756,
            "Not Responding",
            "CORP\\Li Wei",
            "12:09:37",
            "Administrator: Windows PowerShell",
        ),
        # A user name longer than its 50-cell column pushes CPU time and title right.
        (
            "sqlservr.exe",
            3388,
            412904,
            "Unknown",
            "CORP-SQL-CLUSTER-01\\svc_sql_engine_prod_cluster_account",
            "124:51:02",
            None,
        ),
    ]
    assert {r["source"] for r in rows} == {"tasklist-v"}
    assert [r["session_name"] for r in rows] == ["Services", "Services", "Console", "Console", "Services"]


def test_verbose_narrow_layout_cpu_time_past_its_column() -> None:
    sink = parse(EN_V_NARROW)
    assert sink.skipped == 0
    got = [(r["pid"], r["user"], r["cpu_time"], r["window_title"]) for r in sink.of("processes")]
    assert got == [
        (0, "NT AUTHORITY\\SYSTEM", "1987:03:11", None),
        (1304, "NT AUTHORITY\\NETWORK SERVICE", "0:01:07", None),
        (5932, "WKS-017\\Wang Fang", "0:02:44", "Program Manager"),
    ]


def test_verbose_chinese_na_and_chinese_values() -> None:
    sink = parse(ZH_V)
    assert sink.skipped == 0
    got = [
        (r["name"], r["pid"], r["mem_kb"], r["status"], r["user"], r["cpu_time"], r["window_title"])
        for r in sink.of("processes")
    ]
    assert got == [
        ("System", 4, 924, "Unknown", None, "0:24:14", None),  # 暂缺 = N/A
        ("svchost.exe", 1304, 21736, "Unknown", "NT AUTHORITY\\NETWORK SERVICE", "0:01:07", None),
        ("微信.exe", 6612, 88100, "Running", "CORP\\李伟", "0:00:41", "微信"),
        ("notepad.exe", 7040, 14880, "Running", "CORP\\李伟", "0:00:01", "无标题 - 记事本"),
    ]


@pytest.mark.parametrize("text", [EN_SVC, ZH_SVC], ids=["en", "zh"])
def test_svc_with_wrapped_continuation_lines(text: str) -> None:
    sink = parse(text)
    assert sink.skipped == 0
    rows = sink.of("processes")
    assert [(r["name"], r["pid"], r["services"]) for r in rows] == SVC_ROWS
    assert [r["line"] for r in rows] == [5, 6, 7, 9, 12, 13]
    assert {r["source"] for r in rows} == {"tasklist-svc"}


@pytest.mark.parametrize(("text", "ids"), [(EN_CSV, "en"), (ZH_CSV, "zh")])
def test_csv(text: str, ids: str) -> None:
    sink = parse(text)
    assert sink.skipped == 0, ids
    rows = sink.of("processes")
    assert table(rows) == CSV_ROWS
    assert [r["line"] for r in rows] == [2, 3, 4, 5]
    assert {r["source"] for r in rows} == {"tasklist-csv"}


def test_verbose_csv_english_keeps_quoted_commas() -> None:
    sink = parse(EN_V_CSV)
    assert sink.skipped == 0
    got = [
        (r["name"], r["pid"], r["mem_kb"], r["status"], r["user"], r["cpu_time"], r["window_title"])
        for r in sink.of("processes")
    ]
    assert got == [
        ("csrss.exe", 380, 7016, "Running", "NT AUTHORITY\\SYSTEM", "0:00:18", None),
        ("svchost.exe", 1304, 21736, "Unknown", "NT AUTHORITY\\NETWORK SERVICE", "0:01:07", None),
        ("notepad.exe", 7040, 14880, "Running", "CORP\\Li Wei", "0:00:01", 'a, "quoted" title'),
    ]
    assert {r["source"] for r in sink.of("processes")} == {"tasklist-v-csv"}


def test_verbose_csv_chinese() -> None:
    sink = parse(ZH_V_CSV)
    assert sink.skipped == 0
    got = [
        (r["name"], r["session_name"], r["session"], r["status"], r["user"], r["cpu_time"], r["window_title"])
        for r in sink.of("processes")
    ]
    assert got == [
        ("csrss.exe", "Console", 1, "Running", "NT AUTHORITY\\SYSTEM", "0:00:18", None),
        ("svchost.exe", "Services", 0, "Unknown", None, "0:01:07", None),
        ("notepad.exe", "Console", 1, "Running", "CORP\\李伟", "0:00:01", "无标题 - 记事本"),
    ]


def test_csv_without_header_nh() -> None:
    sink = parse(NH_CSV)
    assert sink.skipped == 0
    rows = sink.of("processes")
    assert table(rows) == [
        ("System Idle Process", 0, "Services", 0, 8),
        ("System", 4, "Services", 0, 3568),
        ("svchost.exe", 1172, "Services", 0, 25200),
        ("ollama app.exe", 39268, "Console", 1, 18204),
    ]
    assert [r["line"] for r in rows] == [2, 3, 4, 5]


def test_verbose_csv_without_header_nh() -> None:
    sink = parse(NH_V_CSV)
    assert sink.skipped == 0
    got = [
        (r["pid"], r["status"], r["user"], r["cpu_time"], r["window_title"], r["source"]) for r in sink.of("processes")
    ]
    assert got == [
        (380, "Running", "NT AUTHORITY\\SYSTEM", "0:00:18", None, "tasklist-v-csv"),
        (1304, "Unknown", "NT AUTHORITY\\NETWORK SERVICE", "0:01:07", None, "tasklist-v-csv"),
        (7040, "Running", "CORP\\Li Wei", "0:00:01", "notes.txt - Notepad", "tasklist-v-csv"),
    ]


@pytest.mark.parametrize("text", [EN_EMPTY, ZH_EMPTY], ids=["en", "zh"])
def test_no_tasks_message_gives_no_rows_and_no_skips(text: str) -> None:
    for enc, data in encodings(text).items():
        sink = parse(decode(data).text)
        assert sink.of("processes") == [], enc
        assert sink.skipped == 0 and sink.skips == [], enc


def test_no_tasks_message_is_detected_as_tasklist() -> None:
    for text in (EN_EMPTY, ZH_EMPTY):
        found = detect_head(encodings(text)["utf-16le-bom"], complete=True)
        assert found.format is not None and found.format.name == "tasklist"


def test_csv_bad_rows_are_counted() -> None:
    text = EN_CSV + '"evil.exe","12x4","Console","1","1,000 K"\n"short.exe","99"\n"cut.exe","4242","Cons'
    sink = parse(text)
    assert table(sink.of("processes")) == CSV_ROWS
    assert sink.skip_counts == {"bad PID": 1, "wrong number of CSV fields": 2}
    assert [(s.line, s.reason) for s in sink.skips] == [
        (6, "bad PID"),
        (7, "wrong number of CSV fields"),
        (8, "wrong number of CSV fields"),
    ]


@pytest.mark.parametrize("name", ["EN_SVC", "ZH_SVC", "ZH_V", "ZH_TABLE"])
def test_right_padded_and_doubled_lines_parse_the_same(name: str) -> None:
    text = globals()[name]
    expected = [{k: v for k, v in r.items() if k != "line"} for r in parse(text).of("processes")]
    padded = "\n".join(line + " " * 40 for line in text.split("\n"))
    doubled = text.replace("\n", "\n\n")
    for variant in (padded, doubled):
        sink = parse(variant)
        assert sink.skipped == 0
        assert [{k: v for k, v in r.items() if k != "line"} for r in sink.of("processes")] == expected


def test_table_junk_line_is_counted() -> None:
    sink = parse(EN_TABLE + "The system cannot find the file specified.\n")
    assert table(sink.of("processes")) == TABLE_ROWS
    assert sink.skip_counts == {"not a tasklist row": 1} and sink.skips[0].line == 11


@pytest.mark.parametrize(
    "cut",
    [
        "svchost.exe                   11",  # cut inside the PID column
        "svchost.exe                   1172 Servi",  # cut inside the session name
        "svchost.exe                   1172 Services                   0",  # memory missing
    ],
)
def test_table_truncated_last_line_is_skipped(cut: str) -> None:
    sink = parse(EN_TABLE + cut)
    assert table(sink.of("processes")) == TABLE_ROWS
    assert sink.skip_counts == {"truncated row": 1}
    assert sink.skips[0].line == 11 and sink.skips[0].text == cut


def test_verbose_truncated_last_line_is_skipped() -> None:
    cut = "explorer.exe                  5932 Console                    1     96,120 K Running         WKS-0"
    sink = parse(EN_V + cut)
    assert len(sink.of("processes")) == 5
    assert sink.skip_counts == {"truncated row": 1}


def test_two_listings_in_one_file() -> None:
    sink = parse(EN_TABLE + "\n" + EN_SVC)
    assert sink.skipped == 0
    rows = sink.of("processes")
    assert table([r for r in rows if r["source"] == "tasklist"]) == TABLE_ROWS
    svc = [(r["name"], r["pid"], r["services"]) for r in rows if r["source"] == "tasklist-svc"]
    assert svc == SVC_ROWS


ALL_FIXTURES = {
    "en-table": EN_TABLE,
    "zh-table": ZH_TABLE,
    "en-v": EN_V,
    "en-v-narrow": EN_V_NARROW,
    "zh-v": ZH_V,
    "en-svc": EN_SVC,
    "zh-svc": ZH_SVC,
    "en-csv": EN_CSV,
    "zh-csv": ZH_CSV,
    "en-v-csv": EN_V_CSV,
    "zh-v-csv": ZH_V_CSV,
    "nh-csv": NH_CSV,
    "nh-v-csv": NH_V_CSV,
}


@pytest.mark.parametrize("name", sorted(ALL_FIXTURES))
def test_every_encoding_is_detected_and_gives_the_same_rows(name: str) -> None:
    assert_same_in_every_encoding(tasklist.parse, ALL_FIXTURES[name], "processes", "tasklist")


def test_gbk_bytes_of_a_chinese_table() -> None:
    data = encodings(ZH_V)["gbk"]
    decoded = decode(data)
    assert decoded.encoding.name == "gb18030"
    rows = parse(decoded.text).of("processes")
    assert rows[2]["name"] == "微信.exe" and rows[2]["user"] == "CORP\\李伟" and rows[2]["pid"] == 6612


def test_sniff_scores() -> None:
    assert tasklist.sniff(EN_TABLE) == pytest.approx(0.95)
    assert tasklist.sniff(ZH_SVC) == pytest.approx(0.95)
    assert tasklist.sniff(ZH_CSV) == pytest.approx(0.95)
    assert tasklist.sniff(NH_CSV) == pytest.approx(0.6)
    assert tasklist.sniff(EN_EMPTY) == pytest.approx(0.6)
    netstat_header = "  Proto  Local Address          Foreign Address        State           PID\n"
    assert tasklist.sniff(netstat_header) == 0.0
