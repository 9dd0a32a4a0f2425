"""The incident report: HTML, Markdown and JSON from one simulated case, in both languages.

Browser tests open the HTML file in headless Chromium (the Debian `chromium` package, driven by
Playwright with `executable_path`; Playwright's own browser download is not used) and skip when
either is missing. Screenshots go to build/ (a CI artifact).
"""

from __future__ import annotations

import json
import re
import shutil
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from wormhunt.analyze import analyze
from wormhunt.i18n import t
from wormhunt.ingest import ingest
from wormhunt.report.document import build_report, render, write_report
from wormhunt.report.html import script_json
from wormhunt.report.markdown import md_code
from wormhunt.simulate import simulate
from wormhunt.store import Case

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
LANGS = ("en", "zh-CN")
CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)

# Payloads carried by a hostile host's evidence (process command line, service name, file name).
PAYLOADS = (
    "<script>window.__xss=1</script>",
    '"><img src=x onerror=window.__xss=2>',
    "</script><script>window.__xss=3</script>",
)
LS = "\u2028"


def _case(root: Path, hosts: int = 16, lines: int = 3000, hostile: bool = False) -> tuple[Path, dict[str, Any]]:
    truth = simulate(root / "ev", hosts=hosts, seed=7, days=1, lines=lines)
    paths = [root / "ev" / "network", root / "ev" / "hosts", root / "ev" / "assets.csv"]
    if hostile:
        paths.append(_hostile_bundle(root / "hostile"))
    with Case(root / "case") as case:
        ingest(case, paths)
        analyze(case)
    return root / "case", truth


def _hostile_bundle(folder: Path) -> Path:
    """A triage bundle (docs/bundle.md: a folder with manifest.json and one file per command
    output) of host EVIL01, whose process command line, service name and file name carry HTML
    and script payloads and a U+2028 line separator."""
    folder.mkdir(parents=True)
    cmd = f"C:\\ProgramData\\svchost.exe {PAYLOADS[0]} {PAYLOADS[1]} {PAYLOADS[2]} x{LS}y"
    (folder / "wmic_process.csv").write_text(
        "\r\n".join(
            [
                "Node,CommandLine,CreationDate,ExecutablePath,Name,ParentProcessId,ProcessId",
                "EVIL01,,,,System,0,4",
                f"EVIL01,{cmd},20181117233824.653722+480,C:\\ProgramData\\svchost.exe,svchost.exe,4,6666",
            ]
        )
        + "\r\n",
        encoding="utf-8",
    )
    service = "evil<script>window.__xss=4</script>"
    (folder / "sc_qc.txt").write_text(
        "\r\n".join(
            [
                "[SC] QueryServiceConfig SUCCESS",
                "",
                f"SERVICE_NAME: {service}",
                "        TYPE               : 10  WIN32_OWN_PROCESS",
                "        START_TYPE         : 2   AUTO_START",
                "        ERROR_CONTROL      : 1   NORMAL",
                '        BINARY_PATH_NAME   : C:\\ProgramData\\"><img src=x onerror=window.__xss=5>.exe',
                "        LOAD_ORDER_GROUP   :",
                "        TAG                : 0",
                f"        DISPLAY_NAME       : {service}",
                "        DEPENDENCIES       :",
                "        SERVICE_START_NAME : LocalSystem",
                "",
            ]
        ),
        encoding="utf-8",
    )
    (folder / "dir_appdiagnostics.txt").write_text(
        "\r\n".join(
            [
                " Directory of C:\\Windows\\AppDiagnostics",
                "",
                "04/15/2017  03:12 AM    <DIR>          .",
                "04/15/2017  03:12 AM         2,248,729 svchost.exe",
                "04/15/2017  03:12 AM             4,766 <img src=x onerror=window.__xss=6>.exe",
                "               2 File(s)      2,253,495 bytes",
            ]
        )
        + "\r\n",
        encoding="utf-8",
    )
    (folder / "manifest.json").write_text(
        json.dumps(
            {
                "host": "EVIL01",
                "ips": ["172.16.101.250"],
                "collected_at": "2018-11-17T23:40:00+08:00",
                "locale": "en-US",
                "collector": {"name": "test", "version": "1"},
                "commands": [
                    {"command": "wmic process get ... /format:csv", "exit_code": 0, "output": "wmic_process.csv"},
                    {"command": "sc qc", "exit_code": 0, "output": "sc_qc.txt"},
                    {
                        "command": "dir /s C:\\Windows\\AppDiagnostics",
                        "exit_code": 0,
                        "output": "dir_appdiagnostics.txt",
                    },
                ],
            }
        ),
        encoding="utf-8",
    )
    return folder


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("report")
    case_dir, truth = _case(root)
    out: dict[str, Any] = {"truth": truth, "root": root, "docs": {}, "files": {}}
    with Case(case_dir) as case:
        inv = analyze(case)
        for lang in LANGS:
            doc = build_report(case, inv, lang)
            out["docs"][lang] = doc
            for fmt in ("html", "md", "json"):
                path = root / f"report-{lang}.{fmt}"
                path.write_text(render(doc, fmt, lang), encoding="utf-8")
                out["files"][(lang, fmt)] = path
    return out


