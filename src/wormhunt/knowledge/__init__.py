"""Knowledge files (YAML), loaded once and checked against a schema.

Knowledge is data: adding a signature, a label or a binary is editing a YAML file here,
and a malformed file fails loudly at load time with the path to the bad value.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import Any

import yaml


class KnowledgeError(ValueError):
    pass


# A tiny schema language: a type, a list `[schema]`, a dict of fixed keys (a key ending in
# "?" is optional), or `{str: schema}` for a mapping with free keys.
_STR_LIST = [str]
SCHEMAS: dict[str, Any] = {
    "headers": {str: (dict, list)},
    "system_binaries": {
        "binaries": {str: {"folders": _STR_LIST, "max_instances?": int, "parents?": _STR_LIST}},
        "worm_folders": [{"path": str, "family": (str, type(None)), "confidence": str}],
    },
    "network_signatures": {
        "signatures": [
            {
                "name": str,
                "kind": frozenset({"probe", "exploit", "implant", "scan", "miner"}),
                "severity": frozenset({"info", "low", "medium", "high", "critical"}),
                "attack": str,
                "cve": _STR_LIST,
                "match": str,
                "ids": {str: _STR_LIST},
                "ports?": [int],
                "confidence": str,
            }
        ]
    },
    "persistence": {
        "suspicious_paths": _STR_LIST,
        "script_tricks": _STR_LIST,
        "svchost_groups": _STR_LIST,
        "miner_commandline": _STR_LIST,
        "miner_ports": [int],
        "busy_min_share": (int, float),
        "busy_min_minutes": (int, float),
        "busy_expected": _STR_LIST,
    },
    "network": {
        "smb_fanout": {
            "ports": [int],
            "window_minutes": (int, float),
            "min_distinct_targets": int,
            "scan_failed_ratio": (int, float),
            "onset_run": int,
        },
        "failed_actions": _STR_LIST,
        "host_smb_fanout": {"min_distinct_peers": int, "exempt_pids": [int]},
        "fanout_expected_roles": _STR_LIST,
    },
    "ms17010": {
        "reference": str,
        "bulletin": {"id": str, "parent_kb": str, "released": str, "source": frozenset({"C", "S", "U", "I"})},
        "families": [
            {
                "id": str,
                "name": str,
                "version": str,
                "builds?": [int],
                "min_build?": int,
                "server?": bool,
                "fixed_at_release?": bool,
                "source": frozenset({"C", "S", "U", "I"}),
                "srv_sys?": [
                    {"min": str, "private_prefix?": str, "source": frozenset({"C", "S", "U", "I"}), "note?": str}
                ],
                "cannot_take_fix?": [{"build": int, "source": frozenset({"C", "S", "U", "I"}), "reason": str}],
                "ubr_min?": {"ubr": int, "source": frozenset({"C", "S", "U", "I"})},
                "kb_floor?": str,
                "fixing_kbs?": [
                    {
                        "kb": str,
                        "kind": frozenset(
                            {
                                "security_only",
                                "monthly_rollup",
                                "preview_rollup",
                                "cumulative",
                                "out_of_band",
                                "security_update",
                                "later_update",
                            }
                        ),
                        "date?": str,
                        "source": frozenset({"C", "S", "U", "I"}),
                        "note?": str,
                    }
                ],
                "not_fixing_kbs?": [
                    {
                        "kb": str,
                        "kind": frozenset({"security_only", "monthly_rollup", "cumulative"}),
                        "date?": str,
                        "source": frozenset({"C", "S", "U", "I"}),
                        "note?": str,
                    }
                ],
                "later_rollups_listed?": bool,
                "note?": str,
            }
        ],
    },
}


def _check(value: Any, schema: Any, where: str) -> None:
    if isinstance(schema, list):
        if not isinstance(value, list):
            raise KnowledgeError(f"{where}: expected a list, got {type(value).__name__}")
        for i, item in enumerate(value):
            _check(item, schema[0], f"{where}[{i}]")
    elif isinstance(schema, dict):
        if not isinstance(value, dict):
            raise KnowledgeError(f"{where}: expected a mapping, got {type(value).__name__}")
        if str in schema:
            for k, v in value.items():
                if not isinstance(k, str):
                    raise KnowledgeError(f"{where}: key {k!r} is not a string")
                _check(v, schema[str], f"{where}.{k}")
            return
        for key, sub in schema.items():
            optional = key.endswith("?")
            name = key.rstrip("?")
            if name not in value:
                if optional:
                    continue
                raise KnowledgeError(f"{where}: missing key {name!r}")
            _check(value[name], sub, f"{where}.{name}")
        unknown = set(value) - {k.rstrip("?") for k in schema}
        if unknown:
            raise KnowledgeError(f"{where}: unknown keys {sorted(unknown)}")
    elif isinstance(schema, frozenset):
        if value not in schema:
            raise KnowledgeError(f"{where}: {value!r} is not one of {sorted(schema)}")
    elif not isinstance(value, schema) or (schema is int and isinstance(value, bool)):
        raise KnowledgeError(f"{where}: expected {schema}, got {value!r}")


def check(value: Any, schema: Any, where: str) -> None:
    """Check `value` against a schema of the tiny language above; KnowledgeError says where."""
    _check(value, schema, where)


def validate(name: str, data: Any) -> Any:
    """Check `data` against the schema of knowledge file `name`; return it unchanged."""
    _check(data, SCHEMAS[name], name)
    if name == "network_signatures":
        for i, sig in enumerate(data["signatures"]):
            try:
                re.compile(sig["match"])
            except re.error as exc:
                raise KnowledgeError(f"{name}.signatures[{i}].match: bad regular expression: {exc}") from None
    if name == "persistence":
        for key in ("suspicious_paths", "script_tricks", "miner_commandline"):
            for i, pattern in enumerate(data[key]):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise KnowledgeError(f"{name}.{key}[{i}]: bad regular expression: {exc}") from None
    if name == "ms17010":
        kb = re.compile(r"^KB\d{6,7}$")
        version = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
        for i, fam in enumerate(data["families"]):
            where = f"{name}.families[{i}]"
            if not fam.get("builds") and "min_build" not in fam:
                raise KnowledgeError(f"{where}: give builds or min_build")
            for key in ("fixing_kbs", "not_fixing_kbs"):
                for j, entry in enumerate(fam.get(key) or []):
                    if not kb.match(entry["kb"]):
                        raise KnowledgeError(f"{where}.{key}[{j}].kb: not a KB number: {entry['kb']!r}")
            if "kb_floor" in fam and not kb.match(fam["kb_floor"]):
                raise KnowledgeError(f"{where}.kb_floor: not a KB number: {fam['kb_floor']!r}")
            for j, entry in enumerate(fam.get("srv_sys") or []):
                if not version.match(entry["min"]):
                    raise KnowledgeError(f"{where}.srv_sys[{j}].min: not a file version: {entry['min']!r}")
    return data


@cache
def load(name: str) -> Any:
    """Load and validate `knowledge/<name>.yaml`."""
    text = files(__package__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return validate(name, yaml.safe_load(text))
