"""Triage leads that need more than one artifact: forged file times, local accounts a worm
adds, and processes that burn CPU like a miner.

(Persistence "created recently" needs registration times: schtasks prints none and autoruns
entry times are file times, so that lead comes with the event logs, 7045 and 4698.)

Times: file, task and autoruns times and the systeminfo install/boot times are host-local;
process creation times are UTC. Each rule compares times of one kind, converting with the
host's systeminfo offset where it must mix them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from wormhunt.intel.families import family_of_name, normalize_path
from wormhunt.knowledge import load
from wormhunt.model import EvidenceRef, Finding
from wormhunt.store import Case

_CPU = re.compile(r"^\s*(\d+):(\d{1,2}):(\d{1,2})\s*$")


def _ref(kind: str, r: dict[str, Any]) -> EvidenceRef:
    return EvidenceRef(kind, int(r["evidence_id"]), int(r["line"]))


def _lead(rule: str, severity: str, attack: str, params: dict[str, Any], kind: str, r: dict[str, Any]) -> Finding:
    """A finding about one record; its message key is the rule's name under `finding.`."""
    title = "finding." + rule.split(".", 1)[1]
    return Finding(rule, r["host"], severity, attack, title, params, evidence=[_ref(kind, r)])


def _hosts(case: Case) -> dict[str, dict[str, Any]]:
    """Per host: OS install and last boot (host-local) and the UTC offset, from systeminfo."""
    out: dict[str, dict[str, Any]] = {}
    for r in case.query(
        "SELECT host, install_date, boot_time, utc_offset_min FROM host_info WHERE host IS NOT NULL "
        "ORDER BY evidence_id, line"
    ):
        out.setdefault(r["host"], r)
    return out


def timestomp_hints(case: Case) -> list[Finding]:
    """A file whose creation time predates the OS install, or the scheduled task that runs it:
    the worm set it back (WannaMine 3.0 dates its DLL 2009-07-14). File times are forgeable, so
    these are hints for the timeline, not proof."""
    hosts = _hosts(case)
    out: list[Finding] = []
    seen: set[tuple[str, str]] = set()

    def hint(r: dict[str, Any], kind: str, path: str, created: datetime, why: str, ref_time: datetime) -> None:
        if (r["host"], path.lower()) in seen:
            return
        seen.add((r["host"], path.lower()))
        out.append(
            Finding(
                "host.timestomp_hint",
                r["host"],
                "medium",
                "T1070.006",
                f"finding.timestomp_{why}",
                {"path": path, "created": created.isoformat(sep=" "), "reference": ref_time.isoformat(sep=" ")},
                evidence=[_ref(kind, r)],
            )
        )

    tasks: dict[str, list[dict[str, Any]]] = {}
    for t in case.query("SELECT host, name, command, created FROM tasks WHERE created IS NOT NULL"):
        tasks.setdefault(t["host"], []).append(t)
    for r in case.query(
        "SELECT host, path, created, evidence_id, line FROM files "
        "WHERE created IS NOT NULL AND NOT coalesce(is_dir, false) ORDER BY host, evidence_id, line"
    ):
        installed = (hosts.get(r["host"]) or {}).get("install_date")
        # A day of slack: setup copies files through the install day itself.
        if installed and r["created"] < installed - timedelta(days=1):
            hint(r, "files", r["path"], r["created"], "before_install", installed)
            continue
        path = normalize_path(r["path"])
        for t in tasks.get(r["host"], []):
            if path and path in normalize_path(t["command"]) and r["created"] < t["created"] - timedelta(days=1):
                hint(r, "files", r["path"], r["created"], "before_task", t["created"])
                break
    for r in case.query(
        "SELECT host, entry, image_path, time, signer, evidence_id, line FROM autoruns "
        "WHERE time IS NOT NULL AND image_path IS NOT NULL AND entry IS NOT NULL ORDER BY host, evidence_id, line"
    ):
        # Entry rows carry the image file's time; Microsoft's own files legitimately predate the install.
        if (r["signer"] or "").lower().startswith("(verified)"):
            continue
        installed = (hosts.get(r["host"]) or {}).get("install_date")
        if installed and r["time"] < installed - timedelta(days=1):
            hint(r, "autoruns", r["image_path"], r["time"], "before_install", installed)
    return out


def unexpected_users(case: Case) -> list[Finding]:
    """Local accounts a worm adds: names the knowledge lists, and names ending in `$`, which
    `net user` hides from casual listings and which ordinary local accounts never have."""
    out = []
    for r in case.query(
        "SELECT host, name, evidence_id, line FROM host_config WHERE kind = 'user' ORDER BY host, evidence_id, line"
    ):
        name = r["name"] or ""
        known = family_of_name("user", name)
        if known:
            params = {"name": name, "family": known.names["en"]}
            out.append(_lead("host.known_worm_user", "critical", "T1136.001", params, "host_config", r))
        elif name.endswith("$"):
            out.append(_lead("host.hidden_user", "high", "T1136.001", {"name": name}, "host_config", r))
    return out


def _cpu_seconds(text: str | None) -> int | None:
    m = _CPU.match(text or "")
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3)) if m else None


def busy_processes(case: Case) -> list[Finding]:
    """Processes that averaged half a core or more since they started (tasklist /v CPU time
    over the time since their creation, or since boot when the listing has no creation time):
    the sign of a miner that no command line gives away. The collection time is the newest
    process start or task run seen on the host."""
    cfg = load("persistence")
    quiet = {n.lower() for n in cfg["busy_expected"]}
    hosts = _hosts(case)
    rows = case.query("SELECT host, pid, name, cpu_time, created, evidence_id, line FROM processes")
    started: dict[tuple[str, int], datetime] = {}
    newest: dict[str, datetime] = {}
    for r in rows:
        if r["created"] is not None and r["pid"] is not None:
            started[(r["host"], r["pid"])] = r["created"]
            newest[r["host"]] = max(newest.get(r["host"], r["created"]), r["created"])
    for r in case.query("SELECT host, max(last_run) AS t FROM tasks WHERE last_run IS NOT NULL GROUP BY host"):
        info = hosts.get(r["host"]) or {}
        offset = timedelta(minutes=info.get("utc_offset_min") or 0)
        newest[r["host"]] = max(newest.get(r["host"], r["t"] - offset), r["t"] - offset)
    out = []
    for r in sorted(rows, key=lambda x: (x["host"] or "", x["evidence_id"], x["line"])):
        cpu = _cpu_seconds(r["cpu_time"])
        name = (r["name"] or "").lower()
        if not cpu or r["pid"] in (0, 4) or name in quiet or r["host"] not in newest:
            continue
        start = started.get((r["host"], r["pid"]))
        if start is None:
            info = hosts.get(r["host"]) or {}
            if not info.get("boot_time"):
                continue
            start = info["boot_time"] - timedelta(minutes=info.get("utc_offset_min") or 0)
        wall = (newest[r["host"]] - start).total_seconds()
        if wall < cfg["busy_min_minutes"] * 60:
            continue  # too young to judge
        share = cpu / wall
        if share >= cfg["busy_min_share"]:
            params = {"pid": r["pid"], "name": r["name"], "cpu_time": r["cpu_time"], "share": round(share, 2)}
            out.append(_lead("host.busy_process", "low", "T1496", params, "processes", r))
    return out


def findings(case: Case) -> list[Finding]:
    return timestomp_hints(case) + unexpected_users(case) + busy_processes(case)
