"""schtasks parser: `/fo csv /v` (en-US, en-GB, zh-CN), `/fo list /v` and the default table.

Fixtures follow formats.md section 5: 28 columns, quotes inside fields not escaped, the
header repeated per folder, one row per trigger, dates in the user's short date format,
zh-CN values localized (`就绪`, `已启用`, `已禁用`). Real samples are parsed when present.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, assert_same_in_every_encoding, encodings
from wormhunt.sources import schtasks
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_head
from wormhunt.sources.text import decode

SAMPLES = ROOT.parent / "shared" / "reference" / "format-samples" / "schtasks"

EN_COLS = [
    "HostName", "TaskName", "Next Run Time", "Status", "Logon Mode", "Last Run Time", "Last Result", "Author",
    "Task To Run", "Start In", "Comment", "Scheduled Task State", "Idle Time", "Power Management", "Run As User",
    "Delete Task If Not Rescheduled", "Stop Task If Runs X Hours and X Mins", "Schedule", "Schedule Type",
    "Start Time", "Start Date", "End Date", "Days", "Months", "Repeat: Every", "Repeat: Until: Time",
    "Repeat: Until: Duration", "Repeat: Stop If Still Running",
]  # fmt: skip
ZH_COLS = [
    "主机名", "任务名", "下次运行时间", "模式", "登录状态", "上次运行时间", "上次结果", "创建者", "要运行的任务",
    "起始于", "注释", "计划任务状态", "空闲时间", "电源管理", "作为用户运行", "删除没有计划的任务",
    "如果运行了 X 小时 X 分钟，停止任务", "计划", "计划类型", "开始时间", "开始日期", "结束日期", "天", "月",
    "重复: 每", "重复: 截止: 时间", "重复: 截止: 持续时间", "重复: 如果还在运行，停止",
]  # fmt: skip
NO_SCHED_EN = "Scheduling data is not available in this format."
NO_SCHED_ZH = "计划数据在此格式中不可用。"
APPDIAG = "C:\\Windows\\AppDiagnostics\\spoolsv.exe"


def line(values: list[str]) -> str:
    """One schtasks CSV line: every field quoted, nothing escaped (as schtasks writes it)."""
    return ",".join(f'"{v}"' for v in values)


def zh_row(
    name: str,
    run: str,
    state: str,
    *,
    next_run: str = "N/A",
    last: str = "N/A",
    stype: str = "每日",
    start: str = "9:00:00",
    date: str = "2024/1/6",
    days: str = "每 1 天",
    status: str = "就绪",
) -> str:
    return line([
        "WKS-017", name, next_run, status, "交互方式/后台方式", last, "0", "WKS-017\\Administrator", run, "N/A",
        "N/A", state, "已禁用", "在电池模式停止", "SYSTEM", "已禁用", "72:00:00", NO_SCHED_ZH, stype, start, date,
        "N/A", days, "N/A", "已禁用", "已禁用", "已禁用", "已禁用",
    ])  # fmt: skip


ZH_HEADER = line(ZH_COLS)
# Two folders (header repeated), the WannaMine task with two triggers, a disabled task, a COM handler.
ZH_CSV = "\n".join([
    "",
    "C:\\Windows\\system32>schtasks /query /fo csv /v",
    ZH_HEADER,
    zh_row("\\UPnPHostServices", APPDIAG, "已启用", next_run="2024/1/7 9:00:00", last="2024/1/6 9:00:00"),
    zh_row("\\UPnPHostServices", APPDIAG, "已启用", next_run="2024/1/7 9:00:00", last="2024/1/6 9:00:00",
           stype="登陆时", start="N/A", date="N/A", days="N/A"),
    zh_row("\\Backup", 'cmd /c "D:\\bak\\run.bat" "a b"', "已禁用", status="已禁用", last="1999/11/30 0:00:00"),
    ZH_HEADER,
    zh_row("\\Microsoft\\Windows\\Wininet\\CacheTask", "COM 处理程序", "已启用", stype="登陆时", start="N/A",
           date="N/A", days="N/A", status="正在运行"),
    "",
])  # fmt: skip

EN_US_CSV = "\n".join([
    line(EN_COLS),
    line([
        "WINDESK.local", "\\fzuZbSwfXc", "N/A", "Ready", "Interactive/Background", "11/30/1999 12:00:00 AM",
        "267011", "WINDEST\\Administrator",
        'reg query "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Schedule\\TaskCache\\Tree\\DGv" /v "SD"',
        "N/A", "N/A", "Enabled", "Disabled", "Stop On Battery Mode, No Start On Batteries", "SYSTEM", "Disabled",
        "72:00:00", NO_SCHED_EN, "One Time Only", "12:00:00 AM", "5/10/2020", "N/A", "N/A", "N/A", "Disabled",
        "Disabled", "Disabled", "Disabled",
    ]),
    line([
        "WINDESK.local", "\\Updater", "5/11/2020 1:30:00 PM", "Ready", "Interactive only", "5/10/2020 1:30:00 PM",
        "0", "WINDESK\\bob", '"C:\\Program Files\\Upd\\upd.exe" -silent', "N/A", "Keeps things, updated", "Disabled",
        "Disabled", "", "bob", "Disabled", "72:00:00", NO_SCHED_EN, "Daily", "1:30:00 PM", "5/10/2020", "N/A",
        "Every 1 day(s)", "N/A", "Disabled", "Disabled", "Disabled", "Disabled",
    ]),
    "",
])  # fmt: skip

# en-GB: the day/month order is learned from 13/02, so 05/02 is the 5th of February.
EN_GB_CSV = "\n".join([
    line(EN_COLS),
    line([
        "WIN-7060", "\\nightly", "05/02/2025 17:30:00", "Ready", "Interactive only", "13/02/2025 17:15:00",
        "-2147024894", "user", "C:\\tools\\nightly.cmd --all", "N/A", "N/A", "Enabled", "Disabled", "", "user",
        "Disabled", "72:00:00", NO_SCHED_EN, "Weekly", "17:15:00", "13/02/2025", "N/A", "MON", "Every 1 week(s)",
        "Disabled", "Disabled", "Disabled", "Disabled",
    ]),
    "",
])  # fmt: skip

ZH_LIST = """
文件夹: \\
主机名:                             WKS-017
任务名:                             \\UPnPHostServices
下次运行时间:                       N/A
模式:                               就绪
登录状态:                           交互方式/后台方式
上次运行时间:                       2024/1/6 9:00:00
上次结果:                           0
创建者:                             N/A
要运行的任务:                       C:\\Windows\\AppDiagnostics\\spoolsv.exe -c C:\\Windows\\AppDiagnostics\\
                                    conf.xml
