"""Turning the paths a user gives into case records, one evidence file at a time.

Files and folders are walked (symlinks are not followed), each file's format is sniffed
from its content, host evidence is attributed to a host (the `systeminfo` host name found
in the same folder, else the folder name), and each file is ingested in its own
transaction. A file that cannot be read or recognised gets a manifest entry that says
why; it never stops the run.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import multiprocessing as mp
import os
import queue
import shutil
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from wormhunt.sources import FORMATS, bundle
from wormhunt.sources.base import Format, MemorySink
from wormhunt.sources.detect import Detection, Memo, detect_file
from wormhunt.sources.text import SNIFF_BYTES, Encoding, decode
from wormhunt.store import Case, ManifestEntry, StoreSink, TableSink, release_spool, sha256_file, spool_folder

# Text formats are parsed in memory; a file this large is refused rather than exhausting RAM.
MAX_TEXT_BYTES = 512 * 1024 * 1024


@dataclass
class Input:
    path: Path
    detection: Detection | None = None
    host: str | None = None
    host_source: str | None = None
    error: str | None = None


def walk(paths: Iterable[Path]) -> list[Input]:
    """Expand folders into files. Missing paths, unreadable folders and symbolic links become
    inputs with an error, so each is reported rather than silently left out."""
    out: list[Input] = []
    for root in paths:
        root = Path(root)
        if root.is_symlink() and root.is_dir():
            out.append(Input(root, error="symbolic link to a folder: not followed"))
        elif not root.exists():
            out.append(Input(root, error="no such file or directory"))
        elif root.is_dir():

            def unreadable(exc: OSError, top: Path = root) -> None:
                out.append(Input(Path(exc.filename or top), error=f"cannot read folder: {exc.strerror or exc}"))

            for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=unreadable):
                dirnames.sort()
                for name in sorted(filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]):
                    p = Path(dirpath) / name
                    if p.is_symlink():
                        out.append(Input(p, error="symbolic link: not followed"))
                    elif name == bundle.MANIFEST and bundle.read_manifest(Path(dirpath)):
                        continue  # a bundle's own description, read by attribute_hosts
                    elif p.is_file():
                        out.append(Input(p))
        else:
            out.append(Input(root))
    return out


# Below this many files a worker pool costs more to start than it saves.
POOL_MIN_FILES = 200
# Files parsed in worker processes: small files of any format (their rows travel back as Arrow tables).
POOL_MAX_BYTES = 8 * 1024 * 1024
POOL_BATCH = 16  # files a worker task parses
POOL_WINDOW = 8  # tasks in flight per ingest
# A streamed log (pcap, EVTX, firewall export) up to this size joins the batch's transaction
# and partition; a bigger one gets its own (thousands of small EVTX files cost a transaction each).
BATCHED_STREAM_BYTES = 16 * 1024 * 1024
# Fresh pools after breakages, before this process parses the rest itself (halving a part that
# kills its worker down to a few chunks takes one each time).
POOL_RESTARTS = 16
# A streamed file in a format that parses in parts (EVTX) whose parts declare this many records
# is parsed by the worker processes, `SPLIT_WINDOW` parts in flight (bounded memory), and stored
# here in order. Counted in records, not bytes: event logs hold from 6 to 200 events a 64 KiB
# chunk, and below about 100,000 events starting the workers costs what the second core saves
# (measured with bench/evtx.py and packed files of 1,900 to 330,000 events).
SPLIT_MIN_RECORDS = 100_000
SPLIT_WINDOW = 4
_worker_memo = Memo()


def _detect_worker(path: Path) -> tuple[str | None, Encoding, float, str] | str:
    """Detection in a worker process: the format by name (a Format does not travel), or the error."""
    try:
        det = detect_file(path, _worker_memo)
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    except Exception as exc:
        return f"format detection failed: {type(exc).__name__}: {exc}"
    return (det.format.name if det.format else None, det.encoding, det.score, det.reason)


@dataclass
class Parsed:
    """A small text file read, hashed, decoded and parsed in a worker process."""

    raw: bytes
    sha256: str
    encoding: Encoding
    sink: TableSink | None
    error: str | None = None


def _parse_worker(job: tuple[Path, str, Encoding]) -> Parsed | str:
    path, fmt_name, encoding = job
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    digest = hashlib.sha256(raw).hexdigest()
    fmt = FORMATS[fmt_name]
    sink = TableSink()
    try:
        if fmt.parse_file is not None:  # a small binary or bulk-format file: its own reader
            fmt.parse_file(path, encoding, sink)
        else:
            decoded = decode(raw, encoding if len(raw) <= SNIFF_BYTES else None)
            encoding = decoded.encoding
            fmt.parse_text(decoded.text, sink)  # type: ignore[misc]
        sink.close()
    except Exception as exc:
        return Parsed(raw, digest, encoding, None, f"parser failed: {type(exc).__name__}: {exc}")
    return Parsed(raw, digest, encoding, sink)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _pool(count: int) -> ProcessPoolExecutor | None:
    """Worker processes for a big ingest on a machine with more than one core, else None."""
    if count < POOL_MIN_FILES or _cores() < 2:
        return None
    # forkserver: workers start from a clean interpreter, never from a process holding DuckDB's threads.
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["wormhunt.sources", "wormhunt.store", "wormhunt.sources.warm"])
    return ProcessPoolExecutor(max_workers=_cores(), mp_context=ctx, initializer=_worker_init)


def _worker_init() -> None:
    """A parse worker keeps the memory it frees (glibc's defaults hand big blocks back to the
    system at once and fault them in again for the next batch: a quarter of an EVTX part's
    system time). Not for this process: a long-lived one should return what it frees."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: blocks below 32 MiB come from the heap
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD: keep up to 256 MiB of free heap
        libc.mallopt(-2, 64 << 20)  # M_TOP_PAD: grow the heap 64 MiB at a time
    except (OSError, AttributeError):  # not glibc: its defaults stand
        pass


