"""EVTX chunks read straight into event rows, without the `evtx` parser's JSON step.

An event record is a template instance: a reference to a template definition (BinXML written
once per chunk) and an array of substitution values. A production log holds a few dozen
templates and millions of records, so the work per record is reading its values:

1. `_scan` (compiled) walks each chunk's records and both substitution arrays of each record
   (the event's and its embedded EventData/UserData fragment's), and keys each template by a
   hash of its definition and of the names it uses.
2. `compile_template` (Python, once per distinct template) turns a definition into a `Plan`:
   which substitution or static text gives each System field and each EventData/UserData item.
3. `_emit` (compiled) renders the values of every record into Arrow buffers.

The `evtx` parser stays the reference. A chunk this reader does not fully understand (a
damaged or unusual layout, a value type it does not render, a template shape it has no plan
for) is handed to the JSON path whole. Every new signature (the plans and the value types of a
record) is checked against the JSON path on the first chunk it appears in; a signature whose
rows differ is never used again in the process, and its chunks go through JSON.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
from numba import njit

CHUNK = 65536
FIRST_RECORD = 512
MIN_RECORD = 46  # header 24, fragment 4, instance 10, value count 4, size copy 4

# System fields a plan maps, in this order.
SYSTEM_FIELDS = (
    "Provider.Name",
    "Provider.EventSourceName",
    "EventID",
    "TimeCreated.SystemTime",
    "EventRecordID",
    "Channel",
    "Computer",
    "Security.UserID",
)
F_NAME, F_ESN, F_EID, F_TIME, F_RID, F_CHANNEL, F_COMPUTER, F_SID = range(8)

# A plan source: >= 0 a substitution index; ABSENT; or STATIC - id, a static text's id.
ABSENT = -1
STATIC = -2

# Value types rendered here (others send the chunk to the JSON path).
T_NULL, T_STRING, T_BOOL, T_BINARY, T_GUID, T_FILETIME, T_SID, T_HEX32, T_HEX64, T_BINXML = (
    0x00,
    0x01,
    0x0D,
    0x0E,
    0x0F,
    0x11,
    0x13,
    0x14,
    0x15,
    0x21,
)


class Unsupported(Exception):
    """A template shape this reader has no plan for."""


# -- compiled helpers ------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _u16(b, i):
    return np.int64(b[i]) | (np.int64(b[i + 1]) << 8)


@njit(cache=True, inline="always")
def _u32(b, i):
    return np.int64(b[i]) | (np.int64(b[i + 1]) << 8) | (np.int64(b[i + 2]) << 16) | (np.int64(b[i + 3]) << 24)


@njit(cache=True, inline="always")
def _u64(b, i):
    lo = np.uint64(_u32(b, i))
    hi = np.uint64(_u32(b, i + 4))
    return lo | (hi << np.uint64(32))


_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@njit(cache=True)
def _fnv(h, b, start, end):
    for i in range(start, end):
        h = (h ^ np.uint64(b[i])) * _FNV_PRIME
    return h


@njit(cache=True)
def _name_end(b, cstart, p, name_off):
    """Where the token stream goes on after a name reference at `p`: past the name's inline
    structure when it is written right there, else at `p`. -1 when the name is out of bounds."""
    if name_off < 0 or name_off + 8 > CHUNK:
        return -1
    at = cstart + name_off
    n = _u16(b, at + 6)
    if name_off + 8 + 2 * n + 2 > CHUNK:
        return -1
    if name_off == p - cstart:
        return p + 8 + 2 * n + 2
    return p


@njit(cache=True)
def _template_key(b, cstart, def_off):
    """A 64-bit key of the template defined at `def_off` of the chunk at `cstart`: its GUID,
    body and the text of every name it uses (names may be written elsewhere in the chunk).
    0 when the body has tokens this reader does not walk."""
    if def_off < FIRST_RECORD or def_off + 24 > CHUNK:
        return np.uint64(0)
    size = _u32(b, cstart + def_off + 20)
    start = cstart + def_off + 24
    end = start + size
    if def_off + 24 + size > CHUNK:
        return np.uint64(0)
    h = _fnv(_FNV_OFFSET, b, cstart + def_off + 4, end)
    p = start
    while p < end:
        t = b[p]
        base = t & 0xBF
        if t == 0x00:
            p += 1
            break
        elif t == 0x0F:
            p += 4
        elif base == 0x01:
            if p + 11 > end:
                return np.uint64(0)
            name = _u32(b, p + 7)
            q = _name_end(b, cstart, p + 11, name)
            if q < 0:
                return np.uint64(0)
            at = cstart + name
            h = _fnv(h, b, at + 8, at + 8 + 2 * _u16(b, at + 6))
            p = q + (4 if t & 0x40 else 0)
        elif base == 0x06:
            if p + 5 > end:
                return np.uint64(0)
            name = _u32(b, p + 1)
            q = _name_end(b, cstart, p + 5, name)
            if q < 0:
                return np.uint64(0)
            at = cstart + name
            h = _fnv(h, b, at + 8, at + 8 + 2 * _u16(b, at + 6))
            p = q
        elif t == 0x02 or t == 0x03 or t == 0x04:
            p += 1
        elif base == 0x05:
            if p + 4 > end or b[p + 1] != 0x01:
                return np.uint64(0)
            p += 4 + 2 * _u16(b, p + 2)
        elif t == 0x0D or t == 0x0E:
            p += 4
        else:
            return np.uint64(0)
    if p > end:
        return np.uint64(0)
    h = h ^ np.uint64(size)
    return h if h != 0 else np.uint64(1)


@njit(cache=True)
def _instance(b, cstart, p, end, cache_off, cache_key, ncache):
    """The template instance at `p` (a fragment header, token 0x0c ...) ending by `end`:
    (definition offset, template key, substitution array position, value count, cache size);
    a definition offset of -1 when it does not have that shape."""
    if p + 14 > end or b[p] != 0x0F or b[p + 4] != 0x0C:
        return -1, np.uint64(0), 0, 0, ncache
    def_off = _u32(b, p + 10)
    q = p + 14
    if def_off == q - cstart:  # defined inline, right here
        if q + 24 > end:
            return -1, np.uint64(0), 0, 0, ncache
        q += 24 + _u32(b, q + 20)
    if q + 4 > end:
        return -1, np.uint64(0), 0, 0, ncache
    key = np.uint64(0)
    for i in range(ncache):
        if cache_off[i] == def_off:
            key = cache_key[i]
            break
    if key == 0:
        key = _template_key(b, cstart, def_off)
        if key == 0:
            return -1, np.uint64(0), 0, 0, ncache
        if ncache < cache_off.shape[0]:
            cache_off[ncache] = def_off
            cache_key[ncache] = key
            ncache += 1
    count = _u32(b, q)
    if q + 4 + 4 * count > end:
        return -1, np.uint64(0), 0, 0, ncache
    total = 0
    for i in range(count):
        total += _u16(b, q + 4 + 4 * i)
    if q + 4 + 4 * count + total > end:
        return -1, np.uint64(0), 0, 0, ncache
    return def_off, key, q, count, ncache


@njit(cache=True)
def _count(b, nchunks, counts, status):
    """Records of each chunk that has the expected layout (status 0), records tiling the space
    from offset 512 to the chunk's free space offset; status 1 sends the chunk to JSON."""
    total = 0
    for c in range(nchunks):
        cs = c * CHUNK
        counts[c] = 0
        ok = b[cs] == 0x45 and b[cs + 1] == 0x6C and b[cs + 2] == 0x66 and b[cs + 3] == 0x43
        ok = ok and b[cs + 4] == 0x68 and b[cs + 5] == 0x6E and b[cs + 6] == 0x6B and b[cs + 7] == 0
        free = _u32(b, cs + 48)
        if not ok or free < FIRST_RECORD or free > CHUNK:
            status[c] = 1
            continue
        p = FIRST_RECORD
        n = 0
        while p < free:
            if p + 24 > free or _u32(b, cs + p) != 0x2A2A:
                break
            size = _u32(b, cs + p + 4)
            if size < MIN_RECORD or p + size > free or _u32(b, cs + p + size - 4) != size:
                break
            n += 1
            p += size
        if p != free:
            status[c] = 1
            continue
        status[c] = 0
        counts[c] = n
        total += n
    return total


