"""Detections over Windows event logs (the `events` table), feeding the one Finding type.

Event times are written by the host's event log service, not by the malware: every finding
here carries the event time as `first_seen`, the trustworthy anchor of the timeline. Identical
events on one host make one finding (first and last time, `count`, the first few as evidence).

- 7045 / 4697 service installs: family service names (knowledge base), images in worm or
  suspicious folders, `%COMSPEC%` / encoded PowerShell services, random-looking names.
- Sysmon 1 / Security 4688: system binary names outside their folders, miner command lines.
- Sysmon 3: one image connecting out to 445 on many addresses (worm scanner).
- Sysmon 19/20/21 and WMI-Activity 5861: permanent WMI subscriptions, except the built-in
  `SCM Event Log Filter` -> `SCM Event Log Consumer` binding.
- 4624 logon type 3 followed by 5140/5145 on ADMIN$ or IPC$\\svcctl from the same address:
  remote service execution (PsExec style, and the worms that copy themselves the same way).
- Defender 1116/1117.
- Sigma rules (shipped in knowledge/sigma, plus the folders given with `--sigma`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from wormhunt.analyze.persistence import _Rules
from wormhunt.intel.families import family_of_name, normalize_path
from wormhunt.knowledge import load
from wormhunt.model import EvidenceRef, Finding
from wormhunt.store import Case

SYSMON = "Microsoft-Windows-Sysmon/Operational"
WMI_ACTIVITY = "Microsoft-Windows-WMI-Activity/Operational"
DEFENDER = "Microsoft-Windows-Windows Defender/Operational"
# Distinct 445 destinations from one image within a host's log that make a scanner.
FANOUT_MIN = 10
# A network logon and the share access it led to: the same source address within this window.
REMOTE_EXEC_WINDOW = timedelta(minutes=10)
# Services that remote execution tools install on the target (PsExec, PAExec, RemCom, CSExec).
REMOTE_TOOLS = frozenset({"PSEXESVC", "REMCOMSVC", "CSEXECSVC", "PAEXESVC"})
BUILTIN_WMI = ("scm event log filter", "scm event log consumer")

# Folders given with `--sigma` (set by the CLI before `analyze`); the shipped rules always run.
SIGMA_DIRS: list[Path] = []


# Identical events on one host (the same service installed again after each clean-up, the same
# command line every hour) make one finding: first and last time, how many, the first few as
# evidence. `_GROUPED` is the select list every grouped detector query ends with.
EVIDENCE_LIMIT = 5
_GROUPED = f"""count(*) AS n, min(ts) AS ts, max(ts) AS last,
    min_by({{'evidence_id': evidence_id, 'line': line}}, {{'ts': ts, 'line': line}}, {EVIDENCE_LIMIT}) AS ev"""


def _ref(r: dict[str, Any]) -> list[EvidenceRef]:
    if "ev" in r:
        return [EvidenceRef("events", int(e["evidence_id"]), int(e["line"])) for e in r["ev"]]
    return [EvidenceRef("events", int(r["evidence_id"]), int(r["line"]))]


def _f(rule: str, r: dict[str, Any], sev: str, attack: str, title: str, **params: Any) -> Finding:
    if r.get("n", 1) > 1:
        params["count"] = r["n"]
    last = r.get("last") or r["ts"]
    return Finding(rule, r["host"] or "unknown-host", sev, attack, title, params, r["ts"], last, _ref(r))


def unquote(value: str | None) -> str:
    """Sysmon 19-21 values: ` "name"` with MOF escapes -> `name`."""
    if not value:
        return ""
    v = value.strip()
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        v = v[1:-1]
    return v.replace('\\"', '"').replace("\\\\", "\\")


_VOWELS = set("aeiou")


def random_looking(name: str) -> bool:
    """A service name that looks generated: long runs without vowels, mixed digits, or high
    character entropy over a word-less 8+ character name."""
    n = name.strip()
    if len(n) < 6 or not n.replace("-", "").replace("_", "").isalnum():
        return False
    low = n.lower()
    if re.fullmatch(r"[a-z]{8,}", low) is None and re.fullmatch(r"[a-z0-9]{8,}", low) is None:
        return False
    digits = sum(c.isdigit() for c in low)
    vowels = sum(c in _VOWELS for c in low)
    counts = Counter(low)
    entropy = -sum(c / len(low) * math.log2(c / len(low)) for c in counts.values())
    if digits >= 2 and len(low) >= 8 and not low.endswith(tuple("0123456789")):
        return True
    if vowels / len(low) < 0.15 and len(low) >= 6:
        return True
    return len(low) >= 12 and entropy > 3.5 and vowels / len(low) < 0.25


_COMSPEC = re.compile(r"%comspec%|\bcmd(\.exe)?\s+/[qc]\b", re.IGNORECASE)
_ENC_PS = re.compile(
    r"(powershell|pwsh)(\.exe)?\b.*\s-(e|en|enc|enco|encodedcommand)\s+[A-Za-z0-9+/=]{16,}"
    r"|frombase64string|iex\s*\(|invoke-expression",
    re.IGNORECASE,
)


def _has_events(case: Case) -> bool:
    try:
        return bool(case.con.execute("SELECT 1 FROM events LIMIT 1").fetchone())
    except Exception:
        return False


# What a detector concludes from one distinct set of values: (rule, severity, ATT&CK, title,
# params) per finding. A log repeats the same service install or command line on many hosts
# and days; each distinct one is judged once and each row gets its own Finding.
_Verdicts = list[tuple[str, str, str, str, dict[str, Any]]]


def _emit(out: list[Finding], r: dict[str, Any], verdicts: _Verdicts, **extra: Any) -> None:
    for rule, sev, attack, title, params in verdicts:
        out.append(_f(rule, r, sev, attack, title, **params, **extra))


def _service_verdicts(name: str, image: str, event_id: int, rules: _Rules) -> _Verdicts:
    got: _Verdicts = []
    params = {"name": name, "image": image, "event_id": event_id}
    fam = family_of_name("service_name", name)
    if fam:
        got.append(
            (
                "events.service_install_family",
                "critical",
                "T1543.003",
                "finding.ev_service_family",
                {"family": fam.names["en"], **params},
            )
        )
    text = normalize_path(image)
    if m := next((m for p in rules.suspicious if (m := p.search(text))), None):
        got.append(
            (
                "events.service_install_folder",
                "high",
                "T1543.003",
                "finding.ev_service_folder",
                {"folder": m.group(0).strip("\\"), **params},
            )
        )
    if _ENC_PS.search(image) or any(p.search(image) for p in rules.tricks):
        got.append(("events.service_install_powershell", "high", "T1569.002", "finding.ev_service_ps", params))
    elif _COMSPEC.search(image):
        got.append(("events.service_install_comspec", "high", "T1569.002", "finding.ev_service_cmd", params))
    if name.upper() in REMOTE_TOOLS or name.upper().startswith("PAEXEC"):
        got.append(("events.service_install_remote_tool", "medium", "T1569.002", "finding.ev_service_tool", params))
    bare = image.strip().strip('"').split(" ", 1)[0]
    if bare and "\\" not in bare and "%" not in bare and not _COMSPEC.search(image):
        got.append(("events.service_install_no_path", "medium", "T1543.003", "finding.ev_service_bare", params))
    if not fam and random_looking(name):
        got.append(("events.service_install_random", "medium", "T1543.003", "finding.ev_service_random", params))
    return got


def service_installs(case: Case, rules: _Rules) -> list[Finding]:
    out: list[Finding] = []
    rows = case.query(
        f"""SELECT host, event_id, coalesce(data['ServiceName'], '') AS name,
                  coalesce(data['ImagePath'], data['ServiceFileName'], '') AS image, {_GROUPED}
           FROM events WHERE (event_id = 7045 AND channel = 'System') OR (event_id = 4697 AND channel = 'Security')
           GROUP BY ALL ORDER BY host, ts, name"""
    )
    seen: dict[tuple[str, str, int], _Verdicts] = {}
    for r in rows:
        key = (r["name"], r["image"], r["event_id"])
        verdicts = seen.get(key)
        if verdicts is None:
            verdicts = seen[key] = _service_verdicts(*key, rules)
        _emit(out, r, verdicts)
    return out


def _process_verdicts(
    shown: str, cmd: str, rules: _Rules, folders: dict[str, set[str]], worm: list[tuple[str, dict[str, Any]]]
) -> _Verdicts:
    got: _Verdicts = []
    image = normalize_path(shown)
    folder, _, base = image.rpartition("\\")
    allowed = folders.get(base)
    if allowed is not None and folder and folder not in allowed:
        fam = next((w for root, w in worm if folder == root or folder.startswith(root + "\\")), None)
        known = bool(fam and fam["family"])
        got.append(
            (
                "events.masquerade",
                "critical" if known else "high",
                "T1036.005",
                "finding.masquerade_worm" if known else "finding.masquerade",
                {
                    "name": base,
                    "folder": shown.rsplit("\\", 1)[0],
                    "path": shown,
                    "family": fam["family"] if known else "",
                },
            )
        )
    if cmd and any(p.search(cmd) for p in rules.miner):
        got.append(("events.miner_process", "high", "T1496", "finding.miner_process", {"name": base, "command": cmd}))
    return got


def processes(case: Case, rules: _Rules) -> list[Finding]:
    kb = load("system_binaries")
    folders = {k.lower(): {normalize_path(f).rstrip("\\") for f in v["folders"]} for k, v in kb["binaries"].items()}
    worm = [(normalize_path(w["path"]).rstrip("\\"), w) for w in kb["worm_folders"]]
    out: list[Finding] = []
    rows = case.query(
        f"""SELECT host, event_id, coalesce(data['Image'], data['NewProcessName'], '') AS image,
                  coalesce(data['CommandLine'], '') AS cmd,
                  min_by(coalesce(data['ProcessId'], data['NewProcessId']), ts) AS pid, {_GROUPED}
           FROM events WHERE (event_id = 1 AND channel = '{SYSMON}') OR (event_id = 4688 AND channel = 'Security')
           GROUP BY ALL ORDER BY host, ts, image"""
    )
    seen: dict[tuple[str, str], _Verdicts] = {}
    for r in rows:
        key = (r["image"], r["cmd"])
        verdicts = seen.get(key)
        if verdicts is None:
            verdicts = seen[key] = _process_verdicts(*key, rules, folders, worm)
        _emit(out, r, verdicts, pid=r["pid"])
    return out


def smb_fanout(case: Case) -> list[Finding]:
    rows = case.query(
        f"""SELECT host, lower(data['Image']) AS image, any_value(data['Image']) AS shown,
                  count(DISTINCT data['DestinationIp']) AS targets, min(ts) AS ts, max(ts) AS last,
                  min_by(evidence_id, ts) AS evidence_id, min_by(line, ts) AS line
           FROM events
           WHERE event_id = 3 AND channel = '{SYSMON}' AND data['DestinationPort'] = '445'
             AND lower(coalesce(data['Initiated'], 'true')) = 'true' AND data['Image'] IS NOT NULL
             AND data['Image'] <> 'System'
           GROUP BY host, lower(data['Image']) HAVING count(DISTINCT data['DestinationIp']) >= {FANOUT_MIN}
           ORDER BY host, image"""
    )
    out = []
    for r in rows:
        out.append(
            _f("events.smb_fanout", r, "high", "T1210", "finding.ev_smb_fanout", image=r["shown"], count=r["targets"])
        )
    return out


def wmi_subscriptions(case: Case) -> list[Finding]:
    out: list[Finding] = []
    rows = case.query(
        f"""SELECT host, event_id, data['Operation'] AS op, data['Name'] AS name,
                  data['Query'] AS query, data['Destination'] AS dest, data['Type'] AS type,
                  data['Consumer'] AS consumer, data['Filter'] AS filter, {_GROUPED}
           FROM events WHERE channel = '{SYSMON}' AND event_id IN (19, 20, 21)
           GROUP BY ALL ORDER BY host, ts, event_id"""
    )
    for r in rows:
        if (r["op"] or "").strip().lower() == "deleted":
            continue
        if r["event_id"] == 21:
            consumer, filt = unquote(r["consumer"]), unquote(r["filter"])
            cname = _quoted_name(consumer)
            fname = _quoted_name(filt)
            if (fname.lower(), cname.lower()) == BUILTIN_WMI:
                continue
            out.append(
                _f("events.wmi_binding", r, "high", "T1546.003", "finding.ev_wmi_binding", filter=fname, consumer=cname)
            )
            continue
        name = unquote(r["name"])
        if name.lower() in BUILTIN_WMI:
            continue
        if r["event_id"] == 19:
            out.append(
                _f(
                    "events.wmi_filter",
                    r,
                    "high",
                    "T1546.003",
                    "finding.ev_wmi_filter",
                    name=name,
                    query=unquote(r["query"]),
                )
            )
        else:
            out.append(
                _f(
                    "events.wmi_consumer",
                    r,
                    "high",
                    "T1546.003",
                    "finding.ev_wmi_consumer",
                    name=name,
                    type=r["type"] or "",
                    command=unquote(r["dest"]),
                )
            )
    for r in case.query(
        f"""SELECT host, data['ESS'] AS ess, data['CONSUMER'] AS consumer, data['PossibleCause'] AS cause, {_GROUPED}
           FROM events WHERE channel = '{WMI_ACTIVITY}' AND event_id = 5861
           GROUP BY ALL ORDER BY host, ts, ess"""
    ):
        fname = (r["ess"] or "").strip()
        cname = _quoted_name(r["consumer"] or "")
        if (fname.lower(), cname.lower()) == BUILTIN_WMI:
            continue
        m = re.search(r'CommandLineTemplate\s*=\s*"((?:[^"\\]|\\.)*)"', r["cause"] or "")
        out.append(
            _f(
                "events.wmi_binding",
                r,
                "high",
                "T1546.003",
                "finding.ev_wmi_binding",
                filter=fname,
                consumer=cname,
                command=m.group(1).replace('\\"', '"').replace("\\\\", "\\") if m else "",
            )
        )
    return out


def _quoted_name(text: str) -> str:
    """`CommandLineEventConsumer.Name="X"` / `NTEventLogEventConsumer="X"` / a bare name -> X."""
    m = re.search(r'"([^"]*)"\s*$', text)
    return m.group(1) if m else text.strip()


def remote_exec(case: Case) -> list[Finding]:
    """Security 4624 type 3 then 5140/5145 on ADMIN$ or IPC$\\svcctl from the same address."""
    rows = case.query(
        """WITH logons AS (
             SELECT host, ts, data['IpAddress'] AS ip, data['TargetUserName'] AS account
             FROM events WHERE channel = 'Security' AND event_id = 4624 AND trim(data['LogonType']) = '3'),
           shares AS (
             SELECT host, ts, evidence_id, line, event_id, data['IpAddress'] AS ip, data['ShareName'] AS share,
                    coalesce(data['RelativeTargetName'], '') AS target
             FROM events WHERE channel = 'Security' AND event_id IN (5140, 5145)
               AND (upper(data['ShareName']) LIKE '%\\ADMIN$'
                    OR (upper(data['ShareName']) LIKE '%\\IPC$' AND lower(data['RelativeTargetName']) = 'svcctl')))
           SELECT s.host, s.ip, min(s.ts) AS ts, max(s.ts) AS last, any_value(l.account) AS account,
                  list(DISTINCT s.share || CASE WHEN s.target <> '' THEN '\\' || s.target ELSE '' END) AS targets,
                  min_by(s.evidence_id, s.ts) AS evidence_id, min_by(s.line, s.ts) AS line
           FROM shares s JOIN logons l ON l.host = s.host AND l.ip = s.ip
                AND s.ts BETWEEN l.ts AND l.ts + INTERVAL 10 MINUTE
           WHERE s.ip NOT IN ('-', '127.0.0.1', '::1')
           GROUP BY s.host, s.ip ORDER BY s.host, ts"""
    )
    out = []
    for r in rows:
        f = _f(
            "events.remote_service_exec",
            r,
            "high",
            "T1021.002",
            "finding.ev_remote_exec",
            source=r["ip"],
            account=r["account"] or "",
            shares=", ".join(sorted(r["targets"])),
        )
        f.ip = None
        out.append(f)
    return out


def defender(case: Case) -> list[Finding]:
    rows = case.query(
        f"""SELECT host, event_id, data['Threat Name'] AS threat, data['Path'] AS path,
                  data['Action Name'] AS action, data['Severity Name'] AS sev, {_GROUPED}
           FROM events WHERE channel = '{DEFENDER}' AND event_id IN (1116, 1117)
           GROUP BY ALL ORDER BY host, ts, event_id"""
    )
    return [
        _f(
            "events.defender",
            r,
            "high" if (r["sev"] or "").lower() in ("high", "severe") else "medium",
            "T1204",
            "finding.ev_defender",
            event_id=r["event_id"],
            threat=r["threat"] or "",
            path=r["path"] or "",
            action=r["action"] or "",
        )
        for r in rows
    ]


def sigma_findings(case: Case) -> list[Finding]:
    from wormhunt.sigma import builtin_rule_dir, load_rules, run_rules

    rules, _problems = load_rules([builtin_rule_dir(), *SIGMA_DIRS])
    return run_rules(case, rules)


def findings(case: Case) -> list[Finding]:
    if not _has_events(case):
        return []
    rules = _Rules.load()
    return (
        service_installs(case, rules)
        + processes(case, rules)
        + smb_fanout(case)
        + wmi_subscriptions(case)
        + remote_exec(case)
        + defender(case)
        + sigma_findings(case)
    )
