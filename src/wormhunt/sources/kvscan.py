"""Compiled bulk scanner for `key=value` logs (FortiGate and friends).

Firewall logs run to hundreds of millions of lines; a regex per field in Python (or even
in DuckDB) costs several passes over every byte. These kernels make one pass per line,
in parallel over lines, and record where the wanted keys' values are; the caller turns
them into Arrow columns without creating a Python object per value.

All kernels index only inside the buffers they are given; every loop checks its bound,
because compiled code has no IndexError to fall back on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from numba import njit, prange

from wormhunt import timeparse

_days_from_civil = njit(cache=True, nogil=True)(timeparse.days_from_civil)

SPACE, TAB, CR, NL, EQ, QUOTE, BACKSLASH, LT, GT = 32, 9, 13, 10, 61, 34, 92, 60, 62


@dataclass(frozen=True)
class KeySet:
    """The keys to extract, laid out for the kernels (sorted, grouped by first byte)."""

    keys: tuple[str, ...]
    kbytes: np.ndarray
    koffs: np.ndarray
    first: np.ndarray

    @classmethod
    def of(cls, keys: list[str]) -> KeySet:
        ordered = tuple(sorted(set(keys)))
        blob = b"".join(k.encode() for k in ordered)
        koffs = np.zeros(len(ordered) + 1, np.int64)
        for i, k in enumerate(ordered):
            koffs[i + 1] = koffs[i] + len(k.encode())
        first = np.full(256, -1, np.int64)
        for i, k in enumerate(ordered):
            b = k.encode()[0]
            if first[b] < 0:
                first[b] = i
        return cls(ordered, np.frombuffer(blob, np.uint8).copy(), koffs, first)

    def index(self, key: str) -> int:
        return self.keys.index(key)


@njit(cache=True, nogil=True, parallel=True)
def line_ends(data):  # pragma: no cover - compiled
    """Positions of every newline byte, found in parallel blocks."""
    n = len(data)
    nblk = 64
    bs = (n + nblk - 1) // nblk
    cnt = np.zeros(nblk, np.int64)
    for b in prange(nblk):
        c = 0
        hi = min(n, (b + 1) * bs)
        for p in range(b * bs, hi):
            if data[p] == 10:
                c += 1
        cnt[b] = c
    base = np.zeros(nblk + 1, np.int64)
    for b in range(nblk):
        base[b + 1] = base[b] + cnt[b]
    ends = np.empty(base[nblk], np.int64)
    for b in prange(nblk):
        k = base[b]
        hi = min(n, (b + 1) * bs)
        for p in range(b * bs, hi):
            if data[p] == 10:
                ends[k] = p
                k += 1
    return ends


@njit(cache=True, nogil=True, parallel=True)
def high_bytes(data):  # pragma: no cover - compiled
    """How many bytes are >= 0x80: zero means the block is ASCII and needs no UTF-8 check."""
    c = 0
    for p in prange(len(data)):
        c += data[p] >> 7
    return c


@njit(cache=True, nogil=True, inline="always")
def _match(data, ks, klen, kbytes, koffs, first):  # pragma: no cover - compiled
    nk = len(koffs) - 1
    c = data[ks]
    j = first[c]
    if j < 0:
        return -1
    while j < nk:
        o = koffs[j]
        if kbytes[o] != c:
            return -1
        if koffs[j + 1] - o == klen:
            same = True
            for t in range(1, klen):
                if data[ks + t] != kbytes[o + t]:
                    same = False
                    break
            if same:
                return j
        j += 1
    return -1


@njit(cache=True, nogil=True, parallel=True)
def scan(data, starts, ends, kbytes, koffs, first, vs, vl, nkv):  # pragma: no cover - compiled
    """For each line [starts[i], ends[i]): value start/length of each wanted key (first wins).

    Values may be bare (`k=v`) or double-quoted with backslash escapes (`k="a b"`); a
    `<PRI>` glued to the first key is skipped. `nkv[i]` counts key=value tokens seen,
    so the caller can tell a log line from junk.
    """
    n = len(starts)
    nk = len(koffs) - 1
    for i in prange(n):
        for f in range(nk):  # vs/vl are (field, line): each field's values are contiguous
            vl[f, i] = -1
            vs[f, i] = 0
        p = starts[i]
        e = ends[i]
        while e > p and (data[e - 1] == CR or data[e - 1] == SPACE or data[e - 1] == TAB):
            e -= 1
        found = 0
        count = 0
        while p < e and found < nk:
            while p < e and (data[p] == SPACE or data[p] == TAB):
                p += 1
            ks = p
            while p < e and data[p] != EQ and data[p] != SPACE and data[p] != TAB:
                p += 1
            if p >= e:
                break
            if data[p] != EQ:
                continue  # a bare word (syslog header): not a key
            ke = p
            p += 1
            if p < e and data[p] == QUOTE:
                p += 1
                s = p
                while p < e and data[p] != QUOTE:
                    if data[p] == BACKSLASH and p + 1 < e:
                        p += 1
                    p += 1
                ve = p if p < e else e
                p += 1
            else:
                s = p
                while p < e and data[p] != SPACE and data[p] != TAB:
                    p += 1
                ve = p
            if ks < ke and data[ks] == LT:
                q = ks
                while q < ke and data[q] != GT:
                    q += 1
                ks = q + 1
            if ke > ks:
                count += 1
                f = _match(data, ks, ke - ks, kbytes, koffs, first)
                if f >= 0 and vl[f, i] < 0:
                    vs[f, i] = s
                    vl[f, i] = ve - s
                    found += 1
        nkv[i] = count


@njit(cache=True, nogil=True, parallel=True)
def equals(data, vs, vl, f, lit, out):  # pragma: no cover - compiled
    """out[i] = field f of line i is exactly the bytes `lit`."""
    n = vs.shape[1]
    m = len(lit)
    for i in prange(n):
        same = vl[f, i] == m
        if same:
            s = vs[f, i]
            for t in range(m):
                if data[s + t] != lit[t]:
                    same = False
                    break
        out[i] = same


@njit(cache=True, nogil=True, parallel=True)
def fallback(vs, vl, f, g):  # pragma: no cover - compiled
    """Where field f is absent, use field g (FortiOS 5 `attackname` for `attack` ...)."""
    for i in prange(vs.shape[1]):
        if vl[f, i] < 0 and vl[g, i] >= 0:
            vs[f, i] = vs[g, i]
            vl[f, i] = vl[g, i]


@njit(cache=True, nogil=True, parallel=True)
def gather(data, vs, vl, f, offs, out):  # pragma: no cover - compiled
    """Copy field f's values into one contiguous buffer (Arrow string layout)."""
    n = vs.shape[1]
    for i in prange(n):
        ln = vl[f, i]
        if ln > 0:
            o = offs[i]
            s = vs[f, i]
            for t in range(ln):
                out[o + t] = data[s + t]


