"""The indicators a case confirmed: those that matched on hosts with a family verdict, plus
the hashes of the files they matched (what another team can block or hunt for), ready for
the STIX and MISP exporters."""

from __future__ import annotations

from collections.abc import Iterable

from wormhunt.intel.families import Indicator
from wormhunt.intel.match import FAMILY_MIN, FamilyMatch
from wormhunt.store import Case

_HASHED = ("files", "autoruns")  # record kinds that carry a file's hashes


def confirmed_indicators(case: Case, matches: Iterable[list[FamilyMatch]]) -> list[Indicator]:
    """Matched indicators of families at or above the verdict bar, once each, and the md5,
    sha1 and sha256 of the files behind them (inferred indicators: confidence `I`)."""
    out: dict[tuple[str, str, str, str], Indicator] = {}
    refs: dict[tuple[str, int, int], Indicator] = {}
    for fams in matches:
        for m in fams:
            if m.confidence < FAMILY_MIN:
                continue
            for hit in m.hits:
                ind = hit.indicator
                out.setdefault((ind.family, ind.type, ind.match, ind.value.casefold()), ind)
                for ref in hit.evidence:
                    if ref.kind in _HASHED:
                        refs.setdefault((ref.kind, ref.evidence_id, ref.line), ind)
    for (kind, eid, line), ind in sorted(refs.items()):
        cols = "md5, sha1, sha256" if kind == "files" else "NULL AS md5, NULL AS sha1, sha256"
        rows = case.query(f"SELECT {cols} FROM {kind} WHERE evidence_id = ? AND line = ?", [eid, line])
        for row in rows:
            for htype in ("md5", "sha1", "sha256"):
                value = (row[htype] or "").lower()
                key = (ind.family, htype, "exact", value)
                if value and key not in out:
                    out[key] = Indicator(
                        family=ind.family,
                        id=f"{ind.id}.{htype}.{value[:12]}",
                        type=htype,
                        value=value,
                        weight=ind.weight,
                        confidence="I",
                        source=ind.source,
                    )
    return list(out.values())
