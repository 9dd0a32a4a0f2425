"""`wmic process get ... /format:csv`: blank first line, `Node` then alphabetical columns,
and no escaping at all, so commas inside a command line split it into extra fields
(formats.md section 3.1). The fixed-shape columns are read from both ends of the row
and whatever is left in the middle is the command line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from wormhunt.model import PROCESSES
from wormhunt.sources.base import Sink, to_int
from wormhunt.sources.text import Labels, is_prompt, iter_lines
from wormhunt.timeparse import from_cim

_LABELS = Labels("wmic_process")
_CIM = re.compile(r"^\d{14}\.\d{6}[+-]\d{3}$")
# Anchored: wmic prints these on a line of their own, while a process row starts with its
# Node; unanchored, a command line containing "ERROR:" would hide its process.
_ERROR = re.compile(r"^\s*(?:Invalid (?:XSL format|XML content)|No Instance\(s\) Available|ERROR:)", re.IGNORECASE)
_MARKER = re.compile(r"^\[wmic [\w ]+\]$")  # Checkmk agent section markers
# Columns that can hold commas; CommandLine is the one that absorbs extra fields.
_FREE = {"CommandLine", "Description", "Caption"}


def _header(line: str) -> list[str] | None:
    cells = [c.strip() for c in line.split(",")]
    if len(cells) >= 2 and cells[0] == "Node" and "ProcessId" in cells:
        return cells
    return None


def sniff(head: str) -> float:
    for _, line in list(iter_lines(head))[:10]:
        if _header(line):
            return 0.95
    return 0.0


def _valid(col: str, value: str) -> bool:
    if col in ("ProcessId", "ParentProcessId"):
        return to_int(value) is not None
    if col == "CreationDate":
        return value == "" or bool(_CIM.match(value))
    if col == "ExecutablePath":
        return "," not in value
    return True


def split_row(cols: list[str], fields: list[str]) -> dict[str, str] | None:
    """Map fields to columns, re-joining the command line; None when it cannot be done safely."""
    if len(fields) == len(cols):
        row = dict(zip(cols, fields, strict=True))
        return row if all(_valid(c, v) for c, v in row.items()) else None
    if len(fields) < len(cols) or "CommandLine" not in cols:
        return None
    free_others = [c for c in cols if c in _FREE and c != "CommandLine"]
    if free_others:
        return None  # two free-text columns: the split point cannot be known
    idx = cols.index("CommandLine")
    tail = len(cols) - idx - 1
    left = fields[:idx]
    right = fields[len(fields) - tail :] if tail else []
    middle = ",".join(fields[idx : len(fields) - tail])
    row = dict(zip(cols[:idx], left, strict=True))
    row["CommandLine"] = middle
    row.update(zip(cols[idx + 1 :], right, strict=True))
    return row if all(_valid(c, v) for c, v in row.items()) else None


def csv_rows(
    text: str,
    sink: Sink,
    header: Callable[[str], list[str] | None],
    split: Callable[[list[str], list[str]], dict[str, str] | None],
    unsplittable: str,
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) of every data row of a `wmic ... /format:csv` output: prompts, Checkmk markers
    and blank lines are passed over, the header is found by `header` (and may repeat), error
    messages and rows `split` cannot map are skipped with their reason."""
    cols: list[str] | None = None
    for no, line in iter_lines(text):
        if not line.strip() or is_prompt(line) or _MARKER.match(line):
            continue
        found = header(line)
        if found:
            cols = found
            continue
        if _ERROR.match(line):
            sink.skip(no, "wmic error message", line)
            continue
        if cols is None:
            sink.skip(no, "row before the CSV header", line)
            continue
        row = split(cols, line.split(","))
        if row is None:
            sink.skip(no, unsplittable, line)
            continue
        yield no, row


def parse(text: str, sink: Sink) -> None:
    """Parse wmic process CSV into `processes` rows (image path and command line included)."""
    reason = "cannot split row (commas in more than one column, or cut short)"
    for no, row in csv_rows(text, sink, _header, split_row, reason):
        sink.row(PROCESSES, _record(no, row))


def _record(no: int, row: dict[str, str]) -> dict[str, Any]:
    def val(key: str) -> str | None:
        v = row.get(key)
        return v.strip() if v and v.strip() else None

    pid, ppid = val("ProcessId"), val("ParentProcessId")
    return {
        "line": no,
        "host": val("Node"),
        "pid": to_int(pid),
        "ppid": to_int(ppid),
        "name": val("Name") or val("Caption") or val("Description"),
        "image_path": val("ExecutablePath"),
        "command_line": row.get("CommandLine") or None,
        "session_name": None,
        "session": to_int(row.get("SessionId")),
        "mem_kb": None,
        "status": None,
        "user": None,
        "cpu_time": None,
        "window_title": None,
        "services": None,
        "created": from_cim(val("CreationDate")),
        "source": "wmic",
    }
