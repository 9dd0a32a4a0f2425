"""Linux netfilter `LOG` target lines (iptables, ip6tables, ufw) in syslog/journal files (formats.md 9.7).

`Jan  8 03:37:09 host kernel: [  307.757925] iptables DROP_INPUT: IN=eth0 OUT= MAC=... SRC=... DST=...
LEN=52 ... PROTO=TCP SPT=17805 DPT=445 ... SYN URGP=0`

* The payload starts at `IN=` (at the line start, after a space, or glued to a `]` when `--log-prefix`
  has no trailing space: `[wan-lan-default-D]IN=eth0`). The text between the syslog header and `IN=`
  is the tag, the optional kernel uptime and the log prefix.
* `KEY=value` tokens and bare flags (`DF`, `SYN` ...); an ICMP error embeds the offending packet in
  `[...]` with its own SRC/DST/PROTO/SPT/DPT: only the part before the first `[` after `IN=` is read,
  so a record keeps the outer addresses.
* `action` is read from the prefix: the first of drop/deny/reject/accept/block/allow in it, or the
  EdgeOS-style rule suffix `-D`/`-R`/`-A` (`[WAN_IN-default-D]` -> drop); any other prefix -> `logged`.
* `bytes_out` is `LEN=` (the IP length of the one logged packet); ports are null without SPT/DPT (ICMP).
* The RFC 3164 header has no year: `sink.meta["default_year"]`, else the file's modification year
  (the current year for text), and `sink.meta["year_guessed"]`; its times are device-local.

Fields are located by the compiled key=value scanner; only the short text before `IN=` is read in
Python, with the parse of each distinct header cached.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit, prange

from wormhunt.model import FLOWS
from wormhunt.sources import kvscan
from wormhunt.sources.base import Format, Sink
from wormhunt.sources.netlog import file_year, proto_column, record_table, short_ip, skip_lines, sniff_hits
from wormhunt.sources.stream import iter_blocks, lines_block
from wormhunt.sources.syslog import split_header
from wormhunt.sources.text import Encoding, decode_value

KEYS = kvscan.KeySet.of(["IN", "OUT", "SRC", "DST", "LEN", "PROTO", "SPT", "DPT"])
_K = {k: KEYS.index(k) for k in KEYS.keys}
_SNIFF = re.compile(r"(?:^|[\s\]])IN=\S* OUT=\S* .*\bSRC=[0-9a-fA-F.:]+ DST=[0-9a-fA-F.:]+ .*\bPROTO=\w+", re.ASCII)
_ACTION_WORD = re.compile(r"(drop|deny|denied|reject|accept|block|allow)", re.IGNORECASE)
_RULE_SUFFIX = re.compile(r"-([DRA])\]?\s*:?\s*$")
_WORDS = {"denied": "deny"}
_SUFFIX = {"D": "drop", "R": "reject", "A": "accept"}
_CACHE_MAX = 200_000


def sniff(head: str) -> float:
    hits, lines = sniff_hits(head, _SNIFF)
    return 0.96 if lines and hits >= max(1, lines // 2) else 0.6 if hits >= 3 else 0.0


def action_of(prefix: str) -> str:
    """The log prefix as an action word: `iptables DROP_INPUT:` -> drop, `[wan-lan-default-D]` -> drop,
    `[UFW BLOCK]` -> block; a prefix that names no verdict -> logged."""
    m = _ACTION_WORD.search(prefix)
    if m:
        word = m.group(1).lower()
        return _WORDS.get(word, word)
    m = _RULE_SUFFIX.search(prefix.strip())
    return _SUFFIX[m.group(1)] if m else "logged"


@njit(cache=True, nogil=True, parallel=True)
def _locate(data, starts, ends, at, cut):  # pragma: no cover - compiled
    """at[i]: where `IN=` starts (after the line start, a space/tab or `]`), -1 if absent;
    cut[i]: the first `[` after it (an ICMP error's embedded packet) or the line end."""
    for i in prange(len(starts)):
        s = starts[i]
        e = ends[i]
        at[i] = -1
        cut[i] = e
        p = s
        while p + 3 <= e:
            glued = p == s or data[p - 1] == 32 or data[p - 1] == 9 or data[p - 1] == 93  # start, blank or ]
            if glued and data[p] == 73 and data[p + 1] == 78 and data[p + 2] == 61:  # IN=
                at[i] = p
                break
            p += 1
        if at[i] >= 0:
            q = at[i] + 3
            while q < e and data[q] != 91:
                q += 1
            cut[i] = q


REASONS = (
    "",
    "not an iptables LOG line (no IN=)",
    "no SRC/DST address",
    "no readable date/time (no syslog header)",
)


class _Header:
    """Parses the text before `IN=` (syslog header, tag, uptime, prefix), cached per distinct text."""

    def __init__(self, year: int) -> None:
        self.year = year
        self.cache: dict[bytes, tuple[int, bool, bool, str | None, str]] = {}

    def __call__(self, raw: bytes) -> tuple[int, bool, bool, str | None, str]:
        """-> (epoch us or -1, zoned, year known, host, action)."""
        hit = self.cache.get(raw)
        if hit is not None:
            return hit
        if len(self.cache) > _CACHE_MAX:
            self.cache.clear()
        text = decode_value(raw).strip("\r")
        head = split_header(text, self.year)
        host, rest = head.host, head.rest
        if host is not None and text[: len(text) - len(rest)].rstrip().endswith(host + ":"):
            # `Jan  8 03:37:09 DENY: IN=`: a word followed by a colon is a tag or prefix, not a host.
            host, rest = None, host + ": " + rest
        stamp = head.stamp
        us = -1
        if stamp is not None:
            us = int((stamp.value - datetime(1970, 1, 1)).total_seconds()) * 1_000_000 + stamp.value.microsecond
        out = (us, bool(stamp and stamp.zoned), bool(stamp is None or stamp.year_known), host, action_of(rest))
        self.cache[raw] = out
        return out


def _compress_v6(arr: pa.Array) -> pa.Array:
    """The kernel prints IPv6 fully expanded (`fe80:0000:...:0016`); other sources print the short form."""
    long = pc.fill_null(pc.match_substring(arr, ":"), False)
    if not pc.any(long).as_py():
        return arr
    d = arr.dictionary_encode()
    return pa.array([short_ip(v) for v in d.dictionary.to_pylist()], pa.string()).take(d.indices)


def parse_file(path: Path, encoding: Encoding, sink: Sink) -> None:
    """Stream a syslog/journal file with netfilter LOG lines into `flows` (other lines are skipped)."""
    header = _Header(file_year(sink, path))
    for block in iter_blocks(path, encoding, tap=getattr(sink, "tap", None)):
        _parse_block(block.data, block.starts, block.ends, block.base_offset, block.base_line, sink, header)


def parse_text(text: str, sink: Sink) -> None:
    """Same parser over text already in memory (small files, tests)."""
    text = text[1:] if text.startswith("\ufeff") else text
    block = lines_block(np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8))
    _parse_block(block.data, block.starts, block.ends, -1, 1, sink, _Header(file_year(sink)))


