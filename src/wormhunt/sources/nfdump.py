"""NetFlow/IPFIX records exported with `nfdump -o csv` (formats.md section 9.10).

Accepted layouts, columns always found by header name:
* nfdump 1.6.x `ts,te,td,sa,da,sp,dp,pr,flg,...` in its 48-column (`...,cl,sl,al,ra,eng,exid,tr`) and older
  43-column (`...,mpls10,ra,eng`) variants;
* nfdump 1.7.x renamed headers (`firstSeen,lastSeen,duration,proto,srcAddr,...`), including the shipped
  `csv.csvline` (`firstSeen,duration,proto,srcAddr,srcPort,dstAddr,dstPort,packets,bytes,flows`) and the
  "fast" mode (`cnt,af,firstSeen,...`) whose times are epoch milliseconds (UTC) and proto a number;
* `-q` output with no header: the 1.6 header is supplied when a line has 48 or 43 columns.

Normalisation into `flows`:
* nfdump records are unidirectional: `bytes_out` is the input byte counter (`ibyt`/`inBytes`/`bytes`),
  `bytes_in` and `pkts_in` are null (the answer, if any, is its own record with the ports swapped).
* `action` is the TCP flags string as printed, cumulative over the flow: 1.6 prints six characters
  `UAPRSF` (`.AP.SF`, `....S.`), 1.7 eight `CEUAPRSF` (`......S.`). A connection that failed or got
  no answer is a TCP record with `S` and without `A` (`....S.`, `...RS.`); `......` is printed for
  non-TCP flows.
* `ts` is the first-seen time. Printed times are the nfdump host's local time without a zone
  (`sink.meta["local_time"]`); epoch values (fast mode, `%tsr`) are UTC.
* `duration` is whole seconds (the fraction of `td` is dropped); without a duration column it is
  last-seen minus first-seen.
* ICMP destination ports stay as nfdump encodes them: `type*256+code` (1.6 prints `2816`, 1.7 prints
  `11.0`, both become 2816).
* `host` is the exporting router (`ra`/`routerIP`) when it is set, else null.

The 3-line `Summary` trailer and header lines are not data: they are recognised and ignored (not
counted as skipped), so records + skipped == the data lines of the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit, prange

from wormhunt.model import FLOWS
from wormhunt.sources import kvscan
from wormhunt.sources.base import Format, Sink
from wormhunt.sources.netlog import ip_like, proto_column, record_table, skip_lines
from wormhunt.sources.stream import iter_blocks, lines_block
from wormhunt.sources.text import Encoding, decode_value, iter_lines

_MPLS = [f"mpls{i}" for i in range(1, 11)]
_HEAD = "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,smk,dmk,dtos,dir,nh,nhb,svln,dvln"
HEADER_16 = (*_HEAD.split(","), "ismc", "odmc", "idmc", "osmc", *_MPLS, "cl", "sl", "al", "ra", "eng", "exid", "tr")
HEADER_16_OLD = (*_HEAD.split(","), "ismc", "odmc", "idmc", "osmc", *_MPLS, "ra", "eng")
HEADER_FAST = tuple(
    [
        "cnt",
        "af",
        "firstSeen",
        "lastSeen",
        "proto",
        "srcAddr",
        "srcPort",
        "dstAddr",
        "dstPort",
        "srcAS",
        "dstAS",
        "input",
        "output",
        "flags",
        "srcTos",
        "packets",
        "bytes",
    ]
)
# -q output has no header: the column count says which 1.6 layout it is.
HEADERLESS = {len(HEADER_16): HEADER_16, len(HEADER_16_OLD): HEADER_16_OLD}

# Role -> header names (lower-cased) in 1.6 and 1.7 spelling, first match wins.
ROLES: dict[str, tuple[str, ...]] = {
    "first": ("ts", "firstseen"),
    "last": ("te", "lastseen"),
    "duration": ("td", "duration"),
    "src": ("sa", "srcaddr"),
    "dst": ("da", "dstaddr"),
    "sport": ("sp", "srcport"),
    "dport": ("dp", "dstport"),
    "proto": ("pr", "proto"),
    "flags": ("flg", "flags"),
    "bytes": ("ibyt", "inbytes", "byt", "bytes"),
    "router": ("ra", "routerip"),
}
_KNOWN = (
    {n.lower() for n in (*HEADER_16, *HEADER_FAST)}
    | {n for names in ROLES.values() for n in names}
    | {
        "received",
        "packets",
        "inpackets",
        "outpackets",
        "outbytes",
        "flows",
        "fwdstatus",
        "srctos",
        "dsttos",
        "tos",
        "srcmask",
        "dstmask",
        "direction",
        "nextip",
        "bgpnextip",
        "srcvlan",
        "dstvlan",
        "engine",
        "exporterid",
        "count",
        "bps",
        "pps",
        "bpp",
    }
)
# Statistics mode (-s) tables share some names but describe no single flow.
_STAT_NAMES = {"val", "flp", "ipktp", "ibytp", "ipps", "ipbs", "ibpp"}

SPACE, TAB, CR = 32, 9, 13


def header_names(line: str) -> tuple[str, ...] | None:
    """The column names when `line` is an nfdump CSV header (either naming scheme), else None."""
    names = tuple(c.strip() for c in line.strip().split(","))
    low = {n.lower() for n in names}
    if len(names) < 3 or sum(n in _KNOWN for n in low) < 3:
        return None
    if any(r in low for r in ROLES["src"]) or low & _STAT_NAMES:
        return names
    return None


def _roles(names: Iterable[str]) -> dict[str, int]:
    low = [n.lower() for n in names]
    found: dict[str, int] = {}
    for role, options in ROLES.items():
        for o in options:
            if o in low:
                found[role] = low.index(o)
                break
    return found


def sniff(head: str) -> float:
    lines = [line for _, line in iter_lines(head[:65536]) if line.strip()][:30]
    if not lines:
        return 0.0
    for line in lines[:5]:
        names = header_names(line)
        if names:
            roles = _roles(names)
            if {"src", "dst"} <= set(roles) and ({"first", "proto"} & set(roles)):
                return 0.97
    # -q output: no header, but rows of the 1.6 width that start with a date and carry a flags field.
    rows = [ln.split(",") for ln in lines]
    hits = sum(
        1
        for r in rows
        if len(r) in HEADERLESS and len(r[0].strip()) >= 19 and r[0][:4].isdigit() and r[0][4] == "-" and "." in r[8]
    )
    return 0.9 if hits >= max(1, len(rows) // 2) else 0.0


# --- compiled helpers ---------------------------------------------------------------------------


@njit(cache=True, nogil=True, parallel=True)
def _classify(data, starts, ends, out):  # pragma: no cover - compiled
    """0 blank, 1 a line of words (a header or the Summary trailer), 2 anything else (a data row)."""
    for i in prange(len(starts)):
        p = starts[i]
        e = ends[i]
        while p < e and (data[p] == SPACE or data[p] == TAB or data[p] == CR):
            p += 1
        if p >= e:
            out[i] = 0
            continue
        c = data[p]
        if not ((65 <= c <= 90) or (97 <= c <= 122)):
            out[i] = 2
            continue
        cls = 1
        for q in range(p, e):
            c = data[q]
            word = (65 <= c <= 90) or (97 <= c <= 122) or (48 <= c <= 57)
            if not (word or c in (95, 45, 44, 59, SPACE, TAB, CR)):  # _ - , ; and blanks
                cls = 2
                break
        out[i] = cls


@njit(cache=True, nogil=True, parallel=True)
def _number(data, vs, vl, f, out, valid):  # pragma: no cover - compiled
    """`1152`, `24.576`, `1.2 M` -> integer (fraction dropped, K/M/G/T scaled by 1000)."""
    for i in prange(vs.shape[1]):
        out[i] = 0
        valid[i] = False
        ln = vl[f, i]
        if ln <= 0 or ln > 24:
            continue
        p = vs[f, i]
        e = p + ln
        v, q = kvscan.num(data, p, e, 18)
        if v < 0:
            continue
        nd = q - p
        p = q
        frac = 0.0
        if p < e and data[p] == 46:
            p += 1
            scale = 0.1
            while p < e and 48 <= data[p] <= 57:
                frac += (data[p] - 48) * scale
                scale /= 10
                p += 1
        while p < e and data[p] == SPACE:
            p += 1
        mult = 1
        if p < e:
            c = data[p] | 32
            mult = 1000 if c == 107 else 1000000 if c == 109 else 1000000000 if c == 103 else 0
            if c == 116:
                mult = 1000000000000
            p += 1
        if p != e or mult == 0 or nd > 15:
            continue
        out[i] = v * mult + int(frac * mult)
        valid[i] = True


@njit(cache=True, nogil=True, parallel=True)
def _port(data, vs, vl, f, out, valid):  # pragma: no cover - compiled
    """`445` -> 445; nfdump 1.7's ICMP `type.code` (`11.0`) -> type*256+code, as 1.6 prints it."""
    for i in prange(vs.shape[1]):
        out[i] = 0
        valid[i] = False
        ln = vl[f, i]
        if ln <= 0 or ln > 7:
            continue
        e = vs[f, i] + ln
        a, p = kvscan.num(data, vs[f, i], e, 7)
        if a < 0:
            continue
        if p < e and data[p] == 46:
            b, p = kvscan.num(data, p + 1, e, 7)
            if b < 0 or a > 255 or b > 255:
                continue
            a = a * 256 + b
        if p != e or a > 65535:
            continue
        out[i] = a
        valid[i] = True


