"""Benchmark: `wormhunt identify` over a 500 MiB mixed tree against a LOKI-style baseline.

The tree (built once, cached under bench/out/identify-tree): log-like text, random binary,
copies of the Windows PE launchers shipped with pip/setuptools (one byte changed per copy so
the hashes differ), and files with planted FuzzBunch / XMRig / WannaCry strings.

Prints MiB/s and files/s for
  (a) wormhunt with the project rules,
  (b) wormhunt with 2,000 generated rules (text, hex with wildcards/jumps, regex),
each next to
  (c) the baseline: one thread reading each file, computing md5/sha1/sha256 and calling
      yara-python's match() with the same rules and externals (what LOKI does per file).
wormhunt runs with both executors (process pool, thread pool) so the choice in scan.py can be
checked. Each figure is the fastest of --repeat runs (other work shares the machine).
ClamAV is left out (not installed here); the baseline has no PE parsing or ssdeep.

Usage: python bench/scan.py [--mib 500] [--rules 2000] [--workers N]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import random
import string
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
PLANTS = [
    b"Eternalblue-2.2.0.exe --InConfig Eternalblue-2.2.0.xml --TargetIp 10.1.2.3 trch-1.dll tucl-1.dll coli-0.dll",
    b"xmrig --donate-level 1 -o stratum+tcp://pool.example.net:3333 -u wallet -p x",
    b"mssecsvc2.0 tasksche.exe www.iuqerfsodp9ifjaposdfjhgosurijfaewrwergwea.com",
    b"snmpstorsrv.dll MarsTraceDiagnostics.xml C:\\Windows\\AppDiagnostics UPnPHostServices",
]


def _pe_sources() -> list[bytes]:
    found: list[Path] = []
    for package, sub in (("pip", "_vendor/distlib"), ("setuptools", "")):
        spec = importlib.util.find_spec(package)
        if spec and spec.origin:
            found += sorted((Path(spec.origin).parent / sub).glob("*.exe"))
    return [p.read_bytes() for p in found]


def build_tree(mib: int, seed: int = 7) -> Path:
    folder = OUT / f"identify-tree-{mib}"
    done = folder / ".complete"
    if done.exists():
        return folder
    rng = random.Random(seed)
    started = time.perf_counter()
    words = ["GET", "POST", "svchost", "10.0.0.1", "445", "user", "admin", "status=200", "TCP", "ESTABLISHED"]
    words += ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 10))) for _ in range(400)]
    pool = "\n".join(" ".join(rng.choices(words, k=rng.randint(5, 20))) for _ in range(40000)).encode()
    pes = _pe_sources()
    budget = mib << 20
    kinds = {"text": 0.35, "binary": 0.45, "pe": 0.12, "planted": 0.08}
    n = 0
    for kind, share in kinds.items():
        left = int(budget * share)
        k = 0
        while left > 0:
            sub = folder / kind / f"d{k // 200:03d}"
            if k % 200 == 0:
                sub.mkdir(parents=True, exist_ok=True)
            k += 1
            if kind == "text":
                size = rng.randint(4 << 10, 512 << 10)
                start = rng.randint(0, max(0, len(pool) - size))
                data, name = pool[start : start + size], f"log{n}.txt"
            elif kind == "binary":
                size = rng.choice([64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20])
                data, name = os.urandom(size), f"blob{n}.bin"
            elif kind == "pe" and pes:
                base = bytearray(rng.choice(pes))
                base[-1] ^= n & 0xFF
                data, name = bytes(base) + n.to_bytes(4, "little"), f"tool{n}.exe"
            else:
                size = rng.randint(8 << 10, 256 << 10)
                cut = rng.randint(0, size)
                blob = os.urandom(size)
                data, name = blob[:cut] + rng.choice(PLANTS) + blob[cut:], f"plant{n}.dat"
            (sub / name).write_bytes(data)
            left -= len(data)
            n += 1
    done.write_text(str(n))
    print(f"built {n} files, {mib} MiB in {time.perf_counter() - started:.1f} s at {folder}", file=sys.stderr)
    return folder


def generate_rules(count: int, seed: int = 11) -> str:
    rng = random.Random(seed)
    alnum = string.ascii_letters + string.digits
    out = []
    for i in range(count):
        text = "".join(rng.choices(alnum, k=rng.randint(8, 16)))
        wide = "".join(rng.choices(alnum, k=rng.randint(8, 12)))
        hexes = [f"{rng.randrange(256):02X}" for _ in range(8)]
        hexes[3] = "??"
        hexstr = " ".join(hexes[:5]) + f" [1-4] {' '.join(hexes[5:])}"
        prefix = "".join(rng.choices(string.ascii_lowercase, k=6))
        suffix = "".join(rng.choices(string.ascii_lowercase, k=4))
        out.append(
            f'rule gen_{i:05d} : generated\n{{\n    meta:\n        author = "bench"\n'
            f'        description = "generated rule {i}"\n'
            f'    strings:\n        $t = "{text}" ascii\n        $w = "{wide}" wide nocase\n'
            f"        $h = {{ {hexstr} }}\n        $r = /{prefix}[a-z0-9]{{2,8}}{suffix}/\n"
            f'    condition:\n        any of them or (filename == "gen{i}.exe" and filesize < 10KB)\n}}\n'
        )
    return "\n".join(out)


def tree_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != ".complete")


def baseline(files: list[Path], rule_paths: list[Path]) -> tuple[float, int, int]:
    """LOKI-style: one thread, read, three hashes, yara-python match with externals."""
    import yara

    externals = {k: "" for k in ("filename", "filepath", "extension", "filetype", "owner")}
    sources = {f"ns{i}": p.read_text(encoding="utf-8") for i, p in enumerate(rule_paths)}
    rules = yara.compile(sources=sources, externals=externals)
    started = time.perf_counter()
    total = hits = 0
    for path in files:
        data = path.read_bytes()
        total += len(data)
        for algo in (hashlib.md5, hashlib.sha1, hashlib.sha256):
            algo(data).hexdigest()
        ext = {
            "filename": path.name,
            "filepath": str(path),
            "extension": path.suffix.lower(),
            "filetype": "EXE" if data[:2] == b"MZ" else "",
            "owner": "",
        }
        hits += bool(rules.match(data=data, externals=ext, timeout=60))
    return time.perf_counter() - started, total, hits


def run_wormhunt(folder: Path, rule_dirs: list[Path], project: bool, executor: str, workers: int | None):
    from wormhunt.identify import identify
    from wormhunt.identify.yarascan import compile_rules

    t0 = time.perf_counter()
    compiled = compile_rules(rule_dirs, project=project)
    compile_s = time.perf_counter() - t0
    started = time.perf_counter()
    result = identify(
        [folder], workers=workers, use_clamav=False, executor=executor, compiled=compiled, project_rules=project
    )
    seconds = time.perf_counter() - started
    s = result.summary
    return seconds, s.bytes_scanned, s.scanned, s.detected_files, compile_s


def line(label: str, seconds: float, total: int, files: int, extra: str = "") -> None:
    mib = total / (1 << 20)
    print(f"  {label:<34} {seconds:7.2f} s  {mib / seconds:8.1f} MiB/s  {files / seconds:8.1f} files/s  {extra}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=500)
    ap.add_argument("--rules", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument(
        "--repeat", type=int, default=3, help="Runs per measurement; the fastest is shown (shared machine)."
    )
    args = ap.parse_args()
    folder = build_tree(args.mib)
    files = tree_files(folder)
    for f in files:  # warm the page cache so every run reads from memory
        f.read_bytes()
    gen_dir = OUT / f"identify-rules-{args.rules}"
    gen_dir.mkdir(parents=True, exist_ok=True)
    gen_file = gen_dir / "generated.yar"
    if not gen_file.exists():
        gen_file.write_text(generate_rules(args.rules), encoding="utf-8")
    from wormhunt.identify.yarascan import project_rule_files

    size = sum(f.stat().st_size for f in files)
    print(f"tree: {len(files)} files, {size / (1 << 20):.0f} MiB; cpus: {os.cpu_count()}; load: {os.getloadavg()}")
    sets = (
        ("(a) project rules", [], True, project_rule_files()),
        (f"(b) {args.rules} generated rules", [gen_dir], False, [gen_file]),
    )
    # The thread pool scans in this process, after which identify() no longer forks its workers
    # from it (yara-x's timeout thread would be missing in them): thread runs come last, as
    # `wormhunt identify` (one scan per process) never mixes the two.
    base: dict[str, float] = {}
    for executors in (("auto", "process"), ("thread",)):
        for title, rule_dirs, project, rule_paths in sets:
            print(title)
            if title not in base:
                base_s, base_total, base_hits = min(baseline(files, rule_paths) for _ in range(args.repeat))
                line("(c) baseline yara-python, 1 thread", base_s, base_total, len(files), f"files matched {base_hits}")
                base[title] = base_s
            for executor in executors:
                runs = [run_wormhunt(folder, rule_dirs, project, executor, args.workers) for _ in range(args.repeat)]
                s, total, n, hits, cs = min(runs)
                line(
                    f"wormhunt identify, {executor} pool",
                    s,
                    total,
                    n,
                    f"files detected {hits}; compile {cs:.2f} s; x{base[title] / s:.2f} vs baseline",
                )


if __name__ == "__main__":
    main()
