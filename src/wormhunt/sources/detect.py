"""Which format is this file? Decided from its content: encoding first, then each
registered format scores the decoded head, and the best score above the bar wins."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from wormhunt.sources import FORMATS
from wormhunt.sources.base import Format
from wormhunt.sources.text import SNIFF_BYTES, Encoding, sniff_encoding

MIN_SCORE = 0.5
SURE = 0.9
SHORT_HEAD = 8192


@dataclass(frozen=True)
class Detection:
    format: Format | None
    encoding: Encoding
    score: float
    reason: str = ""  # why nothing matched


_CONTROL = bytes([*range(1, 9), *range(14, 32)])


def _binary(head: bytes, encoding: Encoding) -> bool:
    if encoding.name.startswith("utf-16"):
        return False
    sample = head[:8192]
    if not sample:
        return False
    # Hillstone ends each syslog payload with a NUL byte: a few NULs are not binary.
    nul = sample.count(0)
    control = len(sample) - len(sample.translate(None, _CONTROL))
    return nul > 0.02 * len(sample) or control > 0.05 * len(sample)


def _shape(text: str) -> str:
    """The first non-blank line with its digits masked: what files of one artifact share."""
    for line in text.split("\n", 8):
        if line.strip():
            return _DIGITS.sub("0", line[:200])
    return ""


_DIGITS = re.compile(r"[0-9]+")


class Memo:
    """Detection results remembered across the files of one run, keyed by file name, encoding
    and first-line shape: a thousand bundles hold a thousand `netstat.txt` files that all start
    alike, and scoring thirty sniffers on each costs more than parsing it. A remembered format
    must still score as sure on the new file, or every sniffer runs as usual."""

    def __init__(self) -> None:
        self.formats: dict[tuple[str, str, str], str] = {}
        self.hits = 0


def detect_head(head: bytes, complete: bool, name: str = "", memo: Memo | None = None) -> Detection:
    """Detect from the first bytes of a file (`complete`: these are all of it; `name` and
    `memo`: see `Memo`)."""
    for fmt in FORMATS.values():
        if fmt.sniff_bytes is not None and (score := fmt.sniff_bytes(head)) >= MIN_SCORE:
            return Detection(fmt, Encoding("binary"), score)
    encoding = sniff_encoding(head, complete=complete)
    if not head.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        return Detection(None, encoding, 0.0, "empty")
    if _binary(head, encoding):
        return Detection(None, encoding, 0.0, "binary (not text)")
    text = head[encoding.bom :].decode(encoding.name, errors="replace")
    # Every format shows itself within its first lines: score a short head first (thirty
    # sniffers over 64 KB each cost more than parsing a small host file), the whole one if
    # nothing is sure enough.
    short = text[:SHORT_HEAD]
    key = (name, encoding.name, _shape(short))
    if memo is not None and (known := memo.formats.get(key)) is not None:
        fmt = FORMATS[known]
        if (score := fmt.sniff(short)) >= SURE:
            memo.hits += 1
            return Detection(fmt, encoding, score)
    scored = sorted(((f.sniff(short), f.name) for f in FORMATS.values()), reverse=True)
    if scored[0][0] < SURE and len(text) > len(short):
        scored = sorted(((f.sniff(text), f.name) for f in FORMATS.values()), reverse=True)
    score, best = scored[0]
    if score < MIN_SCORE:
        return Detection(None, encoding, score, "unrecognized text format")
    if memo is not None and score >= SURE:
        memo.formats[key] = best
    return Detection(FORMATS[best], encoding, score)


def detect_file(path: Path, memo: Memo | None = None) -> Detection:
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES + 1)
    complete = len(head) <= SNIFF_BYTES
    return detect_head(head[:SNIFF_BYTES], complete, path.name.lower(), memo)
