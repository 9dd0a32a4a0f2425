"""Network detections: SMB fan-out per source host and exploit signatures, from the case tables.

Everything here is SQL over `flows` and `net_alerts`, so it runs where the data is and
never loads a log into Python. Findings are keyed by IP; `verdict.py` maps them to hosts.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from wormhunt.knowledge import load
from wormhunt.model import Finding, evidence_refs
from wormhunt.store import Case

EVIDENCE_PER_FINDING = 5


def smb_fanout(case: Case, config: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Sources that reached at least N distinct hosts on 445/139 within one window.

    Windows are tumbling buckets plus the same buckets shifted by half a window, so a burst
    that straddles a bucket edge is still seen whole.
    """
    cfg = config or load("network")["smb_fanout"]
    failed = [a.lower() for a in load("network")["failed_actions"]]
    width_us = int(cfg["window_minutes"] * 60 * 1_000_000)
    ports = [int(p) for p in cfg["ports"]]
    # A run of `run` first contacts at the detection threshold's pace (N hosts per window).
    run = int(cfg["onset_run"])
    run_seconds = max(1, int(run * cfg["window_minutes"] * 60 / cfg["min_distinct_targets"]))
    sql = f"""
    WITH cand AS (
        -- Only a source that reached N hosts in all can reach N in one window: the windowed
        -- work below then runs on a handful of sources instead of every client.
        SELECT src_ip FROM flows
        WHERE dst_port IN (SELECT unnest($ports::INTEGER[])) AND src_ip IS NOT NULL AND ts IS NOT NULL
        GROUP BY src_ip HAVING count(DISTINCT dst_ip) >= $threshold
    ),
    f AS (
        SELECT src_ip, dst_ip, ts, evidence_id, line,
               epoch_us(ts) // {width_us} AS w1, (epoch_us(ts) + {width_us // 2}) // {width_us} AS w2,
               (lower(coalesce(action, '')) IN (SELECT unnest($failed::VARCHAR[])) OR coalesce(bytes_in, 1) = 0)
                   AS failed
        FROM flows
        WHERE dst_port IN (SELECT unnest($ports::INTEGER[])) AND ts IS NOT NULL
          AND src_ip IN (SELECT src_ip FROM cand)
    ),
    win AS (
        SELECT src_ip, 1 AS k, w1 AS w, count(DISTINCT dst_ip) AS n FROM f GROUP BY src_ip, w1
        UNION ALL
        SELECT src_ip, 2 AS k, w2 AS w, count(DISTINCT dst_ip) AS n FROM f GROUP BY src_ip, w2
    ),
    hot AS (SELECT * FROM win WHERE n >= $threshold),
    hot1 AS (SELECT src_ip, w FROM hot WHERE k = 1),
    hot2 AS (SELECT src_ip, w FROM hot WHERE k = 2),
    hf AS (
        SELECT f.* FROM f
        LEFT JOIN hot1 ON hot1.src_ip = f.src_ip AND hot1.w = f.w1
        LEFT JOIN hot2 ON hot2.src_ip = f.src_ip AND hot2.w = f.w2
        WHERE hot1.w IS NOT NULL OR hot2.w IS NOT NULL
    ),
    -- Onset: the first of `run` first-contacts (hosts this source never reached before) made
    -- at the detection rate or faster. Scans reach new hosts in bursts; a PC's usual SMB to
    -- its file servers is not new, so it cannot pull the start of a scan back by minutes.
    firsts AS (
        SELECT src_ip, dst_ip, min(ts) AS ts FROM f
        WHERE src_ip IN (SELECT src_ip FROM hot) GROUP BY src_ip, dst_ip
    ),
    runs AS (
        SELECT src_ip, ts, max(ts) OVER w - ts AS span, count(*) OVER w AS k
        FROM firsts
        WINDOW w AS (PARTITION BY src_ip ORDER BY ts, dst_ip ROWS BETWEEN CURRENT ROW AND {run - 1} FOLLOWING)
    ),
    onset AS (
        SELECT src_ip, min(ts) AS onset FROM runs
        WHERE k = {run} AND span <= INTERVAL {run_seconds} SECOND
        GROUP BY src_ip
    ),
    agg AS (
        SELECT src_ip, min(ts) AS window_start, max(ts) AS last_seen, count(*) AS sessions,
               avg(CASE WHEN failed THEN 1.0 ELSE 0.0 END) AS failed_ratio,
               min_by({{'evidence_id': evidence_id, 'line': line}}, (ts, line), {EVIDENCE_PER_FINDING}) AS ev
        FROM hf GROUP BY src_ip
    ),
    total AS (SELECT src_ip, count(*) AS total_targets FROM firsts GROUP BY src_ip),
    peak AS (SELECT src_ip, max(n) AS max_targets FROM hot GROUP BY src_ip)
    SELECT agg.*, greatest(coalesce(onset.onset, agg.window_start), agg.window_start) AS first_seen,
           total.total_targets, peak.max_targets
    FROM agg JOIN total USING (src_ip) JOIN peak USING (src_ip) LEFT JOIN onset USING (src_ip)
    ORDER BY first_seen
    """
    return case.query(sql, {"failed": failed, "ports": ports, "threshold": int(cfg["min_distinct_targets"])})


