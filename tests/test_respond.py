"""Acceptance (issue 6), the plans: for each simulated family the plan of an infected host
removes the persistence in a valid order and touches only what findings and matched
indicators name; clean hosts get no destructive step; protections hold; the checker refuses
an order that removes something while its restorer still runs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from wormhunt.analyze import analyze
from wormhunt.cli import app
from wormhunt.ingest import ingest
from wormhunt.intel.families import normalize_path
from wormhunt.respond.plan import (
    CHANGES,
    REMOVALS,
    Plan,
    PlanOrderError,
    Step,
    assert_order,
    build_plans,
    check_order,
    kill_refusal,
    quarantine_refusal,
)
from wormhunt.simulate import simulate
from wormhunt.store import Case

FAMILIES = ["wannamine3", "wannamine4", "wannamine-fileless", "dtlminer"]
ACTED = REMOVALS | {"disable_task", "disable_service", "stop_service"}


def _case(tmp: Path, family: str, assets: str | None = None) -> tuple[dict[str, Any], dict[str, Plan], dict]:
    truth = simulate(tmp / "ev", hosts=8, seed=11, days=1, lines=200, family=family, locale="en-US")
    paths = [tmp / "ev" / "hosts"]
    if assets:
        (tmp / "assets.csv").write_text(assets, encoding="utf-8")
        paths.append(tmp / "assets.csv")
    with Case(tmp / "case") as case:
        ingest(case, paths)
        inv = analyze(case)
        plans = build_plans(case, inv)
        blobs = {}
        for p in plans.values():
            for s in p.steps:
                blobs[(p.host, s.id)] = _evidence_blob(case, s)
    return truth, plans, blobs


def _evidence_blob(case: Case, step: Step) -> str:
    """Every value of the records the step's reasons cite, and the reasons' texts."""
    parts = [r.text for r in step.rationale]
    for r in step.rationale:
        for e in r.evidence:
            sql = f"SELECT * FROM {e.kind} WHERE evidence_id = ? AND line = ?"
            for row in case.query(sql, [e.evidence_id, e.line]):
                parts += [str(v) for v in row.values() if v is not None]
    return normalize_path("\n".join(parts))


def _identity(step: Step) -> list[str]:
    t = step.target
    kind = t.get("kind")
    if kind in ("service", "task", "user", "service_host"):
        return [t["name"]]
    if kind in ("file", "directory", "image"):
        return [t["path"]]
    if kind in ("process", "script"):
        return [str(t["pid"])]
    if kind == "wmi":
        return [x for x in (t.get("name") if t["role"] != "binding" else None, t.get("filter"), t.get("class")) if x]
    if kind == "portproxy":
        return [str(t["listen_port"])]
    if kind == "registry":
        return [t["value"]]
    return []


@pytest.fixture(scope="module", params=FAMILIES)
def outbreak(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    return request.param, *_case(tmp_path_factory.mktemp(request.param), request.param)


def test_infected_hosts_get_a_valid_ordered_plan(outbreak: tuple) -> None:
    family, truth, plans, _ = outbreak
    infected = {h.upper() for h in truth["infected"]}
    assert infected
    for host, plan in plans.items():
        if host.upper() not in infected:
            continue
        actions = [s.action for s in plan.steps]
        assert plan.family == family.replace("-", "_"), (host, plan.family)
        assert check_order(plan.steps) == []
        assert actions[0] == "contain" and actions[1] == "backup" and actions[-1] == "verify"
        pos = {a: [i for i, x in enumerate(actions) if x == a] for a in set(actions)}
        first_change = min(i for i, a in enumerate(actions) if a in CHANGES - {"contain"})
        assert pos["backup"][0] < first_change
        disables = pos.get("disable_task", []) + pos.get("disable_service", []) + pos.get("stop_service", [])
        for q in pos.get("quarantine", []) + pos.get("delete_service", []) + pos.get("delete_task", []):
            assert all(d < q for d in disables), (host, actions)
        for w in pos.get("remove_wmi", []):
            assert all(k < w for k in pos.get("kill_scripts", [])), actions
        # each persistence kind the family uses is removed
        removed = {s.target.get("kind") for s in plan.steps if s.action in REMOVALS}
        if family in ("wannamine3", "wannamine4", "dtlminer"):
            assert "service" in removed and "file" in removed
        if family == "wannamine3":
            assert "task" in removed
            paths = {normalize_path(s.target["path"]) for s in plan.steps if s.action == "quarantine"}
            assert "c:\\windows\\system32\\marstracediagnostics.xml" in paths
            assert "c:\\windows\\appdiagnostics" in paths
        if family == "wannamine-fileless":
            roles = [s.target["role"] for s in plan.steps if s.action == "remove_wmi"]
            assert roles == sorted(roles, key=["binding", "consumer", "filter", "class"].index) and "binding" in roles
            assert any(s.action == "kill_scripts" for s in plan.steps)
        if family == "dtlminer":
            assert {"portproxy", "user", "registry"} <= removed


def test_plans_touch_only_what_findings_and_indicators_name(outbreak: tuple) -> None:
    _, _, plans, blobs = outbreak
    for host, plan in plans.items():
        for s in plan.steps:
            if s.action not in ACTED:
                continue
            assert s.rationale and all(r.evidence for r in s.rationale), (host, s.id, s.action)
            blob = blobs[(host, s.id)]
            for value in _identity(s):
                v = normalize_path(value)
                folder = v.rsplit("\\", 1)[0]
                assert v in blob or (s.target.get("kind") == "file" and folder in blob), (host, s.action, value)
        # never a genuine system binary, never svchost/rundll32 by image path
        for s in plan.steps:
            if s.action == "quarantine":
                assert quarantine_refusal(s.target["path"], True) is None
            if s.action == "kill_process":
                assert kill_refusal(None, s.target["path"], by_pid=False) is None
            if s.action == "kill_tree" and s.target.get("kind") == "process":
                assert kill_refusal(s.target["name"], s.target["image"], by_pid=True) is None


def test_clean_hosts_get_no_step(outbreak: tuple) -> None:
    _, truth, plans, _ = outbreak
    infected = {h.upper() for h in truth["infected"]}
    clean = [p for h, p in plans.items() if h.upper() not in infected and p.status == "clean"]
    assert clean
    for p in clean:
        assert p.steps == [] and not p.destructive
    for p in plans.values():  # a merely suspicious host gets things to review, never a step
        if p.status != "infected":
            assert p.steps == []


def test_checker_refuses_removal_while_the_restorer_runs() -> None:
    def step(i: int, action: str, target: dict[str, Any]) -> Step:
        return Step(f"s{i:02d}", action, target)

    svc = {"kind": "service", "name": "snmpstorsrv"}
    task = {"kind": "task", "name": "\\UPnPHostServices"}
    backup = {"kind": "backup", "covers": ["service:snmpstorsrv", "task:\\upnphostservices"]}
    dll = {"kind": "file", "path": "C:\\Windows\\System32\\snmpstorsrv.dll"}
    good = [step(1, "backup", backup), step(2, "disable_task", task), step(3, "disable_service", svc),
            step(4, "stop_service", svc), step(5, "delete_service", svc), step(6, "quarantine", dll),
            step(7, "verify", {"kind": "verify"})]  # fmt: skip
    assert check_order(good) == []
    # the file goes while the service that re-extracts it still runs
    bad = [good[0], good[5], *good[1:5], good[6]]
    with pytest.raises(PlanOrderError, match="restorer"):
        assert_order(bad)
    # a change before the backup
    with pytest.raises(PlanOrderError, match="backup"):
        assert_order([good[2], good[0], *good[3:]])
    # deleting a service never disabled and stopped
    assert any("deleted before" in p for p in check_order([good[0], good[4], good[6]]))
    # WMI: objects removed before the scripts that rewrite them are killed; class before binding
    ns = "root\\subscription"
    wmi_b = {"kind": "wmi", "namespace": ns, "role": "binding", "name": "a -> b"}
    wmi_c = {"kind": "wmi", "namespace": ns, "role": "class", "name": "Win32_Services"}
    covers = ["wmi:root\\subscription:binding:a -> b", "wmi:root\\subscription:class:win32_services"]
    cov = {"kind": "backup", "covers": covers}
    script = {"kind": "script", "pid": 9044, "command_line": "powershell -e x"}
    ok = [step(1, "backup", cov), step(2, "kill_scripts", script), step(3, "remove_wmi", wmi_b),
          step(4, "remove_wmi", wmi_c)]  # fmt: skip
    assert check_order(ok) == []
    assert any("rewrite WMI" in p for p in check_order([ok[0], ok[2], ok[1], ok[3]]))
    assert any("out of order" in p for p in check_order([ok[0], ok[1], ok[3], ok[2]]))


def test_protections() -> None:
    assert kill_refusal("lsass.exe", "C:\\Windows\\System32\\lsass.exe", by_pid=True) == "critical_process"
    assert kill_refusal("csrss.exe", None, by_pid=True) == "critical_process"
    assert kill_refusal("svchost.exe", "C:\\Windows\\AppDiagnostics\\svchost.exe", by_pid=False) == "pid_only"
    assert kill_refusal("svchost.exe", "C:\\Windows\\AppDiagnostics\\svchost.exe", by_pid=True) is None
    assert kill_refusal("rundll32.exe", "C:\\Windows\\System32\\rundll32.exe", by_pid=False) == "pid_only"
    assert quarantine_refusal("C:\\Windows\\System32\\svchost.exe", named_exactly=True) == "system_binary"
    assert quarantine_refusal("%SystemRoot%\\System32\\zlib1.dll", named_exactly=False) == "system32_not_named"
    assert quarantine_refusal("C:\\Windows\\System32\\snmpstorsrv.dll", named_exactly=True) is None


def test_vendor_forbids_av_and_business_critical_service(tmp_path: Path) -> None:
    truth = simulate(tmp_path / "ev", hosts=8, seed=11, days=1, lines=200, family="wannamine3", locale="en-US")
    host = sorted(truth["infected"])[0]
    assets = f"Host,IP Address,Role,Vendor forbids AV,Critical services\n{host},,cluster,yes,snmpstorsrv;LanmanServer\n"
    (tmp_path / "assets.csv").write_text(assets, encoding="utf-8")
    with Case(tmp_path / "case") as case:
        ingest(case, [tmp_path / "ev" / "hosts", tmp_path / "assets.csv"])
        plan = build_plans(case, analyze(case), [host])[host]
    assert plan.conservative and plan.warnings[0]["key"] == "respond.warn_av_forbidden"
    assert not any(s.target.get("name") == "snmpstorsrv" for s in plan.steps if s.action != "verify")
    assert {"target": {"kind": "service", "name": "snmpstorsrv"}, "why": "business_critical"} in plan.refused
    assert not any(s.target.get("kind") == "directory" for s in plan.steps)  # exact paths only
    contain = next(s for s in plan.steps if s.action == "contain")
    assert contain.target["inbound"] is False
    from wormhunt.respond import render_bat, render_ps1

    ps1, bat = render_ps1.render(plan), render_bat.render(plan)
    assert "AcknowledgeVendorWarning" in ps1 and "厂商禁止" in ps1 and "ACK_VENDOR" in bat


def test_plan_and_remediate_commands(tmp_path: Path) -> None:
    truth = simulate(tmp_path / "ev", hosts=8, seed=3, days=1, lines=200, family="dtlminer", locale="zh-CN")
    runner = CliRunner()
    res = runner.invoke(app, ["investigate", str(tmp_path / "ev" / "hosts"), "--case", str(tmp_path / "c"), "--json"])
    assert res.exit_code in (0, 1), res.output
    res = runner.invoke(app, ["plan", "--case", str(tmp_path / "c"), "--out", str(tmp_path / "plans"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    by_host = {r["host"].upper(): r for r in doc["plans"]}
    for h in truth["infected"]:
        files = by_host[h.upper()]["files"]
        assert set(files) == {"plan.json", "plan.ps1", "plan.bat", "rollback.ps1", "rollback.bat"}
        assert all(Path(f).stat().st_size > 0 for f in files.values())
        plan = Plan.from_json(json.loads(Path(files["plan.json"]).read_text(encoding="utf-8")))
        assert check_order(plan.steps) == []
    res = runner.invoke(
        app, ["plan", "--case", str(tmp_path / "c"), "--out", str(tmp_path / "plans"), "--lang", "zh-CN"]
    )
    assert res.exit_code == 0 and "处置计划" in res.stdout
    # remediate on this Linux machine: the Windows targets do not exist here, and a dry run changes nothing
    first = by_host[sorted(truth["infected"])[0].upper()]["files"]["plan.json"]
    res = runner.invoke(app, ["remediate", "--plan", first, "--workdir", str(tmp_path / "w"), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["execute"] is False and not (tmp_path / "w").exists()
    assert {o["status"] for o in report["steps"]} <= {"would", "skipped", "done"}


def test_plan_targets_are_safe_paths_and_processes_carry_their_creation_time(outbreak: tuple) -> None:
    """Security review: a plan's file/folder targets are absolute paths without wildcards, `..` or a
    trailing dot, and a process killed by PID records when it started (a reused PID has another time)."""
    from wormhunt.respond.plan import path_refusal

    family, _, plans, _ = outbreak
    procs = 0
    for plan in plans.values():
        for s in plan.steps:
            t = s.target
            if s.action == "quarantine":
                assert path_refusal(t["path"], directory=t["kind"] == "directory") is None, t
            if s.action == "kill_tree" and t.get("kind") == "process":
                procs += 1
                assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t.get("created") or ""), t
    assert procs or family == "wannamine-fileless"  # the fileless variant has no process killed by PID