@njit(cache=True)
def _scan(
    b, nchunks, status, r_chunk, r_off, r_id, r_ft, r_okey, r_osub, r_ocount, r_ikey, r_idef, r_isub, r_icount, r_iidx
):
    """Each record of the good chunks: its header fields, its template instance and that of
    the one embedded BinXML value (type 0x21) it may hold. A chunk with a record of another
    shape gets status 1 and its records are dropped (the JSON path reads it)."""
    cache_off = np.zeros(256, np.int64)
    cache_key = np.zeros(256, np.uint64)
    r = 0
    for c in range(nchunks):
        if status[c]:
            continue
        cs = c * CHUNK
        free = _u32(b, cs + 48)
        ncache = 0
        first = r
        p = FIRST_RECORD
        while p < free:
            at = cs + p
            size = _u32(b, at + 4)
            end = at + size - 4
            d, key, q, count, ncache = _instance(b, cs, at + 24, end, cache_off, cache_key, ncache)
            if d < 0:
                status[c] = 1
                break
            r_chunk[r] = c
            r_off[r] = at
            r_id[r] = np.int64(_u64(b, at + 8))
            r_ft[r] = np.int64(_u64(b, at + 16))
            r_okey[r] = key
            r_osub[r] = q
            r_ocount[r] = count
            r_ikey[r] = 0
            r_iidx[r] = -1
            v = q + 4 + 4 * count
            for i in range(count):
                vsize = _u16(b, q + 4 + 4 * i)
                if b[q + 6 + 4 * i] == T_BINXML:
                    if r_iidx[r] >= 0:  # a second embedded fragment: not a shape planned for
                        d = -1
                        break
                    d2, key2, q2, count2, ncache = _instance(b, cs, v, v + vsize, cache_off, cache_key, ncache)
                    if d2 < 0:
                        d = -1
                        break
                    r_ikey[r] = key2
                    r_idef[r] = d2
                    r_isub[r] = q2
                    r_icount[r] = count2
                    r_iidx[r] = i
                v += vsize
            if d < 0:
                status[c] = 1
                break
            r += 1
            p += size
        if status[c]:
            r = first
    return r


# -- templates into plans --------------------------------------------------------------------


@dataclass
class Node:
    name: str
    attrs: dict[str, list] = field(default_factory=dict)  # name -> content items
    content: list = field(default_factory=list)  # str | ("sub", index, type) | Node


@dataclass
class Plan:
    """How one template's substitutions become a row. `system[i]`: source of SYSTEM_FIELDS[i].
    `items`: (key, source, empty_null) of EventData/UserData in order; `empty_null`: an empty
    text is no value (the JSON path gives null for an empty element, "" for an empty named Data). `embedded`: the substitution index
    whose BinXML fragment gives the items instead (its own plan), or -1. `statics`: the static
    texts sources refer to."""

    system: list[int]
    items: list[tuple[str, int, bool]]
    embedded: int = -1
    context: int = 0  # the embedded fragment's place: 1 the Event's child, 2 inside UserData
    statics: list[str] = field(default_factory=list)


def _name(chunk: bytes, off: int) -> str:
    if off + 8 > CHUNK:
        raise Unsupported("name out of the chunk")
    n = struct.unpack_from("<H", chunk, off + 6)[0]
    if off + 8 + 2 * n > len(chunk):
        raise Unsupported("name out of the chunk")
    return chunk[off + 8 : off + 8 + 2 * n].decode("utf-16-le", "surrogatepass")


