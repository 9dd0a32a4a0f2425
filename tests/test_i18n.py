"""Both languages carry every message, with the same placeholders."""

from __future__ import annotations

import re

import pytest

from wormhunt.i18n import _catalog, normalize, t


def test_catalogs_have_the_same_keys_and_placeholders() -> None:
    en, zh = _catalog("en"), _catalog("zh-CN")
    assert set(en) == set(zh)
    for key in en:
        assert set(re.findall(r"{(\w+)}", en[key])) == set(re.findall(r"{(\w+)}", zh[key])), key


def test_rendering_and_language_names() -> None:
    assert t("status.infected", "zh-CN") == "已感染"
    assert "12 infected" in t("summary.hosts_total", "en", total=60, infected=12, suspicious=0, clean=48)
    assert t("summary.hosts_total", "en", total=1).count("{infected}") == 1  # a missing parameter shows itself
    assert normalize("zh_CN") == "zh-CN" and normalize("en-US") == "en"
    with pytest.raises(ValueError):
        normalize("fr")
