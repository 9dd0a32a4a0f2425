"""PowerShell process listings: `Get-CimInstance` / `Get-WmiObject Win32_Process` piped to
`Export-Csv` / `ConvertTo-Csv` or `ConvertTo-Json` -> `processes` rows (formats.md 3.3, 3.4).

* CSV: optional `#TYPE ...` first line (PS 5.1), then a header; columns are read by name.
  PowerShell quotes every field and doubles embedded quotes, so a real CSV reader is used; a
  quoted value may span lines (a command line with a line break). `-UseCulture` gives `;`.
* JSON: one object (PS 5.1 does not wrap a single object in `[]`) or an array, several
  documents appended with `>>`; the reader is shared with `wmi.py`.
* `CreationDate`: CIM `yyyymmddHHMMSS.ffffff+UUU` (Get-WmiObject), `\\/Date(ms)\\/` (PS 5.1
  JSON, UTC), ISO-8601 (PS 7 JSON, with offset) or culture text (Get-CimInstance CSV). Culture
  text and ISO without offset are host-local: kept as is and flagged with `meta["local_time"]`.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from typing import Any

from wormhunt.model import PROCESSES
from wormhunt.sources.base import Format, Sink, to_int
from wormhunt.sources.filelist import _order
from wormhunt.sources.text import is_prompt, iter_lines
from wormhunt.sources.wmi import _iter_json
from wormhunt.timeparse import from_cim, from_epoch, parse_datetime, parse_iso

# Win32_Process columns besides ProcessId; one of them must be present.
_PROCESS_COLS = {"ParentProcessId", "ExecutablePath", "CommandLine", "CreationDate"}
# Win32_Service also has ProcessId: its columns rule a header out.
_SERVICE_COLS = {"PathName", "StartMode", "ServiceType"}
_DELIMITERS = (",", ";", "\t")
MAX_RECORD_LINES = 50  # a quoted value spanning more lines than this is a stray quote
_MS_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")
_CIM = re.compile(r"^\d{14}\.\d{6}[+-]\d{3}$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T")
_JSON_PID = re.compile(r'"ProcessId"\s*:\s*"?\d')
_JSON_PROCESS = re.compile(r'"(?:ParentProcessId|ExecutablePath|CommandLine|CreationDate)"\s*:')


# ---------------------------------------------------------------- shared


def _creation(value: Any, order: str | None, sink: Sink) -> tuple[Any, bool]:
    """(naive datetime or None, ok). Empty is ok; text that is not a date is not."""
    if isinstance(value, dict) and "value" in value:
        value = value["value"]  # PS 5.1 sometimes wraps a DateTime: {"value": ..., "DateTime": ...}
    if value is None or isinstance(value, (bool, dict, list)):
        return None, value is None
    text = str(value).strip()
    if not text:
        return None, True
    if m := _MS_DATE.match(text):
        if m.group(1).startswith("-"):
            return None, True  # before 1970: DateTime.MinValue, i.e. no date
        dt = from_epoch(m.group(1))
        return dt, dt is not None
    if _CIM.match(text):
        dt = from_cim(text)
        return dt, dt is not None
    if _ISO.match(text):
        dt = parse_iso(text)
        if dt is not None and not re.search(r"(?:Z|[+-]\d{2}:?\d{2})$", text):
            sink.meta["local_time"] = True
        return dt, dt is not None
    parsed = parse_datetime(text, order)
    if parsed.value is not None:
        sink.meta["local_time"] = True  # culture-formatted DateTime: host-local, no zone
        if parsed.ambiguous:
            warnings = sink.meta.setdefault("warnings", [])
            if not any(w.get("code") == "ambiguous_dates" for w in warnings):
                warnings.append({"code": "ambiguous_dates", "order": "month first"})
    return parsed.value, parsed.value is not None


def _dates_order(objects: Iterable[dict[str, Any]]) -> str | None:
    """Day/month order of the file's culture-formatted dates (a part above 12 settles it)."""
    return _order(" ".join(str(o.get("CreationDate") or "") for o in objects))


