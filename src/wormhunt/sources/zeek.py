"""Zeek logs: conn, smb_mapping, smb_files, dce_rpc and notice, as TSV or as JSON streaming.

TSV (the ASCII writer's default, formats.md section 9.8): `#separator`, `#fields`, `#path` ...
header lines describe the data lines that follow them, and a concatenated or rotated file
holds several header blocks, so columns are mapped by the current block's `#fields` names,
never by position (smb_files gained `prev_name`, later `data_offset_req` ...). conn.log is
the bulk log: its data lines go through the compiled splitter in blocks and leave as Arrow
batches. The other logs are small and are read line by line, where Zeek's escapes (`\\\\`
for a backslash, `\\xNN` for a separator or non-printable byte) are undone.

JSON streaming (`LogAscii::use_json=T`, or a shipper's `{"@stream":"conn", ...}` as in the
OTRF data sets): one object a line; the log type comes from `@stream` / `_path` or, failing
those, from the keys. Keys are the TSV names (`id.orig_h`), the same with `_`
(`id_orig_h`), or nested objects (`"id": {"orig_h": ...}`). `ts` is epoch seconds or ISO-8601.

What each log becomes:
  conn         -> flows: action = `conn_state` as printed (SF, S0, REJ, RSTO ...), proto as the
                  IP protocol number, duration in whole seconds, bytes_out/in = orig/resp_bytes
  notice       -> net_alerts: signature = the `note` (`EternalSafety::EternalBlue`,
                  `Scan::Address_Scan`), signature_id and severity null (a notice has neither;
                  `msg` is free text with addresses in it, which would defeat grouping by name)
  smb_mapping  -> smb activity `tree_connect`: path = share, action = share_type
  smb_files    -> smb activity `file`: path = share, name = file name, action = SMB::FILE_*
  dce_rpc      -> smb activity `rpc`: path = named_pipe (a pipe path or a TCP port number),
                  name = operation, action = endpoint
Unset (`-`) and empty (`(empty)`) fields are null. `host` is the sensor's name when the log
carries one (`@system`, `_system_name`); TSV logs do not, so it is null there.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numba import njit, prange

from wormhunt.model import FLOWS, NET_ALERTS, SMB, Kind
from wormhunt.sources import kvscan
from wormhunt.sources.base import MAX_SKIP_EXAMPLES, Format, Sink, to_int
from wormhunt.sources.netlog import file_lines, proto_column, proto_number, record, record_table, text_lines
from wormhunt.sources.stream import Block, iter_blocks, lines_block
from wormhunt.sources.text import Encoding, decode_value, iter_lines
from wormhunt.timeparse import from_epoch, parse_iso

LOG_TYPES = ("conn", "smb_mapping", "smb_files", "dce_rpc", "notice")
VENDOR = "zeek"
# Zeek times are real capture times: epochs before 1973-03-03 (1e8 s) are junk, and the
# shared epoch reader tells microseconds from seconds by magnitude above that bound.
MIN_US, MAX_US = 10**14, 10**17

# Reasons a line is not used.
R_FIELDS = "wrong number of fields for the #fields header"
R_TS = "no readable ts"
R_ADDR = "no id.orig_h/id.resp_h"
R_NOTE = "notice without a note"
R_NO_HEADER = "data line before a #fields header"
R_SEPARATOR = "unsupported #separator (not one byte)"
R_UNKNOWN = "unknown Zeek log type"
R_JSON = "not JSON (truncated or malformed line)"
R_OBJECT = "not a JSON object"


def unused(log: str) -> str:
    """Skip reason for a known Zeek log that holds nothing wormhunt uses (dns, http ...)."""
    return f"Zeek {log} log: not used"


def log_type(path: str | None, names: Iterable[str]) -> str | None:
    """Which supported log a header's `#path` (or JSON `@stream`) and field names describe.

    The path decides when it is one of ours; otherwise the fields do, so a renamed path
    (`conn_long`, `SCRANTON_conn`) or a JSON file without a stream name still parses."""
    if path in LOG_TYPES:
        return path
    keys = set(names)
    if "conn_state" in keys:
        return "conn"
    if "share_type" in keys or "native_file_system" in keys:
        return "smb_mapping"
    if "named_pipe" in keys or {"endpoint", "operation"} <= keys:
        return "dce_rpc"
    if "note" in keys:
        return "notice"
    if "prev_name" in keys or "times.modified" in keys or {"fuid", "action", "name"} <= keys:
        return "smb_files"
    return None


_ESC = re.compile(r"\\(?:x([0-9a-fA-F]{2})|\\)")


def unescape(value: str) -> str:
    """Undo the ASCII writer's escapes: `\\\\` -> `\\`, `\\xNN` -> byte NN (bytes are then
    decoded as UTF-8, else GB18030, else cp1252)."""
    if "\\" not in value:
        return value
    out = bytearray()
    pos = 0
    for m in _ESC.finditer(value):
        out += value[pos : m.start()].encode("utf-8", "surrogatepass")
        out.append(int(m.group(1), 16) if m.group(1) else 0x5C)
        pos = m.end()
    out += value[pos:].encode("utf-8", "surrogatepass")
    return decode_value(bytes(out))


# --- Values, whichever writer produced them (TSV text or JSON types) ----------------------

_EPOCH_TEXT = re.compile(r"^(\d{1,12})(?:\.(\d{1,9}))?$")


def _epoch_us(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        us = round(value * 1_000_000)
    elif isinstance(value, str):
        m = _EPOCH_TEXT.match(value.strip())
        if not m:
            return None
        us = int(m.group(1)) * 1_000_000 + int((m.group(2) or "0")[:6].ljust(6, "0"))
    else:
        return None
    return us if MIN_US <= us < MAX_US else None


def _time(value: Any) -> datetime | None:
    """Zeek `ts`: epoch seconds (number or text) or ISO-8601 (JSON with json_timestamps)."""
    us = _epoch_us(value)
    if us is not None:
        return from_epoch(us)
    if isinstance(value, str) and "-" in value:
        return parse_iso(value)
    return None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):  # JSON sets and vectors: printed as TSV prints them
        value = ",".join(str(v) for v in value)
        return value or None
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    text = value if isinstance(value, str) else str(value)
    return text or None


def _int(value: Any, limit: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= limit else None
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and 0 <= value <= limit else None
    if isinstance(value, str):
        return to_int(value, limit)
    return None


def _seconds(value: Any) -> int | None:
    """An interval (`0.032969`, `1901.2162`) as whole seconds."""
    if isinstance(value, str):
        m = _EPOCH_TEXT.match(value.strip())
        return int(m.group(1)) if m else None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return int(value)
    return None


def record_row(log: str, rec: dict[str, Any], line: int, offset: int, host: str | None) -> tuple[Kind, dict] | str:
    """One log record (field name -> value, unset fields None) as a case row, or why not."""
    ts = _time(rec.get("ts"))
    if ts is None:
        return R_TS
    src, dst = _str(rec.get("id.orig_h")), _str(rec.get("id.resp_h"))
    row: dict[str, Any] = record(
        line,
        offset,
        host,
        ts,
        src_ip=src,
        src_port=_int(rec.get("id.orig_p"), 65535),
        dst_ip=dst,
        dst_port=_int(rec.get("id.resp_p"), 65535),
        vendor=VENDOR,
    )
    if log == "notice":
        note = _str(rec.get("note"))
        if not note:
            return R_NOTE
        # Notices raised without a connection (scan.zeek) name their addresses in src/dst/p.
        row["src_ip"] = src or _str(rec.get("src"))
        row["dst_ip"] = dst or _str(rec.get("dst"))
        if row["dst_port"] is None:
            row["dst_port"] = _int(rec.get("p"), 65535)
        row.update(
            proto=proto_number(rec.get("proto")),
            signature=note,
            signature_id=None,
            severity=None,
            action=_str(rec.get("actions")),
        )
        return NET_ALERTS, {c: row.get(c) for c in NET_ALERTS.names}
    if not src or not dst:
        return R_ADDR
    if log == "conn":
        row.update(
            proto=proto_number(rec.get("proto")),
            action=_str(rec.get("conn_state")),
            service=_str(rec.get("service")),
            bytes_out=_int(rec.get("orig_bytes"), 2**63 - 1),
            bytes_in=_int(rec.get("resp_bytes"), 2**63 - 1),
            pkts_in=_int(rec.get("resp_pkts"), 2**63 - 1),
            duration=_seconds(rec.get("duration")),
        )
        return FLOWS, {c: row.get(c) for c in FLOWS.names}
    if log == "smb_mapping":
        row.update(activity="tree_connect", path=_str(rec.get("path")), name=None, action=_str(rec.get("share_type")))
    elif log == "smb_files":
        row.update(
            activity="file", path=_str(rec.get("path")), name=_str(rec.get("name")), action=_str(rec.get("action"))
        )
    else:  # dce_rpc
        row.update(
            activity="rpc",
            path=_str(rec.get("named_pipe")),
            name=_str(rec.get("operation")),
            action=_str(rec.get("endpoint")),
        )
    return SMB, {c: row.get(c) for c in SMB.names}


# --- TSV -----------------------------------------------------------------------------------

HEADER, BLANK, DATA = 2, 1, 0


@njit(cache=True, nogil=True, parallel=True)
def _line_kinds(data, starts, ends, out):  # pragma: no cover - compiled
    """out[i]: HEADER when line i starts with `#`, BLANK when it is only white space, else DATA."""
    for i in prange(len(starts)):
        p = starts[i]
        e = ends[i]
        if p < e and data[p] == 35:
            out[i] = 2
            continue
        while p < e and (data[p] == 32 or data[p] == 9 or data[p] == 13):
            p += 1
        out[i] = 1 if p >= e else 0


@njit(cache=True, nogil=True, parallel=True)
def _nullify(data, vs, vl, fs, unset, empty):  # pragma: no cover - compiled
    """Mark fields fs of every line absent (vl = -1) where they hold the unset or empty marker."""
    for i in prange(vs.shape[1]):
        for f in fs:
            ln = vl[f, i]
            for lit in (unset, empty):
                if ln == len(lit):
                    s = vs[f, i]
                    same = True
                    for t in range(ln):
                        if data[s + t] != lit[t]:
                            same = False
                            break
                    if same:
                        vl[f, i] = -1
                        break


def _line_text(data: np.ndarray, start: int, end: int, limit: int | None = None) -> str:
    stop = end if limit is None else min(end, start + limit)
    return decode_value(bytes(data[start:stop])).rstrip("\r")


class _TsvParser:
    """Header state carried across blocks; each run of data lines between header lines is
    parsed with the header in force."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._reset()

    def _reset(self) -> None:
        self.sep = "\t"
        self.empty = "(empty)"
        self.unset = "-"
        self.path: str | None = None
        self.fields: list[str] | None = None

    # Header lines ----------------------------------------------------------------------
    def header(self, text: str) -> None:
        if text.startswith("#separator"):
            self._reset()  # a new header block (a concatenated or rotated file)
            self.sep = unescape(text[len("#separator") :].strip()) or "\t"
            return
        parts = text[1:].split(self.sep) if self.sep in text else text[1:].split()
        if not parts:
            return  # a bare `#`
        key, values = parts[0].strip(), parts[1:]
        if key == "fields":
            self.fields = [v.strip() for v in values]
        elif key == "path" and values:
            self.path = values[0].strip()
        elif key == "empty_field" and values:
            self.empty = values[0]
        elif key == "unset_field" and values:
            self.unset = values[0]
        # #set_separator, #types, #open, #close and comments change nothing we read.

    # Blocks -----------------------------------------------------------------------------
    def block(self, block: Block) -> None:
        n = len(block)
        if n == 0:
            return
        kinds = np.empty(n, np.int8)
        _line_kinds(block.data, block.starts, block.ends, kinds)
        prev = 0
        for h in np.flatnonzero(kinds == HEADER):
            h = int(h)
            self.segment(block, kinds, prev, h)
            self.header(_line_text(block.data, int(block.starts[h]), int(block.ends[h])))
            prev = h + 1
        self.segment(block, kinds, prev, n)

    def segment(self, block: Block, kinds: np.ndarray, a: int, b: int) -> None:
        if b <= a or not (kinds[a:b] == DATA).any():
            return
        data_idx = a + np.flatnonzero(kinds[a:b] == DATA)
        if self.fields is None:
            self.skip_lines(block, data_idx, R_NO_HEADER)
            return
        if len(self.sep.encode("utf-8")) != 1:
            self.skip_lines(block, data_idx, R_SEPARATOR)
            return
        log = log_type(self.path, self.fields)
        if log is None:
            self.skip_lines(block, data_idx, unused(self.path) if self.path else R_UNKNOWN)
        elif log == "conn":
            self.conn(block, kinds, a, b)
        else:
            self.lines(block, data_idx, log)

    def skip_lines(self, block: Block, idx: np.ndarray, reason: str) -> None:
        """Count lines as skipped; keep examples (with their text) while there is room."""
        sink, data, starts, ends = self.sink, block.data, block.starts, block.ends
        room = max(0, MAX_SKIP_EXAMPLES - len(sink.skips))
        for j in idx[:room]:
            j = int(j)
            sink.skip(block.base_line + j, reason, _line_text(data, int(starts[j]), int(ends[j]), 300))
        if len(idx) > room:
            sink.skip_counts[reason] += len(idx) - room

    # Small logs: one line at a time ----------------------------------------------------
    def lines(self, block: Block, idx: np.ndarray, log: str) -> None:
        fields, sep, nulls = self.fields or [], self.sep, (self.unset, self.empty)
        data, sink = block.data, self.sink
        for j in idx:
            j = int(j)
            start = int(block.starts[j])
            text = _line_text(data, start, int(block.ends[j]))
            line = block.base_line + j
            parts = text.split(sep)
            if len(parts) != len(fields):
                sink.skip(line, R_FIELDS, text)
                continue
            rec: dict[str, Any] = {}
            for name, value in zip(fields, parts, strict=True):
                rec.setdefault(name, None if value in nulls else unescape(value))
            offset = block.base_offset + start if block.base_offset >= 0 else -1
            out = record_row(log, rec, line, offset, None)
            if isinstance(out, str):
                sink.skip(line, out, text)
            else:
                sink.row(*out)

    # conn.log: compiled, columnar -------------------------------------------------------
    def conn(self, block: Block, kinds: np.ndarray, a: int, b: int) -> None:
        fields = self.fields or []
        col = {}
        for j, name in enumerate(fields):
            col.setdefault(name, j)
        wanted = [
            "ts",
            "id.orig_h",
            "id.orig_p",
            "id.resp_h",
            "id.resp_p",
            "proto",
            "service",
            "duration",
            "orig_bytes",
            "resp_bytes",
            "conn_state",
            "resp_pkts",
        ]
        width = max([col[k] for k in wanted if k in col], default=0) + 1
        data = block.data
        starts, ends = block.starts[a:b], block.ends[a:b]
        n = b - a
        vs, vl, nf = kvscan.split_fields(data, starts, ends, self.sep, width, quote=None)
        nullable = [col[k] for k in ("id.orig_h", "id.resp_h", "proto", "service", "conn_state") if k in col]
        if n and nullable:  # unset / empty fields are null
            marks = [np.frombuffer(m.encode("utf-8"), np.uint8) for m in (self.unset, self.empty)]
            _nullify(data, vs, vl, np.array(nullable, np.int64), *marks)

        blank = kinds[a:b] != DATA
        count_ok = nf == len(fields)
        if "ts" in col:
            ts, ts_ok = kvscan.epoch_column(data, vs, vl, col["ts"])
            ts_ok &= (ts >= MIN_US) & (ts < MAX_US)
        else:
            ts, ts_ok = np.zeros(n, np.int64), np.zeros(n, np.bool_)
        has_ip = np.ones(n, np.bool_)
        for name in ("id.orig_h", "id.resp_h"):
            has_ip &= (vl[col[name]] > 0) if name in col else False
        reason = np.zeros(n, np.int8)
        reason[~blank & count_ok & ts_ok & ~has_ip] = 3
        reason[~blank & count_ok & ~ts_ok] = 2
        reason[~blank & ~count_ok] = 1
        for code, text in ((1, R_FIELDS), (2, R_TS), (3, R_ADDR)):
            bad = np.flatnonzero(reason == code)
            if len(bad):
                self.skip_lines(block, a + bad, text)
        ok = ~blank & (reason == 0)
        rows = np.flatnonzero(ok)
        if not len(rows):
            return
        ascii = kvscan.high_bytes(data) == 0
        whole = len(rows) == n  # the common case: no copies
        take = pa.array(rows)

        def sub(arr: pa.Array) -> pa.Array:
            return arr if whole else arr.take(take)

        def pick(arr: np.ndarray) -> np.ndarray:
            return arr if whole else arr[rows]

        def s(name: str) -> pa.Array:
            if name not in col:
                return pa.nulls(len(rows), pa.string())
            return sub(kvscan.string_column(data, vs, vl, col[name], ascii))

        def num(name: str, limit: int, dtype: type = np.int64) -> pa.Array:
            if name not in col:
                return pa.nulls(len(rows), pa.from_numpy_dtype(dtype))
            out = np.empty(n, np.int64)
            valid = np.empty(n, np.bool_)
            kvscan.to_int(data, vs, vl, col[name], out, valid)
            valid &= out <= limit
            return pa.array(pick(out).astype(dtype, copy=False), mask=~pick(valid))

        if "duration" in col:
            dur, dur_ok = kvscan.epoch_column(data, vs, vl, col["duration"])
            duration = pa.array(pick(dur) // 1_000_000, mask=~pick(dur_ok))
        else:
            duration = pa.nulls(len(rows), pa.int64())
        cols = {
            "src_ip": s("id.orig_h"),
            "src_port": num("id.orig_p", 65535, np.int32),
            "dst_ip": s("id.resp_h"),
            "dst_port": num("id.resp_p", 65535, np.int32),
            "proto": sub(proto_column(data, vs, vl, col.get("proto", -1))),
            "action": s("conn_state"),
            "service": s("service"),
            "bytes_out": num("orig_bytes", 2**62),
            "bytes_in": num("resp_bytes", 2**62),
            "pkts_in": num("resp_pkts", 2**62),
            "duration": duration,
            "vendor": kvscan.constant_column(VENDOR, len(rows)),
        }
        offsets = pick(starts) + block.base_offset if block.base_offset >= 0 else None
        self.sink.batch(FLOWS, record_table(FLOWS, rows + (block.base_line + a), offsets, None, pick(ts), cols))


def parse_file(path: Path, encoding: Encoding, sink: Sink) -> None:
    """Stream a Zeek TSV log (any number of header blocks) into flows, net_alerts and smb."""
    parser = _TsvParser(sink)
    for block in iter_blocks(path, encoding, tap=getattr(sink, "tap", None)):
        parser.block(block)


def parse_text(text: str, sink: Sink) -> None:
    """Same parser over text already in memory (small files, tests)."""
    block = lines_block(np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8))
    _TsvParser(sink).block(block)


