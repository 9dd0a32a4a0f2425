"""`tasklist` default table, `/v`, `/svc` and `/fo csv` (with or without `/v`, `/nh`).

Tables are sliced by the `=====` ruler measured in console cells, because zh-CN headers
are shorter in characters than the ruler and Chinese values take two cells each; `/v`
rows re-synchronise on the CPU-time token, which overflows its column on long-running
hosts (formats.md section 2).
"""

from __future__ import annotations

import csv
import re
from typing import Any

from wormhunt.model import PROCESSES
from wormhunt.sources.base import INT32_MAX, Sink, to_int
from wormhunt.sources.text import Labels, display_width, is_prompt, iter_lines, normalize_label, not_available

_LABELS = Labels("tasklist")
_EMPTY = {normalize_label(m) for m in Labels("tasklist_empty")._map}
_RULER = re.compile(r"^=+( +=+)+\s*$")
_CPU = re.compile(r"(?:^|\s)(\d+:\d{2}:\d{2})(?=\s|$)")
_DEFAULT_COLUMNS = {
    5: ["name", "pid", "session_name", "session", "mem"],
    9: ["name", "pid", "session_name", "session", "mem", "status", "user", "cpu_time", "window_title"],
    3: ["name", "pid", "services"],
}


def _is_empty_message(line: str) -> bool:
    return normalize_label(line) in _EMPTY


def _csv_header(line: str) -> list[str] | None:
    try:
        cells = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return None
    names = [_LABELS.get(c) for c in cells]
    if "name" in names and "pid" in names:
        return [n or f"_{i}" for i, n in enumerate(names)]
    return None


def sniff(head: str) -> float:
    lines = [line for _, line in iter_lines(head) if line.strip()][:12]
    for i, line in enumerate(lines):
        if _csv_header(line):
            return 0.95
        if _RULER.match(line) and i > 0:
            names = {_LABELS.get(c) for c in _columns(_cells(lines[i - 1]), _spans(line))}
            if {"name", "pid"} <= names:
                return 0.95
        if _is_empty_message(line):
            return 0.6
    # `/fo csv /nh`: quoted rows whose second field is a PID.
    quoted = [ln for ln in lines if re.match(r'^"[^"]+","\d+",', ln)]
    return 0.6 if len(quoted) >= 3 else 0.0


def _int(text: str | None, limit: int = INT32_MAX) -> int | None:
    """`12,345 K` / `150 000 Ko` -> 12345: the ASCII digits, within the column's range."""
    return to_int(re.sub(r"[^0-9]", "", text or ""), limit)


def _record(no: int, fields: dict[str, str], source: str) -> dict[str, Any]:
    def val(key: str) -> str | None:
        v = fields.get(key)
        return None if not_available(v) else v.strip()

    services = val("services")
    return {
        "line": no,
        "pid": _int(fields.get("pid")),
        "ppid": None,
        "name": (fields.get("name") or "").strip() or None,
        "image_path": None,
        "command_line": None,
        "session_name": val("session_name"),
        "session": _int(val("session")),
        "mem_kb": _int(val("mem"), 2**62),
        "status": val("status"),
        "user": val("user"),
        "cpu_time": val("cpu_time"),
        "window_title": val("window_title"),
        "services": [s.strip() for s in services.split(",") if s.strip()] if services else None,
        "created": None,
        "source": source,
    }


def _parse_csv(lines: list[tuple[int, str]], sink: Sink) -> None:
    columns: list[str] | None = None
    for no, line in lines:
        if not line.strip() or is_prompt(line) or _is_empty_message(line):
            continue
        header = _csv_header(line)
        if header:
            columns = header
            continue
        try:
            cells = next(csv.reader([line]))
        except (csv.Error, StopIteration):
            sink.skip(no, "bad CSV row", line)
            continue
        cols = columns or _DEFAULT_COLUMNS.get(len(cells))
        if cols is None or len(cells) != len(cols):
            sink.skip(no, "wrong number of CSV fields", line)
            continue
        fields = dict(zip(cols, cells, strict=True))
        if to_int(fields.get("pid")) is None:
            sink.skip(no, "bad PID", line)
            continue
        source = "tasklist-v" if "status" in cols else "tasklist-svc" if "services" in cols else "tasklist"
        sink.row(PROCESSES, _record(no, fields, source + "-csv"))


def _spans(ruler: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"=+", ruler)]


def _cells(line: str) -> list[tuple[int, str]]:
    """(display column, character) for each character of a table row."""
    out, col = [], 0
    for ch in line:
        out.append((col, ch))
        col += display_width(ch)
    return out


def _slice(cells: list[tuple[int, str]], start: int, end: int | None) -> str:
    return "".join(ch for col, ch in cells if col >= start and (end is None or col < end))


def _columns(cells: list[tuple[int, str]], spans: list[tuple[int, int]]) -> list[str]:
    """Text of each ruler column: from its start to the start of the next one."""
    out = []
    for i, (start, _) in enumerate(spans):
        nxt = spans[i + 1][0] if i + 1 < len(spans) else None
        out.append(_slice(cells, start, nxt))
    return out


def _parse_table(lines: list[tuple[int, str]], sink: Sink) -> None:
    header: list[str | None] | None = None
    spans: list[tuple[int, int]] = []
    prev = ""
    last: dict[str, Any] | None = None

    def emit() -> None:
        nonlocal last
        if last is not None:
            sink.row(PROCESSES, last)
            last = None

    for no, line in lines:
        if not line.strip():
            continue
        if _RULER.match(line):
            emit()
            spans = _spans(line)
            header = [_LABELS.get(c) for c in _columns(_cells(prev), spans)]
            if "name" not in header:
                header = _DEFAULT_COLUMNS.get(len(spans))  # header lost: assume the usual layout
            continue
        if header is None or _is_empty_message(line) or is_prompt(line):
            prev = line
            continue
        cells = _cells(line)
        values = _columns(cells, spans)
        if _LABELS.get(values[0]) == "name":
            prev = line  # the header of the next concatenated listing
            continue
        if "services" in header and last is not None and not values[0].strip() and not values[1].strip():
            # `/svc` continuation line: more services of the row above.
            last["services"] = (last["services"] or []) + [s.strip() for s in line.split(",") if s.strip()]
            continue
        fields = {key or f"_{i}": v for i, (key, v) in enumerate(zip(header, values, strict=False))}
        if "user" in header:
            # Re-synchronise on the CPU time: it overflows its column, user names and titles have spaces.
            user_at = spans[header.index("user")][0]
            tail = _slice(cells, user_at, None)
            m = _CPU.search(tail)
            if m:
                fields["user"] = tail[: m.start()]
                fields["cpu_time"] = m.group(1)
                fields["window_title"] = tail[m.end() :]
        if to_int(fields.get("pid")) is None or not fields.get("name", "").strip():
            sink.skip(no, "not a tasklist row", line)
            prev = line
            continue
        if not values[-1].strip():
            # Every row fills its last column (memory, services, window title or `N/A`): a row
            # that stops short was cut off, and what it has (even the PID) may be partial.
            sink.skip(no, "truncated row", line)
            prev = line
            continue
        emit()
        kind = "-v" if "status" in header else "-svc" if "services" in header else ""
        last = _record(no, fields, "tasklist" + kind)
    emit()


def parse(text: str, sink: Sink) -> None:
    """Parse tasklist output (table or CSV, any language in the dictionary) into `processes`."""
    lines = list(iter_lines(text))
    first = next((line for _, line in lines if line.strip() and not is_prompt(line)), "")
    if first.startswith('"'):
        _parse_csv(lines, sink)
    else:
        _parse_table(lines, sink)
