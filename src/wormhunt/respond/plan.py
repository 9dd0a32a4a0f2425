"""Remediation plans: typed, ordered steps per host, built only from what the findings and
matched indicators name, ordered by the family playbook, and checked so that nothing is
removed while something that restores it still runs.

A plan never deletes a file: it quarantines (copy, hash, verify, then remove the original).
Every step carries its target, the findings/indicators it answers (with evidence refs), the
expected result and how to roll it back. Renderers (`render_ps1`, `render_bat`) and the
local executor (`execute`) turn the same steps into commands.
"""

from __future__ import annotations

import ntpath
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from wormhunt.intel.families import normalize_path
from wormhunt.intel.match import FAMILY_MIN
from wormhunt.knowledge import load
from wormhunt.model import EvidenceRef, Finding

# Step kinds, in the canonical order (threat-intel.md section 1.6 and section 6 "Remediation engine").
ACTIONS = (
    "contain",
    "backup",
    "disable_task",
    "disable_service",
    "stop_service",
    "kill_tree",
    "kill_scripts",
    "kill_process",
    "remove_wmi",
    "delete_service",
    "delete_task",
    "remove_registry",
    "quarantine",
    "remove_portproxy",
    "remove_firewall_rule",
    "remove_user",
    "disable_smb1",
    "patch",
    "verify",
)
# What changes the host (and so needs a backup before it and a rollback).
CHANGES = frozenset(ACTIONS) - {"backup", "patch", "verify"}
# Steps that remove or end something (the checker's "removals").
REMOVALS = frozenset(
    {"kill_tree", "kill_scripts", "kill_process", "remove_wmi", "delete_service", "delete_task",
     "remove_registry", "quarantine", "remove_portproxy", "remove_firewall_rule", "remove_user"}
)  # fmt: skip
# Steps that neutralise a restorer (persistence that brings things back).
NEUTRALISE = ("disable_task", "disable_service", "stop_service", "kill_tree", "kill_scripts")
# Family playbook actions -> plan actions.
PLAYBOOK_ACTION = {
    "collect": "backup",
    "kill_service_tree": "kill_tree",
    "remove_directory": "quarantine",
    "patch": "patch",
    "reboot": "verify",
    "restore_dns": "verify",
}
WMI_ORDER = ("binding", "consumer", "filter", "class")

# Never killed by a plan (a masquerade outside System32 may be, by PID, after its image is checked).
CRITICAL_PROCESSES = frozenset({"csrss.exe", "wininit.exe", "lsass.exe", "services.exe", "smss.exe", "winlogon.exe"})
# Only ever by the PID of the specific process, never by name or by a System32 image path.
PID_ONLY = CRITICAL_PROCESSES | {"svchost.exe", "rundll32.exe", "dllhost.exe", "spoolsv.exe", "taskhost.exe"}
SYSTEM32 = ("c:\\windows\\system32\\",)
INTERPRETERS = frozenset({"powershell.exe", "cmd.exe", "wscript.exe", "cscript.exe", "mshta.exe", "pwsh.exe"})
SUBSCRIPTION_CLASSES = {
    "__eventfilter": "filter",
    "__filtertoconsumerbinding": "binding",
    "commandlineeventconsumer": "consumer",
    "activescripteventconsumer": "consumer",
    "logfileeventconsumer": "consumer",
    "ntlogeventconsumer": "consumer",
    "nteventlogeventconsumer": "consumer",
    "smtpeventconsumer": "consumer",
}
# Finding params that name an exact file path.
PATH_PARAMS = ("path", "dll", "image")
# Indicator types whose observed value is an exact path.
EXACT_PATH_TYPES = frozenset({"file_path", "process_path", "service_dll"})


class PlanOrderError(ValueError):
    """A step order that would remove something while its restorer still runs."""


@dataclass(frozen=True)
class Reason:
    """Why a step exists: the finding rule or the family indicator it answers."""

    kind: str  # "finding" or "indicator"
    id: str  # rule (host.masquerade) or family.indicator (wannamine3.task)
    text: str  # what was observed
    evidence: tuple[EvidenceRef, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "text": self.text, "evidence": [asdict(e) for e in self.evidence]}


