"""The rich console summary: patient zero, spreaders, affected hosts with their evidence lines.

Every string that came from evidence is attacker-controlled: control characters are made
visible and rich markup is escaped before anything reaches the terminal.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from wormhunt.i18n import t

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}
STATUS_STYLE = {"infected": "bold red", "suspicious": "yellow", "clean": "green"}


def safe(value: Any, limit: int = 240) -> str:
    """Evidence text fit for a terminal: control and bidi characters shown as escapes, markup escaped."""
    text = "" if value is None else str(value)
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return escape(text)


def _time(value: str | None) -> str:
    return value.replace("T", " ") + " UTC" if value else "-"


def _family(h: dict[str, Any], lang: str) -> str:
    """The host's family verdict for a status cell: name and confidence, or the unknown worm."""
    fid = h.get("family")
    if not fid:
        return ""
    match = next((m for m in h.get("families") or [] if m["family"] == fid), None)
    if match is None:
        return f"\n{t('family.unknown', lang)}"
    return f"\n[bold]{safe(match['name'], 60)}[/] [dim]{match['confidence']:.2f}[/]"


def render(
    doc: dict[str, Any],
    console: Console,
    lang: str,
    max_hosts: int = 40,
    max_findings: int = 4,
    lines_per_finding: int = 1,
) -> None:
    s = doc["summary"]
    console.print(
        Panel.fit(
            t(
                "summary.hosts_total",
                lang,
                total=s["hosts"],
                infected=s["infected"],
                suspicious=s["suspicious"],
                clean=s["clean"],
            )
            + "\n"
            + t(
                "summary.evidence",
                lang,
                files=doc["evidence"]["files"],
                records=doc["evidence"]["records"],
                skipped=doc["evidence"]["skipped"],
            ),
            title=t("summary.title", lang),
        )
    )

    pz = doc["patient_zero"]
    if pz:
        body = Text.from_markup(
            f"[bold red]{safe(pz['host'])}[/] ({safe(pz['ip'])})  {t('summary.first_seen', lang)}: "
            f"{_time(pz['first_seen'])}  {t('summary.reason', lang)}: {safe(pz['basis'])}"
        )
        for ev in pz["evidence"][:1]:
            body.append("\n")
            text = ev.get("digest") or ev["text"]
            body.append_text(Text.from_markup(f"[dim]{safe(ev['file'], 80)}:{ev['line']}[/] {safe(text, 200)}"))
        console.print(Panel(body, title=t("summary.patient_zero", lang), border_style="red"))
    else:
        console.print(t("summary.patient_zero_none", lang))

    if doc["spreaders"]:
        table = Table(title=t("summary.spreaders", lang), show_lines=False)
        for col in (
            "summary.host",
            "summary.ip",
            "summary.first_seen",
            "summary.targets",
            "summary.max_window",
            "summary.failed",
            "summary.alerts",
        ):
            table.add_column(t(col, lang))
        for sp in doc["spreaders"][:25]:
            failed = "-" if sp.get("failed_ratio") is None else f"{round(100 * sp['failed_ratio'])}%"
            table.add_row(
                safe(sp.get("host")),
                safe(sp["src"]),
                _time(sp["first_seen"]),
                str(sp["distinct_targets"]),
                str(sp["max_targets_per_window"]),
                failed,
                str(sp["exploit_alerts"]),
            )
        console.print(table)

    affected = [h for h in doc["hosts"] if h["status"] != "clean"]
    if affected:
        table = Table(title=t("summary.affected", lang), show_lines=True, expand=True)
        table.add_column(t("summary.host", lang), no_wrap=True)
        table.add_column(t("summary.status", lang), no_wrap=True)
        table.add_column(t("summary.findings", lang), ratio=1)
        for h in affected[:max_hosts]:
            head = f"{safe(h['host'])}\n{safe(h['ip'])}"
            if h.get("role"):
                head += f"\n[dim]{safe(h['role'])}[/]"
            if h.get("av_forbidden"):
                head += f"\n[magenta]{t('summary.av_forbidden', lang)}[/]"
            cell = []
            shown = [f for f in h["findings"] if f["severity"] not in ("info", "low")]
            for f in shown[:max_findings]:
                sev = f["severity"]
                cell.append(
                    f"[{SEVERITY_STYLE[sev]}]{t('severity.' + sev, lang)}[/] {safe(f['title'], 300)} "
                    f"[dim]{f['attack']}[/]"
                )
                for ev in f["evidence"][:lines_per_finding]:
                    where = f"{safe((ev['file'] or '').rsplit('/', 1)[-1], 40)}:{ev['line']}"
                    text = ev.get("digest") or (ev["text"] or "").strip()
                    cell.append(f"   [dim]{where}[/] {safe(' '.join(text.split()), 110)}")
            if len(shown) > max_findings:
                cell.append(f"[dim]+{len(shown) - max_findings}[/]")
            status = h["status"]
            table.add_row(
                head,
                f"[{STATUS_STYLE[status]}]{t('status.' + status, lang)}[/]{_family(h, lang)}\n{_time(h['first_seen'])}",
                "\n".join(cell),
            )
        console.print(table)
        if len(affected) > max_hosts:
            console.print(f"... {len(affected) - max_hosts} more")
    problems = doc["evidence"]["problems"]
    for p in problems[:20]:
        if p["status"] in ("ingested", "duplicate"):
            continue
        console.print(f"[yellow]{safe(p['status'])}[/]: {safe(p['path'], 120)}: {safe(p['message'])}")
    if doc["summary"]["infected"]:
        console.print(f"[dim]{t('summary.patch_note', lang)}[/]")


