"""The investigation as one JSON-ready document (the `--json` output and the console's source).

Finding titles are rendered in the chosen language; evidence references are resolved to the
file, its sha256, the line number and the line's text, so every statement can be checked.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from wormhunt.analyze import Investigation
from wormhunt.i18n import t
from wormhunt.model import EvidenceRef, Finding
from wormhunt.store import Case
from wormhunt.timeparse import iso


def _iso(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


class EvidenceResolver:
    """Looks up file, hash and text for evidence references, a batch at a time."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.files = {r["evidence_id"]: r for r in case.query("SELECT evidence_id, path, sha256, format FROM evidence")}
        self._offsets: dict[tuple[str, int, int], int | None] = {}
        self._digests: dict[tuple[str, int, int], str] = {}

    def prefetch(self, refs: list[EvidenceRef]) -> None:
        by_kind: dict[str, list[EvidenceRef]] = defaultdict(list)
        for r in refs:
            if r.kind in ("flows", "net_alerts"):
                by_kind[r.kind].append(r)
        for kind, items in by_kind.items():
            what = "action" if kind == "flows" else "signature"
            rows = self.case.query(
                f"""SELECT f.evidence_id, f.line, f."offset", f.ts, f.src_ip, f.dst_ip, f.dst_port, f.{what} AS what
                    FROM {kind} f
                    JOIN (SELECT unnest(?::INTEGER[]) AS e, unnest(?::BIGINT[]) AS l) k
                      ON f.evidence_id = k.e AND f.line = k.l""",
                [[r.evidence_id for r in items], [r.line for r in items]],
            )
            for row in rows:
                key = (kind, row["evidence_id"], row["line"])
                self._offsets[key] = row["offset"]
                self._digests[key] = (
                    f"{iso(row['ts'])} {row['src_ip']} -> {row['dst_ip']}:{row['dst_port']} {row['what'] or ''}".strip()
                )

    def resolve(self, ref: EvidenceRef) -> dict[str, Any]:
        info = self.files.get(ref.evidence_id, {})
        offset = self._offsets.get((ref.kind, ref.evidence_id, ref.line))
        return {
            "kind": ref.kind,
            "evidence_id": ref.evidence_id,
            "file": info.get("path"),
            "sha256": info.get("sha256"),
            "line": ref.line,
            "text": self.case.evidence_line(ref.evidence_id, ref.line, offset),
            "digest": self._digests.get((ref.kind, ref.evidence_id, ref.line)),
        }


def finding_dict(f: Finding, lang: str, resolver: EvidenceResolver) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "severity": f.severity,
        "attack": f.attack,
        "title": t(f.title, lang, **f.params),
        "params": {k: _iso(v) for k, v in f.params.items()},
        "first_seen": _iso(f.first_seen),
        "last_seen": _iso(f.last_seen),
        "evidence": [resolver.resolve(r) for r in f.evidence],
    }


def spreader_dict(s: dict[str, Any], lang: str) -> dict[str, Any]:
    """A spreader row for output: times as ISO text, reasons in the output language."""
    out = {k: _iso(v) for k, v in s.items() if k != "reasons"}
    out["reasons"] = [t(key, lang, **params) for key, params in s.get("reasons", [])]
    return out


def build(case: Case, inv: Investigation, lang: str, entries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The JSON document for `investigate` and `demo`."""
    resolver = EvidenceResolver(case)
    resolver.prefetch([r for f in inv.findings for r in f.evidence])
    hosts = []
    for view in sorted(inv.hosts.values(), key=lambda h: (["infected", "suspicious", "clean"].index(h.status), h.host)):
        family, confidence = inv.family_of(view.host)
        hosts.append(
            {
                "host": view.host,
                "ip": view.ip,
                "ips": view.ips,
                "status": view.status,
                "family": family,
                "confidence": None if confidence is None else round(confidence, 3),
                "families": [m.to_json(lang) for m in inv.families.get(view.host, [])],
                "first_seen": _iso(view.first_seen()),
                "role": view.asset.get("role"),
                "os": view.os or view.asset.get("os"),
                "owner": view.asset.get("owner"),
                "av_installed": view.asset.get("av_installed"),
                "av_forbidden": view.asset.get("av_forbidden"),
                "findings": [finding_dict(f, lang, resolver) for f in view.findings],
            }
        )
    spreaders = [spreader_dict(s, lang) for s in inv.spreaders]
    pz = inv.patient_zero
    patient_zero = None
    if pz:
        patient_zero = {k: _iso(v) for k, v in pz.items() if k != "evidence"}
        patient_zero["evidence"] = [resolver.resolve(r) for r in pz["evidence"]]
    counts = {s: sum(1 for h in hosts if h["status"] == s) for s in ("infected", "suspicious", "clean")}
    manifest = entries if entries is not None else case.manifest()
    return {
        "case": str(case.root),
        "lang": lang,
        "summary": {"hosts": len(hosts), **counts},
        "patient_zero": patient_zero,
        "spread": inv.spread.to_json() if inv.spread else None,
        "spreaders": spreaders,
        "fanout_not_ranked": [spreader_dict(s, lang) for s in inv.fanout_not_ranked],
        "hosts": hosts,
        "evidence": {
            "files": len(manifest),
            "records": sum(e.get("records", 0) for e in manifest),
            "skipped": sum(e.get("skipped", 0) for e in manifest),
            # A host's command that printed nothing (File Not Found, no portproxy) is counted, not
            # listed as a problem: a clean fleet has one such file per host.
            "empty": sum(1 for e in manifest if e.get("status") == "empty" and e.get("host")),
            "problems": [
                {k: e.get(k) for k in ("path", "status", "message", "format", "skipped", "skip_reasons")}
                for e in manifest
                if (e.get("status") not in ("ingested", "duplicate") or e.get("skipped"))
                and not (e.get("status") == "empty" and e.get("host"))
            ],
        },
    }
