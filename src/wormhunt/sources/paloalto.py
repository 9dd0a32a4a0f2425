"""Palo Alto PAN-OS syslog CSV: TRAFFIC sessions -> `flows`, THREAT detections -> `net_alerts`.

PAN-OS writes no header line, so columns are taken by position in the documented field
order (formats.md section 9.2). Positions before the ones used are stable across versions;
fields are only appended (about 36 on PAN-OS 3.x, 100+ on 10.x), so a line needs the fields
up to the last one it must have and anything later is optional. The syslog header in front
of the leading `1,` lands in field 0, which is not used except to read the sender's name.

Choices:
* `ts` of a TRAFFIC record is the session's Start Time (Generated Time when that is missing),
  so scans are ordered by when they were attempted; THREAT uses Generated Time.
  `YYYY/MM/DD HH:MM:SS` is device-local (`sink.meta["local_time"]`); ISO-8601 with a zone
  (Strata/Cortex forwarding) is converted to UTC.
* `action` is PAN-OS's word in lower case (allow, deny, drop, drop-icmp, reset-client,
  reset-server, reset-both ...). An *allowed* session is refined from its Session End Reason
  so that failed connections look alike across vendors: `tcp-rst-from-server` -> server-rst,
  `tcp-rst-from-client` -> client-rst, `aged-out` with nothing received -> timeout; a `drop`
  or `deny` subtype overrides an `allow` action (the session was dropped after the policy).
* `service` is the App-ID application (`ms-ds-smb`, `msrpc`, `incomplete` ...).
* `host` is the Device Name field, else the syslog header's host, else the serial number.
* Session *start* logs are skipped (counted): the end log of the same session carries its
  bytes and result, and counting both would double every session.
* THREAT subtypes vulnerability, spyware, virus (and wildfire-/ml-virus), scan and flood are
  alerts; url, file, data and wildfire verdict logs are counted as skipped. The threat name
  and id share one field, `Name(12345)`; signature/severity/action are as printed, lower-cased
  where PAN-OS has a fixed vocabulary. Alert src/dst are the session's, as PAN-OS prints them.
* Other log types (SYSTEM, CONFIG ...), other subtypes and start logs are routine in a real
  export: they are all counted, with only a few examples each in the manifest.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit, prange

from wormhunt.model import FLOWS, NET_ALERTS
from wormhunt.sources import kvscan
from wormhunt.sources.base import MAX_SKIP_EXAMPLES, Format, Sink
from wormhunt.sources.netlog import ip_like, proto_column, record_table, sniff_hits
from wormhunt.sources.stream import iter_blocks, lines_block
from wormhunt.sources.text import Encoding, decode_value

# Field positions (0-based) in the PAN-OS 9.1 syslog field order.
F_RECEIVE, F_SERIAL, F_TYPE, F_SUBTYPE, F_GENERATED = 1, 2, 3, 4, 6
F_SRC, F_DST, F_APP = 7, 8, 14
F_SPORT, F_DPORT, F_PROTO, F_ACTION = 24, 25, 29, 30
# TRAFFIC
F_BYTES_SENT, F_BYTES_RCVD, F_START, F_ELAPSED, F_PKTS_RCVD, F_END_REASON, F_T_DEVICE = 32, 33, 35, 36, 45, 46, 52
# THREAT
F_THREAT, F_SEVERITY, F_A_DEVICE = 32, 34, 59
NFIELDS = 60
# Fields a line must have: TRAFFIC up to Elapsed Time, THREAT up to Severity.
MIN_TRAFFIC, MIN_THREAT = F_ELAPSED + 1, F_SEVERITY + 1

ALERT_SUBTYPES = ("vulnerability", "spyware", "virus", "wildfire-virus", "ml-virus", "scan", "flood")
# Words looked up in one pass per field (index in the tuple, -1 = another word).
TYPES = ("TRAFFIC", "THREAT")
SUBTYPES = ("start", "drop", "deny", *ALERT_SUBTYPES)
END_REASONS = ("aged-out", "tcp-rst-from-client", "tcp-rst-from-server")

_SNIFF = re.compile(
    r"(?:^|[\s>])\d+,\d{4}[/-]\d\d[/-]\d\d[ T]\d\d:\d\d:\d\d[^,]{0,16},\w*,"
    r"(?:TRAFFIC|THREAT|SYSTEM|CONFIG|HIP-MATCH|GLOBALPROTECT|USERID|AUTH|DECRYPTION|TUNNEL|CORRELATION|IPTAG|GTP|SCTP),"
    r"[\w-]*,",
    re.ASCII,
)


def sniff(head: str) -> float:
    hits, lines = sniff_hits(head, _SNIFF)
    return 0.96 if lines and hits >= max(1, lines // 2) else 0.55 if hits else 0.0


def parse_file(path: Path, encoding: Encoding, sink: Sink) -> None:
    """Stream a PAN-OS syslog file into `flows` and `net_alerts`."""
    tap = getattr(sink, "tap", None)
    examples = np.zeros(len(REASONS), np.int64)
    for block in iter_blocks(path, encoding, tap=tap):
        _parse_block(block.data, block.starts, block.ends, block.base_offset, block.base_line, sink, examples)


def parse_text(text: str, sink: Sink) -> None:
    """Same parser over text already in memory (small files, tests)."""
    block = lines_block(np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8))
    _parse_block(block.data, block.starts, block.ends, -1, 1, sink, np.zeros(len(REASONS), np.int64))


REASONS = (
    "",
    "not a PAN-OS log line",
    "other PAN-OS log type",
    "other THREAT subtype (url, file, data, wildfire)",
    "TRAFFIC session start log (the end log carries the session)",
    "truncated line (too few fields)",
    "no source/destination address",
    "no readable date/time",
)
# Examples kept per reason: routine skips (other log types, start logs) get a few, so they do
# not crowd the lines that went wrong out of the manifest's examples.
EXAMPLES = np.array([0, 1000, 20, 20, 5, 1000, 1000, 1000], np.int64)


@njit(cache=True, nogil=True, parallel=True)
def _blank(data, starts, ends, out):  # pragma: no cover - compiled
    """Lines of nothing but spaces, tabs, CR and NUL."""
    for i in prange(len(starts)):
        b = True
        for p in range(starts[i], ends[i]):
            c = data[p]
            if c != 32 and c != 9 and c != 13 and c != 0:
                b = False
                break
        out[i] = b


@functools.cache
def _words(words: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    raw = [w.encode() for w in words]
    offs = np.zeros(len(raw) + 1, np.int64)
    offs[1:] = np.cumsum([len(w) for w in raw])
    return np.frombuffer(b"".join(raw), np.uint8).copy(), offs


@njit(cache=True, nogil=True, parallel=True)
def _classify(data, vs, vl, f, blob, offs, out):  # pragma: no cover - compiled
    """out[i] = index of the word field f of line i equals, or -1."""
    for i in prange(vs.shape[1]):
        out[i] = -1
        ln = vl[f, i]
        s = vs[f, i]
        for w in range(len(offs) - 1):
            if offs[w + 1] - offs[w] != ln:
                continue
            same = True
            for t in range(ln):
                if data[s + t] != blob[offs[w] + t]:
                    same = False
                    break
            if same:
                out[i] = w
                break


@njit(cache=True, nogil=True, parallel=True)
def _header_host(data, vs, vl, hs, hl):  # pragma: no cover - compiled
    """Host of a syslog header in field 0 (`Nov 30 16:09:08 PA-220 1`): the token before the last.
    Absent when field 0 has one token, or that token is a time (`16:09:08`) or RFC 5424's `-`."""
    n = vs.shape[1]
    for i in prange(n):
        hs[i] = 0
        hl[i] = -1
        ln = vl[0, i]
        if ln <= 0:
            continue
        s = vs[0, i]
        e = s + ln
        while e > s and data[e - 1] != 32:  # drop the last token (the `1` field)
            e -= 1
        while e > s and data[e - 1] == 32:
            e -= 1
        if e <= s:
            continue
        b = e
        while b > s and data[b - 1] != 32 and data[b - 1] != 62:  # back to a space or `>`
            b -= 1
        if e > b and data[e - 1] == 58:  # `host:`
            e -= 1
        m = e - b
        if m <= 0 or (m == 1 and data[b] == 45):
            continue
        if m == 8 and data[b + 2] == 58 and data[b + 5] == 58:
            continue
        hs[i] = b
        hl[i] = m


