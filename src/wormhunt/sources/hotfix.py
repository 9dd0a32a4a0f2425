"""Installed updates from `wmic qfe` (table, `list full`, `/format:csv`) and `Get-HotFix` /
`Get-WmiObject Win32_QuickFixEngineering` (table, list and CSV) -> `hotfixes` rows (formats.md 6.4, 6.5).

Property names are not localized, so the headers are English on every host. The KB number
is taken with systeminfo's regex, so both sources agree on what a KB is; the raw HotFixID
is kept beside it (XP/2003 list items such as `File 1` or `Q147222`).
"""

from __future__ import annotations

import re

from wormhunt.model import HOTFIXES
from wormhunt.sources.base import Format, Sink
from wormhunt.sources.filelist import _PS_RULER, csv_cells, csv_header, is_ps_truncated, ps_cells, ps_spans
from wormhunt.sources.systeminfo import _KB
from wormhunt.sources.text import display_width, is_prompt, iter_lines

_EMPTY = re.compile(r"^\s*No Instance\(s\) Available\.?\s*$", re.IGNORECASE)
_LIST = re.compile(r"^(?P<key>[A-Za-z]\w*)=(?P<value>.*)$")  # wmic qfe list full
_PS_LIST = re.compile(r"^(?P<key>[A-Za-z_]\w*)\s*:(?:\s+(?P<value>.*))?$")  # Get-HotFix | Format-List


def _token_starts(line: str) -> list[int]:
    """Display cell where each whitespace-separated token of a wmic header starts."""
    starts, col, prev_space = [], 0, True
    for ch in line:
        if not ch.isspace() and prev_space:
            starts.append(col)
        prev_space = ch.isspace()
        col += display_width(ch)
    return starts


def _wmic_csv_header(line: str) -> list[str] | None:
    cells = [c.strip() for c in line.split(",")]
    return cells if len(cells) >= 2 and cells[0] == "Node" and "HotFixID" in cells else None


# Win32_QuickFixEngineering properties (plus Get-HotFix's Source): a table header holds only these.
_QFE_PROPS = {
    p.casefold()
    for p in [
        "Caption",
        "CSName",
        "Description",
        "FixComments",
        "HotFixID",
        "InstallDate",
        "InstalledBy",
        "InstalledOn",
        "Name",
        "ServicePackInEffect",
        "Status",
        "Source",
        "PSComputerName",
        "ClassPath",
    ]
}


def _is_table_header(line: str) -> bool:
    tokens = line.split()
    return "HotFixID" in tokens and all(t.casefold() in _QFE_PROPS for t in tokens)


def sniff_wmic(head: str) -> float:
    lines = [line for _, line in iter_lines(head) if line.strip()][:20]
    for i, line in enumerate(lines):
        if _wmic_csv_header(line):
            return 0.95
        if _is_table_header(line) and not (i + 1 < len(lines) and _PS_RULER.match(lines[i + 1])):
            return 0.9
        if line.startswith("HotFixID=") and any(ln.startswith(("Caption=", "CSName=")) for ln in lines):
            return 0.9
    return 0.0


def sniff_gethotfix(head: str) -> float:
    lines = [line for _, line in iter_lines(head) if line.strip()][:20]
    for i, line in enumerate(lines):
        if line.startswith('"') and csv_header(line, {"HotFixID"}):
            return 0.95
        if _is_table_header(line) and i + 1 < len(lines) and _PS_RULER.match(lines[i + 1]):
            return 0.95
        if (m := _PS_LIST.match(line)) and m.group("key") == "HotFixID":
            return 0.85
    return 0.0


def _emit(no: int, hotfix_id: str | None, line: str, source: str, sink: Sink) -> None:
    raw = (hotfix_id or "").strip()
    if not raw:
        sink.skip(no, "row without a HotFixID (cut short?)", line)
        return
    if is_ps_truncated(raw):
        sink.skip(no, "HotFixID cut short by the console table", line)
        return
    kb = _KB.search(raw)
    sink.row(HOTFIXES, {"line": no, "hotfix": kb.group(0).upper() if kb else raw, "raw": raw, "source": source})


def parse(text: str, sink: Sink) -> None:
    """Parse wmic qfe / Get-HotFix output (any of their layouts, concatenated too) into `hotfixes`."""
    numbered = list(iter_lines(text))
    mode: str | None = None  # wmic-table, wmic-csv, wmic-list, ps-table, ps-csv, ps-list
    cols: list[str] = []
    starts: list[int] = []
    skip_ruler = False
    for i, (no, line) in enumerate(numbered):
        if skip_ruler:
            skip_ruler = False
            continue
        if not line.strip() or is_prompt(line) or line.startswith("#TYPE") or _EMPTY.match(line):
            continue
        if (header := _wmic_csv_header(line)) is not None:
            mode, cols = "wmic-csv", header
            continue
        if line.startswith('"') and (header := csv_header(line, {"HotFixID"})) is not None:
            mode, cols = "ps-csv", header
            continue
        # A lone `HotFixID` is the header of `wmic qfe get HotFixID`, but inside a list it is a cut line.
        if _is_table_header(line) and (len(line.split()) > 1 or mode not in ("ps-list", "wmic-list")):
            nxt = numbered[i + 1][1] if i + 1 < len(numbered) else ""
            if _PS_RULER.match(nxt):
                mode, starts, skip_ruler = "ps-table", ps_spans(nxt), True
                cols = ps_cells(line, starts)
            else:
                mode, starts = "wmic-table", _token_starts(line)
                cols = ps_cells(line, starts)
            continue
        if (m := _LIST.match(line)) is not None:
            mode = "wmic-list"
            if m.group("key") == "HotFixID":
                _emit(no, m.group("value"), line, "wmic qfe", sink)
            continue
        if (m := _PS_LIST.match(line)) is not None and mode in (None, "ps-list"):
            mode = "ps-list"
            if m.group("key") == "HotFixID":
                _emit(no, m.group("value"), line, "Get-HotFix", sink)
            continue
        if mode in ("wmic-table", "ps-table"):
            cells = ps_cells(line, starts)
            at = starts[cols.index("HotFixID")]
            if display_width(line) <= at:
                sink.skip(no, "row cut short before the HotFixID column", line)
                continue
            _emit(no, cells[cols.index("HotFixID")], line, "wmic qfe" if mode == "wmic-table" else "Get-HotFix", sink)
        elif mode in ("wmic-csv", "ps-csv"):
            # wmic does not quote its CSV; PowerShell does.
            cells = line.split(",") if mode == "wmic-csv" else csv_cells(line)
            if cells is None or len(cells) != len(cols):
                sink.skip(no, "wrong number of CSV fields", line)
                continue
            value = cells[cols.index("HotFixID")]
            _emit(no, value, line, "wmic qfe" if mode == "wmic-csv" else "Get-HotFix", sink)
        else:
            sink.skip(no, "not a hotfix line", line)


FORMATS: tuple[Format, ...] = (
    Format("wmic-qfe", "wmic qfe (table, list full, /format:csv)", sniff_wmic, parse_text=parse),
    Format(
        "Get-HotFix", "Get-HotFix / Win32_QuickFixEngineering (table, list, CSV)", sniff_gethotfix, parse_text=parse
    ),
)
