"""The case store: a directory with `case.duckdb` and `evidence/manifest.jsonl`.

One table per record kind (model.py), every row carrying its evidence id, line and host.
An evidence file's rows and its evidence row commit together (alone, or with a batch of
other small files inside `Case.batch()`), so a failure leaves no half file behind, and a
file already in the case (same sha256) is not ingested again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc
import pyarrow.parquet as pq

from wormhunt.model import KINDS, Kind
from wormhunt.sources.base import MAX_SKIP_EXAMPLES, Sink, Skip
from wormhunt.sources.text import decode, decode_value

# Files up to this size are copied into the case so reports can quote them later.
COPY_LIMIT = 64 * 1024 * 1024
ROW_BATCH = 50_000
# Record kinds that can run to billions of rows: stored as Parquet partitions (one per big
# evidence file, one per batch of small ones) under tables/<kind>/, read through a DuckDB view
# of the same name. Parquet writes several times faster than DuckDB's own storage, and Spark
# or ClickHouse read it as is.
BULK_KINDS = ("flows", "net_alerts", "events")
# Above this many rows a file's bulk rows get a partition of their own even inside a batch.
BATCHED_BULK_ROWS = 200_000
GLOB_CHARS = frozenset("*?[]{}")
# Bytes read at each end of a file for the quick fingerprint that spares hashing huge
# files twice: only a fingerprint match triggers the full sha256 comparison.
FINGERPRINT_BYTES = 1024 * 1024


@dataclass
class ManifestEntry:
    evidence_id: int | None
    path: str
    sha256: str | None
    size: int
    format: str | None
    encoding: str | None
    host: str | None
    host_source: str | None
    records: int = 0
    skipped: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    skip_examples: list[dict[str, Any]] = field(default_factory=list)
    status: str = "ingested"  # ingested | duplicate | unrecognized | empty | error
    message: str | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)
    ingested_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # values are plain JSON already


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:  # file_digest reads into one reused buffer: no allocation per block
        return hashlib.file_digest(fh, "sha256").hexdigest()


def quick_fingerprint(path: Path) -> str:
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(FINGERPRINT_BYTES))
        if size > 2 * FINGERPRINT_BYTES:
            fh.seek(size - FINGERPRINT_BYTES)
            h.update(fh.read(FINGERPRINT_BYTES))
    return h.hexdigest()


ROW_GROUP_MIN = 100_000


class _PartitionWriter:
    """Writes one evidence file's rows of a bulk kind to a Parquet partition on a background
    thread (bounded queue), so storing overlaps parsing. Renamed into place on commit."""

    def __init__(self, tmp: Path, final: Path, schema: pa.Schema) -> None:
        self.tmp, self.final = tmp, final
        self.queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.writer = pq.ParquetWriter(tmp, schema, compression="zstd", compression_level=1)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        # Small tables (the parts of a log parsed in pieces) are gathered into row groups of at
        # least ROW_GROUP_MIN rows: thousands of tiny row groups cost more to write and to scan.
        held: list[pa.Table] = []
        rows = 0
        while True:
            table = self.queue.get()
            if table is not None:
                held.append(table)
                rows += table.num_rows
                if rows < ROW_GROUP_MIN:
                    continue
            if held and self.error is None:
                try:
                    self.writer.write_table(pa.concat_tables(held), row_group_size=256_000)
                except BaseException as exc:
                    self.error = exc
            held, rows = [], 0
            if table is None:
                return

    def put(self, table: pa.Table) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(table)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self.writer.close()
        if self.error is not None:
            raise self.error


def _rows_table(kind: Kind, rows: list[dict[str, Any]]) -> pa.Table:
    return pa.table({c.name: pa.array([r.get(c.name) for r in rows], c.arrow) for c in kind.all_columns})


class ArrowSink(Sink):
    """Turns parsed rows into Arrow tables of their kind's columns, `ROW_BATCH` rows at a time;
    a row whose value does not fit its column is skipped and counted, the rest kept.
    Subclasses decide where each table goes (`_insert`)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: dict[str, list[dict[str, Any]]] = {}

    def _row(self, kind: Kind, values: dict[str, Any]) -> None:
        rows = self.pending.setdefault(kind.name, [])
        rows.append(values)
        if len(rows) >= ROW_BATCH:
            self._flush(kind)

    def _flush(self, kind: Kind) -> None:
        rows = self.pending.pop(kind.name, [])
        if not rows:
            return
        try:
            table = _rows_table(kind, rows)
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            # A value a parser let through does not fit its column: drop that row, keep the rest.
            good = []
            for row in rows:
                try:
                    _rows_table(kind, [row])
                    good.append(row)
                except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
                    self.records -= 1
                    self.skip(
                        int(row.get("line") or 0), "value does not fit its column", f"{type(exc).__name__}: {exc}"
                    )
            if not good:
                return
            table = _rows_table(kind, good)
        self._insert(kind, table)

    def _batch(self, kind: Kind, table: pa.Table) -> None:
        self._insert(kind, table)

    def _insert(self, kind: Kind, table: pa.Table) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Flush every kind's remaining rows."""
        for name in list(self.pending):
            self._flush(KINDS[name])


