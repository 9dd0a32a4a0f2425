"""Console rendering of `wormhunt identify`. Evidence strings are escaped (report.console.safe)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from wormhunt.i18n import t
from wormhunt.identify.model import ENGINES, FileResult, IdentifyResult
from wormhunt.report.console import safe

_SEVERITY = {"alert": "bold red", "warn": "yellow", "info": "dim"}


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _details(f: FileResult, lang: str) -> list[str]:
    lines: list[str] = []
    for m in f.yara:
        family = m.meta.get("family") or m.meta.get("description") or ""
        lines.append(
            "[red]"
            + t("identify.yara_match", lang, rule=safe(m.rule, 80), source=m.source, family=safe(family, 80))
            + "[/]"
        )
    for fam in f.families:
        style = "red" if fam["verdict"] else "yellow"
        matched = ", ".join(f"{m['type']}={m['value']}" for m in fam["matched"][:4])
        lines.append(
            f"[{style}]"
            + t("identify.family", lang, family=safe(fam["name"], 60), confidence=fam["confidence"],
                matched=safe(matched, 160))
            + "[/]"
        )  # fmt: skip
    if f.clamav and f.clamav.status == "infected":
        lines.append("[red]" + t("identify.clamav_found", lang, signature=safe(f.clamav.signature, 80)) + "[/]")
    notes = list(f.pe.notes if f.pe else []) + f.notes
    for n in notes:
        params = {k: safe(v, 120) for k, v in n.params.items()}
        lines.append(f"[{_SEVERITY.get(n.severity, 'yellow')}]" + t(f"identify.note.{n.code}", lang, **params) + "[/]")
    if f.yara_error:
        lines.append("[yellow]" + t("identify.yara_error", lang, error=safe(f.yara_error, 120)) + "[/]")
    if f.pe and (f.pe.version_info.get("OriginalFilename") or f.pe.compile_time):
        v = f.pe.version_info
        lines.append(
            "[dim]"
            + t(
                "identify.pe_line",
                lang,
                machine=safe(f.pe.machine or "-"),
                compiled=safe(f.pe.compile_time or "-"),
                original=safe(v.get("OriginalFilename", "-"), 80),
                company=safe(v.get("CompanyName", "-"), 80),
                signature=safe(f.pe.signature_status or "-"),
            )
            + "[/]"
        )
    return lines


def render(result: IdentifyResult, console: Console, lang: str) -> None:
    for w in result.rule_warnings:
        console.print("[yellow]" + t("identify.rule_warning", lang, file=safe(w.file), message=safe(w.message)) + "[/]")
    s = result.summary
    table = Table(title=t("identify.title", lang), show_lines=True)
    table.add_column(t("identify.col.file", lang), overflow="fold")
    table.add_column(t("identify.col.size", lang), justify="right")
    table.add_column("sha256", overflow="fold")
    table.add_column(t("identify.col.detections", lang))
    table.add_column(t("identify.col.details", lang), overflow="fold")
    quiet = 0
    for f in result.files:
        notes = f.notes or (f.pe and f.pe.notes)
        if f.skipped:
            why = t(f"identify.skip.{f.skipped}", lang, detail=safe(f.skip_detail or "", 120))
            table.add_row(safe(f.path), _size(f.size), "-", "-", "[dim]" + why + "[/]")
            continue
        if not f.detections() and not notes and not f.yara_error:
            quiet += 1
            continue
        found = f.detections()
        label = f"[bold red]{len(found)}/{len(ENGINES)}[/] " + ", ".join(found) if found else "0"
        table.add_row(
            safe(f.path), _size(f.size), f.hashes.sha256 if f.hashes else "-", label, "\n".join(_details(f, lang))
        )
    if table.row_count:
        console.print(table)
    if quiet:
        console.print(t("identify.quiet", lang, count=quiet))
    # Language-neutral details: rule file counts, the ClamAV tool, the PE library.
    neutral = {
        "yara_project": f"{result.rule_files.get('project', 0)} .yar",
        "yara_user": f"{result.rule_files.get('user', 0)} .yar",
        "clamav": "clamdscan / clamscan",
        "pe_heuristics": "lief",
        "family_kb": "knowledge/families",
    }
    for name in ENGINES:
        e = s.engines[name]
        detail = e.detail if name == "clamav" and e.available else neutral[name]
        if e.available:
            console.print(
                t(
                    "identify.engine",
                    lang,
                    engine=t(f"identify.engine.{name}", lang),
                    detected=e.detected,
                    scanned=e.scanned,
                    detail=safe(detail),
                )
            )
        else:
            console.print(
                "[dim]"
                + t(
                    "identify.engine_unavailable",
                    lang,
                    engine=t(f"identify.engine.{name}", lang),
                    detail=safe(detail),
                )
                + "[/]"
            )
    console.print(
        t(
            "identify.summary",
            lang,
            files=s.files,
            scanned=s.scanned,
            skipped=s.skipped,
            detected=s.detected_files,
            mib=f"{s.bytes_scanned / (1 << 20):.1f}",
            seconds=f"{s.seconds:.1f}",
        )
    )