def render_detection(doc: dict[str, Any], console: Console, lang: str, max_rows: int = 25) -> None:
    """The `detect` summary: ranked spreaders with their reasons, then alert chains and hops."""
    eng = doc["engine"]
    console.print(t("detect.engine", lang, engine=eng["name"], seconds=eng["seconds"]))
    if not doc["spreaders"]:
        console.print(t("detect.none", lang))
    else:
        table = Table(title=t("summary.spreaders", lang), show_lines=True)
        for col in ("detect.rank", "summary.host", "summary.ip", "summary.first_seen", "summary.targets", "detect.why"):
            table.add_column(t(col, lang), overflow="fold")
        for sp in doc["spreaders"][:max_rows]:
            table.add_row(
                str(sp["rank"]),
                safe(sp.get("host")),
                safe(sp["src"]),
                _time(sp["first_seen"]),
                str(sp["distinct_targets"]),
                "\n".join(safe(r) for r in sp["reasons"][:6]),
            )
        console.print(table)
    if doc["fanout_not_ranked"]:
        table = Table(title=t("detect.not_ranked", lang))
        for col in ("summary.host", "summary.ip", "summary.targets", "detect.why"):
            table.add_column(t(col, lang), overflow="fold")
        for sp in doc["fanout_not_ranked"][:max_rows]:
            table.add_row(
                safe(sp.get("host")),
                safe(sp["src"]),
                str(sp["distinct_targets"]),
                "\n".join(safe(r) for r in sp["reasons"][:3]),
            )
        console.print(table)
    if doc["hops"]:
        console.print(t("detect.hops", lang))
        for h in doc["hops"][:max_rows]:
            console.print(
                f"  {safe(h['infector'])} → {safe(h['host_name'])} ({safe(h['host'])})  "
                f"{_time(h['infected_at'])} → {_time(h['spreading_at'])}"
            )
    kinds: dict[str, int] = {}
    for a in doc["alerts"]:
        kinds[a["kind"]] = kinds.get(a["kind"], 0) + a["count"]
    if kinds:
        console.print(t("detect.alerts", lang, counts=", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))))


def render_triage(doc: dict[str, Any], console: Console, lang: str, max_findings: int = 8) -> None:
    """One row per host: status, then each finding with its first evidence line."""
    table = Table(title=t("triage.title", lang), show_lines=True, expand=True)
    table.add_column(t("summary.host", lang), no_wrap=True)
    table.add_column(t("summary.status", lang), no_wrap=True)
    table.add_column(t("summary.findings", lang), ratio=1)
    for h in doc["hosts"]:
        lines = []
        for f in h["findings"][:max_findings]:
            style = SEVERITY_STYLE.get(f["severity"], "")
            lines.append(f"[{style}]{safe(f['severity'])}[/] {safe(f['title'])}")
            for ev in f["evidence"][:1]:
                lines.append(f"  [dim]{safe(Path(ev['file'] or '').name, 60)}:{ev['line']}[/] {safe(ev['text'], 160)}")
        status = h["status"]
        table.add_row(
            f"{safe(h['host'])}\n{safe(h['ip'])}",
            f"[{STATUS_STYLE.get(status, '')}]{t('status.' + status, lang)}[/]{_family(h, lang)}",
            "\n".join(lines) or "-",
        )
    console.print(table)
