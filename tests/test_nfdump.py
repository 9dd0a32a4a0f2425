"""nfdump -o csv parser: 1.6 (48/43 columns), 1.7 names, -q, fast mode, trailer, bad lines; the simulator."""

from __future__ import annotations

import collections
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ROOT, encodings
from tests.netlog_helpers import fast, mutate_line, parse_with
from wormhunt.sources import FORMATS, nfdump
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_head
from wormhunt.sources.text import sniff_encoding

SAMPLES = ROOT.parent / "shared" / "reference" / "format-samples" / "nfdump"
H16 = ",".join(nfdump.HEADER_16)
H16_OLD = ",".join(nfdump.HEADER_16_OLD)
_MID = "0,0,0,0,0,0,0,0,0.0.0.0,0.0.0.0,0,0," + ",".join(["00:00:00:00:00:00"] * 4) + "," + ",".join(["0-0-0"] * 10)
# Real rows (format-samples/nfdump, SOURCES.md).
ICMP = (
    "2022-09-03 07:10:39,2022-09-03 07:11:04,24.576,65.108.207.181,88.99.162.34,0,2816,ICMP,......,0,192,2,1152,0,0,"
    f"{_MID},    0.000,    0.000,    0.000,0.0.0.0,0/0,1,1970-01-01 00:00:00.000"
)
V6 = (
    "2023-01-17 07:02:25,2023-01-17 07:02:26,0.421,fe80::60df:46cb:1382:b255,ff02::1:3,54347,5355,UDP,......,0,0,2,"
    f"158,0,0,{_MID},0.000,0.000,0.000,10.101.44.1,0/0,1,2023-01-17 07:03:01.822"
)
SYN = (
    "2018-11-18 08:38:18.120,2018-11-18 08:38:21.100,2.980,172.16.101.13,192.168.16.78,51234,445,TCP  ,....S.,0,0,"
    f"3,156,0,0,{_MID},0.000,0.000,0.000,10.32.0.1,0/0,0,2018-11-18 08:38:30"
)
OLD = (
    "2016-04-03 21:04:58,2016-04-03 21:04:58,0.000,84.88.72.48,109.69.15.5,80,41401,TCP,.A....,0,0,4,4905,0,0,20,64,"
    "0,0,0,0,0,0,0.0.0.0,0.0.0.0,0,0,00:00:00:00:00:00,00:00:00:00:00:00,00:00:00:00:00:00,00:00:00:00:00:00,"
    "0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,0.0.0.0,0/0"
)
TRAILER = "Summary\nflows,bytes,packets,avg_bps,avg_pps,avg_bpp\n3,1466,7,0,0,0"
DOC = f"{H16}\n{ICMP}\n{V6}\n{SYN}\n{TRAILER}\n"


def parse(text: str) -> MemorySink:
    return parse_with(nfdump.parse_text, text)


def test_real_samples_parse_without_skips() -> None:
    if not SAMPLES.is_dir():
        pytest.skip("format samples absent")
    for path in sorted(SAMPLES.glob("*.csv")):
        text = path.read_text(encoding="utf-8")
        sink = parse(text)
        data_lines = [ln for ln in text.splitlines()[1:] if ln.strip()][: -3 if "Summary" in text else None]
        assert sink.skipped == 0 and len(sink.of("flows")) == len(data_lines), path.name
        assert nfdump.sniff(text) > 0.9


def test_16_fields_exact() -> None:
    sink = parse(DOC)
    icmp, v6, syn = sink.of("flows")
    assert icmp["ts"] == datetime(2022, 9, 3, 7, 10, 39) and icmp["line"] == 2
    assert icmp["src_ip"] == "65.108.207.181" and icmp["dst_ip"] == "88.99.162.34"
    assert icmp["proto"] == 1 and icmp["src_port"] == 0 and icmp["dst_port"] == 2816  # ICMP type 11 code 0
    assert icmp["bytes_out"] == 1152 and icmp["bytes_in"] is None and icmp["pkts_in"] is None
    assert icmp["duration"] == 24 and icmp["action"] == "......" and icmp["host"] is None  # ra 0.0.0.0
    assert v6["src_ip"] == "fe80::60df:46cb:1382:b255" and v6["dst_ip"] == "ff02::1:3" and v6["proto"] == 17
    assert v6["dst_port"] == 5355 and v6["host"] == "10.101.44.1" and v6["duration"] == 0
    assert syn["ts"] == datetime(2018, 11, 18, 8, 38, 18, 120000) and syn["proto"] == 6  # `TCP  ` padded
    assert syn["action"] == "....S." and syn["dst_port"] == 445 and syn["bytes_out"] == 156
    assert all(r["vendor"] == "nfdump" for r in sink.of("flows"))
    # Header and Summary trailer are not data and are not reported as skipped.
    assert sink.skipped == 0 and sink.meta.get("local_time") is True


