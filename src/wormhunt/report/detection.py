"""The `detect` document: ranked spreaders with reasons, canonical alerts with their
evidence lines, alert chains per target and worm hops, from any engine's rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wormhunt.analyze.network import Results, findings_from, when
from wormhunt.analyze.verdict import Identity
from wormhunt.model import EvidenceRef
from wormhunt.report.summary import EvidenceResolver, finding_dict, spreader_dict
from wormhunt.store import Case
from wormhunt.timeparse import iso

STAGES = ("scan", "probe", "exploit", "implant")


def read_allow_list(path: Path | None) -> set[str]:
    """Addresses whose fan-out is expected: one per line, `#` comments, CSV first column."""
    if path is None:
        return set()
    out = set()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        value = line.split("#", 1)[0].split(",", 1)[0].strip()
        if value:
            out.add(value)
    return out


def build_detection(
    case: Case, results: Results, engine: dict[str, Any], lang: str, allow: set[str] | None = None
) -> dict[str, Any]:
    identity = Identity(case)
    found, ranked, shown = findings_from(results, identity.role_by_ip(), allow)
    resolver = EvidenceResolver(case)
    refs = [EvidenceRef("net_alerts", int(p["evidence_id"]), int(p["line"])) for p in results["alert_pairs"]]
    resolver.prefetch(refs + [r for f in found for r in f.evidence])

    def spreader(s: dict[str, Any]) -> dict[str, Any]:
        return {**spreader_dict(s, lang), "host": identity.host_of(s["src"])}

    alerts = [
        {
            "kind": p["kind"],
            "src": p["src_ip"],
            "dst": p["dst_ip"] or None,
            "ts": iso(when(p["first_seen_s"])),
            "last_seen": iso(when(p["last_seen_s"])),
            "count": p["count"],
            "signature": p["sig"],
            "evidence": resolver.resolve(ref),
        }
        for p, ref in zip(results["alert_pairs"], refs, strict=True)
    ]
    chains = []
    for c in results["chains"]:
        seen = sorted((c[f"{k}_s"], STAGES.index(k), k) for k in STAGES if c[f"{k}_s"] is not None)
        chains.append(
            {
                "dst": c["dst_ip"],
                "host": identity.host_of(c["dst_ip"]),
                "stages": {k: iso(when(c[f"{k}_s"])) for k in STAGES},
                "chain": [k for _, _, k in seen],
                "compromised": c["implant_s"] is not None,
            }
        )
    hops = [
        {
            "infector": h["infector"],
            "host": h["host"],
            "host_name": identity.host_of(h["host"]),
            "infected_at": iso(when(h["infected_s"])),
            "spreading_at": iso(when(h["spreading_s"])),
        }
        for h in results["hops"]
    ]
    return {
        "case": str(case.root),
        "lang": lang,
        "engine": engine,
        "spreaders": [spreader(s) for s in ranked],
        "fanout_not_ranked": [spreader(s) for s in shown],
        "alerts": alerts,
        "chains": chains,
        "hops": hops,
        "findings": [{**finding_dict(f, lang, resolver), "ip": f.ip} for f in found],
    }
