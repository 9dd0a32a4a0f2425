"""Detectors over the case store, and the verdict that turns their findings into hosts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from wormhunt.analyze import anomalies, host, network, persistence
from wormhunt.analyze.verdict import HostView, Identity, build_hosts, patient_zero
from wormhunt.model import Finding
from wormhunt.store import Case


@dataclass
class Investigation:
    hosts: dict[str, HostView]
    spreaders: list[dict[str, Any]]
    patient_zero: dict[str, Any] | None
    fanout_not_ranked: list[dict[str, Any]] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [f for h in self.hosts.values() for f in h.findings]


def analyze(case: Case) -> Investigation:
    """Run every detector over the case and store the findings in it (replacing earlier ones)."""
    identity = Identity(case)
    net_findings, spreaders, shown = network.findings(case, identity.role_by_ip())
    host_findings = host.findings(case) + persistence.findings(case) + anomalies.findings(case)
    hosts = build_hosts(identity, net_findings + host_findings)
    for s in spreaders + shown:
        s["host"] = identity.host_of(s["src"])
    result = Investigation(hosts, spreaders, patient_zero(hosts), shown)
    _persist(case, result)
    return result


def _persist(case: Case, result: Investigation) -> None:
    con = case.con
    con.execute("BEGIN TRANSACTION")  # readers never see half-replaced results
    try:
        _write_results(con, result)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def _write_results(con: Any, result: Investigation) -> None:
    con.execute(
        """CREATE OR REPLACE TABLE findings (host VARCHAR, ip VARCHAR, rule VARCHAR, severity VARCHAR,
           attack VARCHAR, title VARCHAR, params VARCHAR, first_seen TIMESTAMP, last_seen TIMESTAMP,
           evidence VARCHAR)"""
    )
    con.execute(
        """CREATE OR REPLACE TABLE hosts (host VARCHAR, ip VARCHAR, ips VARCHAR[], status VARCHAR,
           first_seen TIMESTAMP, role VARCHAR, os VARCHAR)"""
    )
    rows = [
        [
            f.host,
            f.ip,
            f.rule,
            f.severity,
            f.attack,
            f.title,
            json.dumps(f.params, ensure_ascii=False, default=str),
            f.first_seen,
            f.last_seen,
            json.dumps([e.__dict__ for e in f.evidence]),
        ]
        for f in result.findings
    ]
    if rows:
        con.executemany("INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    hrows = [
        [h.host, h.ip, h.ips, h.status, h.first_seen(), h.asset.get("role"), h.os or h.asset.get("os")]
        for h in result.hosts.values()
    ]
    if hrows:
        con.executemany("INSERT INTO hosts VALUES (?, ?, ?, ?, ?, ?, ?)", hrows)
