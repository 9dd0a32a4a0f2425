"""Scheduled tasks: `schtasks /query /fo csv /v`, `/fo list /v` and the default table.

Labels are matched through the bilingual dictionary, so en-US, en-GB and zh-CN read alike
(formats.md section 5). The CSV is not escaped (`"reg query "HKLM\\..." /v "SD""`), so a field
ends only at `","` or the end of the line. schtasks prints one row (or block) per trigger:
rows of the same task are merged and their triggers joined. Dates follow the user's short
date format; the day/month order is inferred once per file from the dates that reveal it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from wormhunt.model import TASKS
from wormhunt.sources.base import Format, Sink
from wormhunt.sources.text import Labels, display_width, is_prompt, iter_lines, not_available
from wormhunt.timeparse import parse_datetime

_LABELS = Labels("schtasks")
_FIELD = re.compile(r'"((?:[^"]|"(?!,"|$))*)"(?:,|$)')
_RULER = re.compile(r"^=+( +=+)+\s*$")
_COLON = re.compile(r"[:：]")
# Task To Run: a quoted program, or an unquoted one ending in an executable extension.
_QUOTED = re.compile(r'^\s*"([^"]+)"\s*(.*)$')
_UNQUOTED = re.compile(r"^\s*(.+?\.(?:exe|com|bat|cmd|scr|ps1|vbs|js))(?:\s+(.*))?$", re.IGNORECASE)
_NUMERIC_DATE = re.compile(r"(\d{1,4})[/.\-](\d{1,2})[/.\-](\d{1,4})")
# 11/30/1999 is what schtasks prints for "never ran".
_NEVER = datetime(1999, 11, 30)
_TRIGGER_FIELDS = ("schedule_type", "start_date", "start_time", "days")
_DATE_FIELDS = ("next_run", "last_run", "start_date", "end_date")
_LABEL_MAX = 60  # characters; the longest label is `Stop Task If Runs X Hours and X Mins`


def _is(value: str | None, canonical: str) -> bool:
    return value is not None and _LABELS.get(value) == canonical


def _csv_fields(line: str) -> list[str] | None:
    """Fields of an unescaped schtasks CSV line (quotes inside fields left as they are)."""
    line = line.strip()
    if not (line.startswith('"') and line.endswith('"')):
        return None
    fields = [m.group(1) for m in _FIELD.finditer(line)]
    if sum(len(f) + 3 for f in fields) - 1 == len(line):
        return fields
    return line[1:-1].split('","')  # the regex lost its way: fall back to the literal delimiter


def _csv_header(line: str) -> list[str] | None:
    fields = _csv_fields(line)
    if not fields:
        return None
    names = [_LABELS.get(f) for f in fields]
    if "name" in names and ("command" in names or "next_run" in names):
        return [n or f"_{i}" for i, n in enumerate(names)]
    return None


def _list_label(line: str) -> tuple[str, str] | None:
    """(canonical label, value) of a LIST line; the longest known `Label:` prefix wins,
    because labels such as `Repeat: Until: Time:` contain colons themselves."""
    best: tuple[str, str] | None = None
    for m in _COLON.finditer(line):
        if m.start() > _LABEL_MAX:
            break  # labels are short: do not scan a long value colon by colon
        key = _LABELS.get(line[: m.start()])
        if key and not key.startswith("value_"):
            best = (key, line[m.end() :].strip())
    return best


def _table_header(line: str) -> bool:
    names = {_LABELS.get(w) for w in re.split(r"\s{2,}", line.strip())}
    return "name" in names and "next_run" in names


def sniff(head: str) -> float:
    lines = [line for _, line in iter_lines(head) if line.strip()][:60]
    labels: set[str] = set()
    for line in lines:
        if _csv_header(line):
            return 0.95
        if _table_header(line):
            return 0.8
        found = _list_label(line)
        if found:
            labels.add(found[0])
    # systeminfo shares `Host Name`/`主机名`: require labels only schtasks prints.
    if "name" in labels and len(labels & {"command", "next_run", "state", "last_result", "run_as"}) >= 2:
        return 0.9
    return 0.0


def _date_order(values: list[str]) -> str | None:
    """`dmy` or `mdy` for the file, from any date whose day exceeds 12; AM/PM means en-US."""
    ampm = False
    for v in values:
        m = _NUMERIC_DATE.search(v)
        if not m:
            continue
        a, b, _ = (int(x) for x in m.groups())
        if a > 31:
            continue  # year first (zh-CN): no ambiguity
        if a > 12 >= b:
            return "dmy"
        if b > 12 >= a:
            return "mdy"
        ampm = ampm or bool(re.search(r"\b[AP]M\b", v, re.IGNORECASE))
    return "mdy" if ampm else None


def _time(value: str | None, order: str | None) -> datetime | None:
    if value is None or not_available(value) or _is(value, "value_never"):
        return None
    parsed = parse_datetime(value, order).value
    return None if parsed is None or parsed.date() == _NEVER.date() else parsed


def split_command(task_to_run: str | None) -> tuple[str | None, str | None]:
    """`"C:\\a b\\x.exe" -y` -> (`C:\\a b\\x.exe`, `-y`); without a recognisable program, all is the command."""
    if not task_to_run or not task_to_run.strip():
        return None, None
    if m := _QUOTED.match(task_to_run):
        return m.group(1), m.group(2).strip() or None
    if m := _UNQUOTED.match(task_to_run):
        return m.group(1), (m.group(2) or "").strip() or None
    return task_to_run.strip(), None


def _trigger(fields: dict[str, str]) -> str | None:
    schedule = fields.get("schedule", "").strip()
    if schedule and not not_available(schedule) and not _is(schedule, "value_no_schedule"):
        return schedule  # older hosts describe the trigger in one sentence
    parts = [fields.get(k, "").strip() for k in _TRIGGER_FIELDS]
    return " ".join(p for p in parts if p and not not_available(p)) or None


class _Tasks:
    """Collects rows per task (one per trigger) and writes one merged row per task."""

    def __init__(self) -> None:
        self.tasks: dict[tuple[str, str], tuple[int, dict[str, str], list[str]]] = {}

    def add(self, line: int, fields: dict[str, str]) -> None:
        key = (fields.get("host", "").strip(), fields.get("name", "").strip())
        trigger = _trigger(fields)
        if key not in self.tasks:
            self.tasks[key] = (line, fields, [])
        triggers = self.tasks[key][2]
        if trigger and trigger not in triggers:
            triggers.append(trigger)

    def write(self, sink: Sink, source: str) -> None:
        dates = [f.get(k, "") for _, f, _ in self.tasks.values() for k in _DATE_FIELDS]
        order = _date_order(dates)
        for line, fields, triggers in self.tasks.values():
            sink.row(TASKS, _record(line, fields, triggers, order, source))


def _record(line: int, fields: dict[str, str], triggers: list[str], order: str | None, source: str) -> dict[str, Any]:
    def val(key: str) -> str | None:
        v = fields.get(key)
        return None if v is None or not_available(v) else v.strip()

    state = fields.get("state", "").strip()
    command, arguments = split_command(val("command"))
    return {
        "line": line,
        "name": fields["name"].strip(),
        "status": val("status"),
        "enabled": True if _is(state, "value_enabled") else False if _is(state, "value_disabled") else None,
        "command": command,
        "arguments": arguments,
        "run_as": val("run_as"),
        "author": val("author"),
        "schedule": "; ".join(triggers) or None,
        "next_run": _time(fields.get("next_run"), order),
        "last_run": _time(fields.get("last_run"), order),
        "created": None,
        "source": source,
    }


def _is_noise(line: str) -> bool:
    return not line.strip() or is_prompt(line) or _is(line.strip(), "value_no_tasks")


def _parse_csv(lines: list[tuple[int, str]], sink: Sink) -> None:
    cols: list[str] | None = None
    tasks = _Tasks()
    for no, line in lines:
        if _is_noise(line):
            continue
        header = _csv_header(line)
        if header:
            cols = header  # repeated once per task folder
            continue
        if cols is None:
            sink.skip(no, "row before the CSV header", line)
            continue
        fields = _csv_fields(line)
        if fields is None or len(fields) != len(cols):
            sink.skip(no, "wrong number of CSV fields", line)
            continue
        row = dict(zip(cols, fields, strict=True))
        if not row.get("name", "").strip():
            sink.skip(no, "row without a task name", line)
            continue
        tasks.add(no, row)
    tasks.write(sink, "schtasks-csv")


def _parse_list(lines: list[tuple[int, str]], sink: Sink) -> None:
    tasks = _Tasks()
    block: dict[str, str] = {}
    start = 0
    last: str | None = None

    def close() -> None:
        nonlocal block, last
        if block:
            if block.get("name", "").strip():
                tasks.add(start, block)
            else:
                sink.skip(start, "task block without a task name", "")
        block, last = {}, None

    for no, line in lines:
        if _is_noise(line):
            continue
        found = _list_label(line)
        if found is None:
            if last is not None and last in block:
                block[last] += line.strip()  # console copies wrap long values mid-word
            else:
                sink.skip(no, "not a schtasks list line", line)
            continue
        key, value = found
        if key == "folder":
            close()
            continue
        if key in block:
            close()  # a label seen twice: the next task's block has begun
        if not block:
            start = no
        block[key] = value
        last = key
    close()
    tasks.write(sink, "schtasks-list")


def _parse_table(lines: list[tuple[int, str]], sink: Sink) -> None:
    """Default `schtasks` table: task name, next run and status per folder block."""
    tasks = _Tasks()
    header: str | None = None
    spans: list[tuple[int, int]] = []
    names: list[str | None] = []
    prev = ""
    for no, line in lines:
        if _is_noise(line):
            continue
        if _RULER.match(line) and header is None and prev:
            spans = [(m.start(), m.end()) for m in re.finditer(r"=+", line)]
            names = [_LABELS.get(_cut(prev, s, spans)) for s in range(len(spans))]
            header = prev
            continue
        found = _list_label(line)
        if (found and found[0] == "folder") or _table_header(line):
            header, prev = None, line
            continue
        if header is None or "name" not in names:
            sink.skip(no, "not a schtasks table line", line)
            prev = line
            continue
        row = {n: _cut(line, i, spans) for i, n in enumerate(names) if n}
        if not row.get("name", "").strip():
            sink.skip(no, "row without a task name", line)
            continue
        tasks.add(no, row)
    tasks.write(sink, "schtasks-table")


def _cut(line: str, index: int, spans: list[tuple[int, int]]) -> str:
    """Column `index` of a table row, measured in console cells (CJK takes two)."""
    start = spans[index][0]
    end = spans[index + 1][0] if index + 1 < len(spans) else None
    out, col = [], 0
    for ch in line:
        if col >= start and (end is None or col < end):
            out.append(ch)
        col += display_width(ch)
    return "".join(out).strip()


def parse(text: str, sink: Sink) -> None:
    """Parse schtasks `/v` CSV or LIST output (or the default table) into one `tasks` row per task."""
    lines = list(iter_lines(text))
    content = [line for _, line in lines if not _is_noise(line)]
    if any(_csv_header(line) for line in content[:200]):
        _parse_csv(lines, sink)
    elif any(_RULER.match(line) for line in content[:200]) and not any(
        (f := _list_label(line)) and f[0] == "command" for line in content[:200]
    ):
        _parse_table(lines, sink)
    elif content and content[0].startswith('"'):
        _parse_csv(lines, sink)
    else:
        _parse_list(lines, sink)


FORMATS: tuple[Format, ...] = (
    Format("schtasks", "schtasks /query /v (csv or list) and the default table", sniff, parse_text=parse),
)
