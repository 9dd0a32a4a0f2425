"""Cisco ASA / FTD / PIX syslog: connection and deny messages -> `flows`, IPS audit -> `net_alerts`.

Messages used (formats.md section 9.3):
* 302013/302015 Built and 302014/302016 Teardown of TCP/UDP connections. A connection is
  one flow: the Teardown line (it has the duration, the byte count and the reason), oriented
  and timed by the Built line of the same connection id when it was seen. A Built line
  whose Teardown never came (the log ends, or the connection is still open) becomes a flow
  of its own with action `built` when the file ends. A Built line merged into its Teardown is
  neither a record nor a skip (it is used): such lines are counted in `sink.meta["merged_lines"]`,
  so records + skipped + merged lines = non-blank lines.
* 106023 (ACL deny), 106015 (TCP without a connection), 106001/106006/106007 (inbound
  denies), 710003 (to-the-box ACL deny): action `deny`; 106100 (ACL with `log`): `permit`
  or `deny` (one line may stand for `hit-cnt` packets).
* 4000xx IPS audit signatures: an alert with the IPS signature number and name; the
  severity is the syslog level's name.

Field rules:
* `src` is the initiator. In a Built line the first endpoint (`for ...`) is the foreign
  side: the initiator of an *inbound* connection, the responder of an *outbound* one. A
  Teardown without its Built is oriented by port: the endpoint with the lower port is taken
  for the server.
* Addresses are real (not the mapped ones in parentheses). With `names` configured the ASA
  prints host names instead of addresses; such a line is skipped ("host name instead of
  address"), since a flow needs addresses.
* `ts` is the connection's start: the Built line's time, or the Teardown's time minus its
  duration. Header times without a zone are device-local (`sink.meta["local_time"]`); lines
  without a year take `sink.meta["default_year"]`, else the file's modification year (the
  current year for text in memory), one year earlier when that would put the line in the
  future, and `sink.meta["year_guessed"]` is set. A line with no header time at all (some
  relays) keeps a null `ts` and is counted in `sink.meta["warnings"]`.
* Teardown reasons: `SYN Timeout` -> `timeout`; `TCP Reset-I`/`-O`, IPS resets -> `reset`;
  deny/terminate reasons -> `deny`; anything else (`TCP FINs`, idle timeouts, UDP) -> `close`.
  ASA reports one byte count for both directions: it goes to `bytes_out`, and `bytes_in`
  is 0 only when the total is 0 (so a connection that carried nothing counts as failed).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from wormhunt.model import FLOWS, NET_ALERTS
from wormhunt.sources.base import Format, Sink
from wormhunt.sources.netlog import file_lines, proto_number, sniff_hits, text_lines
from wormhunt.sources.syslog import split_header
from wormhunt.sources.text import Encoding

VENDOR = "cisco-asa"
_TAG = re.compile(r"%(ASA|FTD|PIX)-(?:session-)?(\d)-(\d{6}):?\s?")
# Sniffing wants the tag where a device puts it (after a header, a space or a colon), not
# quoted in documentation.
_SNIFF = re.compile(r"(?:^|[\s:>])%(?:ASA|FTD|PIX)-(?:session-)?\d-\d{6}: ")
_FACILITY = re.compile(
    r"^(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|local[0-7])\."
    r"(?:emerg|emergency|alert|crit|critical|err|error|warn|warning|notice|info|informational|debug)\w*:?$",
    re.IGNORECASE,
)
_PROG_TAG = re.compile(r"^[\w.-]+\[\d+\]:?$")
_PAREN = r"(?:\s?\([^)]*\))*"
_MAPPED = r"(?:\s?\([^)]*\))+"  # Built lines always print the mapped address: a line cut before it is truncated
_BUILT = re.compile(
    rf"^Built (?P<dir>inbound|outbound) (?P<proto>TCP|UDP|SCTP) connection (?P<id>\d+) for (?P<a>\S+?){_MAPPED}"
    rf"\s+to (?P<b>\S+?){_MAPPED}(?:\s|$)"
)
_TEARDOWN = re.compile(
    rf"^Teardown (?P<proto>TCP|UDP|SCTP) connection (?P<id>\d+) for (?P<a>\S+?){_PAREN}\s+to (?P<b>\S+?){_PAREN}"
    r"\s+duration (?:(?P<days>\d{1,5})d)?(?P<h>\d{1,7}):(?P<m>\d\d):(?P<s>\d\d)"
    r" bytes (?P<bytes>\d{1,18})\s*(?P<reason>.*)$"
)
_DENY_ACL = re.compile(
    r"^Deny (?P<proto>\S+) src (?P<a>\S+) dst (?P<b>\S+)(?: \(type \d+, code \d+\))? by access-group"
)
_DENY_NOCONN = re.compile(r"^Deny (?P<proto>TCP|UDP) \(no connection\) from (?P<a>\S+) to (?P<b>\S+)")
_DENY_INBOUND_CONN = re.compile(r"^Inbound (?P<proto>TCP|UDP) connection denied from (?P<a>\S+) to (?P<b>\S+)")
_DENY_INBOUND = re.compile(r"^Deny inbound (?P<proto>TCP|UDP|ICMP|\S+) from (?P<a>\S+) to (?P<b>\S+)")
_ACL_LOG = re.compile(
    r"^access-list \S+ (?P<verdict>permitted|denied|est-allowed) (?P<proto>\S+) (?P<a>\S+) -> (?P<b>\S+)"
)
_TO_BOX = re.compile(r"^(?P<proto>TCP|UDP|ICMP|SCTP) access denied by ACL from (?P<a>\S+) to (?P<b>\S+)")
_IPS = re.compile(r"^IPS:(?P<id>\d+) (?P<name>.+?) from (?P<a>\S+) to (?P<b>\S+) on interface")
_ACL_ENDPOINT = re.compile(r"^(?:.*/)?(?P<addr>[^/()]+)\((?P<port>\d+)\)$")

LEVELS = ("emergencies", "alert", "critical", "error", "warning", "notification", "informational", "debugging")
# Deny messages: pattern, and whether each endpoint is printed with its interface.
DENIES = {
    "106023": (_DENY_ACL, (True, True)),
    "106015": (_DENY_NOCONN, (False, False)),
    "106001": (_DENY_INBOUND_CONN, (False, False)),
    "106006": (_DENY_INBOUND, (False, False)),
    "106007": (_DENY_INBOUND, (False, False)),
    "710003": (_TO_BOX, (False, True)),
}
MAX_PENDING = 200_000  # Built lines waiting for their Teardown; beyond this the oldest are written as is

BLANK = " \t\r\x00\u3000"  # what iter_lines strips: such lines are blank, neither records nor skips
R_NOT_ASA = "not an ASA/FTD/PIX message"
R_OTHER = "other ASA message id"
R_NAME = "host name instead of address"
R_BAD = "message text not understood (truncated?)"
# Reasons that are routine in a real log (most ASA messages are of other ids): a few examples
# each, so they do not crowd the examples of lines that went wrong out of the manifest.
ROUTINE = {R_OTHER: 20, R_NOT_ASA: 50}


def sniff(head: str) -> float:
    hits, lines = sniff_hits(head, _SNIFF)
    return 0.95 if lines and hits >= max(1, lines // 2) else 0.55 if hits else 0.0


def parse_file(path: Path, encoding: Encoding, sink: Sink) -> None:
    """Read an ASA syslog file line by line."""
    reference = None
    if "default_year" not in sink.meta:
        try:
            reference = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)
        except OSError:
            reference = None
    _parse(file_lines(path, encoding, sink), sink, reference)


def parse_text(text: str, sink: Sink) -> None:
    """Same parser over text already in memory."""
    _parse(text_lines(text), sink, None)


@lru_cache(maxsize=65536)
def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


_NAME = re.compile(r"[A-Za-z][\w.-]*")  # ASA `name` objects start with a letter


def _endpoint(token: str, ifc: bool = True) -> tuple[str | None, int | None, bool]:
    """`[ifc:]*addr[/port]` -> (ip, port, printed a name); the interface may itself hold
    colons (`v1:outside`), as may an IPv6 address, so the first suffix that is an address wins.
    With `ifc` the message always names the interface, so a name without one is a cut line."""
    port = None
    addr = token
    if "/" in token:
        addr, _, tail = token.rpartition("/")
        port = int(tail) if tail.isascii() and tail.isdigit() and len(tail) <= 5 else None
    if not addr:
        return None, None, False
    pos = -1
    while True:
        ip = _ip(addr[pos + 1 :])
        if ip is not None:
            return ip, port, False
        pos = addr.find(":", pos + 1)
        if pos < 0:
            break
    if ifc and ":" not in addr:
        return None, port, False
    return None, port, _NAME.fullmatch(addr.rpartition(":")[2]) is not None


def _acl_endpoint(token: str) -> tuple[str | None, int | None, bool]:
    """106100's `ifc/addr(port)`."""
    m = _ACL_ENDPOINT.match(token)
    if not m:
        return None, None, False
    ip = _ip(m.group("addr"))
    return (
        ip,
        int(m.group("port")) if len(m.group("port")) <= 5 else None,
        ip is None and bool(_NAME.fullmatch(m.group("addr"))),
    )