@njit(cache=True, nogil=True, parallel=True)
def _threat_name(data, vs, vl, f, ns, nl, is_, il):  # pragma: no cover - compiled
    """Split `Name(12345)` in field f into the name and the id; a field without a trailing
    `(digits)` is all name. Empty names and ids are absent."""
    n = vs.shape[1]
    for i in prange(n):
        ns[i] = 0
        nl[i] = -1
        is_[i] = 0
        il[i] = -1
        ln = vl[f, i]
        if ln <= 0:
            continue
        s = vs[f, i]
        e = s + ln
        name_end = e
        if data[e - 1] == 41:  # `)`
            p = e - 2
            while p >= s and 48 <= data[p] <= 57:
                p -= 1
            if p >= s and data[p] == 40 and p < e - 2:  # `(` with at least one digit
                is_[i] = p + 1
                il[i] = e - 2 - p
                name_end = p
        while name_end > s and data[name_end - 1] == 32:
            name_end -= 1
        if name_end > s:
            ns[i] = s
            nl[i] = name_end - s


def _text(data: np.ndarray, start: int, end: int) -> str:
    return decode_value(bytes(data[start : min(end, start + 300)]))


def _skips(data, starts, ends, base_line: int, reason: np.ndarray, sink: Sink, examples: np.ndarray) -> None:
    """Count every skipped line; keep examples up to the sink's room and each reason's quota."""
    bad = np.flatnonzero(reason)
    if not len(bad):
        return
    codes, counts = np.unique(reason[bad], return_counts=True)
    for code, count in zip(codes, counts, strict=True):
        rows = bad[reason[bad] == code]
        room = int(min(max(0, MAX_SKIP_EXAMPLES - len(sink.skips)), max(0, EXAMPLES[code] - examples[code])))
        for j in rows[:room]:
            sink.skip(base_line + int(j), REASONS[code], _text(data, int(starts[j]), int(ends[j])))
        examples[code] += min(room, len(rows))
        sink.skip_counts[REASONS[code]] += int(count) - min(room, len(rows))


