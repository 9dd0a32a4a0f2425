"""Services: `sc queryex` / `sc query` / `sc qc` text and `wmic service get ... /format:csv`.

`sc` keys stay English on every locale; only the `[SC] <Api> 成功/失败` result lines are
localized (formats.md section 4). Records start at `SERVICE_NAME:` rather than at blank
lines, because blog and console copies put blank lines anywhere. wmic CSV is unescaped, so
commas in DisplayName/PathName are recovered by trying every split that keeps the
fixed-shape columns valid, and kept only when exactly one split works.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

from wormhunt.model import SERVICES
from wormhunt.sources import wmic
from wormhunt.sources.base import Format, Sink, to_int
from wormhunt.sources.text import is_prompt, iter_lines

# --- sc ---------------------------------------------------------------------------------

_SC_RESULT = re.compile(
    r"^\s*\[SC\]\s*(?P<api>.*?)\s*(?P<result>SUCCESS|FAILED|成功|失败)(?:\s*(?P<code>\d+))?\s*:?\s*$"
)
_TOP_KEY = re.compile(r"^(?P<key>SERVICE_NAME|DISPLAY_NAME)\s*:\s?(?P<value>.*)$")
_KEY = re.compile(r"^\s+(?P<key>[A-Z][A-Z0-9_]*)\s*:(?:\s(?P<value>.*))?$")
_SVCHOST_GROUP = re.compile(r"svchost(?:\.exe)?\"?\s+(?:.*\s)?-k\s+\"?(?P<group>[^\s\"]+)", re.IGNORECASE)
# Keys whose value may continue on the next lines (STATE flags, one dependency per line).
_CONTINUED = {"STATE", "DEPENDENCIES"}


def _sc_score(lines: list[str]) -> float:
    has_name = any(_TOP_KEY.match(ln) and ln.startswith("SERVICE_NAME") for ln in lines)
    has_key = any((m := _KEY.match(ln)) and m.group("key") in ("TYPE", "STATE", "BINARY_PATH_NAME") for ln in lines)
    if has_name and has_key:
        return 0.9
    if any((m := _SC_RESULT.match(ln)) and "QueryServiceConfig" in m.group("api") for ln in lines):
        return 0.85
    if any(_SC_RESULT.match(ln) for ln in lines):
        return 0.6  # an `sc` error and nothing else: still this format, with no rows
    return 0.0


def sniff_sc(head: str) -> float:
    return _sc_score([line for _, line in iter_lines(head) if line.strip()][:60])


def _symbolic(value: str) -> str | None:
    """`10  WIN32_OWN_PROCESS` -> `WIN32_OWN_PROCESS`; `2   AUTO_START  (DELAYED)` keeps the suffix."""
    value = " ".join(value.split())
    if not value:
        return None
    m = re.match(r"^[0-9a-fA-F]+\s+(.+)$", value)
    return m.group(1) if m else value


def svchost_group(binary_path: str | None) -> str | None:
    """The `-k <group>` of a svchost command line (`...svchost.exe -k netsvcs -p` -> `netsvcs`)."""
    m = _SVCHOST_GROUP.search(binary_path or "")
    return m.group("group") if m else None


class _ScRecord:
    def __init__(self, line: int, name: str) -> None:
        self.line = line
        self.name = name
        self.values: dict[str, str] = {}
        self.last_key: str | None = None

    def row(self) -> dict[str, Any]:
        v = self.values

        def val(key: str) -> str | None:
            text = v.get(key, "").strip()
            return text or None

        binary = v.get("BINARY_PATH_NAME", "").strip() or None
        # qc prints the configuration, queryex adds the PID to query's status.
        source = "sc-qc" if "START_TYPE" in v or "BINARY_PATH_NAME" in v else "sc-queryex" if "PID" in v else "sc-query"
        return {
            "line": self.line,
            "name": self.name,
            "display_name": val("DISPLAY_NAME"),
            "type": _symbolic(v.get("TYPE", "")),
            "state": _symbolic(v.get("STATE", "")),
            "start_mode": _symbolic(v.get("START_TYPE", "")),
            "pid": to_int(v.get("PID")),
            "binary_path": binary,
            "service_dll": None,
            "group": val("LOAD_ORDER_GROUP") or svchost_group(binary),
            "account": val("SERVICE_START_NAME"),
            "source": source,
        }


def parse_sc(text: str, sink: Sink) -> None:
    """Parse `sc queryex`/`sc query`/`sc qc` output (several may be concatenated) into `services`."""
    rec: _ScRecord | None = None
    after_error = False  # the localized sentence that follows `[SC] OpenService 失败 1060:`

    def emit() -> None:
        nonlocal rec
        if rec is not None:
            if rec.values:
                sink.row(SERVICES, rec.row())
            else:
                sink.skip(rec.line, "service record cut short", f"SERVICE_NAME: {rec.name}")
        rec = None

    for no, line in iter_lines(text):
        if not line.strip() or is_prompt(line):
            continue
        if m := _SC_RESULT.match(line):
            emit()
            if m.group("result") in ("FAILED", "失败"):
                sink.skip(no, "sc error", line)
                after_error = True
            continue
        if line.lstrip().startswith("[SC]"):
            emit()
            sink.skip(no, "sc message", line)
            continue
        if m := _TOP_KEY.match(line):
            after_error = False
            value = m.group("value").strip()
            if m.group("key") == "SERVICE_NAME":
                emit()
                if not value:
                    sink.skip(no, "service record without a name", line)
                    continue
                rec = _ScRecord(no, value)
            elif rec is None:
                sink.skip(no, "line outside a service record", line)
            else:
                rec.values["DISPLAY_NAME"] = value
                rec.last_key = "DISPLAY_NAME"
            continue
        if rec is not None and (m := _KEY.match(line)):
            key, value = m.group("key"), (m.group("value") or "").strip()
            if key == "PID" and value and to_int(value) is None:
                sink.skip(no, "bad PID", line)
                continue
            rec.values[key] = value
            rec.last_key = key
            continue
        if rec is not None and line[:1].isspace() and rec.last_key in _CONTINUED:
            continue  # STATE flags / further dependencies: not part of the services row
        if after_error and rec is None:
            after_error = False  # the error's explanation, already counted with the error line
            continue
        sink.skip(no, "not an sc line", line)
    emit()


# --- wmic service ------------------------------------------------------------------------

_SERVICE_ONLY = {"PathName", "StartMode", "StartName", "ServiceType", "State", "DisplayName", "AcceptStop"}
# Columns that can hold commas; wmic writes them unescaped.
_FREE = {"DisplayName", "PathName", "Description", "Caption"}
_BOOL = {"", "TRUE", "FALSE"}
_PATH_START = re.compile(r'^(?:"|[A-Za-z]:[\\/]|\\|%|[^\s,\\]+\\|[^\s,]+\.(?:exe|sys|dll)\b)', re.IGNORECASE)
_VALID: dict[str, Callable[[str], bool]] = {
    "ProcessId": lambda v: v == "" or to_int(v) is not None,
    "ExitCode": lambda v: v == "" or to_int(v) is not None,
    "ServiceSpecificExitCode": lambda v: v == "" or to_int(v) is not None,
    "TagId": lambda v: v == "" or to_int(v) is not None,
    "StartMode": lambda v: v in ("", "Auto", "Manual", "Disabled", "Boot", "System", "Unknown"),
    "AcceptStop": lambda v: v.upper() in _BOOL,
    "AcceptPause": lambda v: v.upper() in _BOOL,
    "DelayedAutoStart": lambda v: v.upper() in _BOOL,
    "DesktopInteract": lambda v: v.upper() in _BOOL,
    "Started": lambda v: v.upper() in _BOOL,
    "Name": lambda v: v != "" and not set(v) & set("\\/,"),
    "PathName": lambda v: v == "" or bool(_PATH_START.match(v)),
}
# Beyond this many stray commas in one row the split is not worth guessing.
_MAX_EXTRA = 12


def _wmic_header(line: str) -> list[str] | None:
    cells = [c.strip() for c in line.split(",")]
    if len(cells) < 2 or cells[0] != "Node" or "Name" not in cells or not _SERVICE_ONLY & set(cells):
        return None
    return None if {"CommandLine", "ExecutablePath"} & set(cells) else cells


def sniff_wmic(head: str) -> float:
    for _, line in list(iter_lines(head))[:10]:
        if _wmic_header(line):
            # Above wmic-process (0.95), whose sniff also accepts any Node,...,ProcessId header.
            return 0.97
    return 0.0


def _valid(col: str, value: str) -> bool:
    check = _VALID.get(col)
    if check is not None:
        return check(value)
    return col in _FREE or "," not in value


def split_service_row(cols: list[str], fields: list[str]) -> dict[str, str] | None:
    """Map fields to columns, giving stray commas to the free-text columns; None unless exactly one way fits."""
    extra = len(fields) - len(cols)
    if extra < 0 or extra > _MAX_EXTRA:
        return None
    free = [i for i, c in enumerate(cols) if c in _FREE]
    if extra and not free:
        return None
    found: list[dict[str, str]] = []
    # Every way of handing the `extra` surplus fields to the free columns.
    for share in itertools.combinations_with_replacement(free, extra) if extra else [()]:
        widths = [1 + share.count(i) for i in range(len(cols))]
        row, pos = {}, 0
        for col, width in zip(cols, widths, strict=True):
            row[col] = ",".join(fields[pos : pos + width])
            pos += width
        if all(_valid(c, v) for c, v in row.items()) and row not in found:
            found.append(row)
            if len(found) > 1:
                return None
    return found[0] if found else None


def parse_wmic(text: str, sink: Sink) -> None:
    """Parse `wmic service get ... /format:csv` into `services` rows."""
    reason = "cannot split row (ambiguous commas, or cut short)"
    for no, row in wmic.csv_rows(text, sink, _wmic_header, split_service_row, reason):
        sink.row(SERVICES, _wmic_record(no, row))


def _wmic_record(no: int, row: dict[str, str]) -> dict[str, Any]:
    def val(key: str) -> str | None:
        v = row.get(key, "").strip()
        return v or None

    binary = val("PathName")
    return {
        "line": no,
        "name": val("Name"),
        "display_name": val("DisplayName"),
        "type": val("ServiceType"),
        "state": val("State"),
        "start_mode": val("StartMode"),
        "pid": to_int(row.get("ProcessId")),
        "binary_path": binary,
        "service_dll": None,
        "group": svchost_group(binary),
        "account": val("StartName"),
        "source": "wmic-service",
    }


FORMATS: tuple[Format, ...] = (
    Format("sc-service", "sc queryex / sc query / sc qc", sniff_sc, parse_text=parse_sc),
    Format("wmic-service", "wmic service get ... /format:csv", sniff_wmic, parse_text=parse_wmic),
)