def _teardown_action(reason: str) -> str:
    r = reason.lower()
    if "syn timeout" in r:
        return "timeout"
    if "reset" in r:
        return "reset"
    if "deny" in r or "terminated" in r or "denied" in r:
        return "deny"
    return "close"


class _Parser:
    def __init__(self, sink: Sink, reference: datetime | None) -> None:
        self.sink = sink
        self.explicit_year = sink.meta.get("default_year")
        self.reference = reference or datetime.now(UTC).replace(tzinfo=None)
        self.year = int(self.explicit_year or self.reference.year)
        self.pending: dict[tuple[str | None, str], tuple[dict[str, Any], bool]] = {}
        self.no_time = 0
        self.merged = 0
        self.examples: dict[str, int] = {}
        self.headers: dict[str, tuple[datetime | None, bool, str | None]] = {}

    # --- header -------------------------------------------------------------------------
    def header(self, prefix: str) -> tuple[datetime | None, bool, str | None]:
        """(time, zoned, device name) from what precedes the %ASA tag; busy devices log many
        lines a second, so headers are remembered."""
        got = self.headers.get(prefix)
        if got is None:
            if len(self.headers) > 4096:
                self.headers.clear()
            got = self.headers[prefix] = self._header(prefix)
        return got

    def _header(self, prefix: str) -> tuple[datetime | None, bool, str | None]:
        h = split_header(prefix, self.year)
        inner = split_header(h.rest.lstrip(": "), self.year) if h.rest.strip(": ") else None
        if inner is not None and inner.stamp is not None:  # a relay's header in front of the device's
            h = inner
        host = h.host if h.host and not _FACILITY.match(h.host) else None
        for token in h.rest.split():
            token = token.rstrip(":")
            if token and not _FACILITY.match(token + ":") and not _PROG_TAG.match(token) and token != "-":
                host = token  # the last plain word before the tag: a relay's `LOCAL4.WARNING: fw-1`
        if h.stamp is None:
            return None, False, host
        value = h.stamp.value
        if not h.stamp.year_known:
            self.sink.meta["year_guessed"] = True
            if self.explicit_year is None and value > self.reference + timedelta(days=2):
                value = value.replace(year=value.year - 1) if not (value.month == 2 and value.day == 29) else value
        return value, h.stamp.zoned, host

    def skip(self, no: int, reason: str, text: str) -> None:
        limit = ROUTINE.get(reason)
        if limit is not None:
            seen = self.examples[reason] = self.examples.get(reason, 0) + 1
            if seen > limit:
                self.sink.skip_counts[reason] += 1
                return
        self.sink.skip(no, reason, text)

    # --- rows ---------------------------------------------------------------------------
    def flow(self, line: int, offset: int, host: str | None, ts: datetime | None, **values: Any) -> dict[str, Any]:
        row = dict.fromkeys(FLOWS.names)
        row.update(line=line, host=host, offset=offset if offset >= 0 else None, ts=ts, vendor=VENDOR)
        row.update(values)
        return row

    def run(self, lines: Iterable[tuple[int, int, str]]) -> None:
        sink = self.sink
        for no, offset, text in lines:
            text = text.rstrip(BLANK)
            if not text.strip(BLANK):
                continue
            m = _TAG.search(text)
            if not m:
                self.skip(no, R_NOT_ASA, text)
                continue
            ts, zoned, host = self.header(text[: m.start()])
            if ts is not None and not zoned:
                sink.meta["local_time"] = True
            level, msg_id, body = int(m.group(2)), m.group(3), text[m.end() :].strip()
            try:
                reason = self.message(no, offset, host, ts, level, msg_id, body)
            except (ValueError, OverflowError) as exc:  # belt and braces: one odd line never stops the file
                reason = f"{R_BAD}: {type(exc).__name__}"
            if reason:
                self.skip(no, reason, text)
            elif ts is None:
                self.no_time += 1
        for row, _ in self.pending.values():
            sink.row(FLOWS, row)
        self.pending.clear()
        if self.merged:
            sink.meta["merged_lines"] = sink.meta.get("merged_lines", 0) + self.merged
        if self.no_time:
            sink.meta.setdefault("warnings", []).append(
                {"code": "no_time", "detail": f"{self.no_time} ASA lines had no time stamp in their header"}
            )

    def message(
        self, no: int, offset: int, host: str | None, ts: datetime | None, level: int, msg_id: str, body: str
    ) -> str | None:
        """Emit the record(s) of one message; returns a skip reason or None."""
        if msg_id in ("302013", "302015"):
            return self.built(no, offset, host, ts, body)
        if msg_id in ("302014", "302016"):
            return self.teardown(no, offset, host, ts, body)
        if msg_id == "106100":
            m = _ACL_LOG.match(body)
            if not m:
                return R_BAD
            return self.simple(no, offset, host, ts, m, "deny" if m.group("verdict") == "denied" else "permit", True)
        if msg_id in DENIES:
            pattern, ifc = DENIES[msg_id]
            m = pattern.match(body)
            return self.simple(no, offset, host, ts, m, "deny", ifc=ifc) if m else R_BAD
        if msg_id.startswith("4000"):
            m = _IPS.match(body)
            if not m:
                return R_BAD
            src, _, sname = _endpoint(m.group("a"), ifc=False)
            dst, _, dname = _endpoint(m.group("b"), ifc=False)
            if src is None or dst is None:
                return R_NAME if sname or dname else R_BAD
            row = dict.fromkeys(NET_ALERTS.names)
            row.update(
                line=no,
                host=host,
                offset=offset if offset >= 0 else None,
                ts=ts,
                src_ip=src,
                dst_ip=dst,
                signature=m.group("name").strip(),
                signature_id=m.group("id"),
                severity=LEVELS[level] if level < len(LEVELS) else None,
                vendor=VENDOR,
            )
            self.sink.row(NET_ALERTS, row)
            return None
        return R_OTHER

    def simple(
        self,
        no: int,
        offset: int,
        host: str | None,
        ts: datetime | None,
        m: re.Match,
        action: str,
        acl: bool = False,
        ifc: tuple[bool, bool] = (True, True),
    ) -> str | None:
        if acl:
            (src, sport, sname), (dst, dport, dname) = _acl_endpoint(m.group("a")), _acl_endpoint(m.group("b"))
        else:
            src, sport, sname = _endpoint(m.group("a"), ifc[0])
            dst, dport, dname = _endpoint(m.group("b"), ifc[1])
        if src is None or dst is None:
            return R_NAME if sname or dname else R_BAD
        proto = proto_number(m.group("proto"))
        if proto not in (6, 17, 132):
            sport = dport = None  # ICMP's `(type)` is not a port
        row = self.flow(no, offset, host, ts, src_ip=src, src_port=sport, dst_ip=dst, dst_port=dport)
        row.update(proto=proto, action=action)
        self.sink.row(FLOWS, row)
        return None

    def built(self, no: int, offset: int, host: str | None, ts: datetime | None, body: str) -> str | None:
        m = _BUILT.match(body)
        if not m:
            return R_BAD
        a, aport, aname = _endpoint(m.group("a"))
        b, bport, bname = _endpoint(m.group("b"))
        if a is None or b is None:
            return R_NAME if aname or bname else R_BAD
        inbound = m.group("dir") == "inbound"  # the foreign side (`for`) started it
        src, sport, dst, dport = (a, aport, b, bport) if inbound else (b, bport, a, aport)
        row = self.flow(no, offset, host, ts, src_ip=src, src_port=sport, dst_ip=dst, dst_port=dport)
        row.update(proto=proto_number(m.group("proto")), action="built")
        key = (host, m.group("id"))
        earlier = self.pending.pop(key, None)
        if earlier is not None:  # a reused id: the earlier connection's Teardown was lost
            self.sink.row(FLOWS, earlier[0])
        self.pending[key] = (row, inbound)
        if len(self.pending) > MAX_PENDING:
            oldest = next(iter(self.pending))
            self.sink.row(FLOWS, self.pending.pop(oldest)[0])
        return None

    def teardown(self, no: int, offset: int, host: str | None, ts: datetime | None, body: str) -> str | None:
        m = _TEARDOWN.match(body)
        if not m:
            return R_BAD
        a, aport, aname = _endpoint(m.group("a"))
        b, bport, bname = _endpoint(m.group("b"))
        if a is None or b is None:
            return R_NAME if aname or bname else R_BAD
        duration = int(m.group("days") or 0) * 86400 + int(m.group("h")) * 3600 + int(m.group("m")) * 60
        duration += int(m.group("s"))
        built = self.pending.pop((host, m.group("id")), None)
        if built is not None:
            self.merged += 1
            inbound = built[1]
            start = built[0]["ts"]
        else:
            inbound = (aport or 0) >= (bport or 0)  # the lower port is the server's
            start = ts - timedelta(seconds=duration) if ts is not None else None
        src, sport, dst, dport = (a, aport, b, bport) if inbound else (b, bport, a, aport)
        total = int(m.group("bytes"))
        row = self.flow(no, offset, host, start, src_ip=src, src_port=sport, dst_ip=dst, dst_port=dport)
        row.update(
            proto=proto_number(m.group("proto")),
            action=_teardown_action(m.group("reason")),
            bytes_out=total,
            bytes_in=0 if total == 0 else None,
            duration=duration,
        )
        self.sink.row(FLOWS, row)
        return None


def _parse(lines: Iterator[tuple[int, int, str]], sink: Sink, reference: datetime | None) -> None:
    _Parser(sink, reference).run(lines)


FORMATS: tuple[Format, ...] = (
    Format(
        "cisco-asa",
        "Cisco ASA / FTD / PIX syslog (connections, denies, IPS)",
        sniff,
        parse_text=parse_text,
        parse_file=parse_file,
        host_evidence=False,
    ),
)