def test_43_column_header() -> None:
    (row,) = parse(f"{H16_OLD}\n{OLD}\n").of("flows")
    assert row["src_port"] == 80 and row["dst_port"] == 41401 and row["bytes_out"] == 4905 and row["action"] == ".A...."


def test_quiet_output_without_header_uses_column_count() -> None:
    sink = parse(f"{ICMP}\n{OLD}\n{SYN}\n2022-09-03 07:10:39,1.2.3.4,5.6.7.8\n")
    by_line = {r["line"]: r for r in sink.of("flows")}
    assert sorted(by_line) == [1, 2, 3] and by_line[2]["src_ip"] == "84.88.72.48" and by_line[3]["dst_port"] == 445
    assert sink.skip_counts == {"no header and not a 1.6 -q layout (48 or 43 columns)": 1}
    assert nfdump.sniff(f"{ICMP}\n{SYN}\n") >= 0.9


def test_17_renamed_header_and_icmp_type_code() -> None:
    header = "firstSeen,lastSeen,duration,proto,srcAddr,srcPort,dstAddr,dstPort,flags,inPackets,inBytes,routerIP"
    rows = [
        "2024-05-01 10:00:00.250,2024-05-01 10:00:03.000,2.750,6,10.0.0.5,50000,10.0.0.9,445,......S.,2,104,0.0.0.0",
        "2024-05-01 10:00:01.000,2024-05-01 10:00:01.000,0.000,1,10.0.0.5,0,10.0.0.9,11.0,........,1,84,10.0.0.1",
        "0000-00-00 00:00:00.000,0000-00-00 00:00:00.000,0.000,6,10.0.0.5,1,10.0.0.9,2,........,1,40,0.0.0.0",
    ]
    sink = parse("\n".join([header, *rows, TRAILER]))
    a, b = sink.of("flows")
    assert a["ts"] == datetime(2024, 5, 1, 10, 0, 0, 250000) and a["proto"] == 6 and a["action"] == "......S."
    assert a["duration"] == 2 and a["bytes_out"] == 104
    assert b["proto"] == 1 and b["dst_port"] == 2816 and b["host"] == "10.0.0.1"
    assert sink.skip_counts == {"no readable flow time": 1}


def test_17_csvline_and_fast_mode() -> None:
    csvline = "firstSeen,duration,proto,srcAddr,srcPort,dstAddr,dstPort,packets,bytes,flows\n"
    csvline += "2024-05-01 10:00:00.000,1.500,17,192.168.1.2,53000,8.8.8.8,53,1,70,1\n"
    (row,) = parse(csvline).of("flows")
    assert row["proto"] == 17 and row["bytes_out"] == 70 and row["duration"] == 1 and row["dst_ip"] == "8.8.8.8"
    fast = ",".join(nfdump.HEADER_FAST) + "\n"
    fast += "1,2,1714557600250,1714557605750,6,10.1.1.5,49200,10.1.1.9,445,0,0,0,0,......S.,0,3,156\n"
    fast += "2,10,1714557600000,1714557600000,58,2001:db8::1,0,2001:db8::2,32768,0,0,0,0,........,0,1,64\n"
    sink = parse(fast)
    a, b = sink.of("flows")
    assert a["ts"] == datetime(2024, 5, 1, 10, 0, 0, 250000)  # epoch ms, UTC
    assert a["duration"] == 5 and a["proto"] == 6 and a["bytes_out"] == 156 and a["action"] == "......S."
    assert b["proto"] == 58 and b["src_ip"] == "2001:db8::1"
    assert sink.meta.get("local_time") is None