_SNIFF_SEPARATOR = re.compile(r"^#separator[ \t]+\\x[0-9a-fA-F]{2}[ \t\r]*$", re.MULTILINE)
_SNIFF_FIELDS = re.compile(r"^#fields\t[\w.]+\t[\w.]+", re.MULTILINE)
_SNIFF_META = re.compile(r"^#(?:path|types|unset_field|empty_field)\t", re.MULTILINE)


def sniff(head: str) -> float:
    """Zeek TSV: the `#separator \\x09` / `#fields<TAB>` header lines."""
    head = head[:65536]
    separator = _SNIFF_SEPARATOR.search(head) is not None
    fields = _SNIFF_FIELDS.search(head) is not None
    if separator and fields:
        return 0.99
    if fields and _SNIFF_META.search(head):
        return 0.9
    if separator and head.lstrip().startswith("#separator"):
        return 0.7
    return 0.0


# --- JSON streaming ------------------------------------------------------------------------

_PREFIXES = ("id_", "times_", "remote_location_")


def _flatten(obj: dict[str, Any]) -> dict[str, Any]:
    """Keys in the TSV spelling: `id_orig_h` and `{"id": {"orig_h": ...}}` -> `id.orig_h`."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, dict) and key in ("id", "times", "remote_location"):
            for sub, inner in value.items():
                out.setdefault(f"{key}.{sub}", inner)
            continue
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = f"{prefix[:-1]}.{key[len(prefix) :]}"
                break
        out.setdefault(key, value)
    return out


def _parse_json_lines(lines: Iterable[tuple[int, int, str]], sink: Sink) -> None:
    for line, offset, text in lines:
        body = text.strip()
        if not body:
            continue
        try:
            obj = json.loads(body)
        except (ValueError, RecursionError):
            sink.skip(line, R_JSON, text)
            continue
        if not isinstance(obj, dict):
            sink.skip(line, R_OBJECT, text)
            continue
        rec = _flatten(obj)
        stream = rec.get("@stream") or rec.get("_path")
        stream = stream if isinstance(stream, str) else None
        log = log_type(stream, rec)
        if log is None:
            sink.skip(line, unused(stream) if stream else R_UNKNOWN, text)
            continue
        host = _str(rec.get("@system") or rec.get("_system_name"))
        out = record_row(log, rec, line, offset, host)
        if isinstance(out, str):
            sink.skip(line, out, text)
        else:
            sink.row(*out)


def parse_json_text(text: str, sink: Sink) -> None:
    """Zeek JSON logs already in memory."""
    _parse_json_lines(text_lines(text), sink)


def parse_json_file(path: Path, encoding: Encoding, sink: Sink) -> None:
    """Stream a Zeek JSON log, line by line (offsets kept)."""
    _parse_json_lines(file_lines(path, encoding, sink), sink)


_JSON_TS = re.compile(r'"ts"\s*:')
_JSON_ZEEK = re.compile(r'"(?:id\.orig_h|id_orig_h|orig_h|@stream|_path|uid|note|conn_state)"\s*:')


def sniff_json(head: str) -> float:
    """One JSON object a line with Zeek's `ts` and connection keys (never Suricata's `event_type`)."""
    lines = [body.strip() for _, body in iter_lines(head[:65536]) if body.strip()][:50]
    if not lines:
        return 0.0
    hits = sum(
        1
        for body in lines
        if body.startswith("{") and '"event_type"' not in body and _JSON_TS.search(body) and _JSON_ZEEK.search(body)
    )
    return 0.95 if hits * 2 >= len(lines) else 0.4 if hits else 0.0


FORMATS: tuple[Format, ...] = (
    Format(
        "zeek",
        "Zeek TSV logs (conn, smb_mapping, smb_files, dce_rpc, notice)",
        sniff,
        parse_text=parse_text,
        parse_file=parse_file,
        host_evidence=False,
    ),
    Format(
        "zeek-json",
        "Zeek JSON logs, one object a line (plain, or with @stream as OTRF ships them)",
        sniff_json,
        parse_text=parse_json_text,
        parse_file=parse_json_file,
        host_evidence=False,
    ),
)
