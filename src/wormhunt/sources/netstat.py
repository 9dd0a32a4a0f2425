"""`netstat -ano` / `-aon` / `-anbo` / `-an` / `-nat` from English and Chinese Windows.

Rows are split on whitespace and typed by protocol and token count, never by column
position: zh-CN headers do not line up with the data and long IPv6 addresses push columns
right (formats.md section 1). Listening sockets are told by the foreign address.
"""

from __future__ import annotations

import re
from typing import Any

from wormhunt.model import SOCKETS
from wormhunt.sources.base import Sink, to_int
from wormhunt.sources.text import Labels, is_prompt, iter_lines

_HEADERS = Labels("netstat")
_STATES = Labels("netstat_states")
_ROW = re.compile(r"^\s*(TCP|UDP)(?:v6)?\s+\S", re.IGNORECASE)
# A state word may contain digits (FIN_WAIT_1, FIN_WAIT_2) but does not start with one:
# a number there means the state is missing.
_STATE_WORD = re.compile(r"^[^\d\s:\[\]*][^\s:\[\]*]*$")


def split_endpoint(text: str) -> tuple[str | None, int | None]:
    """`192.168.1.5:445` / `[fe80::1%11]:1900` / `*:*` -> (ip, port)."""
    if text in ("*:*", "*"):
        return "*", None
    if ":" not in text:
        return None, None
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if port == "*":
        return host or None, None
    value = to_int(port, 65535)
    return (host, value) if value is not None and host else (None, None)


def _header(line: str) -> dict[str, bool] | None:
    """Recognise a header line (any language in the dictionary): which optional columns it has."""
    names = {_HEADERS.get(cell) for cell in re.split(r"\s{2,}", line.strip())}
    if not {"proto", "local", "foreign"} <= names:
        return None
    return {"pid": "pid" in names, "offload": "offload" in names}


def sniff(head: str) -> float:
    rows = sum(1 for _, line in iter_lines(head) if _ROW.match(line))
    headed = any(_header(line) for _, line in iter_lines(head))
    if headed and rows:
        return 0.95
    if rows >= 3:
        return 0.7
    return 0.3 if headed else 0.0


def _row(no: int, line: str, cols: dict[str, bool] | None, sink: Sink) -> dict[str, Any] | None:
    tok = line.split()
    proto = tok[0].upper().removesuffix("V6")
    fields = 4 if proto == "TCP" else 3  # before the optional PID / offload column
    # Under a header with PID every row ends with one: a shorter row was cut off, even when
    # what is left looks like an `-an` row (`TCP a:1 b:2 SYN_SE`).
    least = fields + 1 if cols and cols.get("pid") else fields
    if len(tok) < least:
        sink.skip(no, "truncated row", line)
        return None
    if len(tok) > fields + 1:
        sink.skip(no, "too many fields", line)
        return None
    state_raw = tok[3] if proto == "TCP" else None
    last = tok[fields] if len(tok) > fields else None
    local_ip, local_port = split_endpoint(tok[1])
    remote_ip, remote_port = split_endpoint(tok[2])
    if local_ip is None or remote_ip is None:
        sink.skip(no, "bad address", line)
        return None
    if state_raw is not None and not _STATE_WORD.match(state_raw):
        sink.skip(no, "bad state", line)
        return None
    pid: int | None = None
    if last is not None:
        if cols and cols.get("offload"):
            pass  # Server 2003 `-nat`: the fifth column is the offload state, not a PID
        elif to_int(last) is not None:
            pid = to_int(last)
        else:
            sink.skip(no, "bad PID", line)
            return None
    state = _STATES.get(state_raw) if state_raw else None
    listening = proto == "TCP" and remote_ip in ("0.0.0.0", "::") and remote_port == 0
    return {
        "line": no,
        "proto": proto,
        "local_ip": local_ip,
        "local_port": local_port,
        "remote_ip": remote_ip,
        "remote_port": remote_port,
        "state": state or state_raw,
        "listening": listening,
        "pid": pid,
        "image": None,
        "component": None,
    }


def parse(text: str, sink: Sink) -> None:
    """Parse netstat output into `sockets` rows."""
    cols: dict[str, bool] | None = None
    pending: dict[str, Any] | None = None
    component_at: tuple[int, str] | None = None  # `-b` component line not yet followed by its image
    seen_table = False

    def flush(owner_seen: bool = False) -> None:
        nonlocal pending, component_at
        if pending is not None:
            if component_at is not None and not owner_seen:
                # A component line is always followed by `[image]` or the ownership message;
                # alone it is junk (e.g. under a plain `-ano` row), not part of the row.
                pending["component"] = None
                sink.skip(component_at[0], "not a netstat row", component_at[1])
            sink.row(SOCKETS, pending)
            pending = None
        component_at = None

    for no, line in iter_lines(text):
        if not line.strip():
            continue
        if _ROW.match(line):
            flush()
            pending = _row(no, line, cols, sink)
            seen_table = True
            continue
        header = _header(line)
        if header is not None:
            flush()
            cols, seen_table = header, True
            continue
        stripped = line.strip()
        if is_prompt(line) or _HEADERS.get(stripped) == "title":
            continue
        if pending is not None and line[:1].isspace():
            # `-b` continuation: ` [image.exe]`, `  Component`, or "cannot obtain ownership".
            if stripped.startswith("[") and stripped.endswith("]"):
                pending["image"] = stripped[1:-1]
                flush(owner_seen=True)
            elif _HEADERS.get(stripped) == "no_owner":
                flush(owner_seen=True)
            elif component_at is None:
                pending["component"] = stripped
                component_at = (no, line)
            else:
                sink.skip(no, "not a netstat row", line)  # at most one component line per row
            continue
        if seen_table:
            flush()  # continuation lines only follow their row directly
            sink.skip(no, "not a netstat row", line)
    flush()