@functools.lru_cache(maxsize=4096)
def _resolved_dir(folder: Path) -> Path:
    return folder.resolve()


def _resolved(path: Path) -> Path:
    """`path.resolve()` with the folder's resolution remembered (a bundle's dozen files share
    it)."""
    return path.resolve() if path.is_symlink() else _resolved_dir(path.parent) / path.name


def _systeminfo_host(path: Path) -> str | None:
    if path.stat().st_size > MAX_TEXT_BYTES:
        return None
    sink = MemorySink()
    FORMATS["systeminfo"].parse_text(decode(path.read_bytes()).text, sink)  # type: ignore[misc]
    names = [r["hostname"] for r in sink.of("host_info") if r.get("hostname")]
    return names[0] if names else None


def attribute_hosts(inputs: list[Input], pool: ProcessPoolExecutor | None = None) -> None:
    """Detect every input and decide which host each piece of host evidence describes."""
    todo = [item for item in inputs if not item.error]
    results: list[tuple[str | None, Encoding, float, str] | str] | None = None
    if pool is not None:
        try:
            results = list(pool.map(_detect_worker, [i.path for i in todo], chunksize=64))
        except BrokenProcessPool:
            results = None  # workers could not start or died: detect here instead
    if results is not None:
        for item, got in zip(todo, results, strict=True):
            if isinstance(got, str):
                item.error = got
            else:
                name, encoding, score, reason = got
                item.detection = Detection(FORMATS[name] if name else None, encoding, score, reason)
    else:
        memo = Memo()
        for item in todo:
            try:
                item.detection = detect_file(item.path, memo)
            except OSError as exc:
                item.error = f"cannot read: {exc.strerror or exc}"
            except Exception as exc:
                item.error = f"format detection failed: {type(exc).__name__}: {exc}"
    manifests: dict[Path, bundle.Manifest | None] = {}

    def manifest_of(path: Path) -> bundle.Manifest | None:
        for folder in _resolved(path).parents:
            if folder not in manifests:
                manifests[folder] = bundle.read_manifest(folder)
            if manifests[folder]:
                return manifests[folder]
        return None

    own_host: dict[Path, str] = {}
    names_in: dict[Path, set[str]] = {}
    for item in inputs:
        if item.detection and item.detection.format and item.detection.format.name == "systeminfo":
            try:
                name = _systeminfo_host(item.path)
            except Exception:
                name = None
            if name:
                own_host[item.path] = name
                names_in.setdefault(item.path.parent, set()).add(name)
    for item in inputs:
        fmt = item.detection.format if item.detection else None
        if fmt is not None and not fmt.host_evidence:
            continue
        folder = _resolved(item.path).parent  # `netstat.txt` given alone still has a folder name
        names = names_in.get(item.path.parent, set())
        manifest = manifest_of(item.path)
        if fmt is None and not (manifest and manifest.host) and len(names) != 1:
            continue  # an empty or unknown file belongs to a host only inside that host's bundle
        # Windows host names are case-insensitive: one spelling (upper case) joins every source.
        if manifest and manifest.host:
            item.host, item.host_source = manifest.host.upper(), "bundle manifest"
        elif item.path in own_host:
            item.host, item.host_source = own_host[item.path].upper(), "systeminfo"
        elif len(names) == 1:
            # A bundle folder: its systeminfo names the host the other outputs came from.
            item.host, item.host_source = next(iter(names)).upper(), "systeminfo"
        else:
            item.host, item.host_source = (folder.name or "unknown-host").upper(), "folder"


