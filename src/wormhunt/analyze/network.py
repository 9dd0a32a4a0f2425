"""Network findings: who is spreading, who was hit, and why, from the detections' rows.

The detections themselves are ibis expressions (`netrules.py`) that run on DuckDB, Spark
or ClickHouse (`engines.py`); this module turns their rows (the same on every engine)
into findings and a ranked spreader list with stated reasons. Findings are keyed by IP;
`verdict.py` maps them to hosts.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from wormhunt.analyze import engines
from wormhunt.analyze.netrules import Params, signature_spec
from wormhunt.knowledge import load
from wormhunt.model import EvidenceRef, Finding
from wormhunt.store import Case

__all__ = ["Params", "detect", "findings", "findings_from", "signature_spec"]

EVIDENCE_PER_FINDING = 5
Results = dict[str, list[dict[str, Any]]]


def when(seconds: int | None) -> datetime | None:
    """Epoch seconds from an engine -> naive UTC datetime (the case's time convention)."""
    return None if seconds is None else datetime.fromtimestamp(int(seconds), UTC).replace(tzinfo=None)


def detect(case: Case, engine: str = "duckdb", url: str | None = None) -> Results:
    """Run the network detections over the case on the chosen engine."""
    eng = engines.open_engine(engine, case, url)
    try:
        return engines.run_detections(eng)
    finally:
        eng.close()


def findings(case: Case, roles: dict[str, str] | None = None) -> Outcome:
    """Network findings keyed by IP, ranked spreaders and unranked fan-out (on DuckDB)."""
    return findings_from(detect(case), roles)


def _refs(kind: str, rows: list[dict[str, Any]]) -> list[EvidenceRef]:
    return [EvidenceRef(kind, int(r["evidence_id"]), int(r["line"])) for r in rows[:EVIDENCE_PER_FINDING]]


def _expected(role: str, allow: set[str], ip: str) -> bool:
    """Fan-out is expected from an allow-listed address or a role whose job it is."""
    if ip in allow:
        return True
    low = role.lower()
    for term in load("network")["fanout_expected_roles"]:
        term = term.lower()
        if term.isascii():
            if re.search(rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])", low):
                return True
        elif term in low:
            return True
    return False


Outcome = tuple[list[Finding], list[dict[str, Any]], list[dict[str, Any]]]


