"""Writes .evtx files from templates and typed values: BinXML templates defined inline in the
first record of each chunk that uses them, later records referring to them, substitution
values as Windows writes them, chunk and file checksums set. Used by the tests of the EVTX
readers, which check the compiled reader against the `evtx` parser on what this writes.

A template is an element tree: `E(name, attrs, *children)`, where an attribute value or a child
is static text (str), `Sub(index, type)` (a substitution, `optional` for token 0x0e), or
another element. A record is (template, values, time), values being `V(type, python value)`.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from wormhunt.sources.evtx import CHUNK_BYTES, HEADER_BYTES, file_header

# value types
NULL, STRING, INT8, UINT8, INT16, UINT16, INT32, UINT32, INT64, UINT64 = (
    0x00,
    0x01,
    0x03,
    0x04,
    0x05,
    0x06,
    0x07,
    0x08,
    0x09,
    0x0A,
)
REAL64, BOOL, BINARY, GUID, FILETIME, SID, HEX32, HEX64, BINXML = 0x0C, 0x0D, 0x0E, 0x0F, 0x11, 0x13, 0x14, 0x15, 0x21
_INTS = {INT8: "<b", UINT8: "<B", INT16: "<h", UINT16: "<H", INT32: "<i", UINT32: "<I", INT64: "<q", UINT64: "<Q",
         HEX32: "<I", HEX64: "<Q"}  # fmt: skip
_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Sub:
    index: int
    type: int
    optional: bool = False


@dataclass
class E:
    name: str
    attrs: dict[str, str | Sub] = field(default_factory=dict)
    children: list[E | str | Sub] = field(default_factory=list)

    def __init__(self, name: str, attrs: dict[str, str | Sub] | None = None, *children: E | str | Sub) -> None:
        self.name, self.attrs, self.children = name, dict(attrs or {}), list(children)


@dataclass
class V:
    """A substitution value: a type and a Python value (`raw` bytes written as they are)."""

    type: int
    value: object = None
    raw: bytes | None = None


@dataclass
class Template:
    root: E
    guid: bytes = field(default_factory=lambda: uuid.uuid4().bytes)


def filetime(t: datetime) -> int:
    return int((t - _EPOCH).total_seconds() * 1_000_000) * 10


def value_bytes(v: V) -> bytes:
    if v.raw is not None:
        return v.raw
    t, x = v.type, v.value
    if t == NULL:
        return b""
    if t == STRING:
        return str(x).encode("utf-16-le", "surrogatepass")
    if t in _INTS:
        return struct.pack(_INTS[t], x)
    if t == REAL64:
        return struct.pack("<d", x)
    if t == BOOL:
        return struct.pack("<I", 1 if x else 0)
    if t == BINARY:
        return bytes(x)  # type: ignore[arg-type]
    if t == GUID:
        return uuid.UUID(str(x)).bytes_le
    if t == FILETIME:
        return struct.pack("<Q", filetime(x))  # type: ignore[arg-type]
    if t == SID:
        parts = [int(p) for p in str(x).split("-")[1:]]
        return (
            bytes([parts[0], len(parts) - 2])
            + parts[1].to_bytes(6, "big")
            + struct.pack(f"<{len(parts) - 2}I", *parts[2:])
        )
    raise ValueError(f"no encoding for value type {t:#x}")


def _name(text: str, at: int) -> bytes:
    """A name written inline at chunk offset `at`: its offset, then its structure."""
    chars = text.encode("utf-16-le")
    return struct.pack("<I", at + 4) + struct.pack("<IHH", 0, zlib.crc32(chars) & 0xFFFF, len(text)) + chars + b"\0\0"


def _value_token(v: str | Sub, more: bool = False) -> bytes:
    if isinstance(v, Sub):
        return struct.pack("<BHB", 0x0E if v.optional else 0x0D, v.index, v.type)
    return bytes([0x45 if more else 0x05, STRING]) + struct.pack("<H", len(v)) + v.encode("utf-16-le")


def _element(e: E, at: int, bogus_sizes: bool = False) -> bytes:
    """Element `e` as template tokens, written at chunk offset `at` (`bogus_sizes`: its size and
    its attribute list's size written wrong, to show what the readers make of them)."""
    out = bytearray([0x41 if e.attrs else 0x01]) + struct.pack("<H", 0xFFFF) + b"\0\0\0\0"
    out += _name(e.name, at + len(out))
    if e.attrs:
        size_at = len(out)
        out += b"\0\0\0\0"
        for i, (name, v) in enumerate(e.attrs.items()):
            out.append(0x46 if i < len(e.attrs) - 1 else 0x06)
            out += _name(name, at + len(out))
            out += _value_token(v)
        struct.pack_into("<I", out, size_at, 0xFFFFFFF0 if bogus_sizes else len(out) - size_at - 4)
    if not e.children:
        out.append(0x03)
    else:
        out.append(0x02)
        for c in e.children:
            out += _element(c, at + len(out), bogus_sizes) if isinstance(c, E) else _value_token(c)
        out.append(0x04)
    struct.pack_into("<I", out, 3, 0xFFFFFFF0 if bogus_sizes else len(out) - 7)
    return bytes(out)


def _instance(t: Template, values: list[V], at: int, defined: dict[int, int], bogus_sizes: bool = False) -> bytes:
    """A fragment holding a template instance, written at chunk offset `at`: the template's
    definition inline the first time the chunk uses it (`defined`: template -> its offset)."""
    out = bytearray(b"\x0f\x01\x01\x00\x0c\x01") + struct.pack("<I", id(t) & 0xFFFFFFFF)
    here = at + len(out) + 4
    if id(t) in defined:
        out += struct.pack("<I", defined[id(t)])
    else:
        defined[id(t)] = here
        out += struct.pack("<I", here)
        body = b"\x0f\x01\x01\x00" + _element(t.root, here + 24 + 4, bogus_sizes) + b"\x00"
        out += struct.pack("<I", 0) + t.guid + struct.pack("<I", len(body)) + body
    out += struct.pack("<I", len(values))
    encoded = []
    start = at + len(out) + 4 * len(values)
    for v in values:
        if v.type == BINXML:  # an embedded fragment: (template, values) in v.value
            inner_t, inner_v = v.value  # type: ignore[misc]
            data = _instance(inner_t, inner_v, start + sum(len(x) for x in encoded), defined, bogus_sizes)
        else:
            data = value_bytes(v)
        encoded.append(data)
        out += struct.pack("<HBB", len(data), v.type, 0)
    return bytes(out + b"".join(encoded))


def chunk(records: list[tuple[Template, list[V], datetime]], first_id: int = 1, bogus_sizes: bool = False) -> bytes:
    """One 64 KiB chunk of these records, numbered from `first_id` (`bogus_sizes`: the element
    and attribute-list sizes of its templates written wrong)."""
    body = bytearray()
    defined: dict[int, int] = {}
    last = 512
    for i, (t, values, when) in enumerate(records):
        at = 512 + len(body)
        xml = _instance(t, values, at + 24, defined, bogus_sizes)
        size = 24 + len(xml) + 4
        rec = (
            b"\x2a\x2a\x00\x00"
            + struct.pack("<IQQ", size, first_id + i, filetime(when))
            + xml
            + struct.pack("<I", size)
        )
        if at + len(rec) > CHUNK_BYTES:
            raise ValueError("the records do not fit in one chunk")
        last = at
        body += rec
    n = len(records)
    head = bytearray(512)
    head[:8] = b"ElfChnk\x00"
    struct.pack_into(
        "<QQQQIII", head, 8, first_id, first_id + n - 1, first_id, first_id + n - 1, 128, last, 512 + len(body)
    )
    struct.pack_into("<I", head, 52, zlib.crc32(bytes(body)))
    struct.pack_into("<I", head, 124, zlib.crc32(bytes(head[:120]) + bytes(head[128:512])))
    return bytes(head + body).ljust(CHUNK_BYTES, b"\0")


def write(dest: Path, chunks: list[bytes]) -> Path:
    """An .evtx file of these chunks behind a file header."""
    head = bytearray(HEADER_BYTES)
    head[:8] = b"ElfFile\x00"
    struct.pack_into("<IHHH", head, 32, 128, 1, 3, HEADER_BYTES)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(file_header(bytes(head), len(chunks)) + b"".join(chunks))
    return dest
