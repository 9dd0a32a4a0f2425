"""Command line: thin wrappers that parse arguments, call one function per verb, and render.

Every verb takes `--lang en|zh-CN` and `--json`. With `--json` exactly one JSON document goes
to stdout and nothing else does; progress and messages go to stderr.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from wormhunt import __version__
from wormhunt.i18n import normalize, t

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="wormhunt: find, explain and clean SMB-worm and cryptominer outbreaks.",
)


@dataclass
class Opts:
    lang: str
    json: bool


LangOpt = Annotated[str | None, typer.Option("--lang", help="Output language: en or zh-CN.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def _opts(ctx: typer.Context, lang: str | None, as_json: bool) -> Opts:
    parent: Opts | None = ctx.obj
    try:
        chosen = normalize(lang or (parent.lang if parent else None))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--lang") from None
    return Opts(chosen, as_json or bool(parent and parent.json))


def _err() -> Console:
    return Console(stderr=True, highlight=False)


# Characters JSON leaves raw that a terminal acts on (C1 controls, bidi and line separators):
# escaped, so `--json` piped to a terminal cannot be turned against the reader.
_UNSAFE_JSON = re.compile("[\u0080-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _emit_json(doc: dict[str, Any]) -> None:
    text = json.dumps(doc, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write(_UNSAFE_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wormhunt {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    try:
        ctx.obj = Opts(normalize(lang), as_json)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--lang") from None


def _ingest_with_progress(case: Any, paths: list[Path], opts: Opts) -> list[dict[str, Any]]:
    from wormhunt.ingest import ingest
    from wormhunt.report.console import safe

    err = _err()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=opts.json or not err.is_terminal,
        transient=True,
    ) as progress:
        task = progress.add_task("ingest", total=None)

        def started(inputs: list[Any]) -> None:
            progress.update(task, total=len(inputs))

        def done(entry: Any) -> None:
            progress.update(task, advance=1, description=safe(Path(entry.path).name, 40))
            if not opts.json:
                _report_file(err, entry.to_json(), opts.lang)

        entries = ingest(case, paths, on_file=done, on_inputs=started)
    return [e.to_json() for e in entries]


def _report_file(err: Console, e: dict[str, Any], lang: str) -> None:
    from wormhunt.report.console import safe

    if e["status"] in ("ingested", "duplicate") and not e["skipped"]:
        return
    if e["status"] == "empty" and e.get("host"):
        return  # a host's command that had nothing to print (File Not Found, no portproxy): normal
    if e["status"] == "ingested":
        err.print(
            t(
                "ingest.file",
                lang,
                status=e["status"],
                path=safe(e["path"], 100),
                format=e["format"],
                encoding=e["encoding"],
                records=e["records"],
                skipped=e["skipped"],
            )
        )
        for reason, n in list(e["skip_reasons"].items())[:5]:
            first = next((s for s in e["skip_examples"] if s["reason"] == reason), None)
            where = f" (line {first['line']})" if first else ""
            err.print(f"    {n} × {safe(reason)}{where}")
    else:
        err.print(
            t(
                "ingest.problem",
                lang,
                status=e["status"],
                path=safe(e["path"], 100),
                message=safe(e.get("message") or ""),
            )
        )


FamiliesOpt = Annotated[
    list[Path] | None,
    typer.Option("--families", help="Folder of extra family files (knowledge/families format); repeatable."),
]
IntelOpt = Annotated[
    list[Path] | None, typer.Option("--intel", help="STIX 2.1 bundle or MISP event JSON to match too; repeatable.")
]
SigmaOpt = Annotated[
    list[Path] | None,
    typer.Option("--sigma", help="Folder (or file) of Sigma rules to run over the event logs; repeatable."),
]


def _use_sigma(dirs: list[Path] | None, opts: Opts) -> None:
    """Check the user's Sigma rules now (reporting the ones that cannot run) and hand the
    folders to the event-log detections."""
    from wormhunt.analyze import events
    from wormhunt.sigma import load_rules

    events.SIGMA_DIRS[:] = list(dirs or [])
    if not dirs:
        return
    rules, problems = load_rules(list(dirs))
    if not rules and not problems:
        raise typer.BadParameter(f"no Sigma rules in {', '.join(map(str, dirs))}", param_hint="--sigma")
    if problems and not opts.json:
        for path, reason in problems[:20]:
            _err().print(f"[yellow]sigma[/] {escape(path)}: {escape(reason)}")


@dataclass
class Knowledge:
    families: list[Any]
    extra: list[Any]
    problems: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"families": len(self.families), "imported": len(self.extra), "problems": self.problems}


def _knowledge(family_dirs: list[Path] | None, intel: list[Path] | None, opts: Opts) -> Knowledge:
    """The family knowledge base plus the user's family folders and intel files; a file that
    cannot be used at all stops the run with its reason, a bad object inside one is reported."""
    from wormhunt.intel.families import load_families
    from wormhunt.intel.misp import load_intel
    from wormhunt.intel.stix import IntelError
    from wormhunt.knowledge import KnowledgeError

    try:
        families = load_families(list(family_dirs or []))
    except (KnowledgeError, OSError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--families") from None
    extra: list[Any] = []
    problems: list[str] = []
    if intel:
        try:
            extra, problems = load_intel(list(intel))
        except (IntelError, OSError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--intel") from None
    if problems and not opts.json:
        for p in problems[:20]:
            _err().print(f"[yellow]{t('intel.problem', opts.lang)}[/] {escape(p)}")
    return Knowledge(families, extra, problems)


def run_investigation(
    paths: list[Path], case_dir: Path, opts: Opts, knowledge: Knowledge | None = None
) -> tuple[dict[str, Any], int]:
    """Ingest, analyse and summarise; returns the JSON document and the exit code."""
    from wormhunt.analyze import analyze
    from wormhunt.report.summary import build
    from wormhunt.store import Case

    with Case(case_dir) as case:
        entries = _ingest_with_progress(case, paths, opts)
        usable = [e for e in entries if e["status"] in ("ingested", "duplicate")]
        inv = analyze(case, knowledge.families, knowledge.extra) if knowledge else analyze(case)
        doc = build(case, inv, opts.lang)
        if knowledge:
            doc["intel"] = knowledge.to_json()
        doc["ingest"] = {
            "files": len(entries),
            "usable": len(usable),
            "by_status": {
                s: sum(1 for e in entries if e["status"] == s) for s in sorted({e["status"] for e in entries})
            },
        }
    return doc, 0 if usable or not entries else 2


def _print_summary(doc: dict[str, Any], opts: Opts) -> None:
    from wormhunt.report.console import render

    render(doc, Console(highlight=False), opts.lang)


@app.command()
def detect(
    ctx: typer.Context,
    evidence: Annotated[
        list[Path] | None,
        typer.Argument(help="Network evidence: firewall/IDS/flow logs, pcaps (detected from content)."),
    ] = None,
    case: Annotated[Path | None, typer.Option("--case", help="Case folder (default: a temporary one).")] = None,
    assets: Annotated[
        Path | None, typer.Option("--assets", help="Asset inventory CSV (roles, expected fan-out).")
    ] = None,
    allow: Annotated[
        Path | None, typer.Option("--allow", help="Addresses whose SMB fan-out is expected, one per line.")
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="Where detections run: duckdb, spark or clickhouse.")
    ] = "duckdb",
    engine_url: Annotated[
        str | None, typer.Option("--engine-url", help="Spark master URL, or ClickHouse server URL (default: embedded).")
    ] = None,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find the hosts spreading over SMB from network evidence, on DuckDB, Spark or ClickHouse."""
    import tempfile

    from wormhunt.analyze.engines import ENGINE_CLASSES, ENGINES, EngineError
    from wormhunt.analyze.network import detect as run_detect
    from wormhunt.report.detection import build_detection, read_allow_list
    from wormhunt.store import Case

    opts = _opts(ctx, lang, as_json)
    if engine not in ENGINES:
        raise typer.BadParameter(f"use one of: {', '.join(ENGINES)}", param_hint="--engine")
    paths = list(evidence or []) + ([assets] if assets else [])
    if not paths and case is None:
        raise typer.BadParameter("give evidence files or an existing --case", param_hint="EVIDENCE")
    with tempfile.TemporaryDirectory(prefix="wormhunt-detect-") as tmp, Case(case or Path(tmp) / "case") as c:
        entries = _ingest_with_progress(c, paths, opts) if paths else []
        if paths and not any(e["status"] in ("ingested", "duplicate") for e in entries):
            _err().print(t("ingest.nothing", opts.lang))
            raise typer.Exit(2)
        started = time.perf_counter()
        try:
            results = run_detect(c, engine, engine_url)
        except EngineError as exc:
            _err().print(t("detect.engine_error", opts.lang, engine=engine, error=str(exc)))
            raise typer.Exit(3) from None
        info = {
            "name": engine,
            "url": engine_url,
            "exact_distinct_counts": ENGINE_CLASSES[engine].exact_distinct,
            "seconds": round(time.perf_counter() - started, 2),
        }
        doc = build_detection(c, results, info, opts.lang, read_allow_list(allow))
        if case is None:
            doc["case"] = None
    if opts.json:
        _emit_json(doc)
    else:
        from wormhunt.report.console import render_detection

        render_detection(doc, Console(highlight=False), opts.lang)


