"""Case store and ingest: provenance, idempotence, bad input, transactions, host attribution."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.test_fortigate import IPS, TRAFFIC
from wormhunt.ingest import Input, ingest, ingest_one
from wormhunt.model import PROCESSES
from wormhunt.sources.base import Format
from wormhunt.sources.detect import Detection
from wormhunt.sources.text import Encoding
from wormhunt.store import Case

NETSTAT = """
Active Connections

  Proto  Local Address          Foreign Address        State           PID
  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       688
  TCP    10.1.1.5:49200         10.1.1.9:445           SYN_SENT        3120
  TCP    10.1.1.5:49201         10.1.1.10:445          SYN_SENT        3120
  TCP    not-an-address         10.1.1.10:445          SYN_SENT        3120
"""
SYSTEMINFO = """
Host Name:                 FS01
OS Name:                   Microsoft Windows Server 2008 R2 Enterprise
OS Version:                6.1.7601 Service Pack 1 Build 7601
Hotfix(s):                 1 Hotfix(s) Installed.
                           [01]: KB4012212
"""


def _files(root: Path) -> dict[str, tuple[str, float]]:
    return {
        str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime) for p in root.rglob("*") if p.is_file()
    }


@pytest.fixture
def evidence(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    (root / "FS01-bundle").mkdir(parents=True)
    (root / "FS01-bundle" / "netstat.txt").write_bytes(NETSTAT.replace("\n", "\r\n").encode("cp437"))
    (root / "FS01-bundle" / "si.txt").write_bytes(b"\xff\xfe" + SYSTEMINFO.replace("\n", "\r\n").encode("utf-16-le"))
    (root / "loose").mkdir()
    (root / "loose" / "netstat-only.txt").write_text(NETSTAT, encoding="utf-8")
    (root / "fw.log").write_text(TRAFFIC + "\n" + IPS + "\nnot a log line\n", encoding="utf-8")
    return root


def test_ingest_records_provenance_and_manifest(tmp_path: Path, evidence: Path) -> None:
    before = _files(evidence)
    with Case(tmp_path / "case") as case:
        entries = ingest(case, [evidence])
        by_name = {Path(e.path).name: e for e in entries}
        assert {e.status for e in entries} == {"ingested"}
        assert by_name["netstat.txt"].format == "netstat" and by_name["netstat.txt"].encoding == "utf-8"
        assert by_name["si.txt"].encoding == "utf-16-le+bom"
        # Host evidence in a bundle is attributed to the systeminfo host name; loose files to their folder.
        assert by_name["netstat.txt"].host == "FS01" and by_name["netstat.txt"].host_source == "systeminfo"
        assert by_name["netstat-only.txt"].host == "LOOSE" and by_name["netstat-only.txt"].host_source == "folder"
        assert by_name["netstat.txt"].records == 3 and by_name["netstat.txt"].skip_reasons == {"bad address": 1}
        assert by_name["fw.log"].records == 2 and by_name["fw.log"].skipped == 1
        for e in entries:
            assert e.sha256 == hashlib.sha256(Path(e.path).read_bytes()).hexdigest()
        # Every row carries evidence id, line and host.
        for table in ("sockets", "flows", "net_alerts", "host_info", "hotfixes"):
            missing = case.con.execute(
                f"SELECT count(*) FROM {table} WHERE evidence_id IS NULL OR line IS NULL OR host IS NULL"
            ).fetchone()[0]
            assert missing == 0, table
        rows = case.query("SELECT line, remote_ip FROM sockets WHERE host = 'FS01' ORDER BY line")
        assert [r["line"] for r in rows] == [5, 6, 7]
        skipped = case.query("SELECT line, reason FROM skipped ORDER BY evidence_id, line")
        assert {"line": 8, "reason": "bad address"} in skipped
        manifest = [json.loads(x) for x in (tmp_path / "case" / "evidence" / "manifest.jsonl").read_text().splitlines()]
        assert len(manifest) == 4 and all(m["sha256"] for m in manifest)
    assert _files(evidence) == before  # nothing the user gave was modified


def test_ingesting_twice_changes_nothing(tmp_path: Path, evidence: Path) -> None:
    with Case(tmp_path / "case") as case:
        ingest(case, [evidence])
        counts = {t: case.count(t) for t in ("evidence", "sockets", "flows", "net_alerts", "host_info", "skipped")}
        again = ingest(case, [evidence])
        assert {e.status for e in again} == {"duplicate"}
        assert all("nothing changed" in e.message for e in again)
        assert {t: case.count(t) for t in counts} == counts
    # A copy of the same bytes under another name is the same evidence.
    copy = tmp_path / "copy.log"
    copy.write_bytes((evidence / "fw.log").read_bytes())
    with Case(tmp_path / "case") as case:
        (entry,) = ingest(case, [copy])
        assert entry.status == "duplicate"


def test_junk_inputs_get_clear_statuses(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "random.bin").write_bytes(os.urandom(5000))
    (junk / "empty.txt").write_bytes(b"")
    (junk / "notes.txt").write_text("meeting notes\nnothing to see here\n")
    (junk / "blank.txt").write_text("\n\n   \n")
    with Case(tmp_path / "case") as case:
        entries = {Path(e.path).name: e for e in ingest(case, [junk, tmp_path / "missing.log"])}
    assert entries["random.bin"].status == "unrecognized" and "binary" in entries["random.bin"].message
    assert entries["empty.txt"].status == "empty"
    assert entries["blank.txt"].status == "empty"
    assert entries["notes.txt"].status == "unrecognized" and entries["notes.txt"].message == "unrecognized text format"
    assert entries["missing.log"].status == "error" and "no such file" in entries["missing.log"].message


def test_a_failing_parser_rolls_back_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("anything\n")

    def explode(text: str, sink) -> None:
        sink.row(PROCESSES, {"line": 1, "pid": 7, "name": "a.exe"})
        raise RuntimeError("parser bug")

    fmt = Format("boom", "test", lambda head: 1.0, parse_text=explode)
    item = Input(path, Detection(fmt, Encoding("utf-8"), 1.0), host="H1", host_source="folder")
    with Case(tmp_path / "case") as case:
        entry = ingest_one(case, item)
        assert entry.status == "error" and "RuntimeError: parser bug" in entry.message
        assert case.count("processes") == 0
        # The case stays usable for the next file.
        ok = tmp_path / "fw.log"
        ok.write_text(TRAFFIC + "\n")
        (good,) = ingest(case, [ok])
        assert good.status == "ingested" and case.count("flows") == 1


def test_evidence_line_quotes_the_original(tmp_path: Path, evidence: Path) -> None:
    with Case(tmp_path / "case") as case:
        ingest(case, [evidence])
        row = case.query('SELECT evidence_id, line, "offset" FROM net_alerts')[0]
        assert case.evidence_line(row["evidence_id"], row["line"], row["offset"]) == IPS
        s = case.query("SELECT evidence_id, line FROM sockets WHERE host = 'FS01' AND pid = 3120 ORDER BY line")[0]
        assert "10.1.1.9:445" in case.evidence_line(s["evidence_id"], s["line"])


def test_values_that_do_not_fit_are_skipped_not_fatal(tmp_path: Path) -> None:
    # A PID in superscript digits and one beyond 32 bits: each line is counted, the rest kept.
    text = NETSTAT + "  TCP    10.1.1.5:49300         10.1.1.11:445          SYN_SENT        ²\n"
    text += "  TCP    10.1.1.5:49301         10.1.1.12:445          SYN_SENT        99999999999\n"
    path = tmp_path / "HOSTA" / "netstat.txt"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    with Case(tmp_path / "case") as case:
        (entry,) = ingest(case, [path])
        assert entry.status == "ingested" and entry.records == 3
        assert entry.skip_reasons == {"bad address": 1, "bad PID": 2}


def test_a_relative_path_is_attributed_to_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "pc-17"
    folder.mkdir()
    (folder / "netstat.txt").write_text(NETSTAT, encoding="utf-8")
    monkeypatch.chdir(folder)
    with Case(tmp_path / "case") as case:
        (entry,) = ingest(case, [Path("netstat.txt")])
        assert entry.host == "PC-17" and entry.status == "ingested"


def test_failed_files_are_retried_and_leftovers_are_invisible(tmp_path: Path) -> None:
    path = tmp_path / "fw.log"
    path.write_text(TRAFFIC + "\n")
    with Case(tmp_path / "case") as case:
        (first,) = ingest(case, [path])
        # A partition a crash left behind (no evidence row) must not show up in the view.
        stray = case.partition("flows", 99)
        stray.write_bytes(case.partition("flows", first.evidence_id).read_bytes())
        case.refresh_views()
        assert case.count("flows") == 1
        case.con.execute("UPDATE evidence SET status = 'error'")  # as if the first attempt had failed
        case.refresh_views()
        assert case.count("flows") == 0
        (again,) = ingest(case, [path])
        assert again.status == "ingested" and case.count("flows") == 1
    with Case(tmp_path / "case") as case:
        assert not stray.exists()  # removed when the case is opened again


def test_knowledge_schema_rejects_bad_values() -> None:
    import copy

    from wormhunt.knowledge import KnowledgeError, load, validate

    good = load("network_signatures")
    for field, value in (("severity", "urgent"), ("kind", "worm"), ("match", "(unclosed")):
        bad = copy.deepcopy(good)
        bad["signatures"][0][field] = value
        with pytest.raises(KnowledgeError, match=field):
            validate("network_signatures", bad)


def test_identical_output_from_two_hosts_is_evidence_for_both(tmp_path: Path) -> None:
    from wormhunt.ingest import ingest

    text = "\r\n".join(
        ["", "Active Connections", "", "  Proto  Local Address          Foreign Address        State           PID",
         "  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       880", ""]
    )  # fmt: skip
    for host in ("HOSTA", "HOSTB"):
        (tmp_path / "ev" / host).mkdir(parents=True)
        (tmp_path / "ev" / host / "netstat.txt").write_text(text, encoding="ascii")
    with Case(tmp_path / "case") as case:
        first = ingest(case, [tmp_path / "ev"])
        again = ingest(case, [tmp_path / "ev"])
        hosts = {r["host"] for r in case.query("SELECT DISTINCT host FROM sockets")}
    assert [e.status for e in first] == ["ingested", "ingested"] and hosts == {"HOSTA", "HOSTB"}
    assert [e.status for e in again] == ["duplicate", "duplicate"]


def test_small_logs_in_a_batch_share_one_partition_and_big_ones_get_their_own(tmp_path: Path, monkeypatch) -> None:
    import wormhunt.store as store_mod
    from wormhunt.simulate import simulate

    simulate(tmp_path / "ev", hosts=8, seed=2, days=1, lines=100, locale="en-US")
    with Case(tmp_path / "shared") as case:
        entries = ingest(case, [tmp_path / "ev" / "hosts"])
        logs = [e for e in entries if e.format == "winlog-json"]
        parts = case.partitions("events")[1:]  # after the empty schema file
        assert len(logs) == 8 and len(parts) == 1
        assert parts[0].name == f"e{min(e.evidence_id for e in logs):06d}.parquet"
        assert case.count("events") == sum(e.records for e in logs) > 0
        per_file = dict(case.con.execute("SELECT evidence_id, count(*) FROM events GROUP BY 1").fetchall())
        assert per_file == {e.evidence_id: e.records for e in logs}
    monkeypatch.setattr(store_mod, "BATCHED_BULK_ROWS", 10)
    with Case(tmp_path / "own") as case:
        entries = ingest(case, [tmp_path / "ev" / "hosts"])
        logs = [e for e in entries if e.format == "winlog-json"]
        assert len(case.partitions("events")) - 1 == len(logs)  # each log is over the limit
        assert case.count("events") == sum(e.records for e in logs)


def test_a_failed_batch_commit_leaves_no_partition(tmp_path: Path, monkeypatch) -> None:
    from wormhunt.simulate import simulate

    simulate(tmp_path / "ev", hosts=8, seed=2, days=1, lines=100, locale="en-US")
    with Case(tmp_path / "case") as case:
        real = case._insert_rows

        def fail(kind, tables):  # the database refuses the batch after the partition was written
            raise RuntimeError("disk full")

        monkeypatch.setattr(case, "_insert_rows", fail)
        with pytest.raises(RuntimeError, match="disk full"):
            ingest(case, [tmp_path / "ev" / "hosts"])
        monkeypatch.setattr(case, "_insert_rows", real)
        assert list((tmp_path / "case" / "tables" / "events").glob("e*.parquet")) == [
            tmp_path / "case" / "tables" / "events" / "e000000.parquet"
        ]
        assert case.count("evidence") == 0


def test_a_big_worker_result_crosses_through_the_spool_and_leaves_nothing(tmp_path: Path) -> None:
    """A TableSink of SPOOL_BYTES or more pickles its tables into a spool file, which the
    receiving side reads in `replay` and removes; a small one, or one whose spool cannot be
    written, keeps them in the pickle. Counts, skips and notes travel either way; a spool file
    gone before it is read counts the part's rows as lost."""
    import pickle

    import pyarrow as pa

    from wormhunt.model import EVENTS
    from wormhunt.sources.base import MemorySink
    from wormhunt.store import SPOOL_BYTES, TableSink

    spool = tmp_path / "spool"
    spool.mkdir()
    big = pa.table({c.name: pa.nulls(1, c.arrow) for c in EVENTS.all_columns})
    big = big.set_column(
        big.schema.get_field_index("computer"), "computer", pa.array(["x" * (SPOOL_BYTES + 10)], pa.string())
    )
    for table, folder, spooled in ((big, str(spool), True), (big.slice(0, 0), str(spool), False),
                                   (big, str(tmp_path / "missing"), False)):  # fmt: skip
        sink = TableSink(folder)
        sink.batch(EVENTS, table)
        sink.batch(EVENTS, table)
        sink.skip(3, "damaged evtx record", "x")
        sink.meta["warnings"] = ["w"]
        data = pickle.dumps(sink)
        assert (len(data) < SPOOL_BYTES) == spooled
        back = pickle.loads(data)
        assert bool(list(spool.iterdir())) == spooled  # the file waits for `replay`
        into = MemorySink()
        back.replay(into, 10)
        assert not list(spool.iterdir())  # read and removed
        assert len(into.of("events")) == 2 * table.num_rows and into.records == sink.records
        assert all(r["line"] is None or r["line"] > 10 for r in into.of("events"))
        assert into.skip_counts == sink.skip_counts and into.meta == sink.meta
    lost = TableSink(str(spool))
    lost.batch(EVENTS, big)
    back = pickle.loads(pickle.dumps(lost))
    for f in spool.iterdir():
        f.unlink()
    into = MemorySink()
    back.replay(into)
    assert not into.of("events") and into.skipped == 1 and "could not be read back" in into.skips[0].reason