SPOOL_BYTES = 1 << 20  # a worker's result at least this big comes back through a spool file


class TableSink(ArrowSink):
    """Keeps each kind's tables (a parse in a worker process hands them to the case's sink).

    With a `spool` folder, a result of `SPOOL_BYTES` or more crosses to the other process as an
    Arrow IPC file there instead of through the pool's pipe: multiprocessing reads a big pickle
    64 KiB at a time into a buffer it keeps reallocating (4 CPU-seconds in the receiving
    process for the 400 MB of rows of 1M events), where the file is mapped once and unlinked.
    A spool that is full or unwritable leaves the tables in the pickle. The receiving side reads
    the file in `replay`, on its own thread (not in the pool's result thread, where an error
    would mark the whole pool broken)."""

    def __init__(self, spool: str | None = None) -> None:
        super().__init__()
        self.tables: dict[str, list[pa.Table]] = {}
        self.spool = spool

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self.spool and sum(t.nbytes for ts in self.tables.values() for t in ts) >= SPOOL_BYTES:
            spooled: dict[str, Any] = {}
            try:
                for name, tables in self.tables.items():
                    spooled[name] = _spool(self.spool, tables)
            except Exception:  # a full spool, a table it cannot write: the pipe carries them
                for v in spooled.values():
                    with contextlib.suppress(OSError):
                        os.unlink(v)
                return state
            state["tables"] = spooled
        return state

    def _insert(self, kind: Kind, table: pa.Table) -> None:
        self.tables.setdefault(kind.name, []).append(table)

    def replay(self, sink: Sink, line_offset: int = 0) -> None:
        """Give another sink everything this one received: tables, counts, skips, notes.
        `line_offset`: this sink held one part of a file, numbered from 1 within the part."""
        try:
            got = {name: _unspool(t) if isinstance(t, str) else t for name, t in self.tables.items()}
        except (OSError, pa.ArrowException) as exc:
            sink.skip_many(
                self.records, 0, "part of the file lost: its worker's result could not be read back", str(exc)
            )
            for t in self.tables.values():
                if isinstance(t, str):
                    with contextlib.suppress(OSError):
                        os.unlink(t)
            got, lost = {}, True
        else:
            lost = False
        for name, tables in got.items():
            for table in tables:
                if line_offset:
                    i = table.schema.get_field_index("line")
                    table = table.set_column(i, "line", pc.add(table.column(i), line_offset))
                sink._batch(KINDS[name], table)
        sink.records += 0 if lost else self.records
        sink.skip_counts.update(self.skip_counts)
        room = MAX_SKIP_EXAMPLES - len(sink.skips)
        sink.skips.extend(
            Skip(s.line + line_offset if s.line > 0 else s.line, s.reason, s.text) for s in self.skips[: max(0, room)]
        )
        for key, value in self.meta.items():  # several parts of one file: lists join, flags and counts add up
            have = sink.meta.get(key)
            if isinstance(value, list):
                sink.meta[key] = [*(have if isinstance(have, list) else []), *value]
            elif isinstance(value, bool):
                sink.meta[key] = bool(have) or value
            elif isinstance(value, int) and isinstance(have, int) and not isinstance(have, bool):
                sink.meta[key] = have + value
            else:
                sink.meta[key] = value


def _spool(folder: str, tables: list[pa.Table]) -> str:
    fd, path = tempfile.mkstemp(dir=folder, suffix=".arrows")
    os.close(fd)
    try:
        with pa.OSFile(path, "wb") as out, pa.ipc.new_stream(out, tables[0].schema) as writer:
            for t in tables:
                writer.write_table(t)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return path