@njit(cache=True, nogil=True, parallel=True)
def to_int(data, vs, vl, f, out, valid):  # pragma: no cover - compiled
    """Field f as a non-negative integer (up to 18 digits); anything else is null."""
    n = vs.shape[1]
    for i in prange(n):
        ln = vl[f, i]
        ok = 0 < ln <= 18
        v = 0
        if ok:
            s = vs[f, i]
            for t in range(ln):
                c = data[s + t]
                if c < 48 or c > 57:
                    ok = False
                    break
                v = v * 10 + (c - 48)
        out[i] = v if ok else 0
        valid[i] = ok


@njit(cache=True, nogil=True, inline="always")
def _digits(data, s, ln):  # pragma: no cover - compiled
    v = 0
    for t in range(ln):
        c = data[s + t]
        if c < 48 or c > 57:
            return -1
        v = v * 10 + (c - 48)
    return v


@njit(cache=True, nogil=True, inline="always")
def _tz_minutes(data, s, ln):  # pragma: no cover - compiled
    """`+0900`, `-0500`, `UTC-5:00`, `+08:00` -> minutes east; -100000 when unreadable."""
    p = s
    e = s + ln
    while p < e and data[p] != 43 and data[p] != 45:  # skip "UTC"/"GMT"
        p += 1
    if p >= e:
        # A bare zone name is offset 0, as in timeparse.tz_offset_minutes.
        if ln == 1 and (data[s] == 90 or data[s] == 122):  # Z
            return 0
        if ln == 3:
            a, b, c = data[s] | 32, data[s + 1] | 32, data[s + 2] | 32
            if (a == 117 and b == 116 and c == 99) or (a == 103 and b == 109 and c == 116):  # utc, gmt
                return 0
        return -100000
    sign = 1 if data[p] == 43 else -1
    p += 1
    hh = 0
    nd = 0
    while p < e and 48 <= data[p] <= 57 and nd < 2:
        hh = hh * 10 + (data[p] - 48)
        p += 1
        nd += 1
    if nd == 0:
        return -100000
    if p < e and data[p] == 58:
        p += 1
    mm = 0
    md = 0
    while p < e and 48 <= data[p] <= 57 and md < 2:
        mm = mm * 10 + (data[p] - 48)
        p += 1
        md += 1
    total = hh * 60 + mm
    if mm > 59 or total > 14 * 60:
        return -100000
    return sign * total


