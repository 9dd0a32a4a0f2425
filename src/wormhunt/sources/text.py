"""The one decoder: bytes of evidence -> text lines, whatever the Windows host wrote.

Evidence arrives as GBK from Chinese console tools, UTF-16LE from PowerShell 5.1 and wmic
(with or without BOM), UTF-8 from appliances, `\\r\\r\\n` from piped wmic, and console
copies padded to the window width (formats.md section 0). Everything that reads text goes
through `decode()` and `iter_lines()` so those quirks are handled in one place.
"""

from __future__ import annotations

import codecs
import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

# Probe size for encoding sniffing; large enough to see past a long ASCII header.
SNIFF_BYTES = 64 * 1024

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


@dataclass(frozen=True)
class Encoding:
    """How a file's bytes were decoded."""

    name: str  # codec name used: utf-8, utf-16-le, utf-16-be, gb18030, cp1252
    bom: int = 0  # bytes of BOM skipped
    lossy: bool = False  # last-resort fallback: characters may be wrong

    @property
    def label(self) -> str:
        """Name recorded in the manifest (`utf-16-le+bom`, `gb18030`, `cp1252(lossy)` ...)."""
        base = self.name
        if self.bom:
            base += "+bom"
        return base + ("(lossy)" if self.lossy else "")


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: Encoding


def _utf16le_without_bom(head: bytes) -> bool:
    # wmic without BOM: ASCII text in UTF-16LE puts NUL in most odd positions.
    sample = head[:4096]
    if len(sample) < 4:
        return False
    odd = sample[1::2]
    return odd.count(0) >= 0.3 * len(odd) and sample[0::2].count(0) < 0.1 * len(odd)


def _strict_ok(data: bytes, codec: str, partial_tail: bool) -> bool:
    """True when `data` decodes strictly; with partial_tail a cut multibyte char at the end is fine."""
    try:
        dec = codecs.getincrementaldecoder(codec)("strict")
        dec.decode(data, final=not partial_tail)
        return True
    except UnicodeDecodeError:
        return False


def _gbk_plausible(data: bytes) -> bool:
    """Real Chinese text keeps both bytes of nearly every pair in the GB2312 range (>= 0xA1).

    A Western OEM file (CP850 `h\x93te`) can decode as GB18030 by accident; its pairs then
    have ASCII trail bytes. Require most pairs to look like GB2312 before believing GBK.
    """
    pairs = good = 0
    i, n = 0, len(data)
    while i < n - 1:
        b = data[i]
        if b < 0x80:
            i += 1
            continue
        nxt = data[i + 1]
        if 0x30 <= nxt <= 0x39:  # four-byte GB18030 sequence
            i += 4
            continue
        pairs += 1
        if b >= 0xA1 and nxt >= 0xA1:
            good += 1
        i += 2
    return pairs == 0 or good >= 0.6 * pairs


# Letters that Western European Windows text actually contains, to choose between the
# OEM code page (console output, CP850) and the ANSI one (files saved by GUI tools, CP1252).
_LATIN_LETTERS = set("àâäáãåæçèéêëìíîïñòóôöõøùúûüýÿßÀÂÄÁÃÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÖÕØÙÚÛÜÝ\u00a0°")


def _best_latin(data: bytes) -> str:
    def score(codec: str) -> int:
        text = data.decode(codec, errors="replace")
        return sum(1 for c in text if c in _LATIN_LETTERS) - sum(1 for c in text if c == "\ufffd")

    return max(("cp850", "cp1252"), key=score)


def sniff_encoding(head: bytes, complete: bool = True) -> Encoding:
    """Choose the codec from the first bytes of a file (BOM, NUL pattern, strict UTF-8, GB18030).

    `complete` says whether `head` is the whole file; if not, a multibyte character cut at
    the end of the probe is not held against a codec.
    """
    for bom, name in _BOMS:
        if head.startswith(bom):
            return Encoding(name, bom=len(bom))
    if _utf16le_without_bom(head):
        return Encoding("utf-16-le")
    if _strict_ok(head, "utf-8", not complete):
        return Encoding("utf-8")
    # GB18030 is a superset of GBK/CP936 and does not choke on rare characters.
    if _strict_ok(head, "gb18030", not complete) and _gbk_plausible(head):
        return Encoding("gb18030")
    return Encoding(_best_latin(head), lossy=True)