@njit(cache=True, nogil=True, parallel=True)
def _epoch(data, vs, vl, f, out, valid):  # pragma: no cover - compiled
    """Epoch `1694000000123` (ms), `1694000000` (s), `1694000000.123` (s.frac) -> microseconds."""
    for i in prange(vs.shape[1]):
        out[i] = 0
        valid[i] = False
        ln = vl[f, i]
        if ln <= 0 or ln > 24:
            continue
        p = vs[f, i]
        e = p + ln
        v, q = kvscan.num(data, p, e, 18)
        nd = q - p
        p = q
        us = 0
        frac = False
        if p < e and data[p] == 46:
            frac = True
            us, p = kvscan.frac_us(data, p + 1, e)
        if p != e or v <= 0 or nd >= 18:
            continue
        if frac or v < 100000000000:
            out[i] = v * 1000000 + us
        elif v < 100000000000000:
            out[i] = v * 1000
        else:
            out[i] = v
        valid[i] = out[i] >= 100000000000000  # after 1973: a small number is no epoch


def _ints(kernel, data, vs, vl, f: int) -> tuple[np.ndarray, np.ndarray]:
    n = vs.shape[1]
    out, valid = np.zeros(n, np.int64), np.zeros(n, np.bool_)
    if f >= 0 and n:
        kernel(data, vs, vl, f, out, valid)
    return out, valid