@app.command()
def collect(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Bundle to write: a folder, or a .zip file.")],
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Collect a triage bundle of this machine (read-only): processes, connections, image hashes."""
    from wormhunt.collect.live import collect as run_collect

    opts = _opts(ctx, lang, as_json)
    path = run_collect(out)
    if opts.json:
        _emit_json({"bundle": str(path)})
    else:
        _err().print(t("collect.done", opts.lang, path=str(path)))


@app.command()
def collector(
    windows: Annotated[str, typer.Option("--windows", help="Which Windows collector script to print: ps1 or bat.")],
) -> None:
    """Print a Windows collector script (read-only, installs nothing) that writes a triage bundle."""
    from wormhunt.collect.windows import render

    if windows not in ("ps1", "bat"):
        raise typer.BadParameter("use ps1 or bat", param_hint="--windows")
    sys.stdout.buffer.write(render(windows).encode("utf-8-sig" if windows == "ps1" else "ascii"))


@app.command()
def identify(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to analyse (never executed).")],
    rules: Annotated[
        list[Path] | None, typer.Option("--rules", help="More YARA rules: a folder of *.yar/*.yara (repeatable).")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Scanner processes (default: CPU count).")] = None,
    max_size: Annotated[int, typer.Option("--max-size", help="Skip files larger than this many MiB.")] = 256,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Identify files offline: hashes, PE facts, YARA, ssdeep, ClamAV if installed. Exit 1 if anything is detected."""
    from wormhunt.identify import identify as run_identify
    from wormhunt.identify.render import render

    opts = _opts(ctx, lang, as_json)
    err = _err()
    with Progress(
        TextColumn("{task.description}"),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=opts.json or not err.is_terminal,
        transient=True,
    ) as progress:
        task = progress.add_task("identify", total=None)
        result = run_identify(
            paths, rules or [], workers, max_size << 20, on_file=lambda _f: progress.update(task, advance=1)
        )
    if opts.json:
        _emit_json(result.to_json())
    else:
        render(result, Console(highlight=False), opts.lang)
    raise typer.Exit(2 if not result.summary.scanned else 1 if result.summary.detected_files else 0)


def _remote_sweep(
    ssh: str | None, winrm: str | None, user: str | None, out: Path, kw: dict[str, Any], auth: str, opts: Opts
) -> tuple[list[Path], list[dict[str, Any]]]:
    """Collect remote hosts into `out` (progress on stderr); the bundle folders and the unreachable hosts."""
    import importlib.util

    from wormhunt.collect import remote

    try:
        targets = (remote.parse_targets(ssh, "ssh") if ssh else []) + (
            remote.parse_targets(winrm, "winrm") if winrm else []
        )
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--ssh/--winrm") from None
    if winrm and auth not in ("negotiate", "ntlm", "kerberos"):
        raise typer.BadParameter("use negotiate, ntlm or kerberos", param_hint="--winrm-auth")
    if winrm and importlib.util.find_spec("pypsrp") is None:
        raise typer.BadParameter("WinRM needs the optional extra: pip install 'wormhunt[winrm]'", param_hint="--winrm")
    creds = remote.credentials(user)
    err = _err()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=opts.json or not err.is_terminal,
        transient=True,
    ) as progress:
        task = progress.add_task(t("sweep.remote.progress", opts.lang), total=len(targets))
        results = remote.sweep(
            targets, creds, out, winrm_auth=auth, on_done=lambda _r: progress.update(task, advance=1), **kw
        )
    got = [r.bundle for r in results if r.bundle]
    lost = [r.unreachable() for r in results if r.status == "unreachable"]
    if not opts.json:
        counts = {k: sum(r.status == k for r in results) for k in ("collected", "skipped", "unreachable")}
        err.print(t("sweep.remote.done", opts.lang, **counts))
    return [p for p in got if p is not None], lost