def _parse_block(data, starts, ends, base_offset: int, base_line: int, sink: Sink, header: _Header) -> None:
    n = len(starts)
    if n == 0:
        return
    at = np.empty(n, np.int64)
    cut = np.empty(n, np.int64)
    _locate(data, starts, ends, at, cut)
    found = at >= 0
    scan_from = np.where(found, at, starts)
    scan_to = np.where(found, cut, starts)  # lines without IN= scan nothing
    nk = len(KEYS.keys)
    vs = np.empty((nk, n), np.int32)
    vl = np.empty((nk, n), np.int32)
    nkv = np.empty(n, np.int32)
    kvscan.scan(data, scan_from, scan_to, KEYS.kbytes, KEYS.koffs, KEYS.first, vs, vl, nkv)

    blank = np.zeros(n, np.bool_)
    empty = np.flatnonzero(~found)
    for j in empty:  # few in a firewall log; other syslog lines are counted, blank ones are not
        blank[j] = not bytes(data[int(starts[j]) : int(ends[j])]).strip()
    has_ip = (vl[_K["SRC"]] > 0) & (vl[_K["DST"]] > 0)
    cand = np.flatnonzero(found & has_ip)

    ts = np.zeros(n, np.int64)
    ts_ok = np.zeros(n, np.bool_)
    zoned = np.zeros(n, np.bool_)
    guessed = False
    hosts: list[str | None] = []
    actions: list[str] = []
    for j in cand:
        us, z, year_known, host, action = header(bytes(data[int(starts[j]) : int(at[j])]))
        ts[j] = us
        ts_ok[j] = us >= 0
        zoned[j] = z
        guessed |= us >= 0 and not year_known
        hosts.append(host)
        actions.append(action)

    reason = np.zeros(n, np.int8)
    reason[~found & ~blank] = 1
    reason[found & ~has_ip] = 2
    reason[found & has_ip & ~ts_ok] = 3
    skip_lines(data, starts, ends, np.arange(n) + base_line, reason, REASONS, sink)

    ok_in_cand = ts_ok[cand]
    rows = cand[ok_in_cand]
    if not len(rows):
        return
    keep = pa.array(np.flatnonzero(ok_in_cand))
    ascii = kvscan.high_bytes(data) == 0
    take = pa.array(rows)

    def s(key: str) -> pa.Array:
        return kvscan.string_column(data, vs, vl, _K[key], ascii).take(take)

    def i(key: str, dtype: type = np.int64) -> pa.Array:
        return kvscan.int_column(data, vs, vl, _K[key], dtype).take(take)

    m = len(rows)
    cols = {
        "src_ip": _compress_v6(s("SRC")),
        "src_port": i("SPT", np.int32),
        "dst_ip": _compress_v6(s("DST")),
        "dst_port": i("DPT", np.int32),
        "proto": proto_column(data, vs, vl, _K["PROTO"]).take(take),
        "action": pa.array(actions, pa.string()).take(keep),
        "service": pa.nulls(m, pa.string()),
        "bytes_out": i("LEN"),
        "bytes_in": pa.nulls(m, pa.int64()),
        "pkts_in": pa.nulls(m, pa.int64()),
        "duration": pa.nulls(m, pa.int64()),
        "vendor": kvscan.constant_column("iptables", m),
    }
    host = pa.array(hosts, pa.string()).take(keep)
    offsets = starts[rows] + base_offset if base_offset >= 0 else None
    sink.batch(FLOWS, record_table(FLOWS, rows + base_line, offsets, host, ts[rows], cols))
    if (~zoned[rows]).any():
        sink.meta["local_time"] = True
    if guessed:
        sink.meta["year_guessed"] = True


FORMATS: tuple[Format, ...] = (
    Format(
        "iptables",
        "Linux netfilter LOG lines (iptables / ip6tables / ufw) in syslog or journal files",
        sniff,
        parse_text=parse_text,
        parse_file=parse_file,
        host_evidence=False,
    ),
)
