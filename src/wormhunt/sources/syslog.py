"""Syslog transport headers in front of a vendor payload (RFC 3164 and RFC 5424).

Devices and relays prepend `<PRI>`, a timestamp (with or without a year or a zone), a host
and sometimes a tag; a relay may add its own header in front of the device's. Parsers of
vendor formats find their own payload marker; this module reads what comes before it, so
that a line without a time of its own still gets one (formats.md section 9).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wormhunt.timeparse import Stamp, parse_log_time, parse_syslog_time

_PRI = re.compile(r"^\s*<(\d{1,3})>")
_RFC5424 = re.compile(
    r"^1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<pid>\S+) (?P<msgid>\S+) (?:-|(?:\[(?:[^\]\\]|\\.)*\])+) ?"
)
_RFC3164 = re.compile(
    r"^(?P<ts>[A-Z][a-z]{2} +\d{1,2} (?:\d{4} )?\d{1,2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"
    r"(?: (?P<host>[^\s:]+))?:? ?"
)
_ISO_FIRST = re.compile(
    r"^(?P<ts>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?) (?P<host>\S+) "
)


@dataclass(frozen=True)
class Header:
    pri: int | None
    stamp: Stamp | None
    host: str | None
    rest: str  # what follows the header: the vendor payload (possibly behind a tag)


def split_header(line: str, default_year: int) -> Header:
    """Strip `<PRI>` and one RFC 5424 / RFC 3164 / ISO-first header; keep the rest verbatim."""
    pri = None
    m = _PRI.match(line)
    if m:
        pri = int(m.group(1))
        line = line[m.end() :]
    m = _RFC5424.match(line)
    if m:
        return Header(pri, parse_log_time(m.group("ts")), _nil(m.group("host")), line[m.end() :])
    m = _RFC3164.match(line)
    if m:
        return Header(pri, parse_syslog_time(m.group("ts"), default_year), m.group("host"), line[m.end() :])
    m = _ISO_FIRST.match(line)
    if m:
        return Header(pri, parse_log_time(m.group("ts")), m.group("host"), line[m.end() :])
    return Header(pri, None, None, line)


def _nil(value: str) -> str | None:
    return None if value == "-" else value