@app.command()
def sweep(
    ctx: typer.Context,
    bundles: Annotated[list[Path] | None, typer.Argument(help="Folders of host bundles (or zips).")] = None,
    case: Annotated[Path | None, typer.Option("--case", help="Case folder (default: a temporary one).")] = None,
    assets: Annotated[Path | None, typer.Option("--assets", help="Asset inventory CSV.")] = None,
    network: Annotated[
        list[Path] | None, typer.Option("--network", help="Firewall/IDS logs or pcaps to read with the bundles.")
    ] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the verdict table as CSV.")] = None,
    ssh: Annotated[
        str | None, typer.Option("--ssh", help="Collect over SSH first: a file of host[:port] lines or a comma list.")
    ] = None,
    winrm: Annotated[
        str | None, typer.Option("--winrm", help="Collect over WinRM first (needs wormhunt[winrm] and Windows).")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="Remote user (default: $WORMHUNT_SSH_USER).")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Hosts collected at once.")] = 16,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds per host, retries included.")] = 120,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Retries of a failed connection.")] = 2,
    out: Annotated[Path | None, typer.Option("--out", help="Where remote bundles go (default: CASE/remote).")] = None,
    accept_new: Annotated[
        bool, typer.Option("--ssh-accept-new", help="Trust unknown SSH host keys on first use (see docs/sweep.md).")
    ] = False,
    winrm_auth: Annotated[
        str, typer.Option("--winrm-auth", help="WinRM auth: negotiate, ntlm or kerberos.")
    ] = "negotiate",
    families: FamiliesOpt = None,
    intel: IntelOpt = None,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sweep the fleet: a verdict per host, who was first and how it spread."""
    import tempfile

    from wormhunt.report import write_output
    from wormhunt.report.sweep import render as render_sweep
    from wormhunt.report.sweep import rows, to_csv

    opts = _opts(ctx, lang, as_json)
    paths = list(bundles or []) + list(network or []) + ([assets] if assets else [])
    if not paths and not ssh and not winrm:
        raise typer.BadParameter("give bundle folders", param_hint="BUNDLES")
    knowledge = _knowledge(families, intel, opts)
    unreachable: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="wormhunt-sweep-") as tmp:
        case_dir = case or Path(tmp) / "case"
        if ssh or winrm:
            remote = dict(concurrency=concurrency, timeout=timeout, retries=retries, accept_new=accept_new)
            got, unreachable = _remote_sweep(ssh, winrm, user, out or case_dir / "remote", remote, winrm_auth, opts)
            paths = got + paths
        doc, code = run_investigation(paths, case_dir, opts, knowledge) if paths else ({"hosts": [], "evidence": []}, 1)
    table = rows(doc, unreachable)
    spread = doc.get("spread") or {}
    if csv_out:
        write_output(csv_out, to_csv(table))
    if opts.json:
        verdicts = ("infected", "suspicious", "clean", "unreachable")
        counts = {v: sum(1 for r in table if r["verdict"] == v) for v in verdicts}
        _emit_json(
            {
                "summary": {"hosts": len(table), **counts},
                "hosts": table,
                "patient_zero": spread.get("patient_zero"),
                "edges": spread.get("edges", []),
                "timeline": spread.get("timeline", []),
                "evidence": doc["evidence"],
            }
        )
    else:
        render_sweep(table, spread, Console(highlight=False), opts.lang)
    raise typer.Exit(code)


@app.command()
def triage(
    ctx: typer.Context,
    bundles: Annotated[list[Path] | None, typer.Argument(help="Bundles (folders or zips) or folders of them.")] = None,
    live: Annotated[bool, typer.Option("--live", help="Collect this machine first and triage it.")] = False,
    case: Annotated[Path | None, typer.Option("--case", help="Case folder (default: a temporary one).")] = None,
    families: FamiliesOpt = None,
    intel: IntelOpt = None,
    sigma: SigmaOpt = None,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Triage host bundles: the findings per host, with their evidence lines."""
    import tempfile

    from wormhunt.collect.live import collect as run_collect

    opts = _opts(ctx, lang, as_json)
    paths = list(bundles or [])
    if not paths and not live:
        raise typer.BadParameter("give bundles or --live", param_hint="BUNDLE")
    knowledge = _knowledge(families, intel, opts)
    _use_sigma(sigma, opts)
    with tempfile.TemporaryDirectory(prefix="wormhunt-triage-") as tmp:
        if live:
            paths.append(run_collect(Path(tmp) / "live-bundle"))
        doc, code = run_investigation(paths, case or Path(tmp) / "case", opts, knowledge)
    out = {
        "case": str(case) if case else None,
        "lang": doc["lang"],
        "summary": doc["summary"],
        "hosts": doc["hosts"],
        "evidence": doc["evidence"],
        "intel": doc["intel"],
    }
    if opts.json:
        _emit_json(out)
    else:
        from wormhunt.report.console import render_triage

        render_triage(out, Console(highlight=False), opts.lang)
    raise typer.Exit(code)


