"""Acceptance (issue 7): over simulated outbreaks of 200 hosts, the sweep finds exactly the
infected set, the right patient zero and the propagation edges; with the hosts' event logs
taken away (firewall logs only), what it still claims stays right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wormhunt.cli import app
from wormhunt.simulate import simulate


def sweep(tmp: Path, truth_dir: Path) -> dict:
    res = CliRunner().invoke(
        app,
        ["sweep", str(truth_dir / "hosts"), "--network", str(truth_dir / "network"), "--case", str(tmp), "--json"],
    )
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def score(doc: dict, truth: dict) -> tuple[set, set, set]:
    infected = {h["host"].upper() for h in doc["hosts"] if h["verdict"] == "infected"}
    edges = {(e["src"].upper(), e["dst"].upper()) for e in doc["edges"]}
    real = {(e["src"].upper(), e["dst"].upper()) for e in truth["edges"]}
    return infected, edges & real, edges - real


@pytest.mark.parametrize("seed", [1, 2])
def test_sweep_of_200_hosts_finds_the_outbreak(tmp_path: Path, seed: int) -> None:
    truth = simulate(tmp_path / "ev", hosts=200, seed=seed, days=1, lines=5000)
    doc = sweep(tmp_path / "case", tmp_path / "ev")
    infected, right, wrong = score(doc, truth)
    assert infected == {h.upper() for h in truth["infected"]}  # precision and recall 1.0
    assert doc["patient_zero"]["host"].upper() == truth["patient_zero"]["host"].upper()
    assert len(right) >= 0.9 * len(truth["edges"]) and len(wrong) <= 0.1 * max(1, len(doc["edges"]))
    # The timeline starts with patient zero's infection, and every edge is in it.
    first = doc["timeline"][0]
    assert first["host"].upper() == truth["patient_zero"]["host"].upper() and first["what"] == "infected"
    assert sum(1 for x in doc["timeline"] if x["what"] == "contact") == len(doc["edges"])


def test_firewall_logs_alone_claim_no_wrong_edge(tmp_path: Path) -> None:
    # Without the hosts' event logs only cross-subnet contacts are visible (a firewall does not
    # see inside a subnet): fewer edges, but none wrong, and patient zero still right.
    truth = simulate(tmp_path / "ev", hosts=200, seed=3, days=1, lines=5000)
    for events in (tmp_path / "ev" / "hosts").glob("*/winlogbeat_events.json"):
        events.unlink()
    doc = sweep(tmp_path / "case", tmp_path / "ev")
    infected, right, wrong = score(doc, truth)
    assert infected == {h.upper() for h in truth["infected"]}
    assert doc["patient_zero"]["host"].upper() == truth["patient_zero"]["host"].upper()
    assert right and not wrong
