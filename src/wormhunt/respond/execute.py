"""The local executor: applies a plan's file and process steps on the machine it runs on.

Dry-run by default: it says what it would do and changes nothing. With `execute=True`:

- backup first: the sha256 of every file target and a snapshot of the target processes are
  written to the work folder before anything changes;
- watchdog-aware: a process tree is frozen (every member suspended) before any member is
  killed, so a watchdog cannot restart what was just killed; restorers come first because
  the plan's order is checked (`plan.check_order`) before anything runs;
- files go into the AES-encrypted quarantine zip (password `infected`, sha256 manifest), the
  archive is verified, and only then are the originals removed; a folder is emptied file by
  file and removed only when empty (no recursive delete);
- it stops at the first unexpected result.

Service, task, WMI, registry, portproxy, user, firewall and SMBv1 steps need Windows tools:
they are reported as skipped here and carried out by `plan.ps1` / `plan.bat`.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from wormhunt.respond.plan import CRITICAL_PROCESSES, Plan, Step, assert_order
from wormhunt.respond.quarantine import Quarantine, restore, sha256_file

LOCAL_ACTIONS = frozenset({"backup", "kill_tree", "kill_scripts", "kill_process", "quarantine", "verify"})


class UnexpectedResult(RuntimeError):
    pass


@dataclass
class Outcome:
    step: str
    action: str
    status: str  # would, done, skipped, refused, failed
    detail: str = ""


@dataclass
class Report:
    host: str
    execute: bool
    outcomes: list[Outcome] = field(default_factory=list)
    quarantine: str | None = None
    ok: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "execute": self.execute,
            "ok": self.ok,
            "quarantine": self.quarantine,
            "steps": [o.__dict__ for o in self.outcomes],
        }


def _same_path(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    if os.name == "nt":
        return os.path.normcase(os.path.normpath(a)) == os.path.normcase(os.path.normpath(b))
    return os.path.realpath(a) == os.path.realpath(b)


def _protected(proc: psutil.Process) -> str | None:
    """Why this process must never be killed by the executor."""
    if proc.pid in (0, 1, os.getpid()):
        return "system or own process"
    try:
        if proc.pid in {p.pid for p in psutil.Process().parents()}:
            return "an ancestor of the executor"
        if proc.name().lower() in CRITICAL_PROCESSES:
            return "critical process"
    except psutil.Error:
        return None
    return None


def _kill_tree(root: psutil.Process) -> list[int]:
    """Freeze the whole tree, then kill it, children first; returns the PIDs killed."""
    try:
        members = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    for p in members:
        why = _protected(p)
        if why:
            raise UnexpectedResult(f"PID {p.pid} in the tree is protected ({why})")
    for p in members:
        with contextlib.suppress(psutil.Error):
            p.suspend()
    for p in reversed(members):
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    _, alive = psutil.wait_procs(members, timeout=5)
    if alive:
        raise UnexpectedResult(f"still alive after kill: {[p.pid for p in alive]}")
    return [p.pid for p in members]


def _matches(proc: psutil.Process, target: dict[str, Any]) -> bool:
    try:
        exe = proc.exe()
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return False
    if target.get("image") and not _same_path(exe, target["image"]):
        return False
    return not (target.get("command_line") and target["command_line"] not in cmd)


def _files_of(step: Step) -> list[Path]:
    t = step.target
    if t.get("kind") == "file":
        p = Path(t["path"])
        return [p] if p.is_file() else []
    if t.get("kind") == "directory":
        root = Path(t["path"])
        if not root.is_dir():
            return []
        return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    return []


class Executor:
    def __init__(self, plan: Plan, workdir: Path, execute: bool = False, verify_seconds: float = 5.0,
                 log: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self.plan = plan
        self.workdir = workdir
        self.execute = execute
        self.verify_seconds = verify_seconds
        self.log = log or (lambda s: None)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self.zip_path = workdir / f"quarantine-{stamp}.zip"
        self.backup_path = workdir / f"backup-{stamp}.json"
        self._archive: Quarantine | None = None
        self.report = Report(plan.host, execute)

    def _out(self, step: Step, status: str, detail: str = "") -> None:
        self.report.outcomes.append(Outcome(step.id, step.action, status, detail))
        self.log(f"[{status}] {step.id} {step.action}: {detail}")

    def run(self) -> Report:
        assert_order(self.plan.steps)  # refuse an order that removes something while its restorer runs
        try:
            for step in self.plan.steps:
                if step.action not in LOCAL_ACTIONS:
                    self._out(step, "skipped", "Windows-only step: run plan.ps1 or plan.bat on the host")
                    continue
                getattr(self, "_" + step.action)(step)
        except UnexpectedResult as exc:
            self.report.ok = False
            self.report.outcomes.append(Outcome("-", "stop", "failed", str(exc)))
            self.log(f"[failed] stopped at the first unexpected result: {exc}")
        finally:
            if self._archive is not None and self._archive.entries:
                self._archive.close()
                self.report.quarantine = str(self.zip_path)
        return self.report

    # -- steps ----------------------------------------------------------------------------

    def _backup(self, step: Step) -> None:
        files = [p for s in self.plan.steps if s.action == "quarantine" for p in _files_of(s)]
        procs = []
        for s in self.plan.steps:
            if s.action in ("kill_tree", "kill_scripts") and s.target.get("pid"):
                try:
                    p = psutil.Process(int(s.target["pid"]))
                    procs.append({"pid": p.pid, "exe": p.exe(), "cmdline": p.cmdline()})
                except psutil.Error:
                    pass
        doc = {"host": self.plan.host, "files": {str(p): sha256_file(p) for p in files}, "processes": procs}
        if not self.execute:
            self._out(step, "would", f"record sha256 of {len(files)} files and {len(procs)} processes")
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.backup_path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
        self._out(step, "done", str(self.backup_path))

    def _kill_tree(self, step: Step) -> None:
        t = step.target
        if t.get("kind") == "service_host":
            self._out(step, "skipped", "service host PIDs are resolved by the Windows scripts")
            return
        try:
            proc = psutil.Process(int(t["pid"]))
        except (psutil.NoSuchProcess, KeyError, ValueError):
            self._out(step, "done", f"PID {t.get('pid')} is not running")
            return
        if not _matches(proc, t):
            self._out(step, "skipped", f"PID {proc.pid} now runs something else: not killed")
            return
        why = _protected(proc)
        if why:
            raise UnexpectedResult(f"PID {proc.pid} is protected ({why})")
        if not self.execute:
            self._out(step, "would", f"kill the tree of PID {proc.pid} ({t.get('image')})")
            return
        self._out(step, "done", f"killed {_kill_tree(proc)}")

    _kill_scripts = _kill_tree

    def _kill_process(self, step: Step) -> None:
        path = step.target["path"]
        found = [p for p in psutil.process_iter() if _matches(p, {"image": path})]
        if not self.execute:
            self._out(step, "would", f"kill {len(found)} process(es) running {path}")
            return
        killed = [pid for p in found for pid in _kill_tree(p)]
        self._out(step, "done", f"killed {killed}")

    def _quarantine(self, step: Step) -> None:
        files = _files_of(step)
        if not self.execute:
            self._out(step, "would", f"quarantine {len(files)} file(s) under {step.target['path']}")
            return
        if self._archive is None:
            self._archive = Quarantine(self.zip_path)
        for f in files:
            entry = self._archive.add(f)
            if sha256_file(f) != entry.sha256:
                raise UnexpectedResult(f"{f} changed while it was quarantined")
            f.unlink()
            if f.exists():
                raise UnexpectedResult(f"{f} is still there after removal")
        if step.target.get("kind") == "directory":
            root = Path(step.target["path"])
            for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                d.rmdir()  # only ever an empty folder
            if root.exists():
                root.rmdir()
        self._out(step, "done", f"{len(files)} file(s) quarantined from {step.target['path']}")

    def _verify(self, step: Step) -> None:
        if not self.execute:
            self._out(step, "would", f"wait {self.verify_seconds:g} s and check that nothing regrows")
            return
        time.sleep(self.verify_seconds)
        regrown = [
            s.target["path"] for s in self.plan.steps if s.action == "quarantine" and Path(s.target["path"]).exists()
        ]
        running = [
            p.pid for s in self.plan.steps if s.action == "kill_process"
            for p in psutil.process_iter() if _matches(p, {"image": s.target["path"]})
        ]  # fmt: skip
        if regrown or running:
            raise UnexpectedResult(f"regrown after {self.verify_seconds:g} s: files {regrown}, processes {running}")
        self._out(step, "done", f"nothing regrew in {self.verify_seconds:g} s")


def run_plan(plan: Plan, workdir: Path, execute: bool = False, verify_seconds: float = 5.0,
             log: Callable[[str], None] | None = None) -> Report:  # fmt: skip
    """Apply `plan` locally (dry-run unless `execute`); see the module docstring."""
    return Executor(plan, workdir, execute, verify_seconds, log).run()


def rollback(workdir: Path, zip_path: Path | None = None, execute: bool = False,
             log: Callable[[str], None] | None = None) -> list[str]:  # fmt: skip
    """Restore the newest (or the given) quarantine of `workdir` byte for byte; dry-run unless `execute`."""
    log = log or (lambda s: None)
    if zip_path is None:
        zips = sorted(workdir.glob("quarantine-*.zip"))
        if not zips:
            raise FileNotFoundError(f"no quarantine-*.zip in {workdir}")
        zip_path = zips[-1]
    from wormhunt.respond.quarantine import read_manifest

    entries = read_manifest(zip_path)
    if not execute:
        for e in entries:
            log(f"[would] restore {e.path} ({e.sha256})")
        return [e.path for e in entries]
    restored = [str(p) for p in restore(zip_path)]
    for p in restored:
        log(f"[done] restored {p}")
    return restored

