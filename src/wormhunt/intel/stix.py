"""STIX 2.1 exchange: indicators in and out of bundles.

Import reads `indicator` objects with `pattern_type: stix`, parses the pattern with the
OASIS `stix2-patterns` parser and turns every OR'ed alternative it can represent into a
wormhunt `Indicator`; what it cannot represent (AND'ed comparisons, `!=`, `NOT`, `<`,
FOLLOWEDBY …) is skipped with a problem naming the object. Export writes a bundle with an
`identity` for wormhunt, one `malware` per family, one `indicator` per mappable wormhunt
indicator and `indicates` relationships; ids are uuid5 over the content, so the same input
gives the same ids (and, with a fixed `created`, the same bundle). See docs/intel-exchange.md.
"""

from __future__ import annotations

import fnmatch
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wormhunt.intel.families import Indicator, builtin_families
from wormhunt.knowledge import KnowledgeError


class IntelError(ValueError):
    """An intel file that cannot be read at all (not JSON, not a bundle or event)."""


NAMESPACE = uuid.UUID("6f1d3c52-6d1e-5a55-9b7e-8a3e0c1f2b4d")  # wormhunt's uuid5 namespace
REF_SOURCE = "wormhunt"  # external_references source_name carrying wormhunt ids

# One comparison target per object path (a tuple of path steps, type first).
_PATH_TYPES: dict[tuple[str, ...], str] = {
    ("file", "hashes", "MD5"): "md5",
    ("file", "hashes", "SHA1"): "sha1",
    ("file", "hashes", "SHA256"): "sha256",
    ("file", "name"): "file_name",
    ("file", "parent_directory_ref", "path"): "directory",
    ("directory", "path"): "directory",
    ("ipv4-addr", "value"): "ip",
    ("ipv6-addr", "value"): "ip",
    ("domain-name", "value"): "domain",
    ("url", "value"): "url",
    ("process", "name"): "process_name",  # STIX 2.0; 2.1 names the image through image_ref
    ("process", "image_ref", "name"): "process_name",
    ("process", "command_line"): "cmdline",
    ("process", "extensions", "windows-service-ext", "service_name"): "service_name",
    ("windows-registry-key", "key"): "registry",
    ("mutex", "name"): "mutex",
    ("network-traffic", "dst_port"): "port",
    ("user-account", "user_id"): "user",
    ("user-account", "account_login"): "user",
}
# A full path is the one AND we represent: `<prefix>.parent_directory_ref.path` AND `<prefix>.name`.
_PAIR_TYPES: dict[tuple[str, ...], str] = {("file",): "file_path", ("process", "image_ref"): "process_path"}

_EXPORT_PATHS: dict[str, str] = {
    "md5": "file:hashes.MD5",
    "sha1": "file:hashes.'SHA-1'",
    "sha256": "file:hashes.'SHA-256'",
    "file_name": "file:name",
    "directory": "directory:path",
    "domain": "domain-name:value",
    "url": "url:value",
    "process_name": "process:image_ref.name",
    "cmdline": "process:command_line",
    "service_name": "process:extensions.'windows-service-ext'.service_name",
    "registry": "windows-registry-key:key",
    "mutex": "mutex:name",
    "user": "user-account:user_id",
}
_EXPORT_PAIRS = {"file_path": "file:", "process_path": "process:image_ref."}
_HASH_LEN = {"md5": 32, "sha1": 40, "sha256": 64}


# ---------------------------------------------------------------- string literals and wildcards


