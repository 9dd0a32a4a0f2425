"""EVTX ingest + event-log detection speed beside the raw `evtx` parser over the same files.

The real samples (../shared/data/evtx) are repeated (byte-identical copies but one changed
padding byte each, so the case does not skip them as duplicates) until --events events.
Prints events/s of the raw parser (records_json, nothing else), of wormhunt ingest, of
ingest + detections, and the peak RSS. Usage: python bench/evtx.py [--events 1000000] [--big]

`--big` packs the samples' 64 KiB chunks, repeated, into ONE large .evtx file instead (a new
file header with the chunk count and its CRC; each chunk keeps its own checksums), so the
figures measure per-event work rather than the per-file cost of thousands of 69 KB copies.
"""

from __future__ import annotations

import argparse
import importlib
import resource
import shutil
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

from wormhunt.analyze import events as ev
from wormhunt.ingest import ingest
from wormhunt.store import Case

# This script is named evtx.py too: import the parser package, not this file.
_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
sys.modules.pop("evtx", None)
evtx = importlib.import_module("evtx")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "evtx"


CHUNK = 65536
HEADER = 4096


def pack(samples: list[Path], rounds: int, dest: Path) -> None:
    """One .evtx holding every sample chunk `rounds` times (at most 65,535 chunks)."""
    chunks = []
    for p in samples:
        data = p.read_bytes()
        for i in range((len(data) - HEADER) // CHUNK):
            c = data[HEADER + i * CHUNK : HEADER + (i + 1) * CHUNK]
            if c[:8] == b"ElfChnk\x00":
                chunks.append(c)
    chunks = (chunks * rounds)[:65535]
    head = bytearray(samples[0].read_bytes()[:HEADER])
    struct.pack_into("<Q", head, 8, 0)  # first chunk number
    struct.pack_into("<Q", head, 16, len(chunks) - 1)  # last chunk number
    struct.pack_into("<H", head, 42, len(chunks))  # chunk count
    struct.pack_into("<I", head, 124, zlib.crc32(bytes(head[:120])))  # header checksum
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as fh:
        fh.write(head)
        for c in chunks:
            fh.write(c)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--big", action="store_true", help="one packed .evtx instead of many copies")
    args = ap.parse_args()
    samples = sorted(DATA.glob("*.evtx"))
    per_round = sum(sum(1 for _ in evtx.PyEvtxParser(str(p)).records_json()) for p in samples)
    rounds = max(1, -(-args.events // per_round))
    tmp = Path(tempfile.mkdtemp(prefix="wh-bench-evtx-"))
    try:
        files = []
        if args.big:
            pack(samples, rounds, tmp / "in" / "packed.evtx")
            files.append(tmp / "in" / "packed.evtx")
            rounds = 0
        for i in range(rounds):
            for p in samples:
                data = bytearray(p.read_bytes())
                data[4096 - 8 : 4096] = i.to_bytes(8, "little")  # header padding: a distinct file
                dest = tmp / "in" / f"r{i:05d}" / p.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
                files.append(dest)
        t = time.perf_counter()
        raw = sum(sum(1 for _ in evtx.PyEvtxParser(str(f)).records_json()) for f in files)
        raw_s = time.perf_counter() - t
        with Case(tmp / "case") as case:
            t = time.perf_counter()
            ingest(case, [tmp / "in"])
            ingest_s = time.perf_counter() - t
            n = case.count("events")
            t = time.perf_counter()
            found = ev.findings(case)
            detect_s = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"files {len(files)}, events {n} (raw parser {raw})")
        print(f"raw evtx parser      {raw / raw_s:>10,.0f} events/s ({raw_s:.1f} s)")
        print(f"wormhunt ingest      {n / ingest_s:>10,.0f} events/s ({ingest_s:.1f} s)")
        total = ingest_s + detect_s
        print(f"ingest + detections  {n / total:>10,.0f} events/s ({total:.1f} s, {len(found)} findings)")
        print(f"ratio to raw parser  {100 * (n / total) / (raw / raw_s):.0f} %")
        print(f"peak RSS             {rss:,.0f} MiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