# ---------------------------------------------------------------------------------------------
# Without a browser


def test_document_facts(small: dict[str, Any]) -> None:
    truth, doc = small["truth"], small["docs"]["en"]
    infected = sorted(h["host"] for h in doc["hosts"] if h["status"] == "infected")
    assert infected == sorted(truth["infected"])
    assert doc["executive"]["patient_zero"] == truth["patient_zero"]["host"]
    assert doc["executive"]["infected"] == len(truth["infected"])
    assert doc["executive"]["families"][0]["family"] == "wannamine3"
    # Every exploit edge is one the simulator made (the firewall sees only cross-subnet hops).
    real = {(e["src"], e["dst"]) for e in truth["edges"]}
    exploit = [(e["source"], e["target"]) for e in doc["propagation"]["edges"] if "exploit" in e["kinds"]]
    assert exploit and set(exploit) <= real
    nodes = {n["id"] for n in doc["propagation"]["nodes"]}
    assert set(truth["infected"]) <= nodes
    assert all(e["source"] in nodes and e["target"] in nodes for e in doc["propagation"]["edges"])
    # Plans for the infected hosts, the audit, recommendations tied to the case, the appendix.
    assert set(truth["infected"]) <= set(doc["plans"])
    assert all(doc["plans"][h]["steps"] for h in truth["infected"])
    assert doc["audit"]["hosts"]
    keys = {r["key"] for r in doc["recommendations"]}
    assert {"clean_first", "detect", "segment", "monitor"} <= keys
    assert doc["indicators"] and doc["stix"]["type"] == "bundle"
    assert all(len(m["sha256"] or "") == 64 for m in doc["manifest"] if m["status"] == "ingested")


