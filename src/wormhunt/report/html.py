"""The HTML report: one self-contained file, offline, readable when printed.

- Templates are jinja2 with autoescaping on: every string from evidence is escaped.
- The data the charts need is embedded as JSON in a `<script type="application/json">`
  element, with `<`, `>`, `&`, U+2028 and U+2029 written as `\\uXXXX`, so no evidence string
  can close the element or start markup; the page's own script reads it with `JSON.parse`.
- ECharts (vendored from npm, Apache-2.0, `vendor/`) is inlined. Tooltips render as rich
  text on the canvas (`renderMode: 'richText'`), never as HTML.
- A Content-Security-Policy meta tag allows only the page's own two scripts (by sha256), inline
  styles and `data:` images, and nothing else: no remote load, no connection, no form target.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from functools import cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, FunctionLoader, StrictUndefined
from markupsafe import Markup

from wormhunt.i18n import t

_PKG = files("wormhunt.report")
_UNSAFE_IN_SCRIPT = re.compile("[<>&\u2028\u2029]")


def script_json(value: Any) -> str:
    """JSON that is safe inside a `<script>` element: no `<`, `>`, `&`, U+2028 or U+2029 raw."""
    text = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    return _UNSAFE_IN_SCRIPT.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


@cache
def _template_source(name: str) -> str:
    return _PKG.joinpath("templates", name).read_text(encoding="utf-8")


@cache
def echarts_js() -> str:
    """The vendored ECharts build (see vendor/README.md for its version and source)."""
    return _PKG.joinpath("vendor", "echarts.min.js").read_text(encoding="utf-8")


def _csp_hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"


@cache
def _env() -> Environment:
    env = Environment(
        loader=FunctionLoader(_template_source),
        autoescape=True,  # every template, whatever its name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def anchor(host: str, index: int) -> str:
    """An element id for a host (host names come from evidence: never used raw)."""
    return f"h{index}-" + re.sub(r"[^A-Za-z0-9_-]", "_", host)[:40]


def chart_data(doc: dict[str, Any], lang: str) -> dict[str, Any]:
    """What the page's script draws: the timeline and the propagation graph, and their labels."""
    labels = {
        k: t(f"report.chart.{k}", lang)
        for k in ("infected_at", "event", "status", "first_seen", "family", "edge", "patient_zero", "spreader")
    }
    labels.update({f"status.{s}": t(f"status.{s}", lang) for s in ("infected", "suspicious", "clean")})
    labels["status.unknown"] = t("report.status_unknown", lang)
    labels.update({f"sev.{s}": t(f"severity.{s}", lang) for s in ("critical", "high", "medium", "low", "info")})
    labels.update({f"edge.{k}": t(f"report.edge.{k}", lang) for k in ("exploit", "smb")})
    return {
        "lang": lang,
        "labels": labels,
        "timeline": doc["timeline"],
        "graph": {
            "nodes": doc["propagation"]["nodes"],
            "edges": [
                {k: e[k] for k in ("source", "target", "kinds", "first_seen")} for e in doc["propagation"]["edges"]
            ],
        },
    }


def render_html(doc: dict[str, Any], lang: str) -> str:
    """The report document as one self-contained HTML page."""
    env = _env()
    app_js = _template_source("report.js")
    lib_js = echarts_js()
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src {_csp_hash(lib_js)} {_csp_hash(app_js)}",
            "style-src 'unsafe-inline'",
            "img-src data:",
            "font-src 'none'",
            "connect-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )

    def tr(key: str, **params: Any) -> str:
        return t(key, lang, **params)

    anchors = {h["host"]: anchor(h["host"], i) for i, h in enumerate(doc["hosts"])}
    template = env.get_template("report.html.j2")
    return template.render(
        doc=doc,
        lang=lang,
        _=tr,
        anchors=anchors,
        csp=csp,
        data_json=Markup(script_json(chart_data(doc, lang))),
        stix_json=Markup(script_json(doc.get("stix") or {})),
        stix_pretty=json.dumps(doc.get("stix") or {}, ensure_ascii=False, indent=1),
        echarts=Markup(lib_js),
        app_js=Markup(app_js),
    )
