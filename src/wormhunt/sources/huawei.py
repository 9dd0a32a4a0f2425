"""Huawei USG / HiSecEngine firewall syslog: SECLOG session logs, POLICY permit/deny logs and IPS alerts.

A line is `<syslog header(s)> %%01MODULE/severity/MNEMONIC(l)[seq]:<payload>` (formats.md section 9.4). The payload
is either comma-separated `Key=Value` without spaces ending in `.` (SECLOG), `key=value, ...` (POLICY) or a sentence
followed by `(Key=Value, Key="quoted", ...)` (IPS), optionally behind `CID=0x...;`. The SNMP-trap form
`IPSTRAP/4/THREATTRAP:OID ... (SrcIp=..., DetectTime=...)` has no `%%01`. Key spelling varies by version (`VSys`
and `Vsys`), so keys are compared lower-case and looked up through alias lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from wormhunt.model import FLOWS, NET_ALERTS
from wormhunt.sources.base import Format, Sink, to_int
from wormhunt.sources.netlog import choose_time, proto_number, record, sniff_hits, syslog_parsers, valid_ip
from wormhunt.sources.syslog import split_header
from wormhunt.timeparse import Stamp, from_epoch, parse_log_time

VENDOR = "huawei"
# `%%01SECLOG/6/SESSION_TEARDOWN(l)[142]:` and the trap form `IPSTRAP/4/THREATTRAP:`; a tag must start a word.
_TAG = re.compile(
    r"(?:(?<=\s)|^)(?P<pct>%%\d{2})?(?P<mod>[A-Z][A-Z0-9_]{1,31})/(?P<sev>\d)/(?P<mnem>[A-Z][A-Z0-9_]{1,47})"
    r"(?:\([lsdLSD]\))?(?:\[\d+\])?:"
)
_CID = re.compile(r"^\s*CID=0x[0-9a-fA-F]+;\s*")
# The `(Key=Value, ...)` list at the end of IPS and trap payloads.
_PAREN = re.compile(r"\((?=\s*[A-Za-z][\w-]*=)(?P<body>.*)\)\s*\.?\s*$")
# Key=Value pairs: a value runs to the next `, Key=` (values may hold commas or spaces) or is quoted.
_KV = re.compile(r'([A-Za-z][\w.-]*)=("[^"]*"|.*?)\s*(?=,\s*[A-Za-z][\w.-]*=|$)')
_SNIFF = re.compile(r"(?:%%\d{2}[A-Z][A-Z0-9_]*/\d/[A-Z][A-Z0-9_]*(?:\([lsd]\))?(?:\[\d+\])?:|\bIPSTRAP/\d/[A-Z]+:)")

_SRC_IP = ("sourceip", "srcip", "source-ip", "srcipaddr")
_DST_IP = ("destinationip", "dstip", "destination-ip", "dstipaddr")
_SRC_PORT = ("sourceport", "srcport", "source-port")
_DST_PORT = ("destinationport", "dstport", "destination-port")
# Huawei Action words in IPS logs -> the project's alert actions (Alert: detected, traffic passed).
_ALERT_ACTIONS = {"block": "deny", "deny": "deny", "drop": "deny", "reset": "deny", "alert": "allow", "permit": "allow"}


def sniff(head: str) -> float:
    hits, lines = sniff_hits(head, _SNIFF)
    return 0.96 if lines and hits >= max(1, lines // 2) else 0.6 if hits >= 2 else 0.0


def parse_kv(body: str) -> dict[str, str]:
    """`Key=Value, Key="quoted"` or `Key=Value,Key=Value` -> lower-case keys (the first of a repeated key wins)."""
    out: dict[str, str] = {}
    for m in _KV.finditer(body):
        key = m.group(1).lower()
        if key not in out:
            value = m.group(2)
            out[key] = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value.strip()
    return out


def _first(kv: dict[str, str], keys: Iterable[str]) -> str | None:
    for k in keys:
        v = kv.get(k)
        if v:
            return v
    return None


def _payload_times(kv: dict[str, str]) -> tuple[Stamp | None, int | None]:
    """Session start (or detection) time printed in the payload, and the duration when both ends are there."""
    begin = to_int(kv.get("begintime"), 2**62)
    end = to_int(kv.get("endtime"), 2**62)
    if begin is not None:
        start = from_epoch(begin)
        if start is not None:
            dur = end - begin if end is not None and end >= begin else None
            return Stamp(start, True), dur
    for key in ("time", "detecttime", "starttime"):
        stamp = parse_log_time(kv.get(key))
        if stamp is not None:
            return stamp, None
    if end is not None and (stamp_end := from_epoch(end)) is not None:
        return Stamp(stamp_end, True), None
    return None, None


def _headers(prefix: str, year: int) -> tuple[list[Stamp], str | None]:
    """Stamps of the syslog headers in front of the tag (innermost first) and the innermost host.

    A relay may put its own header before the device's (`Sep 9 11:56:41 10.1.1.1 2020-09-09 10:05:11 FW-01`)."""
    stamps: list[Stamp] = []
    host = None
    rest = prefix
    for _ in range(3):
        h = split_header(rest, year)
        if h.stamp is None and h.host is None:
            break
        if h.stamp is not None:
            stamps.insert(0, h.stamp)
        if h.host:
            host = h.host
        rest = h.rest
    leftover = rest.strip().split()
    if len(leftover) == 1 and (host is None or not stamps):
        host = leftover[0]  # a bare device name without a time of its own
    return stamps, host