def test_bad_lines_are_counted_with_line_numbers() -> None:
    text = "\n".join(
        [
            H16,
            ICMP,
            SYN[: len(SYN) // 2],  # truncated
            "",
            ICMP.replace("65.108.207.181", "not-an-ip"),
            ICMP.replace("2022-09-03 07:10:39,2022-09-03 07:11:04", "yesterday,today"),
            "garbage words here",
            V6,
        ]
    )
    sink = parse(text)
    assert [r["line"] for r in sink.of("flows")] == [2, 8]
    assert {s.line: s.reason for s in sink.skips} == {
        3: "column count differs from the header (truncated or damaged line)",
        5: "no readable source/destination address",
        6: "no readable flow time",
        7: "column count differs from the header (truncated or damaged line)",
    }


def test_statistics_table_is_not_flows() -> None:
    text = "ts,te,td,pr,val,fl,flP,ipkt,ipktP,ibyt,ibytP,ipps,ipbs,ibpp\n"
    text += "2024-05-01 10:00:00,2024-05-01 11:00:00,3600.0,TCP,445,10,50.0,20,50.0,2000,50.0,0,4,100\n"
    sink = parse(text)
    assert sink.of("flows") == [] and sink.skip_counts == {"statistics (-s) table row, not a flow": 1}


def test_header_again_mid_file_and_trailer_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wormhunt.sources import stream

    text = DOC + f"{H16_OLD}\n{OLD}\n{TRAILER}\n"
    path = tmp_path / "two.csv"
    path.write_text(text * 30, encoding="utf-8")
    orig = stream.iter_blocks
    monkeypatch.setattr(nfdump, "iter_blocks", lambda p, e, tap=None: orig(p, e, block_bytes=700, tap=tap))
    sink = MemorySink()
    nfdump.parse_file(path, sniff_encoding(path.read_bytes()[:4096]), sink)
    assert len(sink.of("flows")) == 4 * 30 and sink.skipped == 0
    raw = path.read_bytes()
    for row in sink.of("flows")[:8]:
        end = raw.index(b"\n", row["offset"])
        assert raw[row["offset"] : end].decode() == text.split("\n")[(row["line"] - 1) % len(text.split("\n")[:-1])]


@pytest.mark.parametrize("variant", ["utf-8", "utf-8-bom", "utf-16le-bom", "crcrlf"])
def test_encodings_detect_and_parse_the_same(tmp_path: Path, variant: str) -> None:
    raw = encodings(DOC)[variant]
    det = detect_head(raw, complete=True)
    assert det.format is not None and det.format.name == "nfdump"
    path = tmp_path / "f.csv"
    path.write_bytes(raw)
    sink = MemorySink()
    nfdump.parse_file(path, sniff_encoding(raw), sink)
    assert [r["src_ip"] for r in sink.of("flows")] == ["65.108.207.181", "fe80::60df:46cb:1382:b255", "172.16.101.13"]
    assert sink.skipped == 0


def test_sniff_does_not_claim_other_csv() -> None:
    others = [
        '"Image Name","PID","Session Name","Session#","Mem Usage"\n"System","4","Services","0","1,200 K"\n',
        "Node,CommandLine,CreationDate,ExecutablePath,Name,ParentProcessId,ProcessId\nH1,,,,System,0,4\n",
        "主机名,IP地址,操作系统,角色\nPC01,10.1.1.5,Windows 7,pc\n",
        "hostname,ip,os,role\npc01,10.1.1.5,Windows 7,pc\n",
        "1,2018/11/18 08:38:18,001801000001,TRAFFIC,end,2049,2018/11/18 08:38:18,10.1.1.5,10.1.1.9,0.0.0.0\n",
        "Jan  8 03:37:09 h kernel: DROP IN=eth0 OUT= SRC=1.1.1.1 DST=2.2.2.2 LEN=52 PROTO=TCP SPT=1 DPT=445\n",
    ]
    for text in others:
        assert nfdump.sniff(text) == 0.0, text
    for name, fmt in FORMATS.items():
        if name != "nfdump":
            assert fmt.sniff(DOC) < 0.5, name


def test_simulated_outbreak_round_trip(tmp_path: Path) -> None:
    from wormhunt.simulate import simulate
    from wormhunt.sources.detect import detect_file

    truth = simulate(tmp_path, hosts=30, days=1, lines=3000, net_format="nfdump")
    path = tmp_path / "network" / "nfcapd.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == H16 and lines[-3] == "Summary"
    det = detect_file(path)
    assert det.format is not None and det.format.name == "nfdump"
    sink = MemorySink()
    nfdump.parse_file(path, det.encoding, sink)
    rows = sink.of("flows")
    assert sink.skipped == 0 and len(rows) == len(lines) - 4 == int(lines[-1].split(",")[0])
    smb = collections.Counter(r["src_ip"] for r in rows if r["dst_port"] == 445)
    pz = truth["patient_zero"]["ip"]
    assert smb[pz] >= 100
    failed = collections.Counter(r["src_ip"] for r in rows if r["dst_port"] == 445 and r["action"] == "....S.")
    infected = {h["ip"] for h in truth["hosts"] if h["infected"]}
    assert pz in failed and set(failed) <= infected
    syn = next(r for r in rows if r["action"] == "....S." and r["src_ip"] == pz)
    assert syn["bytes_out"] <= 156 and syn["proto"] == 6


FAST = fast(80)


@FAST
@given(data=st.data())
def test_mutations_never_raise_and_every_data_line_is_accounted_for(data: st.DataObject) -> None:
    lines = DOC.rstrip("\n").split("\n")
    target = mutate_line(data, lines, 1, 3, junk=12)
    sink = parse("\n".join(lines))
    data_lines = sum(1 for ln in lines[1:4] if ln.strip())
    assert sink.records + sink.skipped == data_lines
    others = [r for r in sink.of("flows") if r["line"] != target + 1]
    assert len(others) == 2


@FAST
@given(raw=st.binary(max_size=2000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    from wormhunt.sources.text import decode

    text = decode(raw).text
    sink = parse(text)
    assert sink.records + sink.skipped <= text.count("\n") + 1