def findings_from(results: Results, roles: dict[str, str] | None = None, allow: set[str] | None = None) -> Outcome:
    """Findings, ranked spreaders, and the fan-out shown but not ranked, from detection rows.

    `roles` maps IPs to asset roles; fan-out from an expected role (backup, management,
    scanner ...) or an allow-listed address is shown but not ranked as spreading."""
    fcfg = load("network")["smb_fanout"]
    roles, allow = roles or {}, allow or set()
    specs = load("network_signatures")["signatures"]
    out: list[Finding] = []
    spreaders: dict[str, dict[str, Any]] = {}

    def spreader(ip: str) -> dict[str, Any]:
        return spreaders.setdefault(
            ip,
            {
                "src": ip,
                "first_seen": None,
                "last_seen": None,
                "distinct_targets": 0,
                "max_targets_per_window": 0,
                "failed_ratio": None,
                "new_targets_per_min": None,
                "exploit_alerts": 0,
                "exploited_targets": 0,
                "scanning": False,
                "infected_by": None,
                "role": roles.get(ip) or "",
                "expected": _expected(roles.get(ip) or "", allow, ip),
                "reasons": [],
            },
        )

    def widen(s: dict[str, Any], first: datetime | None, last: datetime | None) -> None:
        s["first_seen"] = min(filter(None, (s["first_seen"], first)), default=None)
        s["last_seen"] = max(filter(None, (s["last_seen"], last)), default=None)

    evidence = defaultdict(list)
    for r in results["fanout_evidence"]:
        evidence[r["src_ip"]].append(r)
    for row in results["spreaders"]:
        ip = row["src_ip"]
        ratio = row["failed_sessions"] / row["sessions"] if row["sessions"] else 0.0
        failed_pct = round(100 * ratio)
        role = roles.get(ip) or ""
        params = {
            "ports": "/".join(str(p) for p in fcfg["ports"]),
            "window": fcfg["window_minutes"],
            "max_targets": row["max_targets"],
            "total_targets": row["total_targets"],
            "failed_pct": failed_pct,
            "ok_pct": 100 - failed_pct,
            "sessions": row["sessions"],
            "role": role,
        }
        scanning = ratio >= fcfg["scan_failed_ratio"]
        expected = _expected(role, allow, ip)
        if expected:
            rule, sev, title = "net.smb_fanout_expected", "low", "finding.smb_fanout_expected"
        elif scanning:
            rule, sev, title = "net.smb_scan", "high", "finding.smb_scan"
        else:
            rule, sev, title = "net.smb_fanout", "medium", "finding.smb_fanout_ok"
        first, last = when(row["first_seen_s"]), when(row["last_seen_s"])
        out.append(Finding(rule, ip, sev, "T1046", title, params, first, last, _refs("flows", evidence[ip]), ip=ip))
        s = spreader(ip)
        widen(s, first, last)
        s.update(
            distinct_targets=row["total_targets"],
            max_targets_per_window=row["max_targets"],
            failed_ratio=round(ratio, 3),
            new_targets_per_min=round(row["new_targets"] / fcfg["window_minutes"], 2),
            scanning=scanning,
            expected=expected,
        )
        s["reasons"].append(("reason.fanout", {**params, "rate": s["new_targets_per_min"]}))
        if scanning:
            s["reasons"].append(("reason.failed", params))
        if expected:
            s["reasons"].append(("reason.expected", {"role": role or "allow-list"}))

    pairs = results["alert_pairs"]
    by_source: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    by_target: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in pairs:
        by_source[(p["src_ip"], p["sig"], p["rule"])].append(p)
        if specs[p["rule"]]["kind"] in ("probe", "exploit", "implant") and p["dst_ip"]:
            by_target[p["dst_ip"]].append(p)
    for (ip, sig, rule), rows in sorted(by_source.items(), key=lambda kv: (kv[1][0]["first_seen_s"], kv[0])):
        spec = specs[rule]
        count = sum(r["count"] for r in rows)
        targets = len({r["dst_ip"] for r in rows if r["dst_ip"]})
        first = when(min(r["first_seen_s"] for r in rows))
        last = when(max(r["last_seen_s"] for r in rows))
        params = {
            "signature": sig,
            "count": count,
            "targets": targets,
            "kind": spec["kind"],
            "cve": ", ".join(spec["cve"]),
            "family": spec["name"],
        }
        rows = sorted(rows, key=lambda r: (r["first_seen_s"], r["evidence_id"], r["line"]))
        out.append(
            Finding(
                f"net.{spec['kind']}_source",
                ip,
                spec["severity"],
                spec["attack"],
                "finding.exploit_source",
                params,
                first,
                last,
                _refs("net_alerts", rows),
                ip=ip,
            )
        )
        if spec["kind"] in ("exploit", "implant", "scan", "probe"):
            s = spreader(ip)
            widen(s, first, last)
            s["distinct_targets"] = max(s["distinct_targets"], targets)
            s["exploit_alerts"] += count if spec["kind"] in ("exploit", "implant") else 0
            s["exploited_targets"] = max(s["exploited_targets"], targets if spec["kind"] == "exploit" else 0)
            s["reasons"].append((f"reason.{spec['kind']}", params))
    for dst, rows in sorted(by_target.items(), key=lambda kv: (min(r["first_seen_s"] for r in kv[1]), kv[0])):
        # An implant that answers (or is driven) lives on the target: that host is compromised.
        # Any other exploit traffic only says someone tried; the target's own evidence decides.
        rows = sorted(rows, key=lambda r: (r["first_seen_s"], r["evidence_id"], r["line"]))
        implant = any(specs[r["rule"]]["kind"] == "implant" for r in rows)
        rule, sev, title = (
            ("net.implant_present", "critical", "finding.implant_present")
            if implant
            else ("net.exploit_target", "low", "finding.exploit_target")
        )
        sources = sorted({r["src_ip"] for r in rows})
        out.append(
            Finding(
                rule,
                dst,
                sev,
                "T1210",
                title,
                {"signature": rows[0]["sig"], "sources": ", ".join(sources[:5])},
                when(rows[0]["first_seen_s"]),
                when(max(r["last_seen_s"] for r in rows)),
                _refs("net_alerts", rows),
                ip=dst,
            )
        )
    for hop in results["hops"]:
        if hop["host"] in spreaders:
            s = spreaders[hop["host"]]
            s["infected_by"] = hop["infector"]
            s["reasons"].append(
                ("reason.hop", {"infector": hop["infector"], "at": when(hop["infected_s"]).isoformat(sep=" ")})
            )

    def score(s: dict[str, Any]) -> tuple:
        # Strength of the evidence first (exploit alerts and a failing sweep together beat
        # either alone, either beats fan-out alone), then time: the earliest ranks first.
        return (-(s["exploit_alerts"] > 0) - s["scanning"], s["first_seen"] or datetime.max, s["src"])

    # Exploit alerts outweigh an expected role: a compromised backup server still spreads.
    for s in spreaders.values():
        if s["expected"] and s["exploit_alerts"]:
            s["expected"] = False
            s["reasons"] = [r for r in s["reasons"] if r[0] != "reason.expected"]
    # Any fan-out not known to be legitimate is ranked; exploit alerts rank whatever the role.
    ranked = sorted((s for s in spreaders.values() if s["exploit_alerts"] or not s["expected"]), key=score)
    for i, s in enumerate(ranked, 1):
        s["rank"] = i
    shown = sorted((s for s in spreaders.values() if s not in ranked), key=score)
    for s in shown:
        s["rank"] = None
    return out, ranked, shown
