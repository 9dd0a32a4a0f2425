"""What the network-log parsers share: IP protocol numbers, addresses, the default year of
year-less syslog times, the choice among a line's times, the line-by-line driver and the
counting of skipped lines in the compiled (block) parsers.

Each vendor module keeps its own format; only logic that is the same for all of them lives here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numba import njit, prange

from wormhunt.model import Kind
from wormhunt.sources.base import MAX_SKIP_EXAMPLES, FileParser, Sink, TextParser, to_int
from wormhunt.sources.stream import iter_text_lines
from wormhunt.sources.text import Encoding, decode_value, iter_lines
from wormhunt.timeparse import Stamp

# --- IP protocol numbers ------------------------------------------------------------------

# Every spelling a log prints (lower case) -> IANA protocol number. The one table: the Python
# reader below and the compiled column reader are both built from it.
PROTOCOLS: dict[str, int] = {
    "icmp": 1,
    "igmp": 2,
    "ggp": 3,
    "ipip": 4,
    "st": 5,
    "tcp": 6,
    "egp": 8,
    "igp": 9,
    "udp": 17,
    "ipv6": 41,
    "ipv6-route": 43,
    "ipv6-frag": 44,
    "rsvp": 46,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "icmp6": 58,
    "icmpv6": 58,
    "ipv6-icmp": 58,
    "ipv6-nonxt": 59,
    "ipv6-opts": 60,
    "eigrp": 88,
    "ospf": 89,
    "pim": 103,
    "vrrp": 112,
    "l2tp": 115,
    "sctp": 132,
}


def proto_number(value: Any) -> int | None:
    """`TCP`, `udp `, `"tcp"`, `IPv6-ICMP`, `006`, 17 -> IP protocol number; None when unknown."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return value if 0 <= value <= 255 else None
    if not isinstance(value, str):
        return None
    text = value.strip().strip('"').strip().lower()
    number = to_int(text, 255)
    return number if number is not None else PROTOCOLS.get(text)