@dataclass
class Step:
    id: str
    action: str
    target: dict[str, Any]
    rationale: list[Reason] = field(default_factory=list)
    expected: str = ""
    rollback: str = ""
    note: str = ""

    @property
    def key(self) -> str:
        """What the step acts on, comparable across steps (service:snmpstorsrv, file:c:\\...)."""
        t = self.target
        kind = t.get("kind", "")
        if kind in ("service", "task", "user"):
            return f"{kind}:{t['name'].lower()}"
        if kind == "file" or kind == "directory":
            return f"{kind}:{normalize_path(t['path'])}"
        if kind == "wmi":
            return f"wmi:{t['namespace'].lower()}:{t['role']}:{(t.get('name') or '').lower()}"
        if kind == "process":
            return f"process:{t.get('pid')}:{normalize_path(t.get('image'))}"
        if kind == "image":
            return f"image:{normalize_path(t['path'])}"
        if kind == "portproxy":
            return f"portproxy:{t['listen_address']}:{t['listen_port']}"
        if kind == "registry":
            return f"registry:{t['key'].lower()}\\{(t.get('value') or '').lower()}"
        return f"{kind}:{t.get('name', '')}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "target": self.target,
            "rationale": [r.to_json() for r in self.rationale],
            "expected": self.expected,
            "rollback": self.rollback,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Step:
        reasons = [
            Reason(r["kind"], r["id"], r["text"], tuple(EvidenceRef(**e) for e in r.get("evidence", [])))
            for r in d.get("rationale", [])
        ]
        return cls(d["id"], d["action"], dict(d["target"]), reasons, d.get("expected", ""), d.get("rollback", ""),
                   d.get("note", ""))  # fmt: skip


@dataclass
class Plan:
    host: str
    status: str = "clean"
    family: str | None = None
    families: list[str] = field(default_factory=list)
    conservative: bool = False
    warnings: list[str] = field(default_factory=list)  # i18n keys with params: [{"key":..., "params":...}]
    steps: list[Step] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)  # targets a protection kept out
    review: list[dict[str, Any]] = field(default_factory=list)  # named, but not acted on automatically
    platform: str = "windows"

    @property
    def destructive(self) -> list[Step]:
        return [s for s in self.steps if s.action in REMOVALS or s.action in CHANGES - {"contain"}]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "wormhunt-plan/1",
            "host": self.host,
            "platform": self.platform,
            "status": self.status,
            "family": self.family,
            "families": self.families,
            "conservative": self.conservative,
            "warnings": self.warnings,
            "steps": [s.to_json() for s in self.steps],
            "refused": self.refused,
            "review": self.review,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Plan:
        if d.get("format") != "wormhunt-plan/1":
            raise ValueError("not a wormhunt plan (format wormhunt-plan/1)")
        return cls(
            host=d["host"],
            status=d.get("status", "clean"),
            family=d.get("family"),
            families=list(d.get("families", [])),
            conservative=bool(d.get("conservative")),
            warnings=list(d.get("warnings", [])),
            steps=[Step.from_json(s) for s in d.get("steps", [])],
            refused=list(d.get("refused", [])),
            review=list(d.get("review", [])),
            platform=d.get("platform", "windows"),
        )


# ---------------------------------------------------------------------------------------------
# Protections


def _system_binaries() -> dict[str, set[str]]:
    kb = load("system_binaries")["binaries"]
    return {k.lower(): {normalize_path(f).rstrip("\\") for f in v["folders"]} for k, v in kb.items()}


def is_genuine_system_binary(path: str) -> bool:
    """A Windows binary name in one of its genuine folders (svchost.exe in System32 …)."""
    p = normalize_path(path)
    folder, name = ntpath.split(p)
    return folder in _system_binaries().get(name, set())


def in_system32(path: str) -> bool:
    return normalize_path(path).startswith(SYSTEM32)


def kill_refusal(name: str | None, image: str | None, by_pid: bool) -> str | None:
    """Why a process must not be killed (None: it may be). Critical processes never unless a
    masquerade outside System32, killed by PID; svchost/rundll32 … only by PID."""
    base = (name or ntpath.basename(normalize_path(image)) or "").lower()
    genuine = bool(image) and is_genuine_system_binary(image or "")
    if base in CRITICAL_PROCESSES and (not image or genuine or in_system32(image)):
        return "critical_process"
    if base in PID_ONLY and not by_pid:
        return "pid_only"
    if genuine and not by_pid:
        return "system_binary"
    if not image and base in PID_ONLY:
        return "image_unknown"
    return None


_DRIVE_PATH = re.compile(r"[A-Za-z]:\\[^\x00-\x1f\x7f*?<>|\"/:]*")


def path_refusal(path: str | None, directory: bool = False) -> str | None:
    """Why a file or folder path from evidence is not acted on by a script (None: it may be):
    only an absolute `X:\\...` path, without wildcards or `<>|"`, a second `:` (stream), a `/`,
    a `.`/`..`/empty component, a component ending in `.` or a space (Win32 strips them, so
    the path would name another file), or a `\\\\?\\`/UNC/device prefix."""
    if not path:
        return "path_missing"
    p = path[:-1] if directory and path.endswith("\\") and len(path) > 3 else path
    if p.startswith(("\\\\", "\\??\\", "//")):
        return "path_device_or_unc"
    if not _DRIVE_PATH.fullmatch(p):
        return "path_not_absolute_or_wildcard"
    if not p[3:]:
        return "path_drive_root"
    parts = p[3:].split("\\")
    if any(c in ("", ".", "..") or c.endswith((".", " ")) for c in parts):
        return "path_dot_segment_or_trailing_dot"
    return None


