"""User-facing text in English and Simplified Chinese (`--lang en|zh-CN`).

Messages live in `<lang>.yaml` beside this file; code refers to them by key. A key
missing from a language falls back to English, and a missing key shows itself.
"""

from __future__ import annotations

import locale
import os
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

LANGS = ("en", "zh-CN")


@cache
def _catalog(lang: str) -> dict[str, str]:
    return yaml.safe_load(files(__package__).joinpath(f"{lang}.yaml").read_text(encoding="utf-8"))


def default_lang() -> str:
    """The language from WORMHUNT_LANG or the locale (zh_* -> zh-CN), else English."""
    env = os.environ.get("WORMHUNT_LANG") or os.environ.get("LC_ALL") or os.environ.get("LANG") or ""
    if not env:
        env = (locale.getlocale()[0] or "") if hasattr(locale, "getlocale") else ""
    return "zh-CN" if env.lower().startswith("zh") else "en"


def normalize(lang: str | None) -> str:
    if not lang:
        return default_lang()
    low = lang.replace("_", "-").lower()
    if low.startswith("zh"):
        return "zh-CN"
    if low.startswith("en"):
        return "en"
    raise ValueError(f"unsupported language {lang!r}: use en or zh-CN")


class _Safe(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def t(key: str, lang: str = "en", **params: Any) -> str:
    """The message `key` in `lang`, with `params` filled in."""
    text = _catalog(lang).get(key) or _catalog("en").get(key) or key
    return text.format_map(_Safe(params))
