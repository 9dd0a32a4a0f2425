"""The report document: every fact the HTML, Markdown and JSON reports show, built once.

`build_report(case, inv, lang)` extends the investigation summary (`report.summary.build`)
with the executive summary, the MS17-010 audit, the remediation plan per host, the
propagation graph, the timeline, recommendations tied to what the case shows, the confirmed
indicators with their STIX 2.1 bundle, and the evidence manifest. The three renderers read
only this document, so they carry the same facts; `--format json` writes it as is.

Strings from evidence stay raw here: escaping is the renderers' job (HTML autoescape, the
JSON embedded in the page escaped for a script element, Markdown code spans).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from wormhunt.analyze import UNKNOWN_FAMILY, Investigation
from wormhunt.i18n import t
from wormhunt.report.summary import build as build_summary
from wormhunt.store import Case
from wormhunt.timeparse import iso

FORMAT = "wormhunt-report/1"
STATUS_ORDER = ("infected", "suspicious", "clean")
SMB_PORTS = (445, 139)
TIMELINE_MAX = 400  # events drawn on the timeline chart (the findings section lists them all)


def build_report(
    case: Case, inv: Investigation, lang: str, generated: datetime | None = None, with_plans: bool = True
) -> dict[str, Any]:
    """The whole report as one JSON-ready document."""
    doc = build_summary(case, inv, lang)
    doc["format"] = FORMAT
    doc["generated"] = iso((generated or datetime.now(UTC)).replace(tzinfo=None))
    names = _family_names(lang)
    for h in doc["hosts"]:
        h["family_name"] = _family_name(h["family"], names, lang)
    doc["audit"] = _audit(case, lang)
    by_audit = {a["host"].upper(): a for a in doc["audit"]["hosts"]}
    for h in doc["hosts"]:
        a = by_audit.get(h["host"].upper())
        h["patch"] = a["verdict"] if a else None
    doc["plans"] = _plans(case, inv, doc, lang) if with_plans else {}
    doc["propagation"] = propagation(case, inv, doc)
    doc["timeline"] = _timeline(doc)
    doc["executive"] = _executive(doc, names, lang)
    doc["recommendations"] = _recommendations(doc, lang)
    doc["indicators"], doc["stix"] = _indicators(case, inv, names)
    doc["manifest"] = [
        {
            k: e.get(k)
            for k in ("evidence_id", "path", "sha256", "size", "format", "host", "records", "skipped", "status")
        }
        for e in case.manifest()
    ]
    return doc


# ---------------------------------------------------------------------------------------------
# Families


def _family_names(lang: str) -> dict[str, str]:
    from wormhunt.intel.families import load_families

    return {f.id: f.name(lang) for f in load_families()}


def _family_name(family: str | None, names: dict[str, str], lang: str) -> str | None:
    if family is None:
        return None
    if family == UNKNOWN_FAMILY:
        return t("family.unknown", lang)
    return names.get(family, family)


# ---------------------------------------------------------------------------------------------
# MS17-010 audit


def _audit(case: Case, lang: str) -> dict[str, Any]:
    from wormhunt.analyze.patch import VERDICTS, audit_case

    def render(key: str, **params: Any) -> str:
        return t(key, lang, **params)

    audits = [a.to_json(render) for a in audit_case(case)]
    return {
        "summary": {"hosts": len(audits), **{v: sum(1 for a in audits if a["verdict"] == v) for v in VERDICTS}},
        "remediation": render("audit.remediation"),
        "hosts": audits,
    }


# ---------------------------------------------------------------------------------------------
# Remediation plans


def _plans(case: Case, inv: Investigation, doc: dict[str, Any], lang: str) -> dict[str, Any]:
    """The plan of every infected or suspicious host (respond.plan), or, when the plan engine
    cannot be used, the steps of the family playbook (`plans_from_playbook`)."""
    wanted = [h["host"] for h in doc["hosts"] if h["status"] != "clean"]
    if not wanted:
        return {}
    try:
        from wormhunt.respond.plan import build_plans

        plans = build_plans(case, inv, wanted, lang)
    except Exception as exc:  # the plan engine is optional for a report: fall back, say so
        return plans_from_playbook(doc, lang, reason=f"{type(exc).__name__}: {exc}")
    out = {}
    for name, p in plans.items():
        j = p.to_json()
        out[name] = {
            "source": "respond.plan",
            "host": name,
            "family": j["family"],
            "conservative": j["conservative"],
            "warnings": [t(w["key"], lang, **w.get("params", {})) for w in j["warnings"]],
            "steps": [
                {
                    "id": s["id"],
                    "action": s["action"],
                    "target": describe_target(s["target"]),
                    "why": [r["id"] for r in s["rationale"]],
                    "expected": s["expected"],
                    "rollback": s["rollback"],
                    "note": s["note"],
                }
                for s in j["steps"]
            ],
            "refused": [{"target": describe_target(r.get("target", {})), "why": r.get("why")} for r in j["refused"]],
            "review": [{"target": describe_target(r.get("target", {})), "why": r.get("why")} for r in j["review"]],
        }
    return out


def plans_from_playbook(doc: dict[str, Any], lang: str, reason: str = "") -> dict[str, Any]:
    """Hook: per-host steps from the best family's playbook (hosts[].families[].playbook),
    used when `respond.plan` is not available. Switch back by fixing the plan engine."""
    out = {}
    for h in doc["hosts"]:
        if h["status"] == "clean":
            continue
        fam = next((f for f in h["families"] if f["family"] == h["family"]), None)
        steps = [
            {"id": f"p{i:02d}", "action": s["action"], "target": ", ".join(s["targets"]), "why": [h["family"]],
             "expected": s["text"], "rollback": "", "note": ""}
            for i, s in enumerate(fam["playbook"] if fam else [], 1)
        ]  # fmt: skip
        out[h["host"]] = {
            "source": "playbook",
            "host": h["host"],
            "family": h["family"],
            "conservative": bool(h.get("av_forbidden")),
            "warnings": [reason] if reason else [],
            "steps": steps,
            "refused": [],
            "review": [],
        }
    return out


def describe_target(target: dict[str, Any]) -> str:
    """A plan step's target as one line: `service snmpstorsrv`, `file C:\\...`, `process 4932 (...)`."""
    kind = target.get("kind", "")
    if kind == "process":
        bits = [str(target.get("pid") or ""), target.get("name") or "", target.get("image") or ""]
        return "process " + " ".join(b for b in bits if b)
    if kind == "firewall":
        return f"firewall {target.get('name', '')} {'/'.join(str(p) for p in target.get('ports', []))}"
    if kind == "portproxy":
        return f"portproxy {target.get('listen_address')}:{target.get('listen_port')}"
    if kind == "registry":
        value = target.get("value")
        return f"registry {target.get('key', '')}" + (f" [{value}]" if value else "")
    if kind == "wmi":
        return f"wmi {target.get('namespace', '')} {target.get('role', '')} {target.get('name') or ''}".strip()
    main = target.get("path") or target.get("name") or ""
    return f"{kind} {main}".strip()