def ingest_one(
    case: Case, item: Input, parsed: Parsed | str | None = None, workers: _Workers | None = None
) -> ManifestEntry:
    """Ingest one file; always returns a manifest entry, whatever the file holds.
    `parsed`: the file already parsed by a worker (or the worker's error); `workers`: the pool
    that parses a big file in parts, when its format allows."""
    path = item.path
    size = path.stat().st_size if path.exists() and path.is_file() else 0
    det = item.detection
    entry = ManifestEntry(
        evidence_id=None,
        path=str(_resolved(path)) if path.exists() else str(path),
        sha256=None,
        size=size,
        format=det.format.name if det and det.format else None,
        encoding=det.encoding.label if det else None,
        host=item.host,
        host_source=item.host_source,
    )
    if item.error:
        entry.status, entry.message = "error", item.error
        case.record(entry)
        return entry
    try:
        dup_id, digest, quick = case.find_duplicate(path, item.host)
    except OSError as exc:
        entry.status, entry.message = "error", f"cannot read: {exc.strerror or exc}"
        case.record(entry)
        return entry
    if dup_id is not None:
        entry.evidence_id, entry.sha256, entry.status = dup_id, digest, "duplicate"
        entry.message = f"already in the case as evidence {dup_id}; nothing changed"
        case.record(entry)
        return entry
    entry.evidence_id = case._next_id()
    if det is None or det.format is None:
        entry.status = "empty" if det and det.reason == "empty" else "unrecognized"
        entry.message = det.reason if det else "not detected"
        entry.sha256 = digest or _sha256(path)
        case.record(entry, quick_fp=quick)
        return entry
    fmt = det.format
    if fmt.parse_file is None and size > MAX_TEXT_BYTES:
        entry.status, entry.message = "error", f"too large for a {fmt.name} file ({size} bytes)"
        entry.sha256 = digest or _sha256(path)
        case.record(entry, quick_fp=quick)
        return entry
    if fmt.parse_file is not None and size > BATCHED_STREAM_BYTES:
        with case.unbatched():  # a big log: its own transaction, its rows streamed to disk
            return _parse_and_store(case, item, entry, quick, workers=workers)
    if isinstance(parsed, str):
        entry.status, entry.message = "error", parsed
        entry.sha256 = digest or _sha256(path)
        case.record(entry, quick_fp=quick)
        return entry
    return _parse_and_store(case, item, entry, quick, parsed, workers)