@app.command()
def investigate(
    ctx: typer.Context,
    evidence: Annotated[
        list[Path], typer.Argument(help="Evidence files or folders (formats are detected from content).")
    ],
    case: Annotated[Path, typer.Option("--case", help="Case folder (created if missing).")],
    assets: Annotated[Path | None, typer.Option("--assets", help="Asset inventory CSV.")] = None,
    families: FamiliesOpt = None,
    intel: IntelOpt = None,
    sigma: SigmaOpt = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the report: FILE.html, FILE.md or FILE.json.")
    ] = None,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest evidence into a case, analyse it and summarise the outbreak."""
    opts = _opts(ctx, lang, as_json)
    paths = list(evidence) + ([assets] if assets else [])
    _use_sigma(sigma, opts)
    doc, code = run_investigation(paths, case, opts, _knowledge(families, intel, opts))
    if report is not None:
        from wormhunt.report.document import format_for, report_case

        doc["report"] = str(report_case(case, report, format_for(report), opts.lang))
        _err().print(t("report.written", opts.lang, path=escape(doc["report"])))
    if opts.json:
        _emit_json(doc)
    else:
        if code == 2:
            _err().print(t("ingest.nothing", opts.lang))
        _print_summary(doc, opts)
    raise typer.Exit(code)


intel_app = typer.Typer(help="Threat-intel exchange: export what a case confirmed as STIX 2.1 or MISP.")
app.add_typer(intel_app, name="intel")


@intel_app.command("export")
def intel_export(
    ctx: typer.Context,
    case: Annotated[Path, typer.Option("--case", help="An investigated case folder.")],
    fmt: Annotated[str, typer.Option("--format", help="stix (STIX 2.1 bundle) or misp (MISP event JSON).")] = "stix",
    out: Annotated[Path | None, typer.Option("--out", help="File to write (default: standard output).")] = None,
    families: FamiliesOpt = None,
    intel: IntelOpt = None,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export the indicators the case confirmed (matched on hosts with a family verdict, and the
    hashes of the files they matched)."""
    from wormhunt.analyze import analyze
    from wormhunt.intel.confirmed import confirmed_indicators
    from wormhunt.intel.misp import export_misp
    from wormhunt.intel.stix import export_bundle
    from wormhunt.report import write_output
    from wormhunt.store import Case

    opts = _opts(ctx, lang, as_json)
    if fmt not in ("stix", "misp"):
        raise typer.BadParameter("use stix or misp", param_hint="--format")
    if not (case / "case.duckdb").exists():
        raise typer.BadParameter(f"no case at {case}", param_hint="--case")
    knowledge = _knowledge(families, intel, opts)
    with Case(case) as c:
        inv = analyze(c, knowledge.families, knowledge.extra)
        indicators = confirmed_indicators(c, inv.families.values())
    names = {f.id: f.name(opts.lang) for f in knowledge.families}
    skipped: list[str] = []
    if fmt == "stix":
        doc = export_bundle(indicators, names, skipped=skipped)
    else:
        doc = export_misp(indicators, names, info=f"wormhunt case {case.name}")
    text = json.dumps(doc, ensure_ascii=False, indent=2)
    if out is None:
        sys.stdout.write(text + "\n")
    else:
        write_output(out, text + "\n")
    where = escape(str(out or "-"))
    _err().print(t("intel.exported", opts.lang, count=len(indicators), skipped=len(skipped), out=where))
    for line in skipped[:20]:
        _err().print(f"[dim]{escape(line)}[/]")