def parse_template(chunk: bytes, def_off: int) -> Node:
    """The element tree of the template defined at `def_off` of a chunk."""
    size = struct.unpack_from("<I", chunk, def_off + 20)[0]
    p = def_off + 24
    end = p + size
    if end > len(chunk):
        raise Unsupported("template beyond the chunk")
    u16 = struct.Struct("<H").unpack_from
    u32 = struct.Struct("<I").unpack_from

    def name_at(q: int) -> tuple[str, int]:
        off = u32(chunk, q)[0]
        text = _name(chunk, off)
        q += 4
        if off == q:  # the name's structure is written inline, right here
            q += 8 + 2 * u16(chunk, off + 6)[0] + 2
        return text, q

    def value(q: int) -> tuple[object, int]:
        t = chunk[q]
        if t & 0xBF == 0x05:
            if chunk[q + 1] != 0x01:
                raise Unsupported("a static value that is not a string")
            n = u16(chunk, q + 2)[0]
            return chunk[q + 4 : q + 4 + 2 * n].decode("utf-16-le", "surrogatepass"), q + 4 + 2 * n
        if t in (0x0D, 0x0E):
            return ("sub", u16(chunk, q + 1)[0], chunk[q + 3]), q + 4
        raise Unsupported(f"token {t:#x} in a value")

    def element(q: int) -> tuple[Node, int]:
        t = chunk[q]
        name, q = name_at(q + 7)
        node = Node(name)
        if t & 0x40:
            q += 4
        while q < end and chunk[q] & 0xBF == 0x06:
            aname, q = name_at(q + 1)
            if aname in node.attrs:
                raise Unsupported("an attribute written twice")
            items = []
            while q < end and (chunk[q] & 0xBF == 0x05 or chunk[q] in (0x0D, 0x0E)):
                v, q = value(q)
                items.append(v)
            node.attrs[aname] = items
        if q >= end:
            raise Unsupported("element cut short")
        if chunk[q] == 0x03:
            return node, q + 1
        if chunk[q] != 0x02:
            raise Unsupported(f"token {chunk[q]:#x} after attributes")
        q += 1
        while q < end:
            t = chunk[q]
            if t == 0x04:
                return node, q + 1
            if t & 0xBF == 0x01:
                child, q = element(q)
                node.content.append(child)
            else:
                v, q = value(q)
                node.content.append(v)
        raise Unsupported("element not closed")

    if chunk[p : p + 4] != b"\x0f\x01\x01\x00":
        raise Unsupported("no fragment header")
    p += 4
    if p >= end or chunk[p] & 0xBF != 0x01:
        raise Unsupported("no root element")
    root, p = element(p)
    if p < end and chunk[p] != 0x00:
        raise Unsupported("content after the root element")
    return root


def _single(items: list) -> object:
    """The one value of an attribute or a text-only element: a static text, a ("sub", i, t),
    or None when empty; Unsupported when it is mixed."""
    if not items:
        return None
    if len(items) == 1 and not isinstance(items[0], Node):
        return items[0]
    raise Unsupported("mixed content")


def _child(node: Node, name: str) -> Node | None:
    found = [c for c in node.content if isinstance(c, Node) and c.name == name]
    if len(found) > 1:
        raise Unsupported(f"{name} written twice")
    return found[0] if found else None


class _Builder:
    """Sources of a plan: a substitution index, ABSENT, or a static text's id."""

    def __init__(self) -> None:
        self.statics: list[str] = []

    def source(self, value: object) -> int:
        if value is None:
            return ABSENT
        if isinstance(value, str):
            self.statics.append(value)
            return STATIC - (len(self.statics) - 1)
        if isinstance(value, tuple) and value[0] == "sub" and value[2] != T_BINXML:
            return int(value[1])
        raise Unsupported("an embedded fragment where a value is expected")


def _items(b: _Builder, node: Node, named_data: bool) -> list[tuple[str, int, bool]]:
    """EventData's named Data items (`named_data`; a Binary element too), or the flattened
    children of UserData's element, as (key, source, empty_null)."""
    out: list[tuple[str, int, bool]] = []
    for c in node.content:
        if not isinstance(c, Node):
            raise Unsupported("text or a fragment among the items")
        element = not named_data or c.name == "Binary"
        if named_data and c.name == "Binary" and not c.attrs:
            name = c.name
        elif named_data:
            name = _single(c.attrs.get("Name", []))
            if c.name != "Data" or not isinstance(name, str) or len(c.attrs) != 1:
                raise Unsupported("an EventData item that is not a named Data")
        else:
            name = c.name
            if c.attrs:
                raise Unsupported("a UserData item with attributes")
        if any(isinstance(x, Node) for x in c.content) or any(k == name for k, _, _ in out):
            raise Unsupported("a nested or repeated item")
        out.append((name, b.source(_single(c.content)), element))
    return out


