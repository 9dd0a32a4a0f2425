"""iptables LOG parser: prefixes, glued IN=, ICMP embedded packets, IPv6, uptime, syslog headers, bad lines."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ROOT, encodings
from tests.netlog_helpers import fast, mutate_line, parse_with
from wormhunt.sources import FORMATS, iptables
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_head
from wormhunt.sources.text import sniff_encoding

SAMPLE = ROOT.parent / "shared" / "reference" / "format-samples" / "iptables" / "iptables_log_samples.log"
# Real lines (elastic/integrations iptables test log, see format-samples/iptables/SOURCES.md).
DROP = (
    "Jan  8 03:37:09 example-host kernel: iptables DROP_INPUT: IN=eth0 OUT= MAC=90:10:35:5a:1e:3a:90:10:9e:ec:2c:71:"
    "08:00 SRC=81.2.69.143 DST=172.16.54.114 LEN=52 TOS=0x00 PREC=0x00 TTL=115 ID=15743 DF PROTO=TCP SPT=17805 "
    "DPT=445 WINDOW=8192 RES=0x00 SYN URGP=0 "
)
GLUED = (
    "<161>Oct 10 07:25:12 Hostname kernel: [wan-lan-default-D]IN=eth0 OUT= MAC=90:10:20:76:8d:20:90:10:65:29:b6:2a:"
    "08:00 SRC=67.43.156.15 DST=10.4.0.5 LEN=52 TOS=0x00 PREC=0x00 TTL=63 ID=0 DF PROTO=TCP SPT=38842 DPT=443 "
    "WINDOW=2853 RES=0x00 ACK URGP=0"
)
ICMP = (
    "Jan  8 03:37:09 DENY: IN=eth0 OUT= MAC=90:10:28:5f:62:24:90:10:18:5a:89:2a:08:00 SRC=192.168.2.71 "
    "DST=192.168.2.83 LEN=88 TOS=0x00 PREC=0x00 TTL=118 ID=21684 PROTO=ICMP TYPE=3 CODE=3 [SRC=192.168.2.83 "
    "DST=192.168.173.191 LEN=60 TOS=0x00 PREC=0x00 TTL=54 ID=0 DF PROTO=UDP SPT=21458 DPT=62936 LEN=40 ]"
)
V6 = (
    "Jan 22 10:52:34 ubuntu-bionic kernel: [  307.757925] IN= OUT=enp0s3 MAC=90:10:12:34:56:78:90:10:aa:bb:cc:dd:"
    "86:dd:ff:ff SRC=fe80:0000:0000:0000:0084:88ff:feae:790a DST=ff02:0000:0000:0000:0000:0000:0000:0016 LEN=96 "
    "TC=0 HOPLIMIT=1 FLOWLBL=0 PROTO=ICMPv6 TYPE=143 CODE=0 MARK=0xd4"
)
# Hand-written: ufw prefix, ISO header with a zone, UDP with a second LEN=.
UFW = (
    "2024-03-05T10:11:12.345+08:00 web01 kernel: [UFW BLOCK] IN=ens3 OUT= MAC=00:00:00:00:00:00:00:00:00:00:00:00:"
    "08:00 SRC=10.1.1.5 DST=10.1.1.9 LEN=78 TOS=0x00 PREC=0x00 TTL=128 ID=1 PROTO=UDP SPT=137 DPT=137 LEN=58"
)
ACCEPT = "Feb 29 23:59:59 gw kernel: FW-ACCEPT IN=eth1 OUT=eth0 SRC=10.0.0.2 DST=10.0.0.3 LEN=60 PROTO=6 SPT=1 DPT=2"
DOC = "\n".join([DROP, GLUED, ICMP, V6, UFW]) + "\n"


def parse(text: str, year: int | None = 2024) -> MemorySink:
    return parse_with(iptables.parse_text, text, **({"default_year": year} if year else {}))


def test_real_sample_file() -> None:
    if not SAMPLE.is_file():
        pytest.skip("format samples absent")
    text = SAMPLE.read_text(encoding="utf-8")
    sink = parse(text)
    assert sink.skipped == 0 and len(sink.of("flows")) == len(text.strip().splitlines())
    assert iptables.sniff(text) > 0.9


def test_fields_and_actions_exact() -> None:
    sink = parse(DOC)
    drop, glued, icmp, v6, ufw = sink.of("flows")
    assert drop["ts"] == datetime(2024, 1, 8, 3, 37, 9) and drop["host"] == "example-host"
    assert drop["src_ip"] == "81.2.69.143" and drop["src_port"] == 17805
    assert drop["dst_ip"] == "172.16.54.114" and drop["dst_port"] == 445 and drop["proto"] == 6
    assert drop["action"] == "drop" and drop["bytes_out"] == 52 and drop["vendor"] == "iptables"
    assert glued["action"] == "drop" and glued["host"] == "Hostname" and glued["dst_port"] == 443
    # ICMP error: the outer addresses, no ports from the embedded UDP packet; no host in that header.
    assert icmp["src_ip"] == "192.168.2.71" and icmp["dst_ip"] == "192.168.2.83" and icmp["proto"] == 1
    assert icmp["src_port"] is None and icmp["dst_port"] is None and icmp["bytes_out"] == 88
    assert icmp["action"] == "deny" and icmp["host"] is None
    assert v6["src_ip"] == "fe80::84:88ff:feae:790a" and v6["dst_ip"] == "ff02::16" and v6["proto"] == 58
    assert v6["action"] == "logged" and v6["host"] == "ubuntu-bionic"
    assert ufw["ts"] == datetime(2024, 3, 5, 2, 11, 12, 345000) and ufw["action"] == "block"
    assert ufw["proto"] == 17 and ufw["bytes_out"] == 78 and ufw["dst_port"] == 137
    assert sink.skipped == 0 and sink.meta["local_time"] is True and sink.meta["year_guessed"] is True


def test_numeric_proto_leap_day_and_year_from_meta() -> None:
    (row,) = parse(ACCEPT, year=2024).of("flows")
    assert row["proto"] == 6 and row["action"] == "accept" and row["ts"] == datetime(2024, 2, 29, 23, 59, 59)
    sink = parse(ACCEPT, year=2023)  # no 29 February that year
    assert sink.of("flows") == [] and sink.skip_counts == {"no readable date/time (no syslog header)": 1}


@pytest.mark.parametrize(
    ("prefix", "action"),
    [
        ("iptables DROP_INPUT:", "drop"),
        ("[WAN_IN-10-A]", "accept"),
        ("[LAN-default-R]", "reject"),
        ("REJECTED: ", "reject"),
        ("[UFW ALLOW]", "allow"),
        ("denied ", "deny"),
        ("NEW_CONN ", "logged"),
        ("", "logged"),
    ],
)
def test_action_words(prefix: str, action: str) -> None:
    assert iptables.action_of(prefix) == action


def test_bad_lines_are_counted_with_line_numbers() -> None:
    text = "\n".join(
        [
            DROP,
            "Jan  8 03:37:10 example-host sshd[123]: Accepted publickey for root",
            "",
            DROP[:60],  # truncated before SRC
            "[  307.757925] IN=eth0 OUT= SRC=1.1.1.1 DST=2.2.2.2 LEN=40 PROTO=TCP SPT=1 DPT=445",  # dmesg: no date
            "Jan  8 03:37:11 example-host kernel: DROP IN=eth0 OUT= SRC= DST=2.2.2.2 LEN=40 PROTO=TCP",
            GLUED,
        ]
    )
    sink = parse(text)
    assert [r["line"] for r in sink.of("flows")] == [1, 7]
    assert {s.line: s.reason for s in sink.skips} == {
        2: "not an iptables LOG line (no IN=)",
        4: "not an iptables LOG line (no IN=)",
        5: "no readable date/time (no syslog header)",
        6: "no SRC/DST address",
    }


@pytest.mark.parametrize("variant", ["utf-8", "utf-8-bom", "utf-16le-bom", "crcrlf"])
def test_file_encodings_and_offsets(tmp_path: Path, variant: str) -> None:
    raw = encodings(DOC)[variant]
    det = detect_head(raw, complete=True)
    assert det.format is not None and det.format.name == "iptables"
    path = tmp_path / "kern.log"
    path.write_bytes(raw)
    sink = MemorySink()
    sink.meta["default_year"] = 2024
    iptables.parse_file(path, sniff_encoding(raw), sink)
    rows = sink.of("flows")
    assert [r["src_ip"] for r in rows] == [
        "81.2.69.143",
        "67.43.156.15",
        "192.168.2.71",
        "fe80::84:88ff:feae:790a",
        "10.1.1.5",
    ]
    if variant == "utf-8":
        for r in rows:
            end = raw.index(b"\n", r["offset"])
            assert raw[r["offset"] : end].decode().rstrip("\r") == DOC.split("\n")[r["line"] - 1]


def test_year_from_file_time(tmp_path: Path) -> None:
    import os

    path = tmp_path / "kern.log"
    path.write_text(DROP + "\n", encoding="utf-8")
    stamp = datetime(2019, 6, 1).timestamp()
    os.utime(path, (stamp, stamp))
    sink = MemorySink()
    iptables.parse_file(path, sniff_encoding(path.read_bytes()), sink)
    assert sink.of("flows")[0]["ts"].year == 2019 and sink.meta["year_guessed"] is True


def test_sniff_is_specific() -> None:
    assert iptables.sniff(DOC) > 0.9
    assert iptables.sniff("Jan  8 03:37:10 host sshd[1]: Accepted publickey\n") == 0.0
    assert iptables.sniff("ts,te,td,sa,da,sp,dp,pr,flg\n") == 0.0
    for name, fmt in FORMATS.items():
        if name != "iptables":
            assert fmt.sniff(DOC) < 0.5, name


FAST = fast(80)


@FAST
@given(data=st.data())
def test_mutations_never_raise_and_every_line_is_accounted_for(data: st.DataObject) -> None:
    lines = DOC.rstrip("\n").split("\n")
    target = mutate_line(data, lines, junk=12)
    sink = parse("\n".join(lines))
    assert sink.records + sink.skipped == sum(1 for ln in lines if ln.strip(" \t\r"))
    assert len([r for r in sink.of("flows") if r["line"] != target + 1]) == len(lines) - 1


@FAST
@given(raw=st.binary(max_size=2000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    from wormhunt.sources.text import decode

    text = decode(raw).text
    sink = parse(text)
    assert sink.records + sink.skipped <= text.count("\n") + 1