# ---------------------------------------------------------------------------------------------
# Propagation graph


def propagation(case: Case, inv: Investigation, doc: dict[str, Any]) -> dict[str, Any]:
    """Who infected whom, from the spread analysis (`analyze/spread.py`): an edge is the earliest
    contact by an already-infected host, shown by the victim's own events, an exploit alert or
    SMB flows (`event`, `exploit`, `smb`). Nodes: every infected or suspicious host, every
    ranked spreader, and every edge end."""
    host_by_ip: dict[str, str] = {}
    for h in doc["hosts"]:
        for ip in h.get("ips") or ([h["ip"]] if h.get("ip") else []):
            host_by_ip.setdefault(ip, h["host"])
    info = {h["host"]: h for h in doc["hosts"]}

    def node_id(ip: str) -> str:
        return host_by_ip.get(ip, ip)

    kind_of = {"alert": "exploit", "smb_flow": "smb"}
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    for e in (doc.get("spread") or {}).get("edges", []):
        kinds = [kind_of.get(x, "event" if x.startswith("event") else x) for x in e["evidence"]]
        edges[(e["src"], e["dst"])] = {
            "source": e["src"],
            "target": e["dst"],
            "kinds": kinds,
            "first_seen": e["ts"].replace(" ", "T") if e["ts"] else None,
            "evidence": [{"what": x} for x in e["evidence"]],
        }
    spreader_ips = [s["src"] for s in doc["spreaders"]]
    names = set()
    for h in doc["hosts"]:
        if h["status"] != "clean":
            names.add(h["host"])
    names |= {node_id(ip) for ip in spreader_ips}
    for a, b in edges:
        names |= {a, b}
    pz = (doc.get("patient_zero") or {}).get("host")
    nodes = []
    for n in sorted(names):
        h = info.get(n, {})
        nodes.append(
            {
                "id": n,
                "ip": h.get("ip") or (n if n not in info else None),
                "status": h.get("status", "unknown"),
                "family": h.get("family_name") or h.get("family"),
                "first_seen": h.get("first_seen"),
                "patient_zero": n == pz,
                "spreader": any(node_id(ip) == n for ip in spreader_ips),
            }
        )
    return {"nodes": nodes, "edges": sorted(edges.values(), key=lambda e: (e["first_seen"] or "", e["source"]))}


def _timeline(doc: dict[str, Any]) -> dict[str, Any]:
    events = []
    for h in doc["hosts"]:
        if h["status"] == "clean":
            continue
        for f in h["findings"]:
            if f["first_seen"]:
                events.append(
                    {"ts": f["first_seen"], "host": h["host"], "rule": f["rule"], "severity": f["severity"],
                     "title": f["title"]}
                )  # fmt: skip
    events.sort(key=lambda e: (e["ts"], e["host"], e["rule"]))
    infections = sorted(
        (
            {"ts": h["first_seen"], "host": h["host"]}
            for h in doc["hosts"]
            if h["status"] == "infected" and h["first_seen"]
        ),
        key=lambda e: (e["ts"], e["host"]),
    )
    return {"events": events[:TIMELINE_MAX], "events_total": len(events), "infections": infections}


