"""The Markdown report: the same document as the HTML one, as GitHub-flavoured Markdown.

Every string from evidence goes into a code span (`code`) or through `md_text`, so it
cannot become a link, an image, HTML or a table cell break in whatever renders the file.
"""

from __future__ import annotations

import json
import re
from typing import Any

from wormhunt.i18n import t

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md_text(value: Any) -> str:
    """Plain text: Markdown punctuation backslash-escaped, `<`/`&` as entities, one line."""
    s = " ".join(str("" if value is None else value).split())
    s = s.replace("&", "&amp;").replace("<", "&lt;")
    return _MD_SPECIAL.sub(r"\\\1", s)


def md_code(value: Any) -> str:
    """A code span that holds any text: a backtick fence longer than any run inside, one line,
    `|` escaped (a table cell would end there otherwise)."""
    s = " ".join(str("" if value is None else value).split())
    if not s:
        return ""
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    s = s.replace("|", "\\|")
    pad = " " if s.startswith("`") or s.endswith("`") or s.startswith(" ") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c if c else "-" for c in cells) + " |"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(head), "|" + "---|" * len(head), *(_row(r) for r in rows), ""]


def render_markdown(doc: dict[str, Any], lang: str) -> str:
    def tr(key: str, **params: Any) -> str:
        return t(key, lang, **params)

    ex = doc["executive"]
    out: list[str] = [f"# {md_text(tr('report.title'))}", ""]
    out += [
        md_text(tr("report.generated", at=doc["generated"])) + f" · {md_text(tr('report.case'))}: "
        f"{md_code(doc['case'])} · {md_text(tr('report.times_utc'))}",
        "",
    ]

    out += [f"## {md_text(tr('report.sec.summary'))}", ""]
    fams = "; ".join(
        f"**{md_text(f['name'])}** ({md_text(tr('report.exec.family_hosts', n=f['hosts']))})" for f in ex["families"]
    ) or md_text(tr("report.exec.no_family"))
    pz = (
        f"**{md_code(ex['patient_zero'])}** ({md_code(ex['patient_zero_ip'] or '-')})"
        if ex["patient_zero"]
        else md_text(tr("summary.patient_zero_none"))
    )
    state = (
        tr(
            "report.exec.state_infected",
            n=ex["infected"],
            vulnerable=ex["vulnerable"],
            forbidden=ex["av_forbidden_infected"],
        )
        if ex["infected"]
        else tr("report.exec.state_clean")
    )
    out += [
        f"- {md_text(tr('report.exec.infected', total=ex['hosts_total']))}: **{ex['infected']}**",
        f"- {md_text(tr('status.suspicious'))}: {ex['suspicious']}",
        f"- {md_text(tr('report.exec.spreading'))}: {ex['spreading']}",
        f"- {md_text(tr('report.exec.vulnerable'))}: {ex['vulnerable']}",
        f"- {md_text(tr('report.exec.what'))}: {fams}",
        f"- {md_text(tr('summary.patient_zero'))}: {pz}",
        f"- {md_text(tr('report.exec.first_infection'))}: {md_code(ex['first_infection'] or '-')}",
        f"- {md_text(tr('report.exec.last_activity'))}: {md_code(ex['last_activity'] or '-')}",
        f"- {md_text(tr('report.exec.state'))}: {md_text(state)}",
        "",
        f"> {md_text(tr('summary.patch_note'))}",
        "",
    ]

    out += [f"## {md_text(tr('report.sec.timeline'))}", ""]
    out += _table(
        [md_text(tr("report.col.time")), md_text(tr("summary.host"))],
        [[md_code(e["ts"]), md_code(e["host"])] for e in doc["timeline"]["infections"]],
    )

    prop = doc["propagation"]
    out += [
        f"## {md_text(tr('report.sec.graph'))}",
        "",
        md_text(tr("report.graph_hint", nodes=len(prop["nodes"]), edges=len(prop["edges"]))),
        "",
    ]
    out += _table(
        [md_text(tr(k)) for k in ("report.col.from", "report.col.to", "report.col.how", "report.col.time")],
        [
            [
                md_code(e["source"]),
                md_code(e["target"]),
                md_text(", ".join(tr(f"report.edge.{k}") for k in e["kinds"])),
                md_code(e["first_seen"] or "-"),
            ]
            for e in prop["edges"]
        ],
    )

    out += [f"## {md_text(tr('report.sec.hosts'))}", ""]
    rows = []
    for h in doc["hosts"]:
        av = (
            tr("summary.av_forbidden")
            if h.get("av_forbidden")
            else tr("report.av_yes")
            if h.get("av_installed")
            else tr("report.av_no")
            if h.get("av_installed") is False
            else "-"
        )
        rows.append(
            [
                md_code(h["host"]),
                md_code(h["ip"] or "-"),
                md_text(tr(f"status.{h['status']}")),
                md_text(h.get("family_name") or "-"),
                "-" if h["confidence"] is None else f"{h['confidence'] * 100:.0f}%",
                "<br>".join(md_text(f["title"]) for f in h["findings"][:3]),
                md_text(tr(f"audit.verdict.{h['patch']}")) if h.get("patch") else "-",
                md_text(av),
            ]
        )
    out += _table(
        [
            md_text(tr(k))
            for k in (
                "summary.host",
                "summary.ip",
                "summary.status",
                "report.col.family",
                "report.col.confidence",
                "report.col.key_findings",
                "report.col.patch",
                "summary.av",
            )
        ],
        rows,
    )

    out += [f"## {md_text(tr('report.sec.findings'))}", ""]
    for h in doc["hosts"]:
        if not h["findings"]:
            continue
        out += [f"### {md_text(h['host'])} ({md_text(tr('status.' + h['status']))})", ""]
        for f in h["findings"]:
            out.append(f"- **{md_text(tr('severity.' + f['severity']))}** {md_text(f['title'])} ({md_code(f['rule'])})")
            for e in f["evidence"]:
                text = e["text"] if e["text"] is not None else (e["digest"] or "")
                out.append(f"  - {md_code(e['file'] or e['kind'])}:{e['line']} sha256 {md_code(e['sha256'] or '-')}")
                out.append(f"    {md_code(text)}")
        out.append("")

    out += [f"## {md_text(tr('report.sec.plans'))}", "", md_text(tr("report.plans_intro")), ""]
    for h in doc["hosts"]:
        p = doc["plans"].get(h["host"])
        if not p:
            continue
        out += [f"### {md_text(h['host'])} · {md_text(h.get('family_name') or '-')}", ""]
        if p["conservative"]:
            out += [f"**{md_text(tr('summary.av_forbidden'))}**", ""]
        for w in p["warnings"]:
            out += [f"> {md_text(w)}", ""]
        for i, s in enumerate(p["steps"], 1):
            out.append(f"{i}. **{md_text(tr('report.action.' + s['action']))}** {md_code(s['target'])}")
        out.append("")

    audit = doc["audit"]
    out += [
        f"## {md_text(tr('audit.title'))}",
        "",
        md_text(tr("audit.summary", **audit["summary"])),
        "",
        f"> {md_text(audit['remediation'])}",
        "",
    ]
    out += _table(
        [md_text(tr(f"audit.col.{c}")) for c in ("host", "verdict", "os", "reason")],
        [
            [
                md_code(a["host"]),
                md_text(tr(f"audit.verdict.{a['verdict']}")),
                md_text(f"{a['os'] or '-'} {a['build'] or ''}"),
                md_text(" ".join([a["reason"], *a["notes"]])),
            ]
            for a in audit["hosts"]
        ],
    )

    out += [f"## {md_text(tr('report.sec.recommendations'))}", ""]
    for i, r in enumerate(doc["recommendations"], 1):
        hosts = ", ".join(md_code(h) for h in r["hosts"][:30])
        out.append(f"{i}. {md_text(r['text'])}" + (f" ({md_text(tr('report.rec_hosts'))}: {hosts})" if hosts else ""))
    out.append("")

    out += [f"## {md_text(tr('report.sec.appendix'))}", "", f"### {md_text(tr('report.indicators'))}", ""]
    out += _table(
        [md_text(tr(k)) for k in ("report.col.family", "report.col.type", "report.col.value", "report.col.source")],
        [
            [md_code(i["family"]), md_code(i["type"]), md_code(i["value"]), md_code(i["source"])]
            for i in doc["indicators"]
        ],
    )
    if doc.get("stix"):
        # A fenced block: a fence longer than any backtick run in the JSON.
        text = json.dumps(doc["stix"], ensure_ascii=False, indent=1)
        fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
        out += [
            f"<details><summary>{md_text(tr('report.stix', n=len(doc['stix'].get('objects', []))))}</summary>",
            "",
            f"{fence}json",
            text,
            fence,
            "",
            "</details>",
            "",
        ]
    out += [f"### {md_text(tr('report.manifest'))}", ""]
    out += _table(
        [
            "#",
            md_text(tr("report.col.file")),
            "sha256",
            md_text(tr("report.col.format")),
            md_text(tr("report.col.records")),
            md_text(tr("summary.status")),
        ],
        [
            [
                str(m["evidence_id"]),
                md_code(m["path"]),
                md_code(m["sha256"]),
                md_code(m["format"] or "-"),
                str(m["records"]),
                md_code(m["status"]),
            ]
            for m in doc["manifest"]
        ],
    )
    return "\n".join(out) + "\n"