def test_abandoned_spool_folders_are_removed_and_live_ones_kept(tmp_path: Path, monkeypatch) -> None:
    """A spool folder holds a lock file locked while its ingest runs: one nobody holds (a killed
    ingest's) is removed when the next folder is made, in /dev/shm and the temporary folder both;
    a held one is kept, whichever process or namespace holds it."""
    import tempfile

    from wormhunt import store

    fcntl = pytest.importorskip("fcntl")
    monkeypatch.setattr(store, "SPOOL_ROOM", 1 << 62)  # never /dev/shm for the new one: the test's folder
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    abandoned = tmp_path / f"{store.SPOOL_PREFIX}abandoned"
    live = tmp_path / f"{store.SPOOL_PREFIX}live"
    foreign = tmp_path / f"{store.SPOOL_PREFIX}nolock"  # no lock file: not ours to judge
    for d in (abandoned, live, foreign):
        d.mkdir()
        (d / "x.arrows").write_bytes(b"x")
    (abandoned / ".lock").write_bytes(b"")
    (live / ".lock").write_bytes(b"")
    with open(live / ".lock", "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        made = store.spool_folder()
        assert not abandoned.exists() and live.exists() and foreign.exists()
        assert Path(made).parent == tmp_path and (Path(made) / ".lock").exists()
        second = store.spool_folder()  # the first one's lock is held: it stays
        assert Path(made).exists()
        store.release_spool(made)
        store.release_spool(second)
    assert not Path(made).exists() and not Path(second).exists()
