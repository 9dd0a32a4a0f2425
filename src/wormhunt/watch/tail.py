"""Follow a log file like `tail -F`: new lines as they are written, across rotation (the path
now names a new inode: the old file is read to its end first) and truncation (the size fell
below the offset: read again from the start). The offset after each line travels with the
message and is saved with the micro-batch that stored it, so a restart resumes exactly there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

from wormhunt.watch.queue import BoundedQueue, Message
from wormhunt.watch.receiver import MAX_LEN, SourceStats

POLL_S = 0.2
READ = 1024 * 1024


class Tail:
    def __init__(
        self,
        path: Path,
        queue: BoundedQueue,
        stats: SourceStats,
        start: tuple[int, int] | None = None,
        max_len: int = MAX_LEN,
    ) -> None:
        self.path = path
        self.name = f"file:{path}"
        self.queue, self.stats, self.max_len = queue, stats, max_len
        self.start = start  # (inode, offset) saved by the last run
        self.fh = None
        self.inode = 0
        self.offset = 0
        self.partial = bytearray()

    def _open(self) -> bool:
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - held open across polls
        except OSError:
            return False
        st = os.fstat(fh.fileno())
        self.fh, self.inode, self.offset = fh, st.st_ino, 0
        self.partial.clear()
        if self.start is not None:
            inode, offset = self.start
            if inode == st.st_ino and offset <= st.st_size:
                self.offset = offset
                fh.seek(offset)
            self.start = None  # a different inode: rotated while we were down; read it whole
        return True

    async def _read_available(self) -> None:
        assert self.fh is not None
        while data := self.fh.read(READ):
            now = time.time()
            self.stats.bytes += len(data)
            base = self.offset - len(self.partial)
            buf = self.partial + data
            pos = 0
            while (nl := buf.find(b"\n", pos)) >= 0:
                line = bytes(buf[pos:nl]).rstrip(b"\r")
                pos = nl + 1
                if not line.strip():
                    continue
                if len(line) > self.max_len:
                    self.stats.errors["over-long"] += 1
                    line = line[: self.max_len]
                self.stats.messages += 1
                await self.queue.put(Message(self.name, line, now, (self.inode, base + pos)))
            self.partial = bytearray(buf[pos:])
            self.offset += len(data)
            if len(self.partial) > self.max_len:  # a line without end: cut it, keep going
                self.stats.errors["over-long"] += 1
                self.stats.messages += 1
                line = bytes(self.partial[: self.max_len])
                await self.queue.put(Message(self.name, line, now, (self.inode, self.offset)))
                self.partial.clear()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.fh is None and not self._open():
                await _sleep(stop, POLL_S)
                continue
            await self._read_available()
            try:
                st = os.stat(self.path)
            except OSError:
                st = None  # moved away, not yet recreated: keep the old handle
            if st is not None and st.st_ino != self.inode:
                await self._read_available()  # the rest of the rotated file first
                self.fh.close()
                self.fh = None
                self.stats.errors["rotated"] += 1
                continue
            if st is not None and st.st_size < self.offset:
                self.fh.seek(0)
                self.offset = 0
                self.partial.clear()
                self.stats.errors["truncated file"] += 1
                continue
            await _sleep(stop, POLL_S)
        if self.fh is not None:
            self.fh.close()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
