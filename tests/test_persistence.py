"""Triage rules over services, tasks, WMI consumers, autoruns, processes and portproxy rows."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from wormhunt.analyze import persistence
from wormhunt.model import KINDS
from wormhunt.store import Case


def insert(case: Case, kind: str, rows: list[dict]) -> None:
    k = KINDS[kind]
    base = {**dict.fromkeys(k.names), "evidence_id": 1, "host": "CLUSTER01"}
    rows_table = pa.Table.from_pylist([{**base, "line": n, **r} for n, r in enumerate(rows, 1)], schema=k.arrow_schema)
    case.con.register("rows_table", rows_table)
    case.con.execute(f"INSERT INTO {kind} SELECT * FROM rows_table")
    case.con.unregister("rows_table")


def rules_of(tmp_path: Path, **tables: list[dict]) -> dict[str, list]:
    with Case(tmp_path / "case") as case:
        for kind, rows in tables.items():
            insert(case, kind, rows)
        found = persistence.findings(case)
    out: dict[str, list] = {}
    for f in found:
        out.setdefault(f.rule, []).append(f)
    return out


def test_wannamine_persistence_is_found(tmp_path: Path) -> None:
    got = rules_of(
        tmp_path,
        services=[
            {"name": "snmpstorsrv", "binary_path": r"%SystemRoot%\system32\svchost.exe -k netsvcs",
             "service_dll": r"C:\Windows\System32\snmpstorsrv.dll"},
            {"name": "evilsvc", "binary_path": r"C:\Windows\system32\svchost.exe -k weirdgroup",
             "service_dll": r"C:\Users\Public\x.dll"},
        ],
        tasks=[{"name": r"\UPnPHostServices", "command": r"C:\Windows\AppDiagnostics\spoolsv.exe"}],
        wmi=[{"class": "CommandLineEventConsumer", "name": "DSM Event Log Consumer",
              "command": "powershell.exe -NoP -W Hidden -E SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcA"}],
        processes=[{"pid": 880, "name": "TrustedHostex.exe",
                    "command_line": "TrustedHostex.exe -o pool.example.org:3333 -u 4AbC -p x --donate-level 1"}],
        sockets=[{"pid": 880, "remote_ip": "198.51.100.7", "remote_port": 3333, "listening": False}],
        host_config=[{"kind": "portproxy", "name": "0.0.0.0:65531", "value": "198.51.100.9:53"}],
    )  # fmt: skip
    (known_svc, known_task) = sorted(got["host.known_worm_persistence"], key=lambda f: f.params["what"])
    assert known_svc.params["name"] == "snmpstorsrv" and known_svc.evidence[0].kind == "services"
    assert known_task.params["name"] == "UPnPHostServices" and known_task.severity == "critical"
    assert [f.params["name"] for f in got["host.persistence_suspicious_path"]] == ["evilsvc", "UPnPHostServices"]
    assert [f.params["name"] for f in got["host.persistence_script"]] == ["DSM Event Log Consumer"]
    assert [f.params["group"] for f in got["host.svchost_unknown_group"]] == ["weirdgroup"]
    assert [f.params["name"] for f in got["host.service_dll_outside_system32"]] == ["evilsvc"]
    assert got["host.miner_process"][0].params["pid"] == 880
    assert got["host.miner_pool_port"][0].params["remote"] == "198.51.100.7:3333"
    assert got["host.portproxy"][0].params["listen"] == "0.0.0.0:65531"
    assert all(f.evidence and f.evidence[0].line >= 1 for fs in got.values() for f in fs)


def test_ordinary_windows_persistence_raises_nothing(tmp_path: Path) -> None:
    got = rules_of(
        tmp_path,
        services=[
            {"name": "Schedule", "binary_path": r"C:\Windows\system32\svchost.exe -k netsvcs",
             "service_dll": r"%SystemRoot%\system32\schedsvc.dll"},
            {"name": "Spooler", "binary_path": r"C:\Windows\System32\spoolsv.exe"},
        ],
        tasks=[{"name": r"\Microsoft\Windows\Defrag\ScheduledDefrag", "command": r"%windir%\system32\defrag.exe",
                "arguments": "-c -h -o -$"}],
        wmi=[{"class": "NTEventLogEventConsumer", "name": "SCM Event Log Consumer"}],
        processes=[{"pid": 4, "name": "System", "command_line": ""},
                   {"pid": 900, "name": "powershell.exe", "command_line": "powershell.exe -File C:\\ops\\backup.ps1"}],
        sockets=[{"pid": 900, "remote_ip": "10.0.0.5", "remote_port": 443, "listening": False}],
    )  # fmt: skip
    assert got == {}


def test_system_binary_with_an_unexpected_parent(tmp_path: Path) -> None:
    from wormhunt.analyze import host

    with Case(tmp_path / "case") as case:
        insert(
            case,
            "processes",
            [
                {"pid": 600, "ppid": 500, "name": "services.exe"},
                {"pid": 880, "ppid": 600, "name": "svchost.exe"},  # genuine
                {"pid": 2200, "ppid": 1900, "name": "explorer.exe"},
                {"pid": 2300, "ppid": 2200, "name": "svchost.exe"},  # started by explorer: suspicious
            ],
        )
        found = host.unexpected_parents(case)
    assert [(f.params["pid"], f.params["parent"]) for f in found] == [(2300, "explorer.exe")]
    assert found[0].severity == "high" and found[0].evidence[0].line == 4
