"""Triage leads across artifacts: forged file times, worm accounts, miner-like CPU load.
One hand-written bundle in the documented formats."""

from __future__ import annotations

import pytest

from tests.test_systeminfo import EN as SYSTEMINFO  # WS-FIN-07, installed 11/30/2016, booted 3/2/2017
from wormhunt.analyze import anomalies
from wormhunt.ingest import ingest
from wormhunt.store import Case

# tasklist /v /fo csv: the miner has used 20 of the 24 hours since boot; explorer 3 minutes.
TASKLIST_V = (
    '"Image Name","PID","Session Name","Session#","Mem Usage","Status","User Name","CPU Time","Window Title"\n'
    '"System Idle Process","0","Services","0","8 K","Unknown","NT AUTHORITY\\SYSTEM","40:04:51","N/A"\n'
    '"explorer.exe","5932","Console","1","96,120 K","Running","WS-FIN-07\\kim","0:03:00","Program Manager"\n'
    '"sqlservr.exe","3388","Services","0","412,904 K","Unknown","NT SERVICE\\MSSQLSERVER","22:00:00","N/A"\n'
    '"svchost.exe","7412","Services","0","2,904 K","Unknown","NT AUTHORITY\\SYSTEM","20:00:00","N/A"\n'
)
# wmic process: the collection happened about a day after boot (the newest process start).
WMIC = (
    "\r\nNode,CommandLine,CreationDate,ExecutablePath,Name,ParentProcessId,ProcessId\r\n"
    "WS-FIN-07,C:\\Windows\\Explorer.EXE,20170302201500.000000-300,C:\\Windows\\Explorer.EXE,explorer.exe,900,5932\r\n"
    "WS-FIN-07,,20170303201000.000000-300,C:\\Windows\\System32\\cmd.exe,cmd.exe,5932,8100\r\n"
)
NET_USER = """
User accounts for \\\\WS-FIN-07

-------------------------------------------------------------------------------
Administrator            Guest                    kim
mm123$                   svc$                     support
The command completed successfully.

"""
GCI = (
    '"FullName","Length","CreationTime","LastWriteTime"\n'
    '"C:\\Windows\\System32\\snmpstorsrv.dll","142336","7/14/2009 1:39:00 AM","7/14/2009 1:39:00 AM"\n'
    '"C:\\Program Files\\App\\app.exe","1000","1/5/2017 9:00:00 AM","1/5/2017 9:00:00 AM"\n'
)


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    root = tmp_path_factory.mktemp("anom")
    host = root / "bundle" / "WS-FIN-07"
    host.mkdir(parents=True)
    (host / "systeminfo.txt").write_text(SYSTEMINFO, encoding="utf-8")
    (host / "tasklist_v.csv").write_text(TASKLIST_V, encoding="utf-8")
    (host / "wmic_process.csv").write_bytes(WMIC.encode("utf-8"))
    (host / "net_user.txt").write_text(NET_USER, encoding="utf-8")
    (host / "files.csv").write_text(GCI, encoding="utf-8")
    c = Case(root / "case")
    entries = ingest(c, [root / "bundle"])
    assert {e.status for e in entries} == {"ingested"}, [(e.path, e.status, e.message) for e in entries]
    yield c
    c.close()


def test_file_created_before_the_os_install_is_a_timestomp_hint(case: Case) -> None:
    hints = anomalies.timestomp_hints(case)
    assert [(f.host, f.params["path"]) for f in hints] == [("WS-FIN-07", "C:\\Windows\\System32\\snmpstorsrv.dll")]
    assert hints[0].title == "finding.timestomp_before_install" and hints[0].evidence[0].kind == "files"


def test_worm_and_hidden_accounts(case: Case) -> None:
    users = {(f.rule, f.params["name"], f.severity) for f in anomalies.unexpected_users(case)}
    assert users == {("host.known_worm_user", "mm123$", "critical"), ("host.hidden_user", "svc$", "high")}


def test_miner_like_cpu_load_but_not_expected_busy_processes(case: Case) -> None:
    busy = anomalies.busy_processes(case)
    assert [(f.params["pid"], f.params["name"]) for f in busy] == [(7412, "svchost.exe")]
    assert 0.5 <= busy[0].params["share"] <= 1.0
