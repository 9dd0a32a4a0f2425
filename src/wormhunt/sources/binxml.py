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

import re
import struct
import zlib
from collections import Counter
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


MAX_DEPTH = 32  # element nesting planned for (an event is 3 or 4 deep)


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
def _copy(b, start, end, out, o):
    """b[start:end] appended at out[o:]; -1 when it does not fit."""
    if o < 0 or o + end - start > out.shape[0]:
        return -1
    for i in range(start, end):
        out[o + i - start] = b[i]
    return o + end - start


@njit(cache=True)
def _template_norm(b, cstart, def_off, out, o):
    """The template defined at `def_off` of the chunk at `cstart`, written at out[o:] in a form
    that does not depend on where it sits in its chunk: its GUID, then each token with its
    dependency id, names as text, values and substitutions, without the offsets and sizes
    (Windows writes every template again in every chunk, at a different offset). Two templates
    read alike exactly when these bytes are equal. Returns the end, or -1 for a body with tokens
    this reader does not walk (or no room)."""
    if def_off < FIRST_RECORD or def_off + 24 > CHUNK:
        return -1
    size = _u32(b, cstart + def_off + 20)
    start = cstart + def_off + 24
    end = start + size
    if def_off + 24 + size > CHUNK:
        return -1
    o = _copy(b, cstart + def_off + 4, cstart + def_off + 20, out, o)  # the GUID
    p = start
    while p < end and o >= 0:
        t = b[p]
        base = t & 0xBF
        if t == 0x00:
            o = _copy(b, p, p + 1, out, o)
            p += 1
            break
        elif t == 0x0F:
            if p + 4 > end:
                return -1
            o = _copy(b, p, p + 4, out, o)
            p += 4
        elif base == 0x01 or base == 0x06:
            # an element (token, dependency id, size, name) or an attribute (token, name)
            head = 11 if base == 0x01 else 5
            if p + head > end:
                return -1
            o = _copy(b, p, p + 1, out, o)
            if base == 0x01:
                o = _copy(b, p + 1, p + 3, out, o)  # the dependency id
            name = _u32(b, p + head - 4)
            q = _name_end(b, cstart, p + head, name)
            if q < 0:
                return -1
            at = cstart + name
            o = _copy(b, at + 6, at + 8 + 2 * _u16(b, at + 6), out, o)  # its length and text
            p = q + (4 if t == 0x41 else 0)  # an element with attributes: their size follows
        elif t == 0x02 or t == 0x03 or t == 0x04:
            o = _copy(b, p, p + 1, out, o)
            p += 1
        elif base == 0x05:
            if p + 4 > end or b[p + 1] != 0x01:
                return -1
            q = p + 4 + 2 * _u16(b, p + 2)
            if q > end:
                return -1
            o = _copy(b, p, q, out, o)
            p = q
        elif t == 0x0D or t == 0x0E:
            if p + 4 > end:
                return -1
            o = _copy(b, p, p + 4, out, o)
            p += 4
        else:
            return -1
    if p > end:
        return -1
    return o


