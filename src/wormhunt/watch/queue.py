"""The bounded queue between receivers and the detector: memory never grows with the input rate.

Datagram sources cannot be slowed down, so they `offer()` and a full queue drops the message
(counted). Stream sources (TCP, files) `put()` and wait for room: the kernel's socket buffer
fills and the sender is slowed by TCP flow control instead of losing messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass


@dataclass(slots=True)
class Message:
    source: str  # "udp://127.0.0.1:5514", "tcp://...", "file:/var/log/fgt.log"
    data: bytes  # one framed message, already cut to the length limit
    received: float  # time.time() when it arrived
    pos: tuple[int, int] | None = None  # file sources: (inode, offset after this line)


class BoundedQueue:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: deque[Message] = deque()
        self.dropped = 0
        self._room = asyncio.Event()
        self._room.set()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self.items)

    def offer(self, item: Message) -> bool:
        """Add without waiting; False (and counted) when full."""
        if len(self.items) >= self.capacity:
            self.dropped += 1
            return False
        self.items.append(item)
        self._ready.set()
        if len(self.items) >= self.capacity:
            self._room.clear()
        return True

    async def put(self, item: Message) -> None:
        """Add, waiting for room (back-pressure on a stream source)."""
        while len(self.items) >= self.capacity:
            self._room.clear()
            await self._room.wait()
        self.items.append(item)
        self._ready.set()

    async def wait(self, timeout: float) -> None:
        """Until something is queued or `timeout` seconds passed."""
        if self.items:
            return
        self._ready.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)

    def drain(self, limit: int) -> list[Message]:
        n = min(limit, len(self.items))
        out = [self.items.popleft() for _ in range(n)]
        if len(self.items) < self.capacity:
            self._room.set()
        return out
