"""Event logs end to end: real EVTX samples (skipped when ../shared/data is absent), a damaged
file, the JSON-lines and XML readers, the built-in detections, Sigma rules and the simulator."""

from __future__ import annotations

import json
import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wormhunt.analyze import events as ev
from wormhunt.ingest import ingest
from wormhunt.sigma import load_rules, run_rules
from wormhunt.simulate import simulate
from wormhunt.sources import evtx
from wormhunt.sources.base import MemorySink
from wormhunt.sources.text import Encoding
from wormhunt.store import Case

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "evtx"
SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "format-samples" / "windows_events"
real = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/evtx is absent")


def _parse(path: Path) -> MemorySink:
    sink = MemorySink()
    evtx.parse_file(path, Encoding("binary"), sink)
    return sink


@pytest.fixture(scope="module")
def real_case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    if not DATA.is_dir():
        pytest.skip("../shared/data/evtx is absent")
    case = Case(tmp_path_factory.mktemp("evtx") / "case")
    ingest(case, sorted(DATA.glob("*.evtx")))
    return case


@real
@pytest.mark.parametrize(
    ("name", "records", "service", "image", "ts", "host"),
    [
        (
            "7045-psexec-service-install.evtx",
            4,
            "PSEXESVC",
            r"%SystemRoot%\PSEXESVC.exe",
            "2021-04-21 09:27:56",
            "JUMP01",
        ),
        (
            "7045-4697-smbexec-service.evtx",
            2,
            "BTOBTO",
            "%COMSPEC% /Q /c echo cd  ^> \\\\127.0.0.1\\C$",
            "2021-12-13 12:55:45",
            "ROOTDC1",
        ),
        ("7045-random-service.evtx", 2, "bad-task", "virusé.exe", "2020-07-11 21:50:07", "FS02"),
        ("7045-remote-service.evtx", 3, "spoolfool", "cmd.exe", "2019-03-03 09:20:28", "WIN-77LTAPHIQ1R"),
    ],
)
def test_real_7045(name: str, records: int, service: str, image: str, ts: str, host: str) -> None:
    sink = _parse(DATA / name)
    assert sink.records == records and sink.skipped == 0
    row = next(r for r in sink.of("events") if r["event_id"] == 7045)
    data = dict(row["data"])
    assert data["ServiceName"] == service and data["ImagePath"].startswith(image)
    assert row["ts"].strftime("%Y-%m-%d %H:%M:%S") == ts and row["host"] == host and row["channel"] == "System"


@real
def test_real_remote_services_all_three() -> None:
    rows = _parse(DATA / "7045-remote-service.evtx").of("events")
    assert [dict(r["data"])["ServiceName"] for r in rows] == ["spoolfool", "spoolsv", "remotesvc"]
    assert dict(rows[2]["data"])["ImagePath"] == "calc.exe"


@real
def test_real_wmi_names() -> None:
    rows = _parse(DATA / "sysmon-19-21-commandline-consumer.evtx").of("events")
    names = {ev.unquote(dict(r["data"]).get("Name")) for r in rows if r["event_id"] in (19, 20)}
    assert {"BotFilter82", "BotConsumer23"} <= names
    q = next(dict(r["data"])["Query"] for r in rows if r["event_id"] == 19)
    assert "Win32_PerfFormattedData_PerfOS_System" in q
    rows = _parse(DATA / "sysmon-19-20-wmi-powerlurk.evtx").of("events")
    assert {ev.unquote(dict(r["data"])["Name"]) for r in rows} == {"Evil"}
    assert rows[0]["host"] == "FS01" and rows[0]["ts"].date().isoformat() == "2021-06-09"


