"""Sysinternals `autorunsc -a * -c -h -s` CSV (and the TAB-separated `-ct`), formats.md section 7.2.

Columns are mapped by header name: `-s` inserts Signer, `-h` appends the hashes, and older
versions lack some columns. Lines before the header (the `Sysinternals Autoruns ...` banner,
localized or not, an echoed prompt) are ignored; a file without a header is counted line by
line. Quoting is proper RFC-4180 and descriptions may hold CR/LF inside quotes, so a record
is assembled until its quotes balance and then read with `csv`.

Section rows (an Entry Location with an empty Entry, carrying the key's last-write time) are
not entries: they are not rows and not skips, only counted in `sink.meta["autoruns_sections"]`.

Time is `yyyyMMdd-HHmmss` UTC with `-t`, else the host's short date format; day/month order
of the whole file is decided from the rows that show it (a day > 12), and the number of
times left ambiguous is put in `sink.meta["autoruns_ambiguous_times"]`.
"""

from __future__ import annotations

import csv
import re

from wormhunt.model import AUTORUNS
from wormhunt.sources.base import Format, Sink
from wormhunt.sources.text import iter_lines, normalize_label
from wormhunt.timeparse import parse_datetime

_COLUMNS = {
    normalize_label(k): v
    for k, v in {
        "Time": "time",
        "Entry Location": "location",
        "Entry": "entry",
        "Enabled": "enabled",
        "Category": "category",
        "Profile": "profile",
        "Description": "description",
        "Signer": "signer",
        "Company": "publisher",
        "Image Path": "image_path",
        "Version": "version",
        "Launch String": "launch",
        "SHA-256": "sha256",
    }.items()
}
_TIME_T = re.compile(r"^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})$")  # `-t`: 20230106-150455
_NUMERIC_DATE = re.compile(r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-]\d{2,4}\b")
MAX_RECORD_LINES = 50  # an unbalanced quote must not swallow the rest of the file


def _header(line: str) -> tuple[str, list[str]] | None:
    """(delimiter, canonical column names) when `line` is the autorunsc header."""
    for delim in (",", "\t"):
        if delim not in line:
            continue
        try:
            cells = next(csv.reader([line], delimiter=delim))
        except (csv.Error, StopIteration):
            continue
        names = [_COLUMNS.get(normalize_label(c), f"_{c.strip()}") for c in cells]
        if {"location", "entry", "launch"} <= set(names) or {"location", "entry", "category", "enabled"} <= set(names):
            return delim, names
    return None


def sniff(head: str) -> float:
    lines = [line for _, line in iter_lines(head[:16384]) if line.strip()][:12]
    return 0.95 if any(_header(line) for line in lines) else 0.0


def _records(lines: list[tuple[int, str]], sink: Sink) -> list[tuple[int, str]]:
    """Physical lines grouped into CSV records (quotes balanced), with the first line number."""
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        no, line = lines[i]
        j, text = i, line
        while text.count('"') % 2 and j + 1 < len(lines) and j - i < MAX_RECORD_LINES:
            j += 1
            text += "\n" + lines[j][1]
        if text.count('"') % 2:
            sink.skip(no, "unterminated quote", line)
            i += 1
            continue
        out.append((no, text))
        i = j + 1
    return out


def _date_order(times: list[str]) -> str | None:
    """'dmy' or 'mdy' when the file's numeric dates show it (a day above 12), else None."""
    dmy = mdy = 0
    for t in times:
        m = _NUMERIC_DATE.match(t)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            dmy += a > 12 >= b
            mdy += b > 12 >= a
    if dmy and not mdy:
        return "dmy"
    if mdy and not dmy:
        return "mdy"
    return None


def _enabled(value: str) -> bool | None:
    word = value.strip().lower()
    return True if word == "enabled" else False if word == "disabled" else None


def parse(text: str, sink: Sink) -> None:
    """Parse autorunsc CSV into `autoruns` rows (section rows counted in meta, not emitted)."""
    lines = [(no, line.rstrip("\r")) for no, line in enumerate(text.lstrip("\ufeff").split("\n"), 1)]
    start = None
    for k, (_, line) in enumerate(lines):
        found = _header(line.rstrip())
        if found:
            delim, cols = found
            start = k
            break
    if start is None:
        for no, line in lines:
            if line.strip():
                sink.skip(no, "no autorunsc CSV header", line)
        return

    parsed: list[tuple[int, str, dict[str, str]]] = []
    for no, record in _records(lines[start + 1 :], sink):
        if not record.strip():
            continue
        if _header(record):
            continue  # a second listing appended to the file
        try:
            cells = next(csv.reader([record], delimiter=delim))
        except (csv.Error, StopIteration):
            sink.skip(no, "bad CSV row", record)
            continue
        fields = dict(zip(cols, (c.strip() for c in cells), strict=False))
        location, entry = fields.get("location", ""), fields.get("entry", "")
        if location and not entry:
            sink.meta["autoruns_sections"] = sink.meta.get("autoruns_sections", 0) + 1
            continue
        if len(cells) != len(cols):
            sink.skip(no, "wrong number of CSV fields", record)
            continue
        if not location:
            sink.skip(no, "row without an entry location", record)
            continue
        parsed.append((no, record, fields))

    order = _date_order([f.get("time", "") for _, _, f in parsed])
    ambiguous = 0
    for no, _, fields in parsed:
        raw = fields.get("time", "")
        m = _TIME_T.match(raw)
        when = parse_datetime("{}-{}-{} {}:{}:{}".format(*m.groups()) if m else raw, order)
        ambiguous += when.ambiguous

        def val(key: str, fields: dict[str, str] = fields) -> str | None:
            return fields.get(key) or None

        sink.row(
            AUTORUNS,
            {
                "line": no,
                "location": val("location"),
                "entry": val("entry"),
                "enabled": _enabled(fields.get("enabled", "")),
                "category": val("category"),
                "description": val("description"),
                "publisher": val("publisher"),
                "image_path": val("image_path"),
                "launch": val("launch"),
                "signer": val("signer"),
                "sha256": val("sha256"),
                "time": when.value,
                "source": "autorunsc-utc" if m else "autorunsc",
            },
        )
    if ambiguous:
        sink.meta["autoruns_ambiguous_times"] = sink.meta.get("autoruns_ambiguous_times", 0) + ambiguous


FORMATS: tuple[Format, ...] = (
    Format("autorunsc", "Sysinternals autorunsc -c / -ct (CSV or TAB)", sniff, parse_text=parse),
)
