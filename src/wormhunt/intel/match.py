"""Indicator matching over a case: which family is on which host, how sure, and why.

Every host record that an indicator type can describe becomes an observation (type group,
value, the record it came from). Exact indicators are looked up in a dictionary, directory
indicators by walking the observed path's parent folders, glob and regex indicators are
tried against the observations of their group. A family's confidence on a host is the
noisy-OR of the weights of its indicators that matched, 1 − Π(1 − w): one strong indicator
is enough to be fairly sure, several weak ones add up, and none can reach 1 alone.
"""

from __future__ import annotations

import ntpath
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from wormhunt.intel.families import PATH_TYPES, Family, Indicator, normalize_path
from wormhunt.model import EvidenceRef, Finding
from wormhunt.store import Case

# Observation groups an indicator type is compared against. `contains` types match when the
# indicator's value occurs inside a longer text (a domain inside a command line).
GROUPS: dict[str, tuple[str, ...]] = {
    "directory": ("path",),
    "file_path": ("path",),
    "file_name": ("file_name",),
    "process_path": ("process_path",),
    "process_name": ("process_name",),
    "cmdline": ("cmdline",),
    "service_name": ("service_name",),
    "service_dll": ("service_dll",),
    "service_image": ("service_image",),
    "task_name": ("task_name",),
    "task_command": ("task_command",),
    "wmi_name": ("wmi_name",),
    "wmi_class": ("wmi_class",),
    "wmi_query": ("wmi_query",),
    "wmi_command": ("wmi_command",),
    "registry": ("registry",),
    "autorun": ("autorun",),
    "domain": ("cmdline", "wmi_command", "task_command"),
    "url": ("cmdline", "wmi_command", "task_command"),
    "pool": ("cmdline", "wmi_command", "task_command", "remote"),
    "ip": ("remote_ip",),
    "port": ("remote_port",),
    "portproxy_port": ("portproxy_port",),
    "md5": ("md5",),
    "sha1": ("sha1",),
    "sha256": ("sha256",),
    "user": ("user",),
    "signature": ("signature",),
    "mutex": ("mutex",),
    "firewall_rule": ("firewall_rule",),
}
CONTAINS = frozenset({"domain", "url", "pool"})
# Groups whose values are Windows paths: normalised once when observed.
PATH_GROUPS = frozenset({"path", "process_path", "service_dll", "service_image"})
FAMILY_MIN = 0.5  # below this a family is "indicators seen", not a verdict
# Indicators this weak (port 445, a generic pool port) are shared by many families: alone
# they name none, so a family is only listed once something stronger of its own matched.
GENERIC_WEIGHT = 0.3
MAX_EVIDENCE = 20  # records cited per matched indicator


class Observation(NamedTuple):
    """One value a host record shows (a tuple: a fleet has about a thousand per host)."""

    group: str
    value: str
    kind: str
    evidence_id: int
    line: int

    @property
    def ref(self) -> EvidenceRef:
        return EvidenceRef(self.kind, self.evidence_id, self.line)


@dataclass
class Hit:
    indicator: Indicator
    observed: str
    evidence: list[EvidenceRef] = field(default_factory=list)


@dataclass
class FamilyMatch:
    family: Family
    confidence: float
    hits: list[Hit]
    missing: list[Indicator]  # expected, and the host's evidence could have shown them
    not_collected: list[Indicator]  # expected, but nothing collected could show them

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        return {
            "family": self.family.id,
            "name": self.family.name(lang),
            "confidence": round(self.confidence, 3),
            "matched": [
                {
                    "indicator": h.indicator.id,
                    "type": h.indicator.type,
                    "value": h.indicator.value,
                    "observed": h.observed,
                    "weight": h.indicator.weight,
                    "confidence": h.indicator.confidence,
                    "source": h.indicator.source,
                    "evidence": [e.__dict__ for e in h.evidence[:5]],
                }
                for h in self.hits
            ],
            "missing": [{"indicator": i.id, "type": i.type, "value": i.value} for i in self.missing],
            "not_collected": sorted({i.type for i in self.not_collected}),
            "playbook": [
                {"action": s.action, "targets": list(s.targets), "text": s.text.get(lang) or s.text["en"]}
                for s in self.family.playbook
            ],
        }


