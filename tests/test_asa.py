"""Cisco ASA / FTD / PIX syslog parser: direction, Built+Teardown merging, denies, headers, bad lines."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ROOT, encodings
from tests.netlog_helpers import fast, mutate_line, non_blank, parse_with, simulate_and_parse
from wormhunt.sources import asa, fortigate, paloalto
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_head
from wormhunt.sources.text import decode, sniff_encoding

SAMPLES = Path(os.environ.get("WORMHUNT_FORMAT_SAMPLES", ROOT.parent / "shared" / "reference" / "format-samples"))

# Hand-written lines in the documented message formats (formats.md 9.3), one behaviour each.
BUILT_IN = (
    "Nov 18 2018 08:38:18 ASA-CORE : %ASA-6-302013: Built inbound TCP connection 51001 for "
    "inside:192.168.16.23/51234 (192.168.16.23/51234) to servers:172.16.101.5/445 (172.16.101.5/445)"
)
TEAR_IN = (
    "Nov 18 2018 08:38:48 ASA-CORE : %ASA-6-302014: Teardown TCP connection 51001 for "
    "inside:192.168.16.23/51234 to servers:172.16.101.5/445 duration 0:00:30 bytes 0 SYN Timeout"
)
BUILT_OUT = (
    "<166>Nov 18 2018 08:39:00 ASA-CORE : %ASA-6-302013: Built outbound TCP connection 51002 for "
    "outside:203.0.113.80/443 (203.0.113.80/443) to inside:192.168.16.40/50001 (198.51.100.7/61001)"
)
TEAR_OUT = (
    "<166>Nov 18 2018 09:02:05 ASA-CORE : %ASA-6-302014: Teardown TCP connection 51002 for "
    "outside:203.0.113.80/443 to inside:192.168.16.40/50001 duration 0:23:05 bytes 1234567 TCP FINs"
)
RESET = (
    "Nov 18 2018 08:40:00 ASA-CORE : %ASA-6-302014: Teardown TCP connection 51003 for "
    "servers:172.16.101.6/445 to inside:192.168.16.23/51240 duration 0:00:01 bytes 1460 TCP Reset-I"
)
UDP = (
    "Nov 18 2018 08:41:00 ASA-CORE : %ASA-6-302015: Built outbound UDP connection 51004 for "
    "outside:198.51.100.53/53 (198.51.100.53/53) to inside:192.168.16.23/53001 (198.51.100.7/53001)\n"
    "Nov 18 2018 08:41:01 ASA-CORE : %ASA-6-302016: Teardown UDP connection 51004 for "
    "outside:198.51.100.53/53 to inside:192.168.16.23/53001 duration 0:00:01 bytes 148"
)
DENY_ACL = (
    "Nov 18 2018 08:42:00 ASA-CORE : %ASA-4-106023: Deny tcp src inside:192.168.16.23/51250 "
    'dst servers:172.16.101.7/139 by access-group "inside_access_in" [0x0, 0x0]'
)
DENY_ICMP = (
    "Nov 18 2018 08:42:01 ASA-CORE : %ASA-4-106023: Deny icmp src outside:203.0.113.9 "
    'dst inside:192.168.16.23 (type 8, code 0) by access-group "outside_in" [0x0, 0x0]'
)
DENIES = "\n".join(
    [
        "Nov 18 2018 08:43:00 ASA-CORE : %ASA-6-106015: Deny TCP (no connection) from 172.16.101.5/445 "
        "to 192.168.16.23/51234 flags RST  on interface servers",
        "Nov 18 2018 08:43:01 ASA-CORE : %ASA-2-106001: Inbound TCP connection denied from 203.0.113.9/4444 "
        "to 192.168.16.23/445 flags SYN  on interface outside",
        "Nov 18 2018 08:43:02 ASA-CORE : %ASA-2-106006: Deny inbound UDP from 203.0.113.9/137 "
        "to 192.168.16.23/137 on interface outside",
        "Nov 18 2018 08:43:03 ASA-CORE : %ASA-2-106007: Deny inbound UDP from 203.0.113.9/53 "
        "to 192.168.16.23/53001 due to DNS Response",
        "Nov 18 2018 08:43:04 ASA-CORE : %ASA-6-106100: access-list inside_in denied tcp "
        "inside/192.168.16.23(51300) -> servers/172.16.101.5(445) hit-cnt 1 first hit [0x91c26a3, 0x0]",
        "Nov 18 2018 08:43:05 ASA-CORE : %ASA-6-106100: access-list inside_in permitted tcp "
        "inside/192.168.16.24(51301) -> servers/172.16.101.5(445) hit-cnt 3 300-second interval [0x91c26a3, 0x0]",
        "Nov 18 2018 08:43:06 ASA-CORE : %ASA-3-710003: TCP access denied by ACL from 203.0.113.9/51000 "
        "to outside:198.51.100.1/22",
    ]
)
IPS = "Nov 18 2018 08:44:00 ASA-CORE : %ASA-4-400013: IPS:2003 ICMP redirect from 10.4.1.2 to 10.2.1.1 on interface dmz"
IPV6_FTD = (
    "Nov 18 2018 08:45:00 FTD-1 : %FTD-6-302013: Built inbound TCP connection 7 for "
    "outside:2001:db8::5/51000 (2001:db8::5/51000) to inside:2001:db8:1::10/445 (2001:db8:1::10/445)"
)
FIXTURES = "\n".join([BUILT_IN, TEAR_IN, BUILT_OUT, TEAR_OUT, RESET, UDP, DENY_ACL, DENY_ICMP, DENIES, IPS, IPV6_FTD])
FAST = fast(40)


def parse(text: str, **meta: object) -> MemorySink:
    return parse_with(asa.parse_text, text, **meta)


def sample(name: str) -> str:
    path = SAMPLES / "cisco_asa" / name
    if not path.is_file():
        pytest.skip(f"format sample not present: {path}")
    return path.read_text(encoding="utf-8")


def by_line(sink: MemorySink, kind: str = "flows") -> dict[int, dict]:
    return {r["line"]: r for r in sink.of(kind)}


def test_built_and_teardown_make_one_flow_from_the_initiator() -> None:
    sink = parse(BUILT_IN + "\n" + TEAR_IN)
    (row,) = sink.of("flows")
    assert row["line"] == 2 and row["host"] == "ASA-CORE" and row["vendor"] == "cisco-asa"
    assert (row["src_ip"], row["src_port"], row["dst_ip"], row["dst_port"]) == (
        "192.168.16.23",
        51234,
        "172.16.101.5",
        445,
    )
    assert row["proto"] == 6 and row["action"] == "timeout" and row["duration"] == 30
    assert row["bytes_out"] == 0 and row["bytes_in"] == 0
    assert row["ts"] == datetime(2018, 11, 18, 8, 38, 18)  # the Built line's time: the start
    assert sink.meta["local_time"] is True and "year_guessed" not in sink.meta
    # The Built line is used, not skipped; it is counted as merged.
    assert sink.skipped == 0 and sink.meta["merged_lines"] == 1


def test_outbound_first_endpoint_is_the_responder() -> None:
    sink = parse(BUILT_OUT + "\n" + TEAR_OUT)
    (row,) = sink.of("flows")
    # Real addresses, not the mapped 198.51.100.7 in parentheses.
    assert (row["src_ip"], row["src_port"], row["dst_ip"], row["dst_port"]) == (
        "192.168.16.40",
        50001,
        "203.0.113.80",
        443,
    )
    assert row["action"] == "close" and row["bytes_out"] == 1234567 and row["bytes_in"] is None
    assert row["duration"] == 23 * 60 + 5 and row["ts"] == datetime(2018, 11, 18, 8, 39)


def test_built_without_teardown_is_kept_as_built() -> None:
    (row,) = parse(BUILT_OUT).of("flows")
    assert row["action"] == "built" and row["src_ip"] == "192.168.16.40" and row["dst_port"] == 443
    assert row["line"] == 1 and row["bytes_out"] is None


def test_teardown_without_built_is_oriented_by_port_and_timed_back() -> None:
    (row,) = parse(RESET).of("flows")
    assert (row["src_ip"], row["dst_ip"], row["dst_port"]) == ("192.168.16.23", "172.16.101.6", 445)
    assert row["action"] == "reset" and row["ts"] == datetime(2018, 11, 18, 8, 39, 59)


def test_udp_connection() -> None:
    sink = parse(UDP)
    (row,) = sink.of("flows")
    assert row["proto"] == 17 and row["action"] == "close" and row["bytes_out"] == 148
    assert row["src_ip"] == "192.168.16.23" and row["dst_port"] == 53 and row["line"] == 2


def test_denies_of_every_message_id() -> None:
    sink = parse("\n".join([DENY_ACL, DENY_ICMP, DENIES]))
    rows = by_line(sink)
    assert sink.skipped == 0 and len(rows) == 9
    assert rows[1]["action"] == "deny" and rows[1]["dst_port"] == 139 and rows[1]["src_port"] == 51250
    assert rows[2]["proto"] == 1 and rows[2]["src_port"] is None and rows[2]["dst_ip"] == "192.168.16.23"
    assert (rows[3]["src_ip"], rows[3]["src_port"], rows[3]["dst_port"]) == ("172.16.101.5", 445, 51234)
    assert rows[4]["dst_port"] == 445 and rows[5]["proto"] == 17 and rows[6]["dst_port"] == 53001
    assert (rows[7]["src_ip"], rows[7]["src_port"], rows[7]["dst_ip"], rows[7]["dst_port"]) == (
        "192.168.16.23",
        51300,
        "172.16.101.5",
        445,
    )
    assert rows[7]["action"] == "deny" and rows[8]["action"] == "permit"
    assert rows[9]["dst_ip"] == "198.51.100.1" and rows[9]["dst_port"] == 22 and rows[9]["action"] == "deny"
    assert {r["action"] for r in rows.values()} == {"deny", "permit"}


def test_ips_alert_and_ipv6_ftd() -> None:
    sink = parse(IPS + "\n" + IPV6_FTD)
    (alert,) = sink.of("net_alerts")
    assert alert["signature"] == "ICMP redirect" and alert["signature_id"] == "2003"
    assert alert["severity"] == "warning" and alert["src_ip"] == "10.4.1.2" and alert["dst_ip"] == "10.2.1.1"
    (flow,) = sink.of("flows")
    assert flow["src_ip"] == "2001:db8::5" and flow["dst_ip"] == "2001:db8:1::10" and flow["dst_port"] == 445
    assert flow["host"] == "FTD-1"


@pytest.mark.parametrize(
    ("prefix", "host", "ts", "local"),
    [
        ("Jul 15 13:38:14 216.160.83.56 : ", "216.160.83.56", datetime(2018, 7, 15, 13, 38, 14), True),
        ("<194>Jul  5 13:38:14 : ", None, datetime(2018, 7, 5, 13, 38, 14), True),
        ("LOCAL4.WARNING: fw-1 ", "fw-1", None, False),
        ("Oct 10 2018 12:34:56 localhost CiscoASA[999]: ", "localhost", datetime(2018, 10, 10, 12, 34, 56), True),
        ("Nov 19 09:00:00 10.0.0.1 Oct 10 2018 12:00:00 asa1 : ", "asa1", datetime(2018, 10, 10, 12), True),
        ("<166>1 2018-10-10T04:00:00+08:00 asa2 - - - - ", "asa2", datetime(2018, 10, 9, 20), False),
    ],
)
def test_header_variants(prefix: str, host: str | None, ts: datetime | None, local: bool) -> None:
    line = prefix + DENY_ACL[DENY_ACL.index("%ASA") :]
    sink = parse(line, default_year=2018)
    (row,) = sink.of("flows")
    assert row["host"] == host and row["ts"] == ts
    assert bool(sink.meta.get("local_time")) is local
    if ts is None:
        assert sink.meta["warnings"][0]["code"] == "no_time"


def test_missing_year_uses_file_time_and_never_the_future(tmp_path: Path) -> None:
    text = (
        'Dec 31 23:59:00 fw : %ASA-4-106023: Deny tcp src a:10.0.0.1/1 dst b:10.0.0.2/445 by access-group "x"\n'
        'Jan  4 00:00:01 fw : %ASA-4-106023: Deny tcp src a:10.0.0.1/2 dst b:10.0.0.2/445 by access-group "x"\n'
    )
    path = tmp_path / "asa.log"
    path.write_text(text, encoding="utf-8")
    stamp = datetime(2019, 1, 5, 12).timestamp()
    os.utime(path, (stamp, stamp))
    sink = MemorySink()
    asa.parse_file(path, sniff_encoding(text.encode()), sink)
    assert [r["ts"].year for r in sink.of("flows")] == [2018, 2019]
    assert sink.meta["year_guessed"] is True
    # An explicit year wins.
    assert {r["ts"].year for r in parse(text, default_year=2017).of("flows")} == {2017}


def test_bad_lines_are_counted_with_line_numbers() -> None:
    text = "\n".join(
        [
            DENY_ACL,
            "garbage line",
            "Oct 10 2018 12:34:56 fw : %ASA-6-305011: Built dynamic TCP translation from inside:10.0.0.1/1 to x",
            "Jul 15 13:18:06 fw : %ASA-4-106023: Deny tcp src MG:exp_srv/64593 dst SH:10.0.0.9/2511 by access-group",
            BUILT_IN[:-40],  # truncated
            "",
            "Oct 10 2018 12:34:56 fw : %ASA-6-302014: Teardown TCP connection 1 for",
            DENY_ACL,
        ]
    )
    sink = parse(text)
    assert sorted(by_line(sink)) == [1, 8]
    assert {s.line: s.reason for s in sink.skips} == {
        2: "not an ASA/FTD/PIX message",
        3: "other ASA message id",
        4: "host name instead of address",
        5: "message text not understood (truncated?)",
        7: "message text not understood (truncated?)",
    }


def test_real_samples() -> None:
    sink = parse(sample("asa_elastic-integrations_test-asa.log"))
    rows = by_line(sink)
    assert sorted(rows) == [2, 3, 4, 6, 7]
    assert rows[2]["action"] == "built" and rows[2]["src_ip"] == "172.31.98.44" and rows[2]["dst_port"] == 80
    assert rows[3]["action"] == "reset" and rows[3]["bytes_out"] == 38110 and rows[3]["duration"] == 67
    assert rows[4]["action"] == "timeout" and rows[4]["bytes_in"] == 0 and rows[4]["src_port"] == 1765
    assert rows[6]["proto"] == 17 and rows[6]["ts"] == datetime(2018, 10, 10, 12, 34, 56)  # merged with its Built
    assert rows[7]["src_ip"] == "100.66.19.254" and rows[7]["action"] == "deny"
    assert sink.skip_counts == {"other ASA message id": 1} and sink.meta["merged_lines"] == 1

    sink = parse(sample("asa_elastic-integrations_non-canonical.log"))
    assert sink.records == 0 and sink.skip_counts == {"host name instead of address": 5, "other ASA message id": 1}

    sink = parse(sample("asa_106023_iface-with-prefix.log"))
    first, second = sink.of("flows")
    assert (first["src_ip"], first["src_port"], first["dst_port"], first["host"]) == ("10.8.1.9", 54864, 53, "fw-1")
    assert second["src_port"] is None and second["dst_ip"] == "172.16.1.3" and second["proto"] == 17

    sink = parse(sample("asa_106023_show-log_context.log"))
    first, second = sink.of("flows")
    assert first["host"] == "V901-V101" and first["ts"] == datetime(2015, 3, 16, 20, 57, 10)
    assert second["dst_ip"] == "173.194.73.102" and second["dst_port"] == 443 and sink.skipped == 0


def test_sniff_claims_asa_and_nothing_else() -> None:
    assert asa.sniff(FIXTURES) > 0.9
    found = detect_head(FIXTURES.encode(), complete=True)
    assert found.format is not None and found.format.name == "cisco-asa"
    assert paloalto.sniff(FIXTURES) == 0.0 and fortigate.sniff(FIXTURES) == 0.0
    # Documentation quoting a message is not a log.
    assert asa.sniff("Message formats:\n* `%ASA-6-302013: Built {inbound|outbound} TCP connection`\n") == 0.0
    for folder in ("fortigate", "paloalto", "cn_firewalls", "iptables", "zeek", "suricata", "nfdump", "netstat"):
        for path in sorted((SAMPLES / folder).glob("*")) if (SAMPLES / folder).is_dir() else []:
            assert asa.sniff(path.read_text(encoding="utf-8", errors="replace")) == 0.0, path


@pytest.mark.parametrize("variant", ["utf-8", "utf-8-bom", "utf-16le-bom", "crcrlf", "gbk"])
def test_file_encodings_and_offsets(tmp_path: Path, variant: str) -> None:
    text = FIXTURES + "\n"
    raw = encodings(text)[variant]
    path = tmp_path / "asa.log"
    path.write_bytes(raw)
    found = detect_head(raw, complete=True)
    assert found.format is not None and found.format.name == "cisco-asa"
    sink = MemorySink()
    asa.parse_file(path, sniff_encoding(raw), sink)
    expected = parse(text)
    strip = [{k: v for k, v in r.items() if k != "offset"} for r in sink.of("flows")]
    assert strip == [{k: v for k, v in r.items() if k != "offset"} for r in expected.of("flows")]
    assert sink.skip_counts == expected.skip_counts
    if variant in ("utf-8", "crcrlf"):
        for r in sink.of("flows"):
            line = raw[r["offset"] : raw.index(b"\n", r["offset"])].decode().rstrip("\r")
            assert line == text.split("\n")[r["line"] - 1]


@FAST
@given(data=st.binary(max_size=3000))
def test_random_bytes_never_raise(data: bytes) -> None:
    text = decode(data).text
    sink = parse(text)
    assert sink.records + sink.skipped + sink.meta.get("merged_lines", 0) == non_blank(text, asa.BLANK)


@FAST
@given(data=st.data())
def test_mutated_line_is_a_record_or_a_skip(data: st.DataObject) -> None:
    lines = FIXTURES.split("\n")
    mutate_line(data, lines)
    text = "\n".join(lines)
    sink = parse(text)
    assert sink.records + sink.skipped + sink.meta.get("merged_lines", 0) == non_blank(text, asa.BLANK)
    assert all(s.line >= 1 for s in sink.skips)


def test_simulated_outbreak_round_trip(tmp_path: Path) -> None:
    truth, sink = simulate_and_parse(tmp_path, "asa", "cisco-asa")
    assert [p.name for p in (tmp_path / "network").iterdir()] == ["asa.log"]
    # Every session is one flow (its Built line merged), and nothing was skipped.
    assert sink.skipped == 0
    assert sink.meta["merged_lines"] == sum(1 for r in sink.of("flows") if r["action"] != "deny")
    pz = truth["patient_zero"]["ip"]
    from_pz = [r for r in sink.of("flows") if r["src_ip"] == pz and r["dst_port"] == 445]
    assert len({r["dst_ip"] for r in from_pz}) >= 10
    assert any(r["action"] == "timeout" for r in from_pz)
    assert sink.of("net_alerts") == []
