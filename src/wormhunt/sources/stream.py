"""Reading a large log in bounded memory: blocks of whole lines as byte arrays.

Streaming parsers get ASCII-compatible bytes (UTF-8, GB18030, the Latin code pages pass
through untouched; UTF-16 is transcoded to UTF-8 on the fly) plus the byte offset and
physical line number each block starts at, so every record keeps its provenance.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wormhunt.sources.kvscan import line_ends
from wormhunt.sources.text import Encoding

BLOCK_BYTES = 64 * 1024 * 1024
# Longest line read whole; longer ones are passed on in pieces (the compiled scanner's
# offsets are 32-bit, and no log line is legitimately this long).
MAX_LINE_BYTES = 16 * 1024 * 1024


@dataclass
class Block:
    data: np.ndarray  # uint8 view of the block's bytes
    starts: np.ndarray  # int64 start of each line within data
    ends: np.ndarray  # int64 end of each line (exclusive, before the newline)
    base_offset: int  # file offset of data[0]; -1 when the file was transcoded
    base_line: int  # physical line number of the first line (1-based)

    def __len__(self) -> int:
        return len(self.starts)


def lines_block(data: np.ndarray, base_offset: int = -1, base_line: int = 1) -> Block:
    """Split bytes at newlines into a Block (the last line may lack its newline)."""
    ends = line_ends(data)
    if len(ends) == 0 or ends[-1] != len(data) - 1:
        ends = np.append(ends, len(data))  # last line without a newline
    starts = np.empty(len(ends), np.int64)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    return Block(data, starts, ends, base_offset, base_line)


Tap = Callable[[memoryview | bytes], Callable[[], object] | None]


def iter_blocks(
    path: Path,
    encoding: Encoding,
    block_bytes: int = BLOCK_BYTES,
    tap: Tap | None = None,
) -> Iterator[Block]:
    """Yield blocks of complete lines. `tap` sees every raw byte of the file once, in order
    (for hashing); it may return a function that waits until it is done with those bytes.

    Two buffers are read into in turn, so memory stays at two blocks whatever the file size
    and the kernel copies the bytes at memory speed (mapping the file instead costs a page
    fault per 4 KB and counts the whole file in the resident size)."""
    if encoding.name.startswith("utf-16"):
        yield from _transcoded_blocks(path, encoding, block_bytes, tap)
        return
    bufs = [bytearray(block_bytes), bytearray(block_bytes)]
    waits: list[Callable[[], object] | None] = [None, None]
    carry = b""
    offset, line, i = 0, 1, 0
    with open(path, "rb", buffering=0) as fh:
        if encoding.bom:
            head = fh.read(encoding.bom)
            if tap is not None:
                wait = tap(head)
                if wait:
                    wait()
            offset = encoding.bom
        eof = False
        while not eof or carry:
            if waits[i] is not None:
                waits[i]()  # the tap is done with this buffer's previous contents
                waits[i] = None
            buf = bufs[i]
            if len(carry) >= len(buf) // 2:  # one line longer than a block: grow
                buf = bufs[i] = bytearray(2 * len(buf) + len(carry))
            view = memoryview(buf)
            view[: len(carry)] = carry
            filled = len(carry)
            start = filled
            while filled < len(buf) and not eof:
                got = fh.readinto(view[filled:])
                eof = got == 0
                filled += got
            if tap is not None and filled > start:
                waits[i] = tap(view[start:filled])
            cut = filled if eof else buf.rfind(b"\n", 0, filled) + 1
            piece = False
            if cut == 0:  # no newline in a whole buffer
                if filled < MAX_LINE_BYTES:
                    carry = bytes(view[:filled])  # keep reading the same line
                    i ^= 1
                    continue
                # A "line" this long is junk (a crash's NUL tail, a binary blob): hand it over in
                # pieces that keep its line number, so memory stays bounded and the parser counts it.
                cut, piece = filled, True
            block = lines_block(np.frombuffer(view[:cut], np.uint8), offset, line)
            carry = bytes(view[cut:filled])
            yield block
            line += len(block) - piece
            offset += cut
            del block
            i ^= 1
            if eof and not carry:
                break
    for wait in waits:
        if wait is not None:
            wait()


def _transcoded_blocks(path: Path, encoding: Encoding, block_bytes: int, tap: Tap | None) -> Iterator[Block]:
    """UTF-16 logs (saved by PowerShell) re-encoded to UTF-8 as they are read; offsets are lost."""
    decoder = codecs.getincrementaldecoder(encoding.name)("replace")
    carry = b""
    line = 1
    with open(path, "rb") as fh:
        first = True
        while True:
            raw = fh.read(block_bytes)
            if tap is not None and raw:
                tap(raw)  # a fresh bytes object each time: nothing to wait for
            final = len(raw) < block_bytes
            if first:
                raw, first = raw[encoding.bom :], False
            buf = carry + decoder.decode(raw, final=final).encode("utf-8", "surrogatepass")
            cut = len(buf) if final else buf.rfind(b"\n") + 1
            body, carry = buf[:cut], buf[cut:]
            if body:
                block = lines_block(np.frombuffer(body, np.uint8), -1, line)
                yield block
                line += len(block)
            if final:  # also when the last read was empty: nothing is left to wait for
                return


def iter_text_lines(path: Path, encoding: Encoding, tap: Tap | None = None) -> Iterator[tuple[int, int, str]]:
    """(line number, byte offset or -1, text) of every line, streamed in blocks: for
    line-oriented parsers of formats that are not bulk enough to need the compiled scanner.
    The text is decoded in the file's encoding (GB18030 bytes stay readable) without the
    trailing `\\r`."""
    codec = "utf-8" if encoding.name.startswith("utf-16") or encoding.name == "binary" else encoding.name
    codec = "utf-8" if codec == "utf-8-sig" else codec
    for block in iter_blocks(path, encoding, tap=tap):
        raw = block.data.tobytes()
        for k in range(len(block)):
            s, e = int(block.starts[k]), int(block.ends[k])
            text = raw[s:e].decode(codec, errors="replace").rstrip("\r")
            yield block.base_line + k, (block.base_offset + s) if block.base_offset >= 0 else -1, text