@njit(cache=True)
def _instance(b, cstart, p, end, cache_off, cache_slot, ncache, u_hash, u_off, u_norm, u_def, u_chunk, nu, c):
    """The template instance at `p` (a fragment header, token 0x0c ...) ending by `end`:
    (definition offset, template slot, substitution array position, value count, cache size,
    slots); a definition offset of -1 when it does not have that shape. A slot numbers the
    distinct templates of the window: their normalised bytes in u_norm[u_off[i]:u_off[i+1]]
    (`_template_norm`), and a chunk and definition offset of each to compile it from."""
    if p + 14 > end or b[p] != 0x0F or b[p + 4] != 0x0C:
        return -1, 0, 0, 0, ncache, nu
    def_off = _u32(b, p + 10)
    q = p + 14
    if def_off == q - cstart:  # defined inline, right here
        if q + 24 > end:
            return -1, 0, 0, 0, ncache, nu
        q += 24 + _u32(b, q + 20)
    if q + 4 > end:
        return -1, 0, 0, 0, ncache, nu
    slot = -1
    for i in range(ncache):
        if cache_off[i] == def_off:
            slot = cache_slot[i]
            break
    if slot < 0:
        if nu + 1 >= u_off.shape[0]:
            return -1, 0, 0, 0, ncache, nu
        start = u_off[nu]
        stop = _template_norm(b, cstart, def_off, u_norm, start)
        if stop < 0:
            return -1, 0, 0, 0, ncache, nu
        h = _fnv(_FNV_OFFSET, u_norm, start, stop)
        for i in range(nu):  # the same template seen in an earlier chunk of the window?
            if u_hash[i] == h and u_off[i + 1] - u_off[i] == stop - start:
                same = True
                for k in range(stop - start):
                    if u_norm[u_off[i] + k] != u_norm[start + k]:
                        same = False
                        break
                if same:
                    slot = i
                    break
        if slot < 0:
            slot = nu
            u_hash[nu] = h
            u_def[nu] = def_off
            u_chunk[nu] = c
            u_off[nu + 1] = stop
            nu += 1
        if ncache < cache_off.shape[0]:
            cache_off[ncache] = def_off
            cache_slot[ncache] = slot
            ncache += 1
    count = _u32(b, q)
    if q + 4 + 4 * count > end:
        return -1, 0, 0, 0, ncache, nu
    total = 0
    for i in range(count):
        total += _u16(b, q + 4 + 4 * i)
    if q + 4 + 4 * count + total > end:
        return -1, 0, 0, 0, ncache, nu
    return def_off, slot, q, count, ncache, nu


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
        first_id = _u64(b, cs + 24)  # the record ids the header declares: the parser reads no others
        last_id = _u64(b, cs + 32)
        while p < free:
            if p + 24 > free or _u32(b, cs + p) != 0x2A2A:
                break
            size = _u32(b, cs + p + 4)
            if size < MIN_RECORD or p + size > free or _u32(b, cs + p + size - 4) != size:
                break
            rid = _u64(b, cs + p + 8)
            if rid < first_id or rid > last_id:
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
def _scan(b, nchunks, status, r_chunk, r_id, r_ft, r_oslot, r_osub, r_ocount, r_islot, r_isub, r_icount, r_iidx, u_hash,
          u_off, u_norm, u_def, u_chunk):  # fmt: skip
    """Each record of the good chunks: its header fields, its template instance and that of
    the one embedded BinXML value (type 0x21) it may hold. A chunk with a record of another
    shape gets status 1: its records and the template slots it added are dropped (the JSON path
    reads it). Returns (records, template slots)."""
    cache_off = np.zeros(256, np.int64)
    cache_slot = np.zeros(256, np.int64)
    r = 0
    nu = 0
    u_off[0] = 0
    for c in range(nchunks):
        if status[c]:
            continue
        cs = c * CHUNK
        free = _u32(b, cs + 48)
        ncache = 0
        first = r
        first_slot = nu
        p = FIRST_RECORD
        while p < free:
            at = cs + p
            size = _u32(b, at + 4)
            end = at + size - 4
            d, slot, q, count, ncache, nu = _instance(
                b, cs, at + 24, end, cache_off, cache_slot, ncache, u_hash, u_off, u_norm, u_def, u_chunk, nu, c
            )
            if d < 0:
                status[c] = 1
                break
            r_chunk[r] = c
            r_id[r] = np.int64(_u64(b, at + 8))
            r_ft[r] = np.int64(_u64(b, at + 16))
            r_oslot[r] = slot
            r_osub[r] = q
            r_ocount[r] = count
            r_islot[r] = -1
            r_iidx[r] = -1
            v = q + 4 + 4 * count
            for i in range(count):
                vsize = _u16(b, q + 4 + 4 * i)
                if b[q + 6 + 4 * i] == T_BINXML:
                    if r_iidx[r] >= 0:  # a second embedded fragment: not a shape planned for
                        d = -1
                        break
                    d2, slot2, q2, count2, ncache, nu = _instance(
                        b, cs, v, v + vsize, cache_off, cache_slot, ncache, u_hash, u_off, u_norm, u_def, u_chunk, nu, c
                    )
                    if d2 < 0:
                        d = -1
                        break
                    r_islot[r] = slot2
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
            nu = first_slot
    return r, nu


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
    text is no value (the JSON path gives null for an empty element; for a named Data it gives
    "", for a null value too). `embedded`: the substitution index
    whose BinXML fragment gives the items instead (its own plan), or -1. `statics`: the static
    texts sources refer to."""

    system: list[int]
    items: list[tuple[str, int, bool]]
    embedded: int = -1
    context: int = 0  # the embedded fragment's place: 1 the Event's child, 2 inside UserData
    statics: list[str] = field(default_factory=list)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _utf16(raw: bytes) -> str:
    """A template's text as the parser reads it (and as `_put_utf16` renders values): up to the
    first NUL, lone surrogates left out."""
    text = raw.decode("utf-16-le", "surrogatepass").split("\0", 1)[0]
    # a valid pair decodes to one character: only lone surrogates are left to match
    return _LONE_SURROGATE.sub("", text)


def _name(chunk: bytes, off: int) -> str:
    if off + 8 > CHUNK:
        raise Unsupported("name out of the chunk")
    n = struct.unpack_from("<H", chunk, off + 6)[0]
    if off + 8 + 2 * n > len(chunk):
        raise Unsupported("name out of the chunk")
    return _utf16(chunk[off + 8 : off + 8 + 2 * n])


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
            return _utf16(chunk[q + 4 : q + 4 + 2 * n]), q + 4 + 2 * n
        if t in (0x0D, 0x0E):
            return ("sub", u16(chunk, q + 1)[0], chunk[q + 3]), q + 4
        raise Unsupported(f"token {t:#x} in a value")

    def element(q: int, depth: int = 0) -> tuple[Node, int]:
        if depth > MAX_DEPTH:
            raise Unsupported("elements nested too deep")
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
                child, q = element(q, depth + 1)
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
_MAX_US = 253402300799999999  # 9999-12-31T23:59:59.999999, the last time a timestamp column holds
FULL = -3  # the output buffer is full
ODD = -2  # a value this reader does not render
NULL = -1


@njit(cache=True, inline="always")
def _put_dec(out, o, v):
    """A non-negative int64 in decimal. (In int64 throughout: numba compares a uint64 with an
    int as floats, and a SID's sub-authorities are dozens of digits a record.)"""
    n = 1
    t = v
    while t >= 10:
        t //= 10
        n += 1
    for i in range(n - 1, -1, -1):
        out[o + i] = 48 + v % 10
        v //= 10
    return o + n


@njit(cache=True)
def _put_u64(out, o, v):
    """A uint64 in decimal, values of 2**63 and more included."""
    v = np.uint64(v)
    if v < np.uint64(1 << 63):
        return _put_dec(out, o, np.int64(v))
    o = _put_dec(out, o, np.int64(v // np.uint64(10)))
    out[o] = 48 + np.uint8(v % np.uint64(10))
    return o + 1


@njit(cache=True, inline="always")
def _put_int(out, o, v):
    if v >= 0:
        return _put_dec(out, o, v)
    out[o] = 45  # "-"
    return _put_u64(out, o + 1, np.uint64(-(v + 1)) + np.uint64(1))


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
def _put_utf16(b, p, size, out, o):
    """UTF-16LE as UTF-8, as the parser reads it: up to the first NUL, lone surrogates left out."""
    n = size // 2
    i = 0
    while i < n:
        lo = b[p + 2 * i]
        if lo < 0x80 and b[p + 2 * i + 1] == 0:  # ASCII, most of a log
            if lo == 0:
                break
            out[o] = lo
            o += 1
            i += 1
            continue
        c = _u16(b, p + 2 * i)
        i += 1
        if 0xD800 <= c < 0xDC00 and i < n:
            c2 = _u16(b, p + 2 * i)
            if 0xDC00 <= c2 < 0xE000:
                c = 0x10000 + ((c - 0xD800) << 10) + (c2 - 0xDC00)
                i += 1
        if 0xD800 <= c < 0xE000:  # a lone surrogate: left out, as the parser does
            continue
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


@njit(cache=True, inline="always")
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
def _render(b, p, size, t, out, o, lim):
    """The value at `p` (`size` bytes, type `t`) written as text at out[o:]: the new end, NULL,
    ODD (a type or size not rendered here) or FULL."""
    if o + 3 * size + 256 > lim:
        return FULL
    if t == T_NULL:
        return NULL
    if t == T_STRING:
        return ODD if size & 1 else _put_utf16(b, p, size, out, o)
    if t == T_HEX32 or t == T_HEX64:  # noqa: SIM109 - compiled code: two plain comparisons
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
            return _put_u64(out, o, v)
        return _put_int(out, o, v)
    if t == T_BINARY and size > 0:
        for i in range(size):
            o = _put_hex(out, o, b[p + i], 2, True)
        return o
    if t == T_BOOL and size == 4 and _u32(b, p) <= 1:  # the parser shows other values as numbers
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
        o = _put_dec(out, o + 2, np.int64(b[p]))
        auth = np.int64(0)
        for i in range(2, 8):
            auth = (auth << 8) | np.int64(b[p + i])
        out[o] = 45
        o = _put_dec(out, o + 1, auth)
        for i in range(np.int64(b[p + 1])):
            out[o] = 45
            o = _put_dec(out, o + 1, _u32(b, p + 8 + 4 * i))
        return o
    return ODD


@njit(cache=True, inline="always")
def _values(b, q, count, val, w):
    """Position, size and type of each of the `count` values of the substitution array at `q`,
    into val[w, 0..2] (w 0: the event's array, 1: its embedded fragment's)."""
    if count > val.shape[2]:
        return False
    v = q + 4 + 4 * count
    for i in range(count):
        val[w, 1, i] = _u16(b, q + 4 + 4 * i)
        val[w, 2, i] = b[q + 6 + 4 * i]
        val[w, 0, i] = v
        v += val[w, 1, i]
    return True


@njit(cache=True, inline="always")
def _source(b, src, sbase, val, w, count, st_buf, st_off, out, o, lim):
    """A plan source written at out[o:lim]: the new end, NULL, ODD or FULL. Inlined, with its
    string and static text paths, into `_emit`: a call with array arguments costs more than
    rendering a typical value."""
    if src == ABSENT:
        return NULL
    if src <= STATIC:
        k = sbase + STATIC - src
        start = st_off[k]
        n = st_off[k + 1] - start
        if o + n > lim:
            return FULL
        for i in range(n):
            out[o + i] = st_buf[start + i]
        return o + n
    if src >= count:
        return ODD
    if val[w, 2, src] == T_STRING:
        if val[w, 1, src] & 1:  # half a UTF-16 unit: the parser calls the record damaged
            return ODD
        if o + 3 * val[w, 1, src] > lim:
            return FULL
        return _put_utf16(b, val[w, 0, src], val[w, 1, src], out, o)
    return _render(b, val[w, 0, src], val[w, 1, src], val[w, 2, src], out, o, lim)


# Regions of `_emit`'s text buffer: provider, channel, computer, sid, user, then item values.
R_PROVIDER, R_CHANNEL, R_COMPUTER, R_SID, R_USER, R_VALUES = range(6)
_TASK_FIELD = np.array([F_NAME, F_ESN, F_CHANNEL, F_COMPUTER, F_SID], np.int64)


@njit(cache=True, _nrt=False)
def _emit(
    b, nrec, r_id, r_ft, r_osub, r_ocount, r_isub, r_icount, r_iidx, r_oplan, r_iplan,
    p_sys, p_emb, p_istart, p_icount, p_sbase, it_key, it_src, it_null, st_buf, st_off, user_keys,
    val, sp, sig_table, u_sig, s_meta, s_types,
    o_eid, o_rid, o_ts, o_ok, text, t_off, i_key, v_off, v_ok, m_off, o_sig, o_odd,
):  # fmt: skip
    """Rows of records [0, nrec): System fields (o_eid, o_rid, o_ts, validity in o_ok columns
    0-2); provider, channel, computer, sid and user as text (region R_* of `text`, offsets in
    t_off rows 0-4, validity in o_ok columns 3-7); items (keys in i_key, values in region
    R_VALUES, offsets in v_off); and each record's signature (its plans and the types of its
    values), numbered in o_sig (`u_sig` holds them). A record this reader cannot render gets
    o_odd 1. Returns (records done, items written, signatures): fewer records than `nrec` when
    a buffer is full.

    No array is sliced or rebound inside the loop: numba counts references to arrays with
    atomic operations, which cost more than the rendering itself when done per value; this
    function is compiled without that counting (it allocates nothing: `val` and `sp` are its
    scratch arrays)."""
    cap = text.shape[0] // 6
    for f in range(6):
        sp[f] = f * cap
    nsig = 0
    sig_table[:] = -1
    s_meta[0, 4] = 0
    nitems = 0
    v_off[0] = sp[R_VALUES]
    for r in range(nrec):
        o_odd[r] = 0
        o_sig[r] = 0  # the buffer is reused: a record that turns odd early keeps no stale number
        m_off[r] = nitems
        for f in range(5):
            t_off[f, r] = sp[f]
        v_off[nitems] = sp[R_VALUES]
        pl = r_oplan[r]
        ocount = r_ocount[r]
        if pl < 0 or not _values(b, r_osub[r], ocount, val, 0):
            o_odd[r] = 1
            continue
        h = (_FNV_OFFSET ^ np.uint64(pl)) * _FNV_PRIME
        for i in range(ocount):
            h = (h ^ np.uint64(val[0, 2, i])) * _FNV_PRIME
        sbase = p_sbase[pl]
        # event id and record id (integers), time (FILETIME)
        odd = False
        o_ok[r, 0] = False
        o_rid[r] = r_id[r]
        ft = r_ft[r]
        for f in (F_EID, F_RID, F_TIME):
            src = p_sys[pl, f]
            if src < 0:
                continue
            if src >= ocount:
                odd = True
                break
            t = val[0, 2, src]
            if t == T_NULL:
                continue
            if f == F_TIME:
                if t != T_FILETIME or val[0, 1, src] != 8:
                    odd = True
                    break
                ft = np.int64(_u64(b, val[0, 0, src]))
                continue
            ok, v = _int_value(b, val[0, 0, src], val[0, 1, src], t)
            if not ok or t == T_HEX32 or t == T_HEX64:  # noqa: SIM109 - compiled code: two plain comparisons
                odd = True
                break
            if f == F_EID:
                o_eid[r] = v
                o_ok[r, 0] = -(2**31) <= v < 2**31 and not (t == 0x0A and v < 0)
            elif v != 0:
                o_rid[r] = v
        if odd:
            o_odd[r] = 1
            continue
        o_ok[r, 1] = o_rid[r] >= 0
        o_ts[r] = np.int64(np.uint64(ft) // np.uint64(10)) - _EPOCH_US
        # beyond year 9999, this time or the record header's (the parser calls such a record
        # damaged): the JSON path decides
        if o_ts[r] > _MAX_US or np.int64(np.uint64(r_ft[r]) // np.uint64(10)) - _EPOCH_US > _MAX_US:
            o_odd[r] = 1
            continue
        o_ok[r, 2] = True
        # which items: the plan's own, or those of the embedded fragment's plan
        ipl = pl
        w = 0
        count = ocount
        if p_emb[pl] >= 0:
            ipl = r_iplan[r]
            count = r_icount[r]
            if ipl < 0 or r_iidx[r] != p_emb[pl] or not _values(b, r_isub[r], count, val, 1):
                o_odd[r] = 1
                continue
            w = 1
            h = (h ^ np.uint64(ipl + 1_000_003)) * _FNV_PRIME
            for i in range(count):
                h = (h ^ np.uint64(val[1, 2, i])) * _FNV_PRIME
        # the signature's number in this window (open addressing over `sig_table`; a hash match
        # is compared in full: the plans and every value type, kept in s_meta and s_types)
        mask = sig_table.shape[0] - 1
        j = np.int64(h & np.uint64(mask))
        icount = count if w else 0
        while True:
            slot = sig_table[j]
            if slot < 0:
                at = s_meta[nsig, 4]
                if nsig + 1 >= u_sig.shape[0] or at + ocount + icount > s_types.shape[0]:
                    odd = True
                    break
                sig_table[j] = nsig
                u_sig[nsig] = np.int64(h)
                s_meta[nsig, 0] = pl
                s_meta[nsig, 1] = ipl if w else -1
                s_meta[nsig, 2] = ocount
                s_meta[nsig, 3] = icount
                for i in range(ocount):
                    s_types[at + i] = val[0, 2, i]
                for i in range(icount):
                    s_types[at + ocount + i] = val[1, 2, i]
                s_meta[nsig + 1, 4] = at + ocount + icount
                o_sig[r] = nsig
                nsig += 1
                break
            if u_sig[slot] == np.int64(h) and s_meta[slot, 0] == pl and s_meta[slot, 1] == (ipl if w else -1):
                same = s_meta[slot, 2] == ocount and s_meta[slot, 3] == icount
                at = s_meta[slot, 4]
                for i in range(ocount if same else 0):
                    same = same and s_types[at + i] == val[0, 2, i]
                for i in range(icount if same else 0):
                    same = same and s_types[at + ocount + i] == val[1, 2, i]
                if same:
                    o_sig[r] = slot
                    break
            j = (j + 1) & mask
        if odd:
            o_odd[r] = 1
            continue
        # Values, one call site for all (so the renderer is inlined once): tasks 0-4 the text
        # fields (provider's Name, its EventSourceName when Name is empty, channel, computer,
        # sid), then the items.
        user = -1
        uname = -1
        udomain = -1
        first = nitems
        isbase = p_sbase[ipl]
        istart = p_istart[ipl]
        k = istart
        for task in range(5 + p_icount[ipl]):
            if task < 5:
                f = task - 1 if task > 0 else 0  # the text region
                if task == 1 and o_ok[r, 3]:
                    continue  # Name was given
                src = p_sys[pl, _TASK_FIELD[task]]
                vw, vcount, base, lim = 0, ocount, sbase, (f + 1) * cap
            else:
                if nitems + 1 >= i_key.shape[0]:
                    return r, first, nsig
                f = R_VALUES
                k = istart + task - 5
                src = it_src[k]
                vw, vcount, base, lim = w, count, isbase, 6 * cap
            start = sp[f]
            key = it_key[k] if task >= 5 else -1
            # a provider or user name the parser gives as a number or boolean: the JSON path's `or`
            # and isinstance tests treat such values (0, false) apart
            named = task < 2 or key == user_keys[0] or key == user_keys[1] or key == user_keys[2]
            if named and 0 <= src < vcount:
                vt = val[vw, 2, src]
                if (vt >= 0x03 and vt <= 0x0A) or vt == T_BOOL:
                    odd = True
                    break
            e = _source(b, src, base, val, vw, vcount, st_buf, st_off, text, start, lim)
            if e == FULL:
                return r, first, nsig
            if e == ODD:
                odd = True
                break
            if task < 5 and e == start:
                e = NULL  # an empty System text or attribute is null (an empty Name gives way to EventSourceName)
            if task < 5:
                o_ok[r, 3 + f] = e != NULL
                if e != NULL:
                    sp[f] = e
                continue
            if e == start and it_null[k]:
                e = NULL
            elif e == NULL and not it_null[k]:
                e = start  # a named Data without a value: "" in the parser's JSON
            i_key[nitems] = key
            v_ok[nitems] = e != NULL
            if e != NULL:
                if key == user_keys[0]:
                    user = nitems
                elif key == user_keys[1]:
                    uname = nitems
                elif key == user_keys[2]:
                    udomain = nitems
                sp[R_VALUES] = e
            nitems += 1
            v_off[nitems] = sp[R_VALUES]
        if odd:
            nitems = first
            sp[R_VALUES] = v_off[first]
            o_odd[r] = 1
            continue
        # user: User, else SubjectDomainName\SubjectUserName (leading backslashes stripped)
        o_ok[r, 7] = False
        if user >= 0 or uname >= 0:
            start = sp[R_USER]
            need = v_off[user + 1] - v_off[user] if user >= 0 else v_off[uname + 1] - v_off[uname] + 1
            if udomain >= 0:
                need += v_off[udomain + 1] - v_off[udomain]
            if start + need > 5 * cap:
                return r, first, nsig
            e = start
            if user >= 0:
                for i in range(v_off[user], v_off[user + 1]):
                    text[e] = text[i]
                    e += 1
            else:
                if udomain >= 0:
                    for i in range(v_off[udomain], v_off[udomain + 1]):
                        text[e] = text[i]
                        e += 1
                text[e] = 92
                e += 1
                for i in range(v_off[uname], v_off[uname + 1]):
                    text[e] = text[i]
                    e += 1
                lead = start
                while lead < e and text[lead] == 92:
                    lead += 1
                if lead > start:
                    for i in range(lead, e):
                        text[start + i - lead] = text[i]
                    e -= lead - start
            sp[R_USER] = e
            o_ok[r, 7] = True
    m_off[nrec] = nitems
    for f in range(5):
        t_off[f, nrec] = sp[f]
    v_off[nitems] = sp[R_VALUES]
    return nrec, nitems, nsig


# -- the reader ------------------------------------------------------------------------------


class Plans:
    """Every plan compiled in this process, as the arrays `_emit` reads; the signatures checked
    against the JSON path (`verified`) and those whose rows differed (`rejected`)."""

    def __init__(self) -> None:
        self.outer: dict[bytes, int] = {}  # normalised template -> plan id, -1 when unsupported
        self.inner: dict[tuple[bytes, int], int] = {}  # (normalised template, context) -> plan id or -1
        self.plans: list[Plan] = []
        self.key_ids: dict[str, int] = {}  # EventData/UserData key -> its number, in order met
        self.verified: set[tuple] = set()  # signatures: (plan, inner plan, value counts, types)
        self.rejected: set[tuple] = set()
        self._arrays: tuple | None = None

    def add(self, plan: Plan) -> int:
        self.plans.append(plan)
        for key, _, _ in plan.items:
            self.key_ids.setdefault(key, len(self.key_ids))
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
                statics += [t.encode("utf-8") for t in p.statics]
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
MAX_GROWTH = 8  # a window's text at most this many times its bytes (static texts repeated)
SLOTS = 4096  # distinct templates a window may hold (a log has dozens)
KEEP_BYTES = 64 << 20  # `_emit`'s text buffer is kept between windows up to this size a region
# Chunks this process read: "compiled" by this reader, "json" handed to the JSON path.
STATS: Counter[str] = Counter()


def _plan_of(plans: Plans, template, slot: int, key: bytes, context: int) -> int:
    """The plan id of a template, by its normalised bytes `key` (compiled from `template(slot)`,
    its chunk and definition offset, the first time); -1 when this reader has no plan for it."""
    table = plans.outer if context == 0 else plans.inner
    k = key if context == 0 else (key, context)
    got = table.get(k)  # type: ignore[call-overload]
    if got is None:
        try:
            got = plans.add(compile_template(parse_template(*template(slot)), context))
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


def read_window(b: np.ndarray, nchunks: int, plans: Plans = PLANS, verify=None) -> Window:
    """Rows of the chunks in `b` (`nchunks` x 64 KiB). `verify(chunk bytes, rows)` returns, for
    each record of the chunk, whether the JSON path gives the same row (None when it cannot
    tell); it is called for a chunk holding a signature seen for the first time."""
    import pyarrow as pa

    counts = np.zeros(nchunks, np.int64)
    status = np.zeros(nchunks, np.int8)
    total = _count(b, nchunks, counts, status)
    for c in np.flatnonzero(status == 0).tolist():  # the parser skips a chunk whose header checksum fails
        head = b[c * CHUNK : c * CHUNK + FIRST_RECORD].tobytes()
        if zlib.crc32(head[:120] + head[128:]) != int.from_bytes(head[124:128], "little"):
            status[c] = 1
            total -= int(counts[c])
    rec = [np.zeros(total, np.int64) for _ in range(10)]
    u_hash = np.zeros(SLOTS, np.uint64)
    u_off = np.zeros(SLOTS + 1, np.int64)
    u_norm = np.zeros(SLOTS * 1024, np.uint8)  # normalised templates (a few hundred bytes each)
    u_def = np.zeros(SLOTS, np.int64)
    u_chunk = np.zeros(SLOTS, np.int64)
    n, nu = _scan(b, nchunks, status, *rec, u_hash, u_off, u_norm, u_def, u_chunk)
    r_chunk, r_id, r_ft, r_oslot, r_osub, r_ocount, r_islot, r_isub, r_icount, r_iidx = (x[:n] for x in rec)

    # plans of the templates, compiled the first time each is seen (from the slot's own chunk)
    def template(slot: int) -> tuple[bytes, int]:
        c = int(u_chunk[slot])
        return b[c * CHUNK : (c + 1) * CHUNK].tobytes(), int(u_def[slot])

    keys = [u_norm[u_off[i] : u_off[i + 1]].tobytes() for i in range(nu)]
    outer = np.bincount(r_oslot, minlength=nu).tolist()  # slots used as an event's own template
    oplan = np.array(
        [_plan_of(plans, template, i, keys[i], 0) if outer[i] else -1 for i in range(nu)] or [-1], np.int64
    )
    r_oplan = oplan[r_oslot] if n else np.zeros(0, np.int64)
    contexts = np.array([0] + [p.context for p in plans.plans], np.int64)[r_oplan + 1]
    r_iplan = np.full(n, -1, np.int64)
    want = np.flatnonzero((r_islot >= 0) & (contexts > 0))
    if len(want):
        codes = r_islot[want] * 3 + contexts[want]
        table = np.full(nu * 3, -1, np.int64)
        for code in np.flatnonzero(np.bincount(codes, minlength=nu * 3)).tolist():
            slot, ctx = divmod(code, 3)
            table[code] = _plan_of(plans, template, slot, keys[slot], ctx)
        r_iplan[want] = table[codes]
    arrays = plans.arrays()
    # text capacity a region: the records' bytes (free space offsets, a damaged one clamped),
    # grown when a window's text is longer (static texts repeated); never beyond MAX_GROWTH times
    free = b.reshape(nchunks, CHUNK)[:, 48:52].copy().view(np.uint32).reshape(-1).astype(np.int64)
    size = max(1 << 16, int(np.clip(free, 0, CHUNK).sum()))
    while True:
        if size > MAX_GROWTH * nchunks * CHUNK:
            raise IndexError("text beyond any plausible size: the JSON path reads this window")
        out = _BUFFERS.get(n, size)
        done, nitems, nsig = _emit(b, n, r_id, r_ft, r_osub, r_ocount, r_isub, r_icount, r_iidx, r_oplan, r_iplan,
                                   *arrays, *out)  # fmt: skip
        if done == n:
            break
        size *= 4
    o_sig, o_odd = out[-2][:n], out[-1][:n]
    s_meta, s_types = out[4], out[5]
    sigs = [  # each signature exactly: its plans and the types of its values
        (*s_meta[k, :4].tolist(), s_types[s_meta[k, 4] : s_meta[k + 1, 4]].tobytes()) for k in range(nsig)
    ]
    bad = status.astype(bool)
    bad[r_chunk[o_odd == 1]] = True
    columns = _columns(pa, plans, n, out, nitems)
    # signatures not seen before: checked on the first chunk each appears in (a chunk the JSON
    # path reads otherwise, `verify` None, is not tried again for the next signature)
    tried: set[int] = set()
    for k, sig in enumerate(sigs):
        if sig in plans.verified or sig in plans.rejected or verify is None:
            continue
        there_chunks = [c for c in dict.fromkeys(r_chunk[(o_sig == k) & (o_odd == 0)].tolist()) if not bad[c]]
        c = next((c for c in there_chunks if c not in tried), -1)
        if c < 0:
            continue
        tried.add(c)
        rows = np.flatnonzero(r_chunk == c)
        same = verify(b[c * CHUNK : (c + 1) * CHUNK].tobytes(), {name: v.slice(int(rows[0]), len(rows))
                      for name, v in columns.items()})  # fmt: skip
        if same is None:
            continue
        there = [sigs[j] for j in o_sig[rows].tolist()]
        for s, ok in zip(there, same, strict=True):
            if not ok:
                plans.rejected.add(s)
        plans.verified.update(s for s in there if s not in plans.rejected)
    trusted = np.array([s in plans.verified for s in sigs] or [False], bool)
    bad[r_chunk[~trusted[o_sig] & (o_odd == 0)]] = True
    keep = ~bad[r_chunk]
    STATS["json"] += int(bad.sum())
    STATS["compiled"] += nchunks - int(bad.sum())
    # each record's index in its chunk (r_chunk ascends; a chunk `_scan` dropped has no records here)
    index = np.arange(n) - np.searchsorted(r_chunk, r_chunk)
    if not keep.all():
        mask = pa.array(keep)
        columns = {name: v.filter(mask) for name, v in columns.items()}
    if _BUFFERS.size > KEEP_BYTES:  # a window of huge texts: its buffers are not kept
        _BUFFERS.__init__()
    return Window(counts, bad, r_chunk[keep], index[keep], columns)


class _Buffers:
    """`_emit`'s output arrays, kept between windows (fresh ones cost a page fault per 4 KiB
    written) and grown when a window needs more."""

    def __init__(self) -> None:
        self.n = -1
        self.size = -1
        self.arrays: tuple = ()

    def get(self, n: int, size: int) -> tuple:
        if n > self.n or size > self.size:
            self.n, self.size = max(n, self.n), max(size, self.size)
            n, size = self.n, self.size
            items = max(16, size // 4)
            self.arrays = (
                np.zeros((2, 3, 4096), np.int64), np.zeros(6, np.int64),  # val, sp
                # sig_table twice the size of u_sig: the open addressing always finds a free slot
                np.zeros(16384, np.int64), np.zeros(8192, np.int64),  # sig_table, u_sig
                np.zeros((8192, 5), np.int64), np.zeros(1 << 20, np.uint8),  # s_meta, s_types
                np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros((n, 8), np.bool_),
                np.zeros(6 * size, np.uint8), np.zeros((5, n + 1), np.int64), np.zeros(items, np.int32),
                np.zeros(items + 1, np.int64), np.zeros(items, np.bool_),
                np.zeros(n + 1, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int8),
            )  # fmt: skip
        return self.arrays


_BUFFERS = _Buffers()


def _columns(pa, plans: Plans, n: int, out: tuple, nitems: int) -> dict:
    """Arrow arrays of the rows `_emit` wrote (odd records included; the caller filters). Each
    owns its memory: `_emit`'s buffers are written again by the next window while these rows may
    still wait to be stored."""
    _, _, _, _, _, _, o_eid, o_rid, o_ts, o_ok, buf, t_off, i_key, v_off, v_ok, m_off, _, _ = out

    def strings(offsets: np.ndarray, valid: np.ndarray) -> pa.Array:
        start = int(offsets[0])
        data = buf[start : int(offsets[-1])].copy()
        return pa.StringArray.from_buffers(
            len(offsets) - 1, pa.py_buffer((offsets - start).astype(np.int32)), pa.py_buffer(data), _validity(pa, valid)
        )

    def text(f: int, valid: np.ndarray) -> pa.Array:
        return strings(t_off[f, : n + 1], valid)

    values = strings(v_off[: nitems + 1], v_ok[:nitems])
    keys = pa.array(list(plans.key_ids) or [""], pa.string()).take(pa.array(i_key[:nitems]))
    data = pa.MapArray.from_arrays(pa.array(m_off[: n + 1].astype(np.int32)), keys, values)
    return {
        "ts": pa.array(o_ts[:n].astype("datetime64[us]"), pa.timestamp("us"), mask=~o_ok[:n, 2]),
        "channel": text(1, o_ok[:n, 4]),
        "provider": text(0, o_ok[:n, 3]),
        "event_id": pa.array(o_eid[:n].astype(np.int32), pa.int32(), mask=~o_ok[:n, 0]),
        "computer": text(2, o_ok[:n, 5]),
        "record_id": pa.array(o_rid[:n].copy(), pa.int64(), mask=~o_ok[:n, 1]),  # a copy: the buffers are reused
        "sid": text(3, o_ok[:n, 6]),
        "user": text(4, o_ok[:n, 7]),
        "data": data,
    }


def _validity(pa, valid: np.ndarray):
    if valid.all():
        return None
    return pa.py_buffer(np.packbits(valid.astype(np.uint8), bitorder="little"))


def warm() -> None:
    """Load (or compile) the compiled functions with the argument types reading uses: a window
    of one empty chunk goes through every step. A failure is left for the real reading to meet."""
    try:
        read_window(np.frombuffer(bytes(CHUNK), np.uint8), 1, Plans())
    except Exception:  # never stop the pool from starting
        return
