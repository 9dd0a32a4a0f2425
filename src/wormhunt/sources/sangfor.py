"""Sangfor AF / NGAF `fwlog:` syslog with Chinese `键:值` pairs.

`<PRI>Mon dd HH:MM:SS host fwlog: 日志类型:<type>, 源IP:..., 源端口:..., ...` (formats.md section 9.6). Keys are
Chinese, the separators ASCII `:` and `, `; spelling differs between log types (严重等级/严重级别, 动作/系统动作).
Attack logs (IPS防护日志, WAF, DOS, botnet ...; any line naming an attack or a vulnerability) become `net_alerts`;
other logs with both endpoints (服务控制或应用控制 ...) become `flows`. The payload carries no time, so the syslog
header's (device-local, usually year-less) time is used. Other Sangfor products' `key=value;` and `|!`-delimited
JSON events are counted as skipped: their field names are not documented in the reference material.
"""

from __future__ import annotations

import re
from typing import Any

from wormhunt.model import FLOWS, NET_ALERTS
from wormhunt.sources.base import Format, Sink, to_int
from wormhunt.sources.netlog import choose_time, proto_number, record, sniff_hits, syslog_parsers, valid_ip
from wormhunt.sources.syslog import split_header

VENDOR = "sangfor"
_MARK = re.compile(r"(?:(?<=\s)|^)fwlog:\s*")
# A pair starts after `, ` when a key (no comma or colon in it) and a colon follow: values such as a
# vulnerability name may contain commas, and `URL:http://...` colons.
_SPLIT = re.compile(r",\s*(?=[^,:：\s][^,:：]{0,39}[:：])")
_SNIFF = re.compile(r"fwlog:\s*日志类型[:：]")
_OTHER_SANGFOR = re.compile(r"\|!\w+\|!|日志类型=")

SEVERITY = {
    "高": "high",
    "中": "medium",
    "低": "low",
    "严重": "critical",
    "致命": "critical",
    "危急": "critical",
    "信息": "info",
    "提示": "info",
}
ACTIONS = {
    "允许": "allow",
    "拒绝": "deny",
    "阻断": "deny",
    "阻止": "deny",
    "丢弃": "deny",
    "放行": "allow",
    "被记录": "log",
    "记录": "log",
}
_ATTACK_KEYS = ("漏洞名称", "攻击类型", "威胁名称", "病毒名称")


def sniff(head: str) -> float:
    hits, lines = sniff_hits(head, _SNIFF)
    return 0.96 if lines and hits >= max(1, lines // 2) else 0.6 if hits >= 2 else 0.0


def pairs(payload: str) -> dict[str, str]:
    """`日志类型:IPS防护日志, 源IP:1.2.3.4, ...` -> {key: value} (the first of a repeated key wins)."""
    out: dict[str, str] = {}
    for piece in _SPLIT.split(payload):
        key, sep, value = piece.replace("：", ":", 1).partition(":")
        key = key.strip()
        if sep and key and key not in out:
            out[key] = value.strip()
    return out


def _line(no: int, offset: int, line: str, sink: Sink, year: int) -> str | None:
    m = _MARK.search(line)
    if not m:
        if _OTHER_SANGFOR.search(line):
            return "other Sangfor log form (key=value; or |! JSON)"
        return "not a Sangfor fwlog line"
    kv = pairs(line[m.end() :])
    log_type = kv.get("日志类型")
    if not log_type:
        return "no 日志类型 (log type)"
    src, dst = valid_ip(kv.get("源IP")), valid_ip(kv.get("目的IP"))
    if src is None or dst is None:
        return "no source/destination address"
    h = split_header(line[: m.start()], year)
    ts = choose_time([h.stamp], sink)
    if ts is None:
        return "no readable date/time"
    raw_action = kv.get("动作") or kv.get("系统动作")
    common: dict[str, Any] = record(
        no,
        offset,
        h.host or (h.rest.strip() or None),
        ts,
        src_ip=src,
        src_port=to_int(kv.get("源端口"), 65535),
        dst_ip=dst,
        dst_port=to_int(kv.get("目的端口"), 65535),
        proto=proto_number(kv.get("协议")),
        action=ACTIONS.get(raw_action, raw_action.lower()) if raw_action else None,
        vendor=VENDOR,
    )
    attack = next((kv[k] for k in _ATTACK_KEYS if kv.get(k)), None)
    if attack is not None:
        severity = kv.get("严重等级") or kv.get("严重级别")
        sink.row(
            NET_ALERTS,
            {
                **common,
                "signature": attack,
                "signature_id": kv.get("漏洞ID") or kv.get("规则ID") or None,
                "severity": SEVERITY.get(severity, severity) if severity else None,
            },
        )
        return None
    up, down = kb(kv.get("上行流量(KB)")), kb(kv.get("下行流量(KB)"))
    sink.row(
        FLOWS,
        {
            **common,
            "service": kv.get("应用名称") or kv.get("应用类型") or None,
            "bytes_out": up,
            "bytes_in": down,
            "pkts_in": None,
            "duration": None,
        },
    )
    return None


def kb(text: str | None) -> int | None:
    """Traffic printed in KB (the unit is in the key) -> bytes."""
    n = to_int(text, 2**52)
    return None if n is None else n * 1024


parse_text, parse_file = syslog_parsers(_line)

FORMATS: tuple[Format, ...] = (
    Format(
        "sangfor",
        "Sangfor AF/NGAF fwlog syslog (Chinese key:value)",
        sniff,
        parse_text=parse_text,
        parse_file=parse_file,
        host_evidence=False,
    ),
)
