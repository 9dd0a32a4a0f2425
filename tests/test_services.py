"""Services parsers: `sc queryex` / `sc qc` (en and zh-CN) and `wmic service ... /format:csv`.

Hand-written fixtures follow formats.md section 4: `sc` keys are English on every locale and
only the `[SC] ... 成功/失败` lines are localized; wmic CSV has `Node` first, alphabetical
columns and unescaped commas. The real samples in ../shared/reference are parsed when present.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, assert_same_in_every_encoding, encodings
from wormhunt.sources import services
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_head
from wormhunt.sources.text import decode

SAMPLES = ROOT.parent / "shared" / "reference" / "format-samples" / "services"
SVCHOST = "C:\\Windows\\system32\\svchost.exe"

QUERYEX_EN = """C:\\Users\\analyst>sc queryex type= service state= all

SERVICE_NAME: snmpstorsrv
DISPLAY_NAME: Storage Service SNMP
        TYPE               : 20  WIN32_SHARE_PROCESS
        STATE              : 4  RUNNING
                                (STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)
        WIN32_EXIT_CODE    : 0  (0x0)
        SERVICE_EXIT_CODE  : 0  (0x0)
        CHECKPOINT         : 0x0
        WAIT_HINT          : 0x0
        PID                : 1044
        FLAGS              :

SERVICE_NAME: Spooler
DISPLAY_NAME: Print Spooler
        TYPE               : 110  WIN32_OWN_PROCESS (interactive)
        STATE              : 1  STOPPED
        WIN32_EXIT_CODE    : 1077  (0x435)
        SERVICE_EXIT_CODE  : 0  (0x0)
        CHECKPOINT         : 0x0
        WAIT_HINT          : 0x0
        PID                : 0
        FLAGS              :
"""

# Three `sc qc` runs in one file (zh-CN host), one of them for a service that does not exist.
QC_ZH = """C:\\Windows\\system32>sc qc snmpstorsrv
[SC] QueryServiceConfig 成功

SERVICE_NAME: snmpstorsrv
        TYPE               : 20  WIN32_SHARE_PROCESS
        START_TYPE         : 2   AUTO_START
        ERROR_CONTROL      : 1   NORMAL
        BINARY_PATH_NAME   : C:\\Windows\\system32\\svchost.exe -k netsvcs
        LOAD_ORDER_GROUP   :
        TAG                : 0
        DISPLAY_NAME       : 存储服务 SNMP
        DEPENDENCIES       : RPCSS
                           : LanmanWorkstation
        SERVICE_START_NAME : LocalSystem

C:\\Windows\\system32>sc qc nosuchsvc
[SC] OpenService 失败 1060:

指定的服务未作为已安装的服务存在。


C:\\Windows\\system32>sc qc Tcpip
[SC] QueryServiceConfig 成功

SERVICE_NAME: Tcpip
        TYPE               : 1  KERNEL_DRIVER
        START_TYPE         : 0   BOOT_START
        ERROR_CONTROL      : 1   NORMAL
        BINARY_PATH_NAME   : \\SystemRoot\\System32\\drivers\\tcpip.sys
        LOAD_ORDER_GROUP   : PNP_TDI
        TAG                : 3
        DISPLAY_NAME       : TCP/IP Protocol Driver
        DEPENDENCIES       :
        SERVICE_START_NAME :
"""

QC_EN = """[SC] QueryServiceConfig SUCCESS

SERVICE_NAME: Dnscache
        TYPE               : 20  WIN32_SHARE_PROCESS
        START_TYPE         : 2   AUTO_START
        ERROR_CONTROL      : 1   NORMAL
        BINARY_PATH_NAME   : %SystemRoot%\\system32\\svchost.exe -k NetworkService -p
        LOAD_ORDER_GROUP   : TDI
        TAG                : 0
        DISPLAY_NAME       : DNS Client
        DEPENDENCIES       : Tdx
                           : nsi
        SERVICE_START_NAME : NT AUTHORITY\\NetworkService

[SC] QueryServiceConfig SUCCESS