def signature_spec(name: str | None, sig_id: str | None) -> dict[str, Any] | None:
    """The knowledge entry a sensor's signature name or id belongs to, if any."""
    for spec in load("network_signatures")["signatures"]:
        if name and re.search(spec["match"], name, re.IGNORECASE):
            return spec
        if sig_id and any(sig_id == i for ids in spec["ids"].values() for i in ids):
            return spec
    return None


Matched = tuple[list[dict[str, Any]], str, dict[str, Any]]


def _matched_alerts(case: Case) -> Matched:
    """The knowledge specs, and a CTE `w` of the (signature, id) pairs that match one of them."""
    specs = load("network_signatures")["signatures"]
    pairs = []
    for row in case.query("SELECT DISTINCT signature, signature_id FROM net_alerts"):
        spec = signature_spec(row["signature"], row["signature_id"])
        if spec:
            pairs.append((row["signature"], row["signature_id"], specs.index(spec)))
    cte = """w AS (SELECT unnest($names::VARCHAR[]) AS signature, unnest($ids::VARCHAR[]) AS signature_id,
                      unnest($rules::INTEGER[]) AS rule),
             m AS (SELECT a.*, w.rule, coalesce(a.signature, a.signature_id) AS sig FROM net_alerts a
                   JOIN w ON a.signature IS NOT DISTINCT FROM w.signature
                         AND a.signature_id IS NOT DISTINCT FROM w.signature_id)"""
    params = {"names": [p[0] for p in pairs], "ids": [p[1] for p in pairs], "rules": [p[2] for p in pairs]}
    return specs if pairs else [], cte, params


def exploit_alerts(case: Case, matched: Matched | None = None) -> list[dict[str, Any]]:
    """IPS alerts whose signature (by name or id) is an SMB exploit or implant, per source and signature."""
    specs, cte, params = matched or _matched_alerts(case)
    if not specs:
        return []
    ev = f"min_by({{'evidence_id': evidence_id, 'line': line}}, (ts, line), {EVIDENCE_PER_FINDING}) AS ev"
    rows = case.query(
        f"""WITH {cte}
            SELECT src_ip, sig AS signature, rule, count(*) AS count, count(DISTINCT dst_ip) AS targets,
                   min(ts) AS first_seen, max(ts) AS last_seen, {ev}
            FROM m GROUP BY src_ip, sig, rule ORDER BY first_seen""",
        params,
    )
    for r in rows:
        r["spec"] = specs[r.pop("rule")]
    return rows


def exploit_targets(case: Case, matched: Matched | None = None) -> list[dict[str, Any]]:
    """Hosts that exploit alerts were aimed at, with the first alerts against each."""
    specs, cte, params = matched or _matched_alerts(case)
    if not specs:
        return []
    ev = f"min_by({{'evidence_id': evidence_id, 'line': line}}, (ts, line), {EVIDENCE_PER_FINDING}) AS ev"
    return case.query(
        f"""WITH {cte}
            SELECT dst_ip, rule IN (SELECT unnest($implant::INTEGER[])) AS implant,
                   min_by(sig, ts) AS signature, list(DISTINCT src_ip ORDER BY src_ip)[1:5] AS sources,
                   min(ts) AS first_seen, max(ts) AS last_seen, {ev}
            FROM m WHERE dst_ip IS NOT NULL GROUP BY ALL ORDER BY first_seen""",
        {**params, "implant": [i for i, spec in enumerate(specs) if spec["kind"] == "implant"]},
    )