def compile_template(root: Node, context: int) -> Plan:
    """A template's plan. `context` 0: an event's own template; 1: a fragment embedded as the
    Event's child (EventData or UserData); 2: a fragment embedded in UserData (its element)."""
    b = _Builder()
    if context == 1:
        if root.name == "EventData":
            return Plan([], _items(b, root, True), statics=b.statics)
        if root.name == "UserData":
            inner = [c for c in root.content if isinstance(c, Node)]
            if len(inner) != 1 or len(root.content) != 1:
                raise Unsupported("UserData without one element")
            return Plan([], _items(b, inner[0], False), statics=b.statics)
        raise Unsupported(f"an embedded {root.name}")
    if context == 2:
        return Plan([], _items(b, root, False), statics=b.statics)
    if root.name != "Event":
        raise Unsupported("the root is not Event")
    system = _child(root, "System")
    if system is None:
        raise Unsupported("no System")

    def attr(name: str, key: str) -> int:
        node = _child(system, name)
        return ABSENT if node is None else b.source(_single(node.attrs.get(key, [])))

    def text(name: str) -> int:
        node = _child(system, name)
        return ABSENT if node is None else b.source(_single(node.content))

    sources = [
        attr("Provider", "Name"),
        attr("Provider", "EventSourceName"),
        text("EventID"),
        attr("TimeCreated", "SystemTime"),
        text("EventRecordID"),
        text("Channel"),
        text("Computer"),
        attr("Security", "UserID"),
    ]
    if sources[F_TIME] <= STATIC or sources[F_EID] <= STATIC or sources[F_RID] <= STATIC:
        raise Unsupported("a static event id, record id or time")
    plan = Plan(sources, [], statics=b.statics)
    rest = [c for c in root.content if c is not system]
    if len(rest) > 1:
        raise Unsupported("more than one element after System")
    if not rest:
        return plan
    body = rest[0]
    if isinstance(body, tuple) and body[0] == "sub" and body[2] == T_BINXML:
        plan.embedded, plan.context = int(body[1]), 1
    elif isinstance(body, Node) and body.name == "EventData" and not body.attrs:
        plan.items = _items(b, body, True)
    elif isinstance(body, Node) and body.name == "UserData" and len(body.content) == 1:
        inner = body.content[0]
        if isinstance(inner, tuple) and inner[0] == "sub" and inner[2] == T_BINXML:
            plan.embedded, plan.context = int(inner[1]), 2
        elif isinstance(inner, Node):
            plan.items = _items(b, inner, False)
        else:
            raise Unsupported("UserData with text")
    else:
        raise Unsupported("an unusual event body")
    plan.statics = b.statics
    return plan


# -- values into text (compiled), formatted as the `evtx` parser's JSON shows them ------------

_HEX = np.frombuffer(b"0123456789abcdef0123456789ABCDEF", np.uint8)
_EPOCH_US = 11644473600 * 1_000_000  # FILETIME 1601-01-01 to 1970-01-01, in microseconds
FULL = -3  # the output buffer is full
ODD = -2  # a value this reader does not render
NULL = -1


@njit(cache=True)
def _put_uint(out, o, v):
    v = np.uint64(v)
    n = 1
    t = v
    while t >= 10:
        t //= np.uint64(10)
        n += 1
    for i in range(n - 1, -1, -1):
        out[o + i] = 48 + np.uint8(v % np.uint64(10))
        v //= np.uint64(10)
    return o + n


@njit(cache=True)
def _put_int(out, o, v):
    if v < 0:
        out[o] = 45  # "-"
        return _put_uint(out, o + 1, np.uint64(-(v + 1)) + np.uint64(1))
    return _put_uint(out, o, np.uint64(v))


@njit(cache=True)
def _put_hex(out, o, v, digits, upper):
    """`digits` hex digits of v (0: as many as needed, no leading zeros)."""
    v = np.uint64(v)
    if digits == 0:
        digits = 1
        t = v >> np.uint64(4)
        while t:
            digits += 1
            t >>= np.uint64(4)
    for i in range(digits - 1, -1, -1):
        out[o + i] = _HEX[np.int64(v & np.uint64(15)) + (16 if upper else 0)]
        v >>= np.uint64(4)
    return o + digits


@njit(cache=True)
def _put_2(out, o, v):
    out[o] = 48 + v // 10
    out[o + 1] = 48 + v % 10
    return o + 2


