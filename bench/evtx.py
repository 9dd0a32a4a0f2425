"""EVTX ingest + event-log detection speed beside the raw `evtx` parser over the same files.

The real samples (../shared/data/evtx) are repeated (byte-identical copies but one changed
padding byte each, so the case does not skip them as duplicates) until --events events.
Prints events/s of the raw parser (records_json, nothing else), of wormhunt ingest, of
ingest + detections, and the peak RSS. Usage: python bench/evtx.py [--events 1000000] [--big | --dense]

`--big` packs the samples' 64 KiB chunks, repeated, into large .evtx files instead (a new file
header with the chunk count and its CRC; each chunk keeps its own checksums; at most 65,535
chunks a file), so the figures measure per-event work rather than the per-file cost of
thousands of 69 KB copies. The samples hold few events per chunk (about 11 KiB of file per
event), so hashing the input costs about as much as the raw parse itself.

`--dense` packs the same chunks filled with copies of their own records (simulate/evtxpack.py
`dense_chunks`: each copy verified to parse to its original's event), about 117 events a chunk
as in a production log whose chunks are full, instead of 6.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from wormhunt.analyze import events as ev
from wormhunt.ingest import ingest
from wormhunt.simulate.evtxpack import MAX_CHUNKS, chunk_events, dense_chunks, pack, sample_chunks
from wormhunt.sources.evtx import HEADER_BYTES
from wormhunt.store import Case

# This script is named evtx.py too: import the parser package, not this file.
_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
sys.modules.pop("evtx", None)
evtx = importlib.import_module("evtx")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "evtx"


class Tree:
    """Peak RSS of this process plus its worker processes (the forkserver's children too) and
    the CPU seconds they used, sampled every 100 ms (a worker's last 100 ms may be missed)."""

    def __init__(self) -> None:
        self.peak = 0
        self.cpu: dict[int, tuple[float, float]] = {}  # pid -> (user, system) seconds
        me = psutil.Process().cpu_times()
        self.before = (me.user, me.system)  # this process's CPU before the measured work
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        me = psutil.Process()
        total = 0
        for p in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
                t = p.cpu_times()
                self.cpu[p.pid] = (t.user, t.system)
        self.peak = max(self.peak, total)

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            self._sample()

    def close(self) -> tuple[float, float, float]:
        """(peak MiB, user CPU seconds, system CPU seconds)."""
        self.stop.set()
        self.thread.join()
        self._sample()
        user = sum(u for u, _ in self.cpu.values()) - self.before[0]
        system = sum(s for _, s in self.cpu.values()) - self.before[1]
        mine = self.cpu.get(os.getpid(), self.before)
        self.own = mine[0] + mine[1] - sum(self.before)  # this process's share
        return self.peak / 2**20, user, system


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--big", action="store_true", help="one packed .evtx instead of many copies")
    ap.add_argument("--dense", action="store_true", help="packed, with full chunks (as a production log)")
    ap.add_argument("--json", action="store_true", help="wormhunt's JSON path only (the reader before binxml)")
    args = ap.parse_args()
    if args.json:  # read by the workers too (set before the pool starts)
        os.environ["WORMHUNT_EVTX_READER"] = "json"
        importlib.import_module("wormhunt.sources.evtx").BINXML = False
    samples = sorted(DATA.glob("*.evtx"))
    per_round = sum(sum(1 for _ in evtx.PyEvtxParser(str(p)).records_json()) for p in samples)
    rounds = max(1, -(-args.events // per_round))
    tmp = Path(tempfile.mkdtemp(prefix="wh-bench-evtx-"))
    try:
        files = []
        if args.dense:
            head = samples[0].read_bytes()[:HEADER_BYTES]
            per_round = sum(len(chunk_events(c, head) or []) for c in dense_chunks(samples))
            rounds = max(1, -(-args.events // per_round))
        if args.big or args.dense:  # as few files as the 16-bit chunk count allows
            per_file = MAX_CHUNKS // len(sample_chunks(samples))
            for k in range(-(-rounds // per_file)):
                dest = tmp / "in" / f"packed{k:02d}.evtx"
                pack(samples, min(per_file, rounds - k * per_file), dest, tag=k, dense=args.dense)
                files.append(dest)
            rounds = 0
        for i in range(rounds):
            for p in samples:
                data = bytearray(p.read_bytes())
                data[4096 - 8 : 4096] = i.to_bytes(8, "little")  # header padding: a distinct file
                dest = tmp / "in" / f"r{i:05d}" / p.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
                files.append(dest)
        os.sync()  # the copies just written are flushed now, not while the runs below are timed
        # the raw parser twice, the faster run kept (the ratio is not flattered by a slow one)
        raw_s = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            raw = sum(sum(1 for _ in evtx.PyEvtxParser(str(f)).records_json()) for f in files)
            raw_s = min(raw_s, time.perf_counter() - t)
        tree = Tree()
        with Case(tmp / "case") as case:
            t = time.perf_counter()
            ingest(case, [tmp / "in"])
            ingest_s = time.perf_counter() - t
            n = case.count("events")
            t = time.perf_counter()
            found = ev.findings(case)
            detect_s = time.perf_counter() - t
        peak, user, system = tree.close()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        reader = "JSON path only" if args.json else "compiled BinXML reader, JSON path for the rest"
        print(f"files {len(files)}, events {n} (raw parser {raw}); EVTX read by the {reader}")
        print(f"raw evtx parser      {raw / raw_s:>10,.0f} events/s ({raw_s:.1f} s, the faster of two runs)")
        print(f"wormhunt ingest      {n / ingest_s:>10,.0f} events/s ({ingest_s:.1f} s)")
        total = ingest_s + detect_s
        print(f"ingest + detections  {n / total:>10,.0f} events/s ({total:.1f} s, {len(found)} findings)")
        print(f"ratio to raw parser  {100 * (n / total) / (raw / raw_s):.0f} %")
        print(f"peak RSS             {rss:,.0f} MiB this process, {peak:,.0f} MiB with its workers")
        print(f"CPU time             {user + system:.1f} s (with the workers; user {user:.1f}, system {system:.1f})")
        print(f"  of which this process {tree.own:.1f} s (hashing, storing, detections)")
        print(f"input                {sum(f.stat().st_size for f in files) / 2**20:,.0f} MiB (all hashed)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
