"""`systeminfo` output in any language of the label dictionary (list format).

Labels are matched through `knowledge/headers.yaml`; a label the dictionary lacks is placed
by systeminfo's fixed label order. Values start at a common display column, which is how
labels that contain a colon themselves (`Virtual Memory: Max Size:`) are split correctly.
The declared hotfix count is kept beside the listed entries, because systeminfo truncates
long lists (formats.md section 6).
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from typing import Any

from wormhunt import timeparse
from wormhunt.knowledge import load
from wormhunt.model import HOST_INFO, HOTFIXES
from wormhunt.sources.base import Sink, to_int
from wormhunt.sources.text import Labels, display_width, is_prompt, iter_lines, normalize_label, not_available

_LABELS = Labels("systeminfo")
# English wordings: the first label of each entry in the dictionary, plus older English variants.
_ENGLISH = {normalize_label(w[0]) for w in load("headers")["systeminfo"].values()} | {
    normalize_label(w)
    for w in ("System Up Time", "NetWork Card(s)", "Page File: Max Size", "Page File: Available", "Page File: In Use")
}
_ITEM = re.compile(r"^\s*\[(\d+)\]\s*:\s*(.*?)\s*$")
_CUT_ITEM = re.compile(r"^\s*\[\d*\]?\s*$")
# `(?!\d)`, not `\b`: XP/2003 list `KB893803v2 - Update`, where `\b` after the digits found no KB.
_KB = re.compile(r"\bKB\d{6,7}(?!\d)", re.IGNORECASE)
_VERSION = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)")
_CANDIDATE = re.compile(r"[:：](?=\s|$)")


def _label_split(line: str, value_col: int | None) -> tuple[str, str] | None:
    """Split `Label:   value` at the colon whose value starts at the common column."""
    candidates = [m.end() for m in _CANDIDATE.finditer(line)]
    if not candidates:
        return None
    known = [c for c in candidates if _LABELS.get(line[: c - 1])]
    if known:
        cut = known[-1] if value_col is None else min(known, key=lambda c: abs(_value_col(line, c) - value_col))
    elif value_col is not None:
        cut = min(candidates, key=lambda c: abs(_value_col(line, c) - value_col))
    else:
        cut = candidates[0]
    return line[: cut - 1].strip(), line[cut:].strip()


def _value_col(line: str, cut: int) -> int:
    rest = line[cut:]
    pad = len(rest) - len(rest.lstrip())
    return display_width(line[:cut]) + pad


def _common_value_col(lines: list[str]) -> int | None:
    cols: Counter[int] = Counter()
    for line in lines:
        if not line or line[0].isspace():
            continue
        for m in _CANDIDATE.finditer(line):
            if _LABELS.get(line[: m.end() - 1]):
                cols[_value_col(line, m.end())] += 1
    return cols.most_common(1)[0][0] if cols else None


def sniff(head: str) -> float:
    lines = [line for _, line in iter_lines(head)]
    found = set()
    for line in lines[:60]:
        split = _label_split(line, None) if line and not line[0].isspace() else None
        if split and (name := _LABELS.get(split[0])):
            found.add(name)
    core = found & {"host_name", "os_name", "os_version", "hotfixes", "system_type", "boot_time"}
    if len(core) >= 3:
        return 0.95
    return 0.4 if len(core) == 2 else 0.0


def _first_int(text: str) -> int | None:
    m = re.search(r"[0-9][0-9,.\u00a0 ]*", text)
    return to_int(re.sub(r"[^0-9]", "", m.group(0))) if m else None


def parse(text: str, sink: Sink) -> None:
    """Parse systeminfo into one `host_info` row and `hotfixes` rows (several reports in a file are kept apart)."""
    lines = list(iter_lines(text))
    value_col = _common_value_col([line for _, line in lines])
    report: dict[str, Any] | None = None
    block: str | None = None
    prev_label: str | None = None

    def finish() -> None:
        if report is not None:
            _emit(report, sink)

    for no, line in lines:
        if not line.strip():
            continue
        if is_prompt(line):
            continue
        if not line[0].isspace():
            split = _label_split(line, value_col)
            if split is None:
                if report is not None:
                    sink.skip(no, "not a systeminfo line", line)
                continue
            label, value = split
            name = _LABELS.get(label)
            if name is None and prev_label in _LABELS.order and report is not None:
                # Unknown wording: systeminfo prints labels in a fixed order, so take the next one.
                idx = _LABELS.order.index(prev_label) + 1
                name = _LABELS.order[idx] if idx < len(_LABELS.order) else None
                if name in report["fields"]:
                    name = None
            if name is None:
                if report is not None:
                    sink.skip(no, "unknown label", line)
                block = "unknown"
                continue
            if report is None or (name in ("host_name", "os_name") and name in report["fields"]):
                finish()
                report = {"line": no, "fields": {}, "items": {}, "nic_ips": [], "languages": Counter()}
            report["fields"][name] = (no, value)
            report["languages"][_language(label)] += 1
            block, prev_label = name, name
            continue
        if report is None or block is None:
            continue
        item = _ITEM.match(line)
        if block == "network_cards":
            if item:
                try:
                    ipaddress.ip_address(item.group(2).split("%")[0])
                    report["nic_ips"].append(item.group(2))
                except ValueError:
                    pass
            continue
        if item:
            report["items"].setdefault(block, []).append((no, item.group(2)))
        elif block == "hotfixes" and _CUT_ITEM.match(line):
            report["hotfix_cut_line"] = True
            sink.skip(no, "hotfix entry cut short (systeminfo truncated the list)", line)
        elif block not in ("hyperv", "processors", "unknown"):
            sink.skip(no, "unexpected continuation line", line)
    finish()


def _language(label: str) -> str:
    if re.search(r"[\u4e00-\u9fff]", label):
        return "zh-CN"
    return "en" if normalize_label(label) in _ENGLISH else "other"


def _date_order(texts: list[str | None], locale: str) -> str | None:
    """Day or month first? The user's date format, not the locale, decides; dates that
    cannot be ambiguous (a part above 12) settle it, the locale is only the tie-breaker."""
    for text in texts:
        for a, b in re.findall(r"\b(\d{1,2})[/.\-](\d{1,2})[/.\-]\d{4}\b", text or ""):
            if int(a) > 12:
                return "dmy"
            if int(b) > 12:
                return "mdy"
    return "dmy" if re.match(r"^(de|fr|es|it|nl|en-gb|ru|pt|el)", locale.lower()) else None


def _emit(report: dict[str, Any], sink: Sink) -> None:
    fields: dict[str, tuple[int, str]] = report["fields"]

    def val(name: str) -> str | None:
        v = fields.get(name, (0, None))[1]
        return None if not_available(v) else v

    version = val("os_version")
    build = sp = None
    if version:
        m = _VERSION.search(version)
        if m:
            build = to_int(m.group(3))
            middle = version[m.end() :].strip()
            sp_text = re.sub(r"\s*\S+\s+\d+\s*$", "", middle).strip()  # drop "Build 7601" / "版本 7601"
            sp = None if not_available(sp_text) or not sp_text else sp_text
    tz = val("time_zone")
    offset = timeparse.tz_offset_minutes(tz)
    order = _date_order([val("install_date"), val("boot_time"), val("bios")], val("system_locale") or "")
    install = timeparse.parse_datetime(val("install_date"), order)
    boot = timeparse.parse_datetime(val("boot_time"), order)
    if install.ambiguous or boot.ambiguous:
        # Day and month could both be either: read month first, and say so.
        sink.meta.setdefault("warnings", []).append({"code": "ambiguous_dates", "order": "month first"})
    items = report["items"].get("hotfixes", [])
    hotfix_header = val("hotfixes")
    declared = _first_int(hotfix_header) if hotfix_header else 0
    if declared is not None and declared > len(items) and items and not report.get("hotfix_cut_line"):
        # systeminfo cuts a long list at any character. Without a cut-off `[NN` line after it,
        # the last item is where the cut fell (`[240]: KB2862`). Its KB number is whole if it
        # has seven digits (the most a KB has) or text follows it (`KB2862152 - Update`);
        # otherwise it may be a longer number cut short, so do not report a made-up KB.
        no, raw = items[-1]
        kb = _KB.search(raw)
        if not (kb and (len(kb.group(0)) == 9 or raw[kb.end() :].strip())):
            items = items[:-1]
            sink.skip(no, "hotfix entry cut short (systeminfo truncated the list)", raw)
    sink.row(
        HOST_INFO,
        {
            "line": report["line"],
            "hostname": val("host_name"),
            "os_name": val("os_name"),
            "os_version": version,
            "os_build": build,
            "service_pack": sp,
            "system_type": val("system_type"),
            "domain": val("domain"),
            "install_date": install.value,
            "boot_time": boot.value,
            "time_zone": tz,
            "utc_offset_min": offset,
            "locale": val("system_locale"),
            # The labels' language by majority: German `Hostname` alone looks English.
            "language": report["languages"].most_common(1)[0][0] if report["languages"] else None,
            "ips": report["nic_ips"] or None,
            "hotfixes_declared": declared,
            "hotfixes_listed": len(items),
        },
    )
    for no, raw in items:
        kb = _KB.search(raw)
        sink.row(
            HOTFIXES,
            {"line": no, "hotfix": kb.group(0).upper() if kb else raw, "raw": raw, "source": "systeminfo"},
        )
    if declared is not None and declared > len(items):
        sink.meta.setdefault("warnings", []).append(
            {"code": "hotfix_list_truncated", "declared": declared, "listed": len(items)}
        )
