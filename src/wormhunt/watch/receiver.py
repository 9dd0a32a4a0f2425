"""Syslog receivers on asyncio: UDP datagrams and TCP streams (RFC 6587 newline or
octet-counting framing, detected per connection from its first byte).

A receiver only frames: it cuts each message to `max_len` bytes (counted), counts broken
frames, and queues raw bytes. Decoding (UTF-8, GBK, the project's decoder), junk detection and
parsing happen in the detector, in batches.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from wormhunt.watch.queue import BoundedQueue, Message

MAX_LEN = 64 * 1024  # longest message kept; longer ones are cut (and counted)
MAX_FRAME = 16 * 1024 * 1024  # an octet count beyond this is garbage, not a frame
_HEAD_DIGITS = 8  # "NNNNNNNN " at most before the space
_RESYNC = re.compile(rb"(?<![0-9])[1-9][0-9]{0,7} <[0-9]{1,3}>")


@dataclass
class SourceStats:
    """Counters of one listener or tailed file (plain ints: read by the UI, saved in the state)."""

    messages: int = 0
    bytes: int = 0
    connections: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # over-long, truncated frame, framing error ...

    def to_json(self) -> dict:
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "connections": self.connections,
            "errors": dict(self.errors),
        }

    def load(self, doc: dict) -> None:
        self.messages = int(doc.get("messages", 0))
        self.bytes = int(doc.get("bytes", 0))
        self.connections = int(doc.get("connections", 0))
        self.errors = Counter({k: int(v) for k, v in (doc.get("errors") or {}).items()})


@dataclass(frozen=True)
class Listen:
    proto: str  # udp | tcp
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Listen:
        parts = urlsplit(url)
        if parts.scheme not in ("udp", "tcp") or not parts.hostname or parts.port is None:
            raise ValueError(f"expected udp://HOST:PORT or tcp://HOST:PORT, got {url!r}")
        return cls(parts.scheme, parts.hostname, parts.port)

    def url(self, port: int | None = None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.proto}://{host}:{self.port if port is None else port}"


class Framer:
    """Splits one TCP stream into messages. Mode is chosen from the first non-blank byte: a digit
    means octet counting (`LEN SP MSG`), anything else newline framing."""

    def __init__(self, stats: SourceStats, max_len: int = MAX_LEN) -> None:
        self.stats = stats
        self.max_len = max_len
        self.buf = bytearray()
        self.mode: str | None = None
        self.discarding = False  # newline mode: inside the rest of an over-long line
        self.skip = 0  # octet mode: bytes of an over-long frame still to discard

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        if self.mode is None:
            stripped = self.buf.lstrip(b" \t\r\n\x00")
            if not stripped:
                self.buf.clear()
                return []
            self.mode = "octet" if 0x31 <= stripped[0] <= 0x39 else "line"
        return self._octets() if self.mode == "octet" else self._lines()

    def close(self) -> list[bytes]:
        """End of stream: a last unterminated line is a message; a partial frame is not."""
        out: list[bytes] = []
        if self.mode == "line" and not self.discarding and self.buf.strip():
            out.append(bytes(self.buf[: self.max_len]).rstrip(b"\r"))
        elif self.mode == "octet" and self.buf.strip() and not self.skip:
            self.stats.errors["truncated frame"] += 1
        self.buf.clear()
        return out

    def _lines(self) -> list[bytes]:
        buf, out, pos, limit = self.buf, [], 0, self.max_len
        while True:
            nl = buf.find(b"\n", pos)
            if self.discarding:
                if nl < 0:
                    pos = len(buf)
                    break
                self.discarding = False
                pos = nl + 1
                continue
            if nl < 0:
                if len(buf) - pos > limit:
                    out.append(bytes(buf[pos : pos + limit]))
                    self.stats.errors["over-long"] += 1
                    self.discarding = True
                    pos = len(buf)
                break
            if nl - pos > limit:
                out.append(bytes(buf[pos : pos + limit]))
                self.stats.errors["over-long"] += 1
            elif nl > pos:
                line = bytes(buf[pos:nl]).rstrip(b"\r")
                if line:
                    out.append(line)
            pos = nl + 1
        del buf[:pos]
        return out

    def _octets(self) -> list[bytes]:
        buf, out, pos, limit = self.buf, [], 0, self.max_len
        n = len(buf)
        while pos < n:
            if self.skip:
                step = min(self.skip, n - pos)
                self.skip -= step
                pos += step
                continue
            while pos < n and buf[pos] in b" \t\r\n\x00":
                pos += 1  # some senders put a newline between frames
            if pos >= n:
                break
            sp = buf.find(b" ", pos, pos + _HEAD_DIGITS + 1)
            head = bytes(buf[pos:sp]) if sp > pos else b""
            if sp < 0 and n - pos <= _HEAD_DIGITS and bytes(buf[pos:n]).isdigit():
                break  # the count itself is still arriving
            if not (head.isdigit() and 0 < int(head) <= MAX_FRAME):
                self.stats.errors["framing error"] += 1
                m = _RESYNC.search(buf, pos + 1)
                if m is None:
                    pos = max(pos, n - 2 * _HEAD_DIGITS)  # keep a tail that may start a frame
                    break
                pos = m.start()
                continue
            size = int(head)
            body = sp + 1
            if size > limit:
                if n - body < limit:
                    break
                out.append(bytes(buf[body : body + limit]))
                self.stats.errors["over-long"] += 1
                self.skip = size - limit
                pos = body + limit
                continue
            if n - body < size:
                break
            msg = bytes(buf[body : body + size]).rstrip(b"\r\n")
            if msg:
                out.append(msg)
            pos = body + size
        del buf[:pos]
        return out


def split_datagram(data: bytes, stats: SourceStats, max_len: int = MAX_LEN) -> list[bytes]:
    """One datagram is normally one message; a relay may pack several lines into one."""
    out = []
    for line in data.split(b"\n") if b"\n" in data else (data,):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        if len(line) > max_len:
            stats.errors["over-long"] += 1
            line = line[:max_len]
        out.append(line)
    return out


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, name: str, queue: BoundedQueue, stats: SourceStats, max_len: int) -> None:
        self.name, self.queue, self.stats, self.max_len = name, queue, stats, max_len

    def datagram_received(self, data: bytes, addr: object) -> None:
        now = time.time()
        self.stats.bytes += len(data)
        for msg in split_datagram(data, self.stats, self.max_len):
            self.stats.messages += 1
            self.queue.offer(Message(self.name, msg, now))


async def start(
    listen: Listen, queue: BoundedQueue, stats: SourceStats, max_len: int = MAX_LEN
) -> tuple[str, asyncio.AbstractServer | asyncio.BaseTransport]:
    """Start one listener; returns its URL (with the bound port) and the server or transport."""
    loop = asyncio.get_running_loop()
    name = listen.url()
    if listen.proto == "udp":
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(name, queue, stats, max_len), local_addr=(listen.host, listen.port)
        )
        sock = transport.get_extra_info("socket")
        try:  # a bigger kernel buffer absorbs bursts while the detector commits
            import socket

            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        except OSError:
            pass
        return listen.url(sock.getsockname()[1]), transport

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats.connections += 1
        framer = Framer(stats, max_len)
        try:
            while data := await reader.read(256 * 1024):
                stats.bytes += len(data)
                now = time.time()
                for msg in framer.feed(data):
                    stats.messages += 1
                    await queue.put(Message(name, msg, now))
            for msg in framer.close():
                stats.messages += 1
                await queue.put(Message(name, msg, time.time()))
        except (ConnectionError, OSError):
            stats.errors["connection reset"] += 1
        finally:
            writer.close()

    server = await asyncio.start_server(handle, listen.host, listen.port, limit=MAX_LEN)
    port = server.sockets[0].getsockname()[1]
    return listen.url(port), server
