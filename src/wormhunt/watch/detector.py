"""Micro-batches of received messages -> the same parsers -> the case store -> the same
network detections as `wormhunt detect`, re-run over the recent time window only, and the
difference against what was already alerted.

No detection logic lives here: rows come from the registered format parsers
(`sources.FORMATS`, chosen per message by content as `detect_head` does, or fixed by
`--format`), the detections are `netrules`' ibis expressions run by `engines.run_detections`,
and spreaders are ranked by `network.findings_from`, exactly as for `detect`. What is new is
only *which rows* the detections see: the staged rows whose time falls within one fan-out
window (plus margin) of the rows that arrived since the last run. Any window in which a
source can newly reach the threshold contains one of those rows, so the union of spreaders
found run by run is the set `detect` finds over the same data (tests/test_watch_e2e.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from wormhunt.analyze import engines, netrules
from wormhunt.analyze.network import findings_from, when
from wormhunt.model import FLOWS, NET_ALERTS
from wormhunt.report.summary import spreader_dict
from wormhunt.sources import FORMATS
from wormhunt.sources.base import Format
from wormhunt.sources.detect import detect_head
from wormhunt.sources.text import decode_value
from wormhunt.store import Case, TableSink
from wormhunt.timeparse import iso
from wormhunt.watch import state
from wormhunt.watch.queue import Message

_DIGITS = re.compile(r"[0-9]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
SHAPE_CHARS = 40  # messages whose first characters look alike (digits masked) share a format
MEMO_MAX = 10_000
EVIDENCE_LINES = 5
RECENT_ALERTS = 200


def clean(raw: bytes) -> str | None:
    """Decode one message with the project's decoder; None for binary junk."""
    raw = raw.rstrip(b"\x00")  # Hillstone ends a payload with NUL
    if not raw.strip() or b"\x00" in raw:
        return None
    text = decode_value(raw)
    controls = len(_CONTROL.findall(text))
    if controls > max(2, len(text) // 20) or text.count("\ufffd") > max(2, len(text) // 10):
        return None
    return text.replace("\r", " ").replace("\n", " ").replace("\x0b", " ").replace("\x0c", " ")


class WindowEngine(engines.Engine):
    """DuckDB over the staged rows, restricted to a time range: a cursor of its own whose
    temporary views `flows` and `net_alerts` shadow the case's views of the same name."""

    name = dialect = "duckdb"

    def __init__(self, case: Case) -> None:
        self.con = case.con.cursor()

    def restrict(self, lo_s: int, hi_s: int) -> None:
        for kind, table in state.STAGED.items():
            self.con.execute(
                f"CREATE OR REPLACE TEMP VIEW {kind} AS SELECT * FROM main.{table}"
                f" WHERE ts >= make_timestamp({int(lo_s) * 1_000_000}::BIGINT)"
                f" AND ts < make_timestamp({int(hi_s) * 1_000_000}::BIGINT)"
            )

    def arrow(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def close(self) -> None:
        self.con.close()


@dataclass
class Snapshot:
    """What the UI shows; replaced whole after every cycle (readers never see it half-built)."""

    spreaders: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, Any] = field(default_factory=dict)


class Detector:
    """Runs in one worker thread (the case's DuckDB connection is used only there)."""

    def __init__(
        self,
        case: Case,
        fmt: str = "auto",
        roles: dict[str, str] | None = None,
        allow: set[str] | None = None,
        quiet_s: float = 60.0,
        lang: str = "en",
        params: netrules.Params | None = None,
    ) -> None:
        self.case, self.con = case, case.con
        self.fixed: Format | None = None if fmt == "auto" else FORMATS[fmt]
        self.roles, self.allow, self.quiet_s, self.lang = roles or {}, allow or set(), quiet_s, lang
        self.params = params or netrules.Params.from_knowledge()
        self.eid = state.ensure(case)
        saved = state.load(self.con)
        self.seq = int(saved.get("seq", 0))
        self.pending: list[int] | None = saved.get("pending")  # [min_s, max_s] of rows not yet detected
        self.receivers: dict[str, dict] = saved.get("receivers", {})
        self.offsets: dict[str, list[int]] = saved.get("offsets", {})
        self.counts: Counter[str] = Counter(saved.get("counts", {}))  # junk, parser skips, unsupported ...
        self.alerted = state.alerted(self.con)
        self.last_alert: dict[tuple[str, str], float] = {
            (src, cat): at
            for src, cat, at in self.con.execute(
                "SELECT src, category, max(alerted_at) FROM watch_alerted GROUP BY ALL"
            ).fetchall()
        }
        # Messages are kept as text in one append-only file; rows cite it by line (= seq) and offset.
        self.log_path = case.root / "watch" / "messages.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.con.execute("UPDATE evidence SET path = ? WHERE evidence_id = ?", [str(self.log_path), self.eid])
        committed = int(saved.get("log_size", 0))
        with open(self.log_path, "ab") as fh:  # drop what a crash wrote after the last commit
            fh.truncate(committed)
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - open for the process's life
        self.log_size = committed
        self.memo: dict[str, Format | None] = {}
        self.engine = WindowEngine(case)
        self.pending_received: float | None = None
        self.last_detect = 0.0
        self.detect_runs = 0
        self.detect_seconds = 0.0
        self.latencies: deque[float] = deque(maxlen=1000)
        self.delivered: list[str] = []  # ids delivered by every output, committed next cycle
        self.delivered_lock = threading.Lock()
        self.spreaders: dict[str, dict[str, Any]] = {
            src: {"src": src}
            for (src,) in self.con.execute("SELECT src FROM watch_alerted WHERE category = 'spreader'").fetchall()
        }
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_ALERTS)
        self.snapshot = Snapshot()
        self.record_n = 0

    # -- ingest --------------------------------------------------------------------------

    def _format(self, text: str) -> Format | None:
        if self.fixed is not None:
            return self.fixed
        shape = _DIGITS.sub("0", text[:SHAPE_CHARS])
        if shape in self.memo:
            return self.memo[shape]
        found = detect_head(text.encode("utf-8", "surrogatepass"), complete=True).format
        if found is not None and (found.host_evidence or found.parse_text is None):
            found = None  # host artifacts (netstat ...) and binary formats do not arrive as syslog lines
        if len(self.memo) >= MEMO_MAX:
            self.memo.clear()
        self.memo[shape] = found
        return found

    def ingest(self, msgs: list[Message], receivers: dict[str, dict]) -> int:
        """Parse, store and commit one micro-batch (with counters and file offsets); returns rows stored."""
        groups: dict[str, tuple[Format, list[str], list[int], list[int]]] = {}
        chunks: list[bytes] = []
        offset = self.log_size
        for m in msgs:
            if m.pos is not None:
                self.offsets[m.source] = list(m.pos)
            text = clean(m.data)
            if text is None:
                self.counts["binary junk"] += 1
                continue
            fmt = self._format(text)
            if fmt is None:
                self.counts["unrecognized message"] += 1
                continue
            data = text.encode("utf-8", "replace") + b"\n"
            self.seq += 1
            g = groups.setdefault(fmt.name, (fmt, [], [], []))
            g[1].append(text)
            g[2].append(self.seq)
            g[3].append(offset)
            chunks.append(data)
            offset += len(data)
            if self.pending_received is None or m.received < self.pending_received:
                self.pending_received = m.received
        tables: dict[str, list[pa.Table]] = {"flows": [], "net_alerts": []}
        for fmt, texts, seqs, offs in groups.values():
            sink = TableSink()
            fmt.parse_text("\n".join(texts), sink)
            sink.close()
            for reason, n in sink.skip_counts.items():
                self.counts[f"{fmt.name}: {reason}"] += n
            seq_arr, off_arr = np.asarray(seqs, np.int64), np.asarray(offs, np.int64)
            for name, parts in sink.tables.items():
                if name not in tables:
                    self.counts[f"{fmt.name}: not a network record"] += sum(t.num_rows for t in parts)
                    continue
                for t in parts:
                    idx = np.asarray(t.column("line").to_numpy(zero_copy_only=False), np.int64) - 1
                    t = t.set_column(t.schema.get_field_index("line"), "line", pa.array(seq_arr[idx]))
                    t = t.set_column(t.schema.get_field_index("offset"), "offset", pa.array(off_arr[idx]))
                    eid = pa.array(np.full(t.num_rows, self.eid, np.int32))
                    t = t.set_column(t.schema.get_field_index("evidence_id"), "evidence_id", eid)
                    tables[name].append(t)
        rows = 0
        for parts in tables.values():
            for t in parts:
                rows += t.num_rows
                ts = pc.min_max(t.column("ts").cast(pa.int64()))
                lo, hi = ts["min"].as_py(), ts["max"].as_py()
                if lo is None:
                    continue
                lo_s, hi_s = lo // 1_000_000, hi // 1_000_000
                old = self.pending or [lo_s, hi_s]
                self.pending = [min(lo_s, old[0]), max(hi_s, old[1])]
        if chunks:
            self.log.write(b"".join(chunks))
            self.log.flush()  # in the OS before the commit that cites it; truncated back on restart otherwise
        self.log_size = offset
        self.receivers = receivers
        with self._transaction():
            for kind in (FLOWS, NET_ALERTS):
                for t in tables[kind.name]:
                    state.insert(self.con, state.STAGED[kind.name], t.cast(kind.arrow_schema))
            self._commit_delivered()
            state.save(self.con, self._state())
        return rows

    def _state(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "log_size": self.log_size,
            "pending": self.pending,
            "receivers": self.receivers,
            "offsets": self.offsets,
            "counts": dict(self.counts),
        }

    def _commit_delivered(self) -> None:
        with self.delivered_lock:
            ids, self.delivered = self.delivered, []
        if ids:
            self.con.execute("UPDATE watch_outbox SET delivered = true WHERE list_contains(?, id)", [ids])

    def mark_delivered(self, ids: list[str]) -> None:
        """Called from the event loop once every output took these records."""
        with self.delivered_lock:
            self.delivered.extend(ids)

    # -- detection -----------------------------------------------------------------------

    def detect(self, now: float | None = None) -> list[dict[str, Any]]:
        """Run the detections over the window around the new rows; commit and return new alert records."""
        if self.pending is None:
            return []
        started = time.time()
        w = self.params.window_s
        lo = self.pending[0] - 2 * w - self.params.run_seconds
        hi = self.pending[1] + w + 1
        self.engine.restrict(lo, hi)
        results = engines.run_detections(self.engine, self.params)
        _, ranked, _ = findings_from(results, self.roles, self.allow)
        now = time.time() if now is None else now
        crossed = self.pending_received if self.pending_received is not None else started
        items = self._new_items(results, ranked)
        records = self._schedule(items, now, crossed)
        with self._transaction():
            self.pending = None
            self._commit_delivered()
            state.save(self.con, self._state())
        self.pending_received = None
        self.last_detect = time.time()
        self.detect_runs += 1
        self.detect_seconds += self.last_detect - started
        return records

    def _evidence(self, seqs: list[int]) -> list[str]:
        """The text of messages by sequence number (their byte offsets are on the rows)."""
        if not seqs:
            return []
        rows = self.con.execute(
            'SELECT DISTINCT line, "offset" FROM (SELECT line, "offset" FROM watch_flows'
            ' UNION ALL SELECT line, "offset" FROM watch_net_alerts) WHERE list_contains(?, line) ORDER BY line',
            [sorted(set(seqs))],
        ).fetchall()
        out = []
        with open(self.log_path, "rb") as fh:
            for _, off in rows:
                fh.seek(off)
                out.append(decode_value(fh.readline(64 * 1024).rstrip(b"\n")))
        return out

    def _new_items(self, results: dict[str, list[dict[str, Any]]], ranked: list[dict[str, Any]]) -> list[dict]:
        items = []
        fan_ev: dict[str, list[int]] = {}
        for r in results["fanout_evidence"]:
            fan_ev.setdefault(r["src_ip"], []).append(int(r["line"]))
        for s in ranked:
            key = f"spreader:{s['src']}"
            if key in self.alerted:
                continue
            d = spreader_dict(s, self.lang)
            seqs = fan_ev.get(s["src"], [])[:EVIDENCE_LINES]
            seqs += [int(p["line"]) for p in results["alert_pairs"] if p["src_ip"] == s["src"]][
                : max(0, EVIDENCE_LINES - len(seqs))
            ]
            d["evidence"] = self._evidence(seqs)
            items.append({"key": key, "category": "spreader", "src": s["src"], "spreader": d})
        for p in results["alert_pairs"]:
            key = f"alert:{p['kind']}:{p['src_ip']}:{p['dst_ip']}:{p['sig']}"
            if key in self.alerted:
                continue
            alert = {
                "kind": p["kind"],
                "src": p["src_ip"],
                "dst": p["dst_ip"] or None,
                "signature": p["sig"],
                "ts": iso(when(p["first_seen_s"])),
                "count": p["count"],
                "evidence": self._evidence([int(p["line"])]),
            }
            items.append({"key": key, "category": p["kind"], "src": p["src_ip"], "alert": alert})
        return items

    def _schedule(self, items: list[dict], now: float, crossed: float) -> list[dict[str, Any]]:
        """Alert the first item of a (source, category) at once; later ones wait for the quiet
        period to end and go out together. Keys and records commit with the caller's transaction."""
        now_groups: dict[tuple[str, str], list[dict]] = {}
        held = []
        for it in items:
            k = (it["src"], it["category"])
            last = self.last_alert.get(k)
            if k in now_groups or last is None or now - last >= self.quiet_s:
                now_groups.setdefault(k, []).append(it)
            else:
                held.append([it["key"], it["src"], it["category"], last + self.quiet_s, json.dumps(it, default=str)])
        records = [self._record(src, cat, its, now, crossed, digest=False) for (src, cat), its in now_groups.items()]
        with self._transaction():
            if items:
                self.con.executemany(
                    "INSERT OR IGNORE INTO watch_alerted VALUES (?, ?, ?, ?)",
                    [[it["key"], it["src"], it["category"], now] for it in items],
                )
            if held:
                self.con.executemany("INSERT OR REPLACE INTO watch_held VALUES (?, ?, ?, ?, ?)", held)
            self._outbox(records, now)
        for it in items:
            self.alerted.add(it["key"])
        for src, cat in now_groups:
            self.last_alert[(src, cat)] = now
        self._remember(records)
        return records

    def release(self, now: float | None = None, everything: bool = False) -> list[dict[str, Any]]:
        """Held items whose quiet period is over (all of them at shutdown), one record per source and category."""
        now = time.time() if now is None else now
        rows = self.con.execute(
            "SELECT key, src, category, item FROM watch_held WHERE ? OR release_at <= ? ORDER BY release_at, key",
            [everything, now],
        ).fetchall()
        if not rows:
            return []
        groups: dict[tuple[str, str], list[dict]] = {}
        for _, src, cat, item in rows:
            groups.setdefault((src, cat), []).append(json.loads(item))
        records = [self._record(src, cat, its, now, None, digest=True) for (src, cat), its in groups.items()]
        with self._transaction():
            self.con.execute("DELETE FROM watch_held WHERE list_contains(?, key)", [[r[0] for r in rows]])
            self._outbox(records, now)
        for k in groups:
            self.last_alert[k] = now
        self._remember(records)
        return records

    def _record(self, src: str, cat: str, items: list[dict], now: float, crossed: float | None, digest: bool) -> dict:
        self.record_n += 1
        latency = None if crossed is None else round(max(0.0, now - crossed), 3)
        if latency is not None:
            self.latencies.append(latency)
        return {
            "id": f"{os.getpid()}-{int(now * 1000)}-{self.record_n}",
            "type": "wormhunt.watch.alert",
            "src": src,
            "category": cat,
            "digest": digest,
            "at": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
            "latency_s": latency,  # upper bound: from the oldest message of the run that found it
            "items": items,
        }

    def _outbox(self, records: list[dict], now: float) -> None:
        if records:
            self.con.executemany(
                "INSERT INTO watch_outbox VALUES (?, ?, ?, false)",
                [[r["id"], json.dumps(r, ensure_ascii=False, default=str), now] for r in records],
            )

    def _remember(self, records: list[dict]) -> None:
        for r in records:
            self.recent.appendleft(r)
            for it in r["items"]:
                if it["category"] == "spreader":
                    self.spreaders[it["src"]] = it["spreader"]

    # -- the cycle the service runs ---------------------------------------------------------

    def cycle(
        self, msgs: list[Message], receivers: dict[str, dict], detect_every: float, force: bool = False
    ) -> list[dict[str, Any]]:
        if msgs:
            self.ingest(msgs, receivers)
        records = []
        now = time.time()
        if self.pending is not None and (force or now - self.last_detect >= detect_every):
            records += self.detect()
        records += self.release(everything=force)
        if not msgs and not records and self.delivered:
            with self._transaction():
                self._commit_delivered()
        return records

    def save(self, receivers: dict[str, dict]) -> None:
        self.receivers = receivers
        with self._transaction():
            self._commit_delivered()
            state.save(self.con, self._state())

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction over the state tables: committed whole, or rolled back on any error."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.engine.close()
        self.log.close()

    def stats(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {
            "stored_messages": self.seq,
            "parse": dict(self.counts),
            "parse_errors": sum(self.counts.values()),
            "detect_runs": self.detect_runs,
            "detect_seconds": round(self.detect_seconds, 3),
            "latency_p50_s": lat[len(lat) // 2] if lat else None,
            "latency_max_s": lat[-1] if lat else None,
            "alerted_keys": len(self.alerted),
        }


def log_path(case_root: Path) -> Path:
    return case_root / "watch" / "messages.log"