# --- parsing ------------------------------------------------------------------------------------


class _State:
    """What carries from one block to the next: the current header and a trailer in progress."""

    def __init__(self) -> None:
        self.names: tuple[str, ...] | None = None
        self.trailer_rows = 0  # lines of the Summary trailer still to come


def parse_file(path: Path, encoding: Encoding, sink: Sink) -> None:
    """Stream an nfdump CSV export into `flows`."""
    state = _State()
    for block in iter_blocks(path, encoding, tap=getattr(sink, "tap", None)):
        _parse_block(block.data, block.starts, block.ends, block.base_offset, block.base_line, sink, state)


def parse_text(text: str, sink: Sink) -> None:
    """Same parser over text already in memory (small files, tests)."""
    text = text[1:] if text.startswith("\ufeff") else text
    block = lines_block(np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8))
    _parse_block(block.data, block.starts, block.ends, -1, 1, sink, _State())


def _line_text(data: np.ndarray, start: int, end: int) -> str:
    return decode_value(bytes(data[start : min(end, start + 4000)])).strip()


def _parse_block(data, starts, ends, base_offset: int, base_line: int, sink: Sink, state: _State) -> None:
    n = len(starts)
    if n == 0:
        return
    cls = np.empty(n, np.int8)
    _classify(data, starts, ends, cls)
    # Walk the few word lines (headers, trailer) in order; data rows between them form segments.
    is_data = cls == 2
    segments: list[tuple[int, int, tuple[str, ...] | None]] = []
    seg_start = 0
    marks = np.flatnonzero(cls == 1)
    if state.trailer_rows:
        nonblank = np.flatnonzero(cls != 0)
        for j in nonblank[: state.trailer_rows]:
            is_data[j] = False
            cls[j] = 0
        state.trailer_rows -= min(state.trailer_rows, len(nonblank))
    for j in marks:
        j = int(j)
        if cls[j] != 1:
            continue
        text = _line_text(data, int(starts[j]), int(ends[j]))
        low = text.lower()
        if low == "summary" or low.startswith("flows,bytes,packets"):
            is_data[j] = False
            if low.startswith("flows,bytes,packets"):
                # The numbers line after it is the last line of the trailer.
                following = np.flatnonzero(cls[j + 1 :] != 0)[:1]
                if len(following):
                    is_data[j + 1 + int(following[0])] = False
                    cls[j + 1 + int(following[0])] = 0
                else:
                    state.trailer_rows = 1
            continue
        names = header_names(text)
        if names is None:
            is_data[j] = True  # a stray word line: the row parser reports it
            continue
        is_data[j] = False
        segments.append((seg_start, j, state.names))
        state.names = names
        seg_start = j + 1
    segments.append((seg_start, n, state.names))
    for lo, hi, names in segments:
        sel = np.flatnonzero(is_data[lo:hi]) + lo
        if len(sel):
            _parse_rows(data, starts, ends, sel, names, base_offset, base_line, sink)