@njit(cache=True)
def _put_iso(out, o, us):
    """Microseconds since 1970 as 2021-12-13T12:55:45.250084Z."""
    days = us // 86_400_000_000
    rest = us - days * 86_400_000_000
    # days to a civil date (Howard Hinnant's algorithm)
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    if y < 0 or y > 9999:
        return ODD
    for i in range(3, -1, -1):
        out[o + i] = 48 + y % 10
        y //= 10
    o += 4
    out[o] = 45
    o = _put_2(out, o + 1, m)
    out[o] = 45
    o = _put_2(out, o + 1, d)
    out[o] = 84  # T
    secs = rest // 1_000_000
    o = _put_2(out, o + 1, secs // 3600)
    out[o] = 58
    o = _put_2(out, o + 1, (secs // 60) % 60)
    out[o] = 58
    o = _put_2(out, o + 1, secs % 60)
    out[o] = 46
    frac = rest % 1_000_000
    for i in range(6, 0, -1):
        out[o + i] = 48 + frac % 10
        frac //= 10
    out[o + 7] = 90  # Z
    return o + 8


@njit(cache=True)
def _put_utf16(b, p, size, out, o):
    """UTF-16LE as UTF-8, a lone surrogate as U+FFFD; trailing NULs left out."""
    n = size // 2
    while n > 0 and b[p + 2 * n - 2] == 0 and b[p + 2 * n - 1] == 0:
        n -= 1
    i = 0
    while i < n:
        c = _u16(b, p + 2 * i)
        i += 1
        if 0xD800 <= c < 0xDC00 and i < n:
            c2 = _u16(b, p + 2 * i)
            if 0xDC00 <= c2 < 0xE000:
                c = 0x10000 + ((c - 0xD800) << 10) + (c2 - 0xDC00)
                i += 1
        if 0xD800 <= c < 0xE000:
            c = 0xFFFD
        if c < 0x80:
            out[o] = c
            o += 1
        elif c < 0x800:
            out[o] = 0xC0 | (c >> 6)
            out[o + 1] = 0x80 | (c & 0x3F)
            o += 2
        elif c < 0x10000:
            out[o] = 0xE0 | (c >> 12)
            out[o + 1] = 0x80 | ((c >> 6) & 0x3F)
            out[o + 2] = 0x80 | (c & 0x3F)
            o += 3
        else:
            out[o] = 0xF0 | (c >> 18)
            out[o + 1] = 0x80 | ((c >> 12) & 0x3F)
            out[o + 2] = 0x80 | ((c >> 6) & 0x3F)
            out[o + 3] = 0x80 | (c & 0x3F)
            o += 4
    return o


@njit(cache=True)
def _int_value(b, p, size, t):
    """(ok, value) of an integer-typed value (types 0x03-0x0a, 0x14, 0x15)."""
    if (t == 0x03 or t == 0x04) and size == 1:
        v = np.int64(b[p])
        return True, v - 256 if t == 0x03 and v >= 128 else v
    if (t == 0x05 or t == 0x06) and size == 2:
        v = _u16(b, p)
        return True, v - 65536 if t == 0x05 and v >= 32768 else v
    if (t == 0x07 or t == 0x08 or t == 0x14) and size == 4:
        v = _u32(b, p)
        return True, v - 4294967296 if t == 0x07 and v >= 2147483648 else v
    if (t == 0x09 or t == 0x0A or t == 0x15) and size == 8:
        return True, np.int64(_u64(b, p))
    return False, np.int64(0)


@njit(cache=True)
def _render(b, p, size, t, out, o):
    """The value at `p` (`size` bytes, type `t`) written as text at out[o:]: the new end, NULL,
    ODD (a type or size not rendered here) or FULL."""
    if o + 3 * size + 256 > out.shape[0]:
        return FULL
    if t == T_NULL:
        return NULL
    if t == T_STRING:
        return _put_utf16(b, p, size, out, o)
    if t == T_HEX32 or t == T_HEX64:
        ok, v = _int_value(b, p, size, t)
        if not ok:
            return ODD
        out[o] = 48
        out[o + 1] = 120  # 0x
        return _put_hex(out, o + 2, v, 0, False)
    if 0x03 <= t <= 0x0A:
        ok, v = _int_value(b, p, size, t)
        if not ok:
            return ODD
        if t == 0x0A and v < 0:
            return _put_uint(out, o, np.uint64(v))
        return _put_int(out, o, v)
    if t == T_BINARY and size > 0:
        for i in range(size):
            o = _put_hex(out, o, b[p + i], 2, True)
        return o
    if t == T_BOOL and size == 4:
        word = b"true" if _u32(b, p) else b"false"
        for i in range(len(word)):
            out[o + i] = word[i]
        return o + len(word)
    if t == T_GUID and size == 16:
        o = _put_hex(out, o, _u32(b, p), 8, True)
        out[o] = 45
        o = _put_hex(out, o + 1, _u16(b, p + 4), 4, True)
        out[o] = 45
        o = _put_hex(out, o + 1, _u16(b, p + 6), 4, True)
        out[o] = 45
        o = _put_hex(out, o + 1, (np.int64(b[p + 8]) << 8) | b[p + 9], 4, True)
        out[o] = 45
        o += 1
        for i in range(10, 16):
            o = _put_hex(out, o, b[p + i], 2, True)
        return o
    if t == T_FILETIME and size == 8:
        return _put_iso(out, o, np.int64(_u64(b, p) // np.uint64(10)) - _EPOCH_US)
    if t == T_SID and size >= 8 and b[p] == 1 and size == 8 + 4 * np.int64(b[p + 1]):
        out[o] = 83
        out[o + 1] = 45  # S-
        o = _put_uint(out, o + 2, b[p])
        auth = np.uint64(0)
        for i in range(2, 8):
            auth = (auth << np.uint64(8)) | np.uint64(b[p + i])
        out[o] = 45
        o = _put_uint(out, o + 1, auth)
        for i in range(b[p + 1]):
            out[o] = 45
            o = _put_uint(out, o + 1, _u32(b, p + 8 + 4 * i))
        return o
    return ODD


@njit(cache=True)
def _values(b, q, count, pos, size, typ):
    """Position, size and type of each of the `count` values of the substitution array at `q`."""
    if count > pos.shape[0]:
        return False
    v = q + 4 + 4 * count
    for i in range(count):
        size[i] = _u16(b, q + 4 + 4 * i)
        typ[i] = b[q + 6 + 4 * i]
        pos[i] = v
        v += size[i]
    return True


@njit(cache=True)
def _source(b, src, sbase, pos, size, typ, count, st_buf, st_off, out, o):
    """A plan source written at out[o:]: the new end, NULL, ODD or FULL."""
    if src == ABSENT:
        return NULL
    if src <= STATIC:
        k = sbase + STATIC - src
        n = st_off[k + 1] - st_off[k]
        if o + n > out.shape[0]:
            return FULL
        out[o : o + n] = st_buf[st_off[k] : st_off[k + 1]]
        return o + n
    if src >= count:
        return ODD
    return _render(b, pos[src], size[src], typ[src], out, o)


@njit(cache=True)
def _emit(
    b,
    nrec,
    r_id,
    r_ft,
    r_osub,
    r_ocount,
    r_isub,
    r_icount,
    r_iidx,
    r_oplan,
    r_iplan,
    p_sys,
    p_emb,
    p_istart,
    p_icount,
    p_sbase,
    it_key,
    it_src,
    it_null,
    st_buf,
    st_off,
    user_keys,
    o_eid,
    o_rid,
    o_ts,
    o_ok,
    s_buf,
    s_off,
    i_key,
    v_buf,
    v_off,
    v_ok,
    m_off,
    o_sig,
    o_odd,
):
    """Rows of records [0, nrec): System fields (o_eid, o_rid, o_ts with validity in o_ok
    columns 0-2; provider, channel, computer, sid, user as text in s_buf rows 0-4, validity in
    o_ok columns 3-7), items (keys, values) and each record's signature. A record this reader
    cannot render gets o_odd 1. Returns (records done, items written): fewer records than
    `nrec` when an output buffer is full."""
    opos = np.zeros(4096, np.int64)
    osize = np.zeros(4096, np.int64)
    otyp = np.zeros(4096, np.int64)
    ipos = np.zeros(4096, np.int64)
    isize = np.zeros(4096, np.int64)
    ityp = np.zeros(4096, np.int64)
    sp = np.zeros(5, np.int64)
    nitems = 0
    vp = 0
    for r in range(nrec):
        o_odd[r] = 0
        m_off[r] = nitems
        for f in range(5):
            s_off[f, r] = sp[f]
        v_off[nitems] = vp
        pl = r_oplan[r]
        if pl < 0 or not _values(b, r_osub[r], r_ocount[r], opos, osize, otyp):
            o_odd[r] = 1
            continue
        ocount = r_ocount[r]
        h = _FNV_OFFSET
        h = (h ^ np.uint64(pl)) * _FNV_PRIME
        for i in range(ocount):
            h = (h ^ np.uint64(otyp[i])) * _FNV_PRIME
        sbase = p_sbase[pl]
        # event id, record id, time
        src = p_sys[pl, F_EID]
        o_ok[r, 0] = False
        if src >= 0:
            if src >= ocount:
                o_odd[r] = 1
                continue
            ok, v = _int_value(b, opos[src], osize[src], otyp[src])
            if ok and otyp[src] != T_HEX32 and otyp[src] != T_HEX64:
                o_eid[r] = v
                o_ok[r, 0] = -(2**31) <= v < 2**31 and not (otyp[src] == 0x0A and v < 0)
            elif otyp[src] != T_NULL:
                o_odd[r] = 1
                continue
        src = p_sys[pl, F_RID]
        o_rid[r] = r_id[r]
        if src >= 0:
            if src >= ocount:
                o_odd[r] = 1
                continue
            ok, v = _int_value(b, opos[src], osize[src], otyp[src])
            if ok and otyp[src] != T_HEX32 and otyp[src] != T_HEX64:
                if v != 0:
                    o_rid[r] = v
            elif otyp[src] != T_NULL:
                o_odd[r] = 1
                continue
        o_ok[r, 1] = o_rid[r] >= 0
        src = p_sys[pl, F_TIME]
        ft = r_ft[r]
        if src >= 0:
            if src >= ocount:
                o_odd[r] = 1
                continue
            if otyp[src] == T_FILETIME and osize[src] == 8:
                ft = np.int64(_u64(b, opos[src]))
            elif otyp[src] != T_NULL:
                o_odd[r] = 1
                continue
        o_ts[r] = np.int64(np.uint64(ft) // np.uint64(10)) - _EPOCH_US
        o_ok[r, 2] = True
        # text fields: provider (Name, or EventSourceName when Name is empty), channel, computer, sid
        odd = False
        for f, field_ in enumerate((F_NAME, F_CHANNEL, F_COMPUTER, F_SID)):
            e = _source(b, p_sys[pl, field_], sbase, opos, osize, otyp, ocount, st_buf, st_off, s_buf[f], sp[f])
            if f == 0 and (e == NULL or e == sp[f]):
                e = _source(b, p_sys[pl, F_ESN], sbase, opos, osize, otyp, ocount, st_buf, st_off, s_buf[f], sp[f])
            if e == FULL:
                return r, nitems
            if e == ODD:
                odd = True
                break
            if e == sp[f] and (f == 1 or f == 2):  # an empty Channel or Computer element: null
                e = NULL
            o_ok[r, 3 + f] = e != NULL
            if e != NULL:
                sp[f] = e
        if odd:
            o_odd[r] = 1
            continue
        # items: the plan's own, or those of the embedded fragment's plan
        ipl = pl
        pos, size, typ, count = opos, osize, otyp, ocount
        if p_emb[pl] >= 0:
            ipl = r_iplan[r]
            if ipl < 0 or r_iidx[r] != p_emb[pl] or not _values(b, r_isub[r], r_icount[r], ipos, isize, ityp):
                o_odd[r] = 1
                continue
            pos, size, typ, count = ipos, isize, ityp, r_icount[r]
            h = (h ^ np.uint64(ipl + 1_000_003)) * _FNV_PRIME
            for i in range(count):
                h = (h ^ np.uint64(typ[i])) * _FNV_PRIME
        o_sig[r] = np.int64(h)
        user = -1
        uname = -1
        udomain = -1
        first = nitems
        for k in range(p_istart[ipl], p_istart[ipl] + p_icount[ipl]):
            if nitems + 1 >= i_key.shape[0]:
                return r, first
            e = _source(b, it_src[k], p_sbase[ipl], pos, size, typ, count, st_buf, st_off, v_buf, vp)
            if e == FULL:
                return r, first
            if e == ODD:
                odd = True
                break
            if e == vp and it_null[k]:
                e = NULL
            i_key[nitems] = it_key[k]
            v_ok[nitems] = e != NULL
            if e != NULL:
                if it_key[k] == user_keys[0]:
                    user = nitems
                elif it_key[k] == user_keys[1]:
                    uname = nitems
                elif it_key[k] == user_keys[2]:
                    udomain = nitems
                vp = e
            nitems += 1
            v_off[nitems] = vp
        if odd:
            nitems = first
            vp = v_off[first]
            o_odd[r] = 1
            continue
        # user: User, else SubjectDomainName\SubjectUserName (leading backslashes stripped)
        o_ok[r, 7] = False
        u = s_buf[4]
        if user >= 0 or uname >= 0:
            start = sp[4]
            need = v_off[user + 1] - v_off[user] if user >= 0 else v_off[uname + 1] - v_off[uname] + 1
            if udomain >= 0:
                need += v_off[udomain + 1] - v_off[udomain]
            if start + need > u.shape[0]:
                return r, first
            e = start
            if user >= 0:
                for i in range(v_off[user], v_off[user + 1]):
                    u[e] = v_buf[i]
                    e += 1
            else:
                if udomain >= 0:
                    for i in range(v_off[udomain], v_off[udomain + 1]):
                        u[e] = v_buf[i]
                        e += 1
                u[e] = 92
                e += 1
                for i in range(v_off[uname], v_off[uname + 1]):
                    u[e] = v_buf[i]
                    e += 1
                lead = start
                while lead < e and u[lead] == 92:
                    lead += 1
                if lead > start:
                    u[start : e - (lead - start)] = u[lead:e].copy()
                    e -= lead - start
            sp[4] = e
            o_ok[r, 7] = True
    m_off[nrec] = nitems
    for f in range(5):
        s_off[f, nrec] = sp[f]
    return nrec, nitems


# -- the reader ------------------------------------------------------------------------------


class Plans:
    """Every plan compiled in this process, as the arrays `_emit` reads; the signatures checked
    against the JSON path (`verified`) and those whose rows differed (`rejected`)."""

    def __init__(self) -> None:
        self.outer: dict[int, int] = {}  # template key -> plan id, -1 when unsupported
        self.inner: dict[tuple[int, int], int] = {}  # (template key, context) -> plan id or -1
        self.plans: list[Plan] = []
        self.keys: list[str] = []
        self.key_ids: dict[str, int] = {}
        self.verified: set[int] = set()
        self.rejected: set[int] = set()
        self._arrays: tuple | None = None

    def add(self, plan: Plan) -> int:
        self.plans.append(plan)
        for key, _, _ in plan.items:
            self.key_ids.setdefault(key, len(self.key_ids))
            if len(self.keys) < len(self.key_ids):
                self.keys.append(key)
        self._arrays = None
        return len(self.plans) - 1

    def arrays(self) -> tuple:
        if self._arrays is None:
            n = len(self.plans)
            p_sys = np.full((max(n, 1), 8), ABSENT, np.int64)
            p_emb = np.full(max(n, 1), -1, np.int64)
            p_istart = np.zeros(max(n, 1), np.int64)
            p_icount = np.zeros(max(n, 1), np.int64)
            p_sbase = np.zeros(max(n, 1), np.int64)
            it_key: list[int] = []
            it_src: list[int] = []
            it_null: list[bool] = []
            statics: list[bytes] = []
            for i, p in enumerate(self.plans):
                if p.system:
                    p_sys[i] = p.system
                p_emb[i] = p.embedded
                p_istart[i] = len(it_key)
                p_icount[i] = len(p.items)
                p_sbase[i] = len(statics)
                it_key += [self.key_ids[k] for k, _, _ in p.items]
                it_src += [s for _, s, _ in p.items]
                it_null += [e for _, _, e in p.items]
                statics += [t.encode("utf-8", "surrogatepass") for t in p.statics]
            st_off = np.zeros(len(statics) + 1, np.int64)
            st_off[1:] = np.cumsum([len(t) for t in statics]) if statics else []
            st_buf = np.frombuffer(b"".join(statics) or b"\0", np.uint8)
            user_keys = np.array([self.key_ids.get(k, -2) for k in ("User", "SubjectUserName", "SubjectDomainName")])
            self._arrays = (
                p_sys,
                p_emb,
                p_istart,
                p_icount,
                p_sbase,
                np.array(it_key or [0], np.int64),
                np.array(it_src or [0], np.int64),
                np.array(it_null or [False], np.bool_),
                st_buf,
                st_off,
                user_keys,
            )
        return self._arrays


PLANS = Plans()


def _plan_of(plans: Plans, chunk: bytes, def_off: int, key: int, context: int) -> int:
    table = plans.outer if context == 0 else plans.inner
    k = key if context == 0 else (key, context)
    got = table.get(k)  # type: ignore[call-overload]
    if got is None:
        try:
            got = plans.add(compile_template(parse_template(chunk, def_off), context))
        except (Unsupported, IndexError, struct.error, UnicodeDecodeError):
            got = -1
        table[k] = got  # type: ignore[index]
    return got


@dataclass
class Window:
    """What `read_window` made of a run of chunks: per chunk, its record count and whether the
    JSON path must read it (`bad`); the rows of the other chunks' records as Arrow arrays, with
    each row's chunk and index within it."""

    counts: np.ndarray
    bad: np.ndarray
    chunk: np.ndarray
    index: np.ndarray
    columns: dict
    keys: list[str]


def read_window(b: np.ndarray, nchunks: int, plans: Plans = PLANS, verify=None) -> Window:
    """Rows of the chunks in `b` (`nchunks` x 64 KiB). `verify(chunk bytes, rows)` returns, for
    each record of the chunk, whether the JSON path gives the same row (None when it cannot
    tell); it is called for each chunk that holds a signature seen for the first time."""
    import pyarrow as pa

    counts = np.zeros(nchunks, np.int64)
    status = np.zeros(nchunks, np.int8)
    total = _count(b, nchunks, counts, status)
    cols = [
        np.zeros(total, t)
        for t in (
            np.int32,
            np.int64,
            np.int64,
            np.int64,
            np.uint64,
            np.int64,
            np.int64,
            np.uint64,
            np.int64,
            np.int64,
            np.int64,
            np.int64,
        )
    ]
    r_chunk, r_off, r_id, r_ft, r_okey, r_osub, r_ocount, r_ikey, r_idef, r_isub, r_icount, r_iidx = cols
    n = _scan(b, nchunks, status, *cols)
    cols = [c[:n] for c in cols]
    r_chunk, r_off, r_id, r_ft, r_okey, r_osub, r_ocount, r_ikey, r_idef, r_isub, r_icount, r_iidx = cols
    # plans of the templates, compiled the first time each key is seen
    ukeys, first, inverse = np.unique(r_okey, return_index=True, return_inverse=True)
    pids = []
    for key, r in zip(ukeys.tolist(), first.tolist(), strict=True):
        c = int(r_chunk[r])
        chunk = b"" if key in plans.outer else b[c * CHUNK : (c + 1) * CHUNK].tobytes()
        d = struct.unpack_from("<I", chunk, int(r_off[r]) - c * CHUNK + 34)[0] if chunk else 0
        pids.append(_plan_of(plans, chunk, d, key, 0))
    r_oplan = np.array(pids, np.int64)[inverse.reshape(-1)] if n else np.zeros(0, np.int64)
    contexts = np.array([0] + [p.context for p in plans.plans], np.int64)[r_oplan + 1]
    r_iplan = np.full(n, -1, np.int64)
    want = np.flatnonzero((r_iidx >= 0) & (contexts > 0))
    if len(want):
        pairs, first, inverse = np.unique(
            np.stack([r_ikey[want].view(np.int64), contexts[want]], 1), axis=0, return_index=True, return_inverse=True
        )
        pids = []
        for (key, ctx), i in zip(pairs.tolist(), first.tolist(), strict=True):
            r = int(want[i])
            c = int(r_chunk[r])
            k = key & 0xFFFFFFFFFFFFFFFF
            chunk = b"" if (k, ctx) in plans.inner else b[c * CHUNK : (c + 1) * CHUNK].tobytes()
            pids.append(_plan_of(plans, chunk, int(r_idef[r]), k, ctx))
        r_iplan[want] = np.array(pids, np.int64)[inverse.reshape(-1)]
    arrays = plans.arrays()
    size = max(1 << 16, int(sum(int(b[c * CHUNK + 48 : c * CHUNK + 52].view(np.uint32)[0]) for c in range(nchunks))))
    while True:
        out = _outputs(n, size)
        done, nitems = _emit(
            b, n, r_id, r_ft, r_osub, r_ocount, r_isub, r_icount, r_iidx, r_oplan, r_iplan, *arrays, *out
        )
        if done == n:
            break
        size *= 4
    o_eid, o_rid, o_ts, o_ok, s_buf, s_off, i_key, v_buf, v_off, v_ok, m_off, o_sig, o_odd = out
    bad = status.astype(bool)
    bad[r_chunk[o_odd == 1]] = True
    columns = _columns(pa, plans, n, out, nitems)
    # signatures not seen before: checked on the first chunk each appears in
    fresh = [s for s in np.unique(o_sig[o_odd == 0]).tolist() if s not in plans.verified and s not in plans.rejected]
    if fresh:
        wanted = set(fresh)
        for s in fresh:
            if s not in wanted:
                continue
            hit = np.flatnonzero((o_sig == s) & ~bad[r_chunk])
            if not len(hit):
                continue
            c = int(r_chunk[hit[0]])
            rows = np.flatnonzero(r_chunk == c)
            same = (
                verify(
                    b[c * CHUNK : (c + 1) * CHUNK].tobytes(),
                    {k: v.slice(int(rows[0]), len(rows)) for k, v in columns.items()},
                )
                if verify
                else None
            )
            sigs = o_sig[rows].tolist()
            if same is None:
                continue
            for sig, ok in zip(sigs, same, strict=True):
                if not ok:
                    plans.rejected.add(sig)
            for sig in sigs:
                if sig not in plans.rejected:
                    plans.verified.add(sig)
                wanted.discard(sig)
    good_sig = np.array([s in plans.verified for s in o_sig.tolist()], bool) if n else np.zeros(0, bool)
    bad[r_chunk[~good_sig & (o_odd == 0)]] = True
    keep = ~bad[r_chunk]
    index = np.arange(n) - np.concatenate([[0], np.cumsum(counts)])[r_chunk] if n else np.zeros(0, np.int64)
    if not keep.all():
        mask = pa.array(keep)
        columns = {k: v.filter(mask) for k, v in columns.items()}
    return Window(counts, bad, r_chunk[keep], index[keep], columns, plans.keys)


def _outputs(n: int, size: int) -> tuple:
    items = max(16, size // 4)
    return (
        np.zeros(n, np.int64),
        np.zeros(n, np.int64),
        np.zeros(n, np.int64),
        np.zeros((n, 8), np.bool_),
        np.zeros((5, size * 2), np.uint8),
        np.zeros((5, n + 1), np.int64),
        np.zeros(items, np.int32),
        np.zeros(size * 2, np.uint8),
        np.zeros(items + 1, np.int64),
        np.zeros(items, np.bool_),
        np.zeros(n + 1, np.int64),
        np.zeros(n, np.int64),
        np.zeros(n, np.int8),
    )


def _columns(pa, plans: Plans, n: int, out: tuple, nitems: int) -> dict:
    """Arrow arrays of the rows `_emit` wrote (odd records included; the caller filters)."""
    o_eid, o_rid, o_ts, o_ok, s_buf, s_off, i_key, v_buf, v_off, v_ok, m_off, o_sig, o_odd = out

    def text(f: int, valid: np.ndarray) -> pa.Array:
        offsets = s_off[f, : n + 1].astype(np.int32)
        return pa.StringArray.from_buffers(
            n, pa.py_buffer(offsets), pa.py_buffer(s_buf[f, : int(offsets[-1])].copy()), _validity(pa, valid)
        )

    values = pa.StringArray.from_buffers(
        nitems,
        pa.py_buffer(v_off[: nitems + 1].astype(np.int32)),
        pa.py_buffer(v_buf[: int(v_off[nitems])].copy()),
        _validity(pa, v_ok[:nitems]),
    )
    keys = pa.array(plans.keys or [""], pa.string()).take(pa.array(i_key[:nitems]))
    data = pa.MapArray.from_arrays(pa.array(m_off[: n + 1].astype(np.int32)), keys, values)
    return {
        "ts": pa.array(o_ts[:n].astype("datetime64[us]"), pa.timestamp("us"), mask=~o_ok[:n, 2]),
        "channel": text(1, o_ok[:n, 4]),
        "provider": text(0, o_ok[:n, 3]),
        "event_id": pa.array(
            o_eid[:n].astype(np.int32, copy=False) if n else o_eid[:0].astype(np.int32), pa.int32(), mask=~o_ok[:n, 0]
        ),
        "computer": text(2, o_ok[:n, 5]),
        "record_id": pa.array(o_rid[:n], pa.int64(), mask=~o_ok[:n, 1]),
        "sid": text(3, o_ok[:n, 6]),
        "user": text(4, o_ok[:n, 7]),
        "data": data,
    }


def _validity(pa, valid: np.ndarray):
    if valid.all():
        return None
    return pa.py_buffer(np.packbits(valid.astype(np.uint8), bitorder="little"))