@real
def test_real_findings(real_case: Case) -> None:
    found = {(f.rule, f.host, f.params.get("name") or f.params.get("filter")) for f in ev.findings(real_case)}
    assert ("events.service_install_remote_tool", "JUMP01", "PSEXESVC") in found
    assert ("events.service_install_comspec", "ROOTDC1", "BTOBTO") in found
    assert ("events.service_install_no_path", "FS02", "bad-task") in found
    assert ("events.service_install_no_path", "WIN-77LTAPHIQ1R", "remotesvc") in found
    assert ("events.wmi_filter", "IEWIN7", "BotFilter82") in found
    assert ("events.wmi_consumer", "IEWIN7", "BotConsumer23") in found
    assert ("events.wmi_binding", "IEWIN7", "BotFilter82") in found
    assert ("events.wmi_filter", "FS01", "Evil") in found and ("events.wmi_consumer", "FS01", "Evil") in found
    psexec = next(f for f in ev.findings(real_case) if f.host == "JUMP01")
    assert psexec.first_seen == datetime(2021, 4, 21, 9, 27, 56, 82509)


SIGMA_RULES = """
title: Service Image In Upper Case Path
id: 11111111-1111-4111-8111-000000000001
logsource: {product: windows, service: system}
detection:
  sel:
    EventID: 7045
    ImagePath|contains: '%systemroot%\\psexesvc.EXE'
  condition: sel
level: high
---
title: Any 7045
id: 11111111-1111-4111-8111-000000000002
logsource: {product: windows, service: system}
detection:
  sel: {EventID: 7045}
  condition: sel
level: low
---
title: Cmd Spawned Via Sysmon
id: 11111111-1111-4111-8111-000000000003
logsource: {product: windows, category: process_creation}
detection:
  sel:
    Image|endswith: '\\CMD.exe'
  condition: sel
level: medium
---
title: WMI Consumer Bot
id: 11111111-1111-4111-8111-000000000004
logsource: {product: windows, category: wmi_event}
detection:
  sel:
    Name|re: 'Bot(Filter|Consumer)\\d+'
  filter:
    Operation: Deleted
  condition: sel and not filter
level: high
---
title: Service Name Regex Case Insensitive
id: 11111111-1111-4111-8111-000000000005
logsource: {product: windows, service: security}
detection:
  sel:
    EventID: 4697
    ServiceName|re|i: '^btobto$'
  condition: sel
level: critical
"""


@real
def test_evtx_evidence_is_cited_as_its_record(real_case: Case) -> None:
    (row,) = real_case.query(
        "SELECT evidence_id, line, record_id FROM events WHERE event_id = 7045 AND data['ServiceName'] = 'BTOBTO'"
    )
    text = real_case.evidence_line(row["evidence_id"], row["line"])
    assert text == f"record {row['line']}: System 7045 (Service Control Manager), EventRecordID {row['record_id']}"