def _parse_and_store(
    case: Case,
    item: Input,
    entry: ManifestEntry,
    quick: str,
    parsed: Parsed | None = None,
    workers: _Workers | None = None,
) -> ManifestEntry:
    path, det = item.path, item.detection
    assert det is not None and det.format is not None
    fmt = det.format
    con = case.con
    alone = case._pending is None  # else the batch's transaction holds this file
    if alone:
        con.execute("BEGIN TRANSACTION")
    sink = StoreSink(case, entry.evidence_id, item.host, upper_hosts=fmt.host_evidence)  # type: ignore[arg-type]
    try:
        if parsed is not None:
            raw, entry.sha256, entry.encoding = parsed.raw, parsed.sha256, parsed.encoding.label
            if parsed.error or parsed.sink is None:
                raise _WorkerFailed(parsed.error or "parser failed")
            parsed.sink.replay(sink)
        elif fmt.parse_file is not None:
            entry.sha256 = _parse_streaming(fmt, path, det, sink, workers)
            raw = None
        else:
            raw = path.read_bytes()
            entry.sha256 = hashlib.sha256(raw).hexdigest()
            # Detection saw the whole of a small file: its encoding stands, no second sniff.
            decoded = decode(raw, det.encoding if len(raw) <= SNIFF_BYTES and det.encoding.name != "binary" else None)
            entry.encoding = decoded.encoding.label
            fmt.parse_text(decoded.text, sink)  # type: ignore[misc]
        sink.close()
        _fill(entry, sink)
        copy = case.keep_copy(path, entry.sha256, raw)
        sink.commit()  # partitions are renamed into place, but only listed once the row commits
        case.insert_evidence(entry, quick_fp=quick, copy=copy)
        if alone:
            con.execute("COMMIT")
    except Exception as exc:
        if alone:
            with contextlib.suppress(duckdb.Error):  # a failed COMMIT has already ended the transaction
                con.execute("ROLLBACK")
        sink.abort()
        entry.status = "error"
        entry.message = str(exc) if isinstance(exc, _WorkerFailed) else f"parser failed: {type(exc).__name__}: {exc}"
        entry.records, entry.skipped, entry.skip_reasons, entry.skip_examples = 0, 0, {}, []
        entry.sha256 = entry.sha256 or _sha256(path)
        case.record(entry, quick_fp=quick)
        return entry
    if sink.writers:  # only Parquet partitions change what the bulk views list
        case.views_changed()
    case.append_manifest(entry)
    return entry


class _WorkerFailed(Exception):
    """A worker's parse failed; its message is already the manifest's."""


