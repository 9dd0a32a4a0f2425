"""What every parser shares: the sink it writes to and the format registry entry.

A parser never raises on bad input. It writes rows of a record kind to a `Sink`, and
for every line it cannot use it calls `sink.skip(line, reason, text)`; the store counts
those per reason, keeps examples, and the manifest reports them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from wormhunt.model import Kind
from wormhunt.sources.text import Encoding

# Stored examples of skipped lines per evidence file; the counts are always complete.
MAX_SKIP_EXAMPLES = 1000


@dataclass
class Skip:
    line: int
    reason: str
    text: str


INT32_MAX = 2**31 - 1


def to_int(text: str | None, limit: int = INT32_MAX) -> int | None:
    """A non-negative integer written in ASCII digits, up to `limit`; anything else is None.

    (`str.isdigit` accepts `²` and Arabic-Indic digits, which `int()` then rejects or reads.)"""
    if not text:
        return None
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if value <= limit else None


class Sink:
    """Receives parsed rows. Subclasses decide where they go (memory, the case store)."""

    def __init__(self) -> None:
        self.skip_counts: Counter[str] = Counter()
        self.skips: list[Skip] = []
        self.records = 0
        self.meta: dict[str, Any] = {}

    def row(self, kind: Kind, values: dict[str, Any]) -> None:
        self.records += 1
        self._row(kind, values)

    def batch(self, kind: Kind, table: pa.Table) -> None:
        self.records += table.num_rows
        self._batch(kind, table)

    def skip(self, line: int, reason: str, text: str = "") -> None:
        self.skip_counts[reason] += 1
        if len(self.skips) < MAX_SKIP_EXAMPLES:
            self.skips.append(Skip(line, reason, text[:300]))

    def skip_many(self, count: int, line: int, reason: str, text: str = "") -> None:
        """`count` skips alike (records lost together), as `count` calls of `skip` would be."""
        if count <= 0:
            return
        self.skip_counts[reason] += count
        room = MAX_SKIP_EXAMPLES - len(self.skips)
        self.skips.extend([Skip(line, reason, text[:300])] * max(0, min(room, count)))

    @property
    def skipped(self) -> int:
        return sum(self.skip_counts.values())

    def _row(self, kind: Kind, values: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _batch(self, kind: Kind, table: pa.Table) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class MemorySink(Sink):
    """Keeps rows as dicts per kind: used for small files and by tests."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[dict[str, Any]]] = {}

    def _row(self, kind: Kind, values: dict[str, Any]) -> None:
        self.rows.setdefault(kind.name, []).append(values)

    def _batch(self, kind: Kind, table: pa.Table) -> None:
        self.rows.setdefault(kind.name, []).extend(table.to_pylist())

    def of(self, kind: Kind | str) -> list[dict[str, Any]]:
        return self.rows.get(kind if isinstance(kind, str) else kind.name, [])


TextParser = Callable[[str, Sink], None]
FileParser = Callable[[Path, Encoding, Sink], None]
# A file whose parts parse independently (EVTX chunks): its parts in file order, and a parser
# of one part that numbers lines from 1 within it and returns how many numbers it used.
PartLister = Callable[[Path], list[Any]]
PartParser = Callable[[Path, Any, Sink], int]


@dataclass(frozen=True)
class Format:
    """A registered evidence format."""

    name: str
    description: str
    sniff: Callable[[str], float]  # decoded head of a file -> confidence 0..1
    parse_text: TextParser | None = None
    parse_file: FileParser | None = None  # streaming parsers read the file themselves
    host_evidence: bool = True  # output of a command run on the host it describes
    sniff_bytes: Callable[[bytes], float] | None = None  # binary formats: raw head -> confidence
    parts: PartLister | None = None  # a big file is parsed part by part in worker processes
    parse_part: PartParser | None = None
    part_records: Callable[[Path, Any], int | None] | None = None  # records a part declares (counted if lost)
    halve_part: Callable[[Any], list[Any]] | None = None  # a part in two, in order ([] when too small to split)
