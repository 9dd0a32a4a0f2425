"""`netstat -ano` / `-aon` / `-anbo` / `-an` / `-nat` from English and Chinese Windows.

Rows are split on whitespace and typed by protocol and token count, never by column
position: zh-CN headers do not line up with the data and long IPv6 addresses push columns
right (formats.md section 1). Listening sockets are told by the foreign address.
"""

from __future__ import annotations

import re
from typing import Any

from wormhunt.model import SOCKETS
from wormhunt.sources.base import Sink
from wormhunt.sources.text import Labels, is_prompt, iter_lines

_HEADERS = Labels("netstat")
_STATES = Labels("netstat_states")
_ROW = re.compile(r"^\s*(TCP|UDP)(?:v6)?\s+\S", re.IGNORECASE)
_STATE_WORD = re.compile(r"^[^\d\s:\[\]*]+$")


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
    if not port.isdigit() or not host:
        return None, None
    value = int(port)
    return (host, value) if value <= 65535 else (None, None)


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
    if proto == "TCP":
        if len(tok) not in (4, 5):
            reason = "truncated row" if len(tok) < 4 else "too many fields"
            sink.skip(no, reason, line)
            return None
        state_raw = tok[3]
        last = tok[4] if len(tok) == 5 else None
    else:
        if len(tok) not in (3, 4):
            sink.skip(no, "truncated row" if len(tok) < 3 else "too many fields", line)
            return None
        state_raw = None
        last = tok[3] if len(tok) == 4 else None
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
        elif last.isdigit():
            pid = int(last)
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
    seen_table = False

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            sink.row(SOCKETS, pending)
            pending = None

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
                flush()
            elif _HEADERS.get(stripped) == "no_owner":
                flush()
            else:
                pending["component"] = stripped
            continue
        if seen_table:
            sink.skip(no, "not a netstat row", line)
    flush()
