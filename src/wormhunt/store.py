"""The case store: a directory with `case.duckdb` and `evidence/manifest.jsonl`.

One table per record kind (model.py), every row carrying its evidence id, line and host.
Each evidence file is ingested in one transaction, so a failure leaves no half file
behind, and a file already in the case (same sha256) is not ingested again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import shutil
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from wormhunt.model import KINDS, Kind
from wormhunt.sources.base import Sink

# Files up to this size are copied into the case so reports can quote them later.
COPY_LIMIT = 64 * 1024 * 1024
ROW_BATCH = 50_000
# Record kinds that can run to billions of rows: stored as Parquet partitions (one per
# evidence file) under tables/<kind>/, read through a DuckDB view of the same name. Parquet
# writes several times faster than DuckDB's own storage, and Spark or ClickHouse read it as is.
BULK_KINDS = ("flows", "net_alerts")
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
        return asdict(self)


def sha256_file(path: Path, chunk: int = 8 * 1024 * 1024) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def quick_fingerprint(path: Path) -> str:
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(FINGERPRINT_BYTES))
        if size > 2 * FINGERPRINT_BYTES:
            fh.seek(size - FINGERPRINT_BYTES)
            h.update(fh.read(FINGERPRINT_BYTES))
    return h.hexdigest()


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
        while (table := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.writer.write_table(table, row_group_size=256_000)
                except BaseException as exc:
                    self.error = exc

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


class StoreSink(Sink):
    """Writes parsed rows into the case for one evidence file: small kinds into DuckDB tables,
    bulk kinds (flows, alerts) into a Parquet partition that the kind's view reads."""

    def __init__(self, case: Case, evidence_id: int, host: str | None) -> None:
        super().__init__()
        self.case = case
        self.con = case.con
        self.evidence_id = evidence_id
        self.host = host
        self.pending: dict[str, list[dict[str, Any]]] = {}
        self.writers: dict[str, _PartitionWriter] = {}
        self.tap: Callable[[Any], None] | None = None

    def _row(self, kind: Kind, values: dict[str, Any]) -> None:
        rows = self.pending.setdefault(kind.name, [])
        rows.append(values)
        if len(rows) >= ROW_BATCH:
            self._flush(kind)

    def _flush(self, kind: Kind) -> None:
        rows = self.pending.pop(kind.name, [])
        if rows:
            columns = {c.name: [r.get(c.name) for r in rows] for c in kind.all_columns}
            self._insert(kind, pa.table({c.name: pa.array(columns[c.name], c.arrow) for c in kind.all_columns}))

    def _batch(self, kind: Kind, table: pa.Table) -> None:
        self._insert(kind, table)

    def _insert(self, kind: Kind, table: pa.Table) -> None:
        n = table.num_rows
        table = table.set_column(
            table.schema.get_field_index("evidence_id"),
            "evidence_id",
            pa.array(np.full(n, self.evidence_id, np.int32)),
        )
        if self.host is not None:
            idx = table.schema.get_field_index("host")
            table = table.set_column(idx, "host", pc.coalesce(table.column(idx), pa.scalar(self.host)))
        if kind.name in BULK_KINDS:
            writer = self.writers.get(kind.name)
            if writer is None:
                final = self.case.partition(kind.name, self.evidence_id)
                writer = self.writers[kind.name] = _PartitionWriter(final.with_suffix(".tmp"), final, kind.arrow_schema)
            writer.put(table.cast(kind.arrow_schema))
            return
        self.con.register("_wh_batch", table)
        try:
            cols = ", ".join(f'"{c}"' for c in kind.names)
            self.con.execute(f"INSERT INTO {kind.name} ({cols}) SELECT {cols} FROM _wh_batch")
        finally:
            self.con.unregister("_wh_batch")

    def close(self) -> None:
        """Flush everything; partitions are complete but not yet visible."""
        for name in list(self.pending):
            self._flush(KINDS[name])
        for writer in self.writers.values():
            writer.close()

    def commit(self) -> None:
        for writer in self.writers.values():
            writer.tmp.replace(writer.final)

    def abort(self) -> None:
        for writer in self.writers.values():
            with contextlib.suppress(BaseException):
                writer.close()
            writer.tmp.unlink(missing_ok=True)
            writer.final.unlink(missing_ok=True)