@real
def test_sigma_over_real_samples(real_case: Case, tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(SIGMA_RULES, encoding="utf-8")
    rules, problems = load_rules([tmp_path])
    assert len(rules) == 5 and not problems
    counts: dict[str, int] = {}
    for f in run_rules(real_case, rules):
        counts[f.params["rule_id"][-1]] = counts.get(f.params["rule_id"][-1], 0) + f.params["count"]
    assert counts["1"] == 1  # path written in another letter case than the event: ILIKE, not LIKE
    assert counts["2"] == 6  # 1 + 1 + 1 + 3
    assert counts["3"] == 2  # Sysmon 1 with an image ending in cmd.exe (written CMD.exe in the rule)
    assert counts["4"] == 2  # BotFilter82 and BotConsumer23 created (19 + 20), the deletions filtered out
    assert counts["5"] == 1
    f = next(f for f in run_rules(real_case, rules[:1]))
    assert f.rule == "sigma:11111111-1111-4111-8111-000000000001" and f.severity == "high" and f.host == "JUMP01"


def test_damaged_evtx(tmp_path: Path) -> None:
    src = DATA / "sysmon-19-21-commandline-consumer.evtx"
    if not src.exists():
        pytest.skip("../shared/data/evtx is absent")
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(src.read_bytes()[:30000])
    sink = _parse(cut)
    assert sink.records == 16 and sink.skip_counts["record lost in a damaged or truncated chunk"] == 1
    assert sink.meta["warnings"][0]["code"] == "evtx_truncated"
    garbage = tmp_path / "garbage.evtx"
    garbage.write_bytes(b"ElfFile\x00" + b"\xff" * 5000)
    sink = _parse(garbage)
    assert sink.records == 0  # never raises


def test_xml_and_json_samples() -> None:
    if not SAMPLES.is_dir():
        pytest.skip("format samples absent")
    sink = MemorySink()
    evtx.parse_xml_text((SAMPLES / "system_7045_xml_psexec.xml").read_text(encoding="utf-8"), sink)
    row = sink.of("events")[0]
    assert row["event_id"] == 7045 and dict(row["data"])["ServiceName"] == "PSEXESVC"
    sink = MemorySink()
    evtx.parse_xml_text((SAMPLES / "wmi-activity_5861_userdata-xml_evtxecmd-map.xml").read_text(encoding="utf-8"), sink)
    assert dict(sink.of("events")[0]["data"])["ESS"] == "SCM Event Log Filter"


def test_json_lines_and_detections(tmp_path: Path) -> None:
    def line(eid: int, channel: str, data: dict[str, str], ts: str) -> str:
        return json.dumps(
            {
                "@timestamp": ts,
                "winlog": {
                    "channel": channel,
                    "event_id": eid,
                    "computer_name": "pc1.corp",
                    "record_id": 1,
                    "provider_name": "x",
                    "event_data": data,
                },
            }
        )

    text = "\n".join(
        [
            line(4624, "Security", {"LogonType": "3", "IpAddress": "10.0.0.9"}, "2024-01-01T10:00:00Z"),
            line(
                5145,
                "Security",
                {"IpAddress": "10.0.0.9", "ShareName": "\\\\*\\IPC$", "RelativeTargetName": "svcctl"},
                "2024-01-01T10:00:02Z",
            ),
            line(
                7045,
                "System",
                {"ServiceName": "snmpstorsrv", "ImagePath": "C:\\Windows\\AppDiagnostics\\x.exe"},
                "2024-01-01T10:00:03Z",
            ),
            line(
                5861,
                ev.WMI_ACTIVITY,
                {"ESS": "SCM Event Log Filter", "CONSUMER": 'NTEventLogEventConsumer="SCM Event Log Consumer"'},
                "2024-01-01T10:00:04Z",
            ),
            line(
                1116,
                ev.DEFENDER,
                {"Threat Name": "Trojan:Win32/CoinMiner", "Severity Name": "Severe"},
                "2024-01-01T10:00:05Z",
            ),
            "{not json",
        ]
    )
    assert evtx.sniff_json(text) > 0.9
    folder = tmp_path / "PC1"
    folder.mkdir()
    (folder / "events.json").write_text(text, encoding="utf-8")
    with Case(tmp_path / "case") as case:
        [entry] = ingest(case, [folder])
        assert entry.format == "winlog-json" and entry.records == 5 and entry.skipped == 1
        rules = {f.rule: f for f in ev.findings(case)}
    assert rules["events.service_install_family"].params["family"] == "WannaMine 3.0"
    assert rules["events.service_install_family"].first_seen == datetime(2024, 1, 1, 10, 0, 3)
    assert "events.service_install_folder" in rules and "events.remote_service_exec" in rules
    assert "events.wmi_binding" not in rules  # the built-in SCM pair
    assert rules["events.defender"].severity == "high"
    assert "sigma:0f3b6a52-8f1e-4c57-9d0e-5a1c2e7b9d01" in rules  # the shipped family rule


def test_random_names() -> None:
    assert ev.random_looking("xkqzpwtv") and ev.random_looking("a8f3k2lq")
    assert not ev.random_looking("Spooler") and not ev.random_looking("WindowsUpdate")


def test_bad_sigma_reported(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text(
        textwrap.dedent("""
        title: cidr
        logsource: {product: linux}
        detection: {sel: {x: 1}, condition: sel}
        """),
        encoding="utf-8",
    )
    rules, problems = load_rules([tmp_path])
    assert not rules and problems


def test_simulated_service_installs(tmp_path: Path) -> None:
    truth = simulate(tmp_path / "sim", hosts=30, seed=5, lines=3000)
    with Case(tmp_path / "case") as case:
        ingest(case, [tmp_path / "sim" / "hosts"])
        found = [f for f in ev.findings(case) if f.rule == "events.service_install_family"]
    infected = {h["host"]: h for h in truth["hosts"] if h["infected"]}
    assert infected and {f.host for f in found} == set(infected)
    for f in found:
        want = datetime.fromisoformat(infected[f.host]["infected_at"])
        assert abs(f.first_seen - want) < timedelta(seconds=1)
        assert f.params["name"] in infected[f.host]["artifacts"]["services"]


@real
def test_dense_chunks_hold_copies_of_their_own_events(tmp_path: Path) -> None:
    import evtx as rust
    from wormhunt.simulate.evtxpack import dense_chunks, pack, sample_chunks

    samples = sorted(DATA.glob("*.evtx"))
    originals = [r["data"] for p in samples for r in rust.PyEvtxParser(str(p)).records_json()]
    dense = dense_chunks(samples)
    assert len(dense) == len(sample_chunks(samples))
    packed = tmp_path / "dense.evtx"
    pack(samples, 2, packed, dense=True)
    events = list(rust.PyEvtxParser(str(packed)).records_json())
    assert len(events) == evtx.expected_records(packed) > 2 * 10 * len(originals)  # full chunks, not 6 a chunk
    assert {r["data"] for r in events} == set(originals)  # every event is one of the samples', each seen
    assert [r["event_record_id"] for r in events[:3]] == [1, 2, 3]  # records numbered again within a chunk
    sink = _parse(packed)
    assert sink.records == len(events) and not sink.skip_counts
    services = {dict(r["data"]).get("ServiceName") for r in sink.of("events") if r["event_id"] == 7045}
    assert {"BTOBTO", "PSEXESVC", "spoolfool"} <= services


@real
@pytest.mark.parametrize("truncate", [False, True])
def test_big_evtx_parsed_in_parts_matches_one_pass(tmp_path: Path, monkeypatch, truncate: bool) -> None:
    import hashlib

    import wormhunt.ingest as ingest_mod
    from wormhunt.simulate.evtxpack import pack

    if ingest_mod._cores() < 2:
        pytest.skip("parsing in parts needs two cores")
    big = tmp_path / "in" / "big.evtx"
    chunks = pack(sorted(DATA.glob("*.evtx")), 3, big)
    if truncate:  # the last chunk cut short: its surviving records are kept, the rest counted
        big.write_bytes(big.read_bytes()[: -evtx.CHUNK_BYTES + 20000])
    whole = _parse(big)
    monkeypatch.setattr(evtx, "PART_CHUNKS", 4)  # parts are listed in this process
    monkeypatch.setattr(ingest_mod, "SPLIT_MIN_RECORDS", 0)
    monkeypatch.setattr(ingest_mod, "BATCHED_STREAM_BYTES", 0)
    calls = []
    real_split = ingest_mod._parse_split
    monkeypatch.setattr(ingest_mod, "_parse_split", lambda *a: calls.append(a) or real_split(*a))
    with Case(tmp_path / "case") as case:
        (entry,) = ingest(case, [tmp_path / "in"])
        rows = case.query("SELECT line, record_id, event_id, channel, ts, data FROM events ORDER BY line")
    assert calls and len(evtx.parts(big)) == -(-chunks // 4) > 1
    expected = sorted(whole.of("events"), key=lambda r: r["line"])
    assert len(rows) == entry.records == len(expected) > 100
    for got, want in zip(rows, expected, strict=True):
        assert (got["line"], got["record_id"], got["event_id"], got["channel"], got["ts"]) == (
            want["line"], want["record_id"], want["event_id"], want["channel"], want["ts"],
        )  # fmt: skip
        assert dict(got["data"]) == dict(want["data"])
    assert entry.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    assert entry.skip_reasons == dict(whole.skip_counts)
    if truncate:
        assert entry.skip_reasons.get("record lost in a damaged or truncated chunk", 0) > 0
        assert [w["code"] for w in entry.warnings] == ["evtx_truncated"]


def test_repeated_events_make_one_finding_per_host(tmp_path: Path) -> None:
    """A worm service reinstalled after every clean-up: one finding per host with the count,
    first and last time, and the first events as evidence."""

    def line(host: str, minute: int, image: str = "C:\\Windows\\AppDiagnostics\\x.exe") -> str:
        return json.dumps(
            {
                "@timestamp": f"2024-01-01T10:{minute:02d}:00Z",
                "winlog": {
                    "channel": "System",
                    "event_id": 7045,
                    "computer_name": f"{host}.corp",
                    "record_id": minute,
                    "provider_name": "Service Control Manager",
                    "event_data": {"ServiceName": "snmpstorsrv", "ImagePath": image},
                },
            }
        )

    lines = [line("pc1", m) for m in (30, 5, 12, 40, 7, 21, 50)]  # out of order on purpose
    lines += [line("pc2", 9), line("pc1", 45, image="C:\\Windows\\Temp\\other.exe")]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "events.json").write_text("\n".join(lines), encoding="utf-8")
    with Case(tmp_path / "case") as case:
        ingest(case, [tmp_path / "in"])
        found = [f for f in ev.findings(case) if f.rule == "events.service_install_family"]
    by = {(f.host, f.params["image"]): f for f in found}
    assert len(found) == 3
    pc1 = by[("PC1", "C:\\Windows\\AppDiagnostics\\x.exe")]
    assert pc1.params["count"] == 7
    assert (pc1.first_seen, pc1.last_seen) == (datetime(2024, 1, 1, 10, 5), datetime(2024, 1, 1, 10, 50))
    assert [e.line for e in pc1.evidence] == [2, 5, 3, 6, 1]  # the first five in time: minutes 5, 7, 12, 21, 30
    assert "count" not in by[("PC2", "C:\\Windows\\AppDiagnostics\\x.exe")].params
    assert by[("PC1", "C:\\Windows\\Temp\\other.exe")].first_seen == datetime(2024, 1, 1, 10, 45)


def test_values_a_column_cannot_hold_do_not_sink_the_batch() -> None:
    # A crafted log can carry an EventID beyond 32 bits or a number where a name belongs.
    sink = MemorySink()
    cols = evtx._Columns(sink, "evtx")
    cols.add(1, "2024-01-01T10:00:00Z", "System", 3, 2**31, "pc1", 2**64, 5, {"a": 1})
    cols.add(2, "2024-01-01T10:00:00Z", "System", "p", 7045, "pc1", 7, "S-1-5-18", {"a": "b"})
    cols.flush()
    rows = sorted(sink.of("events"), key=lambda r: r["line"])
    assert [(r["provider"], r["event_id"], r["record_id"], r["sid"]) for r in rows] == [
        ("3", None, None, "5"),
        ("p", 7045, 7, "S-1-5-18"),
    ]


@pytest.mark.parametrize("tail", [0, 30, 40, 20000])
def test_parts_follow_the_records_the_chunk_headers_declare(tmp_path: Path, monkeypatch, tail: int) -> None:
    import random
    import struct

    rng = random.Random(tail)
    counts = [rng.choice([0, 1, 5, 120, 300]) for _ in range(200)]  # 0: a damaged header
    path = tmp_path / "x.evtx"
    with open(path, "wb") as fh:
        fh.write(b"ElfFile\0".ljust(evtx.HEADER_BYTES, b"\0"))
        number = 1
        for c in counts:
            head = b"ElfChnk\0" + struct.pack("<QQ", number, number + c - 1) if c else b"garbage!"
            fh.write(head.ljust(evtx.CHUNK_BYTES, b"\0"))
            number += c
        fh.write(b"ElfChnk\0".ljust(tail, b"\0")[:tail])  # a cut last chunk: 0..0, one record if its header is whole
    monkeypatch.setattr(evtx, "PART_RECORDS", 2000)
    monkeypatch.setattr(evtx, "PART_CHUNKS", 64)
    parts = evtx.parts(path)
    n = len(counts) + (1 if tail else 0)
    assert [p[0] for p in parts] == [0] + [p[1] for p in parts[:-1]] and parts[-1][1] == n  # in order, end to end
    assert all(0 < b - a <= 64 for a, b in parts)
    declared = [evtx.expected_records(path, *p) for p in parts]
    assert sum(declared) == sum(counts) + (tail >= 40) == evtx.expected_records(path)
    assert len(parts) >= -(-sum(counts) // 2000) and max(declared) <= 2000 + 300  # about equal, by records


def test_unparseable_system_time_falls_back_to_the_record_time() -> None:
    sink = MemorySink()
    cols = evtx._Columns(sink, "evtx")
    common = ("System", "p", 7045, "pc1", 1, None, {})
    cols.add(1, "2024-01-01T10:00:00.000001Z", *common, alt_ts="2000-01-01 00:00:00.000000 UTC")
    cols.add(2, " ", *common, alt_ts="2024-01-01 11:00:00.000000 UTC")  # blank SystemTime
    cols.add(3, "0000-00-00T00:00:00Z", *common, alt_ts="2024-01-01 12:00:00.500000 UTC")
    cols.add(4, datetime(2024, 1, 1, 13), *common)  # a datetime given in a mixed batch
    cols.add(5, "garbage", *common)  # nothing to fall back on
    cols.flush()
    assert [r["ts"] for r in sink.of("events")] == [
        datetime(2024, 1, 1, 10, 0, 0, 1),
        datetime(2024, 1, 1, 11),
        datetime(2024, 1, 1, 12, 0, 0, 500000),
        datetime(2024, 1, 1, 13),
        None,
    ]


LOST = "part of the file lost: its worker process died (out of memory or killed)"


def _ingest_with_a_deadly_part(tmp_path: Path, monkeypatch, rounds: int, dies: Any) -> tuple[Path, Any, list, list]:
    """A packed log ingested in parts by forked workers, where any part for which `dies(part)`
    holds kills its worker every time: (the log, its manifest entry, its rows, the rows of a
    one-pass parse)."""
    import dataclasses
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor

    import wormhunt.ingest as ingest_mod
    from wormhunt.simulate.evtxpack import pack
    from wormhunt.sources import FORMATS

    big = tmp_path / "in" / "big.evtx"
    pack(sorted(DATA.glob("*.evtx")), rounds, big)
    whole = sorted(_parse(big).of("events"), key=lambda r: r["line"])
    monkeypatch.setattr(ingest_mod, "SPLIT_MIN_RECORDS", 0)
    monkeypatch.setattr(ingest_mod, "BATCHED_STREAM_BYTES", 0)
    parent = os.getpid()

    def deadly(path, part, sink):  # as if this part exhausted the worker's memory
        if dies(part) and os.getpid() != parent:
            os._exit(9)
        return evtx.parse_part(path, part, sink)

    # fork: the workers inherit the changed format table
    monkeypatch.setitem(FORMATS, "evtx", dataclasses.replace(FORMATS["evtx"], parse_part=deadly))
    ctx = mp.get_context("fork")
    monkeypatch.setattr(ingest_mod, "_pool", lambda count: ProcessPoolExecutor(2, mp_context=ctx))
    with Case(tmp_path / "case") as case:
        (entry,) = ingest(case, [tmp_path / "in"])
        rows = case.query("SELECT line, record_id, event_id FROM events ORDER BY line")
    return big, entry, rows, whole


def _without(whole: list, before: int, lost: int) -> list:
    """The one-pass rows but the `lost` records after the first `before`: the lines after them
    keep their numbers."""
    return [(r["line"], r["record_id"], r["event_id"]) for r in whole if not before < r["line"] <= before + lost]


@real
def test_a_deadly_part_is_halved_until_only_a_few_chunks_are_lost(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(evtx, "PART_CHUNKS", 16)
    monkeypatch.setattr(evtx, "LOST_CHUNKS", 2)
    bad = 9  # any part holding chunk 9 kills its worker
    big, entry, rows, whole = _ingest_with_a_deadly_part(tmp_path, monkeypatch, 4, lambda p: p[0] <= bad < p[1])
    piece = next(p for p in evtx.parts(big) if p[0] <= bad < p[1])
    while halves := evtx.halve_part(piece):  # the halving the ingest does, followed to chunk 9
        piece = next(h for h in halves if h[0] <= bad < h[1])
    assert piece[1] - piece[0] <= 2 < evtx._chunk_count(big.stat().st_size)
    lost = evtx.expected_records(big, *piece)
    assert lost and entry.status == "ingested", entry.message
    assert entry.skip_reasons == {LOST: lost}
    before = evtx.expected_records(big, 0, piece[0])
    assert [(r["line"], r["record_id"], r["event_id"]) for r in rows] == _without(whole, before, lost)


@real
def test_a_part_that_kills_its_worker_is_counted_lost_and_the_rest_kept(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(evtx, "PART_CHUNKS", 4)  # parts of 4 chunks: too small to halve
    # The second part (chunks 4..8 of the packed log) kills its worker every time.
    big, entry, rows, whole = _ingest_with_a_deadly_part(tmp_path, monkeypatch, 3, lambda p: p == (4, 8))
    parts = evtx.parts(big)
    assert parts[1] == (4, 8)
    lost = evtx.expected_records(big, *parts[1])
    assert lost and entry.status == "ingested", entry.message
    assert entry.skip_reasons == {LOST: lost}
    assert [(r["line"], r["record_id"], r["event_id"]) for r in rows] == _without(
        whole, evtx.expected_records(big, *parts[0]), lost
    )


def test_string_matches_on_one_field_become_one_regex_matching_as_ilike() -> None:
    """An OR of string matches on one EventData field is one full-match regex over the lowered
    value: it must match exactly what the ILIKE of each value matches, special characters and
    Unicode case folding (ſ, ς, İ) included; long lists are split into several regexes."""
    import duckdb
    from sigma.conditions import ConditionFieldEqualsValueExpression, ConditionOR
    from sigma.types import SigmaString

    from wormhunt.sigma import REGEX_ALTERNATIVES, _like, to_sql

    patterns = ["C:\\Windows\\*\\svchost.exe", "a.b(c)+[x]{2}", "*$HOME^|*", "svc?2", "100%_done", "*ÄÖ cmd /c*",
                "*ſ*", "σ", "*i*", "it's"]  # fmt: skip
    values = ["c:\\windows\\AppDiagnostics\\svchost.exe", "C:\\Windows\\svchost.exe", "a.b(c)+[x]{2}",
              "aXb(c)+[x]{2}", "x $home^| y", "svcX2", "svc2", "100%_done", "100x_done", "äö CMD /C calc",
              "line\nbreak", "", "S", "ς", "İ", "IT'S"]  # fmt: skip
    con = duckdb.connect()

    def condition(pats: list[str]) -> str:
        node = ConditionOR([ConditionFieldEqualsValueExpression("Image", SigmaString(p)) for p in pats])
        return to_sql(node, {}).replace("\"data\"['Image']", "v")

    sql = condition(patterns)
    assert sql.count("regexp_full_match") == 1 and "ILIKE" not in sql
    for v in values:
        like = [_like(SigmaString(p)) for p in patterns]
        want = any(con.execute("SELECT ? ILIKE ? ESCAPE '\\'", [v, p]).fetchone()[0] for p in like)
        assert con.execute(f"SELECT {sql} FROM (SELECT ?::VARCHAR AS v)", [v]).fetchone()[0] == want, v
    many = condition([f"name{i}" for i in range(2 * REGEX_ALTERNATIVES + 1)])
    assert many.count("regexp_full_match") == 3
    assert con.execute(f"SELECT {many} FROM (SELECT 'NAME128' AS v)").fetchone()[0] is True