起始于:                             N/A
注释:                               N/A
计划任务状态:                       已启用
空闲时间:                           已禁用
电源管理:
作为用户运行:                       SYSTEM
删除没有计划的任务:                 已禁用
如果运行了 X 小时 X 分钟，停止任务: 72:00:00
计划:                               计划数据在此格式中不可用。
计划类型:                           登陆时
开始时间:                           N/A
开始日期:                           N/A
结束日期:                           N/A
天:                                 N/A
月:                                 N/A
重复: 每:                           N/A
重复: 截止: 时间:                   N/A
重复: 截止: 持续时间:               N/A
重复: 如果还在运行，停止:           N/A

文件夹: \\Microsoft\\Windows\\Defrag
主机名:                             WKS-017
任务名:                             \\Microsoft\\Windows\\Defrag\\ScheduledDefrag
下次运行时间:                       2024/1/10 1:00:00
模式:                               已禁用
上次运行时间:                       从不
创建者:                             Microsoft Corporation
要运行的任务:                       %windir%\\system32\\defrag.exe -c -h -o -$
计划任务状态:                       已禁用
作为用户运行:                       SYSTEM
计划类型:                           每周
开始时间:                           1:00:00
开始日期:                           2006/1/1
天:                                 星期三
"""

EN_LIST = """Folder: \\
HostName:                             ADMIN-STATION
TaskName:                             \\IchBinBosh
Next Run Time:                        6/1/2021 5:02:00 PM
Status:                               Ready
Last Run Time:                        Never
Author:                               ADMIN-STATION\\andy.dwyer
Task To Run:                          powershell.exe -win hidden -encode JABMAD0ATgBl
Scheduled Task State:                 Enabled
Run As User:                          andy.dwyer
Schedule:                             Scheduling data is not available in this format.
Schedule Type:                        One Time Only, Minute
Start Time:                           4:02:00 PM
Start Date:                           6/1/2021
Repeat: Every:                        0 Hour(s), 15 Minute(s)
Repeat: Until: Time:                  None
"""


def parse(text: str) -> MemorySink:
    sink = MemorySink()
    schtasks.parse(text, sink)
    return sink


def test_zh_csv_merges_triggers_and_maps_values() -> None:
    sink = parse(ZH_CSV)
    assert sink.skipped == 0
    upnp, backup, com = sink.of("tasks")
    assert upnp == {
        "line": 4,
        "name": "\\UPnPHostServices",
        "status": "就绪",
        "enabled": True,
        "command": APPDIAG,
        "arguments": None,
        "run_as": "SYSTEM",
        "author": "WKS-017\\Administrator",
        "schedule": "每日 2024/1/6 9:00:00 每 1 天; 登陆时",
        "next_run": datetime(2024, 1, 7, 9, 0),
        "last_run": datetime(2024, 1, 6, 9, 0),
        "created": None,
        "source": "schtasks-csv",
    }
    assert (backup["line"], backup["status"], backup["enabled"]) == (6, "已禁用", False)
    assert (backup["command"], backup["arguments"]) == ('cmd /c "D:\\bak\\run.bat" "a b"', None)
    assert backup["last_run"] is None  # 1999/11/30 means "never ran"
    assert (com["line"], com["command"], com["status"], com["schedule"]) == (8, "COM 处理程序", "正在运行", "登陆时")


def test_en_us_csv_unescaped_quotes_and_am_pm() -> None:
    sink = parse(EN_US_CSV)
    assert sink.skipped == 0
    reg, upd = sink.of("tasks")
    assert reg["command"].startswith('reg query "HKLM\\SOFTWARE') and reg["command"].endswith('/v "SD"')
    assert (reg["next_run"], reg["last_run"], reg["enabled"]) == (None, None, True)
    assert reg["schedule"] == "One Time Only 5/10/2020 12:00:00 AM"
    assert (upd["command"], upd["arguments"]) == ("C:\\Program Files\\Upd\\upd.exe", "-silent")
    assert upd["next_run"] == datetime(2020, 5, 11, 13, 30)
    assert upd["last_run"] == datetime(2020, 5, 10, 13, 30)
    assert (upd["enabled"], upd["run_as"], upd["author"]) == (False, "bob", "WINDESK\\bob")


def test_en_gb_day_first_learned_from_the_file() -> None:
    (row,) = parse(EN_GB_CSV).of("tasks")
    assert row["next_run"] == datetime(2025, 2, 5, 17, 30)
    assert row["last_run"] == datetime(2025, 2, 13, 17, 15)
    assert (row["command"], row["arguments"]) == ("C:\\tools\\nightly.cmd", "--all")


def test_zh_list_blocks_wrapped_value_and_never() -> None:
    sink = parse(ZH_LIST)
    assert sink.skipped == 0
    upnp, defrag = sink.of("tasks")
    assert (upnp["line"], upnp["name"], upnp["author"], upnp["source"]) == (
        3,
        "\\UPnPHostServices",
        None,
        "schtasks-list",
    )
    assert upnp["command"] == APPDIAG
    assert upnp["arguments"] == "-c C:\\Windows\\AppDiagnostics\\conf.xml"  # console wrap re-joined
    assert (upnp["last_run"], upnp["next_run"], upnp["enabled"], upnp["schedule"]) == (
        datetime(2024, 1, 6, 9, 0),
        None,
        True,
        "登陆时",
    )
    assert (defrag["line"], defrag["enabled"], defrag["last_run"]) == (34, False, None)
    assert defrag["next_run"] == datetime(2024, 1, 10, 1, 0)
    assert (defrag["command"], defrag["arguments"]) == ("%windir%\\system32\\defrag.exe", "-c -h -o -$")
    assert defrag["schedule"] == "每周 2006/1/1 1:00:00 星期三"


def test_en_list_labels_with_colons() -> None:
    (row,) = parse(EN_LIST).of("tasks")
    assert (row["name"], row["command"], row["arguments"]) == (
        "\\IchBinBosh",
        "powershell.exe",
        "-win hidden -encode JABMAD0ATgBl",
    )
    assert (row["next_run"], row["last_run"], row["status"]) == (datetime(2021, 6, 1, 17, 2), None, "Ready")
    assert row["schedule"] == "One Time Only, Minute 6/1/2021 4:02:00 PM"


def test_malformed_csv_rows_are_counted_with_line_numbers() -> None:
    good = zh_row("\\Good", "C:\\a.exe", "已启用")
    text = "\n".join(
        [good, ZH_HEADER, good, '"WKS-017","\\Cut","N/A","就绪"', zh_row("", "x.exe", "已启用"), good[:-40]]
    )
    sink = parse(text)
    assert [r["line"] for r in sink.of("tasks")] == [3]
    assert sink.skip_counts == {
        "row before the CSV header": 1,
        "wrong number of CSV fields": 2,
        "row without a task name": 1,
    }
    assert [s.line for s in sink.skips] == [1, 4, 5, 6]


def test_list_junk_and_nameless_block_are_counted() -> None:
    text = "junk before\n模式:  就绪\n\n文件夹: \\\n任务名:   \\A\n要运行的任务:   a.exe\n"
    sink = parse(text)
    assert [r["name"] for r in sink.of("tasks")] == ["\\A"]
    assert sink.skip_counts == {"not a schtasks list line": 1, "task block without a task name": 1}
    assert [s.line for s in sink.skips] == [1, 2]


def test_default_table() -> None:
    text = (
        "\n文件夹: \\\n任务名                                   下次运行时间           模式\n"
        "======================================== ====================== ===============\n"
        "UPnPHostServices                         2024/1/7 9:00:00       就绪\n"
        "\n文件夹: \\Microsoft\n任务名                                   下次运行时间           模式\n"
        "======================================== ====================== ===============\n"
        "信息: 目前在你的访问级别上不存在任何可用的计划任务。\n"
    )
    sink = parse(text)
    assert sink.skipped == 0
    (row,) = sink.of("tasks")
    assert (row["line"], row["name"], row["status"], row["source"]) == (5, "UPnPHostServices", "就绪", "schtasks-table")
    assert row["next_run"] == datetime(2024, 1, 7, 9, 0)


@pytest.mark.parametrize("text", [ZH_CSV, EN_US_CSV, EN_GB_CSV, ZH_LIST, EN_LIST])
def test_every_encoding(text: str) -> None:
    assert_same_in_every_encoding(schtasks.parse, text, "tasks", "schtasks")


def test_split_command() -> None:
    assert schtasks.split_command('"C:\\a b\\x.exe"') == ("C:\\a b\\x.exe", None)
    assert schtasks.split_command("C:\\Program Files\\x\\y.EXE /q") == ("C:\\Program Files\\x\\y.EXE", "/q")
    assert schtasks.split_command("COM handler") == ("COM handler", None)
    assert schtasks.split_command("  ") == (None, None)


def test_sniff_does_not_cross_claim() -> None:
    systeminfo = "\nHost Name:                 FS01\nOS Name:                   Microsoft Windows\n主机名:   X\n"
    tasklist = '"映像名称","PID","会话名","会话#","内存使用"\n"System","4","Services","0","1 K"\n'
    wmic = "\nNode,CommandLine,Name,ProcessId\nH,a.exe,a.exe,4\n"
    netstat = "\nActive Connections\n\n  Proto  Local Address          Foreign Address        State           PID\n"
    for text in (systeminfo, tasklist, wmic, netstat):
        assert schtasks.sniff(text) == 0.0
    assert detect_head(ZH_CSV.encode("gbk"), complete=True).format.name == "schtasks"


REAL = {
    "en-GB_schtasks_fo-csv_v_resticprofile.csv": ("\\resticprofile backup\\self backup", datetime(2025, 2, 13, 17, 30)),
    "en-US_schtasks_fo-csv_v_unescaped-quotes_metasploit.csv": ("\\fzuZbSwfXc", None),
    "en-US_schtasks_fo-list_v.txt": ("\\IchBinBosh", datetime(2021, 6, 1, 17, 2)),
    "zh-CN_schtasks_fo-list_v.txt": ("\\MicrosoftEdgeUpdateTaskMachineRelease", None),
    "zh-CN_schtasks_fo-list_v_officeupdate.txt": (
        "\\Microsoft\\Office\\Office Automatic Updates 2.0",
        datetime(2023, 10, 25, 4, 39, 4),
    ),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_samples(name: str) -> None:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"sample not present: {path}")
    data = path.read_bytes()
    assert detect_head(data, complete=True).format.name == "schtasks"
    sink = parse(decode(data).text)
    assert sink.skipped == 0
    (row,) = sink.of("tasks")  # the resticprofile task has two trigger rows: merged into one
    assert (row["name"], row["next_run"], row["enabled"]) == (*REAL[name], True)


def test_real_header_only_and_empty_table() -> None:
    for name in ("zh-CN_schtasks_fo-csv_v_header.csv", "zh-CN_schtasks_default_table.txt"):
        path = SAMPLES / name
        if not path.is_file():
            pytest.skip(f"sample not present: {path}")
        data = path.read_bytes()
        assert detect_head(data, complete=True).format.name == "schtasks"
        sink = parse(decode(data).text)
        assert (sink.records, sink.skipped) == (0, 0)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=800))
def test_random_text_never_raises(text: str) -> None:
    sink = MemorySink()
    schtasks.parse(text, sink)
    assert sink.records == len(sink.of("tasks"))


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_junk_line_after_header_is_counted(data: st.DataObject) -> None:
    junk = data.draw(st.text(alphabet="abcXYZ 0123-_", min_size=1, max_size=40).filter(str.strip))
    text = data.draw(st.sampled_from([ZH_CSV, EN_US_CSV]))
    lines = text.split("\n")
    lines.insert(3, junk)
    sink = parse("\n".join(lines))
    assert sink.skipped == 1 and sink.skips[0].line == 4
    assert len(sink.of("tasks")) == len(parse(text).of("tasks"))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(data: bytes) -> None:
    sink = MemorySink()
    schtasks.parse(decode(data).text, sink)
    assert sink.records == len(sink.of("tasks"))


def test_bytes_of_every_encoding_decode_to_rows() -> None:
    for enc, raw in encodings(ZH_LIST).items():
        assert [r["name"] for r in parse(decode(raw).text).of("tasks")] == [
            "\\UPnPHostServices",
            "\\Microsoft\\Windows\\Defrag\\ScheduledDefrag",
        ], enc
