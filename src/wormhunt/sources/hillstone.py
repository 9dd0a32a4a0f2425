"""Hillstone StoneOS traffic logs: `Traffic@FLOW: SESSION:` and `Traffic@FLOW: NAT:` lines.

`<PRI>Mon dd HH:MM:SS <serial>(vsys) <hex event id> Traffic@FLOW: SESSION: a:p->b:p(TCP), key value, key value, ...`
(formats.md section 9.5). Keys and values are separated by a space, not `=`, and the separators between pairs differ
by firmware (`,`, `.`, or nothing at all), so the payload is cut at a list of known keywords instead of at commas.
The device ends each message with `\\n\\0`; a capture keeps the NUL (or, through Logstash, the escaped text).
No threat/IPS log form of StoneOS is documented in the reference material, so other modules are counted as skipped.
"""

from __future__ import annotations

import re
from typing import Any

from wormhunt.model import FLOWS
from wormhunt.sources.base import Format, Sink, to_int
from wormhunt.sources.netlog import BLANK, choose_time, proto_number, record, sniff_hits, syslog_parsers, valid_ip
from wormhunt.sources.syslog import split_header
from wormhunt.timeparse import parse_log_time

VENDOR = "hillstone"
_MARK = re.compile(r"(?:(?<=\s)|^)(?P<mod>[A-Za-z]+)@(?P<cat>[A-Za-z]+):\s*(?:(?P<type>[A-Z]+):\s*)?")
_ENDPOINTS = re.compile(
    r"^(?P<sip>[0-9A-Fa-f.:]+?):(?P<sp>\d{1,5})->(?P<dip>[0-9A-Fa-f.:]+?):(?P<dp>\d{1,5})\((?P<proto>[A-Za-z0-9-]+)\)"
)
# Keywords that start a pair; longest first so `send packets` is not read as `send`.
KEYWORDS = (
    "receive packets",
    "receive bytes",
    "send packets",
    "send bytes",
    "start time",
    "close time",
    "session end",
    "application",
    "interface",
    "dnat to",
    "snat to",
    "policy",
    "user",
    "host",
    "mac",
    "rule",
    "vr",
)
_KEY = re.compile(r"(?:^|(?<=[\s,.]))(" + "|".join(re.escape(k) for k in KEYWORDS) + r")(?=[\s,.]|$)")
_SNIFF = re.compile(
    r"\S+\(\w+\)\s+[0-9a-fA-F]{6,10}\s+Traffic@FLOW:\s*(?:SESSION|NAT):|Traffic@FLOW:\s*SESSION:\s*\S+->"
)
# Logstash captures show the trailing `\n\0` as escaped text.
_ESCAPED_END = re.compile(r"(?:\\n)?(?:\\u0000|\\0|\\x00)+$")


def sniff(head: str) -> float:
    hits, lines = sniff_hits(head, _SNIFF, " \t\x00")
    return 0.96 if lines and hits >= max(1, lines // 2) else 0.6 if hits >= 2 else 0.0


def _clean(raw: str) -> str:
    """The line without blanks and the `\\n\\0` end the device (or Logstash's escaping) leaves."""
    return _ESCAPED_END.sub("", raw.strip(BLANK)).rstrip(BLANK)


def pairs(text: str) -> dict[str, list[str]]:
    """`application X, vr trust-vr, send bytes 74,start time ...` -> {keyword: [values]} in order."""
    out: dict[str, list[str]] = {}
    found = list(_KEY.finditer(text))
    for k, m in enumerate(found):
        end = found[k + 1].start() if k + 1 < len(found) else len(text)
        value = text[m.end() : end].strip(" ,.;\t")
        out.setdefault(m.group(1), []).append(value)
    return out


def _line(no: int, offset: int, line: str, sink: Sink, year: int) -> str | None:
    m = _MARK.search(line)
    if not m:
        return "not a Hillstone log line"
    if (m.group("mod"), m.group("cat")) != ("Traffic", "FLOW") or m.group("type") not in ("SESSION", "NAT"):
        return f"other Hillstone log type ({m.group('mod')}@{m.group('cat')})"
    rest = line[m.end() :]
    e = _ENDPOINTS.match(rest)
    if not e:
        return "no source/destination address"
    src, dst = valid_ip(e.group("sip")), valid_ip(e.group("dip"))
    if src is None or dst is None:
        return "no source/destination address"
    kv = pairs(rest[e.end() :])

    def one(key: str) -> str | None:
        vals = kv.get(key)
        return vals[0] if vals and vals[0] not in ("", "-") else None

    h = split_header(line[: m.start()], year)
    host = h.host.split("(", 1)[0] if h.host else None  # `<serial>(root)`: the vsys is not part of the name
    start, close = parse_log_time(one("start time")), parse_log_time(one("close time"))
    ts = choose_time([start, close, h.stamp], sink)
    if ts is None:
        return "no readable date/time"
    rcv_pkts = to_int(one("receive packets"), 2**62)
    duration = None
    if start is not None and close is not None and close.value >= start.value:
        duration = int((close.value - start.value).total_seconds())
    if m.group("type") == "NAT":
        action = "dnat" if "dnat to" in kv else "snat" if "snat to" in kv else "nat"
    elif "deny" in (v.lower() for v in kv.get("policy", [])):
        action = "deny"
    else:
        action = end_action(one("session end"), rcv_pkts)
    row: dict[str, Any] = record(
        no,
        offset,
        host,
        ts,
        src_ip=src,
        src_port=to_int(e.group("sp"), 65535),
        dst_ip=dst,
        dst_port=to_int(e.group("dp"), 65535),
        proto=proto_number(e.group("proto")),
        action=action,
        service=one("application"),
        bytes_out=to_int(one("send bytes"), 2**62),
        bytes_in=to_int(one("receive bytes"), 2**62),
        pkts_in=rcv_pkts,
        duration=duration,
        vendor=VENDOR,
    )
    sink.row(FLOWS, row)
    return None


def end_action(reason: str | None, rcv_pkts: int | None) -> str:
    """`session end` reason as an action word: `TCP RST` -> reset; `Ageout` with nothing received -> timeout
    (no answer); `TCP FIN` and other ends -> close; no end reason (a session-start log) -> accept."""
    if reason is None:
        return "accept"
    r = reason.lower()
    if "rst" in r or "reset" in r:
        return "reset"
    if "age" in r and not rcv_pkts:
        return "timeout"
    return "close"


parse_text, parse_file = syslog_parsers(_line, _clean)

FORMATS: tuple[Format, ...] = (
    Format(
        "hillstone",
        "Hillstone StoneOS traffic log (Traffic@FLOW SESSION / NAT)",
        sniff,
        parse_text=parse_text,
        parse_file=parse_file,
        host_evidence=False,
    ),
)