REASONS = (
    "",
    "column count differs from the header (truncated or damaged line)",
    "no readable source/destination address",
    "no readable flow time",
    "no header and not a 1.6 -q layout (48 or 43 columns)",
    "statistics (-s) table row, not a flow",
)


def _parse_rows(data, starts, ends, sel: np.ndarray, names, base_offset: int, base_line: int, sink: Sink) -> None:
    st, en = starts[sel], ends[sel]
    # Only the columns up to the last one used are stored; `nf` still counts every column.
    layouts = [names] if names else list(HEADERLESS.values())
    width = max((max(_roles(h).values(), default=0) for h in layouts), default=0) + 1
    vs, vl, nf = kvscan.split_fields(data, st, en, ",", width, quote=None)
    reason = np.zeros(len(sel), np.int8)
    if names is None:
        # -q output: pick the 1.6 layout by each line's column count.
        known = np.isin(nf, list(HEADERLESS))
        reason[~known] = 4
        for count, layout in HEADERLESS.items():
            rows = np.flatnonzero(nf == count)
            if len(rows):
                _emit(data, st, en, sel, rows, vs, vl, layout, reason, base_offset, base_line, sink)
    elif {n.lower() for n in names} & _STAT_NAMES or not {"src", "dst"} <= set(_roles(names)):
        reason[:] = 5
    else:
        ok = nf == len(names)
        reason[~ok] = 1
        rows = np.flatnonzero(ok)
        if len(rows):
            _emit(data, st, en, sel, rows, vs, vl, names, reason, base_offset, base_line, sink)
    skip_lines(data, st, en, sel + base_line, reason, REASONS, sink)


