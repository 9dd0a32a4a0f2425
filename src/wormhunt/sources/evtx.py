"""Windows event logs into the `events` kind: binary `.evtx` files (the Rust `evtx` parser),
Winlogbeat / Elastic Agent / Mordor JSON lines, and Event Viewer / wevtutil XML exports.

Every representation is normalised to the same row: the System fields promoted to columns
(UTC time, channel, provider, event id, computer, record id, user SID) and the EventData
fields under their original names in a map. Providers that write `<UserData>` instead
(WMI-Activity 5861, Event log 104) have its one child element flattened into the map.
Values are kept as written (Sysmon 19-21 keep their leading space and quotes); detections
strip them. A damaged record or line is skipped and counted; the rest of the file is read.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import re
import struct
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from wormhunt.model import EVENTS
from wormhunt.sources.base import Format, MemorySink, Sink
from wormhunt.sources.text import Encoding
from wormhunt.timeparse import parse_iso, parse_iso_array

EVTX_MAGIC = b"ElfFile\x00"
BATCH = 50_000
_MAP = pa.map_(pa.string(), pa.string())


def sniff_bytes(head: bytes) -> float:
    return 0.99 if head.startswith(EVTX_MAGIC) else 0.0


def short_host(computer: str | None) -> str | None:
    """`jump01.offsec.lan` -> `JUMP01`: the spelling the other host sources join on."""
    if not computer:
        return None
    name = computer.strip()
    if not name or name.replace(".", "").isdigit():
        return name.upper() or None
    return name.split(".", 1)[0].upper()


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, dict) and "#text" in v:
        return _text(v["#text"])
    return json.dumps(v, ensure_ascii=False)


def _time(text: str | None) -> Any:
    if not text:
        return None
    text = text.strip()
    if text.endswith(" UTC"):
        text = text[:-4]
    return parse_iso(text)


class _Columns:
    """Column lists of the events kind, flushed to the sink as Arrow tables."""

    def __init__(self, sink: Sink, source: str) -> None:
        self.sink = sink
        self.source = source
        self._hosts: dict[str | None, str | None] = {}
        self._reset()

    def _reset(self) -> None:
        self.line: list[int] = []
        self.host: list[str | None] = []
        self.ts: list[Any] = []
        self.alt: list[str | None] = []  # the record's own time, when `ts` text does not parse
        self.channel: list[str | None] = []
        self.provider: list[str | None] = []
        self.event_id: list[int | None] = []
        self.computer: list[str | None] = []
        self.record_id: list[int | None] = []
        self.sid: list[str | None] = []
        self.user: list[str | None] = []
        self.keys: list[str] = []
        self.values: list[str | None] = []
        self.offsets: list[int] = [0]

    def add(
        self,
        line: int,
        ts: Any,
        channel: str | None,
        provider: str | None,
        event_id: int | None,
        computer: str | None,
        record_id: int | None,
        sid: str | None,
        data: dict[str, Any],
        alt_ts: str | None = None,
    ) -> None:
        """One event; `ts` is a datetime, or ISO text that `flush` converts for the whole batch
        (`alt_ts`, the record's own time, when that text does not parse)."""
        self.line.append(line)
        host = self._hosts.get(computer)
        if host is None and computer not in self._hosts:
            host = self._hosts[computer] = short_host(computer)
        self.host.append(host)
        self.ts.append(ts)
        self.alt.append(alt_ts)
        self.channel.append(channel)
        self.provider.append(provider if provider.__class__ is str or provider is None else _text(provider))
        # A number the column cannot hold (a crafted log) is no number rather than a failed batch.
        self.event_id.append(event_id if event_id is None or -(2**31) <= event_id < 2**31 else None)
        self.computer.append(computer)
        self.record_id.append(record_id if record_id is None or -(2**63) <= record_id < 2**63 else None)
        self.sid.append(sid if sid.__class__ is str or sid is None else _text(sid))
        user = data.get("User")
        if user.__class__ is not str:
            name = data.get("SubjectUserName")
            user = f"{data.get('SubjectDomainName') or ''}\\{name}".lstrip("\\") if isinstance(name, str) else None
        self.user.append(user)
        # Values stay as decoded (numbers too); `flush` converts the batch, per value only if needed.
        self.keys.extend(data)
        self.values.extend(data.values())
        self.offsets.append(len(self.keys))
        if len(self.line) >= BATCH:
            self.flush()

    def _times(self) -> pa.Array:
        """The batch's times: ISO text converted at once; a text that does not parse takes the
        record's own timestamp (`alt`), as a datetime already given stays."""
        ts = self.ts
        if not any(t.__class__ is str for t in ts):
            return pa.array(ts, pa.timestamp("us"))
        got = parse_iso_array([t if t.__class__ is str else None for t in ts])
        if got.null_count == 0:
            return got
        out = got.to_pylist()
        for i, (t, v) in enumerate(zip(ts, out, strict=True)):
            if v is None:
                out[i] = _time(self.alt[i]) if t is None or t.__class__ is str else t
        return pa.array(out, pa.timestamp("us"))

    def flush(self) -> None:
        n = len(self.line)
        if not n:
            return
        # Numbers, booleans and nested objects are common (Sysmon writes ProcessId as a number):
        # converting them here is cheaper than a failed attempt on the whole batch first.
        values = pa.array([v if v.__class__ is str or v is None else _text(v) for v in self.values], pa.string())
        data = pa.MapArray.from_arrays(pa.array(self.offsets, pa.int32()), pa.array(self.keys, pa.string()), values)
        ts = self._times()
        table = pa.table(
            {
                "evidence_id": pa.nulls(n, pa.int32()),
                "line": pa.array(self.line, pa.int64()),
                "host": pa.array(self.host, pa.string()),
                "ts": ts,
                "channel": pa.array(self.channel, pa.string()),
                "provider": pa.array(self.provider, pa.string()),
                "event_id": pa.array(self.event_id, pa.int32()),
                "computer": pa.array(self.computer, pa.string()),
                "record_id": pa.array(self.record_id, pa.int64()),
                "sid": pa.array(self.sid, pa.string()),
                "user": pa.array(self.user, pa.string()),
                "data": data.cast(_MAP),
                "source": pa.array([self.source] * n, pa.string()),
            }
        )
        self.sink.batch(EVENTS, table)
        self._reset()


def _int(v: Any) -> int | None:
    if isinstance(v, int):
        return v
    if isinstance(v, dict):
        v = v.get("#text")
    try:
        return int(str(v).strip())
    except (TypeError, ValueError):
        return None


def _flat_data(ed: Any, ud: Any = None) -> dict[str, Any]:
    """EventData as a dict (unnamed `<Data>` items become Data1, Data2 ...), or UserData's one
    child flattened."""
    if isinstance(ed, dict):
        if "Data" in ed and len(ed) <= 2 and not isinstance(ed.get("Data"), str | int | float | None):
            items = ed["Data"]
            if isinstance(items, dict) and isinstance(items.get("#text"), list):  # the parser's unnamed items
                items = items["#text"]
            items = items if isinstance(items, list) else [items]
            return {f"Data{i}": _text(x) for i, x in enumerate(items, 1)}
        if "#attributes" in ed:
            return {k: v for k, v in ed.items() if k != "#attributes"}
        return ed
    if isinstance(ud, dict):
        for child in ud.values():
            if isinstance(child, dict):
                return {k: v for k, v in child.items() if k != "#attributes"}
    return {}


# -- EVTX ------------------------------------------------------------------------------------

_decode = msgspec.json.Decoder().decode


# The parts of a record's JSON the events row needs, decoded straight into typed objects (the
# rest of System is skipped unread). A record that does not fit goes through the generic decoder.
class _Attrs(msgspec.Struct):
    Name: Any = None
    EventSourceName: Any = None
    SystemTime: Any = None
    UserID: Any = None


class _Tagged(msgspec.Struct):
    attrs: _Attrs | None = msgspec.field(default=None, name="#attributes")


class _System(msgspec.Struct):
    Provider: _Tagged | None = None
    EventID: Any = None
    TimeCreated: _Tagged | None = None
    EventRecordID: Any = None
    Channel: Any = None
    Computer: Any = None
    Security: _Tagged | None = None


class _Event(msgspec.Struct):
    System: _System
    EventData: Any = None
    UserData: Any = None


class _Record(msgspec.Struct):
    Event: _Event


_decode_record = msgspec.json.Decoder(_Record).decode


HEADER_BYTES = 4096
CHUNK_BYTES = 65536


class _ChunkView(io.RawIOBase):
    """Chunks [first, last) of an .evtx behind a file header that declares just those (so a big
    file can be parsed in parts, one per worker); a truncated last chunk reads as if complete
    (zeros after the end), so the parser reads the records that survived instead of dropping
    the whole chunk."""

    def __init__(self, path: Path, first: int, last: int) -> None:
        self.fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed with this object
        self.real_end = path.stat().st_size
        head = self.fh.read(HEADER_BYTES).ljust(HEADER_BYTES, b"\0")
        self.head = head if not first and last == _chunk_count(self.real_end) else file_header(head, last - first)
        self.start = HEADER_BYTES + first * CHUNK_BYTES  # where chunk `first` is in the real file
        self.size = HEADER_BYTES + (last - first) * CHUNK_BYTES
        self.pos = 0
        # The parser asks for a few bytes at a time (about 40 reads a chunk): they are served
        # from a window of the file read in one call, not from a system call each.
        self.win_at = 0
        self.win = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else self.pos + offset if whence == 1 else self.size + offset
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self.pos + n)
        if end <= self.pos:
            return b""
        out = b""
        if self.pos < HEADER_BYTES:
            out = self.head[self.pos : min(end, HEADER_BYTES)]
            self.pos += len(out)
        if end > self.pos:
            real = self.start + self.pos - HEADER_BYTES
            want = min(end - self.pos, self.real_end - real)
            if want > 0:
                if not (self.win_at <= real and real + want <= self.win_at + len(self.win)):
                    self.fh.seek(real)
                    self.win_at, self.win = real, self.fh.read(max(want, WINDOW_BYTES))
                data = self.win[real - self.win_at : real - self.win_at + want]
            else:
                data = b""
            out += data + b"\0" * (end - self.pos - len(data))
            self.pos = end
        return out

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.fh.close()
        super().close()


