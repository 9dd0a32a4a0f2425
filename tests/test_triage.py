"""Simulated WannaMine 3.0 hosts, zh-CN (GBK) and en-US: triage finds what the responder found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wormhunt.analyze import analyze
from wormhunt.ingest import ingest
from wormhunt.simulate import simulate
from wormhunt.store import Case


@pytest.mark.parametrize(("seed", "locale"), [(4, "zh-CN"), (5, "en-US"), (6, "mixed")])
def test_infected_hosts_show_their_persistence_and_clean_hosts_stay_clean(
    tmp_path: Path, seed: int, locale: str
) -> None:
    truth = simulate(tmp_path / "ev", hosts=24, seed=seed, days=1, lines=4000, locale=locale)
    with Case(tmp_path / "case") as case:
        ingest(case, [tmp_path / "ev" / "hosts", tmp_path / "ev" / "assets.csv"])
        inv = analyze(case)
        tools = case.query(r"SELECT command_line FROM processes WHERE image_path ILIKE '%AppDiagnostics\svchost.exe'")
    # The EternalBlue tool is listed with its FuzzBunch command line (not its config file).
    assert all("--InConfig" in (r["command_line"] or "") for r in tools), tools
    infected = {h["host"] for h in truth["hosts"] if h["infected"]}
    assert infected
    for name, view in inv.hosts.items():
        rules = {f.rule: f for f in view.findings}
        if name in infected:
            persist = [f for f in view.findings if f.rule == "host.known_worm_persistence"]
            assert {f.params["name"] for f in persist} == {"snmpstorsrv", "UPnPHostServices"}, name
            assert all(f.evidence and f.evidence[0].line >= 1 for f in persist)
            # The AppDiagnostics scanner shows as a masquerade, or as a hidden PID when it hides.
            masq = rules.get("host.masquerade")
            images = [f.params["path"] for f in view.findings if f.rule == "host.masquerade"]
            assert all(p.lower().endswith(".exe") for p in images), images  # an image, never its config
            assert (masq and "AppDiagnostics" in masq.params["path"]) or "host.hidden_pid" in rules, name
        else:
            high = [f.rule for f in view.findings if f.severity in ("high", "critical")]
            assert high == [], (name, high)
    # Every simulated bundle file was read without a skipped line, and attributed to its host; only
    # what a command prints when there is nothing (File Not Found, no portproxy) holds no records.
    manifest = [json.loads(x) for x in (tmp_path / "case" / "evidence" / "manifest.jsonl").read_text().splitlines()]
    ok = {"ingested", "empty"}
    bad = [(e["path"], e["status"], e.get("skip_reasons")) for e in manifest if e["status"] not in ok or e["skipped"]]
    assert bad == []
    empty = [Path(e["path"]).name for e in manifest if e["status"] == "empty"]
    assert set(empty) <= {"dir_appdiagnostics.txt", "portproxy.txt"}
    assert all(e["host"] for e in manifest if "/hosts/" in e["path"])


def test_hosts_commands_that_printed_nothing_are_counted_not_listed_as_problems(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from wormhunt.cli import app

    simulate(tmp_path / "ev", hosts=8, seed=3, days=1, lines=100, locale="en-US")
    (tmp_path / "ev" / "hosts" / "stray.log").write_bytes(b"")  # empty and nobody's: still a problem
    res = CliRunner().invoke(app, ["triage", str(tmp_path / "ev" / "hosts"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["evidence"]["empty"] >= 8  # clean hosts' File Not Found listings and empty portproxy output
    assert [Path(p["path"]).name for p in doc["evidence"]["problems"]] == ["stray.log"]