def _text(props: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = props.get(key)
        if value is None or isinstance(value, (dict, list, bool)):
            continue
        value = str(value).strip()
        if value:
            return value
    return None


def _pid(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    return to_int(str(value))


def _emit(no: int, props: dict[str, Any], source: str, order: str | None, sink: Sink, raw: str) -> None:
    pid = _pid(props.get("ProcessId"))
    if pid is None:
        sink.skip(no, "no valid ProcessId", raw)
        return
    ppid_raw = props.get("ParentProcessId")
    ppid = _pid(ppid_raw)
    if ppid is None and _text(props, "ParentProcessId") is not None:
        sink.skip(no, "bad ParentProcessId", raw)
        return
    created, ok = _creation(props.get("CreationDate"), order, sink)
    if not ok:
        sink.skip(no, "bad CreationDate", raw)
        return
    command = props.get("CommandLine")
    command = command if isinstance(command, str) and command.strip() else None
    sink.row(
        PROCESSES,
        {
            "line": no,
            "host": None,
            "pid": pid,
            "ppid": ppid,
            "name": _text(props, "Name", "ProcessName", "Caption", "Description"),
            "image_path": _text(props, "ExecutablePath", "Path"),
            "command_line": command,
            "session_name": None,
            "session": _pid(props.get("SessionId")),
            "mem_kb": None,
            "status": None,
            "user": _text(props, "Owner", "UserName", "User"),
            "cpu_time": None,
            "window_title": None,
            "services": None,
            "created": created,
            "source": source,
        },
    )


# ---------------------------------------------------------------- CSV


def _header(line: str) -> tuple[list[str], str] | None:
    """(columns, delimiter) when `line` is a Win32_Process CSV header."""
    for delim in _DELIMITERS:
        if delim not in line:
            continue
        try:
            cells = [c.strip() for c in next(csv.reader([line], delimiter=delim))]
        except (csv.Error, StopIteration):
            continue
        names = set(cells)
        if "ProcessId" not in names or not (names & _PROCESS_COLS) or names & _SERVICE_COLS:
            continue
        if cells[0] == "Node" and not line.startswith('"'):
            return None  # wmic /format:csv (unquoted, Node first): wmic.py
        return cells, delim
    return None


def _lines(head: str) -> list[str]:
    return [ln for _, ln in iter_lines(head) if ln.strip() and not is_prompt(ln)][:10]


def sniff_csv(head: str) -> float:
    for line in _lines(head):
        if _header(line.lstrip("\ufeff")):
            return 0.95
    return 0.0


def parse_csv(text: str, sink: Sink) -> None:
    """Parse Export-Csv / ConvertTo-Csv of Win32_Process (`#TYPE` line optional) into `processes`."""
    lines = list(iter_lines(text.lstrip("\ufeff")))
    rows: list[tuple[int, dict[str, str], str]] = []
    cols: list[str] | None = None
    delim = ","
    i = 0
    while i < len(lines):
        no, line = lines[i]
        i += 1
        if not line.strip() or is_prompt(line) or line.startswith("#TYPE"):
            continue
        if header := _header(line):
            cols, delim = header
            continue
        if cols is None:
            sink.skip(no, "row before the CSV header", line)
            continue
        record = line
        if record.count('"') % 2:
            # A quoted value goes on to the next line(s): join until the quotes balance.
            j = i
            while record.count('"') % 2 and j < len(lines) and j - i < MAX_RECORD_LINES:
                record += "\n" + lines[j][1]
                j += 1
            if record.count('"') % 2:
                reason = "unterminated quoted field (cut short)" if j >= len(lines) else "unbalanced quotes"
                sink.skip(no, reason, line)
                continue  # resume at the next physical line
            i = j
        try:
            cells = next(csv.reader([record], delimiter=delim, strict=True))
        except (csv.Error, StopIteration):
            sink.skip(no, "malformed CSV row", line)
            continue
        if len(cells) != len(cols):
            sink.skip(no, "wrong number of CSV fields", line)
            continue
        rows.append((no, dict(zip(cols, cells, strict=True)), line))
    order = _dates_order(props for _, props, _ in rows)
    for no, props, line in rows:
        _emit(no, props, "ps-cim-csv", order, sink, line)


# ---------------------------------------------------------------- JSON


def sniff_json(head: str) -> float:
    body = head.lstrip("\ufeff \t\r\n")
    if not body.startswith(("{", "[")):
        return 0.0
    return 0.95 if _JSON_PID.search(head) and _JSON_PROCESS.search(head) else 0.0


def parse_json(text: str, sink: Sink) -> None:
    """Parse ConvertTo-Json of Win32_Process (object, array, or several documents) into `processes`."""
    values = list(_iter_json(text.lstrip("\ufeff"), sink))
    order = _dates_order(v for _, v in values if isinstance(v, dict))
    for no, value in values:
        raw = json.dumps(value, ensure_ascii=False)[:300]
        if not isinstance(value, dict):
            sink.skip(no, "JSON value is not an object", raw)
            continue
        _emit(no, value, "ps-cim-json", order, sink, raw)


FORMATS: tuple[Format, ...] = (
    Format(
        "ps-cim-csv",
        "Get-CimInstance/Get-WmiObject Win32_Process | Export-Csv / ConvertTo-Csv",
        sniff_csv,
        parse_text=parse_csv,
    ),
    Format(
        "ps-cim-json",
        "Get-CimInstance/Get-WmiObject Win32_Process | ConvertTo-Json (PS 5.1 and 7)",
        sniff_json,
        parse_text=parse_json,
    ),
)
