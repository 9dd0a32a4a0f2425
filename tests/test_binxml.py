"""The compiled BinXML reader against the JSON path (the `evtx` parser): logs written by
simulate/evtxwrite.py with every value type it renders, the shapes it hands over, damaged
chunks, and the real samples when ../shared/data is present."""

from __future__ import annotations

import random
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED_DATA
from wormhunt.simulate import evtxpack
from wormhunt.simulate.evtxwrite import (
    BINARY,
    BINXML,
    BOOL,
    FILETIME,
    GUID,
    HEX32,
    HEX64,
    INT8,
    INT16,
    INT32,
    INT64,
    NULL,
    REAL64,
    SID,
    STRING,
    UINT8,
    UINT16,
    UINT32,
    UINT64,
    E,
    Sub,
    Template,
    V,
    chunk,
    write,
)  # fmt: skip
from wormhunt.sources import binxml, evtx
from wormhunt.sources.base import MemorySink

NS = {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"}
T0 = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _system(channel: str | Sub, provider: dict, first: int) -> E:
    """A manifest event's System: substitutions numbered from `first`."""
    return E(
        "System", None,
        E("Provider", provider),
        E("EventID", {"Qualifiers": Sub(first, UINT16, optional=True)}, Sub(first + 1, UINT16)),
        E("Level", None, Sub(first + 2, UINT8)),
        E("Keywords", None, Sub(first + 3, HEX64)),
        E("TimeCreated", {"SystemTime": Sub(first + 4, FILETIME)}),
        E("EventRecordID", None, Sub(first + 5, UINT64)),
        E("Correlation", {"ActivityID": Sub(first + 6, GUID, optional=True)}),
        E("Channel", None, channel),
        E("Computer", None, Sub(first + 7, STRING)),
        E("Security", {"UserID": Sub(first + 8, SID, optional=True)}),
    )  # fmt: skip


def _system_values(eid: int, rid: int, computer: str, sid: str | None, when: datetime, activity: bool) -> list[V]:
    return [
        V(NULL), V(UINT16, eid), V(UINT8, 4), V(HEX64, 0x8020000000000000), V(FILETIME, when), V(UINT64, rid),
        V(GUID, "D96638DA-E4F9-0001-F038-66D9F9E4D701") if activity else V(NULL),
        V(STRING, computer), V(SID, sid) if sid else V(NULL),
    ]  # fmt: skip


# Security 4624-like: EventData of named Data, one of every rendered type.
TYPES = [
    ("Text", STRING), ("Small", INT8), ("Byte", UINT8), ("Short", INT16), ("Port", UINT16), ("Int", INT32),
    ("ProcessId", UINT32), ("Big", INT64), ("Huge", UINT64), ("Flags", HEX32), ("LogonId", HEX64), ("Elevated", BOOL),
    ("Blob", BINARY), ("LogonGuid", GUID), ("When", FILETIME), ("TargetUserSid", SID), ("Missing", NULL),
    ("SubjectUserName", STRING), ("SubjectDomainName", STRING),
]  # fmt: skip
SECURITY = Template(
    E("Event", NS,
      _system("Security", {"Name": "Microsoft-Windows-Security-Auditing",
                           "Guid": "{54849625-5478-4994-a5ba-3e3b0328c30d}"}, 0),
      E("EventData", None, *(E("Data", {"Name": name}, Sub(9 + i, t)) for i, (name, t) in enumerate(TYPES)))),
)  # fmt: skip

# Service Control Manager 7045-like: System with EventSourceName, EventData in an embedded fragment with Binary.
CLASSIC_DATA = Template(
    E("EventData", None,
      E("Data", {"Name": "ServiceName"}, Sub(0, STRING)), E("Data", {"Name": "ImagePath"}, Sub(1, STRING)),
      E("Binary", None, Sub(2, BINARY, optional=True))),
)  # fmt: skip
CLASSIC = Template(
    E("Event", NS,
      _system("System", {"Name": "Service Control Manager", "EventSourceName": "Service Control Manager"}, 0),
      Sub(9, BINXML)),
)  # fmt: skip

# WMI-Activity 5861-like: UserData holding an embedded fragment.
USER_DATA = Template(E("Operation_ESStoConsumerBinding", {"xmlns": "Thisevent"},
                       E("Namespace", None, Sub(0, STRING)), E("ESS", None, Sub(1, STRING)),
                       E("CONSUMER", None, Sub(2, STRING)), E("PossibleCause", None, Sub(3, STRING))))  # fmt: skip
WMI = Template(
    E("Event", NS,
      _system("Microsoft-Windows-WMI-Activity/Operational",
              {"Name": "Microsoft-Windows-WMI-Activity", "Guid": Sub(20, GUID)}, 0),
      E("UserData", None, Sub(9, BINXML))),
)  # fmt: skip

# Unnamed Data items (a shape the reader hands to the JSON path).
UNNAMED = Template(
    E("Event", NS,
      _system("Application", {"Name": "Legacy"}, 0),
      E("EventData", None, E("Data", None, Sub(9, STRING)), E("Data", None, Sub(10, STRING)))),
)  # fmt: skip

STRINGS = ["C:\\Windows\\AppDiagnostics\\svchost.exe", "", "服务器管理员", "emoji 😀 end", "nul\0\0", "\ud800lone",
           "x" * 1200, "quote \" and <tag> & amp", " leading space", "tab\tnew\nline", "mid\0nul",
           "\udc00x\ud83d"]  # fmt: skip


def _security(i: int, rng: random.Random) -> tuple[Template, list[V], datetime]:
    when = T0 + timedelta(seconds=i, microseconds=rng.randrange(10**6))
    s = rng.choice(STRINGS)
    values = _system_values(4624, 1000 + i, rng.choice(["dc01.corp.local", "WS-7", "", "10.0.0.5"]),
                            rng.choice(["S-1-5-18", "S-1-5-21-4230534742-2542757381-3142984815-1111", None]), when,
                            rng.random() < 0.5)  # fmt: skip
    data = {
        STRING: V(STRING, s), INT8: V(INT8, rng.choice([-128, -1, 0, 127])), UINT8: V(UINT8, rng.choice([0, 255])),
        INT16: V(INT16, rng.choice([-32768, 445])), UINT16: V(UINT16, rng.choice([0, 65535])),
        INT32: V(INT32, rng.choice([-(2**31), 2**31 - 1])), UINT32: V(UINT32, rng.choice([0, 4000, 2**32 - 1])),
        INT64: V(INT64, rng.choice([-(2**63), 2**63 - 1, 0])), UINT64: V(UINT64, rng.choice([2**64 - 1, 2**63, 7])),
        HEX32: V(HEX32, rng.choice([0, 0x10, 0xFFFFFFFF])), HEX64: V(HEX64, rng.choice([0x3E7, 2**64 - 1])),
        BOOL: V(BOOL, rng.random() < 0.5),
        BINARY: V(BINARY, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))),
        GUID: V(GUID, "365ABB72-0D1D-5CD7-0000-001020EF1500"), FILETIME: V(FILETIME, when),
        SID: V(SID, "S-1-5-21-1-2-3-500"), NULL: V(NULL),
    }  # fmt: skip
    vals = [data[t] for _, t in TYPES[:-2]] + [V(STRING, rng.choice(["admin", "", "SYSTEM"])), V(STRING, "CORP")]
    return SECURITY, values + vals, when


