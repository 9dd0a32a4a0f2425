"""The one time parser (timeparse.py): zones, epochs, localized Windows dates, CIM and ISO.

Date strings are the shapes listed in formats.md section 0.3 (en-US, en-GB, zh-CN, user
custom zh-CN, Spanish `a. m.`, ambiguous day/month) and section 6.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from wormhunt.timeparse import (
    Stamp,
    days_from_civil,
    epoch_scale,
    from_cim,
    from_epoch,
    iso,
    parse_datetime,
    parse_iso,
    parse_iso_stamp,
    to_utc,
    tz_offset_minutes,
)

# --- time zones --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("+0900", 540),
        ("-0500", -300),
        ('"-0500"', -300),  # FortiGate tz="-0500" with its quotes
        ("+0530", 330),
        ("+08:00", 480),
        ("-03:30", -210),
        ("UTC-5:00", -300),
        ("UTC+0800", 480),
        ("GMT-0700", -420),
        ("GMT+8", 480),
        ("utc+8", 480),
        ("+9", 540),
        ("-00:00", 0),
        (" +09:00 ", 540),
        ("Z", 0),
        ("UTC", 0),
        ("GMT", 0),
        ("(UTC+08:00) Beijing, Chongqing, Hong Kong, Urumqi", 480),
        ("(UTC+08:00)北京，重庆，香港特别行政区，乌鲁木齐", 480),  # zh-CN: no space after `)`
        ("(UTC-08:00) Pacific Time (US & Canada)", -480),
        ("(UTC-03:30) Newfoundland", -210),
        ("(UTC+05:45) Kathmandu", 345),
        ("(UTC+14:00) Kiritimati Island", 840),
        ("(UTC-12:00) International Date Line West", -720),
        ("(GMT+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", 60),  # XP/2003
        ("(GMT) Greenwich Mean Time : Dublin, Edinburgh, Lisbon, London", 0),
        ("(UTC) Coordinated Universal Time", 0),
    ],
)
def test_tz_offset_minutes(text: str, minutes: int) -> None:
    assert tz_offset_minutes(text) == minutes


@pytest.mark.parametrize("text", [None, "", "   ", "abc", "0800", "+1500", "+25:00", "Pacific Time"])
def test_tz_offset_unknown(text: str | None) -> None:
    assert tz_offset_minutes(text) is None


# --- epochs ------------------------------------------------------------------------------

INSTANT = datetime(2017, 6, 6, 5, 52, 13)  # the ID2T EternalBlue scan


@pytest.mark.parametrize(
    ("value", "expected", "scale"),
    [
        (1496728333, INSTANT, 1),
        ("1496728333", INSTANT, 1),
        (1496728333123, INSTANT.replace(microsecond=123000), 1_000),
        (1496728333123456, INSTANT.replace(microsecond=123456), 1_000_000),
        (1496728333123456789, INSTANT.replace(microsecond=123456), 1_000_000_000),
        ("1496728333123456789", INSTANT.replace(microsecond=123456), 1_000_000_000),
        (86400, datetime(1970, 1, 2), 1),
    ],
)
def test_from_epoch_by_magnitude(value: int | str, expected: datetime, scale: int) -> None:
    assert from_epoch(value) == expected
    assert epoch_scale(int(value)) == scale


def test_epoch_scale_boundaries() -> None:
    # seconds up to 1e11 (year 5138), then milliseconds
    assert epoch_scale(99_999_999_999) == 1
    assert epoch_scale(100_000_000_000) == 1_000
    assert from_epoch(100_000_000_000) == datetime(1973, 3, 3, 9, 46, 40)


@pytest.mark.parametrize("value", [0, -5, "x", "", None, 10**22])
def test_from_epoch_rejects(value: object) -> None:
    assert from_epoch(value) is None  # type: ignore[arg-type]


# --- localized Windows dates -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # en-US
        ("11/30/1999 12:00:00 AM", datetime(1999, 11, 30, 0, 0, 0)),
        ("12/31/2024 12:00:00 PM", datetime(2024, 12, 31, 12, 0, 0)),
        ("12/31/2024 12:05:00 AM", datetime(2024, 12, 31, 0, 5, 0)),
        ("12/31/2024 11:59:59 PM", datetime(2024, 12, 31, 23, 59, 59)),
        ("3/21/2019, 1:35:10 AM", datetime(2019, 3, 21, 1, 35, 10)),  # systeminfo comma
        ("10/18/2016", datetime(2016, 10, 18)),  # wmic qfe InstalledOn, date only
        ("5/16/2019 00:00:00", datetime(2019, 5, 16)),
        ("11/30/99 1:00 PM", datetime(1999, 11, 30, 13, 0)),
        # en-GB
        ("13/02/2025 17:30:00", datetime(2025, 2, 13, 17, 30)),
        ("29/04/2019, 18:52:20", datetime(2019, 4, 29, 18, 52, 20)),
        # zh-CN (year first, no zero padding) and a user-customised zh-CN format
        ("1999/11/30 0:00:00", datetime(1999, 11, 30, 0, 0)),
        ("2025/1/6, 11:21:56", datetime(2025, 1, 6, 11, 21, 56)),
        ("2023/12/28 1:30:43", datetime(2023, 12, 28, 1, 30, 43)),
        ("2017-01-04, 09:47:21", datetime(2017, 1, 4, 9, 47, 21)),
        ("2024/4/1 15:26", datetime(2024, 4, 1, 15, 26)),
        ("2022/9/22 下午 8:38:03", datetime(2022, 9, 22, 20, 38, 3)),
        ("2022/9/22 上午 12:38:03", datetime(2022, 9, 22, 0, 38, 3)),
        ("2022/9/22 下午 12:38:03", datetime(2022, 9, 22, 12, 38, 3)),
        # Spanish: `a. m.` / `p. m.` designators with a space inside
        ("22/02/2020 12:00:00 a. m.", datetime(2020, 2, 22, 0, 0)),
        ("22/02/2020 12:30:00 p. m.", datetime(2020, 2, 22, 12, 30)),
        ("22/02/2020 7:15:00 p. m.", datetime(2020, 2, 22, 19, 15)),
        ("22/02/2020 7:15:00 a.m.", datetime(2020, 2, 22, 7, 15)),
        # Greek designators
        ("13/5/2020 7:17:21 μ.μ.", datetime(2020, 5, 13, 19, 17, 21)),
        ("13/5/2020 7:17:21 μμ", datetime(2020, 5, 13, 19, 17, 21)),
        ("13/5/2020 12:17:21 π.μ.", datetime(2020, 5, 13, 0, 17, 21)),
        # German (dots), year-first ISO-like with fraction
        ("15.06.2016, 18:34:33", datetime(2016, 6, 15, 18, 34, 33)),
        ("2019-03-07 17:06:11.123", datetime(2019, 3, 7, 17, 6, 11)),
        ("1999-01-01, 1:00:00 PM", datetime(1999, 1, 1, 13, 0)),
        ("\u200e2019/3/7 17:06", datetime(2019, 3, 7, 17, 6)),  # left-to-right mark from GUI copies
    ],
)
def test_parse_datetime_unambiguous(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text)
    assert parsed.value == expected
    assert not parsed.ambiguous


@pytest.mark.parametrize(
    ("text", "mdy", "dmy"),
    [
        ("01-04-2024 12:56:32", datetime(2024, 1, 4, 12, 56, 32), datetime(2024, 4, 1, 12, 56, 32)),
        ("6/1/2021 5:02:00 PM", datetime(2021, 6, 1, 17, 2), datetime(2021, 1, 6, 17, 2)),
        ("1/10/2019 12:00:00 a. m.", datetime(2019, 1, 10, 0, 0), datetime(2019, 10, 1, 0, 0)),
        ("04.03.2019, 11:44:54", datetime(2019, 4, 3, 11, 44, 54), datetime(2019, 3, 4, 11, 44, 54)),
        ("3-10-2018, 22:14:23", datetime(2018, 3, 10, 22, 14, 23), datetime(2018, 10, 3, 22, 14, 23)),
    ],
)
def test_ambiguous_day_month_is_flagged_and_order_decides(text: str, mdy: datetime, dmy: datetime) -> None:
    guess = parse_datetime(text)
    assert guess.ambiguous
    assert guess.value == mdy  # US order is only the default guess
    assert parse_datetime(text, "mdy").value == mdy
    assert not parse_datetime(text, "mdy").ambiguous
    assert parse_datetime(text, "dmy").value == dmy
    assert not parse_datetime(text, "dmy").ambiguous


def test_same_day_and_month_is_not_ambiguous() -> None:
    parsed = parse_datetime("4/4/2024 1:00")
    assert parsed.value == datetime(2024, 4, 4, 1, 0)
    assert not parsed.ambiguous


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "garbage",
        "12:00:00 AM",
        "Nov 30 1999",
        "2/30/2020 1:00:00",
        "2019/13/01 1:00",
        "25:00 1/1/2020",
        "1/1/2020 25:00",
    ],
)
def test_parse_datetime_rejects(text: str | None) -> None:
    assert parse_datetime(text).value is None


def test_garbled_designator_keeps_the_clock_time() -> None:
    # en-US labels, Greek format, AM/PM designator lost to the code page (formats.md 0.3).
    assert parse_datetime("10/5/2020, 7:17:21 \ufffd\ufffd").value == datetime(2020, 10, 5, 7, 17, 21)


# --- CIM / ISO / helpers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20190321123456.000000+480", datetime(2019, 3, 21, 4, 34, 56)),
        ("20190321123456.123456-300", datetime(2019, 3, 21, 17, 34, 56, 123456)),
        ("20190321003000.000000+060", datetime(2019, 3, 20, 23, 30)),
        ("20190321123456.000000+000", datetime(2019, 3, 21, 12, 34, 56)),
        (" 20190321123456.000000+000 ", datetime(2019, 3, 21, 12, 34, 56)),
    ],
)
def test_from_cim(text: str, expected: datetime) -> None:
    assert from_cim(text) == expected


@pytest.mark.parametrize(
    "text", [None, "", "20190321******.******+***", "20191321123456.000000+000", "2019-03-21 12:34:56"]
)
def test_from_cim_rejects(text: str | None) -> None:
    assert from_cim(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-03-07T17:06:11Z", datetime(2019, 3, 7, 17, 6, 11)),
        ("2019-03-07T17:06:11+08:00", datetime(2019, 3, 7, 9, 6, 11)),
        ("2019-03-07T17:06:11-05:00", datetime(2019, 3, 7, 22, 6, 11)),
        ("2017-03-24T15:24:37.045284+0000", datetime(2017, 3, 24, 15, 24, 37, 45284)),  # Suricata
        ("2019-03-07 17:06:11", datetime(2019, 3, 7, 17, 6, 11)),  # naive stays as is
        ("2025-02-11", datetime(2025, 2, 11)),
        (" 2019-03-07T17:06:11Z ", datetime(2019, 3, 7, 17, 6, 11)),
    ],
)
def test_parse_iso(text: str, expected: datetime) -> None:
    result = parse_iso(text)
    assert result == expected
    assert result is not None and result.tzinfo is None


@pytest.mark.parametrize("text", [None, "", "garbage", "2019-13-07T00:00:00Z"])
def test_parse_iso_rejects(text: str | None) -> None:
    assert parse_iso(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-05-19T18:00:39.016985+0200", Stamp(datetime(2020, 5, 19, 16, 0, 39, 16985), True)),  # Suricata
        ("2019-03-07T17:06:11Z", Stamp(datetime(2019, 3, 7, 17, 6, 11), True)),
        ("2019-03-07T17:06:11", Stamp(datetime(2019, 3, 7, 17, 6, 11), False)),  # no zone: device-local
        ("2018/11/30 16:44:36", Stamp(datetime(2018, 11, 30, 16, 44, 36), False)),  # not ISO: the log reader
        ("2018/11/30 16:44:36 +08:00", Stamp(datetime(2018, 11, 30, 8, 44, 36), True)),
        (None, None),
        ("", None),
        ("garbage", None),
    ],
)
def test_parse_iso_stamp(text: str | None, expected: Stamp | None) -> None:
    assert parse_iso_stamp(text) == expected


def test_to_utc_and_iso() -> None:
    local = parse_datetime("2025/1/6, 11:21:56").value
    offset = tz_offset_minutes("(UTC+08:00)北京，重庆，香港特别行政区，乌鲁木齐")
    assert to_utc(local, offset) == datetime(2025, 1, 6, 3, 21, 56)
    assert to_utc(local, -300) == datetime(2025, 1, 6, 16, 21, 56)
    assert to_utc(local, None) == local  # unknown zone: left device-local
    assert to_utc(None, 480) is None
    assert iso(datetime(2025, 1, 6, 3, 21, 56, 999)) == "2025-01-06T03:21:56"
    assert iso(None) is None


@pytest.mark.parametrize(
    "day",
    [date(1970, 1, 1), date(1969, 12, 31), date(2000, 2, 29), date(2000, 3, 1), date(2024, 2, 29),
     date(2100, 3, 1), date(1600, 1, 1), date(2017, 6, 6)],
)  # fmt: skip
def test_days_from_civil(day: date) -> None:
    assert days_from_civil(day.year, day.month, day.day) == (day - date(1970, 1, 1)).days
