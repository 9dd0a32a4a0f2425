"""MISP exchange: indicators from MISP event JSON and a case's indicators as an event.

Accepted shapes: `{"Event": {...}}`, a bare event, a list of `{"Event": ...}` and the REST
API's `{"response": [...]}`. Attributes come from the event's `Attribute` list and from
every `Object`'s `Attribute` list. wormhunt's own events carry the wormhunt type, match kind,
indicator id and family as attribute tags (`wormhunt:type="…"` …), so a round trip gives the
same indicators back; foreign events are read by their MISP types. `load_intel` reads STIX
bundles and MISP events alike, choosing by content. See docs/intel-exchange.md.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wormhunt.intel.families import Indicator
from wormhunt.intel.stix import NAMESPACE, IntelError, parse_bundle, read_json, resolve_family
from wormhunt.knowledge import KnowledgeError

__all__ = ["IntelError", "export_misp", "load_intel", "load_misp", "parse_misp"]

# MISP attribute type -> wormhunt type; a "a|b" type gives one indicator per half.
_TYPES: dict[str, str] = {
    "md5": "md5",
    "sha1": "sha1",
    "sha256": "sha256",
    "filename": "file_name",
    "ip-dst": "ip",
    "ip-src": "ip",
    "domain": "domain",
    "hostname": "domain",
    "url": "url",
    "uri": "url",
    "regkey": "registry",
    "mutex": "mutex",
    "windows-service-name": "service_name",
    "windows-scheduled-task": "task_name",
    "port": "port",
}
_SPLIT: dict[str, tuple[str | None, str | None]] = {
    "filename|md5": ("file_name", "md5"),
    "filename|sha1": ("file_name", "sha1"),
    "filename|sha256": ("file_name", "sha256"),
    "ip-dst|port": ("ip", "port"),
    "ip-src|port": ("ip", "port"),
    "domain|ip": ("domain", "ip"),
    "hostname|port": ("domain", "port"),
    "regkey|value": ("registry", None),  # the value data is not an indicator
}
# Types that carry no indicator wormhunt can match: skipped and counted, not reported one by one.
_NO_MEANING = frozenset(
    {
        "text",
        "other",
        "comment",
        "link",
        "datetime",
        "counter",
        "float",
        "size-in-bytes",
        "attachment",
        "malware-sample",
        "boolean",
        "pattern-in-file",
        "pattern-in-memory",
        "yara",
        "sigma",
        "snort",
        "user-agent",
        "email-src",
        "email-dst",
        "email-subject",
        "AS",
        "whois-registrant-email",
        "ssdeep",
        "imphash",
        "tlsh",
        "vulnerability",
        "campaign-name",
        "threat-actor",
        "mime-type",
    }
)
# File-object relations that say more than their MISP type.
_OBJECT_RELATIONS = {("file", "fullpath"): "file_path", ("file", "path"): "directory"}
# wormhunt type -> MISP type on export; the rest are `text` with a `wormhunt:type` tag.
_EXPORT: dict[str, str] = {
    "md5": "md5",
    "sha1": "sha1",
    "sha256": "sha256",
    "file_name": "filename",
    "file_path": "filename",
    "ip": "ip-dst",
    "domain": "domain",
    "url": "url",
    "registry": "regkey",
    "mutex": "mutex",
    "service_name": "windows-service-name",
    "task_name": "windows-scheduled-task",
    "port": "port",
}
_CATEGORY = {
    "md5": "Payload delivery",
    "sha1": "Payload delivery",
    "sha256": "Payload delivery",
    "filename": "Artifacts dropped",
    "regkey": "Persistence mechanism",
    "mutex": "Artifacts dropped",
    "windows-service-name": "Persistence mechanism",
    "windows-scheduled-task": "Persistence mechanism",
    "ip-dst": "Network activity",
    "domain": "Network activity",
    "url": "Network activity",
    "port": "Network activity",
    "text": "Other",
}
_MACHINE_TAG = re.compile(r'^(?P<ns>[^:=]+):(?P<pred>[^=]+)="?(?P<value>.*?)"?$')


def _tags(node: dict[str, Any]) -> dict[str, str]:
    """`namespace:predicate` -> value of the node's machine tags (last one wins)."""
    out: dict[str, str] = {}
    for tag in node.get("Tag") or []:
        name = tag.get("name", "") if isinstance(tag, dict) else str(tag)
        m = _MACHINE_TAG.match(name)
        if m:
            out[f"{m['ns']}:{m['pred']}"] = m["value"]
    return out