def _pick(cond: np.ndarray, a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]):
    """(vs, vl) of a where cond holds, else of b."""
    return np.where(cond, a[0], b[0]), np.where(cond, a[1], b[1])


def _parse_block(data, starts, ends, base_offset: int, base_line: int, sink: Sink, examples: np.ndarray) -> None:
    n = len(starts)
    if n == 0:
        return
    vs, vl, nf = kvscan.split_fields(data, starts, ends, ",", NFIELDS)
    ascii = kvscan.high_bytes(data) == 0

    def word(f: int, words: tuple[str, ...]) -> np.ndarray:
        out = np.empty(n, np.int8)
        _classify(data, vs, vl, f, *_words(words), out)
        return out

    blank = np.empty(n, np.bool_)
    _blank(data, starts, ends, blank)
    kind = word(F_TYPE, TYPES)
    is_traffic, is_threat = kind == 0, kind == 1
    subtype = word(F_SUBTYPE, SUBTYPES)
    alert_sub = subtype >= 3
    start_log = is_traffic & (subtype == 0)

    rt, rt_ok, rt_z = kvscan.time_column(data, vs, vl, F_RECEIVE)
    gt, gt_ok, gt_z = kvscan.time_column(data, vs, vl, F_GENERATED)
    st, st_ok, st_z = kvscan.time_column(data, vs, vl, F_START)
    use_start = is_traffic & st_ok
    use_gen = ~use_start & gt_ok
    ts = np.where(use_start, st, np.where(use_gen, gt, rt))
    ts_ok = use_start | use_gen | rt_ok
    zoned = np.where(use_start, st_z, np.where(use_gen, gt_z, rt_z))

    long_enough = np.where(is_traffic, nf >= MIN_TRAFFIC, nf >= MIN_THREAT)
    has_ip = ip_like(data, vs, vl, F_SRC) & ip_like(data, vs, vl, F_DST)
    wanted = (is_traffic & ~start_log) | (is_threat & alert_sub)
    ok = wanted & long_enough & has_ip & ts_ok
    flow_ok = ok & is_traffic
    alert_ok = ok & is_threat

    # A line of another PAN-OS type still has a Receive Time and an upper-case type word.
    pan_like = rt_ok & (vl[F_TYPE] > 0)
    reason = np.zeros(n, np.int8)
    reason[~blank & ~is_traffic & ~is_threat] = 1
    reason[~blank & ~is_traffic & ~is_threat & pan_like] = 2
    reason[is_threat & ~alert_sub & ~blank] = 3
    reason[start_log & ~blank] = 4
    reason[wanted & ~long_enough] = 5
    reason[wanted & long_enough & ~has_ip] = 6
    reason[wanted & long_enough & has_ip & ~ts_ok] = 7
    _skips(data, starts, ends, base_line, reason, sink, examples)
    if not (flow_ok.any() or alert_ok.any()):
        return

    # host: Device Name, else the syslog header's host, else the serial number.
    hvs, hvl = np.empty(n, np.int32), np.empty(n, np.int32)
    _header_host(data, vs, vl, hvs, hvl)
    dev = _pick(is_traffic, (vs[F_T_DEVICE], vl[F_T_DEVICE]), (vs[F_A_DEVICE], vl[F_A_DEVICE]))
    host = _pick(dev[1] > 0, dev, _pick(hvl > 0, (hvs, hvl), (vs[F_SERIAL], vl[F_SERIAL])))
    host_col = kvscan.string_column(data, host[0][None, :], host[1][None, :], 0, ascii)

    @functools.cache  # columns both kinds use are built once
    def s(f: int) -> pa.Array:
        return kvscan.string_column(data, vs, vl, f, ascii)

    def s2(pair: tuple[np.ndarray, np.ndarray]) -> pa.Array:
        return kvscan.string_column(data, pair[0][None, :], pair[1][None, :], 0, ascii)

    @functools.cache
    def i(f: int, dtype: type = np.int64) -> pa.Array:
        return kvscan.int_column(data, vs, vl, f, dtype)

    proto = proto_column(data, vs, vl, F_PROTO)  # names, or a number (some exports)

    def table(kind, keep: np.ndarray, extra: dict[str, pa.Array]) -> pa.Table:
        rows = np.flatnonzero(keep)
        whole = len(rows) == n
        sub = (lambda a: a) if whole else (lambda a: a.take(pa.array(rows)))
        cols = {
            "src_ip": sub(s(F_SRC)),
            "src_port": sub(i(F_SPORT, np.int32)),
            "dst_ip": sub(s(F_DST)),
            "dst_port": sub(i(F_DPORT, np.int32)),
            "proto": sub(proto),
            "vendor": kvscan.constant_column("paloalto", len(rows)),
        }
        cols.update({k: sub(v) for k, v in extra.items()})
        offsets = starts[rows] + base_offset if base_offset >= 0 else None
        return record_table(kind, rows + base_line, offsets, sub(host_col), ts[rows], cols)

    action = pc.utf8_lower(s(F_ACTION))
    if flow_ok.any():
        extra = _traffic_columns(
            action, subtype, word(F_ACTION, ("allow",)) == 0, word(F_END_REASON, END_REASONS), i, s
        )
        sink.batch(FLOWS, table(FLOWS, flow_ok, extra))
    if alert_ok.any():
        ns, nl, ids, il = (np.empty(n, np.int32) for _ in range(4))
        _threat_name(data, vs, vl, F_THREAT, ns, nl, ids, il)
        extra = {
            "signature": s2((ns, nl)),
            "signature_id": s2((ids, il)),
            "severity": pc.utf8_lower(s(F_SEVERITY)),
            "action": action,
        }
        sink.batch(NET_ALERTS, table(NET_ALERTS, alert_ok, extra))
    if (~zoned & (flow_ok | alert_ok)).any():
        sink.meta["local_time"] = True  # device-local YYYY/MM/DD times