def quarantine_refusal(path: str, named_exactly: bool) -> str | None:
    """Why a file must not be quarantined: a genuine Windows binary never; a file under
    System32 only when an indicator or finding names that exact path."""
    if is_genuine_system_binary(path):
        return "system_binary"
    if in_system32(path) and not named_exactly:
        return "system32_not_named"
    return None


# ---------------------------------------------------------------------------------------------
# Ordering and the checker


def action_order(playbooks: list[tuple[str, ...]]) -> list[str]:
    """Plan actions in the order of the families' playbooks (first family first), with the
    actions they do not list inserted after their canonical predecessor."""
    seq: list[str] = []
    for actions in playbooks:
        for a in actions:
            a = PLAYBOOK_ACTION.get(a, a)
            if a in ACTIONS and a not in seq:
                seq.append(a)
    for a in ACTIONS:
        if a in seq:
            continue
        i = ACTIONS.index(a)
        before = [b for b in ACTIONS[:i] if b in seq]
        pos = seq.index(before[-1]) + 1 if before else 0
        seq.insert(pos, a)
    return seq


def check_order(steps: list[Step]) -> list[str]:
    """The reasons this order is unsafe ([] when it is safe):

    - backup before any change, and a backup covering each changed target before it;
    - every restorer (task, service, service host, WMI-rewriting script) neutralised before
      any process is killed by image or anything is quarantined/deleted;
    - a service disabled and stopped before it is deleted, a task disabled before deletion;
    - scripts killed before WMI objects are removed; binding, consumer, filter, class;
    - verify last.
    """
    problems: list[str] = []
    backed: set[str] = set()
    seen_backup = False
    idx = {a: [i for i, s in enumerate(steps) if s.action == a] for a in ACTIONS}

    def last(*actions: str) -> int:
        return max((i for a in actions for i in idx.get(a, [])), default=-1)

    last_disable = last("disable_task", "disable_service")
    last_stop = last("stop_service")
    last_restorer = last(*NEUTRALISE, "kill_process")
    last_kill_scripts = last("kill_scripts")
    done: dict[str, set[str]] = {}
    wmi_seen: list[tuple[str, int]] = []
    for i, s in enumerate(steps):
        if s.action == "backup":
            seen_backup = True
            backed.update(s.target.get("covers", []))
            continue
        if s.action in CHANGES and s.action != "contain" and not seen_backup:
            problems.append(f"{s.id} {s.action}: a change before the backup")
        kills = {"contain", "quarantine", "kill_tree", "kill_scripts", "kill_process"}
        if s.action in CHANGES - kills and s.key not in backed:
            problems.append(f"{s.id} {s.action}: {s.key} is changed but no earlier backup covers it")
        if s.action in ("kill_tree", "kill_scripts", "kill_process") and i < last_disable:
            problems.append(f"{s.id} {s.action}: killed while a task or service that restarts it is still enabled")
        if s.action in ("kill_tree", "kill_process") and s.target.get("kind") != "service_host" and i < last_stop:
            problems.append(f"{s.id} {s.action}: killed while a service that restarts it still runs")
        if s.action in ("quarantine", "delete_service", "delete_task", "remove_registry") and i < last_restorer:
            problems.append(f"{s.id} {s.action}: {s.key} removed while a restorer still runs ({last_restorer + 1})")
        if s.action == "remove_wmi":
            if i < last_kill_scripts:
                problems.append(f"{s.id} remove_wmi: removed before the scripts that rewrite WMI are killed")
            rank = WMI_ORDER.index(s.target.get("role", "class"))
            ns = s.target.get("namespace", "").lower()
            if any(r > rank and n == ns for n, r in wmi_seen):
                problems.append(f"{s.id} remove_wmi: {s.target.get('role')} out of order (binding first, class last)")
            wmi_seen.append((ns, rank))
        if s.action == "delete_service" and not {"disable_service", "stop_service"} <= done.get(s.key, set()):
            problems.append(f"{s.id} delete_service: {s.key} deleted before it is disabled and stopped")
        if s.action == "delete_task" and "disable_task" not in done.get(s.key, set()):
            problems.append(f"{s.id} delete_task: {s.key} deleted before it is disabled")
        if s.action == "verify" and i != len(steps) - 1:
            problems.append(f"{s.id} verify: not the last step")
        done.setdefault(s.key, set()).add(s.action)
    return problems


def assert_order(steps: list[Step]) -> None:
    problems = check_order(steps)
    if problems:
        raise PlanOrderError("; ".join(problems))


def order_steps(steps: list[Step], sequence: list[str]) -> list[Step]:
    """Stable sort by action position in `sequence`; WMI removals binding → consumer → filter → class."""

    def rank(s: Step) -> tuple[int, int]:
        sub = WMI_ORDER.index(s.target.get("role", "class")) if s.action == "remove_wmi" else 0
        return sequence.index(s.action), sub

    out = sorted(steps, key=rank)
    for n, s in enumerate(out, 1):
        s.id = f"s{n:02d}"
    return out