def _classic(i: int, rng: random.Random) -> tuple[Template, list[V], datetime]:
    when = T0 + timedelta(minutes=i)
    inner = [V(STRING, f"svc{i}"), V(STRING, rng.choice(STRINGS)), rng.choice([V(NULL), V(BINARY, b"PSEXESVC\0")])]
    values = _system_values(7045, 5000 + i, "jump01.offsec.lan", "S-1-5-18", when, False)
    values[0] = V(UINT16, 16384)
    return CLASSIC, [*values, V(BINXML, (CLASSIC_DATA, inner))], when


def _wmi(i: int, rng: random.Random) -> tuple[Template, list[V], datetime]:
    when = T0 + timedelta(hours=i)
    inner = [V(STRING, "//./root/subscription"), V(STRING, rng.choice(["BotFilter82", ""])),
             V(STRING, 'CommandLineEventConsumer="BotConsumer23"'), V(STRING, rng.choice(["", "cause"]))]  # fmt: skip
    values = _system_values(5861, 9000 + i, "IEWIN7", None, when, False)
    values += [V(NULL)] * 11 + [V(GUID, "1418EF04-B0B4-4623-BF7E-D74AB47BBDAA")]
    values[9] = V(BINXML, (USER_DATA, inner))
    return WMI, values, when


def _log(tmp_path: Path, name: str, make, chunks: int = 3, per_chunk: int = 40, seed: int = 7) -> Path:
    rng = random.Random(seed)
    out = []
    n = 0
    for _ in range(chunks):
        out.append(chunk([make(n + i, rng) for i in range(per_chunk)], first_id=n + 1))
        n += per_chunk
    return write(tmp_path / name, out)


