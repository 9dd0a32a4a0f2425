"""Big .evtx files made of real ones: the 64 KiB chunks of sample logs, repeated, behind one new
file header (chunk count and header checksum set; every chunk keeps its own checksums). Used by
the benchmark and by the tests of parsing a big file in parts.

Sample logs are small exports whose chunks are mostly empty (a few events in 64 KiB), while a
production log's chunks are full. `dense_chunks` fills each sample chunk with copies of its own
records, so a packed file has the event density of a real log: a copy keeps the record's event
data and refers to the templates its original defines (the copy leaves out the definitions
written inline, the event's and that of its embedded EventData). Every copy is checked by parsing the chunk with the
`evtx` parser: its event must come out exactly as its original's, or it is not used.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from wormhunt.sources.evtx import CHUNK_BYTES, HEADER_BYTES, MAX_CHUNKS, file_header

RECORD_MAGIC = b"\x2a\x2a\x00\x00"
CHUNK_HEADER = 512  # records start here
_INSTANCE = 28  # offset in a record of its template instance token (after the 24-byte header and fragment header)
_DEFINITION = 38  # offset in a record of an inline template definition


def sample_chunks(samples: list[Path]) -> list[bytes]:
    """Every chunk (with its `ElfChnk` signature) of the sample files, in order."""
    out = []
    for p in samples:
        data = p.read_bytes()
        for i in range((len(data) - HEADER_BYTES) // CHUNK_BYTES):
            c = data[HEADER_BYTES + i * CHUNK_BYTES : HEADER_BYTES + (i + 1) * CHUNK_BYTES]
            if c[:8] == b"ElfChnk\x00":
                out.append(c)
    return out


def pack(samples: list[Path], rounds: int, dest: Path, tag: int = 0, dense: bool = False) -> int:
    """Write one .evtx holding the samples' chunks `rounds` times (at most 65,535 chunks);
    returns the number of chunks written. `tag` goes into the header's padding, so files packed
    alike still differ (a case keeps one copy of identical files). `dense`: the chunks filled
    with copies of their records (`dense_chunks`)."""
    chunks = ((dense_chunks(samples) if dense else sample_chunks(samples)) * rounds)[:MAX_CHUNKS]
    head = samples[0].read_bytes()[: HEADER_BYTES - 8] + tag.to_bytes(8, "little")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as fh:
        fh.write(file_header(head, len(chunks)))
        for c in chunks:
            fh.write(c)
    return len(chunks)


def _records(chunk: bytes) -> list[tuple[int, bytes]]:
    """(offset, bytes) of each record of a chunk, up to its free space offset."""
    free = struct.unpack_from("<I", chunk, 48)[0]
    out = []
    offset = CHUNK_HEADER
    while offset + 24 <= min(free, CHUNK_BYTES) and chunk[offset : offset + 4] == RECORD_MAGIC:
        size = struct.unpack_from("<I", chunk, offset + 4)[0]
        if size < 28 or offset + size > free:
            break
        out.append((offset, chunk[offset : offset + size]))
        offset += size
    return out


def _as_reference(offset: int, record: bytes) -> bytes | None:
    """The record (at `offset` in its chunk) without its inline template definitions, the
    event's own and that of its embedded EventData/UserData fragment: their template instances
    still point at the definitions, which stay in the original. None when the record does not
    have that shape."""
    u32 = struct.Struct("<I").unpack_from
    if len(record) < _DEFINITION + 4 or record[24] != 0x0F or record[_INSTANCE] != 0x0C:
        return None
    p = _DEFINITION
    if u32(record, _INSTANCE + 6)[0] == offset + _DEFINITION:  # defined inline: skip it
        p += 24 + u32(record, _DEFINITION + 20)[0]  # next offset, GUID, size, then the definition
    if p + 4 > len(record) - 4:
        return None
    n = u32(record, p)[0]
    q = p + 4 + 4 * n  # the values, after one (size, type, pad) descriptor each
    if q > len(record) - 4:
        return None
    descriptors = []
    values = []
    for k in range(n):
        size, kind, pad = struct.unpack_from("<HBB", record, p + 4 + 4 * k)
        value = record[q : q + size]
        if len(value) < size:
            return None
        embedded = kind == 0x21 and size >= 14 + 24 and value[0] == 0x0F and value[4] == 0x0C
        if embedded and u32(value, 10)[0] == offset + q + 14:  # BinXML whose template is defined inline
            value = value[:14] + value[14 + 24 + u32(value, 14 + 20)[0] :]
        descriptors.append(struct.pack("<HBB", len(value), kind, pad))
        values.append(value)
        q += size
    body = record[:_DEFINITION] + struct.pack("<I", n) + b"".join(descriptors) + b"".join(values)
    out = bytearray(body + record[q:-4] + b"\0\0\0\0")
    struct.pack_into("<I", out, 4, len(out))
    struct.pack_into("<I", out, len(out) - 4, len(out))
    return bytes(out)


def _fill(chunk: bytes, copies: list[bytes]) -> bytes:
    """The chunk with `copies` appended round robin while they fit, every record numbered again
    from the chunk's first number, and its header and checksums set."""
    records = [r for _, r in _records(chunk)]
    free = CHUNK_HEADER + sum(len(r) for r in records)
    body = [*records]
    k = 0
    while copies and free + len(copies[k % len(copies)]) <= CHUNK_BYTES:
        body.append(copies[k % len(copies)])
        free += len(body[-1])
        k += 1
    first = struct.unpack_from("<Q", chunk, 8)[0]
    out = bytearray(chunk[:CHUNK_HEADER])
    last_offset = CHUNK_HEADER
    for i, r in enumerate(body):
        last_offset = len(out)
        rec = bytearray(r)
        struct.pack_into("<Q", rec, 8, first + i)
        out += rec
    out += b"\0" * (CHUNK_BYTES - len(out))
    last = first + len(body) - 1
    struct.pack_into("<QQQQ", out, 8, first, last, first, last)  # record numbers and identifiers
    struct.pack_into("<II", out, 44, last_offset, free)
    struct.pack_into("<I", out, 52, zlib.crc32(bytes(out[CHUNK_HEADER:free])))
    struct.pack_into("<I", out, 124, zlib.crc32(bytes(out[:120]) + bytes(out[128:CHUNK_HEADER])))
    return bytes(out)


