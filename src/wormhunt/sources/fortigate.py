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
import pyarrow.compute as pc

from wormhunt.model import FLOWS, NET_ALERTS
from wormhunt.sources import kvscan
from wormhunt.sources.base import MAX_SKIP_EXAMPLES, Sink
from wormhunt.sources.stream import iter_blocks
from wormhunt.sources.text import Encoding, iter_lines

KEYS = kvscan.KeySet.of(
    [
        "date", "time", "tz", "eventtime", "type", "subtype", "devname", "devid",
        "srcip", "dstip", "srcport", "dstport", "proto", "action", "service",
        "sentbyte", "rcvdbyte", "rcvdpkt", "duration",
        "attack", "attackid", "severity", "attackname", "status",
    ]
)  # fmt: skip
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
    return bytes(data[start : min(end, start + 300)]).decode("utf-8", "replace")


def parse_file(path: Path, encoding: Encoding, sink: Sink) -> None:
    """Stream a FortiGate log into `flows` and `net_alerts`."""
    tap = getattr(sink, "tap", None)
    for block in iter_blocks(path, encoding, tap=tap):
        _parse_block(block.data, block.starts, block.ends, block.base_offset, block.base_line, sink)


def parse_text(text: str, sink: Sink) -> None:
    """Same parser over text already in memory (small files, tests)."""
    data = np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8)
    ends = kvscan.line_ends(data)
    if len(ends) == 0 or ends[-1] != len(data) - 1:
        ends = np.append(ends, len(data))
    starts = np.empty(len(ends), np.int64)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    _parse_block(data, starts, ends, -1, 1, sink)


def _parse_block(data, starts, ends, base_offset: int, base_line: int, sink: Sink) -> None:
    n = len(starts)
    if n == 0:
        return
    nk = len(KEYS.keys)
    vs = np.zeros((n, nk), np.int64)
    vl = np.full((n, nk), -1, np.int64)
    nkv = np.zeros(n, np.int64)
    kvscan.scan(data, starts, ends, KEYS.kbytes, KEYS.koffs, KEYS.first, vs, vl, nkv)

    ts = np.empty(n, np.int64)
    ts_ok = np.empty(n, np.bool_)
    zoned = np.empty(n, np.bool_)
    kvscan.fortinet_time(data, vs, vl, _K["date"], _K["time"], _K["tz"], _K["eventtime"], ts, ts_ok, zoned)

    def s(key: str) -> pa.Array:
        return kvscan.string_column(data, vs, vl, _K[key])

    def i(key: str, dtype: type = np.int64) -> pa.Array:
        return kvscan.int_column(data, vs, vl, _K[key], dtype)

    blank = (ends - starts) <= 0
    typ = s("type")
    sub = s("subtype")
    has_ip = (vl[:, _K["srcip"]] > 0) & (vl[:, _K["dstip"]] > 0)
    is_traffic = np.asarray(pc.fill_null(pc.equal(typ, "traffic"), False))
    is_ips = np.asarray(pc.fill_null(pc.and_(pc.equal(typ, "utm"), pc.is_in(sub, pa.array(["ips", "anomaly"]))), False))
    name_len = np.maximum(vl[:, _K["attack"]], vl[:, _K["attackname"]])
    flow_ok = is_traffic & has_ip & ts_ok
    alert_ok = is_ips & has_ip & ts_ok & (name_len > 0)

    reasons = np.full(n, "", dtype=object)
    reasons[~flow_ok & ~alert_ok & ~blank] = "other FortiGate log type"
    reasons[(is_traffic | is_ips) & ~has_ip & ~blank] = "no srcip/dstip"
    reasons[(is_traffic | is_ips) & has_ip & ~ts_ok] = "no readable date/time"
    reasons[is_ips & has_ip & ts_ok & (name_len <= 0)] = "IPS line without attack name"
    reasons[(vl[:, _K["type"]] < 0) & ~blank] = "no type= field"
    reasons[(nkv < 3) & ~blank] = "not a key=value log line"
    bad = np.flatnonzero(reasons != "")
    room = MAX_SKIP_EXAMPLES - len(sink.skips)
    for j in bad:
        if room > 0:
            sink.skip(base_line + int(j), reasons[j], _text(data, int(starts[j]), int(ends[j])))
            room -= 1
        else:
            sink.skip_counts[reasons[j]] += 1

    line = pa.array(np.arange(base_line, base_line + n, dtype=np.int64))
    offset = pa.array(starts + base_offset, pa.int64()) if base_offset >= 0 else pa.nulls(n, pa.int64())
    ts_arr = pa.array(ts, pa.int64()).cast(pa.timestamp("us"))
    host = pc.coalesce(s("devname"), s("devid"))
    common = {
        "evidence_id": pa.nulls(n, pa.int32()),
        "line": line,
        "host": host,
        "offset": offset,
        "ts": ts_arr,
        "src_ip": s("srcip"),
        "src_port": i("srcport", np.int32),
        "dst_ip": s("dstip"),
        "dst_port": i("dstport", np.int32),
        "proto": i("proto", np.int32),
    }
    if flow_ok.any():
        cols = dict(common)
        cols.update(
            action=s("action"),
            service=s("service"),
            bytes_out=i("sentbyte"),
            bytes_in=i("rcvdbyte"),
            pkts_in=i("rcvdpkt"),
            duration=i("duration"),
            vendor=pa.array(np.full(n, "fortinet", dtype=object), pa.string()),
        )
        table = pa.table([cols[c] for c in FLOWS.names], schema=FLOWS.arrow_schema)
        sink.batch(FLOWS, table.filter(pa.array(flow_ok)))
    if alert_ok.any():
        cols = dict(common)
        cols.update(
            signature=pc.coalesce(s("attack"), s("attackname")),
            signature_id=s("attackid"),
            severity=s("severity"),
            action=pc.coalesce(s("action"), s("status")),
            vendor=pa.array(np.full(n, "fortinet", dtype=object), pa.string()),
        )
        table = pa.table([cols[c] for c in NET_ALERTS.names], schema=NET_ALERTS.arrow_schema)
        sink.batch(NET_ALERTS, table.filter(pa.array(alert_ok)))
    if (~zoned & (flow_ok | alert_ok)).any():
        sink.meta["local_time"] = True  # some times had no zone: they are device-local