def _rows(path: Path, compiled: bool, part: tuple[int, int] | None = None) -> tuple[list[dict], int, dict]:
    """(rows by line, ordinals used, skip counts) of one reading of the file."""
    saved = evtx.BINXML
    evtx.BINXML = compiled
    try:
        sink = MemorySink()
        used = evtx.parse_part(path, part, sink)
    finally:
        evtx.BINXML = saved
    return sorted(sink.of("events"), key=lambda r: r["line"]), used, dict(sink.skip_counts)


def _same_as_json(path: Path, part: tuple[int, int] | None = None) -> tuple[list[dict], int]:
    """The compiled reading equals the JSON path's; returns its rows and the chunks it read itself."""
    before = binxml.STATS["compiled"]
    fast = _rows(path, True, part)
    compiled = binxml.STATS["compiled"] - before
    ref = _rows(path, False, part)
    assert fast[1:] == ref[1:]
    assert len(fast[0]) == len(ref[0])
    for ours, theirs in zip(fast[0], ref[0], strict=True):
        assert ours == theirs
    return fast[0], compiled


@pytest.mark.parametrize(
    ("make", "kinds"),
    [(_security, "security"), (_classic, "classic"), (_wmi, "userdata")],
)
def test_compiled_reader_equals_the_json_path(tmp_path: Path, make, kinds: str) -> None:
    path = _log(tmp_path, f"{kinds}.evtx", make)
    rows, compiled = _same_as_json(path)
    assert len(rows) == 120
    assert compiled == 3, "the reader read the chunks itself (not handed to JSON)"


def test_rendered_values_are_the_json_paths(tmp_path: Path) -> None:
    rows, _ = _same_as_json(_log(tmp_path, "security.evtx", _security, chunks=2, per_chunk=60, seed=3))
    first = rows[0]
    assert first["event_id"] == 4624 and first["channel"] == "Security"
    assert first["provider"] == "Microsoft-Windows-Security-Auditing"
    assert first["ts"].replace(tzinfo=UTC) >= T0 and first["record_id"] == 1000
    data = dict(first["data"])
    assert set(data) == {name for name, _ in TYPES}
    assert data["LogonGuid"] == "365ABB72-0D1D-5CD7-0000-001020EF1500"
    assert data["TargetUserSid"] == "S-1-5-21-1-2-3-500" and data["Missing"] == ""  # a null named Data
    assert data["LogonId"].startswith("0x") and data["Elevated"] in ("true", "false")
    texts = {dict(r["data"])["Text"] for r in rows}
    assert "服务器管理员" in texts and "emoji 😀 end" in texts and "" in texts  # the JSON path's own spellings
    users = {r["user"] for r in rows}
    assert {"CORP\\admin", "CORP\\SYSTEM", "CORP\\"} & users


def test_classic_events_keep_event_source_and_binary(tmp_path: Path) -> None:
    rows, compiled = _same_as_json(_log(tmp_path, "classic.evtx", _classic, chunks=2))
    assert compiled == 2
    assert {r["provider"] for r in rows} == {"Service Control Manager"}
    blobs = {dict(r["data"]).get("Binary") for r in rows}
    assert blobs == {None, "505345584553564300"}  # PSEXESVC\0 as the parser's hex


def test_shapes_without_a_plan_go_through_json(tmp_path: Path) -> None:
    def unnamed(i: int, rng: random.Random):
        values = _system_values(1000, i + 1, "WS-1", None, T0, False)
        return UNNAMED, [*values, V(STRING, "a"), V(STRING, "b")], T0

    def mixed(i: int, rng: random.Random):
        return unnamed(i, rng) if i % 40 == 5 else _security(i, rng)

    rows, compiled = _same_as_json(_log(tmp_path, "unnamed.evtx", unnamed, chunks=2))
    assert compiled == 0 and dict(rows[0]["data"]) == {"Data1": "a", "Data2": "b"}
    rows, compiled = _same_as_json(_log(tmp_path, "mixed.evtx", mixed, chunks=3))
    assert compiled == 0 and len(rows) == 120  # one odd record hands its whole chunk over


def test_values_of_unexpected_types_go_through_json(tmp_path: Path) -> None:
    def odd(i: int, rng: random.Random):
        t, values, when = _security(i, rng)
        if i == 50:  # the 51st record: EventID as text, a float in the data
            values = list(values)
            values[1] = V(STRING, "4624")
            values[9] = V(REAL64, 1.5)
        return t, values, when

    rows, compiled = _same_as_json(_log(tmp_path, "odd.evtx", odd, chunks=3))
    assert compiled == 2 and rows[50]["event_id"] == 4624


