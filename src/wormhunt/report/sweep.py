"""The fleet view of a sweep: one verdict row per host (infected with family and confidence,
suspicious, clean, or unreachable with the reason), as a table, CSV or JSON, plus the spread."""

from __future__ import annotations

import csv
import io
from typing import Any

from rich.console import Console
from rich.table import Table

from wormhunt.i18n import t
from wormhunt.report.console import STATUS_STYLE, safe

COLUMNS = ("host", "ip", "verdict", "family", "confidence", "infected_at", "infected_by", "basis", "reason")


def rows(doc: dict[str, Any], unreachable: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Verdict rows from an investigation document (and the hosts a remote sweep could not reach)."""
    spread = doc.get("spread") or {}
    infections = {i["host"]: i for i in spread.get("infections", [])}
    infector = {e["dst"]: e["src"] for e in spread.get("edges", [])}
    out = []
    for h in doc["hosts"]:
        inf = infections.get(h["host"], {})
        top = next((f for f in h["findings"] if f["severity"] in ("critical", "high", "medium")), None)
        out.append(
            {
                "host": h["host"],
                "ip": h["ip"],
                "verdict": h["status"],
                "family": h.get("family"),
                "confidence": h.get("confidence"),
                "infected_at": inf.get("time"),
                "infected_by": infector.get(h["host"]),
                "basis": inf.get("basis"),
                "reason": top["title"] if top else None,
            }
        )
    for u in unreachable or []:
        out.append({**dict.fromkeys(COLUMNS), "host": u["host"], "verdict": "unreachable", "reason": u["reason"]})
    order = {"infected": 0, "suspicious": 1, "unreachable": 2, "clean": 3}
    return sorted(out, key=lambda r: (order.get(r["verdict"], 9), r["infected_at"] or "~", r["host"]))


def to_csv(table: list[dict[str, Any]]) -> str:
    """CSV with every cell quoted (a `;`-separator locale cannot split one) and a cell starting
    with = + - @ prefixed with a quote, so a spreadsheet does not run evidence text as a formula."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n", quoting=csv.QUOTE_ALL)
    w.writeheader()
    for r in table:
        w.writerow({k: _cell(r.get(k)) for k in COLUMNS})
    return buf.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def render(table: list[dict[str, Any]], spread: dict[str, Any] | None, console: Console, lang: str) -> None:
    view = Table(title=t("sweep.title", lang), expand=True)
    for key in ("host", "verdict", "family", "infected_at", "infected_by", "reason"):
        view.add_column(t(f"sweep.col.{key}", lang), ratio=2 if key == "reason" else None)
    for r in table:
        style = STATUS_STYLE.get(r["verdict"], "")
        verdict = t("status." + r["verdict"], lang) if r["verdict"] != "unreachable" else t("sweep.unreachable", lang)
        family = f"{safe(r['family'])} {r['confidence']:.2f}" if r["family"] and r["confidence"] else safe(r["family"])
        view.add_row(
            f"{safe(r['host'])}\n[dim]{safe(r['ip'])}[/]",
            f"[{style}]{verdict}[/]",
            family or "-",
            safe(r["infected_at"]) or "-",
            safe(r["infected_by"]) or "-",
            safe(r["reason"], 160) or "-",
        )
    console.print(view)
    pz = (spread or {}).get("patient_zero")
    if pz:
        console.print(
            t("sweep.patient_zero", lang, host=safe(pz["host"]), at=safe(pz["infected_at"]), reach=pz["reach"])
        )
        if pz.get("infected_from_outside"):
            console.print(t("sweep.from_outside", lang, ip=safe(pz["infected_from_outside"]["ip"])))