SERVICE_NAME: Acme Agent
        TYPE               : 10  WIN32_OWN_PROCESS
        START_TYPE         : 3   DEMAND_START
        ERROR_CONTROL      : 1   NORMAL
        BINARY_PATH_NAME   : C:\\Program Files\\Acme Corp\\Agent Svc\\agent.exe -service
        LOAD_ORDER_GROUP   :
        TAG                : 0
        DISPLAY_NAME       : Acme Agent
        DEPENDENCIES       :
        SERVICE_START_NAME : .\\svc_acme
"""

WMIC_HEADER = "Node,DisplayName,Name,PathName,ProcessId,StartMode,State"
WMIC = f"""
{WMIC_HEADER}
WKS-017,Storage Service SNMP,snmpstorsrv,{SVCHOST} -k netsvcs,1044,Auto,Running
WKS-017,Print Spooler,Spooler,C:\\Windows\\System32\\spoolsv.exe,0,Auto,Stopped
WKS-017,Acme Backup, Restore and Sync,AcmeSync,"C:\\Program Files\\Acme\\sync.exe" --mode=a,b,2210,Manual,Running
WKS-017,McAfee, Inc. Agent,masvc,"C:\\Program Files\\McAfee\\Agent\\masvc.exe" /ServiceStart,1788,Auto,Running
WKS-017,Kernel Driver,kdrv,,,Boot,Running
"""


def parse_sc(text: str) -> MemorySink:
    sink = MemorySink()
    services.parse_sc(text, sink)
    return sink


def parse_wmic(text: str) -> MemorySink:
    sink = MemorySink()
    services.parse_wmic(text, sink)
    return sink


def test_queryex_records() -> None:
    sink = parse_sc(QUERYEX_EN)
    assert sink.skipped == 0
    snmp, spooler = sink.of("services")
    assert snmp == {
        "line": 3,
        "name": "snmpstorsrv",
        "display_name": "Storage Service SNMP",
        "type": "WIN32_SHARE_PROCESS",
        "state": "RUNNING",
        "start_mode": None,
        "pid": 1044,
        "binary_path": None,
        "service_dll": None,
        "group": None,
        "account": None,
        "source": "sc-queryex",
    }
    assert (spooler["line"], spooler["type"], spooler["state"], spooler["pid"]) == (
        15,
        "WIN32_OWN_PROCESS (interactive)",
        "STOPPED",
        0,
    )


def test_qc_zh_wannamine_service_and_error() -> None:
    sink = parse_sc(QC_ZH)
    snmp, tcpip = sink.of("services")
    assert snmp == {
        "line": 4,
        "name": "snmpstorsrv",
        "display_name": "存储服务 SNMP",
        "type": "WIN32_SHARE_PROCESS",
        "state": None,
        "start_mode": "AUTO_START",
        "pid": None,
        "binary_path": f"{SVCHOST} -k netsvcs",
        "service_dll": None,
        "group": "netsvcs",  # LOAD_ORDER_GROUP empty: the svchost group instead
        "account": "LocalSystem",
        "source": "sc-qc",
    }
    assert tcpip["binary_path"] == "\\SystemRoot\\System32\\drivers\\tcpip.sys"
    assert (tcpip["group"], tcpip["start_mode"], tcpip["account"], tcpip["line"]) == ("PNP_TDI", "BOOT_START", None, 25)
    # The failure is one skip; its localized explanation is not counted again.
    assert sink.skip_counts == {"sc error": 1}
    assert (sink.skips[0].line, sink.skips[0].text) == (17, "[SC] OpenService 失败 1060:")


def test_qc_en_unquoted_path_and_percent_root() -> None:
    dns, acme = parse_sc(QC_EN).of("services")
    assert dns["binary_path"] == "%SystemRoot%\\system32\\svchost.exe -k NetworkService -p"
    assert (dns["group"], dns["account"]) == ("TDI", "NT AUTHORITY\\NetworkService")
    assert acme["name"] == "Acme Agent"
    assert acme["binary_path"] == "C:\\Program Files\\Acme Corp\\Agent Svc\\agent.exe -service"
    assert (acme["group"], acme["account"], acme["start_mode"]) == (None, ".\\svc_acme", "DEMAND_START")


def test_blank_lines_everywhere_are_tolerated() -> None:
    doubled = "\n".join(line + "\n" for line in QC_ZH.split("\n"))
    sink = parse_sc(doubled)
    assert [r["name"] for r in sink.of("services")] == ["snmpstorsrv", "Tcpip"]
    assert sink.skip_counts == {"sc error": 1}


def test_truncated_and_junk_lines_are_counted_with_line_numbers() -> None:
    text = QUERYEX_EN + "garbage line\nSERVICE_NAME: Cut\n"
    sink = parse_sc(text)
    assert [r["name"] for r in sink.of("services")] == ["snmpstorsrv", "Spooler"]
    assert sink.skip_counts == {"not an sc line": 1, "service record cut short": 1}
    assert [s.line for s in sink.skips] == [25, 26]


def test_bad_pid_is_skipped_but_record_kept() -> None:
    text = "SERVICE_NAME: x\n        TYPE               : 10  WIN32_OWN_PROCESS\n        PID                : 12a\n"
    sink = parse_sc(text)
    (row,) = sink.of("services")
    assert row["pid"] is None and row["type"] == "WIN32_OWN_PROCESS"
    assert sink.skip_counts == {"bad PID": 1} and sink.skips[0].line == 3


def test_sc_every_encoding() -> None:
    assert_same_in_every_encoding(services.parse_sc, QUERYEX_EN, "services", "sc-service")
    assert_same_in_every_encoding(services.parse_sc, QC_ZH, "services", "sc-service")
    assert_same_in_every_encoding(services.parse_sc, QC_EN, "services", "sc-service")


def test_wmic_rows_and_comma_recovery() -> None:
    sink = parse_wmic(WMIC)
    rows = sink.of("services")
    assert sink.skipped == 0
    assert [r["line"] for r in rows] == [3, 4, 5, 6, 7]
    assert rows[0] == {
        "line": 3,
        "name": "snmpstorsrv",
        "display_name": "Storage Service SNMP",
        "type": None,
        "state": "Running",
        "start_mode": "Auto",
        "pid": 1044,
        "binary_path": f"{SVCHOST} -k netsvcs",
        "service_dll": None,
        "group": "netsvcs",
        "account": None,
        "source": "wmic-service",
    }
    # Commas in both DisplayName and PathName: the only split that keeps Name and PathName valid.
    assert (rows[2]["display_name"], rows[2]["name"]) == ("Acme Backup, Restore and Sync", "AcmeSync")
    assert rows[2]["binary_path"] == '"C:\\Program Files\\Acme\\sync.exe" --mode=a,b'
    assert rows[2]["pid"] == 2210
    assert (rows[3]["display_name"], rows[3]["name"], rows[3]["pid"]) == ("McAfee, Inc. Agent", "masvc", 1788)
    assert (rows[4]["binary_path"], rows[4]["pid"], rows[4]["start_mode"]) == (None, None, "Boot")


def test_wmic_ambiguous_and_cut_rows_are_skipped() -> None:
    text = f"\n{WMIC_HEADER}\nH,A, B,C,D,1,Auto,Running\nH,Svc,svc,C:\\x.exe,12\nInvalid XSL format (or) file name.\n"
    sink = parse_wmic(text)
    assert sink.of("services") == []
    reason = "cannot split row (ambiguous commas, or cut short)"
    assert sink.skip_counts == {reason: 2, "wmic error message": 1}
    assert [s.line for s in sink.skips] == [3, 4, 5]


def test_wmic_crcrlf_and_every_encoding() -> None:
    sink = parse_wmic(WMIC.replace("\n", "\r\r\n"))
    assert len(sink.of("services")) == 5 and sink.skipped == 0
    assert_same_in_every_encoding(services.parse_wmic, WMIC, "services", "wmic-service")


def test_wmic_columns_by_header_name() -> None:
    text = "\nNode,Name,ProcessId,StartName,State\nSRV,MSSQLSERVER,3388,NT Service\\MSSQLSERVER,Running\n"
    (row,) = parse_wmic(text).of("services")
    assert (row["name"], row["pid"], row["account"], row["state"]) == (
        "MSSQLSERVER",
        3388,
        "NT Service\\MSSQLSERVER",
        "Running",
    )


def test_sniff_does_not_cross_claim() -> None:
    wmic_process = "\nNode,CommandLine,Name,ProcessId\nH,a.exe,a.exe,4\n"
    tasklist = '"Image Name","PID","Session Name","Session#","Mem Usage"\n"System","4","Services","0","1 K"\n'
    for text in (wmic_process, tasklist, "Active Connections\n\n  Proto  Local Address\n"):
        assert services.sniff_sc(text) == 0.0 and services.sniff_wmic(text) == 0.0
    assert detect_head(WMIC.encode(), complete=True).format.name == "wmic-service"
    assert detect_head(QC_ZH.encode("gbk"), complete=True).format.name == "sc-service"


@pytest.mark.parametrize("name", ["en-US_sc_queryex.txt", "zh-CN_sc_qc_malicious-service.txt"])
def test_real_samples(name: str) -> None:
    path: Path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"sample not present: {path}")
    data = path.read_bytes()
    assert detect_head(data, complete=True).format.name == "sc-service"
    sink = parse_sc(decode(data).text)
    assert sink.skipped == 0
    rows = sink.of("services")
    if name.startswith("en-US"):
        assert [(r["name"], r["pid"], r["state"]) for r in rows] == [
            ("AdobeARMservice", 4624, "RUNNING"),
            ("AJRouter", 0, "STOPPED"),
        ]
    else:
        (row,) = rows
        assert row["binary_path"] == '"C:\\Users\\ADMINI~1\\AppData\\Local\\Temp\\UDUVT.exe" oXufaqbK'
        assert (row["name"], row["type"], row["account"]) == (
            "vNdXXvxN",
            "WIN32_OWN_PROCESS (interactive)",
            "LocalSystem",
        )


def test_real_samples_driver_and_unquoted() -> None:
    driver, unquoted = SAMPLES / "zh-CN_sc_qc_and_query_driver.txt", SAMPLES / "zh-CN_sc_qc_unquoted-path.txt"
    if not (driver.is_file() and unquoted.is_file()):
        pytest.skip("samples not present")
    qc, query = parse_sc(decode(driver.read_bytes()).text).of("services")
    assert (qc["source"], qc["binary_path"], qc["start_mode"]) == (
        "sc-qc",
        "system32\\drivers\\npf.sys",
        "DEMAND_START",
    )
    assert (query["source"], query["state"], query["type"]) == ("sc-query", "RUNNING", "KERNEL_DRIVER")
    (row,) = parse_sc(decode(unquoted.read_bytes()).text).of("services")
    assert row["binary_path"] == "E:\\program files\\sub dir\\program name.exe"


def test_powershell_tables_are_not_claimed() -> None:
    for name in ("en-US_Get-Service_table.txt", "ps7_Get-Service_table_unicode-ellipsis.txt"):
        path = SAMPLES / name
        if path.is_file():
            head = decode(path.read_bytes()).text
            assert services.sniff_sc(head) == 0.0 and services.sniff_wmic(head) == 0.0


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=600), st.sampled_from(["sc", "wmic"]))
def test_random_text_never_raises(text: str, which: str) -> None:
    sink = MemorySink()
    (services.parse_sc if which == "sc" else services.parse_wmic)(text, sink)
    assert sink.records == len(sink.of("services"))


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_mutated_line_is_accounted(data: st.DataObject) -> None:
    # Replace one line of a fixture with junk: the other records survive, nothing raises.
    text = data.draw(st.sampled_from([QUERYEX_EN, QC_ZH, WMIC]))
    lines = text.split("\n")
    i = data.draw(st.integers(0, len(lines) - 1))
    lines[i] = data.draw(st.text(max_size=80).filter(lambda s: "\n" not in s))
    parser = services.parse_wmic if text is WMIC else services.parse_sc
    sink, full = MemorySink(), MemorySink()
    parser("\n".join(lines), sink)
    parser(text, full)
    if text is WMIC and i == 1:
        return  # the CSV header itself: every row depends on it
    # One bad line costs at most the one record it belonged to.
    assert len(sink.of("services")) >= len(full.of("services")) - 1


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from(["sc", "wmic"]))
def test_random_bytes_never_raise(data: bytes, which: str) -> None:
    sink = MemorySink()
    (services.parse_sc if which == "sc" else services.parse_wmic)(decode(data).text, sink)
    assert sink.records == len(sink.of("services"))


def test_bytes_of_every_encoding_decode_to_rows() -> None:
    for enc, data in encodings(QC_ZH).items():
        rows = parse_sc(decode(data).text).of("services")
        assert [r["name"] for r in rows] == ["snmpstorsrv", "Tcpip"], enc