def chunk_events(chunk: bytes, head: bytes) -> list[str] | None:
    """The JSON of each event of one chunk behind the file header `head`, as the `evtx` parser
    reads it (None if it fails)."""
    import evtx

    try:
        return [r["data"] for r in evtx.PyEvtxParser(io.BytesIO(file_header(head, 1) + chunk)).records_json()]
    except (OSError, RuntimeError, ValueError):
        return None


def dense_chunks(samples: list[Path]) -> list[bytes]:
    """The samples' chunks, each filled with verified copies of its own records."""
    head = samples[0].read_bytes()[:HEADER_BYTES]
    out = []
    for chunk in sample_chunks(samples):
        originals = _records(chunk)
        expected = chunk_events(chunk, head)
        if not originals or expected is None or len(expected) != len(originals):
            out.append(chunk)
            continue
        usable = []
        for i, (offset, record) in enumerate(originals):
            copy = _as_reference(offset, record)
            if copy is None:
                continue
            trial = chunk_events(_fill(chunk, [copy]), head)
            if trial is not None and len(trial) > len(originals) and set(trial[len(originals) :]) == {expected[i]}:
                usable.append(copy)
        filled = _fill(chunk, usable) if usable else chunk
        events = chunk_events(filled, head)
        good = events is not None and len(events) == len(_records(filled)) and set(events) <= set(expected)
        out.append(filled if good else chunk)
    return out