def test_a_signature_whose_rows_differ_is_never_used(tmp_path: Path) -> None:
    path = _log(tmp_path, "security.evtx", _security, chunks=2)
    buf = np.frombuffer(path.read_bytes()[evtx.HEADER_BYTES :], np.uint8)
    plans = binxml.Plans()
    window = binxml.read_window(buf, 2, plans, verify=lambda chunk, cols: [False] * len(cols["ts"]))
    assert window.bad.all() and not len(window.chunk) and plans.rejected and not plans.verified
    again = binxml.read_window(buf, 2, plans, verify=lambda chunk, cols: pytest.fail("checked again"))
    assert again.bad.all()
    unchecked = binxml.read_window(buf, 2, binxml.Plans(), verify=None)
    assert unchecked.bad.all(), "nothing is trusted before it was checked"


@pytest.mark.parametrize("seed", range(12))
def test_damaged_chunks_read_as_the_json_path_reads_them(tmp_path: Path, seed: int) -> None:
    """Bytes overwritten anywhere in the records: no crash, and the same rows as the parser."""
    rng = random.Random(seed)
    path = _log(tmp_path, "security.evtx", _security, chunks=3, seed=seed)
    data = bytearray(path.read_bytes())
    for _ in range(rng.choice([1, 4, 30])):
        c = rng.randrange(3)
        at = evtx.HEADER_BYTES + c * evtx.CHUNK_BYTES + rng.randrange(512, 30000)
        data[at : at + rng.choice([1, 2, 8])] = bytes(rng.randrange(256) for _ in range(8))[: rng.choice([1, 2, 8])]
    path.write_bytes(bytes(data))
    fast = _rows(path, True)
    ref = _rows(path, False)
    assert fast[1] == ref[1]
    assert fast[0] == ref[0]


def test_parts_of_a_log_read_as_the_whole(tmp_path: Path) -> None:
    path = _log(tmp_path, "big.evtx", lambda i, rng: [_security, _classic, _wmi][i % 3](i, rng), chunks=9)
    whole, _ = _same_as_json(path)
    lines = 0
    got = []
    for part in [(0, 4), (4, 9)]:
        rows, _ = _same_as_json(path, part)
        got += [r | {"line": r["line"] + lines} for r in rows]
        lines += len(rows)
    assert got == whole


def test_a_truncated_log_reads_as_the_json_path_reads_it(tmp_path: Path) -> None:
    path = _log(tmp_path, "cut.evtx", _security, chunks=3)
    path.write_bytes(path.read_bytes()[: evtx.HEADER_BYTES + 2 * evtx.CHUNK_BYTES + 9000])
    rows, _ = _same_as_json(path)
    assert 80 <= len(rows) < 120


@pytest.mark.skipif(not (SHARED_DATA / "evtx").is_dir(), reason="../shared/data is absent")
def test_real_samples_and_their_dense_copies(tmp_path: Path) -> None:
    samples = sorted((SHARED_DATA / "evtx").glob("*.evtx"))
    for p in samples:
        rows, compiled = _same_as_json(p)
        assert rows and compiled >= 1, p.name  # every sample's chunks read by the compiled reader
    dense = tmp_path / "dense.evtx"
    evtxpack.pack(samples, 3, dense, dense=True)
    rows, compiled = _same_as_json(dense)
    assert len(rows) > 2000 and compiled == 21


def test_cases_the_fuzzing_found_read_as_the_parser_reads_them(tmp_path: Path) -> None:
    """A BOOL of neither 0 nor 1 (the parser shows the number), a time beyond year 9999, a
    chunk whose header checksum fails (the parser skips it)."""
    import struct

    def odd(i: int, rng: random.Random):
        t, values, when = _security(i, rng)
        values = list(values)
        if i == 3:
            values[9 + [t for _, t in TYPES].index(BOOL)] = V(BOOL, raw=struct.pack("<I", 62515))
        if i == 45:
            values[4] = V(FILETIME, raw=struct.pack("<Q", 2**64 - 5))
        return t, values, when

    path = _log(tmp_path, "odd.evtx", odd, chunks=3)
    data = bytearray(path.read_bytes())
    data[evtx.HEADER_BYTES + 2 * evtx.CHUNK_BYTES + 60] ^= 0xFF  # chunk 2: header checksum no longer holds
    path.write_bytes(bytes(data))
    rows, compiled = _same_as_json(path)
    assert compiled == 0  # chunk 0 and 1 each hold an odd record; chunk 2 is damaged: the parser decides
    assert dict(rows[3]["data"])["Elevated"] == "62515"
    assert sum(r["record_id"] >= 1080 for r in rows) == 40  # the parser still reads chunk 2


