"""`wormhunt identify`: a local multi-scanner over files and folders.

Per file, one read feeds every engine: hashes (md5/sha1/sha256), PE facts (lief), YARA
(yara-x, project and user rules), ssdeep (PE files up to a cap) and, when installed, ClamAV.

Parallelism: a process pool. Forked workers inherit the compiled rules, lief and the compiled
ssdeep pass from this process (warmed up before the fork); other start methods get the rules
serialized (yara-x Rules.serialize/deserialize). yara-x's Python scan() holds the GIL, so a
thread pool does not scale once YARA is a real share of the work. Measured with bench/scan.py
(2 cores, 500 MiB tree, best of 5, 2026-11-27): with 2,000 generated rules the process pool ran
250-272 MiB/s and a thread pool 169-179 MiB/s; with the project's rules 465-487 against 368-416
MiB/s. So `executor="auto"` is the process pool; tiny inputs run in-process. A process that has
scanned by itself has yara-x's timeout thread, which a forked child would lack: its pools start
with forkserver (`yarascan.may_fork`).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yara_x

from wormhunt.identify import clamav
from wormhunt.identify.fuzzy import SSDEEP_MAX, ssdeep
from wormhunt.identify.hashes import hash_file
from wormhunt.identify.model import ENGINES, EngineSummary, FileResult, IdentifyResult, Note, Summary
from wormhunt.identify.pe import load_lief, pe_facts
from wormhunt.identify.walk import MAX_SIZE, Entry, walk
from wormhunt.identify.yarascan import CompiledRules, YaraEngine, compile_rules, deserialize, may_fork

_MAGIC = (
    (b"MZ", "EXE"),
    (b"\x7fELF", "ELF"),
    (b"PK\x03\x04", "ZIP"),
    (b"%PDF", "PDF"),
    (b"\x1f\x8b", "GZIP"),
    (b"Rar!", "RAR"),
    (b"7z\xbc\xaf\x27\x1c", "7Z"),
    (b"MSCF", "CAB"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE"),
    (b"#!", "SCRIPT"),
)


def filetype_of(data: bytes) -> str:
    """A short magic-based type for the `filetype` YARA external (LOKI/THOR style), "" if unknown."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    return ""


@cache
def _owner(uid: int) -> str:
    if uid < 0:
        return ""
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


@dataclass(frozen=True)
class Options:
    max_size: int = MAX_SIZE
    ssdeep_max: int = SSDEEP_MAX


def analyze(entry: Entry, engine: YaraEngine | None, opts: Options) -> FileResult:
    """Every engine but ClamAV on one file (already classified by walk)."""
    result = FileResult(path=str(entry.path), size=entry.size, skipped=entry.skipped, skip_detail=entry.detail)
    if entry.skipped:
        return result
    try:
        result.hashes, data = hash_file(entry.path, keep=True)
    except OSError as exc:
        result.skipped, result.skip_detail = "unreadable", exc.strerror or str(exc)
        return result
    assert data is not None
    if len(data) > opts.max_size:  # grew since it was listed
        result.hashes = None
        result.skipped, result.skip_detail = "too_large", str(opts.max_size)
        return result
    result.size = len(data)
    result.filetype = filetype_of(data)
    pe = pe_facts(data, entry.path.name)
    if pe.is_pe:
        result.pe = pe
        result.ssdeep = ssdeep(data, opts.ssdeep_max)
        if pe.error:
            result.notes.append(Note("pe.damaged", "warn", {"error": pe.error}))
    if engine is not None:
        try:
            result.yara = engine.scan(data, entry.path, result.filetype, _owner(entry.uid))
        except (yara_x.TimeoutError, yara_x.ScanError) as exc:
            result.yara_error = f"{type(exc).__name__}: {exc}"
    return result


# Per-worker state: set once by the pool initializer (process) or lazily per thread.
_worker: dict = {}
_local = threading.local()


def _init_process(rules: yara_x.Rules | bytes | None, opts: Options) -> None:
    if isinstance(rules, bytes):
        rules = deserialize(rules)
    _worker["engine"] = YaraEngine(rules) if rules is not None else None
    _worker["opts"] = opts


def _warm_up() -> None:
    """Load what every worker needs (lief, the compiled ssdeep pass) once, here, before the pool
    forks: otherwise each worker spends about 0.4 s of CPU doing it for itself."""
    try:
        load_lief()
        ssdeep(b"warm-up")
    except Exception:  # each file reports what fails for it
        pass


def _run_in_process(entry: Entry) -> FileResult:
    return analyze(entry, _worker["engine"], _worker["opts"])


def _executor(kind: str, workers: int, compiled: CompiledRules, opts: Options) -> tuple[Executor, Callable]:
    if kind == "thread":

        def run(entry: Entry) -> FileResult:
            if not hasattr(_local, "engine"):
                _local.engine = YaraEngine(compiled.rules) if compiled.rules is not None else None
            return analyze(entry, _local.engine, opts)

        return ThreadPoolExecutor(workers), run
    ctx = mp.get_context()
    forked = ctx.get_start_method() == "fork"
    if forked and not may_fork():  # this process has scanned: its children would lack yara-x's timeout thread
        ctx, forked = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"), False
    if forked:
        _warm_up()
    # A forked worker inherits the compiled rules as they are; others get them serialized.
    rules = compiled.rules if forked else compiled.serialize()
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_process, initargs=(rules, opts)), (
        _run_in_process
    )