@njit(cache=True, nogil=True, inline="always")
def _month_days(y, m):  # pragma: no cover - compiled
    if m == 2:
        return 29 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 28
    return 30 if m in (4, 6, 9, 11) else 31


@njit(cache=True, nogil=True, parallel=True)
def fortinet_time(data, vs, vl, fdate, ftime, ftz, fevent, out, valid, zoned):  # pragma: no cover
    """Epoch microseconds per line: `eventtime` (s/ms/us/ns) when present, else date+time
    shifted by tz. `zoned[i]` says whether the result is UTC (False: device-local)."""
    n = vs.shape[1]
    for i in prange(n):
        out[i] = 0
        valid[i] = False
        zoned[i] = False
        ln = vl[fevent, i]
        if 10 <= ln <= 19:
            v = _digits(data, vs[fevent, i], ln)
            if v > 0:
                if ln <= 10:
                    out[i] = v * 1000000
                elif ln <= 13:
                    out[i] = v * 1000
                elif ln <= 16:
                    out[i] = v
                else:
                    out[i] = v // 1000
                valid[i] = True
                zoned[i] = True
                continue
        ld = vl[fdate, i]
        lt = vl[ftime, i]
        if ld != 10 or lt < 8:
            continue
        sd = vs[fdate, i]
        st = vs[ftime, i]
        y = _digits(data, sd, 4)
        mo = _digits(data, sd + 5, 2)
        d = _digits(data, sd + 8, 2)
        hh = _digits(data, st, 2)
        mi = _digits(data, st + 3, 2)
        ss = _digits(data, st + 6, 2)
        if y < 1970 or mo < 1 or mo > 12 or d < 1 or d > _month_days(y, mo) or hh < 0 or hh > 23 or mi < 0 or mi > 59:
            continue
        if ss < 0 or ss > 60:
            continue
        secs = _days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss
        lz = vl[ftz, i]
        if lz > 0:
            tz = _tz_minutes(data, vs[ftz, i], lz)
            if tz != -100000:
                secs -= tz * 60
                zoned[i] = True
        out[i] = secs * 1000000
        valid[i] = True


def field_equals(data: np.ndarray, vs: np.ndarray, vl: np.ndarray, f: int, literal: str) -> np.ndarray:
    out = np.empty(vs.shape[1], np.bool_)
    if len(out):
        equals(data, vs, vl, f, np.frombuffer(literal.encode(), np.uint8), out)
    return out