# ---------------------------------------------------------------------------------------------
# Building a plan from an investigation


def _reason_f(f: Finding) -> Reason:
    bits = ", ".join(f"{k}={v}" for k, v in f.params.items() if v not in (None, "") and k != "indicators")
    return Reason("finding", f.rule, bits[:300], tuple(f.evidence[:5]))


def _reason_h(family: str, hit: Any) -> Reason:
    ind = hit.indicator
    return Reason("indicator", f"{family}.{ind.id}", f"{ind.type}={hit.observed}"[:300], tuple(hit.evidence[:5]))


class _Collector:
    """Targets a host's findings and hits name, each with the reasons naming it."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def add(self, key: str, target: dict[str, Any], reason: Reason) -> None:
        item = self.items.setdefault(key, {"target": target, "reasons": []})
        if reason not in item["reasons"]:
            item["reasons"].append(reason)

    def of(self, kind: str) -> list[tuple[dict[str, Any], list[Reason]]]:
        return [(v["target"], v["reasons"]) for v in self.items.values() if v["target"]["kind"] == kind]


def _row(case: Any, ref: EvidenceRef) -> dict[str, Any] | None:
    if ref.kind not in ("processes", "services", "tasks", "wmi", "files", "host_config", "autoruns"):
        return None
    rows = case.query(f"SELECT * FROM {ref.kind} WHERE evidence_id = ? AND line = ?", [ref.evidence_id, ref.line])
    return rows[0] if rows else None


def _image(command: str | None) -> str | None:
    if not command:
        return None
    c = command.strip()
    if c.startswith('"'):
        return c[1:].split('"', 1)[0]
    m = re.match(r"(?i)^(.+?\.(exe|dll|sys|com|bat|cmd|ps1|scr))(\s|$)", c)
    return m.group(1) if m else c.split()[0]


def _wmi_name(ref: str | None) -> str | None:
    if not ref:
        return None
    m = re.search(r'Name\s*=\s*"((?:[^"\\]|\\.)*)"', ref)
    return m.group(1).replace('\\"', '"').replace("\\\\", "\\") if m else None


def critical_services(case: Any, host: str) -> set[str]:
    """Service names the asset inventory marks business-critical on `host` (lower case)."""
    try:
        rows = case.query("SELECT * FROM assets")
    except Exception:  # an older case without the table
        return set()
    out: set[str] = set()
    for r in rows:
        if (r.get("hostname") or r.get("host") or "").upper() != host.upper() and (r.get("ip") or "") != host:
            continue
        for name in (r.get("critical_services") or "").split(";"):
            if name.strip():
                out.add(name.strip().lower())
    return out


def build_plan(case: Any, inv: Any, host: str, lang: str = "en") -> Plan:
    """The remediation plan of one host of an investigation (`wormhunt.analyze.analyze`)."""
    view = inv.hosts[host]
    fam_id, _ = inv.family_of(host)
    matches = [m for m in inv.families.get(host, []) if m.confidence >= FAMILY_MIN]
    plan = Plan(host=host, status=view.status, family=fam_id, families=[m.family.id for m in matches])
    asset = view.asset or {}
    plan.conservative = bool(asset.get("av_forbidden"))
    if plan.conservative:
        plan.warnings.append({"key": "respond.warn_av_forbidden", "params": {"host": host}})
    if view.status == "clean":
        return plan
    critical = critical_services(case, host)
    c = _Collector()
    named_paths: set[str] = set()  # exact paths an indicator or a finding names
    folders: list[tuple[str, Reason]] = []  # directory indicators

    def service(name: str | None, reason: Reason) -> None:
        if not name:
            return
        if name.lower() in critical:
            plan.refused.append({"target": {"kind": "service", "name": name}, "why": "business_critical"})
            return
        rows = case.query("SELECT * FROM services WHERE host = ? AND lower(name) = lower(?)", [host, name])
        binary = next((r["binary_path"] for r in rows if r["binary_path"]), None)
        dll = next((r["service_dll"] for r in rows if r["service_dll"]), None)
        c.add(f"service:{name.lower()}", {"kind": "service", "name": name, "binary_path": binary, "service_dll": dll},
              reason)  # fmt: skip

    def task(name: str | None, reason: Reason) -> None:
        if name:
            c.add(f"task:{name.lower()}", {"kind": "task", "name": name}, reason)

    def process(pid: int | None, name: str | None, image: str | None, reason: Reason) -> None:
        if pid is None:
            return
        if not image:
            rows = case.query(
                "SELECT image_path, name FROM processes WHERE host = ? AND pid = ? AND image_path IS NOT NULL",
                [host, pid],
            )
            image = rows[0]["image_path"] if rows else None
            name = name or (rows[0]["name"] if rows else None)
        name = name or (ntpath.basename(image) if image else None)
        why = kill_refusal(name, image, by_pid=True)
        if why or not image:
            plan.refused.append({"target": {"kind": "process", "pid": pid, "name": name, "image": image},
                                 "why": why or "image_unknown"})  # fmt: skip
            return
        target: dict[str, Any] = {"kind": "process", "pid": pid, "name": name, "image": image}
        born = case.query(
            "SELECT DISTINCT created FROM processes WHERE host = ? AND pid = ? AND created IS NOT NULL", [host, pid]
        )
        if len(born) == 1 and hasattr(born[0]["created"], "strftime"):  # UTC; a reused PID has another one
            target["created"] = born[0]["created"].strftime("%Y-%m-%dT%H:%M:%SZ")
        c.add(f"process:{pid}", target, reason)

    def script(r: dict[str, Any], reason: Reason) -> None:
        if (r.get("name") or "").lower() in INTERPRETERS and r.get("command_line"):
            key = f"script:{r['pid']}"
            c.add(key, {"kind": "script", "pid": r["pid"], "name": r["name"], "image": r["image_path"],
                        "command_line": r["command_line"]}, reason)  # fmt: skip
            if r.get("evidence_id") is not None:  # the process record that runs the named command
                ref = EvidenceRef("processes", int(r["evidence_id"]), int(r["line"]))
                c.add(key, c.items[key]["target"], Reason("record", "processes", f"pid={r['pid']}", (ref,)))

    def file(path: str | None, reason: Reason, exact: bool) -> None:
        if not path:
            return
        clean = path.strip().strip('"')
        why = path_refusal(clean)
        if why:  # relative, wildcard, `..`, trailing dot/space, device path: for a human, never a script
            plan.refused.append({"target": {"kind": "file", "path": path}, "why": why})
            return
        if exact:
            named_paths.add(normalize_path(path))
        c.add(f"file:{normalize_path(path)}", {"kind": "file", "path": clean}, reason)
        item = c.items[f"file:{normalize_path(path)}"]["target"]
        if item["path"] == item["path"].lower() and clean != clean.lower():
            item["path"] = clean  # keep the spelling the evidence showed, not the normalised one

    def wmi(r: dict[str, Any], reason: Reason) -> None:
        cls = (r.get("class") or "").lower()
        ns = r.get("namespace") or "root\\subscription"
        role = SUBSCRIPTION_CLASSES.get(cls)
        if role is None:
            role = "class"
            c.add(f"wmi:{ns.lower()}:class:{r.get('class')}".lower(),
                  {"kind": "wmi", "namespace": ns, "role": "class", "class": r.get("class"), "name": r.get("class")},
                  reason)  # fmt: skip
            return
        name = r.get("name")
        if role == "binding":
            name = f"{_wmi_name(r.get('filter'))} -> {_wmi_name(r.get('consumer'))}"
        c.add(f"wmi:{ns.lower()}:{role}:{(name or '').lower()}",
              {"kind": "wmi", "namespace": ns, "role": role, "class": r.get("class"), "name": name,
               "filter": _wmi_name(r.get("filter")), "consumer": _wmi_name(r.get("consumer")),
               "command": r.get("command")}, reason)  # fmt: skip
        if role in ("filter", "consumer") and name:  # its bindings are named through it
            for b in case.query(
                "SELECT * FROM wmi WHERE host = ? AND lower(class) = '__filtertoconsumerbinding'", [host]
            ):
                if name in (_wmi_name(b.get("filter")), _wmi_name(b.get("consumer"))):
                    wmi(b, reason)

    # 1. findings
    for f in view.findings:
        p = f.params
        r = _reason_f(f)
        rows = [x for x in (_row(case, e) for e in f.evidence) if x]
        if f.rule in ("host.known_worm_persistence", "host.persistence_suspicious_path", "host.persistence_script"):
            for row in rows:
                if f.evidence[0].kind == "services":
                    service(row.get("name"), r)
                elif f.evidence[0].kind == "tasks":
                    task(row.get("name"), r)
                elif f.evidence[0].kind == "wmi":
                    wmi(row, r)
                    if row.get("command"):
                        for pr in case.query(
                            "SELECT * FROM processes WHERE host = ? AND command_line = ?", [host, row["command"]]
                        ):
                            script(pr, r)
                elif f.evidence[0].kind == "autoruns" and "\\run" in (row.get("location") or "").lower():
                    c.add(f"registry:{row['location']}\\{row['entry']}".lower(),
                          {"kind": "registry", "key": row["location"], "value": row["entry"]}, r)  # fmt: skip
            if f.rule == "host.persistence_suspicious_path":
                file(_image(p.get("command")), r, exact=True)
        elif f.rule == "host.service_dll_outside_system32":
            service(p.get("name"), r)
            file(p.get("dll"), r, exact=True)
        elif f.rule in ("host.masquerade", "host.pid_smb_fanout", "host.miner_process"):
            image = p.get("path") or p.get("image") or None
            pr = rows[0] if rows and f.evidence[0].kind == "processes" else {}
            if (pr.get("name") or "").lower() in INTERPRETERS and pr.get("command_line"):
                script(pr, r)
            elif image and (ntpath.basename(image).lower() in INTERPRETERS):
                for x in case.query("SELECT * FROM processes WHERE host = ? AND pid = ?", [host, p.get("pid")]):
                    script(x, r)
            else:
                process(p.get("pid"), p.get("name"), image if image and "\\" in image else None, r)
                if image and "\\" in image:
                    file(image, r, exact=True)
        elif f.rule == "host.portproxy":
            addr, _, port = (p.get("listen") or "").rpartition(":")
            if port:
                c.add(f"portproxy:{addr}:{port}", {"kind": "portproxy", "listen_address": addr or "0.0.0.0",
                                                   "listen_port": port, "connect": p.get("connect")}, r)  # fmt: skip
        elif f.rule in ("host.known_worm_user",):
            c.add(f"user:{p['name'].lower()}", {"kind": "user", "name": p["name"]}, r)
        elif f.rule == "host.hidden_pid":
            plan.review.append({"target": {"kind": "process", "pid": p.get("pid")}, "why": "hidden_pid",
                                "reason": r.to_json()})  # fmt: skip
    # 2. indicator hits of the families on the host
    for m in matches:
        for hit in m.hits:
            ind = hit.indicator
            r = _reason_h(m.family.id, hit)
            rows = [x for x in (_row(case, e) for e in hit.evidence) if x]
            kinds = [e.kind for e in hit.evidence]
            if ind.type == "service_name":
                for row, k in zip(rows, kinds, strict=False):
                    service(row.get("name") if k == "services" else row.get("entry") if k == "autoruns" else None, r)
            elif ind.type in ("service_dll", "service_image"):
                for row, k in zip(rows, kinds, strict=False):
                    if k == "services":
                        service(row.get("name"), r)
                if ind.type == "service_dll":
                    file(hit.observed, r, exact=True)
            elif ind.type == "task_name":
                for row, k in zip(rows, kinds, strict=False):
                    if k == "tasks":
                        task(row.get("name"), r)
            elif ind.type in ("wmi_name", "wmi_class", "wmi_query", "wmi_command"):
                for row, k in zip(rows, kinds, strict=False):
                    if k == "wmi":
                        wmi(row, r)
                        if row.get("command"):
                            for pr in case.query(
                                "SELECT * FROM processes WHERE host = ? AND command_line = ?", [host, row["command"]]
                            ):
                                script(pr, r)
            elif ind.type in ("process_path", "process_name"):
                for row, k in zip(rows, kinds, strict=False):
                    if k == "processes" and row.get("pid") is not None:
                        if (row.get("name") or "").lower() in INTERPRETERS:
                            script(row, r)
                        else:
                            process(row["pid"], row.get("name"), row.get("image_path"), r)
                if ind.type == "process_path":
                    file(hit.observed, r, exact=True)
            elif ind.type in ("file_path", "file_name", "md5", "sha1", "sha256"):
                exact = ind.type in EXACT_PATH_TYPES or ind.type in ("md5", "sha1", "sha256")
                if ind.type == "file_name" and ind.weight < 0.6:
                    continue  # a generic name (x64.dll) alone names no file; the directory may
                for row, k in zip(rows, kinds, strict=False):
                    path = row.get("path") if k == "files" else row.get("image_path")
                    if path and (exact or not in_system32(path)):
                        file(path, r, exact=exact)
                    elif path:
                        plan.review.append({"target": {"kind": "file", "path": path}, "why": "system32_not_named",
                                            "reason": r.to_json()})  # fmt: skip
            elif ind.type == "directory":
                folders.append((ind.value, r))
            elif ind.type == "registry":
                for row, k in zip(rows, kinds, strict=False):
                    if k == "autoruns" and "\\services" in (row.get("location") or "").lower():
                        service(row.get("entry"), r)
                    elif k == "autoruns" and row.get("entry"):
                        c.add(f"registry:{row['location']}\\{row['entry']}".lower(),
                              {"kind": "registry", "key": row["location"], "value": row["entry"]}, r)  # fmt: skip
            elif ind.type == "user":
                c.add(f"user:{hit.observed.lower()}", {"kind": "user", "name": hit.observed}, r)
            elif ind.type == "portproxy_port":
                for row, k in zip(rows, kinds, strict=False):
                    if k == "host_config":
                        addr, _, port = (row.get("name") or "").rpartition(":")
                        pp = {"kind": "portproxy", "listen_address": addr or "0.0.0.0", "listen_port": port,
                              "connect": row.get("value")}  # fmt: skip
                        c.add(f"portproxy:{addr}:{port}", pp, r)
    # Directories: the folder and the files the evidence saw in it.
    for folder, r in folders:
        why = path_refusal(folder, directory=True)
        if why:
            plan.refused.append({"target": {"kind": "directory", "path": folder}, "why": why})
            continue
        norm = normalize_path(folder).rstrip("\\")
        if in_system32(norm + "\\") and norm.count("\\") <= 3:
            plan.review.append({"target": {"kind": "directory", "path": folder}, "why": "system32_folder"})
            continue
        seen = case.query("SELECT DISTINCT path FROM files WHERE host = ? AND path IS NOT NULL", [host])
        seen += case.query(
            "SELECT DISTINCT image_path AS path FROM processes WHERE host = ? AND image_path IS NOT NULL", [host]
        )
        inside = sorted({x["path"] for x in seen if normalize_path(x["path"]).startswith(norm + "\\")})
        for path in inside:
            file(path, r, exact=False)
        if not plan.conservative:
            c.add(f"directory:{norm}", {"kind": "directory", "path": folder}, r)
        for x in case.query("SELECT * FROM processes WHERE host = ? AND image_path IS NOT NULL", [host]):
            if normalize_path(x["image_path"]).startswith(norm + "\\") and x.get("pid") is not None:
                process(x["pid"], x["name"], x["image_path"], r)

    # Files: protections, and the images of processes killed by PID are also killed by path.
    files_ok: list[tuple[dict[str, Any], list[Reason]]] = []
    hashes = {
        normalize_path(r["path"]): r["sha256"].lower()
        for r in case.query("SELECT path, sha256 FROM files WHERE host = ? AND sha256 IS NOT NULL", [host])
        if re.fullmatch(r"[0-9a-fA-F]{64}", r["sha256"] or "")
    }
    for target, reasons in c.of("file"):
        if normalize_path(target["path"]) in hashes:
            target["sha256"] = hashes[normalize_path(target["path"])]
        why = quarantine_refusal(target["path"], normalize_path(target["path"]) in named_paths)
        if why:
            plan.refused.append({"target": target, "why": why})
        else:
            files_ok.append((target, reasons))
    plan.review = [r for r in plan.review if normalize_path(r["target"].get("path")) not in named_paths]
    if view.status != "infected":  # a suspicious host: what its findings name is for a human to review
        plan.review += [{"target": v["target"], "why": "host_not_infected", "reason": v["reasons"][0].to_json()}
                        for v in c.items.values()]  # fmt: skip
        return plan
    plan.steps = _steps(plan, c, files_ok)
    return plan


def _steps(plan: Plan, c: _Collector, files: list[tuple[dict[str, Any], list[Reason]]]) -> list[Step]:
    steps: list[Step] = []
    n = 0

    def add(action: str, target: dict[str, Any], reasons: list[Reason], expected: str, rollback: str,
            note: str = "") -> None:  # fmt: skip
        nonlocal n
        n += 1
        steps.append(Step(f"s{n:02d}", action, target, list(reasons), expected, rollback, note))

    services = c.of("service")
    tasks = c.of("task")
    wmis = c.of("wmi")
    procs = c.of("process")
    scripts = c.of("script")
    ports = c.of("portproxy")
    users = c.of("user")
    regs = c.of("registry")
    dirs = c.of("directory")
    all_reasons = [r for v in c.items.values() for r in v["reasons"]]
    if not c.items:
        return []
    first = all_reasons[:3]
    add("contain", {"kind": "firewall", "name": "wormhunt-block-smb", "ports": [445, 139],
                    "inbound": not plan.conservative},
        first, "host firewall blocks TCP 445/139 (outbound; inbound too unless conservative)",
        "delete the wormhunt-block-smb firewall rules")  # fmt: skip
    covers: list[str] = []
    for t, _ in services:
        covers.append(f"service:{t['name'].lower()}")
    for t, _ in tasks:
        covers.append(f"task:{t['name'].lower()}")
    for t, _ in wmis:
        covers.append(f"wmi:{t['namespace'].lower()}:{t['role']}:{(t.get('name') or '').lower()}")
    covers.append("smb1:")
    covers += [f"portproxy:{t['listen_address']}:{t['listen_port']}" for t, _ in ports]
    covers += [f"user:{t['name'].lower()}" for t, _ in users]
    covers += [f"registry:{t['key'].lower()}\\{(t.get('value') or '').lower()}" for t, _ in regs]
    add("backup", {"kind": "backup", "covers": covers,
                   "services": [t["name"] for t, _ in services], "tasks": [t["name"] for t, _ in tasks],
                   "wmi": [{k: t.get(k) for k in ("namespace", "role", "class", "name")} for t, _ in wmis],
                   "registry": [{"key": t["key"], "value": t["value"]} for t, _ in regs],
                   "portproxy": True, "users": [t["name"] for t, _ in users],
                   "files": [t["path"] for t, _ in files]},
        all_reasons[:5], "registry keys, task XML, WMI objects, portproxy table, users and file hashes saved",
        "nothing to undo")  # fmt: skip
    for t, rs in tasks:
        add("disable_task", t, rs, "the task is disabled", "schtasks /Change /ENABLE")
    for t, rs in services:
        add("disable_service", t, rs, "start type is DISABLED", "reg import the exported service key")
        add("stop_service", t, rs, "the service is STOPPED", "set the start type back and start it")
        if "svchost" in normalize_path(t.get("binary_path")):
            add("kill_tree", {"kind": "service_host", "name": t["name"]}, rs,
                "the svchost process that hosts only this service (and its children) is gone; a shared host is left "
                "running and the DLL unloads at reboot", "start the service again",
                "resolved at run time by QueryServiceStatusEx (sc queryex); never every svchost.exe")  # fmt: skip
    for t, rs in scripts:
        add("kill_scripts", t, rs, "no interpreter with this command line runs", "not reversible (process)")
    for t, rs in procs:
        add("kill_tree", t, rs, "the process and its children are gone", "not reversible (process)",
            "the PID is killed only if its image path is still the one the evidence showed")  # fmt: skip
    images = sorted({normalize_path(t["image"]): t["image"] for t, _ in procs}.items())
    for _norm, image in images:
        rs = next(r for t, r in procs if normalize_path(t["image"]) == _norm)
        if kill_refusal(None, image, by_pid=False) is None:
            add("kill_process", {"kind": "image", "path": image}, rs, "no process runs from this path",
                "not reversible (process)")  # fmt: skip
    for t, rs in sorted(wmis, key=lambda x: WMI_ORDER.index(x[0]["role"])):
        add("remove_wmi", t, rs, "the WMI object is gone", "re-create it from the exported object (backup)")
    for t, rs in services:
        add("delete_service", t, rs, "sc query reports the service does not exist",
            "reg import the exported service key, then reboot")  # fmt: skip
    for t, rs in tasks:
        add("delete_task", t, rs, "schtasks /Query does not find the task", "schtasks /Create /XML the exported task")
    for t, rs in regs:
        add("remove_registry", t, rs, "the value is gone", "reg import the exported key")
    for t, rs in files:
        add("quarantine", t, rs, "the file is in the quarantine with its sha256 and gone from its folder",
            "copy it back from the quarantine (rollback script)")  # fmt: skip
    for t, rs in dirs:
        add("quarantine", t, rs, "every file under the folder is in the quarantine and the empty folder is removed",
            "re-create the folder and copy the files back (rollback script)")  # fmt: skip
    for t, rs in ports:
        add("remove_portproxy", t, rs, "netsh interface portproxy show all no longer lists it",
            "netsh interface portproxy add v4tov4 with the saved values")  # fmt: skip
    for t, rs in users:
        add("remove_user", t, rs, "the account is disabled (delete it after verification)", "net user NAME /active:yes")
    fam_reasons = [r for r in all_reasons if r.id.startswith(tuple(plan.families)) or r.id == "intel.family"][:3]
    add("disable_smb1", {"kind": "smb1"}, fam_reasons or first,
        "SMBv1 server disabled (only with -DisableSMBv1 / DISABLE_SMB1=1)", "reg import the exported LanmanServer key",
        "opt-in: some business software still needs SMBv1")  # fmt: skip
    add("patch", {"kind": "patch", "name": "MS17-010"}, fam_reasons or first,
        "MS17-010 installed (check srv.sys); patching is a step of remediation, not a cure", "")
    verify_targets = {
        "services": [t["name"] for t, _ in services],
        "tasks": [t["name"] for t, _ in tasks],
        "files": [t["path"] for t, _ in files],
        "directories": [t["path"] for t, _ in dirs],
        "images": [p for _, p in images],
        "wmi": [{k: t.get(k) for k in ("namespace", "role", "class", "name")} for t, _ in wmis],
    }
    add("verify", {"kind": "verify", **verify_targets}, all_reasons[:3],
        "after a wait, after a reboot and after 24 h nothing regrows: collect and triage again",
        "")  # fmt: skip
    from wormhunt.intel.families import builtin_families

    books = {f.id: tuple(s.action for s in f.playbook) for f in builtin_families()}
    sequence = action_order([books[f] for f in plan.families if f in books])
    ordered = order_steps(steps, sequence)
    problems = check_order(ordered)
    if problems:  # the playbooks' order is unsafe for these steps: the canonical order is safe by construction
        plan.warnings.append({"key": "respond.warn_order_adjusted", "params": {"problems": "; ".join(problems)}})
        ordered = order_steps(steps, list(ACTIONS))
    assert_order(ordered)
    return ordered


def build_plans(case: Any, inv: Any, hosts: list[str] | None = None, lang: str = "en") -> dict[str, Plan]:
    wanted = {h.upper() for h in hosts} if hosts else None
    out = {}
    for name in sorted(inv.hosts):
        if wanted is None or name.upper() in wanted:
            out[name] = build_plan(case, inv, name, lang)
    return out
