"""Benchmark: triage of N simulated host bundles (ingest every artifact, run every detector).

Prints hosts/s, files/s and the peak RSS of the process doing the triage (a child process,
so generating the bundles does not count). Target (issue 4): at least 50 hosts/s.

Usage: python bench/triage.py [--hosts 1000] [--seed 1]
The bundles are generated once by the simulator and cached under bench/out/.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def generate(hosts: int, seed: int) -> Path:
    from wormhunt.simulate import simulate

    folder = OUT / f"triage-{hosts}-{seed}"
    if not (folder / "ground_truth.json").exists():
        started = time.perf_counter()
        simulate(folder, hosts=hosts, seed=seed, days=1, lines=1000)
        print(f"generated {hosts} bundles in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return folder


def measure(folder: Path) -> dict:
    from wormhunt.analyze import analyze
    from wormhunt.ingest import ingest
    from wormhunt.store import Case

    with tempfile.TemporaryDirectory() as tmp, Case(Path(tmp) / "case") as case:
        started = time.perf_counter()
        entries = ingest(case, [folder / "hosts", folder / "assets.csv"])
        ingested = time.perf_counter()
        inv = analyze(case)
        done = time.perf_counter()
    return {
        "files": len(entries),
        "skipped": sum(e.skipped for e in entries),
        "not_ingested": sum(e.status not in ("ingested", "empty") for e in entries),
        "empty": sum(e.status == "empty" for e in entries),
        "hosts": len(inv.hosts),
        "infected": sum(h.status == "infected" for h in inv.hosts.values()),
        "ingest_s": ingested - started,
        "analyze_s": done - ingested,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    folder = generate(args.hosts, args.seed)
    truth = json.loads((folder / "ground_truth.json").read_text(encoding="utf-8"))
    out = subprocess.run(
        [sys.executable, __file__, "--measure", str(folder)], check=True, capture_output=True, text=True
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    total = r["ingest_s"] + r["analyze_s"]
    print(
        f"bundles   {args.hosts} hosts, {r['files']:,} files "
        f"({r['empty']} recognised but empty, {r['not_ingested']} not ingested, {r['skipped']} lines skipped)"
    )
    print(f"triage    {total:.1f} s: ingest {r['ingest_s']:.1f} s, analyze {r['analyze_s']:.1f} s")
    print(f"speed     {r['hosts'] / total:.1f} hosts/s, {r['files'] / total:.1f} files/s (target >= 50 hosts/s)")
    print(f"verdict   {r['infected']} infected (ground truth {len(truth['infected'])})")
    print(f"peak RSS  {r['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