def _unspool(path: str) -> list[pa.Table]:
    """The tables of a spool file, which is removed: mapped on POSIX (the mapping outlives the
    name), read and closed first elsewhere (Windows does not remove an open file)."""
    try:
        if os.name == "posix":
            table = pa.ipc.open_stream(pa.memory_map(path)).read_all()
        else:
            with pa.OSFile(path) as source:
                table = pa.ipc.open_stream(source).read_all()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return [table]


SPOOL_PREFIX = "wormhunt-spool-"
SPOOL_ROOM = 512 << 20  # /dev/shm is used when it has this much free (Docker gives 64 MiB)
_SPOOL_LOCKS: dict[str, Any] = {}  # folder -> its lock file, held while the folder is in use


def spool_folder() -> str:
    """A new folder for worker results: in memory (/dev/shm) where there is one with room, else
    the temporary folder. It holds a lock file, locked until `release_spool`; folders whose lock
    nobody holds (left by a killed ingest) are removed first, in both places, before the room is
    measured. (A lock rather than a process id: it holds across PID namespaces sharing /dev/shm.)"""
    shm = "/dev/shm"
    places = [p for p in (shm, tempfile.gettempdir()) if os.path.isdir(p)]
    for place in places:
        for old in Path(place).glob(SPOOL_PREFIX + "*"):
            _remove_if_abandoned(old)
    base = None
    with contextlib.suppress(OSError):
        st = os.statvfs(shm)
        if os.access(shm, os.W_OK) and st.f_bavail * st.f_frsize >= SPOOL_ROOM:
            base = shm
    folder = tempfile.mkdtemp(prefix=SPOOL_PREFIX, dir=base)
    with contextlib.suppress(OSError, ImportError):
        import fcntl

        lock = open(os.path.join(folder, ".lock"), "wb")  # noqa: SIM115 - held until release_spool
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _SPOOL_LOCKS[folder] = lock
    return folder


def release_spool(folder: str) -> None:
    """Remove a spool folder (results never read included) and drop its lock."""
    shutil.rmtree(folder, ignore_errors=True)
    lock = _SPOOL_LOCKS.pop(folder, None)
    if lock is not None:
        lock.close()


