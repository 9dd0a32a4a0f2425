"""Acceptance (issue 5): simulated outbreaks of each family get the right family on every
infected host with its matched indicators, clean hosts get none, WannaMine 3.0 hosts with
2.0 leftovers carry both, and the investigate JSON and the intel export carry the verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wormhunt.analyze import analyze
from wormhunt.cli import app
from wormhunt.ingest import ingest
from wormhunt.intel.stix import load_stix
from wormhunt.simulate import simulate
from wormhunt.store import Case

FAMILIES = ["wannamine3", "wannamine4", "wannamine-fileless", "dtlminer"]


def kb_id(sim_family: str) -> str:
    return sim_family.replace("-", "_")


def run(tmp: Path, **kw: object) -> tuple[dict, dict]:
    truth = simulate(tmp / "ev", hosts=16, days=1, lines=300, **kw)  # type: ignore[arg-type]
    with Case(tmp / "case") as case:
        ingest(case, [tmp / "ev" / "hosts"])
        inv = analyze(case)
        verdicts = {h.upper(): (inv.family_of(h), inv.families.get(h, [])) for h in inv.hosts}
    return truth, verdicts


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_is_named_on_infected_hosts_only(tmp_path: Path, family: str, locale: str) -> None:
    truth, verdicts = run(tmp_path, seed=11, family=family, locale=locale)
    infected = {h.upper() for h in truth["infected"]}
    assert infected
    for host, ((fid, confidence), matches) in verdicts.items():
        if host in infected:
            assert fid == kb_id(family), (host, fid, [(m.family.id, m.confidence) for m in matches])
            assert confidence >= 0.8
            best = matches[0]
            assert len(best.hits) >= 2 and all(h.evidence for h in best.hits)
        else:
            assert fid is None and not [m for m in matches if m.confidence >= 0.5], (host, matches)


def test_wannamine3_hosts_with_2_0_leftovers_get_both(tmp_path: Path) -> None:
    truth, verdicts = run(tmp_path, seed=5, family="wannamine3", leftovers=0.5, locale="mixed")
    both = {
        h["host"].upper() for h in truth["hosts"] if sorted(h.get("families") or []) == ["wannamine2", "wannamine3"]
    }
    assert both
    for host in both:
        (fid, _), matches = verdicts[host]
        strong = {m.family.id for m in matches if m.confidence >= 0.5}
        assert fid == "wannamine3" and strong == {"wannamine2", "wannamine3"}
    for host in {h.upper() for h in truth["infected"]} - both:
        assert {m.family.id for m in verdicts[host][1] if m.confidence >= 0.5} == {"wannamine3"}


def test_investigate_json_and_intel_export_round_trip(tmp_path: Path) -> None:
    truth = simulate(tmp_path / "ev", hosts=12, seed=2, days=1, lines=300, family="dtlminer", locale="en-US")
    runner = CliRunner()
    res = runner.invoke(app, ["investigate", str(tmp_path / "ev" / "hosts"), "--case", str(tmp_path / "c"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    hosts = {h["host"].upper(): h for h in doc["hosts"]}
    for name in truth["infected"]:
        assert hosts[name.upper()]["family"] == "dtlminer" and hosts[name.upper()]["confidence"] >= 0.8
        (best,) = [f for f in hosts[name.upper()]["families"] if f["family"] == "dtlminer"]
        assert best["playbook"] and best["playbook"][0]["text"]  # the family's removal steps come along
    bundle = tmp_path / "confirmed.json"
    res = runner.invoke(
        app, ["intel", "export", "--case", str(tmp_path / "c"), "--format", "stix", "--out", str(bundle)]
    )
    assert res.exit_code == 0, res.output
    indicators, problems = load_stix(bundle)
    # Lemon Duck grew out of DTLMiner and shares its infrastructure: both may be confirmed.
    assert not problems and "dtlminer" in {i.family for i in indicators}
    # The exported indicators alone, as imported intel, find the same hosts again.
    with Case(tmp_path / "c") as case:
        inv = analyze(case, families=[], extra=indicators)
        again = {h.upper() for h in inv.hosts if inv.family_of(h)[0] not in (None, "unknown-smb-worm")}
    assert again == {h.upper() for h in truth["infected"]}
