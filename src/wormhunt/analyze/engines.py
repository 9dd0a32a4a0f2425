"""Where the network detections run: DuckDB (the case itself), Spark or ClickHouse.

Every engine receives the same ibis expressions (`netrules.py`) compiled to its SQL and
reads the same columns: the case's Parquet partitions for Spark and chDB (embedded
ClickHouse), or tables/views named `flows` and `net_alerts` with the case's columns on a
ClickHouse server (`--engine-url clickhouse://user:password@host:8123/database`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from wormhunt.analyze import netrules
from wormhunt.store import BULK_KINDS, Case

ENGINES = ("duckdb", "spark", "clickhouse")


class EngineError(RuntimeError):
    """The engine cannot be used (missing package, Java, server unreachable)."""


class Engine:
    name = ""
    dialect = ""
    exact_distinct = True  # every distinct count is exact (see netrules' module docstring)

    def sql(self, expr: ir.Expr) -> str:
        return str(ibis.to_sql(expr, dialect=self.dialect))

    def arrow(self, sql: str) -> pa.Table:  # pragma: no cover - abstract
        raise NotImplementedError

    def rows(self, expr: ir.Expr) -> list[dict[str, Any]]:
        return self.arrow(self.sql(expr)).to_pylist()

    def close(self) -> None:
        pass


class DuckDBEngine(Engine):
    name = dialect = "duckdb"

    def __init__(self, case: Case) -> None:
        # A cursor of its own: a relation may not run while the case's connection still
        # holds an unfinished result of an earlier statement.
        self.con = case.con.cursor()

    def arrow(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def close(self) -> None:
        self.con.close()


def _linked(case: Case) -> Path:
    """The case's partitions as symlinks in a fresh folder with a plain name, one folder per
    kind: engines then read one `*.parquet` glob per kind. (Listing every file makes one plan
    branch per evidence file, which ClickHouse refuses past a few dozen, and the case path
    itself may hold characters these engines would expand as a glob.)"""
    root = Path(tempfile.mkdtemp(prefix="wormhunt-engine-"))
    for kind in BULK_KINDS:
        (root / kind).mkdir()
        for i, part in enumerate(case.partitions(kind)):
            (root / kind / f"p{i:06d}.parquet").symlink_to(part.resolve())
    return root


class SparkEngine(Engine):
    """pyspark in local mode (or `--engine-url spark://host:7077` / `local[4]` ...)."""

    name = "spark"
    dialect = "pyspark"

    def __init__(self, case: Case, url: str | None = None) -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise EngineError("Spark needs pyspark: pip install 'wormhunt[spark]'") from exc
        master = url or "local[2]"
        builder = (
            SparkSession.builder.master(master)
            .appName("wormhunt")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            # Signature names are evidence: `${...}` in one must stay text, not a variable.
            .config("spark.sql.variable.substitute", "false")
        )
        if master.startswith("local"):  # a local session never listens beyond loopback
            builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        try:
            self.spark = builder.getOrCreate()
        except Exception as exc:  # no Java, bad master URL
            raise EngineError(f"Spark could not start: {exc}") from exc
        self.folder = _linked(case)
        for kind in BULK_KINDS:
            self.spark.read.parquet(str(self.folder / kind)).createOrReplaceTempView(kind)

    def arrow(self, sql: str) -> pa.Table:
        return self.spark.sql(sql).toArrow()

    def close(self) -> None:
        for kind in BULK_KINDS:
            self.spark.catalog.dropTempView(kind)
        shutil.rmtree(self.folder, ignore_errors=True)


class ClickHouseEngine(Engine):
    """chDB (ClickHouse in process) over the case's Parquet, or a ClickHouse server."""

    name = dialect = "clickhouse"

    def __init__(self, case: Case, url: str | None = None) -> None:
        self.client = None
        self.session = None
        if url:
            try:
                import clickhouse_connect
            except ImportError as exc:
                raise EngineError(
                    "a ClickHouse server needs clickhouse-connect: pip install 'wormhunt[clickhouse]'"
                ) from exc
            try:
                self.client = clickhouse_connect.get_client(dsn=url)
            except Exception as exc:
                raise EngineError(f"ClickHouse server unreachable: {exc}") from exc
            return
        try:
            from chdb import session as chs
        except ImportError as exc:
            raise EngineError(
                "ClickHouse needs chdb (embedded) or --engine-url: pip install 'wormhunt[clickhouse]'"
            ) from exc
        self.folder = _linked(case)
        self.session = chs.Session()
        self.session.query("CREATE DATABASE IF NOT EXISTS wormhunt")
        for kind in BULK_KINDS:
            glob = f"{self.folder / kind}/*.parquet"
            self.session.query(f"CREATE OR REPLACE VIEW wormhunt.{kind} AS SELECT * FROM file('{glob}', Parquet)")

    # Left joins rely on NULLs for missing rows (ClickHouse fills in defaults otherwise).
    SETTINGS: ClassVar[dict[str, int]] = {"join_use_nulls": 1}

    def arrow(self, sql: str) -> pa.Table:
        if self.client is not None:
            return self.client.query_arrow(sql, settings=self.SETTINGS)
        res = self.session.query(f"USE wormhunt; {sql} SETTINGS join_use_nulls = 1", "Arrow")
        return pa.ipc.open_file(pa.py_buffer(res.bytes())).read_all() if res.bytes() else pa.table({})

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            shutil.rmtree(self.folder, ignore_errors=True)


def open_engine(name: str, case: Case, url: str | None = None) -> Engine:
    if name == "duckdb" and url:
        raise EngineError("the duckdb engine is the case itself: --engine-url is for spark or clickhouse")
    if name == "duckdb":
        return DuckDBEngine(case)
    if name == "spark":
        return SparkEngine(case, url)
    if name == "clickhouse":
        return ClickHouseEngine(case, url)
    raise EngineError(f"unknown engine {name!r}; use one of {', '.join(ENGINES)}")


def run_detections(engine: Engine, params: netrules.Params | None = None) -> dict[str, list[dict[str, Any]]]:
    """Run every network detection on `engine`; rows come back as plain Python values."""
    p = params or netrules.Params.from_knowledge()
    pairs = engine.rows(netrules.signature_pairs(netrules.table(netrules.NET_ALERTS)))
    found = netrules.matches(pairs)
    return {name: engine.rows(expr) for name, expr in netrules.detections(found, p).items()}


ENGINE_CLASSES: dict[str, type[Engine]] = {"duckdb": DuckDBEngine, "spark": SparkEngine, "clickhouse": ClickHouseEngine}