def _remove_if_abandoned(folder: Path) -> None:
    """Remove a spool folder whose lock file nobody holds (POSIX; elsewhere nothing is removed)."""
    if str(folder) in _SPOOL_LOCKS:
        return
    try:
        import fcntl

        with open(folder / ".lock", "rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by a live ingest: BlockingIOError
            shutil.rmtree(folder, ignore_errors=True)
    except (OSError, ImportError):
        return


class StoreSink(ArrowSink):
    """Writes parsed rows into the case for one evidence file: small kinds into DuckDB tables,
    bulk kinds (flows, alerts) into a Parquet partition that the kind's view reads."""

    def __init__(self, case: Case, evidence_id: int, host: str | None, upper_hosts: bool = False) -> None:
        super().__init__()
        self.case = case
        self.con = case.con
        self.evidence_id = evidence_id
        self.host = host
        self.upper_hosts = upper_hosts  # Windows host names: one spelling, so sources join
        self.tables: dict[str, list[pa.Table]] = {}  # small kinds (and batched bulk rows), stored on commit
        self.writers: dict[str, _PartitionWriter] = {}
        self.batched = case._pending is not None  # in a batch: one transaction (and partition) for many files
        self.tap: Callable[[Any], None] | None = None

    def _insert(self, kind: Kind, table: pa.Table) -> None:
        n = table.num_rows
        table = table.set_column(
            table.schema.get_field_index("evidence_id"),
            "evidence_id",
            pa.array(np.full(n, self.evidence_id, np.int32)),
        )
        idx = table.schema.get_field_index("host")
        host = table.column(idx)
        if self.host is not None:
            host = pc.coalesce(host, pa.scalar(self.host))
        if self.upper_hosts:
            host = pc.utf8_upper(host)
        table = table.set_column(idx, "host", host)
        if kind.name in BULK_KINDS and self.batched and kind.name not in self.writers:
            # A small file's bulk rows join its batch's one partition (see `Case.flush`); a big
            # one gets its own partition, written as it is parsed, like a streamed log.
            held = self.tables.setdefault(kind.name, [])
            held.append(table.cast(kind.arrow_schema))
            if sum(t.num_rows for t in held) <= BATCHED_BULK_ROWS:
                return
            table = pa.concat_tables(self.tables.pop(kind.name))
        if kind.name in BULK_KINDS:
            writer = self.writers.get(kind.name)
            if writer is None:
                final = self.case.partition(kind.name, self.evidence_id)
                writer = self.writers[kind.name] = _PartitionWriter(final.with_suffix(".tmp"), final, kind.arrow_schema)
            writer.put(table.cast(kind.arrow_schema))
            return
        self.tables.setdefault(kind.name, []).append(table)

    def close(self) -> None:
        """Flush everything; partitions are complete but not yet visible."""
        super().close()
        for writer in self.writers.values():
            writer.close()

    def commit(self) -> None:
        """Store the rows: into the open transaction, or the case's pending batch."""
        for name, tables in self.tables.items():
            self.case.store_rows(name, tables)
        for writer in self.writers.values():
            writer.tmp.replace(writer.final)
        if self.writers and self.case._pending is not None:
            self.case._pending.partitions = True

    def abort(self) -> None:
        for writer in self.writers.values():
            with contextlib.suppress(BaseException):
                writer.close()
            writer.tmp.unlink(missing_ok=True)
            writer.final.unlink(missing_ok=True)


@dataclass
class _Pending:
    """Evidence of small files waiting for one shared transaction (see `Case.batch`)."""

    next_id: int
    known: dict[tuple[str, str | None], list[tuple[int, str | None]]]  # (quick fp, host) -> ids
    evidence: list[list[Any]] = field(default_factory=list)
    skipped: list[list[Any]] = field(default_factory=list)
    tables: dict[str, list[pa.Table]] = field(default_factory=dict)
    manifest: list[str] = field(default_factory=list)
    rows: int = 0
    partitions: bool = False


# A batch commits after this many files or rows: a crash loses at most this much work.
BATCH_FILES = 2000
BATCH_ROWS = 500_000
_EVIDENCE_COLUMNS = [
    *("evidence_id", "sha256", "quick_fp", "path", "size", "format", "encoding"),
    *("host", "host_source", "records", "skipped", "status", "copy", "ingested_at"),
]
DUPLICATE_OF = ("ingested", "empty", "no records")  # statuses a later copy is a duplicate of


class Case:
    """A case directory. Use as a context manager or call close()."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        if GLOB_CHARS.intersection(str(self.root.resolve())):
            # DuckDB expands these even in an explicit file list: another case's data could leak in.
            raise ValueError(f"case folder names may not contain any of {''.join(sorted(GLOB_CHARS))}: {self.root}")
        self.evidence_dir = self.root / "evidence"
        self.files_dir = self.evidence_dir / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.manifest_path = self.evidence_dir / "manifest.jsonl"
        self.db_path = self.root / "case.duckdb"
        # Bounded memory whatever the case size: DuckDB spills to the case folder beyond this.
        config = {
            "memory_limit": os.environ.get("WORMHUNT_MEMORY", "1GB"),
            "temp_directory": str((self.root / ".tmp").resolve()),
        }
        self.con = duckdb.connect(str(self.db_path), config=config)
        self._lines: dict[int, list[str]] = {}
        self._pending: _Pending | None = None
        self._views_deferred = False  # inside `unbatched`: bulk views are refreshed at the batch's commit
        self._views_stale = False
        self._schema()
        self._drop_leftovers()
        self.refresh_views()

    def __enter__(self) -> Case:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def _schema(self) -> None:
        self.con.execute(
            """CREATE TABLE IF NOT EXISTS evidence (
                evidence_id INTEGER PRIMARY KEY, sha256 VARCHAR, quick_fp VARCHAR, path VARCHAR,
                size BIGINT, format VARCHAR, encoding VARCHAR, host VARCHAR, host_source VARCHAR,
                records BIGINT, skipped BIGINT, status VARCHAR, copy VARCHAR, ingested_at VARCHAR)"""
        )
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS skipped (evidence_id INTEGER, line BIGINT, reason VARCHAR, text VARCHAR)"
        )
        for kind in KINDS.values():
            if kind.name in BULK_KINDS:
                folder = self.root / "tables" / kind.name
                folder.mkdir(parents=True, exist_ok=True)
                empty = folder / "e000000.parquet"  # keeps the view valid before any evidence
                if not empty.exists():
                    pq.write_table(kind.arrow_schema.empty_table(), empty)
                continue
            cols = ", ".join(f'"{c.name}" {c.sql}' for c in kind.all_columns)
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {kind.name} ({cols})")

    def _drop_leftovers(self) -> None:
        """Remove partitions a crash left without a committed evidence row (their id is reused)."""
        rows = self.con.execute("SELECT evidence_id FROM evidence WHERE status = 'ingested'").fetchall()
        ingested = {r[0] for r in rows}
        for name in BULK_KINDS:
            for p in (self.root / "tables" / name).glob("e*"):
                stem = p.name.split(".")[0][1:]
                if p.suffix == ".tmp" or (stem.isdigit() and int(stem) != 0 and int(stem) not in ingested):
                    p.unlink(missing_ok=True)

    def refresh_views(self) -> None:
        """Point each bulk kind's view at exactly the partitions of ingested evidence.

        An explicit file list, not a glob: a partition left behind by a crash before its
        evidence row committed stays invisible (glob characters in the case path are refused).
        """
        for name in BULK_KINDS:
            files = self.partitions(name)
            listing = ", ".join("'" + str(p.resolve()).replace("'", "''") + "'" for p in files)
            self.con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet([{listing}])")

    def partitions(self, kind: str) -> list[Path]:
        """The Parquet files of a bulk kind that belong to ingested evidence (the empty
        schema file first, so the list is never empty)."""
        ingested = {
            int(r[0]) for r in self.con.execute("SELECT evidence_id FROM evidence WHERE status = 'ingested'").fetchall()
        }
        folder = self.root / "tables" / kind
        return [folder / "e000000.parquet"] + [
            p for p in sorted(folder.glob("e*.parquet")) if p.stem[1:].isdigit() and int(p.stem[1:]) in ingested
        ]

    def partition(self, kind: str, evidence_id: int) -> Path:
        return self.root / "tables" / kind / f"e{evidence_id:06d}.parquet"

    # -- evidence bookkeeping -------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Ingest many small files with one transaction per `BATCH_FILES` files instead of one
        each (a per-file transaction costs more than parsing a host's netstat). Ids and the
        duplicate index are kept in memory meanwhile; manifest lines follow each commit."""
        if self._pending is not None:
            yield
            return
        self._pending = self._new_pending()
        try:
            yield
            self.flush()
        finally:
            self._pending = None
            if self._views_stale:  # once per batch: listing every partition costs per file listed
                self._views_stale = False
                self.refresh_views()

    @contextlib.contextmanager
    def unbatched(self) -> Iterator[None]:
        """Commit what is pending and step out of the batch (a big log gets its own transaction)."""
        pending = self._pending
        if pending is None:
            yield
            return
        first = pending.next_id - 1  # the big log's own id was taken from the batch already
        self.flush()
        self._pending = None
        self._views_deferred = True
        try:
            yield
        finally:
            self._views_deferred = False
            # Rebuilding the duplicate index from the table for every big log would make many
            # logs cost the square of their number: add what this one wrote, keep the rest.
            for fp, host, eid, sha in self.con.execute(
                "SELECT quick_fp, host, evidence_id, sha256 FROM evidence"
                " WHERE evidence_id >= ? AND list_contains(?, status)",
                [first, list(DUPLICATE_OF)],
            ).fetchall():
                pending.known.setdefault((fp, host), []).append((eid, sha))
            pending.next_id = self._db_next_id()
            self._pending = pending

    def views_changed(self) -> None:
        """Partitions were committed: refresh the bulk views now, or when the batch commits
        (nothing reads them during an ingest, and listing every partition after every big
        log would cost the square of their number)."""
        if self._views_deferred or self._pending is not None:
            self._views_stale = True
        else:
            self.refresh_views()

    def _new_pending(self) -> _Pending:
        known: dict[tuple[str, str | None], list[tuple[int, str | None]]] = {}
        rows = self.con.execute(
            "SELECT quick_fp, host, evidence_id, sha256 FROM evidence WHERE list_contains(?, status)",
            [list(DUPLICATE_OF)],
        ).fetchall()
        for fp, host, eid, sha in rows:
            known.setdefault((fp, host), []).append((eid, sha))
        return _Pending(self._db_next_id(), known)

    def flush(self) -> None:
        """Commit the pending batch: evidence rows, record rows, then the manifest lines."""
        p = self._pending
        if p is None:
            return
        if not (p.evidence or p.manifest):
            return
        # The batch's bulk rows (events of many small logs) go to one Parquet partition per kind,
        # named after the lowest evidence id in it: renamed into place before the commit, it is
        # listed only if that evidence row committed, and dropped on reopen otherwise.
        written: list[Path] = []
        self.con.execute("BEGIN TRANSACTION")
        try:
            if p.evidence:
                cols = list(zip(*p.evidence, strict=True))
                self._insert_arrow("evidence", pa.table(dict(zip(_EVIDENCE_COLUMNS, cols, strict=True))))
            if p.skipped:
                cols = list(zip(*p.skipped, strict=True))
                names = ["evidence_id", "line", "reason", "text"]
                self._insert_arrow("skipped", pa.table(dict(zip(names, cols, strict=True))))
            for name, tables in p.tables.items():
                if name in BULK_KINDS:
                    written.append(self._write_partition(name, tables))
                else:
                    self._insert_rows(name, tables)
            self.con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                self.con.execute("ROLLBACK")
            for path in written:
                path.unlink(missing_ok=True)
            raise
        with open(self.manifest_path, "a", encoding="utf-8") as fh:
            fh.writelines(p.manifest)
        if p.partitions:
            self._views_stale = True  # refreshed when the batch ends
        p.evidence, p.skipped, p.tables, p.manifest, p.rows, p.partitions = [], [], {}, [], 0, False

    def _write_partition(self, kind: str, tables: list[pa.Table]) -> Path:
        table = pa.concat_tables(tables)
        final = self.partition(kind, int(pc.min(table.column("evidence_id")).as_py()))
        tmp = final.with_suffix(".tmp")
        pq.write_table(table, tmp, compression="zstd", compression_level=1, row_group_size=256_000)
        tmp.replace(final)
        return final

    def _insert_arrow(self, table_name: str, table: pa.Table) -> None:
        self.con.register("_wh_batch", table)
        try:
            cols = ", ".join(f'"{c}"' for c in table.column_names)
            self.con.execute(f"INSERT INTO {table_name} ({cols}) SELECT {cols} FROM _wh_batch")
        finally:
            self.con.unregister("_wh_batch")

    def _insert_rows(self, kind: str, tables: list[pa.Table]) -> None:
        names = KINDS[kind].names
        self._insert_arrow(kind, pa.concat_tables([t.select(names) for t in tables]))

    def store_rows(self, kind: str, tables: list[pa.Table]) -> None:
        """Rows of a small kind: into the open transaction, or the pending batch."""
        if self._pending is None:
            self._insert_rows(kind, tables)
            return
        self._pending.tables.setdefault(kind, []).extend(tables)
        self._pending.rows += sum(t.num_rows for t in tables)
        if kind in BULK_KINDS:
            self._pending.partitions = True

    def _db_next_id(self) -> int:
        return int(self.con.execute("SELECT coalesce(max(evidence_id), 0) + 1 FROM evidence").fetchone()[0])

    def _next_id(self) -> int:
        if self._pending is not None:
            self._pending.next_id += 1
            return self._pending.next_id - 1
        return self._db_next_id()

    def find_duplicate(self, path: Path, host: str | None = None) -> tuple[int | None, str | None, str]:
        """(evidence id, sha256) of an ingested file with the same content and host, plus the
        quick fingerprint. Identical output from two hosts (an autoruns or certutil listing)
        is evidence about each of them, so it is only a duplicate for the same host."""
        fp = quick_fingerprint(path)
        if self._pending is not None:
            hits = self._pending.known.get((fp, host), [])
        else:
            # Only evidence that was read counts: a file that failed or was not recognised is tried again.
            hits = self.con.execute(
                "SELECT evidence_id, sha256 FROM evidence"
                " WHERE quick_fp = ? AND list_contains(?, status) AND host IS NOT DISTINCT FROM ?",
                [fp, list(DUPLICATE_OF), host],
            ).fetchall()
        if not hits:
            return None, None, fp
        digest = sha256_file(path)
        for eid, sha in hits:
            if sha == digest:
                return eid, sha, fp
        return None, digest, fp

    def record(self, entry: ManifestEntry, quick_fp: str | None = None, copy: str | None = None) -> None:
        """Write the evidence row (for ingested files) and append the manifest line."""
        self.insert_evidence(entry, quick_fp, copy)
        self.append_manifest(entry)

    def insert_evidence(self, entry: ManifestEntry, quick_fp: str | None = None, copy: str | None = None) -> None:
        if entry.status == "duplicate" or entry.evidence_id is None:
            return
        row = [
            entry.evidence_id,
            entry.sha256,
            quick_fp,
            entry.path,
            entry.size,
            entry.format,
            entry.encoding,
            entry.host,
            entry.host_source,
            entry.records,
            entry.skipped,
            entry.status,
            copy,
            entry.ingested_at,
        ]
        skipped = [[entry.evidence_id, s["line"], s["reason"], s["text"]] for s in entry.skip_examples]
        if self._pending is not None:
            self._pending.evidence.append(row)
            self._pending.skipped.extend(skipped)
            if entry.status in DUPLICATE_OF and quick_fp is not None:
                self._pending.known.setdefault((quick_fp, entry.host), []).append((entry.evidence_id, entry.sha256))
            return
        self.con.execute(f"INSERT INTO evidence VALUES ({', '.join(['?'] * len(row))})", row)
        if skipped:
            self.con.executemany("INSERT INTO skipped VALUES (?, ?, ?, ?)", skipped)

    def append_manifest(self, entry: ManifestEntry) -> None:
        """The manifest line of a finished file (in a batch: written once the batch commits)."""
        line = json.dumps(entry.to_json(), ensure_ascii=False, default=str) + "\n"
        p = self._pending
        if p is None:
            with open(self.manifest_path, "a", encoding="utf-8") as fh:
                fh.write(line)
            return
        p.manifest.append(line)
        # Only here, between files, may the batch commit: never between a file's evidence row and its rows.
        if len(p.manifest) >= BATCH_FILES or p.rows >= BATCH_ROWS:
            self.flush()

    def keep_copy(self, path: Path, sha256: str, data: bytes | None = None) -> str | None:
        """Keep a small evidence file inside the case, named by its hash (the source is never touched).

        Written from the bytes that were hashed when given, and renamed into place, so a copy is
        never partial and always matches its name."""
        if (len(data) if data is not None else path.stat().st_size) > COPY_LIMIT:
            return None
        dest = self.files_dir / sha256
        if not dest.exists():
            tmp = dest.with_suffix(".tmp")
            if data is not None:
                tmp.write_bytes(data)
            else:
                shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        return str(dest.relative_to(self.root))

    def manifest(self) -> list[dict[str, Any]]:
        if not self.manifest_path.exists():
            return []
        out = []
        with open(self.manifest_path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line torn by a crash while it was written
        return out

    # -- queries ----------------------------------------------------------------------------

    def query(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
        cur = self.con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def count(self, table: str) -> int:
        return int(self.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def evidence_line(self, evidence_id: int, line: int, offset: int | None = None) -> str | None:
        """The text of one evidence line, from the case copy or the original file.

        A byte offset (recorded for streamed logs) is a seek; small files are decoded once and
        kept; a large file without offsets (a transcoded UTF-16 log) is not read whole."""
        row = self.con.execute(
            "SELECT path, copy, size, format FROM evidence WHERE evidence_id = ?", [evidence_id]
        ).fetchone()
        if row is None:
            return None
        path, copy, size, fmt = row
        if fmt == "pcap":
            return f"packet {line}"  # binary evidence: the packet number is the citation
        if fmt == "evtx":  # binary too: the record, as the events table holds it
            event = self.con.execute(
                "SELECT channel, event_id, provider, record_id FROM events WHERE evidence_id = ? AND line = ? LIMIT 1",
                [evidence_id, line],
            ).fetchone()
            if event is None:
                return f"record {line}"
            channel, event_id, provider, record_id = event
            return f"record {line}: {channel} {event_id} ({provider}), EventRecordID {record_id}"
        source = self.root / copy if copy else Path(path)
        try:
            if offset is not None and offset >= 0:
                with open(source, "rb") as fh:
                    fh.seek(offset)
                    return decode_value(fh.readline(64 * 1024).rstrip(b"\r\n"))
            if evidence_id not in self._lines:
                if (size or 0) > COPY_LIMIT:
                    return None
                self._lines[evidence_id] = decode(source.read_bytes()).text.split("\n")
        except OSError:
            return None
        lines = self._lines[evidence_id]
        return lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else None
