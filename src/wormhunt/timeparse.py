"""The one time parser.

Windows tools print dates in the user's short date format (en-US `11/30/1999 12:00:00 AM`,
en-GB `13/02/2025 17:30:00`, zh-CN `2025/1/6, 11:21:56`, Spanish `a. m.`), appliances
print ISO dates plus a zone in several spellings, and epochs come in s, ms, us or ns.
Every parser converts times through this module so the rules live in one place
(formats.md section 0.3). Results are naive `datetime`s: UTC when the zone is known,
device-local otherwise, and the caller records which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa

_TZ4 = re.compile(r"^(?:UTC|GMT)?([+-])(\d{2})(\d{2})$", re.IGNORECASE)
_TZ = re.compile(r"^\s*(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?\s*$", re.IGNORECASE)
# `(UTC+08:00) Beijing...` / `(GMT) Greenwich Mean Time` in systeminfo's Time Zone line.
_TZ_LABEL = re.compile(r"\((?:UTC|GMT)(?:([+-])(\d{1,2}):(\d{2}))?\)")

# Greek designators are printed dotted (`π.μ.` / `μ.μ.`) as well as `πμ` / `μμ`; without the
# dotted forms a Greek afternoon time stayed in the morning.
_AM = ("am", "a.m.", "a. m.", "上午", "vorm.", "πμ", "π.μ.")
_PM = ("pm", "p.m.", "p. m.", "下午", "nachm.", "μμ", "μ.μ.")

_DATE_TIME = re.compile(
    r"^\s*(?P<d>\d{1,4}[/.\-]\d{1,2}[/.\-]\d{1,4})[,\s]+"
    r"(?P<ampm1>上午|下午)?\s*(?P<t>\d{1,2}:\d{2}(?::\d{2})?)(?:[.,]\d+)?\s*(?P<ampm2>[^\d\s].*?)?\s*$"
)
_DATE_ONLY = re.compile(r"^\s*(?P<d>\d{1,4}[/.\-]\d{1,2}[/.\-]\d{1,4})\s*$")


@dataclass(frozen=True)
class Parsed:
    value: datetime | None
    ambiguous: bool = False  # day and month could not be told apart


def tz_offset_minutes(text: str | None) -> int | None:
    """`+0900`, `"-0500"`, `UTC-5:00`, `+08:00`, `(UTC+08:00) Beijing` -> minutes east of UTC."""
    if not text:
        return None
    text = text.strip().strip('"')
    if text.upper() in ("Z", "UTC", "GMT"):
        return 0  # a bare zone name is an explicit offset of 0, not an unknown one
    m = _TZ4.match(text) or _TZ.match(text)
    if m:
        sign, hh, mm = m.groups()
    else:
        m = _TZ_LABEL.search(text)
        if not m:
            return None
        if not m.group(1):
            return 0  # `(UTC)` / `(GMT)`
        sign, hh, mm = m.groups()
    minutes = int(hh) * 60 + int(mm or 0)
    if int(mm or 0) > 59 or minutes > 14 * 60:
        return None
    return -minutes if sign == "-" else minutes


def from_epoch(value: int | str) -> datetime | None:
    """An epoch in s, ms, us or ns (told apart by magnitude) -> naive UTC datetime."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    if n <= 0:
        return None
    for scale in (1, 1_000, 1_000_000, 1_000_000_000):
        if n < 100_000_000_000 * scale:
            return datetime(1970, 1, 1) + timedelta(microseconds=n * 1_000_000 // scale)
    return None


def epoch_scale(n: int) -> int:
    """Divisor that turns epoch value `n` into seconds (1, 1e3, 1e6 or 1e9)."""
    for scale in (1, 1_000, 1_000_000, 1_000_000_000):
        if n < 100_000_000_000 * scale:
            return scale
    return 1_000_000_000


def to_utc(local: datetime | None, offset_minutes: int | None) -> datetime | None:
    """Device-local naive time plus its offset -> naive UTC; unchanged if the offset is unknown."""
    if local is None or offset_minutes is None:
        return local
    return local - timedelta(minutes=offset_minutes)


def _ymd(parts: list[int], order: str | None) -> tuple[tuple[int, int, int] | None, bool]:
    a, b, c = parts
    if a > 31:  # year first: zh-CN 2025/1/6, ISO 2017-01-04
        return (a, b, c), False
    if c < 100:
        c += 2000 if c < 70 else 1900
    if order == "dmy":
        return (c, b, a), False
    if order == "mdy":
        return (c, a, b), False
    if a > 12 and b <= 12:
        return (c, b, a), False  # must be day first
    if b > 12 and a <= 12:
        return (c, a, b), False  # must be month first
    # Both <= 12: US order is the common default for English Windows, but flag it.
    return (c, a, b), a != b


def parse_datetime(text: str | None, order: str | None = None) -> Parsed:
    """Parse a Windows-formatted local date/time. `order` is 'dmy' or 'mdy' when the locale is known."""
    if not text:
        return Parsed(None)
    s = text.strip().replace("\u200e", "").replace("\u200f", "")
    m = _DATE_TIME.match(s)
    if m:
        dpart, tpart = m.group("d"), m.group("t")
        ampm = (m.group("ampm1") or m.group("ampm2") or "").strip().lower()
    else:
        m = _DATE_ONLY.match(s)
        if not m:
            return Parsed(None)
        dpart, tpart, ampm = m.group("d"), "0:00:00", ""
    nums = [int(x) for x in re.split(r"[/.\-]", dpart)]
    ymd, ambiguous = _ymd(nums, order)
    if ymd is None:
        return Parsed(None)
    hms = [int(x) for x in tpart.split(":")]
    while len(hms) < 3:
        hms.append(0)
    hour = hms[0]
    if ampm:
        if any(ampm.startswith(p) for p in _PM) and hour < 12:
            hour += 12
        elif any(ampm.startswith(a) for a in _AM) and hour == 12:
            hour = 0
    try:
        return Parsed(datetime(ymd[0], ymd[1], ymd[2], hour, hms[1], hms[2]), ambiguous)
    except ValueError:
        return Parsed(None)


def parse_iso(text: str | None) -> datetime | None:
    """ISO-8601 with optional zone -> naive UTC (naive input is returned as is)."""
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def parse_iso_array(texts: list[str | None]) -> pa.Array:
    """`parse_iso` over a column: Arrow's vectorised ISO-8601 cast for the whole batch, with
    `parse_iso` per value only when the batch holds something Arrow rejects (no zone, a year
    outside the nanosecond range such as a zero FILETIME, a malformed string)."""
    try:
        ns = pa.array(texts, pa.string()).cast(pa.timestamp("ns", tz="UTC"))
        return ns.cast(pa.timestamp("us", tz="UTC"), safe=False).cast(pa.timestamp("us"))  # truncates 100 ns
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([parse_iso(t) for t in texts], pa.timestamp("us"))


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).

    Plain integer arithmetic so the bulk log scanner can compile it unchanged.
    """
    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    mp = m + 9 if m <= 2 else m - 3
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def iso(dt: datetime | None) -> str | None:
    """The one output format for times: `YYYY-MM-DDTHH:MM:SS` (UTC unless stated)."""
    return dt.isoformat(timespec="seconds") if dt else None


_CIM_DT = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})\.(\d{6})([+-])(\d{3})$")


def from_cim(text: str | None) -> datetime | None:
    """CIM_DATETIME `yyyymmddHHMMSS.ffffff+UUU` (UUU = minutes east of UTC) -> naive UTC."""
    if not text:
        return None
    m = _CIM_DT.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, us, sign, off = m.groups()
    try:
        local = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), int(us))
    except ValueError:
        return None
    minutes = int(off) * (1 if sign == "+" else -1)
    return local - timedelta(minutes=minutes)


_MONTHS = {
    m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
}
_SYSLOG_TS = re.compile(
    r"^(?P<mon>[A-Za-z]{3})\s+(?P<d>\d{1,2})\s+(?:(?P<y>\d{4})\s+)?(?P<t>\d{1,2}:\d{2}:\d{2})(?:\.\d+)?"
    r"(?P<tz>Z|[+-]\d{2}:?\d{2})?$"
)


@dataclass(frozen=True)
class Stamp:
    """A log time: naive UTC when `zoned`, device-local otherwise; `year_known` is False
    when the year was not printed (RFC 3164) and the caller's default was used."""

    value: datetime
    zoned: bool
    year_known: bool = True


