"""Network detections on hand-made cases: the edge cases a simulated outbreak never has."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from wormhunt.analyze import engines
from wormhunt.analyze.network import findings_from
from wormhunt.model import FLOWS, NET_ALERTS
from wormhunt.store import Case

T0 = datetime(2018, 11, 18, 8, 0, 0)


def flow(src: str, dst: str, at: datetime, action: str = "close", bytes_in: int = 5000, port: int = 445) -> dict:
    return {"ts": at, "src_ip": src, "dst_ip": dst, "dst_port": port, "src_port": 50000, "proto": 6,
            "action": action, "bytes_in": bytes_in}  # fmt: skip


def alert(src: str, dst: str | None, at: datetime, signature: str, port: int | None = 445) -> dict:
    return {"ts": at, "src_ip": src, "dst_ip": dst, "dst_port": port, "src_port": 50001, "signature": signature}


def make_case(root: Path, parts: list[tuple[list[dict], list[dict]]]) -> Path:
    """A case whose evidence partitions hold exactly these rows (one partition per item)."""
    with Case(root) as case:
        for eid, (flows, alerts) in enumerate(parts, 1):  # one evidence file each
            case.con.execute("INSERT INTO evidence (evidence_id, status) VALUES (?, 'ingested')", [eid])
            for kind, rows in ((FLOWS, flows), (NET_ALERTS, alerts)):
                base = {**dict.fromkeys(kind.names), "evidence_id": eid}
                full = [{**base, "line": k, **r} for k, r in enumerate(rows, 1)]
                schema = kind.arrow_schema
                table = pa.Table.from_pylist(full, schema=schema) if full else schema.empty_table()
                pq.write_table(table, case.partition(kind.name, eid))
        case.refresh_views()
    return root


def run(root: Path, engine: str = "duckdb") -> dict:
    with Case(root) as case:
        eng = engines.open_engine(engine, case)
        try:
            return engines.run_detections(eng)
        finally:
            eng.close()


def sweep(src: str, start: datetime, n: int, gap_s: float, prefix: str = "10.9.", **kw) -> list[dict]:
    at = [start + timedelta(seconds=i * gap_s) for i in range(n)]
    return [flow(src, f"{prefix}{i // 250}.{i % 250 + 1}", at[i], **kw) for i in range(n)]


def test_roles_and_allow_list_decide_what_is_ranked(tmp_path: Path) -> None:
    rows = (
        sweep("10.0.0.1", T0, 40, 2, action="timeout", bytes_in=0)  # a vulnerability scanner, mostly failing
        + sweep("10.0.0.2", T0, 40, 2)  # allow-listed management box, succeeding
        + sweep("10.0.0.3", T0, 40, 2)  # nobody knows it: succeeding fan-out is still ranked
        + sweep("10.0.0.4", T0, 40, 2, action="timeout", bytes_in=0)  # "资产管理员PC" is not a management server
    )
    results = run(make_case(tmp_path / "c", [(rows, [])]))
    roles = {"10.0.0.1": "Vulnerability scanner (Nessus)", "10.0.0.4": "资产管理员PC"}
    _, ranked, shown = findings_from(results, roles, allow={"10.0.0.2"})
    assert [s["src"] for s in ranked] == ["10.0.0.4", "10.0.0.3"]  # scanning outranks plain fan-out
    assert {s["src"] for s in shown} == {"10.0.0.1", "10.0.0.2"}
    assert all(s["expected"] for s in shown)


def test_exploit_alerts_rank_an_expected_host(tmp_path: Path) -> None:
    rows = sweep("10.0.0.5", T0, 40, 2)
    sig = "ET EXPLOIT Possible ETERNALBLUE MS17-010 Heap Spray"
    alerts = [alert("10.0.0.5", "10.9.0.7", T0 + timedelta(minutes=1), sig)]
    results = run(make_case(tmp_path / "c", [(rows, alerts)]))
    _, ranked, _ = findings_from(results, {"10.0.0.5": "Backup server"})
    assert [s["src"] for s in ranked] == ["10.0.0.5"] and not ranked[0]["expected"]


def test_onset_stays_within_the_scan(tmp_path: Path) -> None:
    # A bursty scan at 08:00 (batches of 9 hosts 130 s apart), then a quick run at 14:00.
    burst = [
        r for b in range(3) for r in sweep("10.0.0.6", T0 + timedelta(seconds=130 * b), 9, 1, prefix=f"10.{b + 20}.")
    ]
    late = sweep("10.0.0.6", T0 + timedelta(hours=6), 10, 1, prefix="10.30.")
    results = run(make_case(tmp_path / "c", [(burst + late, [])]))
    (s,) = results["spreaders"]
    assert s["window_start_s"] <= s["first_seen_s"] <= s["last_seen_s"]


def test_hop_counts_only_spreading_after_the_hit(tmp_path: Path) -> None:
    before = sweep("10.0.0.3", T0, 40, 2)  # a backup-like fan-out hours before it was hit
    hit = [alert("10.0.0.9", "10.0.0.3", T0 + timedelta(hours=4), "Backdoor.DoublePulsar")]
    sig = "ET EXPLOIT ETERNALBLUE Exploit M2 MS17-010"
    after = [alert("10.0.0.3", "10.5.0.1", T0 + timedelta(hours=4, minutes=30), sig)]
    results = run(make_case(tmp_path / "c", [(before, hit + after)]))
    (hop,) = results["hops"]
    assert (hop["infector"], hop["host"]) == ("10.0.0.9", "10.0.0.3")
    assert hop["spreading_s"] - hop["infected_s"] == 1800


def test_scan_notice_without_target_and_miner_alerts(tmp_path: Path) -> None:
    alerts = [
        alert("10.0.0.4", None, T0, "Scan::Address_Scan", port=445),
        alert("10.0.0.4", None, T0, "Scan::Address_Scan", port=22),  # not SMB: not a worm scan
        alert("10.0.0.8", "203.0.113.5", T0, "ET COINMINER Crypto Coin Miner Login", port=3333),
        alert("10.0.0.9", "10.0.0.3", T0, "ET EXPLOIT Possible ETERNALBLUE Probe MS17-010 (Generic Flags)"),
    ]
    results = run(make_case(tmp_path / "c", [([], alerts)]))
    kinds = {(p["src_ip"], p["kind"], p["dst_ip"]) for p in results["alert_pairs"]}
    assert kinds == {("10.0.0.4", "scan", ""), ("10.0.0.8", "miner", "203.0.113.5"), ("10.0.0.9", "probe", "10.0.0.3")}
    assert [c["dst_ip"] for c in results["chains"]] == ["10.0.0.3"]  # miner pools and target-less scans are no chain
    _, ranked, _ = findings_from(results)
    scanner = next(s for s in ranked if s["src"] == "10.0.0.4")
    assert scanner["distinct_targets"] == 0 and scanner["reasons"]


def test_case_paths_with_glob_characters_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="may not contain"):
        Case(tmp_path / "case*1")


def test_engines_agree_on_many_partitions_and_hostile_names(tmp_path: Path) -> None:
    pytest.importorskip("chdb")
    sig = "MS17-010 ${env:HOME} 'quoted' \\ back ; -- x"
    parts = [(sweep(f"10.1.{i}.1", T0 + timedelta(minutes=i), 30, 1), [alert(f"10.1.{i}.1", "10.9.0.1", T0, sig)])
             for i in range(45)]  # fmt: skip
    root = make_case(tmp_path / "c", parts)
    expected = run(root)
    assert len(expected["spreaders"]) == 45 and {p["sig"] for p in expected["alert_pairs"]} == {sig}
    assert run(root, "clickhouse") == expected
    pytest.importorskip("pyspark")
    import shutil

    if shutil.which("java"):
        assert run(root, "spark") == expected