def _rows(case: Case, sql: str) -> list[dict[str, Any]]:
    return case.query(sql)


def observations(case: Case, ip_host: dict[str, str] | None = None) -> dict[str, list[Observation]]:
    """Every host's observations, from the host tables (and alerts, through `ip_host`)."""
    out: dict[str, list[Observation]] = defaultdict(list)

    def add(r: dict[str, Any], kind: str, group: str, value: Any) -> None:
        if value is None or value == "" or not r.get("host"):
            return
        text = str(value)
        if group in PATH_GROUPS:
            text = normalize_path(text)
        out[r["host"]].append(Observation(group, text, kind, int(r["evidence_id"]), int(r["line"])))

    def add_path(r: dict[str, Any], kind: str, path: str | None) -> None:
        if path:
            add(r, kind, "path", path)
            add(r, kind, "file_name", ntpath.basename(path.strip().strip('"')))

    for r in _rows(case, "SELECT * FROM processes"):
        add(r, "processes", "process_name", r["name"])
        add(r, "processes", "process_path", r["image_path"])
        add_path(r, "processes", r["image_path"])
        add(r, "processes", "cmdline", r["command_line"])
    for r in _rows(case, "SELECT * FROM services"):
        add(r, "services", "service_name", r["name"])
        add(r, "services", "service_name", r["display_name"])
        add(r, "services", "service_dll", r["service_dll"])
        add(r, "services", "service_image", r["binary_path"])
        add(r, "services", "cmdline", r["binary_path"])
        add_path(r, "services", r["service_dll"])
        add_path(r, "services", _image_of(r["binary_path"]))
    for r in _rows(case, "SELECT * FROM tasks"):
        name = (r["name"] or "").strip()
        add(r, "tasks", "task_name", name)
        if "\\" in name:
            add(r, "tasks", "task_name", name.rsplit("\\", 1)[-1])
        command = " ".join(x for x in (r["command"], r["arguments"]) if x)
        add(r, "tasks", "task_command", command)
        add(r, "tasks", "cmdline", command)
        add_path(r, "tasks", _image_of(r["command"]))
    for r in _rows(case, "SELECT * FROM wmi"):
        add(r, "wmi", "wmi_name", r["name"])
        for end in (r["filter"], r["consumer"]):
            add(r, "wmi", "wmi_name", _wmi_ref_name(end))
        add(r, "wmi", "wmi_class", r["class"])
        add(r, "wmi", "wmi_query", r["query"])
        add(r, "wmi", "wmi_command", " ".join(x for x in (r["command"], r["script"]) if x))
    for r in _rows(case, "SELECT * FROM autoruns WHERE entry IS NOT NULL AND entry <> ''"):
        add(r, "autoruns", "autorun", r["entry"])
        add(r, "autoruns", "registry", f"{r['location'] or ''}\\{r['entry']}")
        add(r, "autoruns", "cmdline", r["launch"])
        add_path(r, "autoruns", r["image_path"])
        add(r, "autoruns", "sha256", (r["sha256"] or "").lower())
        if "\\services" in (r["location"] or "").lower():
            add(r, "autoruns", "service_name", r["entry"])
            add(r, "autoruns", "service_dll", r["image_path"])
    for r in _rows(case, "SELECT * FROM files"):
        add_path(r, "files", r["path"])
        for h in ("md5", "sha1", "sha256"):
            add(r, "files", h, (r[h] or "").lower())
    for r in _rows(case, "SELECT * FROM sockets WHERE NOT coalesce(listening, false)"):
        add(r, "sockets", "remote_ip", r["remote_ip"])
        add(r, "sockets", "remote_port", r["remote_port"])
        if r["remote_ip"] and r["remote_port"]:
            add(r, "sockets", "remote", f"{r['remote_ip']}:{r['remote_port']}")
    for r in _rows(case, "SELECT * FROM host_config"):
        if r["kind"] == "user":
            add(r, "host_config", "user", r["name"])
        elif r["kind"] == "portproxy":
            add(r, "host_config", "portproxy_port", (r["name"] or "").rsplit(":", 1)[-1])
            add(r, "host_config", "remote_ip", (r["value"] or "").rsplit(":", 1)[0])
    if ip_host:
        for r in _rows(
            case,
            "SELECT DISTINCT ON (signature, src_ip) signature, src_ip, evidence_id, line FROM net_alerts "
            "WHERE signature IS NOT NULL ORDER BY signature, src_ip, evidence_id, line",
        ):
            host = ip_host.get(r["src_ip"])
            if host:
                add({**r, "host": host}, "net_alerts", "signature", r["signature"])
    return out


