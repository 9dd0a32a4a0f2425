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
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
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
    return Plan(host=socket.gethostname(), status="infected", platform="linux", steps=steps)


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
    assert len(zips) == 2 and sorted(report["quarantines"]) == [str(z) for z in zips]  # one per quarantine step
    got = {}
    for zp in zips:
        with pyzipper.AESZipFile(zp) as z:
            with pytest.raises(RuntimeError):
                z.read("manifest.json")  # encrypted: no password, no content
            z.setpassword(b"infected")
            manifest = json.loads(z.read("manifest.json"))
            got |= {str(Path(e["path"]).relative_to(env["root"])): e["sha256"] for e in manifest}
            for e in manifest:
                assert hashlib.sha256(z.read(e["entry"])).hexdigest() == e["sha256"]
        assert json.loads(zp.with_suffix(".manifest.json").read_text()) == manifest
    assert got == {k: env["before"][k] for k in targets}
    assert list(work.glob("backup-*.json"))
    assert oct(work.stat().st_mode & 0o777) == "0o700"

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


# -- security review: symlinks, crash safety, check-then-act, host check, rollback sources ----------


def _kit(tmp: Path) -> tuple[Path, Plan]:
    """A folder with two files and a plan that quarantines it (no processes)."""
    kit = tmp / "kit"
    (kit / "sub").mkdir(parents=True)
    (kit / "a.bin").write_bytes(b"A" * 3000)
    (kit / "sub" / "b.bin").write_bytes(b"B" * 5000)
    why = [Reason("finding", "host.masquerade", "test", ())]
    steps = [
        Step("s01", "backup", {"kind": "backup", "covers": []}, why),
        Step("s02", "quarantine", {"kind": "directory", "path": str(kit)}, why),
        Step("s03", "verify", {"kind": "verify"}, why),
    ]
    return kit, Plan(host=socket.gethostname(), status="infected", platform="linux", steps=steps)


def test_rollback_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    from wormhunt.respond.execute import rollback, run_plan

    kit, plan = _kit(tmp_path)
    assert run_plan(plan, tmp_path / "w", execute=True, verify_seconds=0).ok
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (kit / "sub").mkdir(parents=True)
    (kit / "a.bin").symlink_to(victim)  # the restore target is now a link to another file
    with pytest.raises((OSError, ValueError)):
        rollback(tmp_path / "w", execute=True)
    assert victim.read_text() == "precious"
    # nor a link at the old temporary name
    (kit / "a.bin").unlink()
    (kit / "a.bin.wormhunt-restore").symlink_to(victim)
    rollback(tmp_path / "w", execute=True)
    assert victim.read_text() == "precious" and (kit / "a.bin").read_bytes() == b"A" * 3000
    assert not (kit / "a.bin").is_symlink()


def test_rollback_ignores_dropped_archives_and_paths_outside_the_plan(tmp_path: Path) -> None:
    from wormhunt.respond.execute import rollback, run_plan
    from wormhunt.respond.quarantine import Quarantine

    kit, plan = _kit(tmp_path)
    work = tmp_path / "w"
    assert run_plan(plan, work, execute=True, verify_seconds=0).ok
    # a crafted archive (the password is public) dropped with a name that sorts last
    evil_src = tmp_path / "evil"
    evil_src.write_bytes(b"pwned")
    q = Quarantine(work / "quarantine-99999999T999999999999Z-s99.zip")
    q.add(evil_src)
    q.entries[0].path = str(tmp_path / "etc-passwd")
    q.close()
    restored = rollback(work, execute=True)  # the archives the run recorded, not the newest name
    assert sorted(restored) == sorted([str(kit / "a.bin"), str(kit / "sub" / "b.bin")])
    assert not (tmp_path / "etc-passwd").exists()
    # given explicitly, the archive still cannot write outside the plan's paths
    with pytest.raises(ValueError, match="not a path the plan quarantined"):
        rollback(work, q.zip_path, execute=True, plan=plan)
    assert not (tmp_path / "etc-passwd").exists()


