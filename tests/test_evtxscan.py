"""The compiled EVTX record scanner against the Python path that defines the semantics: every
record, regular or odd, must give the same events row either way, and the odd ones must be
the ones the scanner leaves to Python."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wormhunt.sources import evtx
from wormhunt.store import TableSink

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "evtx"
STAMP = "2024-01-01 10:00:00.000000 UTC"


def _rec(event_data: Any = None, user_data: Any = None, **system: Any) -> str:
    """A record's JSON as the Rust parser writes it (two-space indent, non-ASCII kept)."""
    sys_part: dict[str, Any] = {
        "Provider": {"#attributes": {"Name": "Service Control Manager", "Guid": "{555908d1}"}},
        "EventID": {"#attributes": {"Qualifiers": 16384}, "#text": 7045},
        "TimeCreated": {"#attributes": {"SystemTime": "2024-01-01T10:00:00.123456Z"}},
        "EventRecordID": 42,
        "Channel": "System",
        "Computer": "pc1.corp.local",
        "Security": {"#attributes": {"UserID": "S-1-5-18"}},
    }
    for k, v in system.items():
        if v is ...:
            sys_part.pop(k, None)
        else:
            sys_part[k] = v
    event: dict[str, Any] = {"#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"}}
    event["System"] = sys_part
    if event_data is not ...:
        event["EventData"] = event_data
    if user_data is not None:
        event["UserData"] = user_data
    return json.dumps({"Event": event}, indent=2, ensure_ascii=False)


def _both(texts: list[Any], rids: list[Any] | None = None) -> tuple[pa.Table | None, pa.Table | None, int, TableSink]:
    """(scanned table, Python-path table, records the scanner left, the scanned run's sink)."""
    lines = list(range(1, len(texts) + 1))
    stamps = [STAMP] * len(texts)
    rids = rids or [1000 + i for i in lines]
    fast = TableSink()
    by_hand = evtx._scan_batch(evtx._Columns(fast, "evtx"), fast, lines, texts, stamps, rids)
    slow = TableSink()
    cols = evtx._Columns(slow, "evtx")
    for args in zip(lines, texts, stamps, rids, strict=True):
        evtx._add_record(cols, slow, *args)
    cols.flush()

    def table(sink: TableSink) -> pa.Table | None:
        got = sink.tables.get("events")
        return pa.concat_tables(got) if got else None

    assert fast.skip_counts == slow.skip_counts
    return table(fast), table(slow), by_hand, fast


def _rows(table: pa.Table | None) -> list[dict[str, Any]]:
    return table.to_pylist() if table is not None else []


REGULAR = [
    _rec({"ServiceName": "BTOBTO", "ImagePath": "%COMSPEC% /Q /c echo cd ^> \\\\127.0.0.1\\C$\\__output"}),
    _rec({"q": 'say "hi"\n\ttab \u0001 ctl', "slash": "a/b", "smile": "\U0001f600", "zh": "服务 virusé.exe"}),
    _rec({"ProcessId": 3140, "Neg": -5, "On": True, "Off": False, "Nothing": None, "Empty": ""}),
    _rec({"#attributes": {"Name": "x"}, "A": {"#attributes": {"k": 1}, "#text": "inner"}, "B": {"#text": 7}}),
    _rec(None, {"LogFileCleared": {"#attributes": {"xmlns": "x"}, "SubjectUserName": "admmig", "Channel": "System"}}),
    _rec(..., {"first": "scalar", "Child": {"User": "OFFSEC\\bob"}}),
    _rec({"User": "NT AUTHORITY\\SYSTEM", "SubjectUserName": "ignored"}),
    _rec({"SubjectUserName": "alice", "SubjectDomainName": "CORP"}),
    _rec({"SubjectUserName": "alice", "SubjectDomainName": None}),
    _rec({"SubjectUserName": "\\\\alice", "SubjectDomainName": ""}),
    _rec({"User": {"#text": "not a string as decoded"}, "SubjectUserName": "carol"}),
    _rec({}, EventID=4624),
    _rec({}, EventID=None, Channel=None, Computer=None, Security=None, Provider=None),
    _rec({}, Provider={"#attributes": {"Name": "", "EventSourceName": "Src"}}),
    _rec({}, Provider={"#attributes": {"Name": ""}}),
    _rec({}, Provider={"#attributes": {"EventSourceName": "OnlySrc"}}),
    _rec({}, Provider={"Guid": "no attributes"}, Security={}),
    _rec({}, TimeCreated=...),
    _rec({}, TimeCreated={"#attributes": {"SystemTime": ""}}),
    _rec({}, TimeCreated={"#attributes": {"SystemTime": "not a time"}}),
    _rec({}, EventRecordID=0),
    _rec({}, EventRecordID=...),
    _rec({}, Computer="DC01", Channel="Microsoft-Windows-Sysmon/Operational"),
    _rec({"Data": "a scalar Data is a named value"}),
]

