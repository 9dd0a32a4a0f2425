"""End to end: simulated outbreaks investigated, checked against their ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wormhunt.analyze import analyze
from wormhunt.ingest import ingest
from wormhunt.report.summary import build
from wormhunt.simulate import simulate
from wormhunt.store import Case

CASES = [
    (40, 11, "zh-CN"),
    (40, 12, "en-US"),
    (60, 13, "mixed"),
    (80, 14, "zh-CN"),
    (80, 15, "en-US"),
    (150, 16, "mixed"),
]


def investigate(tmp_path: Path, hosts: int, seed: int, locale: str) -> tuple[dict, dict]:
    sim = tmp_path / "sim"
    truth = simulate(sim, hosts=hosts, seed=seed, locale=locale, lines=30_000)
    with Case(tmp_path / "case") as case:
        entries = ingest(case, [sim / "network", sim / "hosts", sim / "assets.csv"])
        # An outbreak whose exploits never crossed the firewall leaves the IPS log empty.
        assert all(e.status in ("ingested", "empty") for e in entries), [e for e in entries if e.status != "ingested"]
        assert sum(e.skipped for e in entries) == 0
        doc = build(case, analyze(case), "en")
    return truth, doc


@pytest.mark.parametrize(("hosts", "seed", "locale"), CASES)
def test_finds_every_infected_host_and_patient_zero(tmp_path: Path, hosts: int, seed: int, locale: str) -> None:
    truth, doc = investigate(tmp_path, hosts, seed, locale)
    status = {h["host"]: h["status"] for h in doc["hosts"]}
    infected = sorted(h for h, s in status.items() if s == "infected")
    assert infected == truth["infected"]
    clean_truth = {h["host"] for h in truth["hosts"] if not h["infected"]}
    assert not [h for h in clean_truth if status.get(h) == "infected"]
    assert doc["patient_zero"]["host"] == truth["patient_zero"]["host"]
    assert doc["patient_zero"]["ip"] == truth["patient_zero"]["ip"]
    # Every host of the company is accounted for (no phantom hosts from IP aliases).
    assert set(status) == {h["host"] for h in truth["hosts"]}


def test_spreaders_first_seen_follows_infection(tmp_path: Path) -> None:
    truth, doc = investigate(tmp_path, 60, 21, "mixed")
    infected_at = {h["host"]: h["infected_at"] for h in truth["hosts"] if h["infected"]}
    assert {s["host"] for s in doc["spreaders"]} == set(truth["infected"])
    for s in doc["spreaders"]:
        # Scanning cannot start before the host was infected, and starts within minutes of it.
        assert s["first_seen"] >= infected_at[s["host"]]
        gap = _seconds(s["first_seen"]) - _seconds(infected_at[s["host"]])
        assert gap < 600
        assert s["failed_ratio"] >= 0.5 and s["distinct_targets"] >= 25


def test_benign_look_alikes_are_not_infected(tmp_path: Path) -> None:
    truth, doc = investigate(tmp_path, 80, 22, "mixed")
    by_host = {h["host"]: h for h in doc["hosts"]}
    roles = {h["host"]: h["role"] for h in truth["hosts"]}
    for name, role in roles.items():
        if role in ("backup", "file", "dc"):
            assert by_host[name]["status"] != "infected"
    backup = next(n for n, r in roles.items() if r == "backup")
    # The backup server fans out over SMB every night: seen, explained by its role, not infected.
    rules = [f["rule"] for f in by_host[backup]["findings"]]
    assert rules == ["net.smb_fanout_expected"]


def test_findings_cite_evidence_lines(tmp_path: Path) -> None:
    truth, doc = investigate(tmp_path, 40, 23, "zh-CN")
    p0 = next(h for h in doc["hosts"] if h["host"] == truth["patient_zero"]["host"])
    for f in p0["findings"]:
        if f["severity"] in ("high", "critical"):
            assert f["evidence"], f["rule"]
            for ev in f["evidence"]:
                assert ev["sha256"] and ev["line"] >= 1 and ev["text"]
    scan = next(f for f in p0["findings"] if f["rule"] == "net.smb_scan")
    assert all(truth["patient_zero"]["ip"] in ev["text"] for ev in scan["evidence"])
    fanout = next(f for f in p0["findings"] if f["rule"] == "host.pid_smb_fanout")
    assert all(":445" in ev["text"] and "SYN_SENT" in ev["text"] for ev in fanout["evidence"])
    json.dumps(doc)  # the document is JSON-serialisable as is


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()
