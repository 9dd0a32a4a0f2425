"""Windows Firewall log: header by name, pid column, truncated lines, XP ICF, UTC variant, the real log."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import assert_same_in_every_encoding
from tests.netlog_helpers import fast, parse_with
from wormhunt.sources import FORMATS, pfirewall
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_head
from wormhunt.sources.text import decode, sniff_encoding

FIELDS = (
    "date time action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn tcpack tcpwin icmptype icmpcode"
)
HEADER = f"""#Version: 1.5
#Software: Microsoft Windows Firewall
#Time Format: Local
#Fields: {FIELDS} info path pid
"""
WIN10 = (
    HEADER
    + """
2023-11-26 22:27:57 DROP TCP 192.168.10.106 192.229.221.95 65457 80 0 - 0 0 0 - - - SEND 1360
2023-11-26 22:28:01 ALLOW TCP 10.1.1.9 10.1.1.5 50123 445 52 S 1234 0 64240 - - - RECEIVE 4
2023-11-26 22:28:02 ALLOW ICMPv6 fe80:0000::0001 ff02::1 - - 72 - - - - 135 0 - SEND 0
2023-11-26 22:28:03 ALLOW 2 10.1.1.1 224.0.0.1 - - 0 - - - - - - - RECEIVE 0
"""
)
# Microsoft's documentation sample: 17 fields, IPv6, a line cut short without its path.
DOCS = f"""#Version: 1.5
#Software: Microsoft Windows Firewall
#Time Format: Local
#Fields: {FIELDS} info path

2019-11-06 12:35:19 DROP UDP 5.5.3.197 224.0.0.251 5353 5353 59 - - - - - - - RECEIVE
2019-11-06 12:35:19 DROP UDP fe80::3680:dff:fe01:9e88 ff02::fb 5353 5353 89 - - - - - -\x20
2019-11-06 12:35:19 DROP UDP 5.5.3.193 224.0.0.251 5353 5353 59 - - - - - - - RECEIVE
"""
XP = f"""#Verson: 1.0
#Software: Microsoft Internet Connection Firewall
#Time Format: Local
#Fields: {FIELDS} info