audit_app = typer.Typer(help="Audits of the hosts in the evidence: which are still exploitable.")
app.add_typer(audit_app, name="audit")


@audit_app.command("ms17-010")
def audit_ms17010(
    ctx: typer.Context,
    evidence: Annotated[
        list[Path] | None,
        typer.Argument(help="systeminfo, wmic qfe, Get-HotFix, srv.sys version, ver, SMBv1 outputs or bundles."),
    ] = None,
    case: Annotated[Path | None, typer.Option("--case", help="Case folder (default: a temporary one).")] = None,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per host: patched, vulnerable or unknown for MS17-010, with the reason and the evidence."""
    import tempfile

    from rich.table import Table

    from wormhunt.analyze.patch import VERDICTS, audit_case
    from wormhunt.store import Case

    opts = _opts(ctx, lang, as_json)
    paths = list(evidence or [])
    if not paths and case is None:
        raise typer.BadParameter("give evidence files or an existing --case", param_hint="EVIDENCE")
    with tempfile.TemporaryDirectory(prefix="wormhunt-audit-") as tmp, Case(case or Path(tmp) / "case") as c:
        entries = _ingest_with_progress(c, paths, opts) if paths else []
        if paths and not any(e["status"] in ("ingested", "duplicate") for e in entries):
            _err().print(t("ingest.nothing", opts.lang))
            raise typer.Exit(2)
        audits = audit_case(c)

    def render(key: str, **params: Any) -> str:
        return t(key, opts.lang, **params)

    counts = {v: sum(1 for a in audits if a.verdict == v) for v in VERDICTS}
    doc = {
        "command": "audit ms17-010",
        "lang": opts.lang,
        "case": str(case) if case else None,
        "summary": {"hosts": len(audits), **counts},
        "remediation": render("audit.remediation"),
        "hosts": [a.to_json(render) for a in audits],
    }
    if opts.json:
        _emit_json(doc)
        return
    out = Console(highlight=False)
    if not audits:
        out.print(render("audit.none"))
    else:
        table = Table(title=render("audit.title"), show_lines=True)
        for col in ("host", "verdict", "os", "reason", "evidence"):
            table.add_column(render(f"audit.col.{col}"), overflow="fold")
        style = {"patched": "green", "vulnerable": "bold red", "unknown": "yellow"}
        for a, j in zip(audits, doc["hosts"], strict=True):
            reason = "\n".join([escape(j["reason"]), *(f"[dim]{escape(n)}[/]" for n in j["notes"])])
            refs = [
                escape(f"{Path(r['file']).name if r['file'] else r['table']}:{r['line']} {r['text']}")
                for r in j["evidence"][:6]
            ]
            os_text = escape(" ".join(x for x in (a.os, a.build) if x) or "-")
            verdict = f"[{style[a.verdict]}]{escape(render(f'audit.verdict.{a.verdict}'))}[/]"
            table.add_row(escape(a.host), verdict, os_text, reason, "\n".join(refs))
        out.print(table)
        out.print(render("audit.summary", **doc["summary"]))
    out.print(f"[bold]{escape(render('audit.remediation'))}[/]")


@app.command()
def simulate(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Folder to write the evidence into.")],
    hosts: Annotated[int, typer.Option("--hosts", min=8, help="Number of hosts in the company.")] = 60,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same outbreak).")] = 1,
    days: Annotated[int, typer.Option("--days", min=1, help="Days of firewall logs.")] = 2,
    lines: Annotated[int, typer.Option("--lines", min=0, help="Network sessions to write (about).")] = 200_000,
    locale: Annotated[str, typer.Option("--locale", help="Host languages: mixed, zh-CN or en-US.")] = "mixed",
    net_format: Annotated[
        str, typer.Option("--net-format", help="Network log format: fortigate, paloalto, asa, huawei, zeek ...")
    ] = "fortigate",
    family: Annotated[
        str, typer.Option("--family", help="wannamine3, wannamine4, wannamine-fileless or dtlminer.")
    ] = "wannamine3",
    leftovers: Annotated[
        float, typer.Option("--leftovers", min=0.0, max=1.0, help="Share of WannaMine 3.0 hosts with 2.0 leftovers.")
    ] = 0.0,
    empty_outputs: Annotated[
        bool,
        typer.Option(
            "--empty-outputs/--no-empty-outputs", help="Clean hosts also get 'File Not Found' and empty listings."
        ),
    ] = True,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a simulated worm outbreak (WannaMine 3.0 by default) as real-format evidence plus ground_truth.json."""
    from wormhunt.simulate import simulate as run
    from wormhunt.simulate.families import FAMILIES

    opts = _opts(ctx, lang, as_json)
    if locale not in ("mixed", "zh-CN", "en-US"):
        raise typer.BadParameter("use mixed, zh-CN or en-US", param_hint="--locale")
    if family not in FAMILIES:
        raise typer.BadParameter(f"use one of: {', '.join(FAMILIES)}", param_hint="--family")
    from wormhunt.simulate.logformats import available

    if net_format not in available():
        raise typer.BadParameter(f"use one of: {', '.join(available())}", param_hint="--net-format")
    truth = run(
        out,
        hosts=hosts,
        seed=seed,
        days=days,
        lines=lines,
        locale=locale,
        net_format=net_format,
        family=family,
        leftovers=leftovers,
        empty_outputs=empty_outputs,
    )
    if opts.json:
        _emit_json(
            {
                "out": str(out),
                **{
                    k: truth[k] for k in ("seed", "hosts_total", "period", "patient_zero", "infected", "firewall_lines")
                },
            }
        )
    else:
        _err().print(
            t(
                "simulate.done",
                opts.lang,
                hosts=truth["hosts_total"],
                traffic=truth["firewall_lines"]["traffic"],
                ips=truth["firewall_lines"]["alerts"],
                out=out,
            )
        )


def _prepare_demo_dir(out: Path) -> None:
    if out.exists():
        marker = out / "evidence" / "ground_truth.json"
        if not marker.exists() and any(out.iterdir()):
            raise typer.BadParameter(f"{out} exists and is not a wormhunt demo folder; choose another --out")
        shutil.rmtree(out)


@app.command()
def demo(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Folder for the simulated evidence and the case.")] = Path(
        "wormhunt-demo"
    ),
    hosts: Annotated[int, typer.Option("--hosts", min=8)] = 60,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    days: Annotated[int, typer.Option("--days", min=1)] = 2,
    lines: Annotated[int, typer.Option("--lines", min=0)] = 200_000,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Simulate an outbreak, investigate it, and show what wormhunt found against the ground truth."""
    from wormhunt.simulate import simulate as run

    opts = _opts(ctx, lang, as_json)
    err = _err()
    _prepare_demo_dir(out)
    evidence = out / "evidence"
    started = time.monotonic()
    if not opts.json:
        err.print(t("demo.simulating", opts.lang, hosts=hosts, seed=seed, out=evidence))
    truth = run(evidence, hosts=hosts, seed=seed, days=days, lines=lines)
    if not opts.json:
        err.print(t("demo.investigating", opts.lang, out=evidence))
    doc, code = run_investigation(
        [evidence / "network", evidence / "hosts", evidence / "assets.csv"], out / "case", opts
    )
    found = sorted(h["host"] for h in doc["hosts"] if h["status"] == "infected")
    doc["ground_truth"] = {
        "patient_zero": truth["patient_zero"]["host"],
        "infected": truth["infected"],
        "matches": found == truth["infected"]
        and bool(doc["patient_zero"])
        and doc["patient_zero"]["host"] == truth["patient_zero"]["host"],
    }
    from wormhunt.report.document import report_case

    doc["report"] = str(report_case(out / "case", out / f"report-{opts.lang}.html", "html", opts.lang))
    doc["seconds"] = round(time.monotonic() - started, 1)
    if opts.json:
        _emit_json(doc)
    else:
        _print_summary(doc, opts)
        err.print(
            t(
                "demo.truth",
                opts.lang,
                p0=truth["patient_zero"]["host"],
                infected=len(truth["infected"]),
                found=len(found),
                found_p0=(doc["patient_zero"] or {}).get("host"),
            )
        )
        err.print(t("report.written", opts.lang, path=escape(doc["report"])))
    raise typer.Exit(code)


@app.command("plan")
def plan_cmd(
    ctx: typer.Context,
    case: Annotated[Path, typer.Option("--case", help="Case folder (from investigate).")],
    host: Annotated[list[str] | None, typer.Option("--host", help="Only this host (repeatable).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: CASE/plans).")] = None,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a remediation plan per host: plan.ps1, plan.bat, rollback.ps1, rollback.bat, plan.json."""
    from rich.table import Table

    from wormhunt.respond import host_folder, plan_case, write_plan

    opts = _opts(ctx, lang, as_json)
    if not case.is_dir():
        raise typer.BadParameter(f"{case} is not a case folder", param_hint="--case")
    plans = plan_case(case, host)
    if host and not plans:
        raise typer.BadParameter("no such host in the case", param_hint="--host")
    root = out or case / "plans"
    rows = []
    for name, p in plans.items():
        files = write_plan(p, root / host_folder(name)) if p.steps else {}
        rows.append(
            {
                "host": name,
                "status": p.status,
                "family": p.family,
                "conservative": p.conservative,
                "steps": len(p.steps),
                "changes": len(p.destructive),
                "refused": len(p.refused),
                "review": len(p.review),
                "warnings": [t(w["key"], opts.lang, **w.get("params", {})) for w in p.warnings],
                "files": {k: str(v) for k, v in files.items()},
            }
        )
    if opts.json:
        _emit_json({"out": str(root), "plans": rows})
        raise typer.Exit(0)
    console = Console(highlight=False)
    table = Table(title=t("plan.title", opts.lang))
    for col in ("host", "status", "family", "steps", "changes", "refused"):
        table.add_column(t(f"plan.col.{col}", opts.lang))
    for r in rows:
        if not r["steps"] and r["status"] == "clean":
            continue
        table.add_row(
            escape(r["host"]),
            t(f"status.{r['status']}", opts.lang),
            escape(r["family"] or "-"),
            str(r["steps"]),
            str(r["changes"]),
            str(r["refused"]),
        )
    console.print(table)
    clean = sum(1 for r in rows if r["status"] == "clean")
    console.print(t("plan.clean_hosts", opts.lang, n=clean))
    for r in rows:
        for w in r["warnings"]:
            _err().print(f"[bold red]{escape(r['host'])}: {escape(w)}[/]")
    console.print(t("plan.written", opts.lang, out=escape(str(root))))
    raise typer.Exit(0)


@app.command()
def remediate(
    ctx: typer.Context,
    plan: Annotated[Path, typer.Option("--plan", help="A plan.json written by `wormhunt plan`.")],
    execute: Annotated[bool, typer.Option("--execute", help="Act (default: dry-run, nothing changes).")] = False,
    rollback: Annotated[bool, typer.Option("--rollback", help="Restore the newest quarantine of --workdir.")] = False,
    workdir: Annotated[
        Path | None, typer.Option("--workdir", help="Backups and quarantine (default: beside plan.json).")
    ] = None,
    verify_seconds: Annotated[float, typer.Option("--verify-seconds", help="Wait before checking regrowth.")] = 5.0,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
    force_host: Annotated[
        bool, typer.Option("--force-host", help="Execute even if the plan names another host than this one.")
    ] = False,
) -> None:
    """Apply a plan on this machine (file and process steps; the scripts do the Windows ones)."""
    from wormhunt.respond.execute import rollback as run_rollback
    from wormhunt.respond.execute import run_plan
    from wormhunt.respond.plan import Plan

    opts = _opts(ctx, lang, as_json)
    err = _err()
    doc = json.loads(plan.read_text(encoding="utf-8"))
    the_plan = Plan.from_json(doc)
    work = workdir or plan.parent / "remediate"

    def log(line: str) -> None:
        err.print(escape(line))

    if rollback:  # only the archives the last run recorded, only to paths this plan quarantines
        restored = run_rollback(work, execute=execute, log=log, plan=the_plan)
        if opts.json:
            _emit_json({"rollback": True, "execute": execute, "files": restored})
        else:
            err.print(t("remediate.rolled_back" if execute else "remediate.rollback_dry", opts.lang, n=len(restored)))
        raise typer.Exit(0)
    if the_plan.conservative:
        err.print(f"[bold red]{escape(t('respond.warn_av_forbidden', opts.lang, host=the_plan.host))}[/]")
    if not execute:
        err.print(t("remediate.dry_run", opts.lang))
    report = run_plan(the_plan, work, execute=execute, verify_seconds=verify_seconds, log=log, force_host=force_host)
    if opts.json:
        _emit_json(report.to_json())
    else:
        key = "remediate.failed" if not report.ok else "remediate.done" if execute else "remediate.dry_done"
        err.print(t(key, opts.lang, quarantine=escape(report.quarantine or "-")))
    raise typer.Exit(0 if report.ok else 2)


@app.command()
def report(
    ctx: typer.Context,
    case: Annotated[Path, typer.Option("--case", help="An investigated case folder.")],
    fmt: Annotated[str, typer.Option("--format", help="html (one self-contained file), md or json.")] = "html",
    out: Annotated[Path | None, typer.Option("--out", help="File to write (default: CASE/report-LANG.EXT).")] = None,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the incident report: summary, timeline, propagation graph, hosts, evidence, plans, audit."""
    from wormhunt.report.document import FORMATS, SUFFIX, report_case

    opts = _opts(ctx, lang, as_json)
    if fmt not in FORMATS:
        raise typer.BadParameter(f"use one of: {', '.join(FORMATS)}", param_hint="--format")
    if not (case / "case.duckdb").exists():
        raise typer.BadParameter(f"no case at {case}", param_hint="--case")
    path = report_case(case, out or case / f"report-{opts.lang}{SUFFIX[fmt]}", fmt, opts.lang)
    if opts.json:
        _emit_json({"report": str(path), "format": fmt, "lang": opts.lang})
    else:
        _err().print(t("report.written", opts.lang, path=escape(str(path))))


@app.command()
def watch(
    ctx: typer.Context,
    case: Annotated[Path, typer.Option("--case", help="Case folder: staged rows, alert state and counters live here.")],
    listen: Annotated[
        list[str] | None, typer.Option("--listen", help="Syslog listener: udp://HOST:PORT or tcp://HOST:PORT.")
    ] = None,
    tail: Annotated[list[Path] | None, typer.Option("--tail", help="Log file to follow (rotation-aware).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Message format: auto (by content) or a format name.")] = "auto",
    alert: Annotated[
        list[str] | None, typer.Option("--alert", help="Alert output: jsonl:FILE, webhook:URL or syslog:HOST:PORT.")
    ] = None,
    ui: Annotated[str | None, typer.Option("--ui", help="Serve a live status page on HOST:PORT.")] = None,
    allow: Annotated[
        Path | None, typer.Option("--allow", help="Addresses whose SMB fan-out is expected, one per line.")
    ] = None,
    quiet: Annotated[
        float, typer.Option("--quiet", help="Seconds after an alert during which a source's new alerts are grouped.")
    ] = 60.0,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Watch firewall/IDS syslog and log files live; alert on spreading hosts within seconds (Ctrl-C stops)."""
    from wormhunt.report.detection import read_allow_list
    from wormhunt.sources import FORMATS
    from wormhunt.watch.service import WatchConfig, run

    opts = _opts(ctx, lang, as_json)
    if not listen and not tail:
        raise typer.BadParameter(t("watch.no_input", opts.lang), param_hint="--listen")
    if fmt != "auto" and (fmt not in FORMATS or FORMATS[fmt].host_evidence or FORMATS[fmt].parse_text is None):
        names = sorted(n for n, f in FORMATS.items() if not f.host_evidence and f.parse_text is not None)
        raise typer.BadParameter(f"use auto or one of: {', '.join(names)}", param_hint="--format")
    cfg = WatchConfig(
        case=case,
        listen=list(listen or []),
        tail=list(tail or []),
        format=fmt,
        alert=list(alert or []),
        ui=ui,
        allow=read_allow_list(allow),
        quiet_s=quiet,
        lang=opts.lang,
    )
    err = _err()
    try:
        summary = run(cfg, log=lambda msg: err.print(escape(msg), soft_wrap=True))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if opts.json:
        _emit_json(summary)
    else:
        err.print(
            t(
                "watch.stopped",
                opts.lang,
                stored=summary["stored_messages"],
                spreaders=len(summary["spreaders"]),
                dropped=summary["dropped"],
                errors=summary["parse_errors"],
            )
        )


def main() -> None:
    """Console entry point: clean messages instead of tracebacks (WORMHUNT_DEBUG=1 shows them)."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("WORMHUNT_DEBUG"):
            raise
        Console(stderr=True, markup=False, highlight=False).print(f"error: {type(exc).__name__}: {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
