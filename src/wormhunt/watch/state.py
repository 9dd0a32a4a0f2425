"""What survives a restart, in the case's DuckDB file, written in the same transaction as the
rows it describes:

- `watch_flows`, `watch_net_alerts`: the parsed rows (columns of the `flows`/`net_alerts`
  kinds; `evidence_id` is the watch's evidence row, `line` the message's sequence number);
- `CASE/watch/messages.log`: the text of every stored message, one per line (line number =
  sequence number; the rows carry line and byte offset: the evidence an alert quotes). It is
  written before the commit and cut back to the committed size on start;
- `watch_state`: sequence counter, receiver counters, file offsets, the time range not yet
  run through the detections;
- `watch_alerted`: every key already alerted (a restart never alerts it again);
- `watch_outbox`: alert records and whether every output took them (undelivered ones are
  sent again after a restart); `watch_held`: items waiting for their source's quiet period.

Crash bound: a message is safe once its micro-batch commits. What a crash can lose is what
the process held but had not committed: the bounded queue plus the batch being written
(`queue capacity + batch size` messages). For files nothing is lost (the saved offset is the
end of the last committed line); for TCP the sender's kernel thinks those bytes delivered.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pyarrow as pa

from wormhunt.model import FLOWS, NET_ALERTS
from wormhunt.store import Case

STAGED = {"flows": "watch_flows", "net_alerts": "watch_net_alerts"}


def ensure(case: Case) -> int:
    """Create the watch tables; return the watch's evidence id (one evidence row, status 'watch',
    so `detect` and the reports do not mistake the staging tables for ingested files)."""
    con = case.con
    for kind in (FLOWS, NET_ALERTS):
        cols = ", ".join(f'"{c.name}" {c.sql}' for c in kind.all_columns)
        con.execute(f"CREATE TABLE IF NOT EXISTS {STAGED[kind.name]} ({cols})")
    con.execute("CREATE TABLE IF NOT EXISTS watch_state (name VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute(
        "CREATE TABLE IF NOT EXISTS watch_alerted"
        " (key VARCHAR PRIMARY KEY, src VARCHAR, category VARCHAR, alerted_at DOUBLE)"
    )
    con.execute(
        "CREATE TABLE IF NOT EXISTS watch_outbox (id VARCHAR PRIMARY KEY, record VARCHAR, created DOUBLE,"
        " delivered BOOLEAN)"
    )
    con.execute(
        "CREATE TABLE IF NOT EXISTS watch_held (key VARCHAR PRIMARY KEY, src VARCHAR, category VARCHAR,"
        " release_at DOUBLE, item VARCHAR)"
    )
    row = con.execute("SELECT evidence_id FROM evidence WHERE status = 'watch' ORDER BY evidence_id LIMIT 1").fetchone()
    if row:
        return int(row[0])
    eid = int(con.execute("SELECT coalesce(max(evidence_id), 0) + 1 FROM evidence").fetchone()[0])
    con.execute(
        "INSERT INTO evidence (evidence_id, path, format, status, records, skipped) VALUES (?, ?, ?, ?, 0, 0)",
        [eid, "watch:live", "watch", "watch"],
    )
    return eid


def load(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    return {name: json.loads(value) for name, value in con.execute("SELECT name, value FROM watch_state").fetchall()}


def save(con: duckdb.DuckDBPyConnection, values: dict[str, Any]) -> None:
    """Upsert state values (inside the caller's transaction)."""
    con.executemany(
        "INSERT OR REPLACE INTO watch_state VALUES (?, ?)",
        [[k, json.dumps(v, default=str)] for k, v in values.items()],
    )


def insert(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> None:
    if data.num_rows == 0:
        return
    con.register("_wh_watch", data)
    try:
        cols = ", ".join(f'"{c}"' for c in data.column_names)
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _wh_watch")
    finally:
        con.unregister("_wh_watch")


def alerted(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT key FROM watch_alerted").fetchall()}


def undelivered(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    rows = con.execute("SELECT record FROM watch_outbox WHERE NOT delivered ORDER BY created, id").fetchall()
    return [json.loads(r[0]) for r in rows]