2004-08-04 10:12:01 OPEN TCP 192.168.0.10 192.168.0.20 1030 445 - - - - - - - -
2004-08-04 10:12:02 OPEN-INBOUND TCP 192.168.0.20 192.168.0.10 1031 139 - - - - - - - -
2004-08-04 10:12:40 CLOSE TCP 192.168.0.10 192.168.0.20 1030 445 - - - - - - - -
2004-08-04 10:13:00 DROP TCP 192.168.0.99 192.168.0.10 4000 445 48 S 11 0 64240 - - -
2004-08-04 10:14:00 INFO-EVENTS-LOST - - - - - - - - - - - - 12
"""


def parse(text: str) -> MemorySink:
    return parse_with(pfirewall.parse_text, text)


def test_win10_fields_with_pid() -> None:
    sink = parse(WIN10)
    rows = sink.of("flows")
    assert len(rows) == 4 and sink.skipped == 0
    first, smb, icmp6, igmp = rows
    assert first["ts"] == datetime(2023, 11, 26, 22, 27, 57)  # device-local, and said so
    assert sink.meta["local_time"] is True
    assert (first["src_ip"], first["src_port"], first["dst_ip"], first["dst_port"]) == (
        "192.168.10.106",
        65457,
        "192.229.221.95",
        80,
    )
    assert first["proto"] == 6 and first["action"] == "drop" and first["bytes_out"] == 0
    assert first["host"] is None and first["vendor"] == "windows-firewall" and first["line"] == 6
    assert smb["action"] == "allow" and smb["dst_port"] == 445 and smb["bytes_out"] == 52
    assert icmp6["proto"] == 58 and icmp6["src_ip"] == "fe80::1" and icmp6["src_port"] is None
    assert igmp["proto"] == 2
    # SEND: this host is the source; RECEIVE: the destination (multicast is nobody's own address).
    assert sink.meta["local_ips"] == ["10.1.1.5", "192.168.10.106", "fe80::1"]


def test_truncated_last_line_keeps_what_is_whole() -> None:
    sink = parse(DOCS)
    rows = sink.of("flows")
    assert [r["line"] for r in rows] == [6, 7, 8] and sink.skipped == 0
    assert rows[1]["src_ip"] == "fe80::3680:dff:fe01:9e88" and rows[1]["bytes_out"] == 89
    # Cut inside the destination port: the port may be partial, so the line is not used.
    sink = parse(DOCS + "2019-11-06 12:35:20 DROP UDP 5.5.3.197 224.0.0.251 5353 53")
    assert sink.skip_counts == Counter({"truncated line": 1}) and sink.skips[0].line == 9


def test_xp_icf_variant_and_lost_events() -> None:
    sink = parse(XP)
    assert [r["action"] for r in sink.of("flows")] == ["open", "open-inbound", "close", "drop"]
    assert sink.skip_counts == Counter({"firewall lost events (INFO-EVENTS-LOST)": 1})
    assert sink.skips[0].line == 10 and sink.meta["events_lost"] == 12
    assert sink.of("flows")[0]["bytes_out"] is None and "local_ips" not in sink.meta


def test_utc_time_format_and_a_header_that_comes_back_reordered() -> None:
    text = (
        "#Time Format: UTC\n"
        "#Fields: date time action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn tcpack tcpwin "
        "icmptype icmpcode info path\n"
        "2021-06-22 12:19:41 ALLOW TCP 10.0.0.1 10.0.0.2 50000 445 0 - - - - - - - SEND\n"
        "#Version: 1.5\n"
        "#Fields: date time action protocol dst-ip src-ip dst-port src-port size path pid extra\n"
        "2021-06-22 12:19:42 DROP UDP 10.0.0.9 10.0.0.8 137 50001 78 RECEIVE 4 x\n"
    )
    sink = parse(text)
    a, b = sink.of("flows")
    assert a["ts"] == datetime(2021, 6, 22, 12, 19, 41) and "local_time" not in sink.meta
    assert (b["src_ip"], b["dst_ip"], b["src_port"], b["dst_port"]) == ("10.0.0.8", "10.0.0.9", 50001, 137)
    assert b["proto"] == 17 and b["action"] == "drop"


def test_no_header_uses_the_classic_layout() -> None:
    body = "2021-06-22 12:19:41 DROP UDP 192.168.178.25 224.0.0.251 5353 5353 73 - - - - - - - RECEIVE\n"
    assert pfirewall.sniff(body * 3) >= 0.9
    (row,) = parse(body).of("flows")
    assert row["dst_port"] == 5353 and row["bytes_out"] == 73


def test_bad_lines_are_counted_with_line_numbers_and_never_raise() -> None:
    text = HEADER + (
        "2023-13-26 22:27:57 DROP TCP 1.1.1.1 2.2.2.2 1 2 0 - 0 0 0 - - - SEND 1\n"  # 5 bad month
        "2023-11-26 22:27:57 BLOCK TCP 1.1.1.1 2.2.2.2 1 2 0 - 0 0 0 - - - SEND 1\n"  # 6 unknown action
        "2023-11-26 22:27:57 ALLOW TCP - 2.2.2.2 1 2 0 - 0 0 0 - - - SEND 1\n"  # 7 no src
        "garbage\n"  # 8 cut short
        "#Comment: something\n"  # 9 unknown header
        "2023-11-26 22:27:57 ALLOW FOO 1.1.1.1 2.2.2.2 99999 2 99999999999999999999999 - 0 0 0 - - - SEND 1\n"  # 10
    )
    sink = parse(text)
    assert sink.skip_counts == Counter(
        {
            "no readable date/time": 1,
            "unknown action": 1,
            "no src-ip/dst-ip": 1,
            "truncated line": 1,
            "unknown header line": 1,
        }
    )
    assert sorted(s.line for s in sink.skips) == [5, 6, 7, 8, 9]
    (row,) = sink.of("flows")
    assert row["line"] == 10 and row["proto"] is None and row["src_port"] is None and row["bytes_out"] is None


def test_sniff_and_registry() -> None:
    assert pfirewall.sniff(WIN10) >= 0.95 and pfirewall.sniff(XP) >= 0.95
    assert pfirewall.sniff('{"timestamp":"2017-04-07T22:24:37+0100","event_type":"alert"}\n') == 0.0
    assert pfirewall.sniff('date=2018-11-18 time=08:38:18 devname="FGT" type="traffic" srcip=1.1.1.1\n') == 0.0
    assert pfirewall.sniff("  Proto  Local Address          Foreign Address        State           PID\n") == 0.0
    assert FORMATS["pfirewall"].host_evidence is True
    for text in (WIN10, DOCS, XP):
        found = detect_head(text.encode(), complete=True)
        assert found.format is not None and found.format.name == "pfirewall"


def test_same_rows_in_every_encoding() -> None:
    assert_same_in_every_encoding(pfirewall.parse_text, WIN10, "flows", "pfirewall")


def test_parse_file_matches_parse_text(tmp_path: Path) -> None:
    path = tmp_path / "pfirewall.log"
    raw = (WIN10 + XP).replace("\n", "\r\n").encode()
    path.write_bytes(raw)
    sink = MemorySink()
    pfirewall.parse_file(path, sniff_encoding(raw), sink)
    mem = parse(WIN10 + XP)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "offset"} for r in rows]  # noqa: E731
    assert strip(sink.of("flows")) == strip(mem.of("flows"))
    assert sink.skip_counts == mem.skip_counts and sink.meta == mem.meta
    for r in sink.of("flows"):
        assert raw[r["offset"] :].split(b"\r\n", 1)[0].decode() == (WIN10 + XP).split("\n")[r["line"] - 1]


def test_format_samples_parse_cleanly() -> None:
    folder = Path(__file__).resolve().parents[2] / "shared" / "reference" / "format-samples" / "pfirewall"
    if not folder.is_dir():
        return
    for path in folder.glob("*.log"):
        sink = parse(decode(path.read_bytes()).text)
        assert sink.records > 0 and sink.skipped == 0, path


def test_real_log_is_a_negative_control(shared_data: Path) -> None:
    path = shared_data / "firewall" / "pfirewall.log"
    raw = path.read_bytes()
    found = detect_head(raw[:65536], complete=False)
    assert found.format is not None and found.format.name == "pfirewall"
    sink = MemorySink()
    pfirewall.parse_file(path, found.encoding, sink)
    data_lines = sum(1 for line in raw.split(b"\n") if line.strip() and not line.startswith(b"#"))
    assert sink.records + sink.skipped == data_lines
    assert sink.skip_counts == Counter({"firewall lost events (INFO-EVENTS-LOST)": 2})
    rows = sink.of("flows")
    assert Counter(r["action"] for r in rows) == {"drop": 11688, "allow": 5119}
    assert Counter(r["proto"] for r in rows)[2] == 32  # IGMP written as a number
    assert "192.168.178.51" in sink.meta["local_ips"]
    targets: dict[str, set[str]] = {}
    for r in rows:
        if r["dst_port"] == 445:
            targets.setdefault(r["src_ip"], set()).add(r["dst_ip"])
    assert max((len(v) for v in targets.values()), default=0) < 25


FAST = fast(80)
GOOD = [line for line in (WIN10 + DOCS).splitlines() if line and not line.startswith("#")]


@FAST
@given(
    data=st.lists(
        st.one_of(
            st.sampled_from(GOOD),
            st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r#"), max_size=80),
        ),
        max_size=15,
    )
)
def test_every_data_line_is_a_record_or_a_skip(data: list[str]) -> None:
    sink = parse(HEADER + "\n".join(data))
    # Blank as the line reader defines it: trailing NUL padding (preallocated log files) included.
    assert sink.records + sink.skipped == sum(1 for x in data if x.rstrip(" \t\r\x00\u3000").strip())


@FAST
@given(data=st.binary(max_size=2000))
def test_random_bytes_never_raise(data: bytes) -> None:
    text = decode(data).text
    sink = parse(text)
    assert sink.records + sink.skipped <= text.count("\n") + 1
