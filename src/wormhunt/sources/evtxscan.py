"""Compiled scanner for the `evtx` parser's JSON records.

The Rust parser hands each record over as pretty-printed JSON (about 1.5 KB). Decoding that
into Python objects and walking them cost about twice the parse itself; this kernel walks
the bytes of a whole batch of records instead and records where the events row's values
are, so the columns are built without a Python object per value.

It reads only the shapes the parser writes for ordinary events: `Event.System` with its
usual members, `EventData` as named values, or `UserData` with one child element. A record
with anything else (unnamed `<Data>` lists, values that are arrays or objects without
`#text`, fractional numbers, invalid escapes, a member of an unexpected type) is marked
irregular and left to the Python path in `sources/evtx.py`, which defines the semantics.

Every loop checks its bound: compiled code has no IndexError to fall back on.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit

# Fixed fields of a record, rows of the span arrays.
PROVIDER, SYSTEM_TIME, CHANNEL, COMPUTER, SID, USER, SUBJECT_NAME, SUBJECT_DOMAIN = range(8)
FIELDS = 8

# Value kinds.
_NULL, _STRING, _NUMBER, _LITERAL, _OBJECT, _ARRAY, _BAD = range(7)

QUOTE, BACKSLASH, COLON, COMMA, LBRACE, RBRACE, LBRACKET, RBRACKET = 34, 92, 58, 44, 123, 125, 91, 93


def _key(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), np.uint8).copy()


K_EVENT, K_SYSTEM, K_EVENTDATA, K_USERDATA = _key("Event"), _key("System"), _key("EventData"), _key("UserData")
K_PROVIDER, K_EVENTID, K_TIMECREATED = _key("Provider"), _key("EventID"), _key("TimeCreated")
K_RECORDID, K_CHANNEL = _key("EventRecordID"), _key("Channel")
K_COMPUTER, K_SECURITY = _key("Computer"), _key("Security")
K_ATTRS, K_TEXT, K_NAME, K_SOURCENAME = _key("#attributes"), _key("#text"), _key("Name"), _key("EventSourceName")
K_SYSTEMTIME, K_USERID, K_DATA, K_USER = _key("SystemTime"), _key("UserID"), _key("Data"), _key("User")
K_SUBJECT_NAME, K_SUBJECT_DOMAIN = _key("SubjectUserName"), _key("SubjectDomainName")
K_NONE = np.zeros(0, np.uint8)


@njit(cache=True, nogil=True, inline="always")
def _ws(d, p, e):  # pragma: no cover - compiled
    while p < e and (d[p] == 32 or d[p] == 10 or d[p] == 13 or d[p] == 9):
        p += 1
    return p


@njit(cache=True, nogil=True, inline="always")
def _is(d, s, ln, lit):  # pragma: no cover - compiled
    if ln != len(lit):
        return False
    for t in range(ln):  # noqa: SIM110 - compiled code: a plain loop
        if d[s + t] != lit[t]:
            return False
    return True


@njit(cache=True, nogil=True)
def _hex4(d, p, e):  # pragma: no cover - compiled
    if p + 4 > e:
        return -1
    v = 0
    for t in range(4):
        c = d[p + t]
        if 48 <= c <= 57:
            v = v * 16 + c - 48
        elif 97 <= c <= 102:
            v = v * 16 + c - 87
        elif 65 <= c <= 70:
            v = v * 16 + c - 55
        else:
            return -1
    return v


@njit(cache=True, nogil=True)
def _escape(d, p, e):  # pragma: no cover - compiled
    """The escape sequence at d[p] (a backslash): (code point, index past it), or (-1, -1) when
    invalid (a lone surrogate too: it has no UTF-8 form)."""
    if p + 1 >= e:
        return -1, -1
    c = d[p + 1]
    if c == 117:  # \uXXXX, a surrogate pair as two
        cp = _hex4(d, p + 2, e)
        if cp < 0 or 0xDC00 <= cp < 0xE000:
            return -1, -1
        if cp < 0xD800 or cp >= 0xDC00:
            return cp, p + 6
        if p + 12 > e or d[p + 6] != BACKSLASH or d[p + 7] != 117:
            return -1, -1
        lo = _hex4(d, p + 8, e)
        if lo < 0xDC00 or lo >= 0xE000:
            return -1, -1
        return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00), p + 12
    if c == 110:
        return 10, p + 2
    if c == 116:
        return 9, p + 2
    if c == 114:
        return 13, p + 2
    if c == 98:
        return 8, p + 2
    if c == 102:
        return 12, p + 2
    if c in (QUOTE, BACKSLASH) or c == 47:
        return c, p + 2
    return -1, -1


@njit(cache=True, nogil=True, inline="always")
def _utf8_len(cp):  # pragma: no cover - compiled
    return 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4


@njit(cache=True, nogil=True)
def _unescaped_len(d, s, ln):  # pragma: no cover - compiled
    """Length in UTF-8 of the JSON string body d[s:s+ln] unescaped, or -1 if an escape is invalid."""
    p = s
    e = s + ln
    n = 0
    while p < e:
        if d[p] != BACKSLASH:
            n += 1
            p += 1
            continue
        cp, p = _escape(d, p, e)
        if cp < 0:
            return -1
        n += _utf8_len(cp)
    return n


@njit(cache=True, nogil=True)
def _unescape(d, s, ln, out, o):  # pragma: no cover - compiled
    """The JSON string body d[s:s+ln] unescaped into out[o:] (its escapes already checked)."""
    p = s
    e = s + ln
    while p < e:
        c = d[p]
        if c != BACKSLASH:
            out[o] = c
            o += 1
            p += 1
            continue
        cp, p = _escape(d, p, e)
        if cp < 0x80:
            out[o] = cp
        elif cp < 0x800:
            out[o] = 0xC0 | (cp >> 6)
            out[o + 1] = 0x80 | (cp & 0x3F)
        elif cp < 0x10000:
            out[o] = 0xE0 | (cp >> 12)
            out[o + 1] = 0x80 | ((cp >> 6) & 0x3F)
            out[o + 2] = 0x80 | (cp & 0x3F)
        else:
            out[o] = 0xF0 | (cp >> 18)
            out[o + 1] = 0x80 | ((cp >> 12) & 0x3F)
            out[o + 2] = 0x80 | ((cp >> 6) & 0x3F)
            out[o + 3] = 0x80 | (cp & 0x3F)
        o += _utf8_len(cp)
    return o


@njit(cache=True, nogil=True, inline="always")
def _string(d, p, e):  # pragma: no cover - compiled
    """p at an opening quote: (index past the closing quote or -1, body has escapes)."""
    p += 1
    esc = False
    while p < e:
        c = d[p]
        if c == QUOTE:
            return p + 1, esc
        if c == BACKSLASH:
            esc = True
            p += 2
            continue
        if c < 32:
            return -1, esc
        p += 1
    return -1, esc


@njit(cache=True, nogil=True)
def _value(d, p, e):  # pragma: no cover - compiled
    """p at a value: (kind, index past it or -1, a string with escapes). Nested values are skipped by bracket depth
    (the parser's JSON is well formed; strings are stepped over whole)."""
    if p >= e:
        return _BAD, -1, False
    c = d[p]
    if c == QUOTE:
        q, esc = _string(d, p, e)
        return _STRING, q, esc
    if c in (LBRACE, LBRACKET):
        kind = _OBJECT if c == LBRACE else _ARRAY
        depth = 0
        while p < e:
            c = d[p]
            if c == QUOTE:
                p, _ = _string(d, p, e)
                if p < 0:
                    return _BAD, -1, False
                continue
            if c in (LBRACE, LBRACKET):
                depth += 1
            elif c in (RBRACE, RBRACKET):
                depth -= 1
                if depth == 0:
                    return kind, p + 1, False
            p += 1
        return _BAD, -1, False
    q = p
    while q < e and (d[q] == 45 or d[q] == 43 or d[q] == 46 or 48 <= d[q] <= 57 or d[q] == 101 or d[q] == 69):
        q += 1
    if q > p:
        return _NUMBER, q, False
    if p + 4 <= e and d[p] == 110 and d[p + 1] == 117 and d[p + 2] == 108 and d[p + 3] == 108:
        return _NULL, p + 4, False
    if p + 4 <= e and d[p] == 116 and d[p + 1] == 114 and d[p + 2] == 117 and d[p + 3] == 101:
        return _LITERAL, p + 4, False
    if p + 5 <= e and d[p] == 102 and d[p + 1] == 97 and d[p + 2] == 108 and d[p + 3] == 115 and d[p + 4] == 101:
        return _LITERAL, p + 5, False
    return _BAD, -1, False


@njit(cache=True, nogil=True)
def _integer(d, s, q):  # pragma: no cover - compiled
    """A JSON number d[s:q] as a non-negative integer of up to 18 digits, else -1."""
    if q - s < 1 or q - s > 18:
        return -1
    v = 0
    for t in range(s, q):
        c = d[t]
        if c < 48 or c > 57:
            return -1
        v = v * 10 + c - 48
    return v


@njit(cache=True, nogil=True)
def _member(d, p, e):  # pragma: no cover - compiled
    """p at a member's key (after `{` or `,` and spaces): (key start, key end, key escaped,
    value position) or value position -1 when malformed."""
    if p >= e or d[p] != QUOTE:
        return 0, 0, False, -1
    q, esc = _string(d, p, e)
    if q < 0:
        return 0, 0, False, -1
    v = _ws(d, q, e)
    if v >= e or d[v] != COLON:
        return 0, 0, False, -1
    return p + 1, q - 1, esc, _ws(d, v + 1, e)


@njit(cache=True, nogil=True)
def _next(d, p, e):  # pragma: no cover - compiled
    """After a member's value: (position of the next key or -1 at the object's end, index past
    the object); (-2, -1) when malformed."""
    p = _ws(d, p, e)
    if p < e and d[p] == COMMA:
        return _ws(d, p + 1, e), 0
    if p < e and d[p] == RBRACE:
        return -1, p + 1
    return -2, -1


@njit(cache=True, nogil=True)
def _open(d, p, e):  # pragma: no cover - compiled
    """p at `{`: (first key position, or -1 for an empty object; index past it when empty);
    (-2, -1) when not an object."""
    if p >= e or d[p] != LBRACE:
        return -2, -1
    p = _ws(d, p + 1, e)
    if p < e and d[p] == RBRACE:
        return -1, p + 1
    return p, 0


@njit(cache=True, nogil=True)
def _set(fs, fl, fu, f, i, d, s, q, esc):  # pragma: no cover - compiled
    """Field f of record i: the string body d[s:q] (esc: unescape when gathered). False when
    its escapes are invalid."""
    fs[f, i] = s
    fl[f, i] = q - s
    fu[f, i] = q - s
    if esc:
        fu[f, i] = _unescaped_len(d, s, q - s)
        return fu[f, i] >= 0
    return True


@njit(cache=True, nogil=True)
def _attr_string(d, p, e, lit1, lit2):  # pragma: no cover - compiled
    """p at an element object (`{"#attributes": {...}, ...}`): spans of the string attributes
    lit1 and lit2 as (ok, s1, q1, esc1, s2, q2, esc2, end); s = -1 when absent or null."""
    s1, q1, e1, s2, q2, e2 = -1, -1, False, -1, -1, False
    k, end = _open(d, p, e)
    if k == -2:
        return False, s1, q1, e1, s2, q2, e2, -1
    while k >= 0:
        ks, ke, _kesc, v = _member(d, k, e)
        if v < 0:
            return False, s1, q1, e1, s2, q2, e2, -1
        if _is(d, ks, ke - ks, K_ATTRS):
            a, aend = _open(d, v, e)
            if a == -2:
                kind, v2, _ = _value(d, v, e)
                if kind != _NULL:
                    return False, s1, q1, e1, s2, q2, e2, -1
                v = v2
            else:
                while a >= 0:
                    aks, ake, _akesc, av = _member(d, a, e)
                    if av < 0:
                        return False, s1, q1, e1, s2, q2, e2, -1
                    kind, aq, sesc = _value(d, av, e)
                    if aq < 0:
                        return False, s1, q1, e1, s2, q2, e2, -1
                    one = _is(d, aks, ake - aks, lit1)
                    two = len(lit2) > 0 and _is(d, aks, ake - aks, lit2)
                    if one or two:
                        if kind == _STRING:
                            if one:
                                s1, q1, e1 = av + 1, aq - 1, sesc
                            else:
                                s2, q2, e2 = av + 1, aq - 1, sesc
                        elif kind != _NULL:
                            return False, s1, q1, e1, s2, q2, e2, -1
                    a, aend = _next(d, aq, e)
                    if a == -2:
                        return False, s1, q1, e1, s2, q2, e2, -1
                v = aend
        else:
            kind, v, _ = _value(d, v, e)
            if v < 0:
                return False, s1, q1, e1, s2, q2, e2, -1
        k, end = _next(d, v, e)
        if k == -2:
            return False, s1, q1, e1, s2, q2, e2, -1
    return True, s1, q1, e1, s2, q2, e2, end


@njit(cache=True, nogil=True)
def _scalar_text(d, v, e):  # pragma: no cover - compiled
    """p at an element object with attributes: (kind, start, end, escaped) of its `#text`
    when that is a scalar; kind _BAD when it has none or another shape (the Python path then
    writes the object as JSON), and end -1 when malformed."""
    kind, vs, vq, esc = _BAD, -1, -1, False
    t, tend = _open(d, v, e)
    while t >= 0:
        tks, tke, _tkesc, tv = _member(d, t, e)
        if tv < 0:
            return _BAD, 0, -1, False
        tkind, tq, tesc = _value(d, tv, e)
        if tq < 0:
            return _BAD, 0, -1, False
        if _is(d, tks, tke - tks, K_TEXT):
            if tkind in (_OBJECT, _ARRAY, _BAD):
                return _BAD, 0, tend, False
            kind, vs, vq, esc = tkind, tv, tq, tesc
        t, tend = _next(d, tq, e)
        if t == -2:
            return _BAD, 0, -1, False
    return kind, vs, vq, esc


@njit(cache=True, nogil=True)
def _entries(d, p, e, m, es, el, eu, i, fs, fl, fu, event_data):  # pragma: no cover - compiled
    """The members of the object at p as map entries from es[:, m] on (`#attributes` left
    out); records User / SubjectUserName / SubjectDomainName for the user column. Returns
    (next entry index, index past the object); entry index -1 when a value needs the Python
    path."""
    k, end = _open(d, p, e)
    if k == -2:
        return -1, -1
    while k >= 0:
        ks, ke, kesc, v = _member(d, k, e)
        if v < 0:
            return -1, -1
        kind, q, esc = _value(d, v, e)
        if q < 0 or kind in (_BAD, _ARRAY):
            return -1, -1
        if not _is(d, ks, ke - ks, K_ATTRS):
            if event_data and kind == _OBJECT and _is(d, ks, ke - ks, K_DATA):
                return -1, -1  # an unnamed <Data> list's shape: the Python path's Data1, Data2 ...
            if m >= es.shape[1]:
                return -1, -1
            es[0, m] = ks
            el[0, m] = ke - ks
            eu[0, m] = ke - ks
            if kesc:
                eu[0, m] = _unescaped_len(d, ks, ke - ks)
                if eu[0, m] < 0:
                    return -1, -1
            raw = kind
            vs = v
            vq = q
            if kind == _OBJECT:  # an element with attributes: its #text, when that is a scalar
                kind, vs, vq, esc = _scalar_text(d, v, e)
                if kind == _BAD:
                    return -1, -1
            if kind == _NUMBER and _integer(d, vs + (1 if d[vs] == 45 else 0), vq) < 0:
                return -1, -1  # fractions and exponents: Python's str() of a float differs
            if kind == _NULL:
                es[1, m] = 0
                el[1, m] = -1
                eu[1, m] = -1
            elif kind == _STRING:
                es[1, m] = vs + 1
                el[1, m] = vq - vs - 2
                eu[1, m] = vq - vs - 2
                if esc:
                    eu[1, m] = _unescaped_len(d, vs + 1, vq - vs - 2)
                    if eu[1, m] < 0:
                        return -1, -1
            else:  # a number or true/false: its JSON text is Python's str() of it
                es[1, m] = vs
                el[1, m] = vq - vs
                eu[1, m] = vq - vs
            kl = ke - ks
            if raw == _STRING and kl == 4 and _is(d, ks, kl, K_USER):  # as decoded, not #text
                fs[USER, i], fl[USER, i], fu[USER, i] = es[1, m], el[1, m], eu[1, m]
            elif kl >= 15 and d[ks] == 83:  # SubjectUserName, SubjectDomainName
                if raw == _STRING and _is(d, ks, kl, K_SUBJECT_NAME):
                    fs[SUBJECT_NAME, i], fl[SUBJECT_NAME, i], fu[SUBJECT_NAME, i] = es[1, m], el[1, m], eu[1, m]
                elif _is(d, ks, kl, K_SUBJECT_DOMAIN):
                    if raw != _STRING and raw != _NULL:
                        return -1, -1
                    fs[SUBJECT_DOMAIN, i], fl[SUBJECT_DOMAIN, i], fu[SUBJECT_DOMAIN, i] = es[1, m], el[1, m], eu[1, m]
            m += 1
        k, end = _next(d, q, e)
        if k == -2:
            return -1, -1
    return m, end


@njit(cache=True, nogil=True)
def _event(d, p, e, i, fs, fl, fu, ints, m, es, el, eu):  # pragma: no cover - compiled
    """The `Event` object at p: (next entry index, index past it); -1 for the Python path."""
    k, end = _open(d, p, e)
    if k == -2:
        return -1, -1
    system = False
    entries = False
    user_at = -1
    while k >= 0:
        ks, ke, _kesc, v = _member(d, k, e)
        if v < 0:
            return -1, -1
        ln = ke - ks
        if _is(d, ks, ln, K_SYSTEM):
            q = _system(d, v, e, i, fs, fl, fu, ints)
            if q < 0:
                return -1, -1
            system = True
        elif v < e and d[v] == LBRACE and _is(d, ks, ln, K_EVENTDATA):
            m, q = _entries(d, v, e, m, es, el, eu, i, fs, fl, fu, True)
            if m < 0:
                return -1, -1
            entries = True
        else:
            if v < e and d[v] == LBRACE and _is(d, ks, ln, K_USERDATA):
                user_at = v
            kind, q, _esc = _value(d, v, e)
            if q < 0 or kind == _BAD:
                return -1, -1
        k, end = _next(d, q, e)
        if k == -2:
            return -1, -1
    if not system:
        return -1, -1
    if user_at >= 0 and not entries:  # UserData: its first child element's members
        k, _uend = _open(d, user_at, e)
        while k >= 0:
            ks, ke, _kesc, v = _member(d, k, e)
            if v < 0:
                return -1, -1
            if v < e and d[v] == LBRACE:
                m, q = _entries(d, v, e, m, es, el, eu, i, fs, fl, fu, False)
                return m, end
            kind, q, _esc = _value(d, v, e)
            if q < 0:
                return -1, -1
            k, _uend = _next(d, q, e)
            if k == -2:
                return -1, -1
    return m, end


@njit(cache=True, nogil=True)
def _record(d, p, e, i, fs, fl, fu, ints, m, es, el, eu):  # pragma: no cover - compiled
    """One record's JSON: its fields into row i, its entries from m on. Returns the next entry
    index, or -1 when the record needs the Python path."""
    k, end = _open(d, _ws(d, p, e), e)
    if k == -2:
        return -1
    event = False
    while k >= 0:
        ks, ke, _kesc, v = _member(d, k, e)
        if v < 0:
            return -1
        if _is(d, ks, ke - ks, K_EVENT):
            m, q = _event(d, v, e, i, fs, fl, fu, ints, m, es, el, eu)
            if m < 0:
                return -1
            event = True
        else:
            _kind, q, _esc = _value(d, v, e)
            if q < 0:
                return -1
        k, end = _next(d, q, e)
        if k == -2:
            return -1
    return m if event and _ws(d, end, e) == e else -1  # nothing but spaces after it


@njit(cache=True, nogil=True)
def _system(d, p, e, i, fs, fl, fu, ints):  # pragma: no cover - compiled
    """`Event.System` at p into row i: index past it, or -1 when a member has a shape the
    Python path must read."""
    k, end = _open(d, p, e)
    if k == -2:
        return -1
    while k >= 0:
        ks, ke, _kesc, v = _member(d, k, e)
        if v < 0:
            return -1
        ln = ke - ks
        obj = v < e and d[v] == LBRACE
        if obj and _is(d, ks, ln, K_PROVIDER):
            ok, s1, q1, e1, s2, q2, e2, q = _attr_string(d, v, e, K_NAME, K_SOURCENAME)
            if not ok:
                return -1
            if s1 >= 0 and q1 > s1:  # Name, unless empty: then EventSourceName
                if not _set(fs, fl, fu, PROVIDER, i, d, s1, q1, e1):
                    return -1
            elif s2 >= 0 and not _set(fs, fl, fu, PROVIDER, i, d, s2, q2, e2):
                return -1
        elif obj and _is(d, ks, ln, K_TIMECREATED):
            ok, s1, q1, e1, s2, q2, e2, q = _attr_string(d, v, e, K_SYSTEMTIME, K_NONE)
            if not ok:
                return -1
            if s1 >= 0 and q1 > s1 and not _set(fs, fl, fu, SYSTEM_TIME, i, d, s1, q1, e1):
                return -1
        elif obj and _is(d, ks, ln, K_SECURITY):
            ok, s1, q1, e1, s2, q2, e2, q = _attr_string(d, v, e, K_USERID, K_NONE)
            if not ok:
                return -1
            if s1 >= 0 and not _set(fs, fl, fu, SID, i, d, s1, q1, e1):
                return -1
        elif obj and _is(d, ks, ln, K_EVENTID):  # {"#attributes": {"Qualifiers": ...}, "#text": 7045}
            kind, ts, tq, esc = _scalar_text(d, v, e)
            eid = _integer(d, ts, tq) if kind == _NUMBER else -1
            if eid < 0 or eid > 2**31 - 1:
                return -1
            ints[0, i] = eid
            kind, q, esc = _value(d, v, e)
        else:
            kind, q, esc = _value(d, v, e)
            if q < 0 or kind == _BAD:
                return -1
            if _is(d, ks, ln, K_EVENTID):
                if kind == _NUMBER:
                    eid = _integer(d, v, q)
                    if eid < 0 or eid > 2**31 - 1:
                        return -1
                    ints[0, i] = eid
                elif kind != _NULL:
                    return -1
            elif _is(d, ks, ln, K_RECORDID):
                if kind == _NUMBER:
                    rid = _integer(d, v, q)
                    if rid < 0:
                        return -1
                    ints[1, i] = rid
                elif kind != _NULL:
                    return -1
            elif _is(d, ks, ln, K_CHANNEL) or _is(d, ks, ln, K_COMPUTER):
                f = CHANNEL if _is(d, ks, ln, K_CHANNEL) else COMPUTER
                if kind == _STRING:
                    if not _set(fs, fl, fu, f, i, d, v + 1, q - 1, esc):
                        return -1
                elif kind != _NULL:
                    return -1
            elif kind != _NULL and (
                _is(d, ks, ln, K_PROVIDER) or _is(d, ks, ln, K_TIMECREATED) or _is(d, ks, ln, K_SECURITY)
            ):
                return -1  # present but not an element object
        k, end = _next(d, q, e)
        if k == -2:
            return -1
    return end


@njit(cache=True, nogil=True)
def scan(d, starts, ends, fs, fl, fu, ints, es, el, eu, entry_end):  # pragma: no cover - compiled
    """Records [starts[i], ends[i]) of d. Per record: fixed-field spans (fs start, fl raw
    length or -1 for null, fu unescaped length), ints[0] event id (-2 none), ints[1] record id
    (0 none), and its map entries es/el/eu[:, entry_end[i-1]:entry_end[i]] (row 0 keys, row 1
    values). Returns the irregular records' mask (their fields are void, entries none)."""
    n = len(starts)
    irregular = np.zeros(n, np.bool_)
    m = 0
    for i in range(n):
        for f in range(FIELDS):
            fs[f, i] = 0
            fl[f, i] = -1
            fu[f, i] = -1
        ints[0, i] = -2
        ints[1, i] = 0
        got = _record(d, starts[i], ends[i], i, fs, fl, fu, ints, m, es, el, eu)
        if got < 0:
            irregular[i] = True
            for f in range(FIELDS):
                fl[f, i] = -1
                fu[f, i] = -1
        else:
            m = got
        entry_end[i] = m
    return irregular


@njit(cache=True, nogil=True)
def gather(d, starts, raw, unescaped, offs, out):  # pragma: no cover - compiled
    """Spans (raw length -1: null) copied into out at offs (Arrow string layout), unescaped
    where the unescaped length differs."""
    for j in range(len(starts)):
        ln = raw[j]
        if ln <= 0:
            continue
        s = starts[j]
        o = offs[j]
        if unescaped[j] == ln:  # every escape shortens the text: equal lengths, none there
            for t in range(ln):
                out[o + t] = d[s + t]
        else:
            _unescape(d, s, ln, out, o)


@njit(cache=True, nogil=True)
def separators(d):  # pragma: no cover - compiled
    """Positions of the NUL bytes that separate records (JSON text never holds a raw NUL), and
    the number of colons: no record has more members than that."""
    n = 0
    colons = 0
    for p in range(len(d)):
        c = d[p]
        if c == 0:
            n += 1
        elif c == COLON:
            colons += 1
    out = np.empty(n, np.int64)
    k = 0
    for p in range(len(d)):
        if d[p] == 0:
            out[k] = p
            k += 1
    return out, colons


def strings(d: np.ndarray, starts: np.ndarray, raw: np.ndarray, unescaped: np.ndarray) -> pa.Array:
    """Spans as an Arrow string array (null where raw < 0). The bytes come from Python str
    (valid UTF-8) and unescaping writes UTF-8, so no validation pass is needed."""
    lens = np.maximum(unescaped, 0)
    small = len(d) < 2**31  # unescaping never lengthens: 32-bit offsets hold the output
    offs = np.zeros(len(lens) + 1, np.int32 if small else np.int64)
    np.cumsum(lens, out=offs[1:])
    out = np.empty(int(offs[-1]), np.uint8)
    if len(lens):
        gather(d, starts, raw, unescaped, offs, out)
    valid = raw >= 0
    nulls = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    kind = pa.StringArray if small else pa.LargeStringArray
    arr = kind.from_buffers(len(lens), pa.py_buffer(offs), pa.py_buffer(out), nulls)
    return arr if small else arr.cast(pa.string())
