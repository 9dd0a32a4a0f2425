"""Big .evtx files made of real ones: the 64 KiB chunks of sample logs, repeated, behind one new
file header (chunk count and header checksum set; every chunk keeps its own checksums). Used by
the benchmark and by the tests of parsing a big file in parts."""

from __future__ import annotations

from pathlib import Path

from wormhunt.sources.evtx import CHUNK_BYTES, HEADER_BYTES, MAX_CHUNKS, file_header


def sample_chunks(samples: list[Path]) -> list[bytes]:
    """Every chunk (with its `ElfChnk` signature) of the sample files, in order."""
    out = []
    for p in samples:
        data = p.read_bytes()
        for i in range((len(data) - HEADER_BYTES) // CHUNK_BYTES):
            c = data[HEADER_BYTES + i * CHUNK_BYTES : HEADER_BYTES + (i + 1) * CHUNK_BYTES]
            if c[:8] == b"ElfChnk\x00":
                out.append(c)
    return out


def pack(samples: list[Path], rounds: int, dest: Path, tag: int = 0) -> int:
    """Write one .evtx holding the samples' chunks `rounds` times (at most 65,535 chunks);
    returns the number of chunks written. `tag` goes into the header's padding, so files packed
    alike still differ (a case keeps one copy of identical files)."""
    chunks = (sample_chunks(samples) * rounds)[:MAX_CHUNKS]
    head = samples[0].read_bytes()[: HEADER_BYTES - 8] + tag.to_bytes(8, "little")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as fh:
        fh.write(file_header(head, len(chunks)))
        for c in chunks:
            fh.write(c)
    return len(chunks)
