"""Alert outputs: `jsonl:FILE`, `webhook:URL` (HTTP POST of the JSON record, retried with
backoff a bounded number of times) and `syslog:HOST:PORT` (one RFC 5424 datagram over UDP).

Every record has an `id`. Records are stored in the case's outbox before they are sent and
marked delivered after, so a crash in between sends them again on restart: the JSONL output
skips ids already in its file; a webhook receiver can de-duplicate by `id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

RETRIES = 4
BACKOFF_S = 0.5
TIMEOUT_S = 5.0
SYSLOG_MAX = 8192


class Output:
    spec = ""

    async def send(self, record: dict[str, Any]) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        pass


class JsonlOutput(Output):
    def __init__(self, path: Path) -> None:
        self.spec = f"jsonl:{path}"
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.seen: set[str] = set()
        if path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    self.seen.add(json.loads(line)["id"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line torn by a crash
        self.fh = open(path, "a", encoding="utf-8")  # noqa: SIM115

    async def send(self, record: dict[str, Any]) -> bool:
        if record["id"] in self.seen:
            return True
        self.fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self.fh.flush()
        self.seen.add(record["id"])
        return True

    def close(self) -> None:
        self.fh.close()


class WebhookOutput(Output):
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook needs an http(s) URL, got {url!r}")
        self.spec = f"webhook:{url}"
        self.url = url

    def _post(self, body: bytes) -> None:
        req = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "wormhunt"}
        )
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            resp.read()

    async def send(self, record: dict[str, Any]) -> bool:
        body = json.dumps(record, ensure_ascii=False, default=str).encode()
        delay = BACKOFF_S
        for attempt in range(RETRIES):
            try:
                await asyncio.to_thread(self._post, body)
                return True
            except (urllib.error.URLError, OSError, TimeoutError):
                if attempt + 1 < RETRIES:
                    await asyncio.sleep(delay)
                    delay *= 2
        return False


class SyslogOutput(Output):
    """RFC 5424 over UDP: facility local0, severity alert; the record as JSON in MSG."""

    PRI = 16 * 8 + 1

    def __init__(self, host: str, port: int) -> None:
        self.spec = f"syslog:{host}:{port}"
        self.addr = (host, port)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.hostname = socket.gethostname() or "-"

    def format(self, record: dict[str, Any]) -> bytes:
        ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        msgid = "spreader" if record.get("category") == "spreader" else "alert"
        body = json.dumps(record, ensure_ascii=False, default=str).encode()
        head = f"<{self.PRI}>1 {ts} {self.hostname} wormhunt - {msgid} - ".encode()
        data = head + b"\xef\xbb\xbf" + body  # BOM: the MSG is UTF-8 (RFC 5424 section 6.4)
        if len(data) > SYSLOG_MAX:  # keep the datagram deliverable: drop the quoted evidence first
            slim = {
                **record,
                "items": [
                    {k: v for k, v in it.items() if k in ("key", "category", "src")} for it in record.get("items", [])
                ],
            }
            data = head + b"\xef\xbb\xbf" + json.dumps(slim, ensure_ascii=False, default=str).encode()
        return data[:SYSLOG_MAX]

    async def send(self, record: dict[str, Any]) -> bool:
        try:
            self.sock.sendto(self.format(record), self.addr)
            return True
        except OSError:
            return False

    def close(self) -> None:
        self.sock.close()


def parse(spec: str) -> Output:
    kind, _, rest = spec.partition(":")
    if kind == "jsonl" and rest:
        return JsonlOutput(Path(rest))
    if kind == "webhook" and rest:
        return WebhookOutput(rest)
    if kind == "syslog" and rest:
        host, _, port = rest.rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit():
            raise ValueError(f"expected syslog:HOST:PORT, got {spec!r}")
        return SyslogOutput(host, int(port))
    raise ValueError(f"expected jsonl:FILE, webhook:URL or syslog:HOST:PORT, got {spec!r}")


class Dispatcher:
    """Sends records to every output from a bounded in-memory queue (the durable copy is the
    case's outbox). A record every output took is reported through `on_delivered`."""

    def __init__(self, outputs: list[Output], on_delivered, capacity: int = 10_000) -> None:
        self.outputs = outputs
        self.on_delivered = on_delivered
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(capacity)
        self.sent = 0
        self.failed = 0
        self.overflow = 0

    def submit(self, records: list[dict[str, Any]]) -> None:
        for r in records:
            try:
                self.queue.put_nowait(r)
            except asyncio.QueueFull:
                self.overflow += 1  # stays undelivered in the outbox: sent again after a restart

    async def run(self) -> None:
        while True:
            record = await self.queue.get()
            try:
                results = await asyncio.gather(*(o.send(record) for o in self.outputs), return_exceptions=True)
                if all(r is True for r in results):
                    self.sent += 1
                    self.on_delivered([record["id"]])
                else:
                    self.failed += 1
            finally:
                self.queue.task_done()

    async def drain(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), timeout)

    def close(self) -> None:
        for o in self.outputs:
            o.close()
