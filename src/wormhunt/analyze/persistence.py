"""Triage rules over what keeps a worm alive and what it runs: services, scheduled tasks,
WMI consumers and autoruns pointing into worm folders or at hidden/encoded script
interpreters, svchost services with odd DLLs or groups, service/task names the family knowledge base knows,
coin-miner command lines and pool connections, and portproxy listeners.

Host tables are small (hundreds of rows a host), so rows are read once and matched in
Python against the patterns of `knowledge/persistence.yaml`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from wormhunt.intel.families import family_of_name, normalize_path
from wormhunt.knowledge import load
from wormhunt.model import EvidenceRef, Finding
from wormhunt.store import Case


@dataclass(frozen=True)
class _Rules:
    suspicious: list[re.Pattern]
    tricks: list[re.Pattern]
    miner: list[re.Pattern]
    miner_ports: set[int]
    groups: set[str]

    @classmethod
    def load(cls) -> _Rules:
        kb = load("persistence")
        worm = [w["path"] for w in load("system_binaries")["worm_folders"] if w["family"]]
        paths = kb["suspicious_paths"] + [re.escape(normalize_path(w) + "\\") for w in worm]

        def comp(items: list[str]) -> list[re.Pattern]:
            return [re.compile(x, re.IGNORECASE) for x in items]

        return cls(
            comp(paths),
            comp(kb["script_tricks"]),
            comp(kb["miner_commandline"]),
            set(kb["miner_ports"]),
            {g.lower() for g in kb["svchost_groups"]},
        )


def _first(patterns: list[re.Pattern], text: str) -> re.Match | None:
    return next((m for p in patterns if (m := p.search(text))), None)


def _finding(rule: str, r: dict[str, Any], kind: str, sev: str, attack: str, title: str, **params: Any) -> Finding:
    return Finding(
        rule,
        r["host"] or "unknown-host",
        sev,
        attack,
        title,
        params,
        evidence=[EvidenceRef(kind, int(r["evidence_id"]), int(r["line"]))],
    )


def _targets(case: Case) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(kind table, what, name, command text) of every persistence entry."""
    out = []
    for r in case.query("SELECT * FROM services ORDER BY host, evidence_id, line"):
        cmd = " ".join(x for x in (r["binary_path"], r["service_dll"]) if x)
        out.append(("services", "service", r["name"] or "", cmd, r))
    for r in case.query("SELECT * FROM tasks ORDER BY host, evidence_id, line"):
        cmd = " ".join(x for x in (r["command"], r["arguments"]) if x)
        out.append(("tasks", "task", (r["name"] or "").rsplit("\\", 1)[-1], cmd, r))
    for r in case.query("SELECT * FROM wmi ORDER BY host, evidence_id, line"):
        cmd = " ".join(x for x in (r["command"], r["script"]) if x)
        if cmd:
            out.append(("wmi", "WMI consumer", r["name"] or "", cmd, r))
    for r in case.query("SELECT * FROM autoruns ORDER BY host, evidence_id, line"):
        cmd = " ".join(x for x in (r["launch"], r["image_path"]) if x)
        out.append(("autoruns", "autorun", r["entry"] or "", cmd, r))
    return out


def findings(case: Case) -> list[Finding]:
    rules = _Rules.load()
    out: list[Finding] = []
    for table, what, name, cmd, r in _targets(case):
        text = normalize_path(cmd)
        bad = None
        if table in ("services", "tasks"):  # the family knowledge base names them
            bad = family_of_name("service_name" if table == "services" else "task_name", name, r["name"])
        if bad:
            out.append(
                _finding(
                    "host.known_worm_persistence",
                    r,
                    table,
                    "critical",
                    "T1543.003" if table == "services" else "T1053.005",
                    "finding.known_worm_persistence",
                    what=what,
                    name=name,
                    family=bad.names["en"],
                    command=cmd,
                )
            )
        if m := _first(rules.suspicious, text):
            out.append(
                _finding(
                    "host.persistence_suspicious_path",
                    r,
                    table,
                    "high",
                    "T1547",
                    "finding.persistence_suspicious_path",
                    what=what,
                    name=name,
                    command=cmd,
                    folder=m.group(0).strip("\\"),
                )
            )
        if _first(rules.tricks, text):
            out.append(
                _finding(
                    "host.persistence_script",
                    r,
                    table,
                    "high",
                    "T1059.001",
                    "finding.persistence_script",
                    what=what,
                    name=name,
                    command=cmd,
                )
            )
        if table == "services":
            out.extend(_svchost(r, rules))
    out.extend(_miners(case, rules))
    out.extend(_portproxy(case))
    return out


def _svchost(r: dict[str, Any], rules: _Rules) -> list[Finding]:
    binary = normalize_path(r["binary_path"]).lower()
    if "svchost.exe" not in binary:
        return []
    out = []
    group = (r["group"] or "").lower()
    m = re.search(r"-k\s+(\w+)", binary)
    group = group or (m.group(1) if m else "")
    if group and group not in rules.groups:
        out.append(
            _finding(
                "host.svchost_unknown_group",
                r,
                "services",
                "medium",
                "T1543.003",
                "finding.svchost_unknown_group",
                name=r["name"],
                group=group,
            )
        )
    dll = normalize_path(r["service_dll"])
    if dll and not re.match(r"(?i)^c:\\windows\\system32\\[^\\]+\.dll$", dll):
        out.append(
            _finding(
                "host.service_dll_outside_system32",
                r,
                "services",
                "high",
                "T1543.003",
                "finding.service_dll_outside_system32",
                name=r["name"],
                dll=r["service_dll"],
            )
        )
    return out


def _miners(case: Case, rules: _Rules) -> list[Finding]:
    out = []
    for r in case.query(
        "SELECT host, pid, name, command_line, evidence_id, line FROM processes "
        "WHERE command_line IS NOT NULL ORDER BY host, evidence_id, line"
    ):
        if _first(rules.miner, r["command_line"]):
            out.append(
                _finding(
                    "host.miner_process",
                    r,
                    "processes",
                    "high",
                    "T1496",
                    "finding.miner_process",
                    pid=r["pid"],
                    name=r["name"],
                    command=r["command_line"],
                )
            )
    for r in case.query(
        """SELECT host, pid, remote_ip, remote_port, evidence_id, line FROM sockets
           WHERE remote_port IN (SELECT unnest(?::INTEGER[])) AND NOT coalesce(listening, false)
             AND remote_ip NOT IN ('0.0.0.0', '::', '*', '127.0.0.1', '::1')
           ORDER BY host, evidence_id, line""",
        [sorted(rules.miner_ports)],
    ):
        out.append(
            _finding(
                "host.miner_pool_port",
                r,
                "sockets",
                "medium",
                "T1496",
                "finding.miner_pool_port",
                pid=r["pid"],
                remote=f"{r['remote_ip']}:{r['remote_port']}",
            )
        )
    return out


def _portproxy(case: Case) -> list[Finding]:
    return [
        _finding(
            "host.portproxy",
            r,
            "host_config",
            "medium",
            "T1090",
            "finding.portproxy",
            listen=r["name"],
            connect=r["value"],
        )
        for r in case.query("SELECT * FROM host_config WHERE kind = 'portproxy' ORDER BY host, evidence_id, line")
    ]