def test_rows_held_back_keep_their_values_when_the_next_file_is_read(tmp_path: Path) -> None:
    """The reader's buffers are reused: rows a sink holds (the store gathers row groups) must not
    change when the next file is read."""
    import pyarrow as pa

    class Holding(evtx.Sink):
        def __init__(self) -> None:
            super().__init__()
            self.tables: list[pa.Table] = []

        def _batch(self, kind, table: pa.Table) -> None:
            self.tables.append(table)

    first = _log(tmp_path, "a.evtx", _security, chunks=2, seed=1)
    second = _log(tmp_path, "b.evtx", _classic, chunks=2, seed=2)
    held = Holding()
    evtx.parse_part(first, None, held)
    before = [t.to_pylist() for t in held.tables]
    evtx.parse_part(second, None, Holding())
    assert [t.to_pylist() for t in held.tables] == before
    assert {r["record_id"] for t in before for r in t} == set(range(1000, 1080))


def test_a_log_in_parts_through_the_workers_and_the_spool(tmp_path: Path, monkeypatch) -> None:
    """A log parsed in parts by the worker pool: parts over SPOOL_BYTES come back through the
    spool (mapped, then removed), the rows are the one-pass rows, and no spool folder is left."""
    import wormhunt.ingest as ingest_mod
    import wormhunt.store as store_mod
    from wormhunt.store import Case

    if ingest_mod._cores() < 2:
        pytest.skip("parsing in parts needs two cores")

    def long(i: int, rng: random.Random):
        t, values, when = _security(i, rng)
        values = list(values)
        values[9] = V(STRING, f"{i:06d} " + "C:\\Windows\\AppDiagnostics\\svchost.exe " * 30)
        return t, values, when

    path = _log(tmp_path / "in", "big.evtx", long, chunks=128, per_chunk=20)
    whole, _ = _same_as_json(path)
    monkeypatch.setattr(evtx, "PART_CHUNKS", 64)
    monkeypatch.setattr(ingest_mod, "SPLIT_MIN_RECORDS", 0)
    monkeypatch.setattr(ingest_mod, "BATCHED_STREAM_BYTES", 0)
    folders: list[str] = []
    real_folder, real_unspool = ingest_mod.spool_folder, store_mod._unspool
    monkeypatch.setattr(ingest_mod, "spool_folder", lambda: folders.append(real_folder()) or folders[-1])
    unspooled: list[str] = []
    monkeypatch.setattr(store_mod, "_unspool", lambda p: unspooled.append(p) or real_unspool(p))
    with Case(tmp_path / "case") as case:
        (entry,) = ingest_mod.ingest(case, [tmp_path / "in"])
        rows = case.query("SELECT line, record_id, data FROM events ORDER BY line")
    assert len(unspooled) == 2 and folders and not Path(folders[0]).exists()
    assert entry.records == len(rows) == len(whole) == 2560
    assert [(r["line"], r["record_id"], dict(r["data"])) for r in rows] == [
        (w["line"], w["record_id"], dict(w["data"])) for w in whole
    ]


def test_templates_at_other_offsets_in_each_chunk_are_planned_and_checked_once(tmp_path: Path) -> None:
    """Windows writes every template again in each chunk, wherever the chunk first uses it: the
    same template at other offsets must share one plan and one check, not cost one per chunk."""
    rng = random.Random(5)
    chunks = []
    for c in range(30):
        records = [[_security, _classic, _wmi][i % 3](c * 30 + i, rng) for i in range(30)]
        rng.shuffle(records)  # each chunk meets its templates in another order: other offsets
        chunks.append(chunk(records, first_id=c * 30 + 1))
    path = write(tmp_path / "mixed.evtx", chunks)
    buf = np.frombuffer(path.read_bytes()[evtx.HEADER_BYTES :], np.uint8)
    checks = []
    verify = evtx._verifier(path.read_bytes()[: evtx.HEADER_BYTES])
    plans = binxml.Plans()
    window = binxml.read_window(buf, 30, plans, verify=lambda ch, cols: checks.append(1) or verify(ch, cols))
    assert not window.bad.any()
    assert len(plans.plans) == 5  # three events' templates, two embedded fragments'
    assert len(checks) <= 3 and len(plans.verified) <= 8
    _same_as_json(path)


