"""Packet captures: SMB1 probe / exploit / implant from real captures and from captures we build."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import dpkt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wormhunt.sources import pcap, smb1
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_file
from wormhunt.sources.text import Encoding

CLIENT, SERVER = "10.0.0.5", "10.0.0.9"


def smb(
    command: int, *, response: bool = False, status: int = 0, mid: int = 1, words: bytes = b"", data: bytes = b""
) -> bytes:
    header = b"\xffSMB" + bytes([command]) + struct.pack("<I", status) + bytes([0x98 if response else 0x18])
    header += struct.pack("<H", 0xC807) + b"\x00" * 12 + struct.pack("<HHHH", 0, 0x0800, 0, mid)
    body = bytes([len(words) // 2]) + words + struct.pack("<H", len(data)) + data
    msg = header + body
    return struct.pack(">I", len(msg)) + msg


def trans(command: int, setup: tuple[int, ...], mid: int = 1) -> bytes:
    # 14 fixed parameter words, then SetupCount, Reserved, the setup words.
    words = b"\x00" * 26 + bytes([len(setup), 0]) + b"".join(struct.pack("<H", s) for s in setup)
    return smb(command, mid=mid, words=words)


def nt_transact(function: int) -> bytes:
    words = b"\x00" * 35 + b"\x00" + struct.pack("<H", function)
    return smb(smb1.SMB_NT_TRANSACT, words=words)


def capture(path: Path, segments: list[tuple[bool, bytes]], syn: bool = True, split: int = 0) -> Path:
    """Write an Ethernet pcap of one TCP connection; each segment is (from_client, payload)."""
    out = io.BytesIO()
    writer = dpkt.pcap.Writer(out)
    seq = {True: 1000, False: 5000}
    ts = 1_500_000_000.0

    def packet(up: bool, payload: bytes, flags: int) -> None:
        nonlocal ts
        tcp = dpkt.tcp.TCP(sport=49500 if up else 445, dport=445 if up else 49500, seq=seq[up], flags=flags)
        tcp.data = payload
        ip = dpkt.ip.IP(
            src=bytes(map(int, (CLIENT if up else SERVER).split("."))),
            dst=bytes(map(int, (SERVER if up else CLIENT).split("."))),
            p=dpkt.ip.IP_PROTO_TCP,
        )
        ip.data = tcp
        ip.len += len(tcp)
        eth = dpkt.ethernet.Ethernet(src=b"\x00" * 6, dst=b"\x01" * 6, data=ip)
        writer.writepkt(bytes(eth), ts)
        ts += 0.01
        seq[up] = (seq[up] + len(payload)) % 2**32

    if syn:
        packet(True, b"", dpkt.tcp.TH_SYN)
        packet(False, b"", dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK)
    for up, payload in segments:
        pieces = [payload[i : i + split] for i in range(0, len(payload), split)] if split else [payload]
        for piece in pieces:
            packet(up, piece, dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH)
    path.write_bytes(out.getvalue())
    return path


def parse(path: Path) -> MemorySink:
    sink = MemorySink()
    pcap.parse_file(path, Encoding("binary"), sink)
    return sink


def kinds(sink: MemorySink) -> list[str]:
    return [a["signature"].split(" (")[0] for a in sink.of("net_alerts")]


PROBE = [
    (True, trans(smb1.SMB_TRANSACTION, (smb1.TRANS_PEEK_NAMED_PIPE, 0), mid=7)),
    (False, smb(smb1.SMB_TRANSACTION, response=True, status=smb1.STATUS_INSUFF_SERVER_RESOURCES, mid=7)),
]
EXPLOIT = [(True, nt_transact(1))] + [(True, smb(smb1.SMB_TRANS2_SECONDARY, mid=9)) for _ in range(4)]
IMPLANT = [
    (True, trans(smb1.SMB_TRANS2, (smb1.TRANS2_SESSION_SETUP,), mid=65)),
    (False, smb(smb1.SMB_TRANS2, response=True, status=0xC0000002, mid=81)),
]


def test_probe_and_vulnerable_answer(tmp_path: Path) -> None:
    sink = parse(capture(tmp_path / "p.pcap", PROBE))
    assert kinds(sink) == ["SMB1 PeekNamedPipe on FID 0", "SMB1 probe answered STATUS_INSUFF_SERVER_RESOURCES"]
    (flow,) = sink.of("flows")
    assert (flow["src_ip"], flow["dst_ip"], flow["dst_port"], flow["action"]) == (CLIENT, SERVER, 445, "close")
    assert sink.of("net_alerts")[0]["line"] == 3  # the packet after SYN and SYN/ACK


def test_ingest_records_the_sha256_of_the_capture(tmp_path: Path) -> None:
    # The pcap reader does not feed the ingest's running hash: the file is hashed on its own,
    # and the copy kept in the case is named by that hash.
    import hashlib

    from wormhunt.ingest import ingest
    from wormhunt.store import Case

    (tmp_path / "in").mkdir()
    path = capture(tmp_path / "in" / "probe.pcap", PROBE)
    with Case(tmp_path / "case") as case:
        (entry,) = ingest(case, [tmp_path / "in"])
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry.status == "ingested" and entry.sha256 == digest
        assert (case.files_dir / digest).read_bytes() == path.read_bytes()


def test_exploit_and_implant(tmp_path: Path) -> None:
    sink = parse(capture(tmp_path / "e.pcap", EXPLOIT + IMPLANT))
    assert "SMB1 NT_TRANSACT and TRANS2_SECONDARY interleaved" in kinds(sink)
    assert "DoublePulsar reply" in kinds(sink)


def test_messages_split_across_segments_and_no_syns(tmp_path: Path) -> None:
    # Only payload packets, each SMB message cut into 7-byte segments: still decoded.
    sink = parse(capture(tmp_path / "s.pcap", PROBE + EXPLOIT, syn=False, split=7))
    assert kinds(sink)[:2] == ["SMB1 PeekNamedPipe on FID 0", "SMB1 probe answered STATUS_INSUFF_SERVER_RESOURCES"]
    assert "SMB1 NT_TRANSACT and TRANS2_SECONDARY interleaved" in kinds(sink)
    assert sink.of("flows")[0]["src_ip"] == CLIENT  # the client is the side talking to 445


def test_unanswered_syn_is_a_timeout_and_ordinary_smb_raises_nothing(tmp_path: Path) -> None:
    sink = parse(capture(tmp_path / "t.pcap", [(True, smb(0x72))]))
    assert kinds(sink) == []
    assert sink.of("flows")[0]["action"] == "close"
    out = io.BytesIO()
    w = dpkt.pcap.Writer(out)
    tcp = dpkt.tcp.TCP(sport=50000, dport=445, flags=dpkt.tcp.TH_SYN)
    ip = dpkt.ip.IP(src=b"\x0a\x00\x00\x05", dst=b"\x0a\x00\x00\x63", p=6, data=tcp)
    w.writepkt(bytes(dpkt.ethernet.Ethernet(data=ip)), 1.0)
    (tmp_path / "syn.pcap").write_bytes(out.getvalue())
    assert parse(tmp_path / "syn.pcap").of("flows")[0]["action"] == "timeout"


def test_truncated_and_garbage_captures_do_not_raise(tmp_path: Path) -> None:
    good = capture(tmp_path / "g.pcap", PROBE + EXPLOIT).read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(good[: len(good) - 37])
    sink = parse(cut)
    assert kinds(sink)[:1] == ["SMB1 PeekNamedPipe on FID 0"]  # what was read before the cut is kept
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(good[:24] + bytes(range(256)) * 20)
    parse(junk)  # a capture header followed by garbage: no exception
    assert detect_file(junk).format.name == "pcap"


def test_detection_by_magic(tmp_path: Path) -> None:
    path = capture(tmp_path / "whatever.bin", PROBE)
    assert detect_file(path).format.name == "pcap"


REAL = {
    "Win7_eternalblue_exploit.pcap": ("192.168.189.138", "192.168.189.140", {"probe", "exploit", "implant"}),
    "Win7_eternalblue_scan.pcap": ("192.168.189.138", "192.168.189.140", {"probe"}),
    "metasploit-ms017-010-win7x64.pcap": ("192.168.198.224", "192.168.198.225", {"exploit"}),
    "eternalchampion.pcap": ("10.1.75.167", "10.1.75.4", {"exploit"}),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_captures(shared_data: Path, name: str) -> None:
    from wormhunt.analyze.network import signature_spec

    src, dst, expected = REAL[name]
    sink = parse(shared_data / "pcap" / name)
    alerts = sink.of("net_alerts")
    assert {signature_spec(a["signature"], None)["kind"] for a in alerts} == expected
    assert {(a["src_ip"], a["dst_ip"]) for a in alerts} == {(src, dst)}
    assert any(f["src_ip"] == src and f["dst_port"] == 445 for f in sink.of("flows"))


def test_real_exploit_capture_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    from wormhunt.analyze import analyze
    from wormhunt.ingest import ingest
    from wormhunt.report.summary import build
    from wormhunt.store import Case

    with Case(tmp_path / "case") as case:
        (entry,) = ingest(case, [shared_data / "pcap" / "Win7_eternalblue_exploit.pcap"])
        assert entry.format == "pcap" and entry.status == "ingested"
        doc = build(case, analyze(case), "en")
    hosts = {h["host"]: h for h in doc["hosts"]}
    attacker, victim = hosts["192.168.189.138"], hosts["192.168.189.140"]
    assert attacker["status"] == "infected" and victim["status"] == "infected"
    assert {f["rule"] for f in attacker["findings"]} >= {"net.exploit_source", "net.implant_source"}
    (implant,) = [f for f in victim["findings"] if f["rule"] == "net.implant_present"]
    assert implant["evidence"][0]["text"].startswith("packet ")
    assert doc["spreaders"][0]["src"] == "192.168.189.138"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tail=st.binary(max_size=4000), cut=st.integers(0, 400))
def test_random_packets_never_raise(tmp_path_factory: pytest.TempPathFactory, tail: bytes, cut: int) -> None:
    base = capture(tmp_path_factory.mktemp("p") / "b.pcap", PROBE + EXPLOIT + IMPLANT, split=13).read_bytes()
    path = tmp_path_factory.mktemp("p") / "f.pcap"
    path.write_bytes(base[: max(24, len(base) - cut)] + tail)
    sink = parse(path)
    assert all(a["line"] >= 1 for a in sink.of("net_alerts"))


def test_pcapng_reads_like_pcap(tmp_path: Path) -> None:
    classic = capture(tmp_path / "c.pcap", PROBE + IMPLANT)
    out = io.BytesIO()
    writer = dpkt.pcapng.Writer(out)
    for ts, buf in dpkt.pcap.Reader(open(classic, "rb")):  # noqa: SIM115
        writer.writepkt(buf, ts)
    path = tmp_path / "n.pcapng"
    path.write_bytes(out.getvalue())
    assert detect_file(path).format.name == "pcap"
    assert kinds(parse(path)) == kinds(parse(classic))
    assert parse(path).of("flows")[0]["src_ip"] == CLIENT


def test_tree_connects_become_smb_rows(shared_data: Path) -> None:
    sink = parse(shared_data / "pcap" / "Win7_eternalblue_scan.pcap")
    trees = [r for r in sink.of("smb") if r["activity"] == "tree_connect"]
    assert trees and all(r["path"].upper().endswith("\\IPC$") for r in trees)
    assert {(r["src_ip"], r["dst_ip"], r["dst_port"]) for r in trees} == {("192.168.189.138", "192.168.189.140", 445)}
    assert all(r["line"] >= 1 and r["action"] == "PIPE" for r in trees)