def constant_column(value: str, n: int) -> pa.Array:
    """n copies of one string, built without n Python objects."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value])).cast(pa.string())


def string_column(data: np.ndarray, vs: np.ndarray, vl: np.ndarray, f: int, ascii: bool = False) -> pa.Array:
    """Field f of every line as an Arrow string array (null where the key is absent).
    `ascii` says the source bytes are all ASCII, so the UTF-8 check can be skipped."""
    lens = np.maximum(vl[f], 0).astype(np.int64)
    offs = np.zeros(len(lens) + 1, np.int64)
    np.cumsum(lens, out=offs[1:])
    out = np.empty(int(offs[-1]), np.uint8)
    if len(lens):
        gather(data, vs, vl, f, offs, out)
    valid = vl[f] >= 0
    arr = pa.LargeStringArray.from_buffers(
        len(lens), pa.py_buffer(offs), pa.py_buffer(out), pa.py_buffer(np.packbits(valid, bitorder="little"))
    )
    try:
        if not ascii:
            arr.validate(full=True)  # strict UTF-8; a GBK device name or a cut value fails here
    except pa.ArrowInvalid:
        from wormhunt.sources.text import decode_value

        arr = pa.array(
            [None if v is None else decode_value(v) for v in arr.cast(pa.large_binary()).to_pylist()],
            pa.large_string(),
        )
    return arr.cast(pa.string())


def int_column(data: np.ndarray, vs: np.ndarray, vl: np.ndarray, f: int, dtype: type = np.int64) -> pa.Array:
    out = np.empty(vs.shape[1], np.int64)
    valid = np.empty(vs.shape[1], np.bool_)
    if len(out):
        to_int(data, vs, vl, f, out, valid)
    if dtype is np.int32:
        valid &= out <= 2**31 - 1
    return pa.array(out.astype(dtype), mask=~valid)


# --- Delimited lines (CSV, TSV, space-separated): fields by position -----------------------


@njit(cache=True, nogil=True, parallel=True)
def split(data, starts, ends, sep, quote, skip, vs, vl, nf):  # pragma: no cover - compiled
    """Field j of line i -> vs[j, i], vl[j, i] (first vs.shape[0] fields; -1 = absent).

    `sep` is the separator byte; with `quote` >= 0 a field that starts with it runs to the
    closing quote (a doubled quote inside is kept as is). `skip` bytes at the start of each
    line are ignored (a syslog header, found by the caller). Surrounding spaces are trimmed
    when the separator is not a space. `nf[i]` is the number of fields on the line.
    """
    n = len(starts)
    nfmax = vs.shape[0]
    for i in prange(n):
        for f in range(nfmax):
            vl[f, i] = -1
            vs[f, i] = 0
        p = starts[i] + skip[i]
        e = ends[i]
        while e > p and (data[e - 1] == CR or (sep != SPACE and sep != TAB and data[e - 1] == SPACE)):
            e -= 1
        if p >= e:
            nf[i] = 0
            continue
        j = 0
        while True:
            if sep != SPACE and sep != TAB:
                while p < e and data[p] == SPACE:
                    p += 1
            if quote >= 0 and p < e and data[p] == quote:
                p += 1
                s = p
                while p < e:
                    if data[p] == quote:
                        if p + 1 < e and data[p + 1] == quote:
                            p += 2
                            continue
                        break
                    p += 1
                ve = p
                while p < e and data[p] != sep:
                    p += 1
            else:
                s = p
                while p < e and data[p] != sep:
                    p += 1
                ve = p
                if sep != SPACE and sep != TAB:
                    while ve > s and data[ve - 1] == SPACE:
                        ve -= 1
            if j < nfmax:
                vs[j, i] = s
                vl[j, i] = ve - s
            j += 1
            if p >= e:
                break
            p += 1  # the separator
            if sep == SPACE:
                while p < e and data[p] == SPACE:
                    p += 1
        nf[i] = j


@njit(cache=True, nogil=True, inline="always")
def num(data, p, e, maxd):  # pragma: no cover - compiled
    """Up to maxd digits at p: (value, next position); value -1 when there are none."""
    v = 0
    q = p
    while q < e and q - p < maxd and 48 <= data[q] <= 57:
        v = v * 10 + (data[q] - 48)
        q += 1
    return (v if q > p else -1), q


@njit(cache=True, nogil=True, inline="always")
def frac_us(data, p, e):  # pragma: no cover - compiled
    """Digits of a fraction of a second at p (after the dot) -> (microseconds, next position)."""
    us = 0
    scale = 100000
    while p < e and 48 <= data[p] <= 57:
        us += (data[p] - 48) * scale
        scale //= 10
        p += 1
    return us, p


@njit(cache=True, nogil=True, parallel=True)
def datetime_field(data, vs, vl, f, out, valid, zoned):  # pragma: no cover - compiled
    """`YYYY-MM-DD HH:MM:SS[.fff][Z|+hh[:mm]]` (also `/` or `T`, one-digit parts) in field f
    -> epoch microseconds. `zoned` says the text carried a zone (else it is local time)."""
    n = vs.shape[1]
    for i in prange(n):
        out[i] = 0
        valid[i] = False
        zoned[i] = False
        ln = vl[f, i]
        if ln < 14:
            continue
        p = vs[f, i]
        e = p + ln
        y, p = num(data, p, e, 4)
        if y < 1970 or p >= e or (data[p] != 45 and data[p] != 47):
            continue
        mo, p = num(data, p + 1, e, 2)
        if mo < 1 or mo > 12 or p >= e or (data[p] != 45 and data[p] != 47):
            continue
        d, p = num(data, p + 1, e, 2)
        if d < 1 or d > _month_days(y, mo) or p >= e or (data[p] != SPACE and data[p] != 84):
            continue
        hh, p = num(data, p + 1, e, 2)
        if hh < 0 or hh > 23 or p >= e or data[p] != 58:
            continue
        mi, p = num(data, p + 1, e, 2)
        if mi < 0 or mi > 59 or p >= e or data[p] != 58:
            continue
        ss, p = num(data, p + 1, e, 2)
        if ss < 0 or ss > 60:
            continue
        us = 0
        if p < e and (data[p] == 46 or data[p] == 44):
            us, p = frac_us(data, p + 1, e)
        secs = _days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss
        if p < e:
            tz = _tz_minutes(data, p, e - p)
            if tz == -100000:
                continue
            secs -= tz * 60
            zoned[i] = True
        out[i] = secs * 1000000 + us
        valid[i] = True


@njit(cache=True, nogil=True, parallel=True)
def epoch_field(data, vs, vl, f, out, valid):  # pragma: no cover - compiled
    """`1421270042.835161` (seconds with an optional fraction) in field f -> epoch microseconds."""
    n = vs.shape[1]
    for i in prange(n):
        out[i] = 0
        valid[i] = False
        ln = vl[f, i]
        if ln <= 0 or ln > 24:
            continue
        p = vs[f, i]
        e = p + ln
        v, p = num(data, p, e, 12)
        if v < 0:
            continue
        us = 0
        if p < e and data[p] == 46:
            us, p = frac_us(data, p + 1, e)
        if p != e:
            continue
        out[i] = v * 1000000 + us
        valid[i] = True


def split_fields(
    data: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    sep: str,
    nfields: int,
    quote: str | None = '"',
    skip: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fields by position of every line: (vs, vl, nf) as `split` fills them."""
    n = len(starts)
    vs = np.empty((nfields, n), np.int32)
    vl = np.empty((nfields, n), np.int32)
    nf = np.empty(n, np.int32)
    if skip is None:
        skip = np.zeros(n, np.int64)
    if n:
        split(data, starts, ends, ord(sep), ord(quote) if quote else -1, skip, vs, vl, nf)
    return vs, vl, nf


def time_column(data: np.ndarray, vs: np.ndarray, vl: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Field f as a date-time: (epoch microseconds, valid, zoned)."""
    n = vs.shape[1]
    out, valid, zoned = np.empty(n, np.int64), np.empty(n, np.bool_), np.empty(n, np.bool_)
    if n:
        datetime_field(data, vs, vl, f, out, valid, zoned)
    return out, valid, zoned


def epoch_column(data: np.ndarray, vs: np.ndarray, vl: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Field f as epoch seconds with a fraction: (epoch microseconds, valid)."""
    n = vs.shape[1]
    out, valid = np.empty(n, np.int64), np.empty(n, np.bool_)
    if n:
        epoch_field(data, vs, vl, f, out, valid)
    return out, valid
