"""The local executor: applies a plan's file and process steps on the machine it runs on.

Dry-run by default: it says what it would do and changes nothing. With `execute=True`:

- backup first: the sha256 of every file target and a snapshot of the target processes are
  written to the work folder before anything changes;
- watchdog-aware: a process tree is frozen (every member suspended) before any member is
  killed, so a watchdog cannot restart what was just killed; restorers come first because
  the plan's order is checked (`plan.check_order`) before anything runs;
- files go into an AES-encrypted quarantine zip per step (password `infected`, sha256
  manifest); the archive is closed, synced and verified, and only then are that step's
  originals removed, each only if it is still the same file (device, inode, size, mtime) that
  was hashed; a folder is emptied file by file and removed only when empty (no recursive
  delete);
- symbolic links are never followed: a target whose path goes through a link (or a folder
  root that is one) is refused, links inside a folder are neither read nor removed;
- it refuses a plan made for another host (unless `force_host`), and a work folder that is
  not this user's own private folder;
- it stops at the first unexpected result (an OS error is one).

Service, task, WMI, registry, portproxy, user, firewall and SMBv1 steps need Windows tools:
they are reported as skipped here and carried out by `plan.ps1` / `plan.bat`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from wormhunt.respond.plan import CRITICAL_PROCESSES, Plan, Step, assert_order
from wormhunt.respond.quarantine import Quarantine, read_manifest, restore, sha256_file

RUN_RECORD = "last-run.json"
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
    quarantine: str | None = None  # the last archive written
    quarantines: list[str] = field(default_factory=list)  # every archive this run wrote, in order
    ok: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "execute": self.execute,
            "ok": self.ok,
            "quarantine": self.quarantine,
            "quarantines": self.quarantines,
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
    if target.get("created"):  # the evidence's start time (UTC): a reused PID was started at another time
        try:
            want = datetime.strptime(str(target["created"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
            if abs(proc.create_time() - want) > 2:
                return False
        except (ValueError, psutil.Error):
            return False
    return not (target.get("command_line") and target["command_line"] not in cmd)


def _no_links(path: Path) -> None:
    """Refuse a target whose absolute path goes through a symbolic link (or is one)."""
    if not path.is_absolute() or os.path.normpath(path) != str(path):
        raise UnexpectedResult(f"{path}: not a plain absolute path, refused")
    if os.path.realpath(path) != str(path):
        raise UnexpectedResult(f"{path}: a symbolic link is on its path (or it is one), refused")


def _walk(step: Step) -> dict[Path, os.stat_result]:
    """The regular files a quarantine step takes, with their lstat; never follows a symbolic link."""
    t = step.target
    if t.get("kind") not in ("file", "directory"):
        return {}
    root = Path(t["path"])
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return {}
    if stat.S_ISLNK(st.st_mode):
        raise UnexpectedResult(f"{root} is a symbolic link: refused")
    _no_links(root)
    if t["kind"] == "file":
        return {root: st} if stat.S_ISREG(st.st_mode) else {}
    if not stat.S_ISDIR(st.st_mode):
        return {}
    out = {}
    for folder, _dirs, names in os.walk(root, followlinks=False):
        for n in names:
            p = Path(folder, n)
            pst = os.lstat(p)
            if stat.S_ISREG(pst.st_mode):
                out[p] = pst
    return dict(sorted(out.items()))


def _files_of(step: Step) -> list[Path]:
    return list(_walk(step))


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_dev, b.st_ino, b.st_size, b.st_mtime_ns)


def _unlink_if_same(path: Path, seen: os.stat_result) -> None:
    """Remove `path` only if it is still the very file that was quarantined (checked through a
    descriptor of its folder, right before the unlink)."""
    dfd = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
    try:
        now = os.stat(path.name, dir_fd=dfd, follow_symlinks=False)
        if not _same_file(now, seen):
            raise UnexpectedResult(f"{path} changed or was replaced while it was quarantined: not removed")
        os.unlink(path.name, dir_fd=dfd)
    finally:
        os.close(dfd)


def this_host() -> set[str]:
    """Names this machine answers to (upper case, short and full)."""
    names = {socket.gethostname(), socket.getfqdn(), os.environ.get("COMPUTERNAME", "")}
    return {n.upper() for n in names if n} | {n.split(".")[0].upper() for n in names if n}


def private_workdir(workdir: Path) -> None:
    """Create the work folder private to this user (0700), or refuse one that exists and is a
    link, belongs to someone else or is writable by others."""
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(workdir)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnexpectedResult(f"work folder {workdir} is not a plain folder")
    if hasattr(os, "geteuid") and (st.st_uid != os.geteuid() or st.st_mode & 0o022):
        raise UnexpectedResult(f"work folder {workdir} belongs to another user or is writable by others")


class Executor:
    def __init__(self, plan: Plan, workdir: Path, execute: bool = False, verify_seconds: float = 5.0,
                 log: Callable[[str], None] | None = None, force_host: bool = False) -> None:  # fmt: skip
        self.plan = plan
        self.workdir = workdir
        self.execute = execute
        self.verify_seconds = verify_seconds
        self.force_host = force_host
        self.log = log or (lambda s: None)
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self.backup_path = workdir / f"backup-{self.stamp}.json"
        self.run_path = workdir / RUN_RECORD
        self.zips: list[dict[str, str]] = []  # the archives this run created, with their sha256
        self.report = Report(plan.host, execute)

    def _out(self, step: Step, status: str, detail: str = "") -> None:
        self.report.outcomes.append(Outcome(step.id, step.action, status, detail))
        self.log(f"[{status}] {step.id} {step.action}: {detail}")

    def run(self) -> Report:
        assert_order(self.plan.steps)  # refuse an order that removes something while its restorer runs
        try:
            if self.execute and not self.force_host and self.plan.host.upper() not in this_host():
                raise UnexpectedResult(
                    f"this plan is for {self.plan.host}, not this machine ({socket.gethostname()}): "
                    "nothing was done (--force-host to override)"
                )
            if self.execute:
                private_workdir(self.workdir)
            for step in self.plan.steps:
                if step.action not in LOCAL_ACTIONS:
                    self._out(step, "skipped", "Windows-only step: run plan.ps1 or plan.bat on the host")
                    continue
                getattr(self, "_" + step.action)(step)
        except (UnexpectedResult, OSError, ValueError) as exc:
            self.report.ok = False
            self.report.outcomes.append(Outcome("-", "stop", "failed", str(exc)))
            self.log(f"[failed] stopped at the first unexpected result: {exc}")
        return self.report

    def _record_run(self) -> None:
        """Which archives this run created (rollback reads this, it never globs): written to a
        fresh file and renamed over the record."""
        doc = {"host": self.plan.host, "backup": self.backup_path.name, "quarantines": self.zips}
        tmp = self.workdir / f".{RUN_RECORD}.{self.stamp}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.run_path)

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
        fd = os.open(self.backup_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(doc, indent=2))
        self._record_run()
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
        walked = _walk(step)
        files = list(walked)
        if not self.execute:
            self._out(step, "would", f"quarantine {len(files)} file(s) under {step.target['path']}")
            return
        if files:
            # one archive per step, closed and verified before any original of the step is removed
            zip_path = self.workdir / f"quarantine-{self.stamp}-{step.id}.zip"
            archive = Quarantine(zip_path)
            added = []
            try:
                for f in files:
                    entry = archive.add(f)
                    if not _same_file(archive.stats[entry.entry], walked[f]):
                        raise UnexpectedResult(f"{f} was replaced while it was quarantined")
                    added.append((f, entry))
            finally:
                archive.close()  # whatever was added is kept and verified; nothing was removed yet
            digest = sha256_file(zip_path)
            self.zips.append({"zip": zip_path.name, "sha256": digest})
            self._record_run()
            self.report.quarantine = str(zip_path)
            self.report.quarantines.append(str(zip_path))
            for f, entry in added:
                _unlink_if_same(f, archive.stats[entry.entry])  # same device, inode, size and mtime
                if os.path.lexists(f):
                    raise UnexpectedResult(f"{f} is still there after removal")
        if step.target.get("kind") == "directory":
            root = Path(step.target["path"])
            if os.path.lexists(root):
                _no_links(root)
                for folder, _dirs, _names in os.walk(root, topdown=False, followlinks=False):
                    try:
                        os.rmdir(folder)  # only ever an empty folder
                    except OSError as exc:
                        raise UnexpectedResult(f"{folder} could not be removed (not empty? a link inside?): "
                                               f"{exc.strerror}") from None  # fmt: skip
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
             log: Callable[[str], None] | None = None, force_host: bool = False) -> Report:  # fmt: skip
    """Apply `plan` locally (dry-run unless `execute`); see the module docstring."""
    return Executor(plan, workdir, execute, verify_seconds, log, force_host).run()


def plan_paths(plan: Plan) -> Callable[[str], bool]:
    """Whether a path is one the plan quarantines: a file target, or a file under a folder target."""
    files = {os.path.normpath(s.target["path"]) for s in plan.steps
             if s.action == "quarantine" and s.target.get("kind") == "file"}  # fmt: skip
    dirs = [os.path.normpath(s.target["path"]) for s in plan.steps
            if s.action == "quarantine" and s.target.get("kind") == "directory"]  # fmt: skip

    def allowed(path: str) -> bool:
        p = os.path.normpath(path)
        return p == path and (p in files or any(p.startswith(d.rstrip(os.sep) + os.sep) for d in dirs))

    return allowed


def _run_zips(workdir: Path) -> list[Path]:
    """The archives the last run recorded, each checked against the sha256 recorded with it."""
    private_workdir(workdir)
    try:
        doc = json.loads((workdir / RUN_RECORD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no {RUN_RECORD} in {workdir}: no run of the executor to roll back") from None
    out = []
    for z in doc.get("quarantines", []):
        name = str(z["zip"])
        if not re.fullmatch(r"quarantine-[0-9TZ]+-s\d+\.zip", name):
            raise ValueError(f"{RUN_RECORD} names an unexpected archive: {name!r}")
        path = workdir / name
        if sha256_file(path) != z["sha256"]:
            raise ValueError(f"{path} is not the archive the run created (sha256 differs)")
        out.append(path)
    return out


def rollback(workdir: Path, zip_path: Path | None = None, execute: bool = False,
             log: Callable[[str], None] | None = None, plan: Plan | None = None) -> list[str]:  # fmt: skip
    """Restore the archives the last run of `workdir` recorded (or the given one) byte for byte;
    only paths `plan` quarantines when a plan is given; dry-run unless `execute`."""
    log = log or (lambda s: None)
    zips = [zip_path] if zip_path is not None else _run_zips(workdir)
    allowed = plan_paths(plan) if plan is not None else None
    entries = [(z, e) for z in zips for e in read_manifest(z)]
    for _z, e in entries:
        if allowed is not None and not allowed(e.path):
            raise ValueError(f"{e.path} is not a path the plan quarantined: nothing restored")
    if not execute:
        for _z, e in entries:
            log(f"[would] restore {e.path} ({e.sha256})")
        return [e.path for _z, e in entries]
    restored = [str(p) for z in reversed(zips) for p in restore(z, allowed=allowed)]
    for p in restored:
        log(f"[done] restored {p}")
    return restored
