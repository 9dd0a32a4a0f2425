"""FortiGate / FortiOS key=value logs: `type=traffic` sessions and `type=utm subtype=ips` alerts.

Quoting is inconsistent, key order varies by version and keys can repeat (the first one
wins), so lines are tokenised rather than matched by position (formats.md section 9.1).
Files are streamed in blocks through the compiled scanner: memory stays bounded and
ingest runs at a fair fraction of the disk's speed.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa

from wormhunt.model import FLOWS, NET_ALERTS
from wormhunt.sources import kvscan
from wormhunt.sources.base import MAX_SKIP_EXAMPLES, Sink
from wormhunt.sources.stream import iter_blocks, lines_block
from wormhunt.sources.text import Encoding, decode_value, iter_lines

KEYS = kvscan.KeySet.of(
    [
        "date",
        "time",
        "tz",
        "eventtime",
        "type",
        "subtype",
        "devname",
        "devid",
        "srcip",
        "dstip",
        "srcport",
        "dstport",
        "proto",
        "action",
        "service",
        "sentbyte",
        "rcvdbyte",
        "rcvdpkt",
        "duration",
        "attack",
        "attackid",
        "severity",
        "attackname",
        "status",
    ]
)
_K = {k: KEYS.index(k) for k in KEYS.keys}
_SNIFF = re.compile(r'(?:^|\s|>)(?:devid|devname|logid)="?[\w-]+"?\s.*\btype="?\w+"?', re.ASCII)
_SNIFF_CFOS = re.compile(r'(?:^|\s)logid="?\d{10}"?\s.*\btype="?(?:traffic|utm|event)"?', re.ASCII)


def sniff(head: str) -> float:
    lines = [line for _, line in iter_lines(head[:65536]) if line.strip()][:50]
    if not lines:
        return 0.0
    hits = sum(1 for line in lines if _SNIFF.search(line) or _SNIFF_CFOS.search(line))
    return 0.97 if hits >= max(1, len(lines) // 2) else 0.5 if hits else 0.0


def _text(data: np.ndarray, start: int, end: int) -> str:
    return decode_value(bytes(data[start : min(end, start + 300)]))


def parse_file(path: Path, encoding: Encoding, sink: Sink) -> None:
    """Stream a FortiGate log into `flows` and `net_alerts`."""
    tap = getattr(sink, "tap", None)
    for block in iter_blocks(path, encoding, tap=tap):
        _parse_block(block.data, block.starts, block.ends, block.base_offset, block.base_line, sink)


def parse_text(text: str, sink: Sink) -> None:
    """Same parser over text already in memory (small files, tests)."""
    block = lines_block(np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8))
    _parse_block(block.data, block.starts, block.ends, -1, 1, sink)


# Reasons a line is not used, by code (0 = used).
REASONS = (
    "",
    "other FortiGate log type",
    "no srcip/dstip",
    "no readable date/time",
    "IPS line without attack name",
    "no type= field",
    "not a key=value log line",
)


def _parse_block(data, starts, ends, base_offset: int, base_line: int, sink: Sink) -> None:
    n = len(starts)
    if n == 0:
        return
    nk = len(KEYS.keys)
    vs = np.empty((nk, n), np.int32)
    vl = np.empty((nk, n), np.int32)
    nkv = np.empty(n, np.int32)
    kvscan.scan(data, starts, ends, KEYS.kbytes, KEYS.koffs, KEYS.first, vs, vl, nkv)
    # FortiOS 5 names and devices without a name: fall back to the older or other key.
    kvscan.fallback(vs, vl, _K["attack"], _K["attackname"])
    kvscan.fallback(vs, vl, _K["action"], _K["status"])
    kvscan.fallback(vs, vl, _K["devname"], _K["devid"])

    ts = np.empty(n, np.int64)
    ts_ok = np.empty(n, np.bool_)
    zoned = np.empty(n, np.bool_)
    kvscan.fortinet_time(data, vs, vl, _K["date"], _K["time"], _K["tz"], _K["eventtime"], ts, ts_ok, zoned)

    ascii = kvscan.high_bytes(data) == 0

    def s(key: str) -> pa.Array:
        return kvscan.string_column(data, vs, vl, _K[key], ascii)

    def i(key: str, dtype: type = np.int64) -> pa.Array:
        return kvscan.int_column(data, vs, vl, _K[key], dtype)

    def eq(key: str, literal: str) -> np.ndarray:
        return kvscan.field_equals(data, vs, vl, _K[key], literal)

    blank = (ends - starts) <= 0
    is_traffic = eq("type", "traffic")
    is_ips = eq("type", "utm") & (eq("subtype", "ips") | eq("subtype", "anomaly"))
    has_ip = (vl[_K["srcip"]] > 0) & (vl[_K["dstip"]] > 0)
    named = vl[_K["attack"]] > 0
    flow_ok = is_traffic & has_ip & ts_ok
    alert_ok = is_ips & has_ip & ts_ok & named

    reason = np.zeros(n, np.int8)
    reason[~flow_ok & ~alert_ok & ~blank] = 1
    reason[(is_traffic | is_ips) & ~has_ip & ~blank] = 2
    reason[(is_traffic | is_ips) & has_ip & ~ts_ok] = 3
    reason[is_ips & has_ip & ts_ok & ~named] = 4
    reason[(vl[_K["type"]] < 0) & ~blank] = 5
    reason[(nkv < 3) & ~blank] = 6
    bad = np.flatnonzero(reason)
    if len(bad):
        room = max(0, MAX_SKIP_EXAMPLES - len(sink.skips))
        for j in bad[:room]:
            sink.skip(base_line + int(j), REASONS[reason[j]], _text(data, int(starts[j]), int(ends[j])))
        for code, count in zip(*np.unique(reason[bad[room:]], return_counts=True), strict=True):
            sink.skip_counts[REASONS[code]] += int(count)

    def table(kind, keep: np.ndarray, extra: dict[str, pa.Array]):
        rows = np.flatnonzero(keep)
        whole = len(rows) == n
        sub = (lambda a: a) if whole else (lambda a: a.take(pa.array(rows)))
        cols = {
            "evidence_id": pa.nulls(len(rows), pa.int32()),
            "line": pa.array(rows.astype(np.int64) + base_line),
            "host": sub(s("devname")),
            "offset": pa.array(starts[rows] + base_offset) if base_offset >= 0 else pa.nulls(len(rows), pa.int64()),
            "ts": pa.array(ts[rows]).cast(pa.timestamp("us")),
            "src_ip": sub(s("srcip")),
            "src_port": sub(i("srcport", np.int32)),
            "dst_ip": sub(s("dstip")),
            "dst_port": sub(i("dstport", np.int32)),
            "proto": sub(i("proto", np.int32)),
            "vendor": kvscan.constant_column("fortinet", len(rows)),
        }
        cols.update({k: sub(v) for k, v in extra.items()})
        return pa.table([cols[c] for c in kind.names], schema=kind.arrow_schema)

    if flow_ok.any():
        sink.batch(
            FLOWS,
            table(
                FLOWS,
                flow_ok,
                {
                    "action": s("action"),
                    "service": s("service"),
                    "bytes_out": i("sentbyte"),
                    "bytes_in": i("rcvdbyte"),
                    "pkts_in": i("rcvdpkt"),
                    "duration": i("duration"),
                },
            ),
        )
    if alert_ok.any():
        sink.batch(
            NET_ALERTS,
            table(
                NET_ALERTS,
                alert_ok,
                {
                    "signature": s("attack"),
                    "signature_id": s("attackid"),
                    "severity": s("severity"),
                    "action": s("action"),
                },
            ),
        )
    if (~zoned & (flow_ok | alert_ok)).any():
        sink.meta["local_time"] = True  # some times had no zone: they are device-local
