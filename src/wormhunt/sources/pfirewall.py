"""Windows Firewall log `pfirewall.log` (and the XP Internet Connection Firewall variant), formats.md section 8.

W3C-style: `#Fields:` names the space-separated columns (re-read whenever it appears: the
header comes back after a service restart, and newer builds append `pid`), `-` is empty,
times are local unless `#Time Format: UTC`. Each line is one packet or connection event
and becomes one `flows` row:

* action = the action word in lower case (`allow`, `drop`; XP: `open`, `open-inbound`,
  `close`); `INFO-EVENTS-LOST` lines are counted as skipped and their lost-event counts
  summed in `sink.meta["events_lost"]`;
* proto = the IP protocol number (`TCP`, `UDP`, `ICMP`, `ICMPv6` or a number such as `2`);
* bytes_out = `size` (the bytes went from src to dst), bytes_in / pkts_in / duration null;
* the path says which end is this host: SEND -> the source, RECEIVE -> the destination.
  Those addresses are collected in `sink.meta["local_ips"]`. The row's `host` is left
  null: the ingest fills it from the bundle the log was collected in.

A line cut short (the file copied while written) keeps its row when everything up to the
destination port is whole; a field that may have been cut mid-value is not trusted.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from wormhunt.model import FLOWS
from wormhunt.sources.base import Format, Sink, to_int
from wormhunt.sources.netlog import file_lines, proto_number, record, short_ip, text_lines
from wormhunt.sources.text import Encoding, iter_lines
from wormhunt.timeparse import parse_log_time

VENDOR = "windows-firewall"
DEFAULT_FIELDS = [
    "date",
    "time",
    "action",
    "protocol",
    "src-ip",
    "dst-ip",
    "src-port",
    "dst-port",
    "size",
    "tcpflags",
    "tcpsyn",
    "tcpack",
    "tcpwin",
    "icmptype",
    "icmpcode",
    "info",
    "path",
]
# Everything a flow row needs; a line cut before these end is not used.
CORE = ("date", "time", "action", "protocol", "src-ip", "dst-ip", "src-port", "dst-port")
ACTIONS = {"allow", "drop", "open", "open-inbound", "close"}
MAX_LOCAL_IPS = 256

_HEADER = re.compile(r"^#(?:Version|Verson|Software|Time Format|Fields):", re.IGNORECASE)
_SOFTWARE = re.compile(r"^#Software:\s*Microsoft (?:Windows Firewall|Internet Connection Firewall)", re.IGNORECASE)
_LINE = re.compile(
    r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} (?:ALLOW|DROP|INFO-EVENTS-LOST|OPEN|OPEN-INBOUND|CLOSE) \S+ \S+ \S+ ",
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}:[0-5]\d$")


def sniff(head: str) -> float:
    """The `#Software:` / `#Fields:` header, or (a copy without it) lines of `date time ACTION ...`."""
    lines = [line.strip() for _, line in iter_lines(head[:65536]) if line.strip()][:60]
    if not lines:
        return 0.0
    if any(_SOFTWARE.match(line) for line in lines[:10]):
        return 0.98
    if any(line.startswith("#Fields: date time action protocol src-ip") for line in lines[:10]):
        return 0.97
    data = [line for line in lines if not line.startswith("#")]
    hits = sum(1 for line in data if _LINE.match(line))
    return 0.9 if data and hits >= max(1, len(data) // 2) else 0.0


def parse_file(path: Path, encoding: Encoding, sink: Sink) -> None:
    """Stream a firewall log line by line (bounded memory)."""
    _parse(file_lines(path, encoding, sink), sink)


def parse_text(text: str, sink: Sink) -> None:
    """Same parser over text already in memory (small files, tests)."""
    _parse(text_lines(text), sink)


def _unicast(ip: str) -> bool:
    """An address that can be this host's own (not multicast, broadcast, loopback or unspecified)."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if addr.is_multicast or addr.is_loopback or addr.is_unspecified:
        return False
    return not (addr.version == 4 and ip.endswith(".255"))  # a subnet broadcast, most likely


def _when(date: str, clock: str) -> datetime | None:
    """`2019-03-05` and `13:45:07` (local unless the header said UTC; the caller records which)."""
    if not (_DATE.match(date) and _TIME.match(clock)):
        return None
    stamp = parse_log_time(f"{date} {clock}")
    return stamp.value if stamp else None


def _parse(lines: Iterable[tuple[int, int, str]], sink: Sink) -> None:
    fields = list(DEFAULT_FIELDS)
    index = {name: i for i, name in enumerate(fields)}
    utc = False
    local_used = False
    local_ips: set[str] = set()
    lost = 0
    for n, off, raw in lines:
        text = raw.strip()
        if not text:
            continue
        if text.startswith("#"):
            if text.lower().startswith("#fields:"):
                fields = text.split(":", 1)[1].split()
                index = {name.lower(): i for i, name in enumerate(fields)}
            elif text.lower().startswith("#time format:"):
                utc = text.split(":", 1)[1].strip().upper() == "UTC"
            elif not _HEADER.match(text):
                sink.skip(n, "unknown header line", raw)
            continue
        parts = text.split()
        # A short line was cut while written: its last value may be partial unless a space followed it.
        whole = len(parts) if len(parts) >= len(fields) or raw[-1:].isspace() else len(parts) - 1

        def get(name: str, parts: list[str] = parts, whole: int = whole, index: dict[str, int] = index) -> str | None:
            i = index.get(name)
            return None if i is None or i >= whole or parts[i] == "-" else parts[i]

        action = (get("action") or "").lower()
        if action == "info-events-lost":
            lost += to_int(get("info")) or 0
            sink.skip(n, "firewall lost events (INFO-EVENTS-LOST)", raw)
            continue
        if any(index.get(name, 0) >= whole for name in CORE if name in index):
            sink.skip(n, "truncated line", raw)
            continue
        if action not in ACTIONS:
            sink.skip(n, "unknown action" if action else "no action", raw)
            continue
        ts = _when(get("date") or "", get("time") or "")
        if ts is None:
            sink.skip(n, "no readable date/time", raw)
            continue
        src, dst = get("src-ip"), get("dst-ip")
        if not src or not dst:
            sink.skip(n, "no src-ip/dst-ip", raw)
            continue
        src, dst = short_ip(src), short_ip(dst)
        path = (get("path") or "").upper()
        local = src if path == "SEND" else dst if path == "RECEIVE" else None
        if local and len(local_ips) < MAX_LOCAL_IPS and local not in local_ips and _unicast(local):
            local_ips.add(local)
        local_used |= not utc
        sink.row(
            FLOWS,
            record(
                n,
                off,
                None,
                ts,
                src_ip=src,
                src_port=to_int(get("src-port"), 65535),
                dst_ip=dst,
                dst_port=to_int(get("dst-port"), 65535),
                proto=proto_number(get("protocol")),
                action=action,
                service=None,
                bytes_out=to_int(get("size"), 2**63 - 1),
                bytes_in=None,
                pkts_in=None,
                duration=None,
                vendor=VENDOR,
            ),
        )
    if local_used:
        sink.meta["local_time"] = True
    if local_ips:
        sink.meta["local_ips"] = sorted(local_ips)
    if lost:
        sink.meta["events_lost"] = lost


FORMATS: tuple[Format, ...] = (
    Format(
        "pfirewall",
        "Windows Firewall log (pfirewall.log)",
        sniff,
        parse_text=parse_text,
        parse_file=parse_file,
        host_evidence=True,
    ),
)
