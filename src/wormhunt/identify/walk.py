"""Walk the inputs without following symlinks, and decide which files to skip and why."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_SIZE = 256 << 20
SPARSE_MIN = 1 << 20  # below this size allocation granularity makes the sparse test meaningless

# Reason codes (stable, used as i18n keys identify.skip.<code>).
SKIP_REASONS = ("missing", "unreadable", "too_large", "sparse", "symlink", "device", "fifo", "socket", "not_regular")


@dataclass
class Entry:
    path: Path
    size: int
    uid: int = -1
    skipped: str | None = None
    detail: str | None = None


def classify(path: Path, st: os.stat_result, max_size: int) -> Entry:
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return Entry(path, st.st_size, st.st_uid, "symlink", target)
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return Entry(path, 0, st.st_uid, "device")
    if stat.S_ISFIFO(mode):
        return Entry(path, 0, st.st_uid, "fifo")
    if stat.S_ISSOCK(mode):
        return Entry(path, 0, st.st_uid, "socket")
    if not stat.S_ISREG(mode):
        return Entry(path, 0, st.st_uid, "not_regular")
    size = st.st_size
    if size > max_size:
        return Entry(path, size, st.st_uid, "too_large", str(max_size))
    blocks = getattr(st, "st_blocks", None)
    if blocks is not None and size >= SPARSE_MIN and blocks * 512 * 4 < size:
        return Entry(path, size, st.st_uid, "sparse", f"{blocks * 512} of {size} bytes allocated")
    if not os.access(path, os.R_OK):
        return Entry(path, size, st.st_uid, "unreadable", "permission denied")
    return Entry(path, size, st.st_uid)


def walk(inputs: list[Path], max_size: int = MAX_SIZE) -> Iterator[Entry]:
    """Every file under the inputs, once, symlinks reported and never followed."""
    seen: set[str] = set()

    def visit(path: Path) -> Iterator[Entry]:
        key = os.path.abspath(path)
        if key in seen:
            return
        seen.add(key)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            yield Entry(path, 0, skipped="missing")
            return
        except OSError as exc:
            yield Entry(path, 0, skipped="unreadable", detail=exc.strerror)
            return
        if stat.S_ISDIR(st.st_mode):
            try:
                with os.scandir(path) as it:
                    children = sorted(it, key=lambda d: d.name)
            except OSError as exc:
                yield Entry(path, 0, skipped="unreadable", detail=exc.strerror)
                return
            for child in children:
                yield from visit(Path(child.path))
            return
        yield classify(path, st, max_size)

    for root in inputs:
        yield from visit(root)