def _traffic_columns(action: pa.Array, subtype: np.ndarray, allow: np.ndarray, end: np.ndarray, i, s) -> dict:
    """Columns of TRAFFIC rows, with the action refined from the subtype and end reason."""
    pkts_in = i(F_PKTS_RCVD)
    bytes_in = i(F_BYTES_RCVD)
    got_none = np.asarray(pc.fill_null(pc.equal(pc.coalesce(pkts_in, bytes_in), 0), False))
    words = ("drop", "deny", "server-rst", "client-rst", "timeout")
    code = np.full(len(allow), -1, np.int8)
    code[allow & (end == 0) & got_none] = 4
    code[allow & (end == 1)] = 3
    code[allow & (end == 2)] = 2
    code[allow & (subtype == 2)] = 1
    code[allow & (subtype == 1)] = 0
    refined = pa.DictionaryArray.from_arrays(pa.array(np.maximum(code, 0)), pa.array(words)).cast(pa.string())
    return {
        "action": pc.if_else(pa.array(code >= 0), refined, action),
        "service": s(F_APP),
        "bytes_out": i(F_BYTES_SENT),
        "bytes_in": bytes_in,
        "pkts_in": pkts_in,
        "duration": i(F_ELAPSED),
    }


FORMATS: tuple[Format, ...] = (
    Format(
        "paloalto",
        "Palo Alto PAN-OS syslog CSV (TRAFFIC, THREAT)",
        sniff,
        parse_text=parse_text,
        parse_file=parse_file,
        host_evidence=False,
    ),
)
