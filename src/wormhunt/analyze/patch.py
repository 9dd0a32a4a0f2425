"""MS17-010 audit: per host `patched`, `vulnerable` or `unknown`, with the reason and the rows.

The evidence is weighed strongest first (threat-intel.md 3.2, knowledge/ms17010.yaml):

1. the srv.sys file version against the minimum for the OS (Vista/2008: GDR or LDR branch);
2. the OS build: Windows 10 1703 (15063) and later shipped fixed; Windows 7 RTM (7600) cannot
   take the fix; the Windows 10 update build revision (UBR, from `ver`) against the first fixed one;
3. installed updates: an MS17-010 KB or a later rollup/CU the table lists for that OS;
4. otherwise the list decides only when it is complete: a systeminfo list cut short (declared
   count larger than the entries) is `unknown`, unless wmic qfe / Get-HotFix list the updates.
   With a complete list, updates from March 2017 or later that the table does not know may be a
   later rollup: `unknown`. The April 2017 security-only update alone does not fix it
   (`vulnerable`), and a list with nothing from March 2017 or later is `vulnerable`.

The SMBv1 server state, when collected, is reported beside the verdict (disabling SMBv1 closes
the hole while it stays off; it does not patch it). Patching is a remediation step, not a cure:
an infected host stays infected after the update (incident step 3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from wormhunt.knowledge import load

VERDICTS = ("patched", "vulnerable", "unknown")
_OS_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?")
_KB_NUMBER = re.compile(r"^KB(\d{6,7})$", re.IGNORECASE)
COMPLETE_SOURCES = ("wmic qfe", "Get-HotFix")


@dataclass
class Ref:
    """One evidence row behind a verdict."""

    table: str
    evidence_id: int | None
    line: int | None
    text: str
    file: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "evidence_id": self.evidence_id, "line": self.line, "file": self.file,
                "text": self.text}  # fmt: skip


@dataclass
class Hotfix:
    kb: str
    source: str
    ref: Ref


@dataclass
class FileVersion:
    name: str
    version: str
    source: str
    ref: Ref


@dataclass
class HostFacts:
    """What the evidence says about one host, whatever the input format."""

    host: str
    os_name: str | None = None
    os_version: str | None = None  # "6.1.7601" or "10.0.14393.953"
    service_pack: str | None = None
    ubr: int | None = None
    os_ref: Ref | None = None
    ubr_ref: Ref | None = None
    hotfixes: list[Hotfix] = field(default_factory=list)
    declared: int | None = None  # systeminfo `N Hotfix(s) Installed.`
    listed: int | None = None
    files: list[FileVersion] = field(default_factory=list)
    srv_absent: Ref | None = None
    smb1: str | None = None  # enabled / disabled
    smb1_ref: Ref | None = None


@dataclass
class Audit:
    host: str
    verdict: str
    reason: str  # message key suffix: audit.reason.<reason>
    params: dict[str, Any]
    os: str | None
    build: str | None
    family: str | None
    smb1: str | None
    notes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    evidence: list[Ref] = field(default_factory=list)

    def to_json(self, render: Any = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "host": self.host,
            "verdict": self.verdict,
            "reason": render(f"audit.reason.{self.reason}", **self.params) if render else self.reason,
            "reason_code": self.reason,
            "reason_params": self.params,
            "os": self.os,
            "build": self.build,
            "family": self.family,
            "smb1": self.smb1,
            "notes": [render(f"audit.note.{k}", **p) if render else k for k, p in self.notes],
            "evidence": [r.to_json() for r in self.evidence],
        }
        return doc


def _vtuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def _kb_number(kb: str) -> int | None:
    m = _KB_NUMBER.match(kb.strip())
    return int(m.group(1)) if m else None


def _is_server(os_name: str | None) -> bool | None:
    if not os_name:
        return None
    return "server" in os_name.lower()


def match_family(version: str | None, os_name: str | None = None) -> dict[str, Any] | None:
    """The ms17010.yaml family of an OS version `major.minor.build[.x]` (and, for 6.2, client or server)."""
    m = _OS_VERSION.search(version or "")
    if not m:
        return None
    major_minor, build = f"{m.group(1)}.{m.group(2)}", int(m.group(3))
    server = _is_server(os_name)
    found = []
    for fam in load("ms17010")["families"]:
        if fam["version"] != major_minor:
            continue
        if build not in fam.get("builds", []) and not ("min_build" in fam and build >= fam["min_build"]):
            continue
        if "server" in fam and server is not None and fam["server"] != server:
            continue
        found.append(fam)
    return found[0] if found else None


def _kb_entry(fam: dict[str, Any], kb: str, key: str) -> dict[str, Any] | None:
    return next((e for e in fam.get(key) or [] if e["kb"].upper() == kb.upper()), None)


def _srv_files(facts: HostFacts) -> list[FileVersion]:
    return [f for f in facts.files if f.name.replace("/", "\\").lower().rsplit("\\", 1)[-1] == "srv.sys"]


def _srv_decision(fam: dict[str, Any] | None, f: FileVersion) -> tuple[str, str, dict[str, Any]] | None:
    """(verdict, reason, params) from a srv.sys version, or None when it does not settle it."""
    v = _vtuple(f.version)
    params: dict[str, Any] = {"version": f.version}
    if v[0] == 10 and v[2] >= 15063:
        return "patched", "srvsys_release_fixed", params
    if v[:3] == (6, 1, 7600):
        return "vulnerable", "srvsys_rtm", params
    fam = fam or match_family(f.version)
    if fam is None or not fam.get("srv_sys"):
        return None
    same = [
        t
        for t in fam["srv_sys"]
        if _vtuple(t["min"])[:3] == v[:3] and str(v[3]).startswith(t.get("private_prefix", ""))
    ]
    if not same:
        if all(v[:3] < _vtuple(t["min"])[:3] for t in fam["srv_sys"]):
            return "vulnerable", "srvsys_below", {**params, "min": fam["srv_sys"][0]["min"]}
        return None
    minimum = same[0]["min"]
    params["min"] = minimum
    if v >= _vtuple(minimum):
        return "patched", "srvsys_ok", params
    if v[0] == 10 and f.source == "VersionInfo FileVersion":
        return None  # Windows 10 keeps the release version in this string after updates
    return "vulnerable", "srvsys_below", params


def decide(facts: HostFacts) -> Audit:
    """The verdict for one host from its facts."""
    version = facts.os_version
    srv = _srv_files(facts)
    if version is None and srv:
        version = srv[-1].version
    fam = match_family(version, facts.os_name)
    build = version
    if version and facts.ubr is not None and version.count(".") == 2:
        build = f"{version}.{facts.ubr}"
    audit = Audit(facts.host, "unknown", "os_unknown", {}, facts.os_name, build, fam["id"] if fam else None, facts.smb1)
    if facts.os_ref:
        audit.evidence.append(facts.os_ref)
    if facts.smb1_ref:
        audit.evidence.append(facts.smb1_ref)
    fixing = [h for h in facts.hotfixes if fam and _kb_entry(fam, h.kb, "fixing_kbs")]

    def done(verdict: str, reason: str, params: dict[str, Any], refs: list[Ref] | None = None) -> Audit:
        audit.verdict, audit.reason, audit.params = verdict, reason, params
        audit.evidence.extend(refs or [])
        if verdict == "vulnerable" and facts.smb1 == "disabled":
            audit.notes.append(("smb1_disabled", {}))
        if verdict == "vulnerable" and facts.srv_absent and not srv:
            audit.notes.append(("srvsys_absent", {}))
            audit.evidence.append(facts.srv_absent)
        return audit

    # 1. srv.sys file version (the last one collected).
    if srv:
        decision = _srv_decision(fam, srv[-1])
        if decision:
            verdict, reason, params = decision
            if verdict == "vulnerable" and fixing:
                audit.notes.append(("kb_but_old_file", {"kb": fixing[0].kb}))
            return done(verdict, reason, params, [srv[-1].ref])
        audit.notes.append(("srvsys_not_decisive", {"version": srv[-1].version}))
    if fam is None:
        return done("unknown", "os_unknown", {"os": version or "-"})
    # 2. The OS build and UBR.
    if fam.get("fixed_at_release"):
        return done("patched", "release_fixed", {"build": version})
    os_build = int(_OS_VERSION.search(version).group(3)) if version else None  # type: ignore[union-attr]
    for entry in fam.get("cannot_take_fix") or []:
        if entry["build"] == os_build:
            return done("vulnerable", "cannot_take_fix", {"build": version})
    if fam.get("ubr_min") and facts.ubr is not None:
        params = {"ubr": facts.ubr, "min": fam["ubr_min"]["ubr"], "build": build}
        refs = [facts.ubr_ref] if facts.ubr_ref else []
        if facts.ubr >= fam["ubr_min"]["ubr"]:
            return done("patched", "ubr_ok", params, refs)
        return done("vulnerable", "ubr_below", params, refs)
    # 3. Updates that contain the fix.
    if fixing:
        entry = _kb_entry(fam, fixing[0].kb, "fixing_kbs") or {}
        params = {"kb": fixing[0].kb, "kind": entry.get("kind", ""), "date": entry.get("date", "-")}
        return done("patched", "kb_fix", params, [h.ref for h in fixing[:3]])
    # 4. Absence decides only on a complete list.
    if not facts.hotfixes and facts.declared is None:
        return done("unknown", "no_hotfix_list", {})
    complete = any(h.source in COMPLETE_SOURCES for h in facts.hotfixes) or (
        facts.declared is not None and facts.listed is not None and facts.declared <= facts.listed
    )
    if not complete:
        return done("unknown", "truncated", {"declared": facts.declared, "listed": facts.listed})
    floor = _kb_number(fam.get("kb_floor", "KB0"))
    traps = [h for h in facts.hotfixes if _kb_entry(fam, h.kb, "not_fixing_kbs")]
    later = sorted(
        {
            h.kb
            for h in facts.hotfixes
            if (n := _kb_number(h.kb)) is not None
            and floor is not None
            and n >= floor
            and not _kb_entry(fam, h.kb, "not_fixing_kbs")
        }
    )
    if later and not fam.get("later_rollups_listed", False):
        refs = [h.ref for h in facts.hotfixes if h.kb in later[:5]]
        return done("unknown", "later_kbs", {"kbs": ", ".join(later[:5]), "count": len(later)}, refs[:5])
    if traps:
        return done("vulnerable", "april_trap", {"kb": traps[0].kb}, [traps[0].ref])
    if later:
        return done("vulnerable", "no_fix_kb", {"count": len(facts.hotfixes)})
    return done("vulnerable", "nothing_since", {"floor": fam.get("kb_floor", "-"), "count": len(facts.hotfixes)})


# ---------------------------------------------------------------- from a case


def facts_from_case(case: Any) -> dict[str, HostFacts]:
    """Gather per-host facts from the case tables (host_info, hotfixes, host_config)."""
    files = {r["evidence_id"]: r["path"] for r in case.query("SELECT evidence_id, path FROM evidence")}
    hosts: dict[str, HostFacts] = {}

    def facts(host: str | None) -> HostFacts:
        name = host or "unknown-host"
        return hosts.setdefault(name, HostFacts(name))

    def ref(table: str, r: dict[str, Any], text: str) -> Ref:
        return Ref(table, r.get("evidence_id"), r.get("line"), text, files.get(r.get("evidence_id")))

    for r in case.query("SELECT * FROM host_info ORDER BY evidence_id, line"):
        f = facts(r["host"])  # the latest report wins
        f.os_name, f.service_pack = r["os_name"], r["service_pack"]
        m = _OS_VERSION.search(r["os_version"] or "")
        f.os_version = ".".join(m.groups()[:3]) if m else None
        f.declared, f.listed = r["hotfixes_declared"], r["hotfixes_listed"]
        text = f"systeminfo: {r['os_name'] or '?'} | {r['os_version'] or '?'} | hotfixes {f.declared}/{f.listed}"
        f.os_ref = ref("host_info", r, text)
    seen: set[tuple[str, str, str]] = set()
    for r in case.query("SELECT * FROM hotfixes ORDER BY evidence_id, line"):
        key = (r["host"] or "", (r["hotfix"] or "").upper(), r["source"] or "")
        if key in seen:
            continue
        seen.add(key)
        f = facts(r["host"])
        kb = (r["hotfix"] or "").upper()
        f.hotfixes.append(Hotfix(kb, r["source"] or "", ref("hotfixes", r, f"{kb} ({r['source']})")))
    kinds = ("file_version", "file_absent", "os_version", "smb1")
    for r in case.query("SELECT * FROM host_config WHERE kind IN (?, ?, ?, ?) ORDER BY evidence_id, line", list(kinds)):
        f = facts(r["host"])
        if r["kind"] == "file_version":
            text = f"{r['name']} {r['value']} ({r['source']})"
            f.files.append(
                FileVersion(r["name"] or "", r["value"] or "", r["source"] or "", ref("host_config", r, text))
            )
        elif r["kind"] == "file_absent" and (r["name"] or "").lower().endswith("srv.sys"):
            f.srv_absent = ref("host_config", r, f"{r['name']}: absent (Get-Item)")
        elif r["kind"] == "os_version":
            m = _OS_VERSION.search(r["value"] or "")
            if m and m.group(4) is not None:
                f.ubr = int(m.group(4))
                f.ubr_ref = ref("host_config", r, f"ver: {r['value']}")
                if f.os_version is None:
                    f.os_version = ".".join(m.groups()[:3])
        elif r["kind"] == "smb1":
            f.smb1 = r["value"]
            f.smb1_ref = ref("host_config", r, f"SMBv1 {r['value']} ({r['source']}: {r['name']})")
    return hosts


def audit_case(case: Any) -> list[Audit]:
    """One MS17-010 verdict per host of the case, by host name."""
    return [decide(f) for _, f in sorted(facts_from_case(case).items())]