def _image_of(command: str | None) -> str | None:
    """The program of a command line: quoted, or up to the first `.exe`/`.dll`, or the first word."""
    if not command:
        return None
    c = command.strip()
    if c.startswith('"'):
        return c[1:].split('"', 1)[0]
    low = c.lower()
    for ext in (".exe", ".dll", ".bat", ".cmd", ".ps1", ".vbs"):
        i = low.find(ext)
        if i > 0:
            return c[: i + len(ext)]
    return c.split()[0]


def _wmi_ref_name(ref: str | None) -> str | None:
    """`__EventFilter.Name="X"` -> X."""
    if not ref or "=" not in ref:
        return None
    return ref.split("=", 1)[1].strip().strip('"').replace('\\"', '"')


class Matcher:
    """Indicators indexed for matching many hosts' observations."""

    def __init__(self, families: Iterable[Family], extra: Iterable[Indicator] = ()) -> None:
        self.families = {f.id: f for f in families}
        self.indicators = [i for f in self.families.values() for i in f.indicators] + list(extra)
        self.exact: dict[tuple[str, str], list[Indicator]] = defaultdict(list)
        self.folders: dict[str, list[Indicator]] = defaultdict(list)
        self.patterns: dict[str, list[Indicator]] = defaultdict(list)
        # Per group, one regex made of all its patterns: most observations match none, and one
        # search rejects them where trying each indicator in turn would cost dozens.
        self.prefilter: dict[str, re.Pattern[str] | None] = {}
        self._seen: dict[tuple[str, str], tuple[Indicator, ...]] = {}
        self.normalized: dict[str, bool] = {}
        for ind in self.indicators:
            if ind.type not in GROUPS:
                continue
            if ind.match == "exact" and ind.type == "directory":
                self.folders[normalize_path(ind.value).rstrip("\\")].append(ind)
            elif ind.match == "exact" and ind.type not in CONTAINS:
                for group in GROUPS[ind.type]:
                    self.exact[(group, self._key(group, ind.value))].append(ind)
            else:
                for group in GROUPS[ind.type]:
                    self.patterns[group].append(ind)
        for group, inds in self.patterns.items():
            self.normalized[group] = any(i.type in PATH_TYPES for i in inds)
            texts = [re.escape(i.value) if i.match == "exact" else i.pattern_text for i in inds]
            try:
                self.prefilter[group] = re.compile("|".join(f"(?:{t})" for t in texts), re.IGNORECASE)
            except re.error:  # a pattern with global inline flags cannot be combined: no prefilter
                self.prefilter[group] = None

    @staticmethod
    def _key(group: str, value: str) -> str:
        return normalize_path(value) if group in PATH_GROUPS else value.casefold()

    def hits(self, obs: list[Observation]) -> Iterator[tuple[Indicator, Observation]]:
        for o in obs:
            key = (o.group, o.value)
            found = self._seen.get(key)
            if found is None:  # a fleet repeats its values host after host: match each once
                found = self._seen[key] = tuple(self._match(o.group, o.value))
            for ind in found:
                yield ind, o

    def _match(self, group: str, value: str) -> Iterator[Indicator]:
        yield from self.exact.get((group, self._key(group, value)), ())
        if group == "path" and self.folders:
            folder = value
            while "\\" in folder:
                folder = folder.rsplit("\\", 1)[0]
                yield from self.folders.get(folder, ())
        inds = self.patterns.get(group)
        if not inds:
            return
        pre = self.prefilter[group]
        if pre is not None and not pre.search(normalize_path(value) if self.normalized[group] else value):
            return
        for ind in inds:
            if ind.type in CONTAINS and ind.match == "exact":
                if ind.value.casefold() in value.casefold():
                    yield ind
            elif ind.matches(value):
                yield ind

    def match_host(self, obs: list[Observation]) -> list[FamilyMatch]:
        """Families with at least one matched indicator, most confident first."""
        by_ind: dict[tuple[str, str], Hit] = {}
        cited: dict[tuple[str, str], set[tuple[str, int, int]]] = defaultdict(set)
        for ind, o in self.hits(obs):
            key = (ind.family, ind.id)
            hit = by_ind.setdefault(key, Hit(ind, o.value))
            where = (o.kind, o.evidence_id, o.line)
            if where not in cited[key] and len(hit.evidence) < MAX_EVIDENCE:
                cited[key].add(where)
                hit.evidence.append(o.ref)
        groups_seen = {o.group for o in obs}
        out = []
        for fid in sorted({f for f, _ in by_ind}):
            hits = [h for (f, _), h in by_ind.items() if f == fid]
            if all(h.indicator.weight < GENERIC_WEIGHT for h in hits):
                continue
            miss = 1.0
            for h in hits:
                miss *= 1.0 - h.indicator.weight
            family = self.families.get(fid)
            if family is None:  # indicators imported without a family file
                family = Family(fid, {"en": fid, "zh-CN": fid}, "worm", {"en": "", "zh-CN": ""}, {}, (), ())
            matched = {h.indicator.id for h in hits}
            rest = [i for i in family.indicators if i.id not in matched]
            out.append(
                FamilyMatch(
                    family,
                    1.0 - miss,
                    sorted(hits, key=lambda h: -h.indicator.weight),
                    [i for i in rest if set(GROUPS.get(i.type, ())) & groups_seen],
                    [i for i in rest if not set(GROUPS.get(i.type, ())) & groups_seen],
                )
            )
        return sorted(out, key=lambda m: (-m.confidence, m.family.id))