MAX_CHUNKS = 0xFFFF  # a file header's chunk count is 16 bits


def file_header(head: bytes, chunks: int) -> bytes:
    """An .evtx file header (`head`, 4096 bytes) rewritten to declare `chunks` chunks numbered
    from 0, its checksum set again; the rest (padding included) kept."""
    out = bytearray(head)
    struct.pack_into("<QQ", out, 8, 0, max(0, chunks - 1))  # first and last chunk numbers
    struct.pack_into("<H", out, 42, min(MAX_CHUNKS, chunks))  # chunk count
    struct.pack_into("<I", out, 124, zlib.crc32(bytes(out[:120])))  # header checksum
    return bytes(out)


def _chunk_count(size: int) -> int:
    """Chunks in a file of `size` bytes, a truncated last one included."""
    return max(0, -(-(size - HEADER_BYTES) // CHUNK_BYTES))


WINDOW_BYTES = 1 << 20  # how much of the file a _ChunkView reads at once

# A big file is parsed in parts, one per worker task: of about `PART_RECORDS` records as the
# chunk headers declare them (a full chunk holds a hundred or so, an exported sample's a few),
# and at most `PART_CHUNKS` chunks. Fewer, bigger parts cost less to hand back and store.
PART_RECORDS = 30_000
PART_CHUNKS = 8192


def parts(path: Path) -> list[tuple[int, int]]:
    """The chunk ranges a big .evtx is parsed in, in file order, as few as `PART_RECORDS` and
    `PART_CHUNKS` allow and about equal (a 20 MiB Security.evtx makes two halves)."""
    n = _chunk_count(path.stat().st_size)
    if not n:
        return []
    counts = _declared(path, 0, n) or [0] * n
    total = sum(counts)
    k = max(1, -(-total // PART_RECORDS), -(-n // PART_CHUNKS))
    if k == 1:
        return [(0, n)]
    if -(-n // PART_CHUNKS) >= -(-total // PART_RECORDS):  # bounded by chunks: equal chunk ranges
        step = -(-n // k)
        return [(i, min(n, i + step)) for i in range(0, n, step)]
    out = []
    first = 0
    done = 0
    for i, c in enumerate(counts):
        done += c
        if i + 1 < n and (done >= total * (len(out) + 1) / k or i + 1 - first >= PART_CHUNKS):
            out.append((first, i + 1))
            first = i + 1
    out.append((first, n))
    return out


# A part that kills its worker twice is halved until what is lost is at most this many chunks.
LOST_CHUNKS = 16


def halve_part(part: tuple[int, int]) -> list[tuple[int, int]]:
    """Chunks [first, last) as two parts, or none when the range is `LOST_CHUNKS` or smaller."""
    first, last = part
    if last - first <= LOST_CHUNKS:
        return []
    middle = (first + last) // 2
    return [(first, middle), (middle, last)]


def expected_records(path: Path, first: int = 0, last: int | None = None) -> int | None:
    """Records the chunk headers of chunks [first, last) declare (first..last record number of
    each chunk with a sane header), to count what a damaged or truncated chunk lost."""
    counts = _declared(path, first, last)
    return None if counts is None else sum(counts)


def _declared(path: Path, first: int = 0, last: int | None = None) -> list[int] | None:
    """Records each chunk of [first, last) declares in its header (0 for one without a sane
    header); None when the file cannot be read. 40 bytes read per chunk, unbuffered (a big log
    has tens of thousands of chunks)."""
    out = []
    try:
        with open(path, "rb", buffering=0) as fh:
            count = _chunk_count(os.fstat(fh.fileno()).st_size)
            for i in range(first, count if last is None else min(last, count)):
                fh.seek(HEADER_BYTES + i * CHUNK_BYTES)
                head = fh.read(40)
                if len(head) < 40:
                    break
                declared = 0
                if head[:8] == b"ElfChnk\0":
                    lo, hi = struct.unpack_from("<QQ", head, 8)
                    if lo <= hi and hi - lo < CHUNK_BYTES // 24:
                        declared = int(hi - lo + 1)
                out.append(declared)
    except OSError:
        return None
    return out


def _evtx_records(path: Path, sink: Sink, part: tuple[int, int] | None, used: list[int]) -> Iterator[tuple[int, Any]]:
    """(ordinal, record) pairs of the file or of one part of it; a record the parser cannot read
    is counted and skipped. `used` receives the number of ordinals handed out."""
    size = path.stat().st_size
    truncated = size > HEADER_BYTES and (size - HEADER_BYTES) % CHUNK_BYTES
    try:
        if part is not None:
            source: Any = _ChunkView(path, *part)
        elif truncated:
            source = _ChunkView(path, 0, _chunk_count(size))
        else:
            source = str(path)
    except OSError as exc:
        sink.skip(0, "unreadable evtx file", f"{type(exc).__name__}: {exc}")
        return
    yield from _parsed(source, sink, used)


def _parsed(source: Any, sink: Sink, used: list[int], base: int = 0) -> Iterator[tuple[int, Any]]:
    """(ordinal, record) pairs the `evtx` parser reads from `source` (a path or a file object),
    ordinals from `base` + 1."""
    import evtx  # the Rust parser; imported here so the other formats do not need it

    try:
        # One parser thread: records are taken one by one here (more threads measured no faster),
        # and worker processes already share the cores.
        parser = evtx.PyEvtxParser(source, number_of_threads=1)
    except (OSError, RuntimeError, ValueError) as exc:
        sink.skip(base, "unreadable evtx file", f"{type(exc).__name__}: {exc}")
        return
    it = parser.records_json()
    n = base
    errors = 0
    while True:
        n += 1
        try:
            rec = next(it)
        except StopIteration:
            used.append(n - 1 - base)
            return
        except Exception as exc:  # the parser raises its own error types for damaged chunks/records
            sink.skip(n, "damaged evtx record", f"{type(exc).__name__}: {exc}")
            errors += 1
            if errors > 100_000:  # a parser stuck on one spot: give up on the rest, counted
                sink.skip(n, "evtx parser gave up", "")
                used.append(n - base)
                return
            continue
        yield n, rec


def parse_file(path: Path, encoding: Encoding, sink: Sink) -> None:
    """Read an .evtx file into `events` (the file is hashed through `sink.tap` when given)."""
    del encoding  # binary
    tap = getattr(sink, "tap", None)
    if tap is not None:
        with open(path, "rb") as fh:
            wait = None
            while block := fh.read(8 * 1024 * 1024):
                if wait is not None:
                    wait()
                wait = tap(block)
            if wait is not None:
                wait()
    parse_part(path, None, sink)


# Read EVTX with the compiled BinXML reader (sources/binxml.py), the JSON path for the chunks it
# hands over; False (WORMHUNT_EVTX_READER=json): the JSON path only, the reference and the
# benchmark's baseline.
BINXML = os.environ.get("WORMHUNT_EVTX_READER", "binxml") != "json"
WINDOW_CHUNKS = 512  # chunks the compiled reader takes at once (32 MiB)


def parse_part(path: Path, part: tuple[int, int] | None, sink: Sink) -> int:
    """Read chunks [first, last) of an .evtx (the whole file for None) into `events`, lines
    numbered from 1 within the part; returns how many ordinals the part used."""
    size = path.stat().st_size
    truncated = size > HEADER_BYTES and (size - HEADER_BYTES) % CHUNK_BYTES
    if truncated and (part is None or part[1] == _chunk_count(size)):
        sink.meta.setdefault("warnings", []).append(
            {"code": "evtx_truncated", "detail": f"the file ends inside a chunk ({size} bytes)"}
        )
    used: list[int] = []
    with _no_gc():
        if not (BINXML and _read_compiled(path, part, sink, used)):
            _read_records(path, part, sink, used)
    expected = expected_records(path, *(part or (0, None)))
    lost = (expected or 0) - sink.records - sink.skip_counts["damaged evtx record"]
    sink.skip_many(lost, 0, "record lost in a damaged or truncated chunk")
    return used[0] if used else 0


def _read_compiled(path: Path, part: tuple[int, int] | None, sink: Sink, used: list[int]) -> bool:
    """The chunks through the compiled reader, window by window, and the chunks it hands over
    through the JSON path, ordinals in file order; False (nothing read) when the file does not
    start like an .evtx (the JSON path reports it)."""
    from wormhunt.sources import binxml

    try:
        fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed below
    except OSError:
        return False
    with fh:
        head = fh.read(HEADER_BYTES)
        if not head.startswith(EVTX_MAGIC) or len(head) < HEADER_BYTES:  # the parser reports these
            return False
        head = head.ljust(HEADER_BYTES, b"\0")
        first, last = part or (0, _chunk_count(os.fstat(fh.fileno()).st_size))
        base = 0
        verify = _verifier(head)
        for at in range(first, last, WINDOW_CHUNKS):
            n = min(WINDOW_CHUNKS, last - at)
            fh.seek(HEADER_BYTES + at * CHUNK_BYTES)
            raw = fh.read(n * CHUNK_BYTES).ljust(n * CHUNK_BYTES, b"\0")  # a cut last chunk reads as zeros
            buf = np.frombuffer(raw, np.uint8)
            try:
                window = binxml.read_window(buf, n, verify=verify)
            except Exception:  # whatever the reader meets (a layout its checks missed, no memory
                # for a window of huge texts), the JSON path reads the window
                binxml.STATS["errors"] += 1
                window = None
            bases = np.zeros(n, np.int64)
            c = 0
            while c < n:
                if window is not None and not window.bad[c]:
                    bases[c] = base
                    base += int(window.counts[c])
                    c += 1
                    continue
                end = c + 1
                while end < n and (window is None or window.bad[end]):
                    end += 1
                got: list[int] = []
                view = io.BytesIO(file_header(head, end - c) + raw[c * CHUNK_BYTES : end * CHUNK_BYTES])
                _read_json(_parsed(view, sink, got, base), sink)
                base += got[0] if got else 0
                c = end
            if window is not None and len(window.chunk):
                _batch_compiled(sink, window, bases[window.chunk] + window.index + 1)
        used.append(base)
    return True


def _batch_compiled(sink: Sink, window: Any, line: np.ndarray) -> None:
    import pyarrow.compute as pc

    cols = window.columns
    n = len(line)
    computer = cols["computer"].dictionary_encode()
    hosts = pa.array([short_host(c) for c in computer.dictionary.to_pylist()], pa.string())
    table = pa.table(
        {
            "evidence_id": pa.nulls(n, pa.int32()),
            "line": pa.array(line, pa.int64()),
            "host": pc.take(hosts, computer.indices),
            **cols,
            "source": pa.array(["evtx"] * n, pa.string()),
        }
    )
    sink.batch(EVENTS, table.select(EVENTS.names))


def _verifier(head: bytes) -> Any:
    """A check of the compiled reader's rows of one chunk against the JSON path's: for each
    record, whether its row is the same (None when the JSON path read the chunk otherwise)."""

    def verify(chunk: bytes, columns: dict) -> list[bool] | None:
        capture = MemorySink()
        got: list[int] = []
        _read_json(_parsed(io.BytesIO(file_header(head, 1) + chunk), capture, got), capture)
        if capture.skipped or not capture.of(EVENTS):
            return None
        json_rows = {r["line"]: r for r in capture.of(EVENTS)}
        ours = pa.table(columns).to_pylist()
        fields = ["ts", "channel", "provider", "event_id", "computer", "record_id", "sid", "user", "data"]
        out = []
        for i, row in enumerate(ours, 1):
            ref = json_rows.get(i)
            out.append(ref is not None and all(row[f] == ref[f] for f in fields))
        return out

    return verify


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Automatic garbage collection paused while records are read: a record's objects are freed
    by reference counting (no cycles), and the collector's repeated sweeps over every object of
    the process cost a quarter of the parse."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_records(path: Path, part: tuple[int, int] | None, sink: Sink, used: list[int]) -> None:
    _read_json(_evtx_records(path, sink, part, used), sink)


def _read_json(records: Iterator[tuple[int, Any]], sink: Sink) -> None:
    """Event rows of the parser's JSON records."""
    cols = _Columns(sink, "evtx")
    add = cols.add
    for n, rec in records:
        try:
            event = _decode_record(rec["data"]).Event
        except msgspec.ValidationError:  # an odd shape (a Provider without attributes ...)
            _add_generic(cols, n, rec, sink)
            continue
        except (msgspec.DecodeError, KeyError, TypeError) as exc:
            sink.skip(n, "damaged evtx record", f"{type(exc).__name__}: {exc}")
            continue
        system = event.System
        prov = system.Provider.attrs if system.Provider else None
        tc = system.TimeCreated.attrs if system.TimeCreated else None
        sec = system.Security.attrs if system.Security else None
        ts = tc.SystemTime if tc and tc.SystemTime.__class__ is str else None
        channel, computer, eid, rid = system.Channel, system.Computer, system.EventID, system.EventRecordID
        add(
            n,
            ts or _time(rec.get("timestamp")),
            channel if channel.__class__ is str else _text(channel),
            (prov.Name or prov.EventSourceName) if prov else None,
            eid if eid.__class__ is int else _int(eid),
            computer if computer.__class__ is str else _text(computer),
            (rid if rid.__class__ is int else _int(rid)) or rec.get("event_record_id"),
            sec.UserID if sec else None,
            _flat_data(event.EventData, event.UserData),
            rec.get("timestamp"),
        )
    cols.flush()


def _add_generic(cols: _Columns, n: int, rec: dict[str, Any], sink: Sink) -> None:
    try:
        event = _decode(rec["data"])["Event"]
        system = event["System"]
    except (msgspec.DecodeError, KeyError, TypeError) as exc:
        sink.skip(n, "damaged evtx record", f"{type(exc).__name__}: {exc}")
        return
    prov = system.get("Provider")
    attrs = prov.get("#attributes", {}) if isinstance(prov, dict) else {}
    tc = system.get("TimeCreated")
    ts = _time(tc.get("#attributes", {}).get("SystemTime") if isinstance(tc, dict) else None)
    if ts is None:
        ts = _time(rec.get("timestamp"))
    sec = system.get("Security")
    sid = sec.get("#attributes", {}).get("UserID") if isinstance(sec, dict) else None
    cols.add(
        n,
        ts,
        _text(system.get("Channel")),
        attrs.get("Name") or attrs.get("EventSourceName"),
        _int(system.get("EventID")),
        _text(system.get("Computer")),
        _int(system.get("EventRecordID")) or rec.get("event_record_id"),
        sid,
        _flat_data(event.get("EventData"), event.get("UserData")),
    )


# -- JSON lines: Winlogbeat / Elastic Agent (winlog.*), Winlogbeat 5.x, Mordor (flat) ---------

_MORDOR_SYSTEM = {
    "@timestamp", "@version", "Channel", "EventID", "Hostname", "SourceName", "EventTime", "EventReceivedTime",
    "TimeCreated", "RecordNumber", "EventRecordID", "ProviderGuid", "Keywords", "Severity", "SeverityValue",
    "EventType", "Opcode", "OpcodeValue", "Task", "Category", "Version", "ThreadID", "ExecutionProcessID",
    "Message", "SourceModuleName", "SourceModuleType", "host", "port", "tags", "UserID", "AccountName",
    "AccountType", "Domain", "Level", "ERROR_EVT_UNRESOLVED",
}  # fmt: skip


def _json_event(d: dict[str, Any]) -> tuple[Any, ...] | None:
    """(ts, channel, provider, event_id, computer, record_id, sid, data) of one JSON object."""
    if isinstance(w := d.get("winlog"), dict):  # Winlogbeat 6+/Elastic Agent
        data = dict(w.get("event_data") or {})
        if isinstance(ud := w.get("user_data"), dict):
            data.update({k: v for k, v in ud.items() if k not in data and k != "xml_name"})
        user = w.get("user") if isinstance(w.get("user"), dict) else {}
        ts = _time(d.get("@timestamp") or (d.get("event") or {}).get("created"))
        return (
            ts, w.get("channel"), w.get("provider_name"), _int(w.get("event_id")),
            w.get("computer_name"), _int(w.get("record_id")), user.get("identifier"), data,
        )  # fmt: skip
    if "event_data" in d or ("log_name" in d and "event_id" in d):  # Winlogbeat 5.x
        data = dict(d.get("event_data") or {})
        data.update({k: v for k, v in (d.get("user_data") or {}).items() if k not in data and k != "xml_name"})
        user = d.get("user") if isinstance(d.get("user"), dict) else {}
        return (
            _time(d.get("@timestamp")), d.get("log_name"), d.get("source_name"), _int(d.get("event_id")),
            d.get("computer_name"), _int(d.get("record_number")), user.get("identifier"), data,
        )  # fmt: skip
    if "EventID" in d and ("Channel" in d or "SourceName" in d):  # Mordor / NXLog flat
        data = {k: v for k, v in d.items() if k not in _MORDOR_SYSTEM}
        ts = _time(d.get("@timestamp") or d.get("TimeCreated") or d.get("EventTime"))
        return (
            ts, d.get("Channel"), d.get("SourceName"), _int(d.get("EventID")), d.get("Hostname"),
            _int(d.get("RecordNumber") or d.get("EventRecordID")), d.get("UserID"), data,
        )  # fmt: skip
    return None


def sniff_json(head: str) -> float:
    first = next((ln.strip() for ln in head.split("\n") if ln.strip()), "")
    if not first.startswith("{"):
        return 0.0
    if '"winlog"' in first and '"event_id"' in first:
        return 0.97
    if '"event_data"' in first and '"event_id"' in first:
        return 0.95
    if '"EventID"' in first and ('"Channel"' in first or '"SourceName"' in first):
        return 0.93
    return 0.0


def parse_json_text(text: str, sink: Sink) -> None:
    cols: dict[str, _Columns] = {}
    for n, line in enumerate(text.split("\n"), 1):
        line = line.strip()
        if not line:
            continue
        try:
            d = _decode(line)
        except msgspec.DecodeError:
            sink.skip(n, "not a JSON object", line)
            continue
        got = _json_event(d) if isinstance(d, dict) else None
        if got is None:
            sink.skip(n, "not a Windows event", line)
            continue
        ts, channel, provider, eid, computer, rid, sid, data = got
        source = "winlogbeat" if ("winlog" in d or "event_data" in d) else "mordor"
        c = cols.get(source) or cols.setdefault(source, _Columns(sink, source))
        c.add(n, ts, _text(channel), _text(provider), eid, _text(computer), rid, sid, data)
    for c in cols.values():
        c.flush()


# -- XML exports: Event Viewer "Save as XML", wevtutil qe /f:xml, Get-WinEvent ToXml() ------

_EVENT_XML = re.compile(r"<Event[\s>].*?</Event>", re.DOTALL)
_NS = re.compile(r"\{[^}]*\}")


def sniff_xml(head: str) -> float:
    if "<Event" in head and "<System>" in head and ("<EventID" in head):
        return 0.95
    return 0.0


def _local(tag: str) -> str:
    return _NS.sub("", tag)


def _xml_event(el: ET.Element) -> tuple[Any, ...]:
    system: dict[str, ET.Element] = {}
    data: dict[str, Any] = {}
    for part in el:
        tag = _local(part.tag)
        if tag == "System":
            system = {_local(c.tag): c for c in part}
        elif tag == "EventData":
            for i, c in enumerate(part, 1):
                name = c.get("Name") or f"{_local(c.tag)}{i}"
                data[name] = (c.text or "").strip()
        elif tag == "UserData":
            for child in part:
                for c in child:
                    data[_local(c.tag)] = (c.text or "").strip()
                break
    prov = system.get("Provider")
    tc = system.get("TimeCreated")
    sec = system.get("Security")

    def txt(name: str) -> str | None:
        e = system.get(name)
        return e.text.strip() if e is not None and e.text else None

    return (
        _time(tc.get("SystemTime") if tc is not None else None),
        txt("Channel"),
        (prov.get("Name") or prov.get("EventSourceName")) if prov is not None else None,
        _int(txt("EventID")),
        txt("Computer"),
        _int(txt("EventRecordID")),
        sec.get("UserID") if sec is not None else None,
        data,
    )


def parse_xml_text(text: str, sink: Sink) -> None:
    cols = _Columns(sink, "xml")
    for m in _EVENT_XML.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        try:
            el = ET.fromstring(m.group(0))
            ts, channel, provider, eid, computer, rid, sid, data = _xml_event(el)
        except ET.ParseError as exc:
            sink.skip(line, "damaged event XML", f"{exc}: {m.group(0)[:200]}")
            continue
        if eid is None:
            sink.skip(line, "event without an EventID", m.group(0)[:200])
            continue
        cols.add(line, ts, channel, provider, eid, computer, rid, sid, data)
    cols.flush()


FORMATS = (
    Format(
        "evtx",
        "Windows event log (.evtx)",
        lambda head: 0.0,
        parse_file=parse_file,
        sniff_bytes=sniff_bytes,
        parts=parts,
        parse_part=parse_part,
        part_records=lambda path, part: expected_records(path, *part),
        halve_part=halve_part,
    ),
    Format("winlog-json", "Windows events as JSON lines (Winlogbeat, Mordor)", sniff_json, parse_text=parse_json_text),
    Format("winlog-xml", "Windows events as XML (Event Viewer, wevtutil)", sniff_xml, parse_text=parse_xml_text),
)