def _line(no: int, offset: int, line: str, sink: Sink, year: int) -> str | None:
    """Emit the record of one line; returns the reason when the line is not used."""
    m = _TAG.search(line)
    if not m:
        return "not a Huawei log line"
    mod, mnem = m.group("mod"), m.group("mnem")
    is_ips = mod in ("IPS", "IPSTRAP")
    is_seclog = mod == "SECLOG"
    is_policy = mod == "POLICY" and mnem in ("POLICYPERMIT", "POLICYDENY")
    if not (is_ips or is_seclog or is_policy):
        return "other Huawei log type"
    payload = _CID.sub("", line[m.end() :], count=1)
    paren = _PAREN.search(payload)
    body = paren.group("body") if paren else payload.strip().rstrip(".")
    kv = parse_kv(body)
    if not kv:
        return "truncated or empty Huawei payload"
    src, dst = valid_ip(_first(kv, _SRC_IP)), valid_ip(_first(kv, _DST_IP))
    if src is None or dst is None:
        return "no source/destination address"
    stamps, host = _headers(line[: m.start()], year)
    when, dur = _payload_times(kv)
    ts = choose_time([when, *stamps], sink)
    if ts is None:
        return "no readable date/time"
    common: dict[str, Any] = record(
        no,
        offset,
        host,
        ts,
        src_ip=src,
        src_port=to_int(_first(kv, _SRC_PORT), 65535),
        dst_ip=dst,
        dst_port=to_int(_first(kv, _DST_PORT), 65535),
        proto=proto_number(kv.get("protocol")),
        vendor=VENDOR,
    )
    if is_ips:
        name = kv.get("signname") or kv.get("threatname") or kv.get("attackname")
        if not name:
            return "IPS line without signature name"
        action = (kv.get("action") or "").lower()
        sink.row(
            NET_ALERTS,
            {
                **common,
                "signature": name,
                "signature_id": kv.get("signid") or kv.get("threatid"),
                "severity": (kv.get("severity") or "").lower() or None,
                "action": _ALERT_ACTIONS.get(action, action or None),
            },
        )
        return None
    rcv_pkts = to_int(kv.get("rcvpkts"), 2**62)
    if is_policy:
        action = "deny" if mnem == "POLICYDENY" else "accept"
    else:
        action = close_action(kv.get("closereason"), rcv_pkts)
    sink.row(
        FLOWS,
        {
            **common,
            "action": action,
            "service": kv.get("application") or kv.get("application-name") or None,
            "bytes_out": to_int(kv.get("sendbytes"), 2**62),
            "bytes_in": to_int(kv.get("rcvbytes"), 2**62),
            "pkts_in": rcv_pkts,
            "duration": dur,
        },
    )
    return None


def close_action(reason: str | None, rcv_pkts: int | None) -> str:
    """A session's CloseReason as an action word: a reset is `reset`; a session that aged out with nothing coming
    back is `timeout` (the connection got no answer); other ends are a normal `close`."""
    r = (reason or "").strip().lower()
    if "rst" in r or "reset" in r:
        return "reset"
    if "deny" in r or "block" in r:
        return "deny"
    if ("age" in r or "timeout" in r) and not rcv_pkts:
        return "timeout"
    return "close"


parse_text, parse_file = syslog_parsers(_line)

FORMATS: tuple[Format, ...] = (
    Format(
        "huawei",
        "Huawei USG firewall syslog (SECLOG sessions, POLICY, IPS)",
        sniff,
        parse_text=parse_text,
        parse_file=parse_file,
        host_evidence=False,
    ),
)
