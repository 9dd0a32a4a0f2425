"""Asset inventory CSV (hostname, IP, OS, role, owner, AV installed, vendor forbids AV).

Spreadsheets name their columns freely, in English or Chinese, and are often saved as GBK
by Excel; columns are found by the header dictionary and the rest is ignored.
"""

from __future__ import annotations

import csv
import re

from wormhunt.model import ASSETS
from wormhunt.sources.base import Sink
from wormhunt.sources.text import Labels, iter_lines, normalize_label

_LABELS = Labels("assets")
_TRUTH = Labels("truth_words")


# Optional column: services the business depends on (a plan never stops them), `;`-separated.
_CRITICAL = frozenset(
    {"critical services", "critical_services", "business critical services", "business-critical services",
     "关键服务", "业务关键服务", "关键业务服务"}
)  # fmt: skip


def _label(cell: str) -> str | None:
    if normalize_label(cell) in {normalize_label(c) for c in _CRITICAL}:
        return "critical_services"
    return _LABELS.get(cell)


def _columns(line: str) -> dict[int, str] | None:
    try:
        cells = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return None
    found = {i: name for i, c in enumerate(cells) if (name := _label(c))}
    names = set(found.values())
    return found if {"hostname", "ip"} <= names or ({"ip", "role"} <= names) else None


def sniff(head: str) -> float:
    first = next((ln for ln in head.splitlines() if ln.strip()), "")
    cols = _columns(first)
    return 0.9 if cols and len(cols) >= 3 else 0.5 if cols else 0.0


def truth(value: str | None) -> bool | None:
    if value is None:
        return None
    word = _TRUTH.get(value) if normalize_label(value) else "no"
    return True if word == "yes" else False if word == "no" else None


def parse(text: str, sink: Sink) -> None:
    """Parse an asset inventory into `assets` rows."""
    cols: dict[int, str] | None = None
    for no, line in iter_lines(text):
        if not line.strip():
            continue
        try:
            # strict: an unterminated quote is a broken row, not a host named `x,1.2.3.4`
            cells = next(csv.reader([line], strict=True))
        except (csv.Error, StopIteration):
            sink.skip(no, "bad CSV row", line)
            continue
        if cols is None:
            cols = _columns(line)
            if cols is None:
                sink.skip(no, "no recognisable header", line)
            continue
        rec = {name: (cells[i].strip() if i < len(cells) else "") for i, name in cols.items()}
        if not rec.get("hostname") and not rec.get("ip"):
            sink.skip(no, "row without hostname or IP", line)
            continue
        sink.row(
            ASSETS,
            {
                "line": no,
                "host": rec.get("hostname") or rec.get("ip"),
                "hostname": rec.get("hostname") or None,
                "ip": rec.get("ip") or None,
                "os": rec.get("os") or None,
                "role": rec.get("role") or None,
                "owner": rec.get("owner") or None,
                "av_installed": truth(rec.get("av_installed")),
                "av_forbidden": truth(rec.get("av_forbidden")),
                "critical_services": ";".join(
                    x.strip() for x in re.split(r"[;；]", rec.get("critical_services") or "") if x.strip()
                )
                or None,
            },
        )
