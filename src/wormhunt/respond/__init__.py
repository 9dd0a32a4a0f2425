"""Remediation: per-host plans (`plan`), rendered as PowerShell 2.0 and batch scripts with
their rollbacks (`render_ps1`, `render_bat`), and a local executor (`execute`)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from wormhunt.respond import render_bat, render_ps1
from wormhunt.respond.plan import Plan, build_plans

__all__ = ["Plan", "build_plans", "host_folder", "plan_case", "write_plan"]


def host_folder(host: str) -> str:
    """A folder name for a host name read from evidence (no separators, no `..`). When
    sanitising changed the name (or it differs from its upper-case form, which a
    case-insensitive file system would merge), a short hash of the original is appended, so
    `A/B`, `A_B`, `a` and `A` never share a folder."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", host).strip(".")[:100] or "host"
    if name != host or host != host.upper():
        name += "-" + hashlib.sha256(host.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return name


def write_plan(plan: Plan, folder: Path) -> dict[str, Path]:
    """plan.ps1, plan.bat, rollback.ps1, rollback.bat and plan.json of one host."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {
        "plan.json": folder / "plan.json",
        "plan.ps1": folder / "plan.ps1",
        "plan.bat": folder / "plan.bat",
        "rollback.ps1": folder / "rollback.ps1",
        "rollback.bat": folder / "rollback.bat",
    }
    doc = plan.to_json()
    out["plan.json"].write_text(json.dumps(doc, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    # PowerShell 2.0 reads a BOM-less script as the ANSI code page: write UTF-8 with a BOM.
    out["plan.ps1"].write_text(render_ps1.render(plan), encoding="utf-8-sig")
    out["rollback.ps1"].write_text(render_ps1.render_rollback(plan), encoding="utf-8-sig")
    out["plan.bat"].write_bytes(render_bat.render(plan).encode("utf-8"))
    out["rollback.bat"].write_bytes(render_bat.render_rollback(plan).encode("utf-8"))
    return out


def plan_case(case_dir: Path, hosts: list[str] | None = None) -> dict[str, Plan]:
    """Analyse a case folder and build the plan of every host (or of `hosts`)."""
    from wormhunt.analyze import analyze
    from wormhunt.store import Case

    with Case(case_dir) as case:
        inv = analyze(case)
        return build_plans(case, inv, hosts)
