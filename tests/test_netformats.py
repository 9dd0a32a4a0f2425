"""The simulated outbreak written in every network log format yields the ground-truth spreaders."""

from __future__ import annotations

from pathlib import Path

import pytest

from wormhunt.analyze.network import detect, findings_from
from wormhunt.analyze.verdict import Identity
from wormhunt.ingest import ingest
from wormhunt.simulate import simulate
from wormhunt.simulate.logformats import available
from wormhunt.store import Case

# Formats whose writer emits IPS/IDS alerts (the others carry sessions only).
WITH_ALERTS = {"fortigate", "paloalto", "huawei", "sangfor", "suricata", "zeek"}


@pytest.mark.parametrize("fmt", available())
def test_outbreak_in_each_format(fmt: str, tmp_path: Path) -> None:
    truth = simulate(tmp_path / "ev", hosts=40, seed=21, days=1, lines=15_000, net_format=fmt)
    with Case(tmp_path / "case") as case:
        entries = ingest(case, [tmp_path / "ev" / "network", tmp_path / "ev" / "assets.csv"])
        network = [e for e in entries if "network" in Path(e.path).parts]
        assert network and all(e.status == "ingested" for e in network), [(e.path, e.status) for e in network]
        assert all(e.skipped == 0 for e in network), [(e.path, e.to_json()["skip_reasons"]) for e in network]
        roles = Identity(case).role_by_ip()
        results = detect(case)
    _, ranked, shown = findings_from(results, roles)
    by_role = {h["ip"]: h["role"] for h in truth["hosts"]}
    infected = {h["ip"] for h in truth["hosts"] if h["infected"]}
    ranked_ips = {s["src"] for s in ranked}
    assert truth["patient_zero"]["ip"] in ranked_ips
    assert ranked_ips <= infected
    assert not any(by_role.get(ip) in ("backup", "file", "dc") for ip in ranked_ips)
    backup = next(ip for ip, role in by_role.items() if role == "backup")
    assert backup in {s["src"] for s in shown}
    kinds = {p["kind"] for p in results["alert_pairs"]}
    if fmt in WITH_ALERTS:
        assert "exploit" in kinds, kinds
        assert all(p["src_ip"] in infected for p in results["alert_pairs"] if p["kind"] == "exploit")
    else:
        assert not kinds


@pytest.mark.parametrize("rel", ["firewall/pfirewall.log", "zeek/lsass-campaign-01-tsv"])
def test_real_negative_controls_rank_no_spreader(shared_data: Path, rel: str, tmp_path: Path) -> None:
    with Case(tmp_path / "case") as case:
        entries = ingest(case, [shared_data / rel])
        assert entries and all(e.status == "ingested" for e in entries), [(e.path, e.status) for e in entries]
        assert case.count("flows") > 0
        results = detect(case)
    _, ranked, _ = findings_from(results)
    assert ranked == [] and results["alert_pairs"] == []