def _summarize(results: list[FileResult], compiled: CompiledRules, clam: clamav.ClamEngine, seconds: float) -> Summary:
    summary = Summary(files=len(results), seconds=round(seconds, 3))
    scanned = [r for r in results if not r.skipped]
    summary.scanned, summary.skipped = len(scanned), len(results) - len(scanned)
    summary.bytes_scanned = sum(r.size or 0 for r in scanned)
    for r in results:
        if r.skipped:
            summary.skip_reasons[r.skipped] = summary.skip_reasons.get(r.skipped, 0) + 1
    summary.detected_files = sum(1 for r in scanned if r.detections())
    details = {
        "yara_project": (compiled.counts.get("project", 0) > 0, f"{compiled.counts.get('project', 0)} rule files"),
        "yara_user": (compiled.counts.get("user", 0) > 0, f"{compiled.counts.get('user', 0)} rule files"),
        "clamav": (clam.available, clam.detail),
        "pe_heuristics": (True, "lief"),
        "family_kb": (True, "knowledge/families"),
    }
    for name in ENGINES:
        available, detail = details[name]
        pool = [r for r in scanned if r.pe] if name == "pe_heuristics" else scanned
        summary.engines[name] = EngineSummary(
            available=available,
            detail=detail,
            scanned=len(pool) if available else 0,
            detected=sum(1 for r in pool if name in r.detections()),
        )
    return summary


def identify(
    inputs: Iterable[Path],
    rule_dirs: Iterable[Path] = (),
    workers: int | None = None,
    max_size: int = MAX_SIZE,
    ssdeep_max: int = SSDEEP_MAX,
    use_clamav: bool = True,
    project_rules: bool = True,
    executor: str = "auto",
    on_file: Callable[[FileResult], None] | None = None,
    compiled: CompiledRules | None = None,
) -> IdentifyResult:
    """Scan files and folders with every engine; never raises on a bad file."""
    started = time.perf_counter()
    compiled = compiled or compile_rules([Path(d) for d in rule_dirs], project=project_rules)
    opts = Options(max_size=max_size, ssdeep_max=ssdeep_max)
    entries = list(walk([Path(p) for p in inputs], max_size))
    todo = [e for e in entries if not e.skipped]
    workers = max(1, workers or os.cpu_count() or 1)
    if executor == "auto":  # see the module docstring
        executor = "process"

    results: list[FileResult] = []
    if workers == 1 or len(todo) < 2 * workers or executor == "serial":
        engine = YaraEngine(compiled.rules) if compiled.rules is not None else None
        for entry in entries:
            results.append(analyze(entry, engine, opts))
            if on_file:
                on_file(results[-1])
    else:
        pool, run = _executor(executor, workers, compiled, opts)
        # Largest files first, in small chunks, so no worker is left with a big file at the
        # end while the others wait; results are put back in walk order.
        order = sorted(range(len(entries)), key=lambda i: -(entries[i].size or 0))
        done: list[FileResult | None] = [None] * len(entries)
        with pool:
            chunk = 1 if executor == "thread" else max(1, min(8, len(entries) // (workers * 16)))
            for i, result in zip(order, pool.map(run, [entries[i] for i in order], chunksize=chunk), strict=True):
                done[i] = result
                if on_file:
                    on_file(result)
        results = [r for r in done if r is not None]

    clam = clamav.detect() if use_clamav else clamav.ClamEngine(None, None, "disabled")
    verdicts = clamav.scan(clam, [r.path for r in results if not r.skipped])
    for r in results:
        if not r.skipped:
            r.clamav = verdicts.get(r.path)
    _match_families(results)
    summary = _summarize(results, compiled, clam, time.perf_counter() - started)
    return IdentifyResult(results, summary, compiled.warnings, compiled.counts)


def _match_families(results: list[FileResult]) -> None:
    """The family knowledge base over each file: its path, name and hashes (an md5 the
    reference gives, a toolkit file name in its folder) name the family and its playbook."""
    from wormhunt.intel.families import load_families, normalize_path
    from wormhunt.intel.match import FAMILY_MIN, Matcher, Observation

    matcher = Matcher(load_families())
    for r in results:
        if r.skipped:
            continue
        obs = [
            Observation("path", normalize_path(r.path), "file", 0, 0),
            Observation("file_name", os.path.basename(r.path), "file", 0, 0),
        ]
        if r.hashes:
            obs += [Observation(h, getattr(r.hashes, h).lower(), "file", 0, 0) for h in ("md5", "sha1", "sha256")]
        r.families = [
            {
                "family": m.family.id,
                "name": m.family.names["en"],
                "confidence": round(m.confidence, 3),
                "verdict": m.confidence >= FAMILY_MIN,
                "matched": [{"indicator": h.indicator.id, "type": h.indicator.type, "value": h.observed}
                            for h in m.hits],
            }
            for m in matcher.match_host(obs)
        ]  # fmt: skip
