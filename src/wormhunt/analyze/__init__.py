"""Detectors over the case store, and the verdict that turns their findings into hosts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from wormhunt.analyze import anomalies, events, host, network, persistence
from wormhunt.analyze.spread import Spread, analyze_spread
from wormhunt.analyze.verdict import HostView, Identity, build_hosts, patient_zero
from wormhunt.intel.families import Family, Indicator, load_families
from wormhunt.intel.match import FAMILY_MIN, FamilyMatch, family_findings, match_case
from wormhunt.model import Finding
from wormhunt.store import Case

UNKNOWN_FAMILY = "unknown-smb-worm"


@dataclass
class Investigation:
    hosts: dict[str, HostView]
    spreaders: list[dict[str, Any]]
    patient_zero: dict[str, Any] | None
    fanout_not_ranked: list[dict[str, Any]] = field(default_factory=list)
    families: dict[str, list[FamilyMatch]] = field(default_factory=dict)  # per host, most confident first
    spread: Spread | None = None

    def family_of(self, host: str) -> tuple[str | None, float | None]:
        """(family id, confidence) of a host: the best family at or above the verdict bar, the
        unknown SMB worm for an infected host that matched none, else (None, None)."""
        best = next((m for m in self.families.get(host, []) if m.confidence >= FAMILY_MIN), None)
        if best:
            return best.family.id, best.confidence
        if self.hosts[host].status == "infected":
            return UNKNOWN_FAMILY, None
        return None, None

    @property
    def findings(self) -> list[Finding]:
        return [f for h in self.hosts.values() for f in h.findings]


def analyze(case: Case, families: list[Family] | None = None, extra: list[Indicator] | None = None) -> Investigation:
    """Run every detector over the case and store the findings in it (replacing earlier ones).

    `families`: the knowledge base (default: the shipped families); `extra`: imported indicators."""
    identity = Identity(case)
    net_findings, spreaders, shown = network.findings(case, identity.role_by_ip())
    host_findings = host.findings(case) + persistence.findings(case) + anomalies.findings(case) + events.findings(case)
    matches = match_case(case, load_families() if families is None else families, extra or [], identity.ip_to_host)
    hosts = build_hosts(identity, net_findings + host_findings + family_findings(matches))
    for s in spreaders + shown:
        s["host"] = identity.host_of(s["src"])
    by_host = {identity.canonical.get(h.upper(), h): m for h, m in matches.items()}
    result = Investigation(hosts, spreaders, patient_zero(hosts), shown, by_host)
    result.spread = analyze_spread(case, identity, hosts, spreaders)
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
           first_seen TIMESTAMP, role VARCHAR, os VARCHAR, family VARCHAR, confidence DOUBLE)"""
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
    _insert(con, "findings", rows)
    hrows = [
        [
            h.host,
            h.ip,
            h.ips,
            h.status,
            h.first_seen(),
            h.asset.get("role"),
            h.os or h.asset.get("os"),
            *result.family_of(h.host),
        ]
        for h in result.hosts.values()
    ]
    _insert(con, "hosts", hrows)


def _insert(con: Any, table: str, rows: list[list[Any]]) -> None:
    """Rows into a results table in one Arrow batch (executemany costs a round trip per row)."""
    if not rows:
        return
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    names = list(types)
    batch = pa.table({n: list(col) for n, col in zip(names, zip(*rows, strict=True), strict=True)})
    con.register("_wh_results", batch)
    try:
        cols = ", ".join(f'CAST("{n}" AS {types[n]})' for n in names)
        con.execute(f"INSERT INTO {table} SELECT {cols} FROM _wh_results")
    finally:
        con.unregister("_wh_results")