def _blob(words: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    raw = [w.encode() for w in words]
    offs = np.zeros(len(raw) + 1, np.int64)
    offs[1:] = np.cumsum([len(w) for w in raw])
    return np.frombuffer(b"".join(raw), np.uint8).copy(), offs


_PROTO_BLOB, _PROTO_OFFS = _blob(PROTOCOLS)
_PROTO_VALUES = np.array(list(PROTOCOLS.values()), np.int32)


@njit(cache=True, nogil=True, parallel=True)
def _proto_field(data, vs, vl, f, blob, offs, values, out, valid):  # pragma: no cover - compiled
    """Field f as an IP protocol number, as `proto_number` reads it: blanks around it are
    dropped, digits are the number (up to 255), a name is looked up without regard to case."""
    for i in prange(vs.shape[1]):
        out[i] = 0
        valid[i] = False
        s = vs[f, i]
        e = s + vl[f, i]
        while s < e and (data[s] == 32 or data[s] == 9):
            s += 1
        while e > s and (data[e - 1] == 32 or data[e - 1] == 9 or data[e - 1] == 13):
            e -= 1
        ln = e - s
        if ln <= 0:
            continue
        digits = ln <= 19
        v = 0
        for t in range(ln):
            c = data[s + t]
            if c < 48 or c > 57:
                digits = False
                break
            if v <= 255:
                v = v * 10 + (c - 48)
        if digits:
            if v <= 255:
                out[i] = v
                valid[i] = True
            continue
        for w in range(len(offs) - 1):
            if offs[w + 1] - offs[w] != ln:
                continue
            same = True
            for t in range(ln):
                c = data[s + t]
                if 65 <= c <= 90:
                    c += 32
                if c != blob[offs[w] + t]:
                    same = False
                    break
            if same:
                out[i] = values[w]
                valid[i] = True
                break


def proto_column(data: np.ndarray, vs: np.ndarray, vl: np.ndarray, f: int) -> pa.Array:
    """Field f of every line as an int32 column of IP protocol numbers (null when unknown)."""
    n = vs.shape[1]
    out, valid = np.zeros(n, np.int32), np.zeros(n, np.bool_)
    if n and f >= 0:
        _proto_field(data, vs, vl, f, _PROTO_BLOB, _PROTO_OFFS, _PROTO_VALUES, out, valid)
    return pa.array(out, mask=~valid)


# --- Addresses ----------------------------------------------------------------------------


def valid_ip(text: str | None) -> str | None:
    """The address as printed (blanks and quotes dropped) when it is one, else None."""
    if not text:
        return None
    text = text.strip().strip('"')
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return None
    return text


def short_ip(text: str) -> str:
    """One spelling of an IPv6 address (`fe80:0000:...:0016` -> `fe80::16`), so sources join;
    IPv4 and anything that is not an address are returned unchanged."""
    if ":" in text:
        try:
            return ipaddress.ip_address(text).compressed
        except ValueError:
            return text
    return text


# --- Times ----------------------------------------------------------------------------------


def file_year(sink: Sink, path: Path | None = None) -> int:
    """Year for syslog times printed without one: `sink.meta["default_year"]`, else the year the
    file was last modified, else (text in memory, unreadable file) the current year."""
    year = sink.meta.get("default_year")
    if year:
        return int(year)
    if path is not None:
        try:
            return datetime.fromtimestamp(path.stat().st_mtime, UTC).year
        except (OSError, ValueError, OverflowError):
            pass
    return datetime.now(UTC).year


def choose_time(candidates: list[Stamp | None], sink: Sink) -> datetime | None:
    """The first zoned time among the candidates (in the caller's order of preference); if none
    has a zone, the first there is, and the file is marked as holding device-local times."""
    present = [c for c in candidates if c is not None]
    if not present:
        return None
    pick = next((c for c in present if c.zoned), present[0])
    if not pick.zoned:
        sink.meta["local_time"] = True
    if not pick.year_known:
        sink.meta["year_guessed"] = True
    return pick.value


# --- Line-by-line parsers ---------------------------------------------------------------------

Lines = Iterable[tuple[int, int, str]]  # (line number, byte offset or -1, text)
# One line -> the row(s) written to the sink, or the reason the line was not used.
LineReader = Callable[[int, int, str, Sink, int], "str | None"]
BLANK = " \t\r\n\x00\u3000"


def text_lines(text: str) -> Iterator[tuple[int, int, str]]:
    """Lines of text already in memory, without byte offsets."""
    for no, line in iter_lines(text):
        yield no, -1, line


def file_lines(path: Path, encoding: Encoding, sink: Sink) -> Iterator[tuple[int, int, str]]:
    """Lines of a file, streamed in bounded memory with their byte offsets."""
    return iter_text_lines(path, encoding, tap=getattr(sink, "tap", None))


def _strip(raw: str) -> str:
    return raw.strip(BLANK)


def syslog_parsers(read: LineReader, clean: Callable[[str], str] = _strip) -> tuple[TextParser, FileParser]:
    """`parse_text` and `parse_file` of a syslog format read one line at a time: each non-blank
    line (after `clean`) goes to `read` with the default year; a reason it returns is a skip."""

    def run(lines: Lines, sink: Sink, year: int) -> None:
        for no, offset, raw in lines:
            line = clean(raw)
            if not line:
                continue
            reason = read(no, offset, line, sink, year)
            if reason:
                sink.skip(no, reason, line)

    def parse_text(text: str, sink: Sink) -> None:
        """Parse log text already in memory (no byte offsets)."""
        run(text_lines(text), sink, file_year(sink))

    def parse_file(path: Path, encoding: Encoding, sink: Sink) -> None:
        """Stream a log file line by line in bounded memory."""
        run(file_lines(path, encoding, sink), sink, file_year(sink, path))

    return parse_text, parse_file


# --- Compiled (block) parsers -------------------------------------------------------------------


def skip_lines(
    data: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    lines: np.ndarray,
    reason: np.ndarray,
    reasons: tuple[str, ...],
    sink: Sink,
) -> None:
    """Count the lines whose `reason` code is not 0 as skipped (`reasons[code]`), keeping their
    text as examples while the sink has room. `lines` are their line numbers."""
    bad = np.flatnonzero(reason)
    if not len(bad):
        return
    room = max(0, MAX_SKIP_EXAMPLES - len(sink.skips))
    for j in bad[:room]:
        text = decode_value(bytes(data[int(starts[j]) : min(int(ends[j]), int(starts[j]) + 300)])).rstrip("\r")
        sink.skip(int(lines[j]), reasons[reason[j]], text)
    for code, count in zip(*np.unique(reason[bad[room:]], return_counts=True), strict=True):
        sink.skip_counts[reasons[code]] += int(count)


@njit(cache=True, nogil=True, parallel=True)
def _ip_like(data, vs, vl, f, out):  # pragma: no cover - compiled
    """Field f looks like an IPv4/IPv6 address (hex digits, dots, colons; a dot or a colon)."""
    for i in prange(vs.shape[1]):
        ln = vl[f, i]
        ok = 2 <= ln <= 45
        sep = False
        if ok:
            s = vs[f, i]
            for t in range(ln):
                c = data[s + t]
                if c == 46 or c == 58:
                    sep = True
                elif not (48 <= c <= 57 or 97 <= c <= 102 or 65 <= c <= 70):
                    ok = False
                    break
        out[i] = ok and sep


def ip_like(data: np.ndarray, vs: np.ndarray, vl: np.ndarray, f: int) -> np.ndarray:
    """Whether field f of every line looks like an address (a cheap test; the text is kept as printed)."""
    out = np.zeros(vs.shape[1], np.bool_)
    if vs.shape[1] and f >= 0:
        _ip_like(data, vs, vl, f, out)
    return out


def sniff_hits(head: str, pattern: re.Pattern[str], blank: str | None = None, most: int = 50) -> tuple[int, int]:
    """(lines the pattern finds something in, lines looked at) among the first `most` lines of
    a file's head that are not blank (`blank`: the characters that do not count)."""
    lines = [line for _, line in iter_lines(head[:65536]) if line.strip(blank)][:most]
    return sum(1 for line in lines if pattern.search(line)), len(lines)


# --- Records ------------------------------------------------------------------------------------


def record(line: int, offset: int, host: str | None, ts: datetime | None, **fields: Any) -> dict[str, Any]:
    """A row of a network record kind (flows, net_alerts, smb): where it was read (`offset` -1 for
    text in memory, which has none), the sensor or device, its time, then `fields`."""
    return {
        "evidence_id": None,
        "line": line,
        "host": host,
        "offset": offset if offset >= 0 else None,
        "ts": ts,
        **fields,
    }


def record_table(
    kind: Kind,
    lines: np.ndarray,
    offsets: np.ndarray | None,
    host: pa.Array | None,
    ts_us: np.ndarray,
    fields: dict[str, pa.Array],
) -> pa.Table:
    """`record` for a block of rows: line numbers, byte offsets (None: text in memory), the
    host column (None: all null), epoch-microsecond times, then the kind's other columns."""
    m = len(lines)
    cols = {
        "evidence_id": pa.nulls(m, pa.int32()),
        "line": pa.array(lines.astype(np.int64, copy=False)),
        "host": pa.nulls(m, pa.string()) if host is None else host,
        "offset": pa.nulls(m, pa.int64()) if offsets is None else pa.array(offsets.astype(np.int64, copy=False)),
        "ts": pa.array(ts_us).cast(pa.timestamp("us")),
        **fields,
    }
    return pa.table([cols[c] for c in kind.names], schema=kind.arrow_schema)