IRREGULAR = [
    _rec({"Data": ["unnamed", "list"]}),
    _rec({"Data": {"#attributes": {"Name": "x"}, "#text": "one"}}),
    _rec({"Nested": {"a": 1}}),
    _rec({"Array": [1, 2]}),
    _rec({"Float": 1.5}),
    _rec({"Exp": 1e300}),
    _rec({"Deep": {"#text": {"x": 1}}}),
    _rec({}, EventID="7045"),
    _rec({}, EventID={"#text": "7045"}),
    _rec({}, EventID=-1),
    _rec({}, EventID=2**31),
    _rec({}, Channel=5),
    _rec({}, Provider="a string"),
    _rec({}, Provider={"#attributes": {"Name": 3}}),
    _rec({}, EventRecordID="12"),
    _rec({"SubjectUserName": "x", "SubjectDomainName": 7}),
    '{"Event": {"System": {"EventID": 1, "Channel": "bad \\ud800 escape"}}}',
    '{"Event": {"EventData": {"a": "b"}}}',  # no System: damaged
    '{"NotEvent": 1}',
    "not json at all",
    '{"Event": {"System": {"EventID": 1}}',  # cut short
    '{"Event": {"System": {"EventID": 1}}} trailing',
    '{"Event": {"System": {"EventID": 1}, "EventData": ',
    '{"Event": {"System": {"Provider": ',
    "",
]


def test_regular_records_are_scanned_and_match_the_python_path() -> None:
    fast, slow, by_hand, _ = _both(REGULAR)
    assert by_hand == 0  # every one of these went through the compiled scanner
    assert _rows(fast) == _rows(slow)
    assert fast is not None and fast.equals(slow)
    rows = {r["line"]: r for r in _rows(fast)}
    assert dict(rows[2]["data"])["q"] == 'say "hi"\n\ttab \u0001 ctl'
    assert dict(rows[2]["data"])["smile"] == "\U0001f600"
    assert dict(rows[3]["data"])["ProcessId"] == "3140" and dict(rows[3]["data"])["On"] == "true"
    assert dict(rows[4]["data"]) == {"A": "inner", "B": "7"}
    assert rows[6]["user"] == "OFFSEC\\bob" and rows[8]["user"] == "CORP\\alice" and rows[10]["user"] == "alice"
    assert rows[14]["provider"] == "Src" and rows[15]["provider"] is None
    assert rows[21]["record_id"] == 1021  # EventRecordID 0: the parser's record id


def test_odd_records_go_the_python_way_in_file_order() -> None:
    texts = [x for pair in zip(REGULAR, IRREGULAR, strict=False) for x in pair]
    fast, slow, by_hand, sink = _both(texts)
    assert by_hand == len(IRREGULAR[: len(REGULAR)])
    assert _rows(fast) == _rows(slow)
    assert [r["line"] for r in _rows(fast)] == sorted(r["line"] for r in _rows(fast))
    assert sink.skip_counts["damaged evtx record"] >= 4


def test_a_batch_the_scanner_cannot_take_is_read_by_hand() -> None:
    # A NUL inside a record (never written by the parser) or a non-text record: all by hand.
    for odd in ['{"Event": {"System": {"EventID": 1, "Channel": "a\x00b"}}}', None, 12]:
        fast, slow, by_hand, _ = _both([REGULAR[0], odd, REGULAR[1]])
        assert by_hand == 3
        assert _rows(fast) == _rows(slow)


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_value = st.one_of(
    _text,
    st.integers(-(2**40), 2**62),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.fixed_dictionaries({"#text": st.one_of(_text, st.integers(0, 9))}),
    st.lists(st.integers(0, 3), max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.dictionaries(_text, _value, max_size=6), min_size=1, max_size=8),
    st.booleans(),
)
def test_random_event_data_matches_the_python_path(datas: list[dict[str, Any]], ascii_only: bool) -> None:
    texts = []
    for i, data in enumerate(datas):
        event = json.loads(_rec(data, EventRecordID=i))
        texts.append(json.dumps(event, indent=2, ensure_ascii=ascii_only))
    fast, slow, _, _ = _both(texts)
    assert _rows(fast) == _rows(slow)


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/evtx is absent")
def test_real_samples_scanned_like_the_python_path() -> None:
    import evtx as rust

    texts, rids = [], []
    for path in sorted(DATA.glob("*.evtx")):
        for rec in rust.PyEvtxParser(str(path)).records_json():
            texts.append(rec["data"])
            rids.append(rec["event_record_id"])
    fast, slow, by_hand, _ = _both(texts, rids)
    assert by_hand == 0
    assert fast is not None and fast.num_rows == len(texts) == 41
    assert fast.equals(slow)