class _Hasher:
    """sha256 on a background thread, fed block by block in file order (hashlib releases
    the GIL), so a huge log is read once and hashed while it is parsed."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.fed = 0  # bytes queued
        self.blocks: queue.Queue[tuple[memoryview | bytes, threading.Event] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.blocks.get()) is not None:
            block, done = item
            self.sha.update(block)
            done.set()

    def put(self, block: memoryview | bytes) -> Callable[[], object]:
        """Queue a block; returns a wait for when its buffer may be reused."""
        done = threading.Event()
        self.fed += len(block)
        self.blocks.put((block, done))
        return done.wait

    def hexdigest(self) -> str:
        self.blocks.put(None)
        self.thread.join()
        return self.sha.hexdigest()


def _parse_streaming(fmt: Format, path: Path, det: Detection, sink: StoreSink, workers: _Workers | None = None) -> str:
    """Run a streaming parser; returns the file's sha256, computed alongside. A big file whose
    format parses in parts is parsed by the worker processes, part by part."""
    parts = _split_parts(fmt, path) if workers is not None else None
    if parts and workers is not None and workers.ensure() is not None:
        digest: list[str | Exception] = []

        def hash_file() -> None:
            try:
                digest.append(sha256_file(path))
            except Exception as exc:  # raised again below, in this thread
                digest.append(exc)

        hashing = threading.Thread(target=hash_file, daemon=True)
        hashing.start()
        try:
            _parse_split(fmt, path, parts, sink, workers)
        finally:
            hashing.join()
        if isinstance(digest[0], Exception):
            raise digest[0]
        return digest[0]
    hasher = _Hasher()
    sink.tap = hasher.put
    try:
        fmt.parse_file(path, det.encoding, sink)  # type: ignore[misc]
    finally:
        digest = hasher.hexdigest()
    if not hasher.fed and path.stat().st_size:  # a reader that does not feed the tap (pcap)
        digest = sha256_file(path)
    return digest


def _split_parts(fmt: Format, path: Path) -> list[Any] | None:
    """The parts the workers parse the file in, or None when it is not worth splitting."""
    if fmt.parts is None or fmt.part_records is None or path.stat().st_size <= BATCHED_STREAM_BYTES:
        return None
    parts = fmt.parts(path)
    worth = len(parts) > 1 and sum(fmt.part_records(path, p) or 0 for p in parts) >= SPLIT_MIN_RECORDS
    return parts if worth else None


def _part_worker(job: tuple[Path, str, Any, str | None]) -> tuple[TableSink, int]:
    path, fmt_name, part, spool = job
    sink = TableSink(spool)
    used = FORMATS[fmt_name].parse_part(path, part, sink)  # type: ignore[misc]
    sink.close()
    return sink, used


def _parse_split(fmt: Format, path: Path, parts: list[Any], sink: StoreSink, workers: _Workers) -> None:
    """The file's parts parsed by the workers, at most `SPLIT_WINDOW` in flight, and stored
    here in file order with their line numbers continued. When the pool breaks, the parts in
    flight are parsed again one by one in a fresh pool: one that breaks that too is halved and
    each half tried alone, down to a few chunks, which are then counted as lost, never parsed
    in this process (they may be what exhausted the worker's memory). With no pool left, this
    process parses the parts not yet started, as it parses any big log."""
    Flying = tuple[Future[tuple[TableSink, int]], Any, ProcessPoolExecutor]
    flying: deque[Flying] = deque()
    queued = iter(parts)
    offset = 0

    def fill() -> None:
        while len(flying) < SPLIT_WINDOW and (pool := workers.pool) is not None:
            part = next(queued, None)
            if part is None:
                return
            try:
                flying.append((pool.submit(_part_worker, (path, fmt.name, part, workers.spool())), part, pool))
            except BrokenProcessPool:
                flying.append((_broken(), part, pool))  # type: ignore[arg-type]

    def store(got: TableSink, used: int) -> None:
        nonlocal offset
        got.replay(sink, offset)
        offset += used

    def lose(part: Any) -> None:
        nonlocal offset
        lost = (fmt.part_records(path, part) if fmt.part_records else None) or 1
        sink.skip_many(lost, 0, "part of the file lost: its worker process died (out of memory or killed)")
        offset += lost

    def alone(part: Any, suspect: bool = False) -> None:
        """`suspect`: a piece of a part that killed a worker on its own; never parsed here."""
        if (pool := workers.pool) is None:
            if suspect:
                lose(part)
            else:
                store(*_part_worker((path, fmt.name, part, None)))
            return
        try:
            store(*pool.submit(_part_worker, (path, fmt.name, part, workers.spool())).result())
        except BrokenProcessPool:
            workers.renew(pool)
            halves = fmt.halve_part(part) if fmt.halve_part and workers.pool is not None else []
            if not halves:
                lose(part)
            for half in halves:  # narrow down what kills the worker: only a small piece is lost
                alone(half, suspect=True)

    fill()
    while flying:
        future, part, pool = flying.popleft()
        try:
            store(*future.result())
        except BrokenProcessPool:
            stranded = [part, *(p for _, p, _ in flying)]
            flying.clear()
            workers.renew(pool)
            for p in stranded:
                alone(p)
        fill()
    for part in queued:  # no pool left
        store(*_part_worker((path, fmt.name, part, None)))


def _fill(entry: ManifestEntry, sink: StoreSink) -> None:
    entry.records = sink.records
    entry.skipped = sink.skipped
    entry.skip_reasons = dict(sink.skip_counts)
    entry.skip_examples = [{"line": s.line, "reason": s.reason, "text": s.text} for s in sink.skips]
    entry.warnings = list(sink.meta.get("warnings", []))
    if sink.meta.get("local_time"):
        entry.warnings.append({"code": "local_time", "detail": "some times had no zone and are device-local"})
    if sink.meta.get("year_guessed"):
        entry.warnings.append(
            {"code": "year_guessed", "detail": "syslog times without a year: the year was taken from the file date"}
        )
    if sink.meta.get("events_lost"):
        entry.warnings.append(
            {"code": "events_lost", "detail": f"the log says {sink.meta['events_lost']} events were lost"}
        )
    if sink.meta.get("merged_lines"):
        entry.warnings.append(
            {"code": "merged_lines", "detail": f"{sink.meta['merged_lines']} lines merged into their session's record"}
        )
    if entry.records == 0:
        entry.status = "empty" if entry.skipped == 0 else "no records"
        entry.message = "recognised, but no usable records" if entry.skipped else "recognised, but empty"


def _sha256(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def ingest(
    case: Case,
    paths: Iterable[Path],
    on_file: Callable[[ManifestEntry], None] | None = None,
    on_inputs: Callable[[list[Input]], None] | None = None,
) -> list[ManifestEntry]:
    """Ingest every file under `paths` into `case`; returns one manifest entry per file.

    `on_inputs` sees the whole list once it is known (for a progress bar), `on_file` each entry."""
    inputs = _open_bundles(case, walk(paths))
    pool = _pool(len(inputs))
    workers = _Workers(pool)  # without a pool now, one starts for a file parsed in parts
    try:
        attribute_hosts(inputs, pool)
        if on_inputs:
            on_inputs(inputs)
        # Small text files are parsed by the workers, in order, while this process stores.
        jobs = [i for i, item in enumerate(inputs) if _pooled(item)] if pool else []
        parsed = _in_order(workers, [_job(inputs[i]) for i in jobs]) if pool else iter(())
        pooled = set(jobs)
        entries = []
        with case.batch():
            for i, item in enumerate(inputs):
                entry = ingest_one(case, item, next(parsed) if i in pooled else None, workers)
                entries.append(entry)
                if on_file:
                    on_file(entry)
    finally:
        workers.shutdown()
    return entries


def _parse_batch(jobs: list[tuple[Path, str, Encoding]]) -> list[Parsed | str]:
    return [_parse_worker(job) for job in jobs]


class _Workers:
    """The worker pool, replaced when it breaks (a worker killed by the OS, e.g. out of memory
    on a hostile file), at most `POOL_RESTARTS` times."""

    def __init__(self, pool: ProcessPoolExecutor | None) -> None:
        self.pool: ProcessPoolExecutor | None = pool
        self.restarts = 0
        self.started = pool is not None
        self._spool: str | None = None

    def spool(self) -> str | None:
        """The folder big worker results come back through (`TableSink`), made on first use and
        removed with the pool, results never read included; None when none can be made."""
        if self._spool is None:
            try:
                self._spool = spool_folder()
            except OSError:
                return None
        return self._spool

    def ensure(self) -> ProcessPoolExecutor | None:
        """The pool, started now if the ingest began without one (None on one core)."""
        if not self.started:
            self.started = True
            self.pool = _pool(POOL_MIN_FILES)
        return self.pool

    def renew(self, broken: ProcessPoolExecutor | None) -> None:
        """Replace `broken` (the pool a failed future came from); nothing to do when it has
        already been replaced, by whoever saw it break first."""
        if broken is not self.pool:
            return
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        self.restarts += 1
        self.pool = _pool(POOL_MIN_FILES) if self.restarts <= POOL_RESTARTS else None
        if self.pool is not None:
            try:  # a pool that cannot even start must not make a file look guilty
                self.pool.submit(int).result()
            except BrokenProcessPool:
                self.pool.shutdown(wait=False)
                self.pool = None

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        if self._spool is not None:
            release_spool(self._spool)


def _in_order(workers: _Workers, jobs: list[tuple[Path, str, Encoding]]) -> Iterator[Parsed | str | None]:
    """Worker results in job order, at most `POOL_WINDOW` batches in flight: memory stays
    bounded when the workers parse faster than this process stores. When the pool breaks, the
    files that were in flight are parsed again one by one in a fresh pool, so the file that
    killed a worker is named (an error entry) and the others are kept; None means: parse it
    here (no pool left)."""
    batches = [jobs[i : i + POOL_BATCH] for i in range(0, len(jobs), POOL_BATCH)]
    Flying = tuple[Future[list[Parsed | str]], list[tuple[Path, str, Encoding]], ProcessPoolExecutor]
    flying: deque[Flying] = deque()
    queued = iter(batches)

    def fill() -> bool:
        while len(flying) < POOL_WINDOW and (pool := workers.pool) is not None:
            batch = next(queued, None)
            if batch is None:
                return True
            try:
                flying.append((pool.submit(_parse_batch, batch), batch, pool))
            except BrokenProcessPool:
                flying.append((_broken(), batch, pool))
        return True

    fill()
    while flying:
        future, batch, pool = flying[0]
        try:
            done = future.result()
        except BrokenProcessPool:
            stranded = [job for _, b, _ in flying for job in b]
            flying.clear()
            workers.renew(pool)
            yield from _isolate(workers, stranded)
            fill()
            continue
        flying.popleft()
        fill()
        yield from done
    for batch in queued:  # no pool left: this process parses the rest
        yield from [None] * len(batch)


def _broken() -> Future[list[Parsed | str]]:
    future: Future[list[Parsed | str]] = Future()
    future.set_exception(BrokenProcessPool("the worker pool is broken"))
    return future


def _isolate(workers: _Workers, jobs: list[tuple[Path, str, Encoding]]) -> Iterator[Parsed | str | None]:
    """Each job alone in the pool: one that breaks a fresh pool is the culprit."""
    for job in jobs:
        if (pool := workers.pool) is None:
            yield None
            continue
        try:
            yield pool.submit(_parse_batch, [job]).result()[0]
        except BrokenProcessPool:
            yield "parser failed: the worker process parsing this file died (out of memory or killed)"
            workers.renew(pool)


def _pooled(item: Input) -> bool:
    """Parsed by a worker: a small file of any format (a big one is streamed here, or parsed in
    parts by the workers)."""
    det = item.detection
    if item.error or det is None or det.format is None:
        return False
    if det.format.parse_text is None and det.format.parse_file is None:
        return False
    try:
        return item.path.stat().st_size <= POOL_MAX_BYTES
    except OSError:
        return False


def _job(item: Input) -> tuple[Path, str, Encoding]:
    assert item.detection is not None and item.detection.format is not None
    return (item.path, item.detection.format.name, item.detection.encoding)


def _open_bundles(case: Case, inputs: list[Input]) -> list[Input]:
    """Replace each zip by the files of its safely extracted copy under the case folder
    (`bundles/<name>-<sha256 prefix>`; the same zip again reuses it)."""
    out: list[Input] = []
    for item in inputs:
        if item.error or not bundle.is_zip(item.path):
            out.append(item)
            continue
        digest = _sha256(item.path)
        if digest is None:
            out.append(Input(item.path, error="cannot read"))
            continue
        dest = case.root / "bundles" / f"{item.path.stem[:60]}-{digest[:12]}"
        if not dest.is_dir():
            staging = dest.with_name(dest.name + ".part")
            shutil.rmtree(staging, ignore_errors=True)
            try:
                bundle.safe_extract(item.path, staging)
            except bundle.BundleError as exc:
                shutil.rmtree(staging, ignore_errors=True)
                out.append(Input(item.path, error=f"unsafe or damaged bundle zip: {exc}"))
                continue
            staging.rename(dest)
        out.extend(walk([dest]))
    return out