def quote(value: str) -> str:
    """A STIX pattern string literal: only `\\` and `'` are escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def unquote(literal: str) -> str:
    """The text of a STIX string literal (`'…'` with `\\\\` and `\\'` escapes)."""
    return re.sub(r"\\(.)", r"\1", literal[1:-1], flags=re.DOTALL)


def like_to_glob(like: str) -> str:
    """SQL LIKE (`%`, `_`) as an fnmatch glob; glob metacharacters become one-character classes."""
    out = []
    for c in like:
        if c == "%":
            out.append("*")
        elif c == "_":
            out.append("?")
        elif c in "*?[":
            out.append(f"[{c}]")
        else:
            out.append(c)
    return "".join(out)


def glob_to_like(glob: str) -> str | None:
    """An fnmatch glob as SQL LIKE, or None when LIKE cannot say it (a literal `%`/`_`, a
    character class other than one escaped character)."""
    out = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            out.append("%")
        elif c == "?":
            out.append("_")
        elif c == "[":
            if glob[i + 2 : i + 3] == "]" and glob[i + 1] not in "!%_":
                out.append(glob[i + 1])
                i += 3
                continue
            return None
        elif c in "%_":
            return None
        else:
            out.append(c)
        i += 1
    return "".join(out)


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


# ---------------------------------------------------------------- pattern → alternatives


@dataclass(frozen=True)
class Comparison:
    path: tuple[str, ...]
    op: str  # "=", "LIKE", "MATCHES"
    value: str


class _Unrepresentable(Exception):
    pass


def _literal_text(node: Any) -> str:
    text = node.getText()
    return unquote(text) if text.startswith("'") else text


def _object_path(ctx: Any) -> tuple[str, ...]:
    steps = [ctx.objectType().getText()]
    first = ctx.firstPathComponent()
    steps.append(_literal_text(first.StringLiteral()) if first.StringLiteral() else first.getText())

    def walk(comp: Any) -> None:
        if comp is None:
            return
        name = type(comp).__name__
        if name == "PathStepContext":
            for child in comp.objectPathComponent():
                walk(child)
        elif name == "KeyPathStepContext":
            lit = comp.StringLiteral()
            steps.append(_literal_text(lit) if lit else comp.IdentifierWithoutHyphen().getText())
        else:  # an index step
            steps.append(comp.getText())

    walk(ctx.objectPathComponent())
    if len(steps) == 3 and steps[1] == "hashes":
        steps[2] = steps[2].upper().replace("-", "")
    return tuple(steps)


Alternative = list[Comparison] | str  # comparisons AND'ed together, or why the alternative is skipped


def _comparisons(ctx: Any) -> list[Alternative]:
    name = type(ctx).__name__
    if name == "ComparisonExpressionContext":
        if ctx.OR():
            return [alt for sub in ctx.comparisonExpression() for alt in _comparisons(sub)]
        return _comparisons(ctx.comparisonExpressionAnd())
    if name == "ComparisonExpressionAndContext":
        if not ctx.AND():
            return _comparisons(ctx.propTest())
        left, right = (_comparisons(sub) for sub in ctx.comparisonExpressionAnd())
        return [
            a + b if isinstance(a, list) and isinstance(b, list) else (a if isinstance(a, str) else b)
            for a in left
            for b in right
        ]
    if name == "PropTestParenContext":
        return _comparisons(ctx.comparisonExpression())
    text = ctx.getText()
    if getattr(ctx, "NOT", lambda: None)():
        return [f"NOT comparison {text!r} cannot be represented"]
    path = _object_path(ctx.objectPath()) if hasattr(ctx, "objectPath") else ()
    if name == "PropTestEqualContext" and ctx.EQ():
        return [[Comparison(path, "=", _literal_text(ctx.primitiveLiteral()))]]
    if name == "PropTestSetContext":
        return [[Comparison(path, "=", _literal_text(v))] for v in ctx.setLiteral().primitiveLiteral()]
    if name == "PropTestLikeContext":
        return [[Comparison(path, "LIKE", _literal_text(ctx.StringLiteral()))]]
    if name == "PropTestRegexContext":
        return [[Comparison(path, "MATCHES", _literal_text(ctx.StringLiteral()))]]
    return [f"comparison {text!r} cannot be represented (only =, IN, LIKE and MATCHES can)"]


def _observations(ctx: Any) -> list[Alternative]:
    name = type(ctx).__name__
    if name == "PatternContext":
        return _observations(ctx.observationExpressions())
    if name == "ObservationExpressionsContext":
        if ctx.FOLLOWEDBY():
            return ["FOLLOWEDBY of observations cannot be represented"]
        return _observations(ctx.observationExpressionOr())
    if name == "ObservationExpressionOrContext":
        if ctx.OR():
            return [alt for sub in ctx.observationExpressionOr() for alt in _observations(sub)]
        return _observations(ctx.observationExpressionAnd())
    if name == "ObservationExpressionAndContext":
        if ctx.AND():
            return ["AND of observations cannot be represented"]
        return _observations(ctx.observationExpression())
    if name == "ObservationExpressionSimpleContext":
        return _comparisons(ctx.comparisonExpression())
    if name == "ObservationExpressionCompoundContext":
        return _observations(ctx.observationExpressions())
    return _observations(ctx.observationExpression())  # a qualifier (WITHIN, REPEATS, START/STOP): ignored


def parse_pattern(pattern: str) -> list[Alternative]:
    """The OR'ed alternatives of a STIX pattern: each a list of AND'ed comparisons, or a
    string saying why it cannot be represented. ValueError on a syntax error."""
    from stix2patterns.exceptions import ParseException
    from stix2patterns.v21.pattern import Pattern

    try:
        parsed = Pattern(pattern)
    except ParseException as exc:
        raise ValueError(f"bad STIX pattern: {exc}") from None
    return parsed.visit(_Visitor())


class _Visitor:
    """`Pattern.visit` hands the parse tree to `visit`; the walk itself is `_observations`."""

    def visit(self, tree: Any) -> list[Alternative]:
        return _observations(tree)


def _to_target(alt: list[Comparison]) -> tuple[str, str, str]:
    """(type, value, match) of an alternative; _Unrepresentable says why not."""
    if len(alt) == 2:
        by_last = {c.path[-1]: c for c in alt}
        name, folder = by_last.get("name"), by_last.get("path")
        if name and folder and folder.path[-2:] == ("parent_directory_ref", "path"):
            prefix = folder.path[:-2]
            if name.path[:-1] == prefix and prefix in _PAIR_TYPES:
                if "MATCHES" in (name.op, folder.op):
                    raise _Unrepresentable("a full path with MATCHES parts cannot be represented")
                sep = "" if folder.value.endswith(("\\", "/")) else "\\"
                if name.op == folder.op == "=":
                    return _PAIR_TYPES[prefix], folder.value + sep + name.value, "exact"
                part = [like_to_glob(c.value) if c.op == "LIKE" else glob_escape(c.value) for c in (folder, name)]
                return _PAIR_TYPES[prefix], part[0] + sep + part[1], "glob"
    if len(alt) != 1:
        raise _Unrepresentable(f"AND of {len(alt)} comparisons cannot be represented")
    comp = alt[0]
    kind = _PATH_TYPES.get(comp.path)
    if kind is None:
        raise _Unrepresentable(f"object path {':'.join(comp.path[:1])}:{'.'.join(comp.path[1:])} has no wormhunt type")
    if comp.op == "LIKE":
        return kind, like_to_glob(comp.value), "glob"
    return kind, comp.value, "regex" if comp.op == "MATCHES" else "exact"


# ---------------------------------------------------------------- families


def resolve_family(names: list[str]) -> str:
    """A built-in family id when any of `names` is one of its id, names or aliases, else the first name."""
    wanted = {n.casefold() for n in names if n}
    for fam in builtin_families():
        known = {fam.id, *fam.names.values(), *fam.aliases}
        if wanted & {k.casefold() for k in known}:
            return fam.id
    return next((n for n in names if n), "imported")


def _wormhunt_ref(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in obj.get("external_references") or []:
        if isinstance(ref, dict) and ref.get("source_name") == REF_SOURCE and ref.get("external_id"):
            return ref
    return None


# ---------------------------------------------------------------- import


def read_json(path: str | Path) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise IntelError(f"{path}: cannot read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise IntelError(f"{path}: not JSON: {exc}") from None


def _weight(confidence: Any) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        return 0.5
    return min(1.0, max(0.01, confidence / 100))


def parse_bundle(data: Any, where: str = "bundle") -> tuple[list[Indicator], list[str]]:
    """Indicators from a STIX 2.1 bundle (already decoded JSON). IntelError when `data` is
    not a bundle; every skipped object or alternative is a problem naming the object."""
    if not isinstance(data, dict) or data.get("type") != "bundle":
        got = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise IntelError(f"{where}: not a STIX bundle (top-level type is {got!r})")
    objects = data.get("objects", [])
    if not isinstance(objects, list):
        raise IntelError(f"{where}: `objects` is not a list")
    source = str(data.get("id") or where)
    problems: list[str] = []
    by_id: dict[str, dict[str, Any]] = {}
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict):
            problems.append(f"{where}: objects[{i}] is not an object; skipped")
            continue
        missing = [k for k in ("type", "id") if not isinstance(obj.get(k), str) or not obj.get(k)]
        if missing:
            label = obj.get("id") or f"objects[{i}]"
            problems.append(f"{where}: {label} has no {' or '.join(missing)}; skipped")
            continue
        by_id[obj["id"]] = obj
    families: dict[str, list[str]] = {}
    for obj in by_id.values():
        if obj["type"] == "relationship" and obj.get("relationship_type") == "indicates":
            target = by_id.get(obj.get("target_ref", ""))
            if target and target["type"] == "malware":
                ref = _wormhunt_ref(target)
                aliases = [target.get("name", ""), *target.get("aliases", [])]
                name = ref["external_id"] if ref else resolve_family(aliases)
                families.setdefault(obj.get("source_ref", ""), []).append(name)
    out: list[Indicator] = []
    for obj in by_id.values():
        if obj["type"] != "indicator":
            continue
        oid = obj["id"]
        if obj.get("revoked") is True:
            problems.append(f"{where}: {oid} is revoked; skipped")
            continue
        if obj.get("pattern_type", "stix") != "stix":
            problems.append(f"{where}: {oid} has pattern_type {obj.get('pattern_type')!r}, not stix; skipped")
            continue
        pattern = obj.get("pattern")
        if not isinstance(pattern, str) or not pattern.strip():
            problems.append(f"{where}: {oid} has no pattern; skipped")
            continue
        try:
            alternatives = parse_pattern(pattern)
        except ValueError as exc:
            problems.append(f"{where}: {oid}: {exc}; skipped")
            continue
        ref = _wormhunt_ref(obj)
        names = families.get(oid) or [obj.get("name") or next(iter(obj.get("labels") or []), "") or "imported"]
        if not families.get(oid):
            names = [resolve_family(names)]
        text = obj.get("description") or obj.get("name")
        note = {"en": str(text)} if text else {}
        base = oid.split("--", 1)[-1]
        for n, alt in enumerate(alternatives):
            if isinstance(alt, str):
                problems.append(f"{where}: {oid}: {alt}; skipped")
                continue
            try:
                kind, value, match = _to_target(alt)
            except _Unrepresentable as exc:
                problems.append(f"{where}: {oid}: {exc}; skipped")
                continue
            if (
                ref
                and len(alternatives) == 1
                and match == "regex"
                and str(ref.get("description", "")).startswith("glob ")
            ):
                value, match = ref["description"][5:], "glob"  # a glob LIKE could not say, exported as MATCHES
            ind_id = (
                ref["external_id"]
                if ref and len(alternatives) == 1
                else f"stix-{base}" + (f"-{n}" if len(alternatives) > 1 else "")
            )
            for family in dict.fromkeys(names):
                try:
                    out.append(
                        Indicator(
                            family=family,
                            id=ind_id,
                            type=kind,
                            value=value,
                            match=match,
                            weight=_weight(obj.get("confidence")),
                            confidence="S",
                            source=source,
                            note=note,
                        )
                    )
                except KnowledgeError as exc:
                    problems.append(f"{where}: {oid}: {exc}; skipped")
    return out, problems


def load_stix(path: str | Path) -> tuple[list[Indicator], list[str]]:
    """Indicators and problems from a STIX 2.1 bundle file."""
    return parse_bundle(read_json(path), str(path))


# ---------------------------------------------------------------- export


def _stamp(when: datetime) -> str:
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _sid(kind: str, *content: Any) -> str:
    return f"{kind}--{uuid.uuid5(NAMESPACE, json.dumps([kind, *content], sort_keys=True, default=str))}"


def _comparison(path: str, ind: Indicator) -> str:
    if ind.match == "exact":
        return f"{path} = {quote(ind.value)}"
    if ind.match == "regex":
        return f"{path} MATCHES {quote(ind.value)}"
    like = glob_to_like(ind.value)
    if like is not None:
        return f"{path} LIKE {quote(like)}"
    return f"{path} MATCHES {quote('^' + fnmatch.translate(ind.value))}"


def indicator_pattern(ind: Indicator) -> str:
    """The STIX pattern for a wormhunt indicator; _Unrepresentable says why there is none."""
    kind, value = ind.type, str(ind.value)
    hexdigest = f"[0-9a-fA-F]{{{_HASH_LEN.get(kind, 0)}}}"
    if kind in _HASH_LEN and (ind.match != "exact" or not re.fullmatch(hexdigest, value)):
        raise _Unrepresentable(f"a {kind} must be an exact hex digest in STIX")
    if kind == "port":
        if ind.match != "exact" or not value.isdigit() or not 0 <= int(value) <= 65535:
            raise _Unrepresentable("a port must be one exact number in STIX")
        return f"[network-traffic:dst_port = {int(value)}]"
    if kind == "ip":
        return "[" + _comparison("ipv6-addr:value" if ":" in value else "ipv4-addr:value", ind) + "]"
    if kind in _EXPORT_PAIRS:
        prefix = _EXPORT_PAIRS[kind]
        if ind.match == "regex":
            raise _Unrepresentable(f"a {kind} regex cannot be split into folder and name")
        cut = max(value.rfind("\\"), value.rfind("/"))
        folder, name = value[: max(cut, 0)], value[cut + 1 :]
        if cut <= 0 or not name:
            raise _Unrepresentable(f"{kind} {value!r} has no folder and file name to split")
        if ind.match == "exact":
            return f"[{prefix}parent_directory_ref.path = {quote(folder)} AND {prefix}name = {quote(name)}]"
        like_folder, like_name = glob_to_like(folder), glob_to_like(name)
        if like_folder is None or like_name is None:
            raise _Unrepresentable(f"glob {value!r} has characters SQL LIKE cannot say")
        folder_test = f"{prefix}parent_directory_ref.path LIKE {quote(like_folder)}"
        return f"[{folder_test} AND {prefix}name LIKE {quote(like_name)}]"
    path = _EXPORT_PATHS.get(kind)
    if path is None:
        raise _Unrepresentable(f"type {kind} has no STIX object")
    return "[" + _comparison(path, ind) + "]"


def export_bundle(
    indicators: list[Indicator] | tuple[Indicator, ...],
    family_names: dict[str, str] | None = None,
    created: datetime | None = None,
    skipped: list[str] | None = None,
) -> dict[str, Any]:
    """A STIX 2.1 bundle of `indicators`. Indicators with no STIX form are left out, each with
    a line in `skipped` when a list is given. `family_names` maps a family id to the malware
    name (default: the id); `created` defaults to now (ids do not depend on it)."""
    stamp = _stamp(created or datetime.now(UTC))
    names = family_names or {}
    identity_id = _sid("identity", "wormhunt")
    common = {"spec_version": "2.1", "created": stamp, "modified": stamp}
    objects: list[dict[str, Any]] = [
        {"type": "identity", "id": identity_id, **common, "name": "wormhunt", "identity_class": "system"}
    ]
    malware: dict[str, str] = {}
    for ind in indicators:
        try:
            pattern = indicator_pattern(ind)
        except _Unrepresentable as exc:
            if skipped is not None:
                skipped.append(f"{ind.family}.{ind.id}: {exc}; not exported")
            continue
        if ind.family not in malware:
            malware[ind.family] = _sid("malware", ind.family)
            objects.append(
                {
                    "type": "malware",
                    "id": malware[ind.family],
                    **common,
                    "created_by_ref": identity_id,
                    "name": names.get(ind.family, ind.family),
                    "is_family": True,
                    "external_references": [{"source_name": REF_SOURCE, "external_id": ind.family}],
                }
            )
        ref: dict[str, str] = {"source_name": REF_SOURCE, "external_id": ind.id}
        if ind.match == "glob" and "MATCHES" in pattern:
            ref["description"] = "glob " + ind.value
        iid = _sid("indicator", ind.family, ind.id, ind.type, ind.match, ind.value)
        obj: dict[str, Any] = {
            "type": "indicator",
            "id": iid,
            **common,
            "created_by_ref": identity_id,
            "name": f"{ind.family} {ind.type} {ind.id}",
            "indicator_types": ["malicious-activity"],
            "pattern": pattern,
            "pattern_type": "stix",
            "valid_from": stamp,
            "confidence": max(1, min(100, round(ind.weight * 100))),
            "external_references": [ref],
        }
        if ind.note.get("en"):
            obj["description"] = ind.note["en"]
        objects.append(obj)
        objects.append(
            {
                "type": "relationship",
                "id": _sid("relationship", iid, malware[ind.family]),
                **common,
                "created_by_ref": identity_id,
                "relationship_type": "indicates",
                "source_ref": iid,
                "target_ref": malware[ind.family],
            }
        )
    return {"type": "bundle", "id": _sid("bundle", sorted(o["id"] for o in objects)), "objects": objects}
