"""Reading a large log in bounded memory: blocks of whole lines as byte arrays.

Streaming parsers get ASCII-compatible bytes (UTF-8, GB18030, the Latin code pages pass
through untouched; UTF-16 is transcoded to UTF-8 on the fly) plus the byte offset and
physical line number each block starts at, so every record keeps its provenance.
"""

from __future__ import annotations

import codecs
import contextlib
import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wormhunt.sources.kvscan import line_ends
from wormhunt.sources.text import Encoding

BLOCK_BYTES = 64 * 1024 * 1024


@dataclass
class Block:
    data: np.ndarray  # uint8 view of the block's bytes
    starts: np.ndarray  # int64 start of each line within data
    ends: np.ndarray  # int64 end of each line (exclusive, before the newline)
    base_offset: int  # file offset of data[0]; -1 when the file was transcoded
    base_line: int  # physical line number of the first line (1-based)

    def __len__(self) -> int:
        return len(self.starts)


def _block(data: np.ndarray, base_offset: int, base_line: int) -> Block:
    ends = line_ends(data)
    if len(ends) == 0 or ends[-1] != len(data) - 1:
        ends = np.append(ends, len(data))  # last line without a newline
    starts = np.empty(len(ends), np.int64)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    return Block(data, starts, ends, base_offset, base_line)


def iter_blocks(
    path: Path,
    encoding: Encoding,
    block_bytes: int = BLOCK_BYTES,
    tap: Callable[[memoryview | bytes], None] | None = None,
) -> Iterator[Block]:
    """Yield blocks of complete lines. `tap` sees every raw byte of the file once (for hashing)."""
    if encoding.name.startswith("utf-16"):
        yield from _transcoded_blocks(path, encoding, block_bytes, tap)
        return
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        if hasattr(mm, "madvise"):
            mm.madvise(mmap.MADV_SEQUENTIAL)
        view = memoryview(mm)
        if tap is not None and encoding.bom:
            tap(view[: encoding.bom])
        pos, line = encoding.bom, 1
        while pos < size:
            hi = min(size, pos + block_bytes)
            if hi < size:
                nl = mm.rfind(b"\n", pos, hi)
                if nl < 0:  # one line longer than a block: extend to its end
                    nl = mm.find(b"\n", hi)
                    nl = size - 1 if nl < 0 else nl
                hi = nl + 1
            if tap is not None:
                tap(view[pos:hi])
            block = _block(np.frombuffer(view[pos:hi], np.uint8), pos, line)
            yield block
            line += len(block)
            del block
            if hasattr(mm, "madvise"):
                # Drop the pages just parsed from this process (they stay in the page cache):
                # resident memory stays at about one block whatever the file size.
                start = pos - pos % mmap.PAGESIZE
                mm.madvise(mmap.MADV_DONTNEED, start, hi - start)
            pos = hi
    finally:
        del view
        # A caller may still hold a view of the last block; the map then closes when it is freed.
        with contextlib.suppress(BufferError):
            mm.close()


def _transcoded_blocks(
    path: Path, encoding: Encoding, block_bytes: int, tap: Callable[[memoryview | bytes], None] | None
) -> Iterator[Block]:
    """UTF-16 logs (saved by PowerShell) re-encoded to UTF-8 as they are read; offsets are lost."""
    decoder = codecs.getincrementaldecoder(encoding.name)("replace")
    carry = b""
    line = 1
    with open(path, "rb") as fh:
        first = True
        while True:
            raw = fh.read(block_bytes)
            if tap is not None and raw:
                tap(raw)
            final = len(raw) < block_bytes
            if first:
                raw, first = raw[encoding.bom :], False
            buf = carry + decoder.decode(raw, final=final).encode("utf-8", "surrogatepass")
            cut = len(buf) if final else buf.rfind(b"\n") + 1
            if cut <= 0:
                carry = buf
                continue
            body, carry = buf[:cut], buf[cut:]
            if body:
                block = _block(np.frombuffer(body, np.uint8), -1, line)
                yield block
                line += len(block)
            if final:
                return
