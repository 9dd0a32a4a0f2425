"""The network detections give the same answers on DuckDB, ClickHouse (chDB) and Spark."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from wormhunt.analyze import engines, netrules
from wormhunt.analyze.network import findings_from
from wormhunt.analyze.verdict import Identity
from wormhunt.ingest import ingest
from wormhunt.simulate import simulate
from wormhunt.store import Case


@pytest.fixture(scope="module")
def outbreak(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("engines")
    truth = simulate(root / "ev", hosts=40, seed=11, days=1, lines=20_000)
    with Case(root / "case") as case:
        ingest(case, [root / "ev" / "network", root / "ev" / "assets.csv"])
    return root / "case", truth


def _run(case_dir: Path, engine: str) -> dict:
    with Case(case_dir) as case:
        eng = engines.open_engine(engine, case)
        try:
            return engines.run_detections(eng)
        finally:
            eng.close()


def test_duckdb_detections_match_ground_truth(outbreak: tuple[Path, dict]) -> None:
    case_dir, truth = outbreak
    results = _run(case_dir, "duckdb")
    with Case(case_dir) as case:
        roles = Identity(case).role_by_ip()
    _, ranked, shown = findings_from(results, roles)
    infected_ips = {h["ip"] for h in truth["hosts"] if h["infected"]}
    ranked_ips = {s["src"] for s in ranked}
    assert truth["patient_zero"]["ip"] in ranked_ips
    assert ranked_ips <= infected_ips  # nothing clean is ranked as spreading
    backup = next(h["ip"] for h in truth["hosts"] if h["role"] == "backup")
    assert backup not in ranked_ips and any(s["src"] == backup and s["expected"] for s in shown)
    # Every ranked spreader says why; every exploit edge of the ground truth is an alert pair.
    assert all(s["reasons"] for s in ranked)
    pairs = {(p["src_ip"], p["dst_ip"]) for p in results["alert_pairs"] if p["kind"] == "exploit"}
    crossing = {(e["src_ip"], e["dst_ip"]) for e in truth["edges"]}
    assert pairs and pairs <= crossing
    # Worm hops: each hop's infector really infected that host first.
    for hop in results["hops"]:
        assert (hop["infector"], hop["host"]) in crossing
        assert hop["spreading_s"] > hop["infected_s"]


def test_chdb_gives_identical_detections(outbreak: tuple[Path, dict]) -> None:
    pytest.importorskip("chdb")
    case_dir, _ = outbreak
    expected = _run(case_dir, "duckdb")
    assert expected["spreaders"]
    assert _run(case_dir, "clickhouse") == expected


def test_spark_gives_identical_detections(outbreak: tuple[Path, dict]) -> None:
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs a Java runtime")
    case_dir, _ = outbreak
    expected = _run(case_dir, "duckdb")
    assert _run(case_dir, "spark") == expected


def test_compiled_sql_stays_portable() -> None:
    """No approximate distinct counts and no engine-specific bucketing in any dialect."""
    exprs = netrules.detections([("x", None, 0, "exploit", ())], netrules.Params.from_knowledge())
    for dialect in ("duckdb", "clickhouse", "pyspark"):
        for expr in exprs.values():
            sql = str(netrules.ibis.to_sql(expr, dialect=dialect)).lower()
            assert "uniq(" not in sql and "approx" not in sql and "time_bucket" not in sql
            assert "arg_min" not in sql and "argmin" not in sql and "min_by" not in sql


def test_unknown_engine_is_a_clear_error(tmp_path: Path) -> None:
    with Case(tmp_path / "c") as case, pytest.raises(engines.EngineError, match="unknown engine"):
        engines.open_engine("oracle", case)


def test_detect_cli_json(outbreak: tuple[Path, dict], tmp_path: Path) -> None:
    import subprocess
    import sys

    case_dir, truth = outbreak
    out = subprocess.run(
        [sys.executable, "-m", "wormhunt", "detect", "--case", str(case_dir), "--json", "--lang", "zh-CN"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["engine"]["name"] == "duckdb" and doc["engine"]["exact_distinct_counts"] is True
    first = doc["spreaders"][0]
    assert {"src", "first_seen", "last_seen", "distinct_targets", "reasons", "rank"} <= set(first)
    assert any("SMB" in r for r in first["reasons"]) and any("主机" in r for r in first["reasons"])
    assert truth["patient_zero"]["ip"] in {s["src"] for s in doc["spreaders"]}
    kinds = {a["kind"] for a in doc["alerts"]}
    assert {"exploit", "implant"} <= kinds
    for a in doc["alerts"]:
        assert {"kind", "src", "dst", "ts", "evidence"} <= set(a)
        assert a["evidence"]["line"] >= 1 and a["evidence"]["text"]
    assert all(c["chain"] for c in doc["chains"])
    bad = subprocess.run(
        [sys.executable, "-m", "wormhunt", "detect", "--case", str(case_dir), "--engine", "oracle"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "duckdb" in bad.stderr
