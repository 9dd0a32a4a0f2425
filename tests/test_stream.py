"""Reading large logs in blocks: UTF-16 logs, exact block multiples, overlong lines."""

from __future__ import annotations

from pathlib import Path

from wormhunt.sources.stream import iter_blocks
from wormhunt.sources.text import sniff_encoding


def lines_of(path: Path, block_bytes: int) -> list[tuple[int, bytes]]:
    raw = path.read_bytes()
    out = []
    for b in iter_blocks(path, sniff_encoding(raw[:4096], complete=len(raw) <= 4096), block_bytes=block_bytes):
        out += [(b.base_line + i, bytes(b.data[s:e])) for i, (s, e) in enumerate(zip(b.starts, b.ends, strict=True))]
    return out


def test_utf16_file_of_an_exact_block_multiple_ends(tmp_path: Path) -> None:
    # 64 bytes per line in UTF-16: four lines fill exactly one 256-byte read, and the last
    # read is empty. That used to loop forever.
    line = "x" * 30 + "\r\n"
    path = tmp_path / "u16.log"
    path.write_bytes((line * 8).encode("utf-16-le"))
    got = lines_of(path, 256)
    assert [n for n, _ in got] == list(range(1, 9))
    assert all(text == b"x" * 30 + b"\r" for _, text in got)


def test_lines_longer_than_a_block_and_no_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "long.log"
    lines = [b"a" * 10, b"b" * 5000, b"c" * 10]
    path.write_bytes(b"\n".join(lines))
    assert lines_of(path, 1024) == [(1, lines[0]), (2, lines[1]), (3, lines[2])]


def test_an_endless_line_is_cut_into_pieces_that_keep_its_number(tmp_path: Path, monkeypatch) -> None:
    from wormhunt.sources import stream

    monkeypatch.setattr(stream, "MAX_LINE_BYTES", 4096)
    path = tmp_path / "nul.log"
    path.write_bytes(b"first\n" + b"\x00" * 20000 + b"\nlast\n")
    got = lines_of(path, 1024)
    assert got[0] == (1, b"first") and got[-1] == (3, b"last")
    middle = got[1:-1]
    assert len(middle) > 1 and {n for n, _ in middle} == {2}
    assert sum(len(t) for _, t in middle) == 20000
