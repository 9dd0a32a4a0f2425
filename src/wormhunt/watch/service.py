"""The watch process: listeners, tails, the bounded queue, the detector in a worker thread,
alert outputs and the UI on one asyncio loop; SIGINT/SIGTERM stop it cleanly (receivers
closed, queue drained and committed, last detection run, held alerts released and sent,
state saved)."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wormhunt.watch import alerts as alert_outputs
from wormhunt.watch import receiver, state, ui
from wormhunt.watch.queue import BoundedQueue
from wormhunt.watch.tail import Tail

QUEUE = 100_000  # messages held in memory at most (a crash may lose these plus one batch)
BATCH = 20_000  # messages per micro-batch at most
DETECT_EVERY_S = 1.0  # detections re-run at most this often while data keeps arriving


@dataclass
class WatchConfig:
    case: Path
    listen: list[str] = field(default_factory=list)
    tail: list[Path] = field(default_factory=list)
    format: str = "auto"
    alert: list[str] = field(default_factory=list)
    ui: str | None = None
    allow: set[str] = field(default_factory=set)
    quiet_s: float = 60.0
    lang: str = "en"
    queue: int = QUEUE
    batch: int = BATCH
    detect_every_s: float = DETECT_EVERY_S
    max_len: int = receiver.MAX_LEN


def _hostport(spec: str) -> tuple[str, int]:
    host, _, port = spec.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {spec!r}")
    return host.strip("[]"), int(port)


class Watch:
    def __init__(self, cfg: WatchConfig, log=None) -> None:
        self.cfg = cfg
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.listens = [receiver.Listen.parse(u) for u in cfg.listen]
        self.outputs = [alert_outputs.parse(s) for s in cfg.alert]
        self.ui_addr = _hostport(cfg.ui) if cfg.ui else None
        self.stats: dict[str, receiver.SourceStats] = {}
        self.started = time.time()
        self.rates: dict[str, float] = {}
        self.total_rate = 0.0
        self._last = (time.time(), {})

    def receivers_json(self) -> dict[str, dict]:
        return {name: s.to_json() for name, s in self.stats.items()}

    def state_doc(self) -> dict[str, Any]:
        det = self.detector
        recv = self.receivers_json()
        for name, r in recv.items():
            r["rate"] = round(self.rates.get(name, 0.0), 1)
        st = det.stats()
        return {
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            "rate": round(self.total_rate, 1),
            "dropped": self.queue.dropped,
            "parse_errors": st["parse_errors"],
            "stored": st["stored_messages"],
            "receivers": recv,
            "spreaders": list(det.spreaders.values()),
            "alerts": list(det.recent),
        }

    def _tick_rates(self) -> None:
        now = time.time()
        then, counts = self._last
        if now - then < 1.0:
            return
        cur = {n: s.messages for n, s in self.stats.items()}
        self.rates = {n: (c - counts.get(n, 0)) / (now - then) for n, c in cur.items()}
        self.total_rate = sum(self.rates.values())
        self._last = (now, cur)

    async def run(self) -> dict[str, Any]:
        from wormhunt.analyze.verdict import Identity
        from wormhunt.store import Case
        from wormhunt.watch.detector import Detector

        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(1, thread_name_prefix="wormhunt-detect")
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def open_case():
            case = Case(self.cfg.case)
            roles = Identity(case).role_by_ip()
            det = Detector(case, self.cfg.format, roles, self.cfg.allow, self.cfg.quiet_s, self.cfg.lang)
            return case, det

        case, self.detector = await loop.run_in_executor(pool, open_case)
        det = self.detector
        for name, doc in det.receivers.items():  # counters carry on across restarts
            self.stats.setdefault(name, receiver.SourceStats()).load(doc)
        self.queue = BoundedQueue(self.cfg.queue)
        servers, bound = [], []
        for listen in self.listens:
            url, server = await receiver.start(
                listen, self.queue, self.stats.setdefault(listen.url(), receiver.SourceStats()), self.cfg.max_len
            )
            servers.append(server)
            bound.append(url)
        tasks = []
        for path in self.cfg.tail:
            name = f"file:{path}"
            pos = det.offsets.get(name)
            t = Tail(
                path,
                self.queue,
                self.stats.setdefault(name, receiver.SourceStats()),
                tuple(pos) if pos else None,
                self.cfg.max_len,
            )
            tasks.append(asyncio.create_task(t.run(stop)))
            bound.append(name)
        ui_server = None
        if self.ui_addr:
            ui_server = await ui.serve(*self.ui_addr, self.state_doc)
            h, p = ui_server.sockets[0].getsockname()[:2]
            bound.append(f"ui http://{'[' + h + ']' if ':' in h else h}:{p}/")

        def delivered(ids):
            det.mark_delivered(ids)

        dispatcher = alert_outputs.Dispatcher(self.outputs, delivered)
        send_task = asyncio.create_task(dispatcher.run())
        backlog = await loop.run_in_executor(pool, state.undelivered, det.con)
        dispatcher.submit(backlog)
        self.log("wormhunt watch: ready " + " ".join(bound))

        async def cycle(force: bool = False) -> None:
            msgs = self.queue.drain(self.cfg.batch)
            recv = self.receivers_json()
            records = await loop.run_in_executor(pool, det.cycle, msgs, recv, self.cfg.detect_every_s, force)
            dispatcher.submit(records)
            self._tick_rates()

        while not stop.is_set():
            await self.queue.wait(0.25)
            if stop.is_set():
                break
            await cycle()

        # Clean shutdown: stop taking input, commit what is queued, detect, release, send, save.
        for s in servers:
            s.close()
        for t in tasks:
            await t
        while len(self.queue):
            await cycle()
        await cycle(force=True)
        await dispatcher.drain(30)
        send_task.cancel()
        await loop.run_in_executor(pool, det.save, self.receivers_json())
        if ui_server is not None:
            ui_server.close()
        summary = {
            "case": str(self.cfg.case),
            "listening": bound,
            "receivers": self.receivers_json(),
            "dropped": self.queue.dropped,
            "alerts_sent": dispatcher.sent,
            "alerts_failed": dispatcher.failed,
            "spreaders": sorted(det.spreaders),
            **det.stats(),
        }

        def close():
            det.close()
            case.close()

        await loop.run_in_executor(pool, close)
        pool.shutdown()
        dispatcher.close()
        return summary


def run(cfg: WatchConfig, log=None) -> dict[str, Any]:
    """Run until SIGINT/SIGTERM; returns the final counters."""
    return asyncio.run(Watch(cfg, log).run())
