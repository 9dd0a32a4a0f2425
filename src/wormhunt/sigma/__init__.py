"""Sigma rules over the `events` table: pySigma parses the rules, this module turns the parsed
condition trees into DuckDB SQL (a small backend of our own) and reports matches as findings.

SQL shape (per rule): the logsource picks the channel and event ids (and the field names:
a `process_creation` rule runs on Sysmon 1 with its own names and on Security 4688 with
`Image` read from `NewProcessName`); each field is `data['Name']` of the EventData map, except
the promoted columns (`EventID`, `Channel`, `Provider_Name`, `Computer`). Strings match with
`ILIKE` (Sigma strings are case-insensitive; DuckDB `LIKE` is not), regular expressions with
`regexp_matches`, numbers as text (EventData values are text). A rule this backend cannot
express (field references, CIDR, aggregations) is reported, not guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import SigmaBool, SigmaNull, SigmaNumber, SigmaRegularExpression, SigmaString, SpecialChars

from wormhunt.model import EvidenceRef, Finding

SYSMON = "Microsoft-Windows-Sysmon/Operational"
# Promoted columns of the events table, by the Sigma/Windows field names that mean them.
COLUMNS = {
    "EventID": "event_id",
    "Channel": "channel",
    "Provider_Name": "provider",
    "Computer": "computer",
    "ComputerName": "computer",
    "EventRecordID": "record_id",
}
# Security 4688 names for the Sysmon process_creation fields (Sigma's windows-audit mapping).
SECURITY_4688 = {
    "Image": "NewProcessName",
    "ParentImage": "ParentProcessName",
    "ProcessId": "NewProcessId",
    "ParentProcessId": "ProcessId",
    "User": "SubjectUserName",
    "IntegrityLevel": "MandatoryLabel",
}
SYSMON_CATEGORIES = {
    "process_creation": [1],
    "network_connection": [3],
    "process_termination": [5],
    "driver_load": [6],
    "image_load": [7],
    "create_remote_thread": [8],
    "raw_access_thread": [9],
    "process_access": [10],
    "file_event": [11],
    "registry_add": [12],
    "registry_delete": [12],
    "registry_set": [13],
    "registry_rename": [14],
    "registry_event": [12, 13, 14],
    "create_stream_hash": [15],
    "pipe_created": [17, 18],
    "wmi_event": [19, 20, 21],
    "dns_query": [22],
    "file_delete": [23, 26],
    "clipboard_capture": [24],
    "process_tampering": [25],
}
SERVICES = {
    "system": "System",
    "security": "Security",
    "sysmon": SYSMON,
    "application": "Application",
    "wmi": "Microsoft-Windows-WMI-Activity/Operational",
    "powershell": "Microsoft-Windows-PowerShell/Operational",
    "windefend": "Microsoft-Windows-Windows Defender/Operational",
    "taskscheduler": "Microsoft-Windows-TaskScheduler/Operational",
}
LEVELS = {"informational": "info", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}


class Unsupported(Exception):
    """A rule feature this backend does not translate."""


def builtin_rule_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "knowledge" / "sigma"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _field_sql(name: str, mapping: dict[str, str]) -> str:
    if name in COLUMNS:
        return f'"{COLUMNS[name]}"'
    return f'"data"[{_lit(mapping.get(name, name))}]'


def _pattern(s: SigmaString, many: str, one: str, literal: Any) -> str:
    """A Sigma string with its wildcards as `many`/`one` and its text through `literal`."""
    out = []
    for part in s.s:
        if part == SpecialChars.WILDCARD_MULTI:
            out.append(many)
        elif part == SpecialChars.WILDCARD_SINGLE:
            out.append(one)
        elif isinstance(part, str):
            out.append(literal(part))
        else:
            raise Unsupported(f"placeholder {part}")
    return "".join(out)


def _like(s: SigmaString) -> str:
    return _pattern(s, "%", "_", lambda t: t.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))


def _value_sql(col: str, value: Any, numeric_column: bool) -> str:
    if isinstance(value, SigmaString):
        if numeric_column and not value.contains_special() and str(value).isdigit():
            return f"{col} = {int(str(value))}"
        target = f"CAST({col} AS VARCHAR)" if numeric_column else col
        return f"{target} ILIKE {_lit(_like(value))} ESCAPE '\\'"
    if isinstance(value, SigmaNumber):
        return f"{col} = {int(value.number)}" if numeric_column else f"{col} = {_lit(str(value.number))}"
    if isinstance(value, SigmaRegularExpression):
        names = {getattr(f, "name", str(f)).upper() for f in value.flags}
        # Sigma flags -> DuckDB (RE2) options: case-sensitive unless `|i`; `|m` multi-line, `|s` dot-all
        opts = ("i" if "IGNORECASE" in names else "c") + ("m" if "MULTILINE" in names else "")
        opts += "s" if "DOTALL" in names else ""
        return f"regexp_matches(CAST({col} AS VARCHAR), {_lit(str(value.regexp))}, {_lit(opts)})"
    if isinstance(value, SigmaNull):
        return f"({col} IS NULL OR CAST({col} AS VARCHAR) = '')"
    if isinstance(value, SigmaBool):
        return f"lower(CAST({col} AS VARCHAR)) = {_lit('true' if value.boolean else 'false')}"
    raise Unsupported(type(value).__name__)


def to_sql(node: Any, mapping: dict[str, str]) -> str:
    """A pySigma condition tree (after identifiers are resolved) -> a DuckDB boolean expression."""
    if isinstance(node, ConditionAND):
        return "(" + " AND ".join(to_sql(a, mapping) for a in node.args) + ")"
    if isinstance(node, ConditionOR):
        return "(" + " OR ".join(_or_terms(node.args, mapping)) + ")"
    if isinstance(node, ConditionNOT):
        return "(NOT coalesce(" + to_sql(node.args[0], mapping) + ", false))"
    if isinstance(node, ConditionFieldEqualsValueExpression):
        col = _field_sql(node.field, mapping)
        return _value_sql(col, node.value, col in ('"event_id"', '"record_id"'))
    if isinstance(node, ConditionValueExpression):  # keyword: anywhere in the event's data
        return _value_sql("array_to_string(map_values(\"data\"), ' ')", _contains(node.value), False)
    raise Unsupported(type(node).__name__)


_RE2_SPECIAL = set("\\.^$|?*+()[]{}")


def _regex(s: SigmaString) -> str:
    """A Sigma string as an RE2 pattern matching what its ILIKE matches (the whole value)."""
    return _pattern(s, ".*", ".", lambda t: "".join("\\" + c if c in _RE2_SPECIAL else c for c in t))


# values one regex holds (with a few hundred RE2's automaton runs out of memory: 20x slower)
REGEX_ALTERNATIVES = 64


def _or_terms(args: list[Any], mapping: dict[str, str]) -> list[str]:
    """The SQL of each OR branch; string matches on one EventData field become one
    case-insensitive full-match regex per `REGEX_ALTERNATIVES` values. Each `data['Name']` is a
    lookup in the row's map, as dear as the match itself, and DuckDB repeats it per branch: a
    rule listing 16 service names did 16 lookups a row."""
    by_field: dict[str, list[SigmaString]] = {}
    out = []
    for a in args:
        if (
            isinstance(a, ConditionFieldEqualsValueExpression)
            and isinstance(a.value, SigmaString)
            and a.field not in COLUMNS
        ):
            by_field.setdefault(a.field, []).append(a.value)
        else:
            out.append(to_sql(a, mapping))
    for name, values in by_field.items():
        col = _field_sql(name, mapping)
        if len(values) == 1:
            out.append(_value_sql(col, values[0], False))
            continue
        for at in range(0, len(values), REGEX_ALTERNATIVES):
            pattern = "(?s)(?:" + "|".join(_regex(v) for v in values[at : at + REGEX_ALTERNATIVES]) + ")"
            # lower() on both sides, as ILIKE does (RE2's own case folding differs: ſ, ς, İ)
            out.append(f"regexp_full_match(lower({col}), lower({_lit(pattern)}), 'c')")
    return out


def _contains(value: Any) -> Any:
    if isinstance(value, SigmaString) and not value.contains_special():
        return SigmaString("*" + str(value).replace("*", "\\*").replace("?", "\\?") + "*")
    return value


def _sources(rule: SigmaRule) -> list[tuple[str, dict[str, str]]]:
    """(SQL filter on channel/event id, field mapping) per event source the logsource means."""
    ls = rule.logsource
    if ls.product not in (None, "windows"):
        raise Unsupported(f"product {ls.product}")
    if ls.category:
        if ls.category not in SYSMON_CATEGORIES:
            raise Unsupported(f"category {ls.category}")
        ids = ", ".join(str(i) for i in SYSMON_CATEGORIES[ls.category])
        out = [(f'"channel" = {_lit(SYSMON)} AND "event_id" IN ({ids})', {})]
        if ls.category == "process_creation":
            out.append(('"channel" = \'Security\' AND "event_id" = 4688', SECURITY_4688))
        return out
    if ls.service:
        if ls.service not in SERVICES:
            raise Unsupported(f"service {ls.service}")
        return [(f'"channel" = {_lit(SERVICES[ls.service])}', {})]
    return [("TRUE", {})]


@dataclass
class Rule:
    id: str
    title: str
    level: str
    attack: str
    sql: str
    path: str
    tags: list[str] = field(default_factory=list)


def compile_rule(rule: SigmaRule, path: str = "") -> Rule:
    if rule.errors:
        raise Unsupported("; ".join(str(e) for e in rule.errors))
    conds = []
    for cond in rule.detection.parsed_condition:
        tree = cond.parsed
        # No coalesce at the top (NULL already fails a WHERE; NOT coalesces its own operand):
        # around the whole condition it would stop DuckDB pushing the filter into the scan.
        parts = [f"({where} AND {to_sql(tree, mapping)})" for where, mapping in _sources(rule)]
        conds.append("(" + " OR ".join(parts) + ")")
    attack = next(
        (t.name.upper() for t in rule.tags if t.namespace == "attack" and re.fullmatch(r"t\d{4}(\.\d{3})?", t.name)),
        "",
    )
    level = LEVELS.get(rule.level.name.lower() if rule.level else "medium", "medium")
    return Rule(
        str(rule.id or rule.title), rule.title, level, attack, " OR ".join(conds), path, [str(t) for t in rule.tags]
    )


def load_rules(dirs: list[Path]) -> tuple[list[Rule], list[tuple[str, str]]]:
    """Every *.yml / *.yaml under the folders (or the files given) -> compiled rules, plus
    (path, reason) for each rule that could not be read or translated."""
    rules: list[Rule] = []
    problems: list[tuple[str, str]] = []
    files: list[Path] = []
    for d in dirs:
        d = Path(d)
        if d.is_file():
            files.append(d)
        elif d.is_dir():
            files.extend(sorted(p for p in d.rglob("*") if p.suffix.lower() in (".yml", ".yaml") and p.is_file()))
        else:
            problems.append((str(d), "no such file or folder"))
    for p in files:
        try:
            collection = SigmaCollection.from_yaml(p.read_text(encoding="utf-8"), collect_errors=True)
        except Exception as exc:
            problems.append((str(p), f"{type(exc).__name__}: {exc}"))
            continue
        for err in collection.errors:
            problems.append((str(p), str(err)))
        for rule in collection.rules:
            if not isinstance(rule, SigmaRule):
                problems.append((str(p), "correlation/filter rules are not supported"))
                continue
            try:
                rules.append(compile_rule(rule, str(p)))
            except Exception as exc:
                problems.append((str(p), f"{rule.title}: {type(exc).__name__}: {exc}"))
    return rules, problems


RULES_PER_SCAN = 64  # rules matched in one scan of the events (a query per rule rescans them)


def run_rules(case: Any, rules: list[Rule], limit: int = 5) -> list[Finding]:
    """One finding per rule and host: first/last matching event time, the first matches as
    evidence. Rules run in batches, one scan of the events each: a matching row is tagged with
    every rule of the batch it matches. A batch whose query fails runs rule by rule."""
    out: list[Finding] = []
    for at in range(0, len(rules), RULES_PER_SCAN):
        batch = rules[at : at + RULES_PER_SCAN]
        try:
            rows = _scan(case, batch, limit)
        except Exception:  # one rule DuckDB rejects: the others still run; that one raises as before
            rows = [r | {"rule": i} for i, rule in enumerate(batch) for r in _scan_one(case, rule, limit)]
        for r in rows:
            rule = batch[r["rule"]]
            out.append(
                Finding(
                    f"sigma:{rule.id}",
                    r["host"] or "unknown-host",
                    rule.level,
                    rule.attack,
                    "finding.sigma",
                    {"rule_id": rule.id, "title": rule.title, "level": rule.level, "count": r["n"]},
                    r["first"],
                    r["last"],
                    [EvidenceRef("events", int(e["evidence_id"]), int(e["line"])) for e in r["ev"]],
                )
            )
    return out


def _aggregates(limit: int) -> str:
    return f"""count(*) AS n, min(ts) AS first, max(ts) AS last,
               min_by({{'evidence_id': evidence_id, 'line': line}}, {{'ts': ts, 'line': line}}, {limit}) AS ev"""


def _scan(case: Any, rules: list[Rule], limit: int) -> list[dict[str, Any]]:
    conds = [f"({r.sql})" for r in rules]  # NULL is no match, in WHERE as in CASE
    tags = ", ".join(f"CASE WHEN {c} THEN {i} END" for i, c in enumerate(conds))
    return case.query(
        f"""SELECT rule, host, {_aggregates(limit)}
            FROM (SELECT host, ts, evidence_id, line, unnest(list_filter([{tags}], lambda x: x IS NOT NULL)) AS rule
                  FROM events WHERE {" OR ".join(conds)})
            GROUP BY rule, host ORDER BY rule, host"""
    )


def _scan_one(case: Any, rule: Rule, limit: int) -> list[dict[str, Any]]:
    return case.query(f"SELECT host, {_aggregates(limit)} FROM events WHERE {rule.sql} GROUP BY host ORDER BY host")