def test_originals_survive_a_kill_before_the_archive_is_verified(tmp_path: Path) -> None:
    """SIGKILL (os._exit) at the first removal: every file is still there or in a verified archive."""
    kit, plan = _kit(tmp_path)
    (tmp_path / "plan.json").write_text(json.dumps(plan.to_json()), encoding="utf-8")
    code = f"""
import os, json, pathlib
from wormhunt.respond.plan import Plan
from wormhunt.respond.execute import run_plan
os.unlink = lambda *a, **k: os._exit(9)
pathlib.Path.unlink = lambda *a, **k: os._exit(9)
plan = Plan.from_json(json.loads(pathlib.Path({str(tmp_path / "plan.json")!r}).read_text()))
run_plan(plan, pathlib.Path({str(tmp_path / "w")!r}), execute=True, verify_seconds=0)
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert res.returncode == 9, res.stderr
    from wormhunt.respond.quarantine import verify

    zips = list((tmp_path / "w").glob("quarantine-*.zip"))
    assert len(zips) == 1
    assert {Path(e.path).name for e in verify(zips[0])} == {"a.bin", "b.bin"}
    assert (kit / "a.bin").exists() and (kit / "sub" / "b.bin").exists()


def test_quarantine_streams_instead_of_reading_whole_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wormhunt.respond.execute import run_plan

    _kit_dir, plan = _kit(tmp_path)

    def no_read_bytes(self: Path) -> bytes:
        raise AssertionError(f"read whole file into memory: {self}")

    monkeypatch.setattr(Path, "read_bytes", no_read_bytes)
    report = run_plan(plan, tmp_path / "w", execute=True, verify_seconds=0)
    assert report.ok, report.to_json()


def test_symlinked_folder_root_or_subfolder_is_not_followed(tmp_path: Path) -> None:
    from wormhunt.respond.execute import run_plan

    kit, plan = _kit(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    # a symlinked subfolder: its content is neither quarantined nor removed, and the run stops cleanly
    (kit / "link").symlink_to(elsewhere, target_is_directory=True)
    report = run_plan(plan, tmp_path / "w", execute=True, verify_seconds=0)
    assert not report.ok and report.outcomes[-1].action == "stop"
    assert (elsewhere / "keep.txt").read_text() == "keep"
    # a symlinked root: refused before anything is read
    link_root = tmp_path / "linkroot"
    link_root.symlink_to(elsewhere, target_is_directory=True)
    plan.steps[1].target["path"] = str(link_root)
    report = run_plan(plan, tmp_path / "w2", execute=True, verify_seconds=0)
    assert not report.ok and "symbolic link" in report.outcomes[-1].detail
    assert (elsewhere / "keep.txt").read_text() == "keep" and not list((tmp_path / "w2").glob("quarantine-*"))
    # a symlinked component above the root
    plan.steps[1].target["path"] = str(link_root / "x")
    (elsewhere / "x").mkdir()
    (elsewhere / "x" / "f").write_text("keep too")
    report = run_plan(plan, tmp_path / "w3", execute=True, verify_seconds=0)
    assert not report.ok and (elsewhere / "x" / "f").read_text() == "keep too"


def test_a_file_replaced_after_hashing_is_not_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wormhunt.respond import quarantine
    from wormhunt.respond.execute import run_plan

    kit, plan = _kit(tmp_path)
    real_close = quarantine.Quarantine.close

    def close_then_swap(self: quarantine.Quarantine) -> list:
        out = real_close(self)
        target = kit / "a.bin"
        target.unlink()
        target.write_bytes(b"a different file with the same name")  # a new inode
        return out

    monkeypatch.setattr(quarantine.Quarantine, "close", close_then_swap)
    report = run_plan(plan, tmp_path / "w", execute=True, verify_seconds=0)
    assert not report.ok and "changed or was replaced" in report.outcomes[-1].detail
    assert (kit / "a.bin").read_bytes() == b"a different file with the same name"


def test_a_plan_for_another_host_is_refused(tmp_path: Path) -> None:
    kit, plan = _kit(tmp_path)
    plan.host = "NOT-" + socket.gethostname().upper()
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan.to_json()), encoding="utf-8")
    args = ["remediate", "--plan", str(path), "--workdir", str(tmp_path / "w"), "--execute", "--verify-seconds", "0"]
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 2 and "this plan is for" in res.stdout
    assert (kit / "a.bin").exists() and not (tmp_path / "w").exists()
    res = CliRunner().invoke(app, [*args, "--force-host", "--json"])
    assert res.exit_code == 0, res.output
    assert not kit.exists()


def test_work_folder_writable_by_others_is_refused(tmp_path: Path) -> None:
    from wormhunt.respond.execute import run_plan

    kit, plan = _kit(tmp_path)
    work = tmp_path / "w"
    work.mkdir()
    work.chmod(0o777)
    report = run_plan(plan, work, execute=True, verify_seconds=0)
    assert not report.ok and (kit / "a.bin").exists()


def test_a_pid_started_at_another_time_is_not_killed(infected: dict) -> None:
    """The plan records the process's start time: the same PID and image started later is not it."""
    from wormhunt.respond.execute import run_plan

    plan = make_plan(infected)
    plan.steps = [plan.steps[0], plan.steps[1], plan.steps[5]]
    plan.steps[1].target["created"] = "2001-01-01T00:00:00Z"
    report = run_plan(plan, infected["tmp"] / "w", execute=True, verify_seconds=0)
    assert report.outcomes[1].status == "skipped" and alive(infected["watchdog"].pid)
    born = datetime.fromtimestamp(psutil.Process(infected["watchdog"].pid).create_time(), UTC)
    plan.steps[1].target["created"] = born.strftime("%Y-%m-%dT%H:%M:%SZ")
    report = run_plan(plan, infected["tmp"] / "w2", execute=True, verify_seconds=0)
    assert report.outcomes[1].status == "done" and not alive(infected["watchdog"].pid)