def findings(case: Case, roles: dict[str, str] | None = None) -> tuple[list[Finding], list[dict[str, Any]]]:
    """Network findings keyed by IP, and the ranked spreader list."""
    cfg = load("network")
    expected_roles = [r.lower() for r in cfg["fanout_expected_roles"]]
    fcfg = cfg["smb_fanout"]
    roles = roles or {}
    out: list[Finding] = []
    spreaders: dict[str, dict[str, Any]] = {}
    for row in smb_fanout(case):
        ip = row["src_ip"]
        failed_pct = round(100 * row["failed_ratio"])
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
        if row["failed_ratio"] >= fcfg["scan_failed_ratio"]:
            rule, sev, title = "net.smb_scan", "high", "finding.smb_scan"
        else:
            if any(r in role.lower() for r in expected_roles):
                rule, sev, title = "net.smb_fanout_expected", "low", "finding.smb_fanout_expected"
            else:
                rule, sev, title = "net.smb_fanout", "medium", "finding.smb_fanout_ok"
        out.append(
            Finding(
                rule,
                ip,
                sev,
                "T1046",
                title,
                params,
                row["first_seen"],
                row["last_seen"],
                evidence_refs("flows", row["ev"]),
                ip=ip,
            )
        )
        spreaders[ip] = {
            "src": ip,
            "first_seen": row["first_seen"],
            "last_seen": row["last_seen"],
            "distinct_targets": row["total_targets"],
            "max_targets_per_window": row["max_targets"],
            "failed_ratio": round(row["failed_ratio"], 3),
            "exploit_alerts": 0,
            "scanning": sev == "high",
        }
    matched = _matched_alerts(case)  # one look at the signatures serves sources and targets
    for row in exploit_alerts(case, matched):
        ip, spec = row["src_ip"], row["spec"]
        params = {
            "signature": row["signature"],
            "count": row["count"],
            "targets": row["targets"],
            "kind": spec["kind"],
            "cve": ", ".join(spec["cve"]),
            "family": spec["name"],
        }
        out.append(
            Finding(
                f"net.{spec['kind']}_source",
                ip,
                spec["severity"],
                spec["attack"],
                "finding.exploit_source",
                params,
                row["first_seen"],
                row["last_seen"],
                evidence_refs("net_alerts", row["ev"]),
                ip=ip,
            )
        )
        s = spreaders.setdefault(
            ip,
            {
                "src": ip,
                "first_seen": row["first_seen"],
                "last_seen": row["last_seen"],
                "distinct_targets": 0,
                "max_targets_per_window": 0,
                "failed_ratio": None,
                "exploit_alerts": 0,
                "scanning": False,
            },
        )
        s["exploit_alerts"] += row["count"]
        s["first_seen"] = min(s["first_seen"], row["first_seen"])
        s["last_seen"] = max(s["last_seen"], row["last_seen"])
    for t in exploit_targets(case, matched):
        # An implant that answers (or is driven) lives on the target: that host is compromised.
        # Any other exploit traffic only says someone tried; the target's own evidence decides.
        rule, sev, title = (
            ("net.implant_present", "critical", "finding.implant_present")
            if t["implant"]
            else ("net.exploit_target", "low", "finding.exploit_target")
        )
        out.append(
            Finding(
                rule,
                t["dst_ip"],
                sev,
                "T1210",
                title,
                {"signature": t["signature"], "sources": ", ".join(t["sources"])},
                t["first_seen"],
                t["last_seen"],
                evidence_refs("net_alerts", t["ev"]),
                ip=t["dst_ip"],
            )
        )
    ranked = sorted(
        (s for s in spreaders.values() if s["scanning"] or s["exploit_alerts"]),
        key=lambda s: (-(s["exploit_alerts"] > 0), -(s["scanning"]), s["first_seen"] or datetime.max),
    )
    return out, ranked
