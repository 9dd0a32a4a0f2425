"""The family knowledge base: one YAML file per family under `knowledge/families/`, checked
against a schema when loaded. Adding a family is adding a file; user directories of the same
shape, STIX bundles and MISP events add indicators beside them (see `intel.stix`, `intel.misp`).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from wormhunt.knowledge import KnowledgeError, check

# What an indicator describes, and so which case records it is matched against.
INDICATOR_TYPES = frozenset(
    {
        "directory",  # a folder the family creates or works in (files or processes under it)
        "file_path",  # a full path
        "file_name",  # a base name, wherever it lies
        "process_path",  # image path of a running process
        "process_name",  # image name of a running process
        "cmdline",  # process or persistence command line
        "service_name",
        "service_dll",  # ServiceDll of a svchost-hosted service
        "service_image",  # ImagePath / binary path of a service
        "task_name",
        "task_command",
        "wmi_name",  # name of a filter, consumer or binding end
        "wmi_class",  # a custom class (root\default, root\cimv2)
        "wmi_query",  # a filter's WQL query
        "wmi_command",  # a consumer's command line or script text
        "registry",  # a key or value path
        "autorun",  # an autorun entry (Run key value, etc.)
        "domain",
        "ip",
        "url",
        "port",  # a remote or listening port the family uses
        "portproxy_port",  # a `netsh interface portproxy` listener
        "pool",  # a mining pool host:port or stratum URL
        "md5",
        "sha1",
        "sha256",
        "mutex",
        "user",  # a local account the family adds
        "firewall_rule",  # a Windows firewall rule name the family adds
        "signature",  # a network IPS/IDS signature name
    }
)
MATCH_KINDS = frozenset({"exact", "glob", "regex"})
CONFIDENCE = frozenset({"C", "S", "I", "U"})  # threat-intel.md tags: confirmed, secondary, inferred, unknown
STEP_ACTIONS = frozenset(
    {
        "contain",
        "collect",
        "disable_task",
        "disable_service",
        "stop_service",
        "kill_service_tree",
        "kill_process",
        "kill_scripts",
        "remove_wmi",
        "delete_service",
        "delete_task",
        "quarantine",
        "remove_directory",
        "remove_portproxy",
        "remove_firewall_rule",
        "remove_user",
        "remove_registry",
        "restore_dns",
        "patch",
        "reboot",
        "verify",
    }
)
_TEXT = {"en": str, "zh-CN": str}
SCHEMA: dict[str, Any] = {
    "id": str,
    "names": _TEXT,
    "aliases?": [str],
    "kind": frozenset({"worm-miner", "worm-ransomware", "miner", "botnet", "worm"}),
    "summary": _TEXT,
    "sources": {str: str},  # source tag -> URL or citation
    "related?": [str],  # family ids whose leftovers may be seen beside this one
    "indicators": [
        {
            "id": str,
            "type": INDICATOR_TYPES,
            "match?": MATCH_KINDS,
            "value": (str, int),
            "weight": (int, float),
            "confidence": CONFIDENCE,
            "source": str,
            "note?": _TEXT,
        }
    ],
    "playbook": [
        {
            "action": STEP_ACTIONS,
            "targets?": [str],
            "text": _TEXT,
            "confidence": CONFIDENCE,
            "source": str,
        }
    ],
}
_ENV = re.compile(r"%(systemroot|windir)%", re.IGNORECASE)
_WOW = re.compile(r"\\(syswow64|sysnative)\\", re.IGNORECASE)
PATH_TYPES = frozenset({"directory", "file_path", "process_path", "service_dll", "service_image", "registry"})


@cache  # the same paths recur on every host of a fleet
def normalize_path(path: str | None) -> str:
    """A Windows path in the form indicators compare: lower case, backslashes, environment
    variables for the Windows folder expanded, SysWOW64 and Sysnative read as System32, no
    `\\\\?\\` prefix, no quotes ("" for None)."""
    if not path:
        return ""
    p = path.strip().strip('"').replace("/", "\\")
    p = p.removeprefix("\\\\?\\").removeprefix("\\??\\")
    p = _ENV.sub(r"c:\\windows", p)
    if p.lower().startswith("\\systemroot\\"):
        p = "c:\\windows\\" + p[12:]
    if p.lower().startswith("system32\\"):
        p = "c:\\windows\\" + p
    return _WOW.sub(r"\\system32\\", p).lower()


@dataclass(frozen=True)
class Indicator:
    family: str
    id: str
    type: str
    value: str
    match: str = "exact"
    weight: float = 0.5
    confidence: str = "I"
    source: str = ""
    note: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", self._compile())
        want = normalize_path(self.value) if self.type in PATH_TYPES else str(self.value)
        object.__setattr__(self, "_want", want.casefold())
        object.__setattr__(self, "_folder", want.rstrip("\\") + "\\")

    @property
    def pattern_text(self) -> str | None:
        """The regular expression a glob or regex indicator searches with (None for exact).
        Globs describe paths and are read in normalised form; regexes are written against
        normalised paths already (lower case is no matter: they match ignoring case)."""
        if self.match == "exact":
            return None
        if self.match == "glob":
            return fnmatch.translate(normalize_path(self.value) if self.type in PATH_TYPES else self.value)
        return self.value

    def _compile(self) -> re.Pattern[str] | None:
        text = self.pattern_text
        if text is None:
            return None
        try:
            return re.compile(text, re.IGNORECASE)
        except re.error as exc:
            raise KnowledgeError(f"{self.family}.{self.id}: bad pattern {self.value!r}: {exc}") from None

    def matches(self, observed: str | int | None) -> bool:
        """True when `observed` (a path, name, port …) is what this indicator describes.
        Names and paths compare case-insensitively; paths after normalisation."""
        if observed is None or observed == "":
            return False
        text = str(observed)
        if self.type in PATH_TYPES:
            text = normalize_path(text)
            if self.type == "directory" and self.match == "exact":
                folder = self.__dict__["_folder"]
                return text.startswith(folder) or text == folder.rstrip("\\")
        pattern: re.Pattern[str] | None = self.__dict__["_pattern"]
        if pattern is None:
            return text.casefold() == self.__dict__["_want"]
        return bool(pattern.fullmatch(text) if self.match == "glob" else pattern.search(text))


@dataclass(frozen=True)
class Step:
    action: str
    text: dict[str, str]
    targets: tuple[str, ...] = ()
    confidence: str = "I"
    source: str = ""


@dataclass(frozen=True)
class Family:
    id: str
    names: dict[str, str]
    kind: str
    summary: dict[str, str]
    sources: dict[str, str]
    indicators: tuple[Indicator, ...]
    playbook: tuple[Step, ...]
    aliases: tuple[str, ...] = ()
    related: tuple[str, ...] = ()

    def name(self, lang: str = "en") -> str:
        return self.names.get(lang) or self.names["en"]


def parse_family(data: Any, where: str) -> Family:
    """A family from its YAML mapping; KnowledgeError names the file and the bad value."""
    check(data, SCHEMA, where)
    fid = data["id"]
    seen: set[str] = set()
    indicators = []
    for i, ind in enumerate(data["indicators"]):
        if ind["id"] in seen:
            raise KnowledgeError(f"{where}.indicators[{i}].id: {ind['id']!r} is used twice")
        seen.add(ind["id"])
        if not 0 < ind["weight"] <= 1:
            raise KnowledgeError(f"{where}.indicators[{i}].weight: must be in (0, 1], got {ind['weight']}")
        if ind["source"] not in data["sources"]:
            raise KnowledgeError(f"{where}.indicators[{i}].source: {ind['source']!r} is not in `sources`")
        try:
            indicator = Indicator(
                family=fid,
                id=ind["id"],
                type=ind["type"],
                value=str(ind["value"]),
                match=ind.get("match", "exact"),
                weight=float(ind["weight"]),
                confidence=ind["confidence"],
                source=ind["source"],
                note=ind.get("note", {}),
            )
        except KnowledgeError as exc:  # a bad pattern: name the file and the key, not only the family
            raise KnowledgeError(f"{where}.indicators[{i}].value: {exc}") from None
        indicators.append(indicator)
    steps = []
    for i, step in enumerate(data["playbook"]):
        if step["source"] not in data["sources"]:
            raise KnowledgeError(f"{where}.playbook[{i}].source: {step['source']!r} is not in `sources`")
        steps.append(
            Step(step["action"], step["text"], tuple(step.get("targets", [])), step["confidence"], step["source"])
        )
    return Family(
        id=fid,
        names=data["names"],
        kind=data["kind"],
        summary=data["summary"],
        sources=data["sources"],
        indicators=tuple(indicators),
        playbook=tuple(steps),
        aliases=tuple(data.get("aliases", [])),
        related=tuple(data.get("related", [])),
    )


def _load_text(text: str, where: str) -> Family:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{where}: not valid YAML: {exc}") from None
    family = parse_family(data, where)
    stem = where.rsplit("/", 1)[-1].removesuffix(".yaml")
    if family.id != stem:
        raise KnowledgeError(f"{where}.id: {family.id!r} must equal the file name {stem!r}")
    return family


@cache
def builtin_families() -> tuple[Family, ...]:
    """The families shipped in `knowledge/families/`, in file-name order."""
    folder = files("wormhunt.knowledge").joinpath("families")
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            out.append(_load_text(entry.read_text(encoding="utf-8"), f"families/{entry.name}"))
    return tuple(out)


def load_families(extra: list[Path] | None = None) -> list[Family]:
    """Built-in families plus every `*.yaml` in the user's directories (a user file with a
    built-in id replaces it)."""
    by_id = {f.id: f for f in builtin_families()}
    for folder in extra or []:
        for path in sorted(Path(folder).glob("*.yaml")):
            family = _load_text(path.read_text(encoding="utf-8"), str(path))
            by_id[family.id] = family
    return list(by_id.values())


@cache
def strong_indicators(type_: str, min_weight: float = 0.6) -> list[tuple[Indicator, Family]]:
    """The shipped families' indicators of one type (service_name, task_name, user …) weighty
    enough to name a family on their own: for triage rules that want the family of one record
    without running the whole matcher."""
    return [
        (ind, family)
        for family in builtin_families()
        for ind in family.indicators
        if ind.type == type_ and ind.weight >= min_weight
    ]


@lru_cache(maxsize=1 << 16)
def family_of_name(type_: str, *names: str | None) -> Family | None:
    """The first shipped family with a strong `type_` indicator matching one of `names`."""
    for ind, family in strong_indicators(type_):
        if any(ind.matches(n) for n in names if n):
            return family
    return None
