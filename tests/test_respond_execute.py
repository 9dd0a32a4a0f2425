"""Acceptance (issue 6), the local executor on Linux: a fake infected tree (files, a process
running from it and a watchdog that restores a deleted file and restarts the process — small
Python and a copy of `sleep`, not malware) is cleaned by `wormhunt remediate --execute`:
processes gone, nothing regrows, files in the encrypted quarantine with a correct manifest,
nothing else changed, rollback restores byte for byte; a dry run changes nothing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import pyzipper
from typer.testing import CliRunner

from wormhunt.cli import app
from wormhunt.respond.plan import Plan, PlanOrderError, Reason, Step, assert_order

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the Linux executor test")

WATCHDOG = r'''
import subprocess, sys, time, pathlib
miner, container, pidfile = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
saved = container.read_bytes()
child = subprocess.Popen([str(miner), "1000"])
pidfile.write_text(str(child.pid))
while True:
    if not container.exists():
        container.write_bytes(saved)          # the watchdog restores a deleted file
    if child.poll() is not None and miner.exists():
        child = subprocess.Popen([str(miner), "1000"])   # and restarts the miner
        pidfile.write_text(str(child.pid))
    time.sleep(0.05)
'''


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def infected(tmp_path: Path):
    root = tmp_path / "host"
    kit = root / "Windows" / "AppDiagnostics"
    (kit / "sub").mkdir(parents=True)
    miner = kit / "svchost"
    shutil.copy2(shutil.which("sleep") or "/bin/sleep", miner)
    (kit / "x64.dll").write_bytes(b"MZ fake payload dll\x00" * 50)
    (kit / "sub" / "svchost.xml").write_text("<config/>")
    sys32 = root / "Windows" / "System32"
    sys32.mkdir(parents=True)
    container = sys32 / "MarsTraceDiagnostics.xml"
    container.write_bytes(b"container " * 1000)
    # what must not be touched: a business DLL with a shared name, the real folder's neighbours
    (root / "App").mkdir()
    (root / "App" / "zlib1.dll").write_bytes(b"business zlib")
    (sys32 / "kernel32.dll").write_bytes(b"genuine")
    (root / "Windows" / "AppDiagnostics.txt").write_text("neighbour, not inside the folder")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "watchdog.py").write_text(WATCHDOG)
    pidfile = tools / "miner.pid"
    watchdog = subprocess.Popen([sys.executable, str(tools / "watchdog.py"), str(miner), str(container), str(pidfile)])
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text():
            break
        time.sleep(0.05)
    miner_pid = int(pidfile.read_text())
    before = tree_hashes(root)
    yield {"root": root, "kit": kit, "miner": miner, "container": container, "watchdog": watchdog,
           "miner_pid": miner_pid, "before": before, "tmp": tmp_path}  # fmt: skip
    for p in [watchdog.pid, miner_pid]:
        with contextlib.suppress(psutil.Error):
            psutil.Process(p).kill()
    watchdog.wait(timeout=5)


def make_plan(env: dict) -> Plan:
    why = [Reason("finding", "host.masquerade", "test", ())]
    wd = env["watchdog"]
    steps = [
        Step("s01", "backup", {"kind": "backup", "covers": []}, why),
        Step("s02", "kill_tree", {"kind": "process", "pid": wd.pid, "name": "python", "image": sys.executable,
                                  "command_line": "watchdog.py"}, why),
        Step("s03", "kill_process", {"kind": "image", "path": str(env["miner"])}, why),
        Step("s04", "quarantine", {"kind": "file", "path": str(env["container"])}, why),
        Step("s05", "quarantine", {"kind": "directory", "path": str(env["kit"])}, why),
        Step("s06", "verify", {"kind": "verify"}, why),
    ]
    return Plan(host="localhost", status="infected", platform="linux", steps=steps)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_dry_run_changes_nothing_and_execute_cleans_and_rollback_restores(infected: dict) -> None:
    env = infected
    plan_path = env["tmp"] / "plan.json"
    plan_path.write_text(json.dumps(make_plan(env).to_json()), encoding="utf-8")
    work = env["tmp"] / "work"
    runner = CliRunner()

    res = runner.invoke(app, ["remediate", "--plan", str(plan_path), "--workdir", str(work), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["execute"] is False
    assert tree_hashes(env["root"]) == env["before"]
    assert alive(env["watchdog"].pid) and alive(env["miner_pid"]) and not work.exists()

    res = runner.invoke(
        app, ["remediate", "--plan", str(plan_path), "--workdir", str(work), "--execute", "--verify-seconds", "2",
              "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["ok"], report
    env["watchdog"].wait(timeout=5)
    assert not alive(env["watchdog"].pid) and not alive(env["miner_pid"])
    time.sleep(3)  # nothing regrows
    assert not env["container"].exists() and not env["kit"].exists()
    assert not [p for p in psutil.process_iter() if alive(p.pid) and _exe(p) == str(env["miner"])]

    targets = {"Windows/System32/MarsTraceDiagnostics.xml", "Windows/AppDiagnostics/svchost",
               "Windows/AppDiagnostics/x64.dll", "Windows/AppDiagnostics/sub/svchost.xml"}  # fmt: skip
    after = tree_hashes(env["root"])
    assert after == {k: v for k, v in env["before"].items() if k not in targets}  # nothing else changed

    zips = sorted(work.glob("quarantine-*.zip"))
    assert len(zips) == 1
    with pyzipper.AESZipFile(zips[0]) as z:
        with pytest.raises(RuntimeError):
            z.read("manifest.json")  # encrypted: no password, no content
        z.setpassword(b"infected")
        manifest = json.loads(z.read("manifest.json"))
        got = {str(Path(e["path"]).relative_to(env["root"])): e["sha256"] for e in manifest}
        assert got == {k: env["before"][k] for k in targets}
        for e in manifest:
            assert hashlib.sha256(z.read(e["entry"])).hexdigest() == e["sha256"]
    assert json.loads(zips[0].with_suffix(".manifest.json").read_text()) == manifest
    assert list(work.glob("backup-*.json"))

    res = runner.invoke(app, ["remediate", "--plan", str(plan_path), "--workdir", str(work), "--rollback"])
    assert res.exit_code == 0 and tree_hashes(env["root"]) == after  # rollback dry run
    res = runner.invoke(app, ["remediate", "--plan", str(plan_path), "--workdir", str(work), "--rollback", "--execute"])
    assert res.exit_code == 0, res.output
    assert tree_hashes(env["root"]) == env["before"]  # byte for byte


def _exe(p: psutil.Process) -> str:
    try:
        return p.exe()
    except psutil.Error:
        return ""


def test_wrong_order_is_refused_before_anything_runs(infected: dict) -> None:
    plan = make_plan(infected)
    plan.steps = [plan.steps[0], plan.steps[3], plan.steps[1], plan.steps[2], plan.steps[4], plan.steps[5]]
    with pytest.raises(PlanOrderError):
        assert_order(plan.steps)
    path = infected["tmp"] / "bad.json"
    path.write_text(json.dumps(plan.to_json()), encoding="utf-8")
    args = ["remediate", "--plan", str(path), "--workdir", str(infected["tmp"] / "w"), "--execute"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code != 0
    assert tree_hashes(infected["root"]) == infected["before"] and alive(infected["watchdog"].pid)


def test_a_reused_pid_is_not_killed(infected: dict) -> None:
    """The plan names the watchdog's PID with its image; if that PID now runs another program, it stays."""
    plan = make_plan(infected)
    plan.steps = [plan.steps[0], plan.steps[1], plan.steps[5]]
    plan.steps[1].target["image"] = "/usr/bin/not-the-watchdog"
    from wormhunt.respond.execute import run_plan

    report = run_plan(plan, infected["tmp"] / "w", execute=True, verify_seconds=0)
    assert report.outcomes[1].status == "skipped" and alive(infected["watchdog"].pid)