def test_a_file_after_another_keeps_its_fast_path(tmp_path: Path) -> None:
    """Buffers reused from the previous file must not leak into the next one's signatures."""

    def some_unnamed(i: int, rng: random.Random):
        if i == 30:  # an unplanned shape in the first chunk only, where the first file had signatures
            values = _system_values(1000, i + 1, "WS-1", None, T0, False)
            return UNNAMED, [*values, V(STRING, "a"), V(STRING, "b")], T0
        return _classic(i, rng)  # fewer signatures than the first file's

    first = _log(tmp_path, "a.evtx", _security, chunks=3, seed=1)
    second = _log(tmp_path, "b.evtx", some_unnamed, chunks=3, seed=2)
    _, alone = _same_as_json(second)
    _same_as_json(first)
    _, after = _same_as_json(second)
    assert alone == after == 2


@pytest.mark.parametrize(
    "case", ["last_id", "odd_string", "provider_number", "domain_number", "empty_attributes", "header_time"]
)
def test_value_cases_the_review_found_read_as_the_parser_reads_them(tmp_path: Path, case: str) -> None:
    import struct

    names = {"Name": Sub(20, UINT32), "EventSourceName": Sub(21, STRING)}
    provider = Template(E("Event", NS, _system("Application", names, 0),
                          E("EventData", None, E("Data", {"Name": "SubjectUserName"}, Sub(9, STRING)),
                            E("Data", {"Name": "SubjectDomainName"}, Sub(10, UINT32)))))  # fmt: skip

    # Each case first appears in the second chunk: the first chunk's check sees only values that
    # read alike, so only the reader's own handling keeps the rows right.
    def make(i: int, rng: random.Random):
        t, values, when = _security(i, rng)
        values = list(values)
        later = i >= 40 and i % 2
        if case == "odd_string" and i == 47:
            values[9] = V(STRING, raw=b"abc")  # a UTF-16 string of 3 bytes
        if case == "empty_attributes":
            values[8] = V(STRING, "" if later else "S-1-5-18")  # Security@UserID as a string, later empty
        if case in ("provider_number", "domain_number"):
            base = _system_values(1, i + 1, "WS-2", "S-1-5-18", when, False)
            number = 0 if later else 7
            extra = [V(UINT32, number if case == "provider_number" else 1), V(STRING, "" if later else "Source")]
            return provider, [*base, V(STRING, "bob"), V(UINT32, number if case == "domain_number" else 5),
                              *[V(NULL)] * 9, *extra], when  # fmt: skip
        return t, values, when

    path = _log(tmp_path, f"{case}.evtx", make, chunks=2)
    if case == "last_id":  # chunk 0's header declares fewer records than it holds (a log copied in use)
        data = bytearray(path.read_bytes())
        head = evtx.HEADER_BYTES
        struct.pack_into("<QQ", data, head + 24, 1, 25)
        checksum = zlib.crc32(bytes(data[head : head + 120]) + bytes(data[head + 128 : head + 512]))
        struct.pack_into("<I", data, head + 124, checksum)
        path.write_bytes(bytes(data))
    if case == "header_time":  # a record header's time past year 9999 in chunk 1 (the parser: damaged)
        data = bytearray(path.read_bytes())
        at = evtx.HEADER_BYTES + evtx.CHUNK_BYTES + 512
        for _ in range(5):  # the sixth record
            at += struct.unpack_from("<I", data, at + 4)[0]
        data[at + 23] = 0xFF
        path.write_bytes(bytes(data))
    _same_as_json(path)


def test_the_parser_ignores_element_sizes_as_the_template_key_assumes(tmp_path: Path) -> None:
    """The template key leaves out element and attribute-list sizes (they change with where names
    are written). That holds while the parser ignores them: chunks whose templates carry wrong
    sizes must read the same both ways, and share the plans of the right ones. Re-check this
    when the `evtx` parser is upgraded."""
    rng = random.Random(11)
    makes = [_security, _classic, _wmi]
    chunks = [chunk([makes[i % 3](c * 30 + i, rng) for i in range(30)], first_id=c * 30 + 1, bogus_sizes=c % 2 == 1)
              for c in range(4)]  # fmt: skip
    path = write(tmp_path / "sizes.evtx", chunks)
    rows, compiled = _same_as_json(path)
    assert len(rows) == 120 and compiled == 4