def _emit(data, st, en, sel, rows, vs_all, vl_all, names, reason, base_offset, base_line, sink: Sink) -> None:
    """Turn lines `rows` (indices into sel) laid out as `names` into a flows batch; mark failures."""
    used = _roles(names)
    order = sorted(set(used.values()))
    vs, vl = vs_all[order], vl_all[order]  # copy only the columns used, and only the rows kept
    if len(rows) != vs.shape[1]:
        vs, vl = vs[:, rows], vl[:, rows]
    col = {role: order.index(c) for role, c in used.items()}
    m = len(rows)

    def f(role: str) -> int:
        return col.get(role, -1)

    ok_src = ip_like(data, vs, vl, f("src"))
    ok_dst = ip_like(data, vs, vl, f("dst"))

    def when(role: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if f(role) < 0:
            return np.zeros(m, np.int64), np.zeros(m, np.bool_), np.zeros(m, np.bool_)
        t, ok, zoned = kvscan.time_column(data, vs, vl, f(role))
        e, eok = _ints(_epoch, data, vs, vl, f(role))
        use_epoch = ~ok & eok
        return np.where(use_epoch, e, t), ok | eok, zoned | use_epoch

    t0, ok0, z0 = when("first")
    t1, ok1, z1 = when("last")
    ts = np.where(ok0, t0, t1)
    ts_ok = ok0 | ok1
    zoned = np.where(ok0, z0, z1)

    good = ok_src & ok_dst & ts_ok
    reason[rows[~(ok_src & ok_dst)]] = 2
    reason[rows[ok_src & ok_dst & ~ts_ok]] = 3
    keep = np.flatnonzero(good)
    if not len(keep):
        return
    ascii = kvscan.high_bytes(data) == 0
    take = pa.array(keep)
    whole = len(keep) == m

    def sub(a: pa.Array) -> pa.Array:
        return a if whole else a.take(take)

    def strings(role: str) -> pa.Array:
        if f(role) < 0:
            return pa.nulls(len(keep), pa.string())
        return sub(kvscan.string_column(data, vs, vl, f(role), ascii))

    def ints(kernel, role: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        v, ok = _ints(kernel, data, vs, vl, f(role))
        if limit is not None:
            ok &= v <= limit
        return v[keep], ok[keep]

    sport, sport_ok = ints(_port, "sport")
    dport, dport_ok = ints(_port, "dport")
    nbytes, bytes_ok = ints(_number, "bytes")
    dur, dur_ok = ints(_number, "duration")
    # No duration column (fast mode): last seen minus first seen.
    span_ok = (ok0 & ok1)[keep] & ~dur_ok & (t1 >= t0)[keep]
    dur = np.where(span_ok, (t1 - t0)[keep] // 1_000_000, dur)
    dur_ok |= span_ok

    proto = sub(proto_column(data, vs, vl, f("proto")))

    router = strings("router")
    host = pc.if_else(pc.equal(router, "0.0.0.0"), pa.scalar(None, pa.string()), router)

    line_idx = sel[rows[keep]]
    cols = {
        "src_ip": strings("src"),
        "src_port": pa.array(sport.astype(np.int32), mask=~sport_ok),
        "dst_ip": strings("dst"),
        "dst_port": pa.array(dport.astype(np.int32), mask=~dport_ok),
        "proto": proto,
        "action": strings("flags"),
        "service": pa.nulls(len(keep), pa.string()),
        "bytes_out": pa.array(nbytes, mask=~bytes_ok),
        "bytes_in": pa.nulls(len(keep), pa.int64()),
        "pkts_in": pa.nulls(len(keep), pa.int64()),
        "duration": pa.array(dur, mask=~dur_ok),
        "vendor": kvscan.constant_column("nfdump", len(keep)),
    }
    offsets = st[rows[keep]] + base_offset if base_offset >= 0 else None
    sink.batch(FLOWS, record_table(FLOWS, line_idx + base_line, offsets, host, ts[keep], cols))
    if (~zoned[keep]).any():
        sink.meta["local_time"] = True  # printed times are the nfdump host's local time


FORMATS: tuple[Format, ...] = (
    Format(
        "nfdump",
        "NetFlow/IPFIX flows from nfdump -o csv (1.6 / 1.7 headers, -q, fast mode)",
        sniff,
        parse_text=parse_text,
        parse_file=parse_file,
        host_evidence=False,
    ),
)