class Case:
    """A case directory. Use as a context manager or call close()."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.evidence_dir = self.root / "evidence"
        self.files_dir = self.evidence_dir / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.manifest_path = self.evidence_dir / "manifest.jsonl"
        self.db_path = self.root / "case.duckdb"
        self.con = duckdb.connect(str(self.db_path))
        # Bounded memory whatever the case size: DuckDB spills to the case folder beyond this.
        self.con.execute(f"SET memory_limit = '{os.environ.get('WORMHUNT_MEMORY', '1GB')}'")
        tmp = str((self.root / ".tmp").resolve()).replace("'", "''")
        self.con.execute(f"SET temp_directory = '{tmp}'")
        self._schema()

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
                # Recreated at every open: the view holds the absolute path of this case.
                glob = str(folder.resolve() / "e*.parquet").replace("'", "''")
                self.con.execute(f"CREATE OR REPLACE VIEW {kind.name} AS SELECT * FROM read_parquet('{glob}')")
                continue
            cols = ", ".join(f'"{c.name}" {c.sql}' for c in kind.all_columns)
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {kind.name} ({cols})")

    def partition(self, kind: str, evidence_id: int) -> Path:
        return self.root / "tables" / kind / f"e{evidence_id:06d}.parquet"

    # -- evidence bookkeeping -------------------------------------------------------------

    def _next_id(self) -> int:
        return int(self.con.execute("SELECT coalesce(max(evidence_id), 0) + 1 FROM evidence").fetchone()[0])

    def find_duplicate(self, path: Path) -> tuple[int | None, str | None, str]:
        """(evidence id, sha256) of an ingested file with the same content, plus the quick fingerprint."""
        fp = quick_fingerprint(path)
        hits = self.con.execute("SELECT evidence_id, sha256 FROM evidence WHERE quick_fp = ?", [fp]).fetchall()
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
        self.con.execute(
            "INSERT INTO evidence VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
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
            ],
        )
        if entry.skip_examples:
            self.con.executemany(
                "INSERT INTO skipped VALUES (?, ?, ?, ?)",
                [[entry.evidence_id, s["line"], s["reason"], s["text"]] for s in entry.skip_examples],
            )

    def append_manifest(self, entry: ManifestEntry) -> None:
        with open(self.manifest_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry.to_json(), ensure_ascii=False, default=str) + "\n")

    def keep_copy(self, path: Path, sha256: str) -> str | None:
        """Copy a small evidence file into the case (read-only source stays untouched)."""
        if path.stat().st_size > COPY_LIMIT:
            return None
        dest = self.files_dir / sha256
        if not dest.exists():
            shutil.copyfile(path, dest)
        return str(dest.relative_to(self.root))

    def manifest(self) -> list[dict[str, Any]]:
        if not self.manifest_path.exists():
            return []
        with open(self.manifest_path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    # -- queries ----------------------------------------------------------------------------

    def query(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
        cur = self.con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def count(self, table: str) -> int:
        return int(self.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def evidence_line(self, evidence_id: int, line: int, offset: int | None = None) -> str | None:
        """The text of one evidence line, from the case copy or the original file."""
        from wormhunt.sources.text import decode

        row = self.con.execute(
            "SELECT path, copy, encoding FROM evidence WHERE evidence_id = ?", [evidence_id]
        ).fetchone()
        if row is None:
            return None
        path, copy, encoding = row
        source = self.root / copy if copy else Path(path)
        try:
            if offset is not None and offset >= 0 and not copy:
                with open(source, "rb") as fh:
                    fh.seek(offset)
                    raw = fh.readline(64 * 1024)
                name = (encoding or "utf-8").split("+")[0].split("(")[0]
                return raw.decode(name if not name.startswith("utf-16") else "utf-8", "replace").rstrip("\r\n")
            text = decode(source.read_bytes()).text
        except OSError:
            return None
        lines = text.split("\n")
        return lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else None
