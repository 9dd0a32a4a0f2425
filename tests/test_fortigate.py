"""FortiGate key=value parser: quoting, key order, repeated keys, zones, epochs, bad lines."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import encodings
from wormhunt.sources import fortigate
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_head
from wormhunt.sources.text import sniff_encoding

TRAFFIC = (
    '<189>date=2018-11-18 time=08:38:18 devname="FGT-CORE" devid="FG100E4Q17000001" logid="0000000013" '
    'type="traffic" subtype="forward" level="notice" vd="root" eventtime=1542501498 tz="+0800" '
    'srcip=172.16.101.13 srcport=51234 srcintf="port2" srcintfrole="lan" dstip=192.168.16.78 dstport=445 '
    'dstintf="port3" dstintfrole="lan" sessionid=42 proto=6 action="timeout" policyid=5 service="SMB" '
    "duration=30 sentbyte=104 rcvdbyte=0 sentpkt=2 rcvdpkt=0"
)
# Different key order, unquoted values, no eventtime, zone spelled UTC-5:00, repeated tz key.
TRAFFIC_OLD = (
    "devname=fw2 date=2020-04-23 time=12:11:51 logid=0000000020 type=traffic subtype=forward "
    'tz="UTC-5:00" tz="-0500" srcip=10.0.0.5 srcport=6000 dstip=10.0.0.9 dstport=139 proto=17 action=accept '
    "sentbyte=438650 rcvdbyte=65446 rcvdpkt=12"
)
IPS = (
    '<185>date=2020-07-13 time=09:37:44 devname="Chamhosp_201E" devid="FG201ETK19907629" logid="0419016384" '
    'type="utm" subtype="ips" eventtype="signature" level="alert" vd="root" eventtime=1594600665469973652 '
    'tz="+0900" severity="medium" srcip=10.10.40.132 dstip=10.10.40.245 action="dropped" proto=6 service="NBSS" '
    'attack="MS.SMB.Server.SMB1.Trans2.Secondary.Handling.Code.Execution" srcport=62227 dstport=445 '
    'attackid=43796 ref="http://www.fortinet.com/ids/VID43796" msg="applications3: a b = c \\"quoted\\","'
)
# FortiOS 5.0 IPS: attackname/status instead of attack/action, eventtime in ms.
IPS_OLD = (
    "date=2017-05-15 time=10:00:00 devname=oldfw type=utm subtype=ips eventtime=1494842400000 "
    "srcip=192.168.1.20 dstip=192.168.1.30 dstport=445 attackname=Backdoor.DoublePulsar status=detected "
    "severity=critical"
)
EVENT = 'date=2018-11-18 time=08:00:00 devname="FGT-CORE" logid="0100032001" type="event" subtype="system" msg="x"'


def parse(text: str) -> MemorySink:
    sink = MemorySink()
    fortigate.parse_text(text, sink)
    return sink


def test_traffic_fields_and_utc_time() -> None:
    sink = parse(TRAFFIC + "\n")
    (row,) = sink.of("flows")
    assert row["src_ip"] == "172.16.101.13" and row["dst_ip"] == "192.168.16.78"
    assert row["src_port"] == 51234 and row["dst_port"] == 445 and row["proto"] == 6
    assert row["action"] == "timeout" and row["service"] == "SMB"
    assert row["bytes_in"] == 0 and row["bytes_out"] == 104 and row["pkts_in"] == 0 and row["duration"] == 30
    # eventtime is epoch seconds: 08:38:18 at +0800 is 00:38:18 UTC.
    assert row["ts"] == datetime(2018, 11, 18, 0, 38, 18)
    assert row["host"] == "FGT-CORE" and row["line"] == 1
    assert row["offset"] is None  # text in memory has no file offsets; parse_file records them
    assert sink.skipped == 0


def test_key_order_unquoted_values_and_repeated_keys() -> None:
    sink = parse(TRAFFIC_OLD)
    (row,) = sink.of("flows")
    assert row["host"] == "fw2" and row["dst_port"] == 139 and row["proto"] == 17
    # First tz wins: UTC-5:00 -> 17:11:51 UTC.
    assert row["ts"] == datetime(2020, 4, 23, 17, 11, 51)
    assert row["bytes_out"] == 438650 and row["pkts_in"] == 12


def test_ips_alert_with_nanosecond_eventtime_and_escaped_quotes() -> None:
    sink = parse(IPS)
    (row,) = sink.of("net_alerts")
    assert row["signature"] == "MS.SMB.Server.SMB1.Trans2.Secondary.Handling.Code.Execution"
    assert row["signature_id"] == "43796" and row["severity"] == "medium" and row["action"] == "dropped"
    assert row["ts"] == datetime(2020, 7, 13, 0, 37, 45, 469973)
    assert row["src_ip"] == "10.10.40.132" and row["dst_port"] == 445
    assert sink.of("flows") == []


def test_fortios5_ips_names_and_millisecond_epoch() -> None:
    (row,) = parse(IPS_OLD).of("net_alerts")
    assert row["signature"] == "Backdoor.DoublePulsar" and row["action"] == "detected"
    assert row["ts"] == datetime(2017, 5, 15, 10, 0, 0)


def test_no_zone_keeps_device_local_time_and_says_so() -> None:
    line = (
        "date=2019-01-02 time=03:04:05 devname=x type=traffic subtype=forward srcip=1.1.1.1 dstip=2.2.2.2 dstport=445"
    )
    sink = parse(line)
    assert sink.of("flows")[0]["ts"] == datetime(2019, 1, 2, 3, 4, 5)
    assert sink.meta.get("local_time") is True


def test_ipv6_addresses() -> None:
    line = (
        "date=2021-01-01 time=00:00:00 tz=+0000 type=traffic subtype=forward srcip=2a02:c7f:1234::1 "
        "dstip=2001:db8::5 dstport=445 action=close"
    )
    (row,) = parse(line).of("flows")
    assert row["src_ip"] == "2a02:c7f:1234::1" and row["dst_ip"] == "2001:db8::5"


def test_bad_lines_are_counted_with_line_numbers_and_never_raise() -> None:
    text = "\n".join(
        [
            TRAFFIC,
            "garbage line without keys",
            EVENT,
            'date=2018-11-18 time=08:00:00 type="traffic" subtype=forward dstip=1.2.3.4',  # no srcip
            'date=2018-13-45 time=99:00:00 type="traffic" srcip=1.1.1.1 dstip=2.2.2.2',  # impossible date
            'type="utm" subtype="ips" date=2018-11-18 time=08:00:00 srcip=1.1.1.1 dstip=2.2.2.2',  # no attack
            "",
            TRAFFIC[: len(TRAFFIC) // 3],  # truncated last line: cut before dstip
        ]
    )
    sink = parse(text)
    assert len(sink.of("flows")) == 1
    reasons = {s.line: s.reason for s in sink.skips}
    assert reasons == {
        2: "not a key=value log line",
        3: "other FortiGate log type",
        4: "no srcip/dstip",
        5: "no readable date/time",
        6: "IPS line without attack name",
        8: "no srcip/dstip",
    }
    assert sink.skipped == 6


@pytest.mark.parametrize("variant", ["utf-8", "utf-8-bom", "utf-16le-bom", "crcrlf"])
def test_file_encodings_give_the_same_rows(tmp_path: Path, variant: str) -> None:
    text = "\n".join([TRAFFIC, IPS, TRAFFIC_OLD]) + "\n"
    raw = encodings(text)[variant]
    path = tmp_path / "fgt.log"
    path.write_bytes(raw)
    det = detect_head(raw, complete=True)
    assert det.format is not None and det.format.name == "fortigate"
    sink = MemorySink()
    fortigate.parse_file(path, sniff_encoding(raw), sink)
    assert [r["src_ip"] for r in sink.of("flows")] == ["172.16.101.13", "10.0.0.5"]
    assert [r["line"] for r in sink.of("flows")] == [1, 3]
    assert len(sink.of("net_alerts")) == 1 and sink.skipped == 0


def test_offsets_point_at_the_line(tmp_path: Path) -> None:
    text = TRAFFIC + "\n" + TRAFFIC_OLD + "\n"
    path = tmp_path / "fgt.log"
    path.write_bytes(text.encode())
    sink = MemorySink()
    fortigate.parse_file(path, sniff_encoding(text.encode()), sink)
    raw = path.read_bytes()
    for row in sink.of("flows"):
        start = row["offset"]
        assert raw[start : raw.index(b"\n", start)].decode() == text.split("\n")[row["line"] - 1]


def test_many_blocks_keep_line_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Small blocks force lines across block boundaries: numbering must stay exact.
    from wormhunt.sources import stream

    lines = [TRAFFIC.replace("srcport=51234", f"srcport={1000 + i}") for i in range(500)]
    path = tmp_path / "big.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(stream, "BLOCK_BYTES", 4096)
    orig = stream.iter_blocks
    monkeypatch.setattr(fortigate, "iter_blocks", lambda p, e, tap=None: orig(p, e, block_bytes=4096, tap=tap))
    sink = MemorySink()
    fortigate.parse_file(path, sniff_encoding(path.read_bytes()[:4096]), sink)
    rows = sink.of("flows")
    assert len(rows) == 500
    assert all(r["src_port"] == 1000 + r["line"] - 1 for r in rows)


def test_gbk_device_name_is_decoded(tmp_path: Path) -> None:
    line = TRAFFIC.replace('devname="FGT-CORE"', 'devname="核心防火墙"')
    path = tmp_path / "gbk.log"
    raw = (line + "\n").encode("gbk")
    path.write_bytes(raw)
    sink = MemorySink()
    fortigate.parse_file(path, sniff_encoding(raw), sink)
    assert sink.of("flows")[0]["host"] == "核心防火墙"


def test_sniff_accepts_fortigate_and_rejects_other_kv_logs() -> None:
    assert fortigate.sniff(TRAFFIC + "\n" + IPS) > 0.9
    assert fortigate.sniff("a=1 b=2 c=3\nfoo=bar\n") == 0.0


def test_small_blocks_long_lines_bom_and_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks smaller than a line, a UTF-8 BOM, and the sha256 computed while parsing."""
    import hashlib

    from wormhunt.ingest import ingest
    from wormhunt.sources import stream
    from wormhunt.store import Case

    long_line = TRAFFIC + ' msg="' + "x" * 5000 + '"'
    lines = [TRAFFIC, long_line, TRAFFIC_OLD] * 40
    path = tmp_path / "fgt.log"
    path.write_bytes(b"\xef\xbb\xbf" + ("\n".join(lines)).encode())  # no newline at the end
    orig = stream.iter_blocks
    monkeypatch.setattr(fortigate, "iter_blocks", lambda p, e, tap=None: orig(p, e, block_bytes=1024, tap=tap))
    with Case(tmp_path / "case") as case:
        (entry,) = ingest(case, [path])
        assert entry.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry.records == 120 and entry.skipped == 0
        rows = case.query('SELECT line, "offset", src_port FROM flows ORDER BY line')
    raw = path.read_bytes()
    assert [r["line"] for r in rows] == list(range(1, 121))
    for r in rows:
        end = raw.find(b"\n", r["offset"])
        text = raw[r["offset"] : end if end >= 0 else len(raw)].decode()
        assert text == lines[r["line"] - 1]


@pytest.mark.parametrize(
    ("tz", "expected"),
    [('"UTC"', datetime(2019, 1, 2, 3, 4, 5)), ("Z", datetime(2019, 1, 2, 3, 4, 5)), ('"+0875"', None)],
)
def test_zone_names_and_impossible_offsets(tz: str, expected: datetime | None) -> None:
    line = f"date=2019-01-02 time=03:04:05 tz={tz} type=traffic subtype=forward srcip=1.1.1.1 dstip=2.2.2.2"
    sink = parse(line)
    assert sink.of("flows")[0]["ts"] == datetime(2019, 1, 2, 3, 4, 5)
    assert sink.meta.get("local_time") is (None if expected else True)


def test_impossible_calendar_dates_are_refused() -> None:
    sink = parse("date=2025-02-29 time=00:00:00 tz=+0000 type=traffic srcip=1.1.1.1 dstip=2.2.2.2")
    assert sink.of("flows") == [] and sink.skip_counts == {"no readable date/time": 1}
    sink = parse("date=2024-02-29 time=00:00:00 tz=+0000 type=traffic srcip=1.1.1.1 dstip=2.2.2.2")
    assert sink.of("flows")[0]["ts"] == datetime(2024, 2, 29)