def parse_syslog_time(text: str, default_year: int) -> Stamp | None:
    """`Nov 30 16:44:36`, `Oct 10 2018 12:34:56`, `Oct 15 2024 02:56:26+08:00` -> Stamp."""
    m = _SYSLOG_TS.match(text.strip())
    if not m or m.group("mon").lower() not in _MONTHS:
        return None
    year = int(m.group("y") or default_year)
    h, mi, s = (int(x) for x in m.group("t").split(":"))
    try:
        local = datetime(year, _MONTHS[m.group("mon").lower()], int(m.group("d")), h, mi, min(s, 59))
    except ValueError:
        return None
    offset = tz_offset_minutes(m.group("tz")) if m.group("tz") else None
    return Stamp(to_utc(local, offset), offset is not None, m.group("y") is not None)


def parse_log_time(text: str | None) -> Stamp | None:
    """`2020-09-09 10:05:11`, `2018/11/30 16:44:36`, ISO-8601 with or without a zone -> Stamp."""
    if not text:
        return None
    s = text.strip()
    m = re.match(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})[ T](\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d{1,6})\d*)?\s*(.*)$", s)
    if not m:
        return None
    y, mo, d, h, mi, sec, frac, zone = m.groups()
    try:
        local = datetime(int(y), int(mo), int(d), int(h), int(mi), min(int(sec), 59), int((frac or "0").ljust(6, "0")))
    except ValueError:
        return None
    if not zone:
        return Stamp(local, False)
    offset = tz_offset_minutes(zone)
    if offset is None:
        return None
    return Stamp(to_utc(local, offset), True)


def parse_iso_stamp(text: str | None) -> Stamp | None:
    """ISO-8601 (`2020-05-19T18:00:39.016985+0200`, `...Z`, no zone) -> Stamp, zoned when the text
    carried a zone; what the fast ISO reader rejects goes through `parse_log_time`."""
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return parse_log_time(text)
    if dt.tzinfo is None:
        return Stamp(dt, False)
    return Stamp(dt.astimezone(UTC).replace(tzinfo=None), True)
