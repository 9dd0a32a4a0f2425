"""The helpers the network-log parsers share (wormhunt.sources.netlog)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from wormhunt.sources import kvscan
from wormhunt.sources.base import MemorySink
from wormhunt.sources.netlog import (
    PROTOCOLS,
    choose_time,
    file_year,
    ip_like,
    proto_column,
    proto_number,
    short_ip,
    syslog_parsers,
    valid_ip,
)
from wormhunt.sources.text import Encoding
from wormhunt.timeparse import Stamp

SPELLINGS = [*PROTOCOLS, *(p.upper() for p in PROTOCOLS), "IPv6-ICMP", " tcp ", "6", "006", "17", "255", "256"]
UNKNOWN = ["", "unknown_transport", "tcpx", "1.5", "-", "0x06", "99999999999999999999"]


def test_proto_number() -> None:
    assert [proto_number(p) for p in ("UDP", "ICMP", "IPv6-ICMP", 17, 17.0, "300", None, True, '"tcp"')] == [
        17,
        1,
        58,
        17,
        17,
        None,
        None,
        None,
        6,
    ]
    assert all(proto_number(name) == number for name, number in PROTOCOLS.items())


def test_compiled_column_reads_protocols_as_proto_number_does() -> None:
    values = SPELLINGS + UNKNOWN
    data = np.frombuffer(",".join(values).encode(), np.uint8).copy()
    starts, ends = np.array([0], np.int64), np.array([len(data)], np.int64)
    vs, vl, _ = kvscan.split_fields(data, starts, ends, ",", len(values), quote=None)
    # one line of many fields -> one field of many lines
    col = [proto_column(data, vs[f : f + 1], vl[f : f + 1], 0)[0].as_py() for f in range(len(values))]
    assert col == [proto_number(v) for v in values]


def test_addresses() -> None:
    assert valid_ip(' "10.1.1.1" ') == "10.1.1.1"
    assert valid_ip("10.1.1") is None and valid_ip(None) is None
    assert short_ip("fe80:0000:0000:0000:0000:0000:0000:0016") == "fe80::16"
    assert short_ip("10.0.0.1") == "10.0.0.1" and short_ip("not:an:address") == "not:an:address"
    data = np.frombuffer(b"10.0.0.1,fe80::1,host-a,1", np.uint8).copy()
    vs, vl, _ = kvscan.split_fields(data, np.array([0]), np.array([len(data)]), ",", 4)
    assert [bool(ip_like(data, vs[f : f + 1], vl[f : f + 1], 0)[0]) for f in range(4)] == [True, True, False, False]


def test_file_year(tmp_path: Path) -> None:
    sink = MemorySink()
    path = tmp_path / "fw.log"
    path.write_text("x")
    os.utime(path, (datetime(2019, 6, 1, tzinfo=UTC).timestamp(),) * 2)
    assert file_year(sink, path) == 2019
    assert file_year(sink, tmp_path / "missing") == datetime.now(UTC).year == file_year(sink)
    sink.meta["default_year"] = 2016
    assert file_year(sink, path) == 2016


def test_choose_time_prefers_a_zone_and_marks_guesses() -> None:
    local = Stamp(datetime(2020, 1, 1, 8), False, year_known=False)
    zoned = Stamp(datetime(2020, 1, 1, 0), True)
    sink = MemorySink()
    assert choose_time([None, local, zoned], sink) == zoned.value and not sink.meta
    assert choose_time([None, local], sink) == local.value
    assert sink.meta == {"local_time": True, "year_guessed": True}
    assert choose_time([None], sink) is None


@pytest.mark.parametrize("year", [None, 2017])
def test_syslog_parsers_feed_non_blank_lines_and_count_reasons(tmp_path: Path, year: int | None) -> None:
    seen: list[tuple[int, int, str, int]] = []

    def read(no: int, offset: int, line: str, sink: MemorySink, default_year: int) -> str | None:
        seen.append((no, offset, line, default_year))
        return None if line.startswith("ok") else "not ok"

    parse_text, parse_file = syslog_parsers(read)
    sink = MemorySink()
    if year:
        sink.meta["default_year"] = year
    parse_text("ok 1\n \x00\nbad\n", sink)
    expected_year = year or datetime.now(UTC).year
    assert seen == [(1, -1, "ok 1", expected_year), (3, -1, "bad", expected_year)]
    assert sink.skip_counts == {"not ok": 1}
    path = tmp_path / "a.log"
    path.write_bytes(b"ok 1\r\nbad\r\n")
    seen.clear()
    parse_file(path, Encoding("utf-8"), sink)
    assert [(no, offset, line) for no, offset, line, _ in seen] == [(1, 0, "ok 1"), (2, 6, "bad")]