def _html_hosts(text: str) -> dict[str, str]:
    """host -> status class from the HTML host table."""

    class P(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: dict[str, str] = {}
            self.status: str | None = None
            self.in_table = False
            self.cell = 0
            self.grab = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "table" and a.get("id") == "wh-host-table":
                self.in_table = True
            if self.in_table and tag == "tr" and (a.get("class") or "").startswith("st-"):
                self.status, self.cell = (a["class"] or "")[3:], 0
            if self.in_table and tag == "td":
                self.cell += 1
            if self.in_table and tag == "strong" and self.cell == 1:
                self.grab = True

        def handle_endtag(self, tag: str) -> None:
            if tag == "table":
                self.in_table = False

        def handle_data(self, data: str) -> None:
            if self.grab and self.status:
                self.rows[data] = self.status
                self.grab = False

    p = P()
    p.feed(text)
    return p.rows


def _md_hosts(text: str, lang: str) -> dict[str, str]:
    names = {t(f"status.{s}", lang): s for s in ("infected", "suspicious", "clean")}
    section = text.split(f"## {t('report.sec.hosts', lang)}", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in section.splitlines():
        m = re.match(r"\| `([^`]+)` \| [^|]+ \| ([^|]+) \|", line)
        if m:
            out[m.group(1)] = names[m.group(2).strip()]
    return out


@pytest.mark.parametrize("lang", LANGS)
def test_formats_carry_the_same_facts(small: dict[str, Any], lang: str) -> None:
    files = small["files"]
    doc = json.loads(files[(lang, "json")].read_text(encoding="utf-8"))
    html = files[(lang, "html")].read_text(encoding="utf-8")
    md = files[(lang, "md")].read_text(encoding="utf-8")
    statuses = {h["host"]: h["status"] for h in doc["hosts"]}
    assert _html_hosts(html) == statuses
    assert _md_hosts(md, lang) == statuses
    pz = doc["executive"]["patient_zero"]
    assert f"<strong>{pz}</strong>" in html and f"**`{pz}`**" in md
    n = doc["executive"]["infected"]
    assert f'id="wh-infected-count">{n}<' in html
    assert f"{t('report.exec.infected', lang, total=doc['summary']['hosts'])}: **{n}**" in md
    family = doc["executive"]["families"][0]["name"]
    assert family in html and family in md
    assert (
        t("report.graph_hint", lang, nodes=len(doc["propagation"]["nodes"]), edges=len(doc["propagation"]["edges"]))
        in md
    )


def test_html_is_self_contained(small: dict[str, Any]) -> None:
    html = small["files"][("en", "html")].read_text(encoding="utf-8")
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp
    policy = unescape(csp.group(1))
    assert policy.startswith("default-src 'none';") and "'unsafe-inline'" not in policy.split("style-src")[0]
    assert "connect-src 'none'" in policy and "script-src 'sha256-" in policy
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=\"?(https?:)?//", html)
    assert html.count("<script") == 4  # data, STIX, ECharts, the page's script
    assert "@media print" in html


def test_script_json_cannot_close_the_element() -> None:
    text = script_json({"a": "</script><script>alert(1)</script>", "b": "x\u2028y\u2029z", "c": "&<>"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text)["a"] == "</script><script>alert(1)</script>"


def test_markdown_code_spans_hold_anything() -> None:
    assert md_code("a`b") == "``a`b``"
    assert md_code("x|y") == "`x\\|y`"
    assert md_code("line1\nline2") == "`line1 line2`"


def test_demo_sized_html_under_3_mb(tmp_path: Path) -> None:
    case_dir, _ = _case(tmp_path, hosts=60, lines=20_000)
    out = tmp_path / "report.html"
    with Case(case_dir) as case:
        write_report(case, analyze(case), out, "html", "zh-CN")
    size = out.stat().st_size
    print(f"demo-sized report: {size} bytes")
    assert size < 3 * 1024 * 1024


def test_cli_report_formats(small: dict[str, Any], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from wormhunt.cli import app

    case_dir = small["root"] / "case"
    for fmt in ("html", "md", "json"):
        out = tmp_path / f"r.{fmt}"
        res = CliRunner().invoke(
            app, ["report", "--case", str(case_dir), "--format", fmt, "--out", str(out), "--lang", "zh-CN", "--json"]
        )
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["report"] == str(out)
        assert out.stat().st_size > 1000
    res = CliRunner().invoke(app, ["report", "--case", str(case_dir), "--format", "pdf"])
    assert res.exit_code != 0


# ---------------------------------------------------------------------------------------------
# In the browser


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def _open(browser: Any, path: Path) -> tuple[Any, dict[str, list[Any]]]:
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    seen: dict[str, list[Any]] = {"requests": [], "dialogs": [], "errors": [], "console": []}
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("console", lambda m: seen["console"].append(f"{m.type}: {m.text}"))
    page.goto(path.as_uri())
    page.wait_for_selector("html[data-charts-ready='1']", state="attached", timeout=30_000)
    return page, seen


GRAPH_COUNTS = """() => {
  const s = window.whReport.graph.getOption().series[0];
  const t = window.whReport.timeline.getOption().series;
  return {nodes: s.data.length, edges: s.links.length, timeline: t.reduce((n, x) => n + x.data.length, 0)};
}"""


@pytest.mark.parametrize("lang", LANGS)
def test_report_in_chromium(browser: Any, small: dict[str, Any], lang: str) -> None:
    doc = small["docs"][lang]
    path = small["files"][(lang, "html")]
    page, seen = _open(browser, path)
    try:
        text = page.inner_text("body")
        ex = doc["executive"]
        assert ex["patient_zero"] in page.inner_text("#wh-patient-zero")
        assert page.inner_text("#wh-infected-count").strip() == str(ex["infected"])
        family = page.inner_text("#wh-family")
        assert ex["families"][0]["name"] in family
        if lang == "zh-CN":
            assert "挖矿蠕虫" in family and t("report.sec.summary", lang) in text
        else:
            assert "WannaMine 3.0" in family and "Executive summary" in text
        counts = page.evaluate(GRAPH_COUNTS)
        assert counts["nodes"] == len(doc["propagation"]["nodes"]) > 0
        assert counts["edges"] == len(doc["propagation"]["edges"]) > 0
        assert counts["timeline"] == len(doc["timeline"]["events"]) + len(doc["timeline"]["infections"])
        assert page.evaluate("() => document.querySelectorAll('#wh-graph canvas, #wh-timeline canvas').length") >= 2
        assert seen["requests"] == [path.as_uri()], seen["requests"]
        assert not seen["errors"], seen["errors"]
        assert not [c for c in seen["console"] if "Content Security Policy" in c], seen["console"]
        BUILD.mkdir(exist_ok=True)
        page.screenshot(path=str(BUILD / f"report-{lang}.png"), full_page=False)
        page.emulate_media(media="print")
        assert page.evaluate("() => getComputedStyle(document.querySelector('nav.toc')).display") == "none"
    finally:
        page.close()


def test_hostile_evidence_renders_as_text(browser: Any, tmp_path: Path) -> None:
    case_dir, _ = _case(tmp_path, hosts=8, lines=300, hostile=True)
    out = tmp_path / "report.html"
    with Case(case_dir) as case:
        inv = analyze(case)
        doc = build_report(case, inv, "en")
        out.write_text(render(doc, "html", "en"), encoding="utf-8")
    blob = json.dumps(doc, ensure_ascii=False)
    for p in (*PAYLOADS, "window.__xss=4", "onerror=window.__xss=5"):
        assert json.dumps(p, ensure_ascii=False)[1:-1] in blob, f"payload {p!r} did not reach the report"
    html = out.read_text(encoding="utf-8")
    assert "<script>window.__xss" not in html and "<img src=x" not in html
    page, seen = _open(browser, out)
    try:
        assert page.evaluate("() => window.__xss") is None
        assert not seen["dialogs"]
        assert page.title() == t("report.title", "en")
        assert page.evaluate("() => document.querySelectorAll('img').length") == 0
        assert page.evaluate("() => document.scripts.length") == 4
        assert page.evaluate("() => document.querySelectorAll('[onerror]').length") == 0
        page.evaluate("() => document.querySelectorAll('details').forEach((d) => { d.open = true; })")
        text = page.inner_text("body")
        for p in PAYLOADS:
            assert p in text, p
        assert "evil<script>window.__xss=4</script>" in text
        assert page.evaluate("() => document.body.textContent.includes('x\\u2028y')")  # the line separator too
        assert seen["requests"] == [out.as_uri()]
        # The chart data round-trips the strings exactly (U+2028 included).
        graph_json = page.evaluate("() => document.getElementById('wh-data').textContent")
        assert "<" not in graph_json
    finally:
        page.close()
