"""Format detection: the per-run memo must never change what is detected."""

from __future__ import annotations

import shutil
from pathlib import Path

from wormhunt.simulate import simulate
from wormhunt.sources.detect import Memo, detect_file

NETSTAT = (
    "\nActive Connections\n\n  Proto  Local Address          Foreign Address        State           PID\n"
    "  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       900\n"
    "  TCP    10.1.1.5:49200         10.1.1.9:445           SYN_SENT        3120\n"
)
TASKLIST = (
    "\nImage Name                     PID Session Name        Session#    Mem Usage\n"
    "========================= ======== ================ =========== ============\n"
    "System Idle Process              0 Services                   0          8 K\n"
    "svchost.exe                    900 Services                   0     12,000 K\n"
)


def test_memo_detects_what_a_fresh_detection_does(tmp_path: Path) -> None:
    for locale in ("en-US", "zh-CN"):
        simulate(tmp_path / locale, hosts=12, seed=3, days=1, lines=200, locale=locale)
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    memo = Memo()
    remembered = [detect_file(p, memo) for p in files]
    fresh = [detect_file(p) for p in files]
    assert memo.hits > len(files) // 2  # the memo is actually used across bundles
    for path, a, b in zip(files, remembered, fresh, strict=True):
        assert (a.format and a.format.name, a.encoding) == (b.format and b.format.name, b.encoding), path


def test_a_remembered_format_that_no_longer_fits_is_not_trusted(tmp_path: Path) -> None:
    # Same file name and same first line as a netstat, but a tasklist follows.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "out.txt").write_text("Active Connections\n" + NETSTAT)
    (tmp_path / "b" / "out.txt").write_text("Active Connections\n" + TASKLIST)
    memo = Memo()
    first = detect_file(tmp_path / "a" / "out.txt", memo)
    second = detect_file(tmp_path / "b" / "out.txt", memo)
    assert first.format is not None and first.format.name == "netstat"
    assert memo.hits == 0
    assert second.format is not None and second.format.name == "tasklist"


def _tables(case) -> dict[str, list[tuple]]:
    from wormhunt.model import KINDS

    out = {}
    for name in KINDS:
        cols = [c for c in KINDS[name].names if c not in ("evidence_id",)]
        select = ", ".join(f'"{c}"' for c in cols)
        out[name] = sorted(repr(r) for r in case.con.execute(f"SELECT {select} FROM {name}").fetchall())
    return out


def test_worker_pool_ingest_equals_a_serial_one(tmp_path: Path, monkeypatch) -> None:
    import wormhunt.ingest as ingest_mod
    from wormhunt.store import Case

    simulate(tmp_path / "ev", hosts=12, seed=4, days=1, lines=300, locale="mixed")
    # Small files of the formats with their own file reader (firewall logs, EVTX) go to the
    # workers too; the real EVTX samples join when they are present.
    from tests.conftest import SHARED_DATA

    evtx_samples = SHARED_DATA / "evtx"
    for p in sorted(evtx_samples.glob("*.evtx")):
        shutil.copy(p, tmp_path / "ev" / "network" / p.name)
    inputs = ingest_mod.walk([tmp_path / "ev"])
    ingest_mod.attribute_hosts(inputs)
    assert any(ingest_mod._pooled(i) and i.detection.format.parse_file for i in inputs)  # type: ignore[union-attr]
    monkeypatch.setattr(ingest_mod, "POOL_MIN_FILES", 1)
    with Case(tmp_path / "pooled") as case:
        pooled = ingest_mod.ingest(case, [tmp_path / "ev"])
        pooled_rows = _tables(case)
    monkeypatch.setattr(ingest_mod, "_pool", lambda count: None)
    with Case(tmp_path / "serial") as case:
        serial = ingest_mod.ingest(case, [tmp_path / "ev"])
        serial_rows = _tables(case)
    key = lambda e: (e.path, e.status, e.format, e.encoding, e.host, e.records, e.skipped, e.sha256)  # noqa: E731
    assert [key(e) for e in pooled] == [key(e) for e in serial]
    assert pooled_rows == serial_rows and sum(map(len, serial_rows.values())) > 500
    assert serial_rows["net_alerts"] and serial_rows["flows"] and (serial_rows["events"] or not evtx_samples.is_dir())


def _die() -> None:
    import os

    os._exit(3)


def test_a_broken_worker_pool_falls_back_to_parsing_here(tmp_path: Path, monkeypatch) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    import wormhunt.ingest as ingest_mod
    from wormhunt.store import Case

    simulate(tmp_path / "ev", hosts=8, seed=4, days=1, lines=100, locale="en-US")
    ctx = mp.get_context("fork")
    monkeypatch.setattr(ingest_mod, "_pool", lambda count: ProcessPoolExecutor(2, mp_context=ctx, initializer=_die))
    with Case(tmp_path / "case") as case:
        entries = ingest_mod.ingest(case, [tmp_path / "ev" / "hosts"])
        assert entries and {e.status for e in entries} <= {"ingested", "empty"}
        assert case.count("processes") > 0


def test_a_file_that_kills_its_worker_is_named_and_the_rest_are_kept(tmp_path: Path, monkeypatch) -> None:
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor

    import wormhunt.ingest as ingest_mod
    from wormhunt.store import Case

    simulate(tmp_path / "ev", hosts=8, seed=4, days=1, lines=100, locale="en-US")
    victim = sorted((tmp_path / "ev" / "hosts").glob("*/netstat_ano.txt"))[0]
    real = ingest_mod._parse_worker

    def deadly(job):  # as if this file made the parser run out of memory: the worker dies
        if job[0] == victim:
            os._exit(9)
        return real(job)

    monkeypatch.setattr(ingest_mod, "_parse_worker", deadly)  # fork: the workers inherit it
    monkeypatch.setattr(ingest_mod, "POOL_MIN_FILES", 1)
    ctx = mp.get_context("fork")
    monkeypatch.setattr(ingest_mod, "_pool", lambda count: ProcessPoolExecutor(2, mp_context=ctx))
    with Case(tmp_path / "case") as case:
        entries = {Path(e.path): e for e in ingest_mod.ingest(case, [tmp_path / "ev" / "hosts"])}
    dead = entries[victim.resolve()]
    assert dead.status == "error" and "worker process" in dead.message
    others = [e for p, e in entries.items() if p != victim.resolve()]
    assert others and all(e.status in ("ingested", "empty") for e in others)