def decode(data: bytes, encoding: Encoding | None = None) -> Decoded:
    """Decode a whole evidence file. Never raises; a lossy fallback is flagged, not hidden.
    `encoding`: what `sniff_encoding` already said about these bytes."""
    enc = encoding or sniff_encoding(data[:SNIFF_BYTES], complete=len(data) <= SNIFF_BYTES)
    body = data[enc.bom :]
    if enc.lossy:
        return Decoded(body.decode(enc.name, errors="replace"), enc)
    try:
        return Decoded(body.decode(enc.name), enc)
    except UnicodeDecodeError:
        pass
    if enc.name in ("utf-16-le", "utf-16-be"):
        # A truncated UTF-16 file (odd length) or a stray bad surrogate: keep what decodes.
        return Decoded(body.decode(enc.name, errors="replace"), Encoding(enc.name, enc.bom, lossy=True))
    # The probe looked fine but something later did not: walk down the ladder on the whole file.
    if enc.name == "utf-8":
        try:
            if _gbk_plausible(body[: SNIFF_BYTES * 16]):
                return Decoded(body.decode("gb18030"), Encoding("gb18030", enc.bom))
        except UnicodeDecodeError:
            pass
    latin = _best_latin(body[: SNIFF_BYTES * 16])
    return Decoded(body.decode(latin, errors="replace"), Encoding(latin, enc.bom, lossy=True))


def decode_value(raw: bytes) -> str:
    """Decode one short value (a log field) with the same ladder, without BOM/UTF-16 sniffing."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


# Echoed prompts from console copies: `C:\Users\x>netstat -ano`, `PS C:\x> tasklist /v`.
_PROMPT = re.compile(r"^\s*(?:PS\s+)?[A-Za-z]:\\[^>\r\n]{0,260}>\s*\S")


def is_prompt(line: str) -> bool:
    """True for an echoed shell prompt with a command after it."""
    return bool(_PROMPT.match(line))


def iter_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield (1-based physical line number, line) with line endings and right padding removed.

    Splits on `\\n` only, so `\\r\\r\\n` (piped wmic) and `\\r\\n` count as one line each; a lone
    `\\r` inside a line is kept as text. Trailing spaces, tabs and carriage returns are stripped.
    """
    for no, line in enumerate(text.split("\n"), 1):
        yield no, line.rstrip(" \t\r\x00\u3000")


def display_width(s: str) -> int:
    """Console cells taken by `s`: CJK and full-width characters take two (zh-CN headers)."""
    if s.isascii():
        return len(s)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


@functools.lru_cache(maxsize=1 << 16)  # sniffers ask about the same header words file after file
def normalize_label(label: str) -> str:
    """Key for header matching: case, spaces, NBSP, colons and full-width forms ignored."""
    label = unicodedata.normalize("NFKC", label)
    return re.sub(r"[\s:：]+", "", label).casefold()


class Labels:
    """One section of the bilingual header dictionary (`knowledge/headers.yaml`)."""

    def __init__(self, section: str) -> None:
        from wormhunt.knowledge import load

        entries = load("headers")[section]
        self.order: list[str] = list(entries) if isinstance(entries, dict) else []
        self._map: dict[str, str] = {}
        items = entries.items() if isinstance(entries, dict) else [(e, e) for e in entries]
        for canonical, words in items:
            for word in words if isinstance(words, list) else [words]:
                self._map[normalize_label(word)] = canonical

    def get(self, label: str) -> str | None:
        """Canonical name for a printed header/label, or None."""
        return self._map.get(normalize_label(label))

    def __contains__(self, label: str) -> bool:
        return self.get(label) is not None


def not_available(value: str | None) -> bool:
    """`N/A`, `暂缺`, `N/D` ... (and empty) mean no value."""
    if value is None:
        return True
    v = value.strip()
    return not v or v in _na_words()


def _na_words() -> frozenset[str]:
    from wormhunt.knowledge import load

    return frozenset(load("headers")["not_available"])