def _events(data: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(data, dict) and isinstance(data.get("response"), list):
        data = data["response"]
    if isinstance(data, list):
        out = []
        for i, item in enumerate(data):
            event = item.get("Event") if isinstance(item, dict) else None
            if not isinstance(event, dict):
                raise IntelError(f"{where}: item [{i}] is not a {{'Event': {{...}}}} object")
            out.append(event)
        return out
    if isinstance(data, dict) and isinstance(data.get("Event"), dict):
        return [data["Event"]]
    if isinstance(data, dict) and ("Attribute" in data or "Object" in data) and "info" in data:
        return [data]
    got = type(data).__name__ if not isinstance(data, dict) else f"an object with keys {sorted(data)[:5]}"
    raise IntelError(f"{where}: not a MISP event (got {got})")


def _event_family(event: dict[str, Any]) -> str:
    for tag in event.get("Tag") or []:
        name = tag.get("name", "") if isinstance(tag, dict) else str(tag)
        m = re.match(r'^misp-galaxy:(malpedia|tool)="?(.*?)"?$', name)
        if m:
            return resolve_family([m[2]])
    for galaxy in event.get("Galaxy") or []:
        if isinstance(galaxy, dict) and galaxy.get("type") in ("malpedia", "tool"):
            for cluster in galaxy.get("GalaxyCluster") or []:
                if isinstance(cluster, dict) and cluster.get("value"):
                    return resolve_family([cluster["value"]])
    tags = _tags(event)
    if "wormhunt:family" in tags:
        return tags["wormhunt:family"]
    return resolve_family([str(event.get("info") or "")]) if event.get("info") else "imported"


def parse_misp(
    data: Any, where: str = "event", weight: float = 0.5, no_ids_weight: float | None = 0.3
) -> tuple[list[Indicator], list[str]]:
    """Indicators from decoded MISP JSON. Attributes with `to_ids` false get `no_ids_weight`
    (None: the same weight as the others). IntelError when `data` is no MISP event."""
    out: list[Indicator] = []
    problems: list[str] = []
    for e, event in enumerate(_events(data, where)):
        label = event.get("uuid") or f"Event[{e}]"
        family = _event_family(event)
        source = f"misp:{event.get('uuid') or where}"
        skipped: Counter[str] = Counter()
        attributes: list[tuple[str, Any, str | None]] = []  # (name for messages, attribute, object name)
        for i, attr in enumerate(event.get("Attribute") or []):
            attributes.append((f"Attribute[{i}]", attr, None))
        for j, obj in enumerate(event.get("Object") or []):
            if not isinstance(obj, dict):
                problems.append(f"{where}: {label}: Object[{j}] is not an object; skipped")
                continue
            for i, attr in enumerate(obj.get("Attribute") or []):
                attributes.append((f"Object[{j}]({obj.get('name', '?')}).Attribute[{i}]", attr, obj.get("name")))
        for name, attr, obj_name in attributes:
            if not isinstance(attr, dict) or not isinstance(attr.get("type"), str):
                problems.append(f"{where}: {label}: {name} has no type; skipped")
                continue
            aname = f"{name} {attr['uuid']}" if attr.get("uuid") else name
            mtype, value = attr["type"], attr.get("value")
            if value is None or str(value) == "":
                problems.append(f"{where}: {label}: {aname} ({mtype}) has no value; skipped")
                continue
            value = str(value)
            tags = _tags(attr)
            match = tags.get("wormhunt:match", "exact")
            pairs: list[tuple[str, str]]
            if "wormhunt:type" in tags:
                pairs = [(tags["wormhunt:type"], value)]
            elif (obj_name, attr.get("object_relation")) in _OBJECT_RELATIONS:
                pairs = [(_OBJECT_RELATIONS[(obj_name, attr.get("object_relation"))], value)]
            elif mtype in _SPLIT:
                halves = value.split("|", 1)
                if len(halves) != 2:
                    problems.append(f"{where}: {label}: {aname} ({mtype}) value {value!r} has no '|'; skipped")
                    continue
                pairs = [(k, v) for k, v in zip(_SPLIT[mtype], halves, strict=True) if k and v]
            elif mtype in _TYPES:
                kind = _TYPES[mtype]
                if kind == "file_name" and re.search(r"[\\/]", value):
                    kind = "file_path"
                pairs = [(kind, value)]
            elif mtype in _NO_MEANING:
                skipped[mtype] += 1
                continue
            else:
                problems.append(f"{where}: {label}: {aname} has unknown MISP type {mtype!r}; skipped")
                continue
            to_ids = attr.get("to_ids", True) not in (False, "0", 0, "false")
            w = weight if to_ids or no_ids_weight is None else no_ids_weight
            try:
                w = float(tags.get("wormhunt:weight", w))
            except ValueError:
                problems.append(f"{where}: {label}: {aname}: bad wormhunt:weight tag; default weight used")
            base = tags.get("wormhunt:id") or f"misp-{attr.get('uuid') or name}"
            for n, (kind, val) in enumerate(pairs):
                try:
                    out.append(
                        Indicator(
                            family=tags.get("wormhunt:family", family),
                            id=base if len(pairs) == 1 else f"{base}-{n}",
                            type=kind,
                            value=val,
                            match=match,
                            weight=w,
                            confidence="S",
                            source=source,
                            note={"en": str(attr["comment"])} if attr.get("comment") else {},
                        )
                    )
                except KnowledgeError as exc:
                    problems.append(f"{where}: {label}: {aname}: {exc}; skipped")
        if skipped:
            kinds = ", ".join(f"{k} ×{c}" for k, c in sorted(skipped.items()))
            problems.append(
                f"{where}: {label}: skipped {sum(skipped.values())} attribute(s) with no indicator meaning ({kinds})"
            )
    return out, problems


def load_misp(
    path: str | Path, weight: float = 0.5, no_ids_weight: float | None = 0.3
) -> tuple[list[Indicator], list[str]]:
    """Indicators and problems from a MISP event JSON file."""
    return parse_misp(read_json(path), str(path), weight, no_ids_weight)


def load_intel(paths: list[str | Path] | tuple[str | Path, ...]) -> tuple[list[Indicator], list[str]]:
    """Indicators and problems from STIX bundles and MISP events, each file read by its
    content (a `"type": "bundle"` object is STIX, anything else must be MISP)."""
    out: list[Indicator] = []
    problems: list[str] = []
    for path in paths:
        data = read_json(path)
        if isinstance(data, dict) and data.get("type") == "bundle":
            got, probs = parse_bundle(data, str(path))
        else:
            got, probs = parse_misp(data, str(path))
        out += got
        problems += probs
    return out, problems


def _uid(*content: Any) -> str:
    return str(uuid.uuid5(NAMESPACE, "\x1f".join(str(c) for c in content)))


def export_misp(
    indicators: list[Indicator] | tuple[Indicator, ...],
    family_names: dict[str, str] | None = None,
    created: datetime | None = None,
    info: str | None = None,
) -> dict[str, Any]:
    """One MISP event (`{"Event": …}`) holding every indicator. Types MISP has no word for go
    out as `text`; the wormhunt type, match kind, id and family ride along as attribute tags
    so `parse_misp` gives the same indicators back. Attribute uuids are uuid5 over the content."""
    when = created or datetime.now(UTC)
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    names = family_names or {}
    families = list(dict.fromkeys(ind.family for ind in indicators))
    attributes = []
    for ind in indicators:
        mtype = _EXPORT.get(ind.type, "text")
        tags = [f'wormhunt:{k}="{v}"' for k, v in (("type", ind.type), ("id", ind.id), ("family", ind.family))]
        tags.append(f'wormhunt:weight="{ind.weight:g}"')
        if ind.match != "exact":
            tags.append(f'wormhunt:match="{ind.match}"')
        attributes.append(
            {
                "uuid": _uid("attribute", ind.family, ind.id, ind.type, ind.match, ind.value),
                "type": mtype,
                "category": _CATEGORY.get(mtype, "Other"),
                "value": str(ind.value),
                "to_ids": ind.match == "exact" and mtype != "text",
                "comment": ind.note.get("en", ""),
                "timestamp": str(int(when.timestamp())),
                "Tag": [{"name": t} for t in tags],
            }
        )
    title = info or ("wormhunt: " + ", ".join(names.get(f, f) for f in families) if families else "wormhunt")
    event_tags = [{"name": "tlp:amber"}]
    if len(families) == 1:
        event_tags.append({"name": f'wormhunt:family="{families[0]}"'})
    return {
        "Event": {
            "uuid": _uid("event", *sorted(a["uuid"] for a in attributes)),
            "info": title,
            "date": when.strftime("%Y-%m-%d"),
            "timestamp": str(int(when.timestamp())),
            "threat_level_id": "2",
            "analysis": "2",
            "distribution": "0",
            "published": False,
            "Orgc": {"name": "wormhunt"},
            "Tag": event_tags,
            "Attribute": attributes,
            "Object": [],
        }
    }
