"""Shared test fixtures. Tests that read ../shared/data skip cleanly when it is absent."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("WORMHUNT_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not present at {SHARED_DATA}")
    return SHARED_DATA


def encodings(text: str) -> dict[str, bytes]:
    """The same console output as each Windows producer would leave it on disk."""
    crlf = text.replace("\n", "\r\n")
    out = {
        "utf-8": crlf.encode("utf-8"),
        "utf-8-bom": b"\xef\xbb\xbf" + crlf.encode("utf-8"),
        "utf-16le-bom": b"\xff\xfe" + crlf.encode("utf-16-le"),
        "utf-16le-nobom": crlf.encode("utf-16-le"),
        "crcrlf": text.replace("\n", "\r\r\n").encode("utf-8"),
    }
    with contextlib.suppress(UnicodeEncodeError):
        out["gbk"] = crlf.encode("gbk")
    with contextlib.suppress(UnicodeEncodeError):
        out["cp437"] = crlf.encode("cp437")
    return out


def assert_same_in_every_encoding(parse_text, text: str, kind: str, format_name: str) -> None:
    """Every on-disk encoding of `text` is detected as `format_name` and parses to the same
    rows and the same skipped lines as the text itself."""
    from wormhunt.sources.base import MemorySink
    from wormhunt.sources.detect import detect_head
    from wormhunt.sources.text import decode

    def run(t: str) -> MemorySink:
        sink = MemorySink()
        parse_text(t, sink)
        return sink

    expected = run(text)
    assert expected.of(kind)
    variants = encodings(text)
    assert {"utf-8", "utf-8-bom", "utf-16le-bom", "utf-16le-nobom", "crcrlf"} <= set(variants)
    assert ("gbk" in variants) and (("cp437" in variants) or not text.isascii())
    for enc, data in variants.items():
        found = detect_head(data, complete=True)
        assert found.format is not None and found.format.name == format_name, (enc, found)
        sink = run(decode(data).text)
        assert sink.of(kind) == expected.of(kind), enc
        assert sink.skip_counts == expected.skip_counts, enc
