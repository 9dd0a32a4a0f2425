"""Benchmark: a sweep of N simulated host bundles end to end, with the outbreak's firewall
logs: ingest, triage rules, family identification (the knowledge base over every host),
network detections and spread analysis (infection times, edges, patient zero).

Prints the wall time, hosts/s and the peak RSS of the process doing the sweep (a child
process, so generating the bundles does not count), and how the result compares with the
simulator's ground truth. Target (issue 7): 1,000 hosts in under 60 s.

Usage: python bench/sweep.py [--hosts 1000] [--seed 1] [--lines 200000]
The evidence is generated once by the simulator and cached under bench/out/.
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


def generate(hosts: int, seed: int, lines: int) -> Path:
    from wormhunt.simulate import simulate

    folder = OUT / f"sweep-{hosts}-{seed}-{lines}"
    if not (folder / "ground_truth.json").exists():
        started = time.perf_counter()
        simulate(folder, hosts=hosts, seed=seed, days=1, lines=lines)
        print(f"generated {hosts} bundles in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return folder


def measure(folder: Path) -> dict:
    from wormhunt.analyze import analyze
    from wormhunt.ingest import ingest
    from wormhunt.report.summary import build
    from wormhunt.report.sweep import rows
    from wormhunt.store import Case

    with tempfile.TemporaryDirectory() as tmp, Case(Path(tmp) / "case") as case:
        started = time.perf_counter()
        entries = ingest(case, [folder / "hosts", folder / "network", folder / "assets.csv"])
        ingested = time.perf_counter()
        inv = analyze(case)
        analyzed = time.perf_counter()
        doc = build(case, inv, "en")
        table = rows(doc)
        done = time.perf_counter()
    spread = doc["spread"] or {}
    return {
        "files": len(entries),
        "hosts": len(table),
        "infected": sorted(r["host"].upper() for r in table if r["verdict"] == "infected"),
        "edges": [(e["src"].upper(), e["dst"].upper()) for e in spread.get("edges", [])],
        "patient_zero": (spread.get("patient_zero") or {}).get("host"),
        "ingest_s": ingested - started,
        "analyze_s": analyzed - ingested,
        "report_s": done - analyzed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    folder = generate(args.hosts, args.seed, args.lines)
    truth = json.loads((folder / "ground_truth.json").read_text(encoding="utf-8"))
    out = subprocess.run(
        [sys.executable, __file__, "--measure", str(folder)], check=True, capture_output=True, text=True
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    total = r["ingest_s"] + r["analyze_s"] + r["report_s"]
    real = {(e["src"].upper(), e["dst"].upper()) for e in truth["edges"]}
    found = {tuple(e) for e in r["edges"]}
    infected = {h.upper() for h in truth["infected"]}
    print(f"evidence  {args.hosts} hosts, {r['files']:,} files, {args.lines:,} firewall lines")
    print(
        f"sweep     {total:.1f} s: ingest {r['ingest_s']:.1f} s, analyze {r['analyze_s']:.1f} s, "
        f"verdicts {r['report_s']:.1f} s (target < 60 s)"
    )
    print(f"speed     {r['hosts'] / total:.1f} hosts/s; peak RSS {r['peak_rss_mb']:.0f} MB")
    print(
        f"truth     infected {len(set(r['infected']) & infected)}/{len(infected)} "
        f"(false {len(set(r['infected']) - infected)}), edges {len(found & real)}/{len(real)} "
        f"(wrong {len(found - real)}), patient zero {r['patient_zero']} (truth {truth['patient_zero']['host']})"
    )


if __name__ == "__main__":
    main()
