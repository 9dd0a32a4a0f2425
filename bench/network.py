"""Benchmark: parsing and ingesting network logs, per format, beside DuckDB's raw scan.

For each format (FortiGate key=value, Palo Alto CSV, Zeek conn TSV, nfdump CSV) the same
simulated sessions are written once (cached under bench/out/) and then measured:

  raw scan   DuckDB reading every line of the file as one VARCHAR column (count(*)): the
             speed of just getting the bytes through a fast reader, the issue's baseline;
  csv scan   (CSV/TSV formats) DuckDB's CSV reader splitting every line into its columns;
  parse      wormhunt's parser alone (records counted, not stored);
  ingest     a full ingest into a fresh case: sha256 for the manifest, parse, Parquet
             partition with provenance;
  peak RSS   of the process doing the ingest (a separate process per measurement).

Usage: python bench/network.py [--lines 10000000] [--formats fortigate,paloalto,zeek,nfdump]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
FORMATS = {
    # format: (simulator writer, wormhunt parser format name, CSV delimiter for DuckDB or None)
    "fortigate": ("fortigate", "fortigate", None),
    "paloalto": ("paloalto", "paloalto", ","),
    "zeek": ("zeek", "zeek", "\t"),
    "nfdump": ("nfdump", "nfdump", ","),
}
CHUNK = 500_000


def generate(fmt: str, lines: int, seed: int) -> Path:
    """`lines` benign-looking sessions in `fmt`, written by the simulator's format writer."""
    from wormhunt.simulate.company import build_company
    from wormhunt.simulate.logformats import writer as make_writer
    from wormhunt.simulate.traffic import Generator

    writer_name = FORMATS[fmt][0]
    company = build_company(1000, random.Random(seed), "mixed")
    w = make_writer(writer_name, company)
    path = OUT / f"net-{fmt}-{lines}-{seed}" / w.traffic_file
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    gen = Generator(company, seed)
    t0 = 1542470400.0
    tmp = path.with_suffix(".part")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        for line in w.header(w.traffic_file):
            fh.write(line + "\n")
        done = 0
        hour = 0
        while done < lines:
            n = min(CHUNK, lines - done)
            flows = gen.background(t0 + hour * 3600, n)
            fh.write("\n".join(w.traffic(flows)) + "\n")
            done += n
            hour += 1
        for line in w.footer(w.traffic_file):
            fh.write(line + "\n")
    tmp.rename(path)
    print(f"generated {path} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return path


def _best(fn, runs: int = 3) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - started)
    return best, value


def raw_scan(path: Path, delim: str | None) -> dict:
    import duckdb

    con = duckdb.connect()
    quoted = str(path).replace("'", "''")
    lines_sql = (
        f"SELECT count(*) FROM read_csv('{quoted}', columns={{'line': 'VARCHAR'}}, header=false, "
        "delim=chr(1), quote='', escape='', auto_detect=false, strict_mode=false)"
    )
    secs, n = _best(lambda: con.execute(lines_sql).fetchone()[0])
    out = {"lines": n, "raw_s": secs}
    if delim:
        d = "chr(9)" if delim == "\t" else f"'{delim}'"
        csv_sql = (
            f"SELECT count(*) FROM read_csv('{quoted}', delim={d}, header=false, all_varchar=true, "
            "null_padding=true, ignore_errors=true, comment='#', auto_detect=true)"
        )
        # count(*) alone lets DuckDB skip the columns; a max over every column forces them.
        cols = con.execute(f"DESCRIBE {csv_sql.replace('SELECT count(*)', 'SELECT *')}").fetchall()
        agg = ", ".join(f'max(length("{c[0]}"))' for c in cols)
        full = csv_sql.replace("count(*)", f"count(*), {agg}")
        secs, _ = _best(lambda: con.execute(full).fetchone())
        out["csv_s"] = secs
    return out


def measure_parse(path: Path, fmt: str) -> dict:
    from wormhunt.sources.base import Sink
    from wormhunt.sources.detect import detect_file

    class Count(Sink):
        def _batch(self, kind, table) -> None:
            pass

        def _row(self, kind, values) -> None:
            pass

    det = detect_file(path)
    assert det.format is not None and det.format.name == FORMATS[fmt][1], det
    sink = Count()
    started = time.perf_counter()
    det.format.parse_file(path, det.encoding, sink)
    return {"parse_s": time.perf_counter() - started, "records": sink.records, "skipped": sink.skipped}


def measure_ingest(path: Path) -> dict:
    from wormhunt.ingest import ingest
    from wormhunt.store import Case

    with tempfile.TemporaryDirectory() as tmp, Case(Path(tmp) / "case") as case:
        started = time.perf_counter()
        (entry,) = ingest(case, [path])
        secs = time.perf_counter() - started
    return {
        "ingest_s": secs,
        "records": entry.records,
        "status": entry.status,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--parse", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--ingest", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.parse:
        print(json.dumps(measure_parse(Path(args.parse[0]), args.parse[1])))
        return
    if args.ingest:
        print(json.dumps(measure_ingest(args.ingest)))
        return
    for fmt in args.formats.split(","):
        path = generate(fmt, args.lines, args.seed)
        _child("--parse", str(path), fmt)  # warm-up: compiled kernels cached, file in page cache
        base = raw_scan(path, FORMATS[fmt][2])
        parse = _child("--parse", str(path), fmt)
        full = _child("--ingest", str(path))
        n = base["lines"]
        raw = n / base["raw_s"]
        size = path.stat().st_size / 1e9
        print(f"== {fmt}: {path.name} ({size:.2f} GB, {n:,} lines, {parse['records']:,} records)")
        print(f"   raw scan  DuckDB lines      {base['raw_s']:7.2f} s {raw:13,.0f} lines/s")
        if "csv_s" in base:
            print(f"   csv scan  DuckDB columns    {base['csv_s']:7.2f} s {n / base['csv_s']:13,.0f} lines/s")
        target = 70 if FORMATS[fmt][2] else 40
        pr = parse["records"] / parse["parse_s"]
        ir = full["records"] / full["ingest_s"]
        print(
            f"   parse     wormhunt         {parse['parse_s']:7.2f} s {pr:13,.0f} rec/s  {100 * pr / raw:5.1f} % of raw"
        )
        print(
            f"   ingest    wormhunt (+sha256, Parquet) {full['ingest_s']:7.2f} s {ir:13,.0f} rec/s  "
            f"{100 * ir / raw:5.1f} % of raw (target >= {target} %)"
        )
        print(f"   peak RSS  {full['peak_rss_mb']:.0f} MB; skipped {parse['skipped']:,}")


if __name__ == "__main__":
    main()