def match_case(
    case: Case, families: Iterable[Family], extra: Iterable[Indicator] = (), ip_host: dict[str, str] | None = None
) -> dict[str, list[FamilyMatch]]:
    """Per host (as the case spells it), the families whose indicators were seen there."""
    matcher = Matcher(families, extra)
    return {host: m for host, obs in sorted(observations(case, ip_host).items()) if (m := matcher.match_host(obs))}


def family_findings(matches: dict[str, list[FamilyMatch]]) -> list[Finding]:
    """One finding per host and family that reached a verdict, citing the matched records."""
    out = []
    for host, fams in matches.items():
        for m in fams:
            if m.confidence < FAMILY_MIN:
                continue
            refs: list[EvidenceRef] = []
            for h in m.hits:
                refs.extend(r for r in h.evidence[:3] if r not in refs)
            params = {
                "family": m.family.names["en"],
                "confidence": round(m.confidence, 2),
                "indicators": ", ".join(f"{h.indicator.type}={h.observed}" for h in m.hits[:6]),
            }
            out.append(
                Finding(
                    "intel.family",
                    host,
                    "critical" if m.confidence >= 0.8 else "high",
                    "T1588.001",
                    "finding.intel_family",
                    params,
                    evidence=refs[:20],
                )
            )
    return out