def _executive(doc: dict[str, Any], names: dict[str, str], lang: str) -> dict[str, Any]:
    infected = [h for h in doc["hosts"] if h["status"] == "infected"]
    fams: dict[str, int] = defaultdict(int)
    for h in infected:
        if h["family"]:
            fams[h["family"]] += 1
    families = [
        {"family": f, "name": _family_name(f, names, lang), "hosts": n}
        for f, n in sorted(fams.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    times = [h["first_seen"] for h in infected if h["first_seen"]]
    last = [
        f["last_seen"] or f["first_seen"] for h in infected for f in h["findings"] if f["last_seen"] or f["first_seen"]
    ]
    vulnerable = doc["audit"]["summary"].get("vulnerable", 0)
    return {
        "hosts_total": doc["summary"]["hosts"],
        "infected": doc["summary"]["infected"],
        "suspicious": doc["summary"]["suspicious"],
        "clean": doc["summary"]["clean"],
        "families": families,
        "patient_zero": (doc.get("patient_zero") or {}).get("host"),
        "patient_zero_ip": (doc.get("patient_zero") or {}).get("ip"),
        "first_infection": min(times) if times else None,
        "last_activity": max(last) if last else None,
        "spreading": sum(1 for s in doc["spreaders"]),
        "vulnerable": vulnerable,
        "av_forbidden_infected": sum(1 for h in infected if h.get("av_forbidden")),
    }


def _recommendations(doc: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    """What to change, each tied to the hosts of this case that call for it."""
    hosts = doc["hosts"]
    infected = [h["host"] for h in hosts if h["status"] == "infected"]
    out: list[dict[str, Any]] = []

    def rec(key: str, affected: list[str], **params: Any) -> None:
        out.append({"key": key, "text": t(f"report.rec.{key}", lang, n=len(affected), **params), "hosts": affected})

    if infected:
        rec("clean_first", infected)
    vulnerable = [a["host"] for a in doc["audit"]["hosts"] if a["verdict"] == "vulnerable"]
    unknown = [a["host"] for a in doc["audit"]["hosts"] if a["verdict"] == "unknown"]
    if vulnerable:
        rec("patch", vulnerable)
    if unknown:
        rec("patch_unknown", unknown)
    spreaders = [s.get("host") or s["src"] for s in doc["spreaders"]]
    alerts = sum(s.get("exploit_alerts", 0) for s in doc["spreaders"])
    if spreaders:
        rec("detect", spreaders, alerts=alerts)
        rec("segment", spreaders)
    no_av = [h["host"] for h in hosts if h.get("av_installed") is False and not h.get("av_forbidden")]
    forbidden = [h["host"] for h in hosts if h.get("av_forbidden")]
    if no_av:
        rec("av", no_av)
    if forbidden:
        rec("av_forbidden", forbidden)
    smb1 = [a["host"] for a in doc["audit"]["hosts"] if a.get("smb1") == "enabled"]
    if smb1:
        rec("smb1", smb1)
    rec("monitor", infected)
    return out


# ---------------------------------------------------------------------------------------------
# Indicators


def _indicators(case: Case, inv: Investigation, names: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from wormhunt.intel.confirmed import confirmed_indicators
    from wormhunt.intel.stix import export_bundle

    indicators = confirmed_indicators(case, inv.families.values())
    rows = [
        {"family": i.family, "id": i.id, "type": i.type, "value": i.value, "confidence": i.confidence,
         "source": i.source}
        for i in indicators
    ]  # fmt: skip
    bundle = export_bundle(indicators, names) if indicators else {}
    return rows, bundle


# ---------------------------------------------------------------------------------------------
# Rendering and writing

FORMATS = ("html", "md", "json")
SUFFIX = {"html": ".html", "md": ".md", "json": ".json"}


def format_for(path: Any) -> str:
    """The report format a file name asks for: .md -> md, .json -> json, anything else html."""
    suffix = str(path).lower().rsplit(".", 1)[-1]
    return {"md": "md", "markdown": "md", "json": "json"}.get(suffix, "html")


def render(doc: dict[str, Any], fmt: str, lang: str) -> str:
    """The document as HTML, Markdown or JSON text."""
    if fmt == "html":
        from wormhunt.report.html import render_html

        return render_html(doc, lang)
    if fmt == "md":
        from wormhunt.report.markdown import render_markdown

        return render_markdown(doc, lang)
    if fmt == "json":
        import json

        return json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n"
    raise ValueError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")


def write_report(case: Case, inv: Investigation, out: Any, fmt: str = "html", lang: str = "en") -> Any:
    """Build the report of an analysed case and write it to `out` (atomically); returns the path."""
    from pathlib import Path

    from wormhunt.report import write_output

    return write_output(Path(out), render(build_report(case, inv, lang), fmt, lang))


def report_case(case_dir: Any, out: Any, fmt: str = "html", lang: str = "en") -> Any:
    """Analyse the case folder `case_dir` and write its report to `out`."""
    from wormhunt.analyze import analyze

    with Case(case_dir) as case:
        return write_report(case, analyze(case), out, fmt, lang)
