"""pcap and pcapng captures: TCP conversations as flows, SMB1 exploitation as alerts.

Packets are read with dpkt; each TCP direction is reassembled enough to cut NetBIOS
session frames out of it (a resync on the next `\\xffSMB` header recovers from lost
segments). A capture holding only SMB payload packets and no SYNs still works: a
conversation starts at its first packet, and the client is the side talking to 445/139.
Evidence is the packet number (in the `line` column).

Speed: classic pcap records are read in large chunks, and Ethernet/IPv4 packets (nearly all
of a capture) have their IP and TCP headers read with struct, bypassing dpkt, which decodes
every layer into objects (tens of microseconds a packet); other link types, IPv6 and VLAN
frames still go through dpkt. Non-TCP IPv4 packets are dropped from their header alone.
Conversations are keyed by the raw address bytes; strings are made once per conversation.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import dpkt

from wormhunt.model import FLOWS, NET_ALERTS, SMB
from wormhunt.sources import smb1
from wormhunt.sources.base import Sink
from wormhunt.sources.text import Encoding

SMB_PORTS = (445, 139)
PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
MAX_FRAME = 1 << 17  # NetBIOS session length is 17 bits for SMB1
MAX_BUFFER = 4 * MAX_FRAME


def sniff_bytes(head: bytes) -> float:
    return 0.99 if head[:4] in PCAP_MAGICS or head[:4] == PCAPNG_MAGIC else 0.0


@dataclass(slots=True)
class _Direction:
    next_seq: int | None = None
    buf: bytearray = field(default_factory=bytearray)
    packets: list[int] = field(default_factory=list)  # packet number of the first byte of buf


@dataclass(slots=True)
class _Conn:
    client: tuple[str, int]
    server: tuple[str, int]
    first_ts: float
    last_ts: float
    first_packet: int
    syn: bool = False
    synack: bool = False
    rst: bool = False
    fin: bool = False
    bytes_out: int = 0
    bytes_in: int = 0
    pkts_in: int = 0
    # Made on the first SMB payload: most conversations of a scan never carry any.
    up: _Direction | None = None
    down: _Direction | None = None
    smb: smb1.Conversation | None = None


def _addr(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(raw) == 16 else socket.AF_INET, raw)


def _link(datalink: int, buf: bytes) -> dpkt.Packet | None:
    if datalink == dpkt.pcap.DLT_EN10MB:
        return dpkt.ethernet.Ethernet(buf).data
    if datalink == dpkt.pcap.DLT_LINUX_SLL:
        return dpkt.sll.SLL(buf).data
    if datalink in (dpkt.pcap.DLT_RAW, 228, 229, 12, 14):  # raw IP, IPv4, IPv6
        return dpkt.ip6.IP6(buf) if buf[:1] and buf[0] >> 4 == 6 else dpkt.ip.IP(buf)
    if datalink == dpkt.pcap.DLT_NULL:
        return dpkt.loopback.Loopback(buf).data
    return None


def _frames(d: _Direction, payload: bytes, seq: int, packet: int) -> list[tuple[bytes, int]]:
    """Append a segment and cut out the complete NetBIOS frames (with their packet numbers)."""
    if d.next_seq is not None and seq != d.next_seq:
        if (seq - d.next_seq) % 2**32 > 2**31:  # an old retransmission
            return []
        d.buf.clear()  # a gap: resync on the next SMB header
        d.packets.clear()
    if not d.buf:
        d.packets = [packet]
    d.buf += payload
    d.next_seq = (seq + len(payload)) % 2**32
    out = []
    while len(d.buf) >= 4:
        length = struct.unpack(">I", d.buf[:4])[0]
        if d.buf[0] != 0 or length > MAX_FRAME or (length >= 4 and d.buf[4:8] not in (b"\xffSMB", b"\xfeSMB")):
            i = d.buf.find(b"\xffSMB", 1)
            if i == 4:  # the rejected frame's own header: resuming there would loop forever
                i = d.buf.find(b"\xffSMB", 5)
            if i < 4:
                keep = d.buf[-7:] if len(d.buf) > 7 else d.buf[:]
                d.buf = bytearray(keep)
                break
            del d.buf[: i - 4]
            continue
        if len(d.buf) < 4 + length:
            if len(d.buf) > MAX_BUFFER:
                d.buf.clear()
            break
        out.append((bytes(d.buf[4 : 4 + length]), d.packets[-1] if d.packets else packet))
        del d.buf[: 4 + length]
    if d.buf:
        d.packets = [packet]
    return out


_PKT_HDR = {b"\xd4\xc3\xb2\xa1": struct.Struct("<IIII"), b"\xa1\xb2\xc3\xd4": struct.Struct(">IIII")}
_CHUNK = 1 << 20
_IP4 = struct.Struct("!BxH2xHxB2x4s4s")  # version/IHL, total length, flags/fragment offset, protocol, src, dst
_TCP = struct.Struct("!HHI4xH")  # ports, sequence number, data offset and flags
ETH_IP4, ETH_ARP = b"\x08\x00", b"\x08\x06"


def _classic(fh: BinaryIO, hdr: struct.Struct) -> Iterator[tuple[float, bytes]]:
    """The records of a microsecond pcap, as dpkt.pcap.Reader yields them (a record cut short
    by the end of the file is yielded truncated; a partial record header ends the capture)."""
    buf = b""
    pos = 0
    while True:
        if len(buf) - pos < 16:
            buf = buf[pos:] + fh.read(_CHUNK)
            pos = 0
            if len(buf) < 16:
                return
        sec, usec, caplen, _ = hdr.unpack_from(buf, pos)
        start = pos + 16
        end = start + caplen
        if end > len(buf):
            buf = buf[pos:] + fh.read(max(_CHUNK, end - len(buf)))
            start, end, pos = 16, 16 + caplen, 0
        yield sec + usec / 1e6, buf[start:end]
        pos = min(end, len(buf))


def _packets(path: Path) -> Iterator[tuple[int, float, int, bytes]]:
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(0)
        reader = dpkt.pcapng.Reader(fh) if head == PCAPNG_MAGIC else dpkt.pcap.Reader(fh)
        datalink = reader.datalink()
        # Microsecond pcap (nearly every capture) is read here; dpkt keeps nanosecond and pcapng.
        packets = _classic(fh, _PKT_HDR[head]) if head in _PKT_HDR else iter(reader)
        number = 0
        while True:
            try:
                ts, buf = next(packets)
            except StopIteration:
                return
            except (dpkt.NeedData, dpkt.UnpackError, ValueError, struct.error):
                return  # a capture cut short: keep what was read
            number += 1
            yield number, float(ts), datalink, buf


def _decode(datalink: int, buf: bytes) -> tuple[bytes, bytes, int, int, int, int, bytes] | None:
    """(src, dst, sport, dport, seq, flags, payload) of a TCP packet decoded by dpkt, or None."""
    ip = _link(datalink, buf)
    if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6) or not isinstance(ip.data, dpkt.tcp.TCP):
        return None  # not TCP: nothing SMB here, and not an error
    tcp = ip.data
    return ip.src, ip.dst, tcp.sport, tcp.dport, tcp.seq, tcp.flags, bytes(tcp.data)


def parse_file(path: Path, encoding: Encoding, sink: Sink) -> None:
    """Read a capture into `flows` (one per TCP conversation) and `net_alerts` (SMB findings)."""
    del encoding  # binary
    conns: dict[tuple[bytes, int, bytes, int], _Conn] = {}
    host = f"pcap:{path.name}"
    ip4_unpack, tcp_unpack = _IP4.unpack_from, _TCP.unpack_from
    for number, ts, datalink, buf in _packets(path):
        eth_type = buf[12:14] if datalink == dpkt.pcap.DLT_EN10MB else None
        if eth_type == ETH_IP4:
            # What dpkt would decode, read in place: a header dpkt cannot unpack makes it leave
            # the bytes undecoded (not TCP, no error), as does a fragment or a short TCP header.
            if len(buf) < 34:
                continue
            v_hl, ip_len, frag, proto, src, dst = ip4_unpack(buf, 14)
            hl = (v_hl & 0xF) << 2
            if hl < 20 or proto != 6 or frag & 0x1FFF:
                continue
            start = 14 + hl
            end = min(14 + ip_len, len(buf)) if ip_len else len(buf)
            if end - start < 20:
                continue
            sport, dport, seq, off_flags = tcp_unpack(buf, start)
            thl = (off_flags >> 12) << 2
            if thl < 20:
                continue
            flags = off_flags & 0xFFF
            payload = buf[start + thl : end]
        elif eth_type == ETH_ARP:
            continue
        else:
            try:
                tcp = _decode(datalink, buf)
            except (dpkt.UnpackError, struct.error, ValueError):
                sink.skip(number, "undecodable packet")
                continue
            if tcp is None:
                continue
            src, dst, sport, dport, seq, flags, payload = tcp
        if dport in SMB_PORTS or (sport not in SMB_PORTS and dport < sport):
            key, upward = (src, sport, dst, dport), True
        else:
            key, upward = (dst, dport, src, sport), False
        conn = conns.get(key)
        if conn is None:
            conn = conns[key] = _Conn((_addr(key[0]), key[1]), (_addr(key[2]), key[3]), ts, ts, number)
        conn.last_ts = ts
        if flags & 0x17:  # SYN, RST, FIN
            if flags & dpkt.tcp.TH_SYN:
                if flags & dpkt.tcp.TH_ACK:
                    conn.synack = True
                else:
                    conn.syn = True
            if flags & dpkt.tcp.TH_RST:
                conn.rst = True
            if flags & dpkt.tcp.TH_FIN:
                conn.fin = True
        if upward:
            conn.bytes_out += len(payload)
        else:
            conn.bytes_in += len(payload)
            conn.pkts_in += 1
        if not payload or key[3] not in SMB_PORTS:
            continue
        if conn.smb is None:
            conn.up, conn.down, conn.smb = _Direction(), _Direction(), smb1.Conversation()
        side = conn.up if upward else conn.down
        for frame, first in _frames(side, payload, seq, number):
            msg = smb1.parse(frame)
            if msg is None:
                continue
            if msg.response:
                conn.smb.response(msg, first if upward else number, ts)
            else:
                conn.smb.request(msg, first if upward else number, ts)
    for conn in sorted(conns.values(), key=lambda c: c.first_packet):
        _emit(conn, host, sink)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


def _emit(conn: _Conn, host: str, sink: Sink) -> None:
    if conn.synack or conn.bytes_in:
        action = "reset" if conn.rst and not conn.bytes_in else "close"
    else:
        action = "reset" if conn.rst else "timeout"  # a SYN nobody answered
    trees = sorted({t[0].rsplit("\\", 1)[-1] for t in conn.smb.trees}) if conn.smb else []
    service = "SMB" if conn.server[1] in SMB_PORTS else f"tcp/{conn.server[1]}"
    # The columns a flow and its alerts share: where the record came from and the endpoints.
    common = {
        "host": host,
        "offset": None,
        "src_ip": conn.client[0],
        "src_port": conn.client[1],
        "dst_ip": conn.server[0],
        "dst_port": conn.server[1],
        "proto": 6,
    }
    sink.row(
        FLOWS,
        {
            **common,
            "line": conn.first_packet,
            "ts": _utc(conn.first_ts),
            "action": action,
            "service": service + (":" + ",".join(trees) if trees else ""),
            "bytes_out": conn.bytes_out,
            "bytes_in": conn.bytes_in,
            "pkts_in": conn.pkts_in,
            "duration": int(conn.last_ts - conn.first_ts),
            "vendor": "pcap",
        },
    )
    for path, packet, ts in conn.smb.trees if conn.smb else ():
        sink.row(
            SMB,
            {
                **{k: v for k, v in common.items() if k != "proto"},
                "line": packet,
                "ts": _utc(ts),
                "activity": "tree_connect",
                "path": path,
                "name": None,
                "action": "PIPE" if path.upper().endswith("\\IPC$") else None,
                "vendor": "pcap",
            },
        )
    for f in conn.smb.findings if conn.smb else ():
        sink.row(
            NET_ALERTS,
            {
                **common,
                "line": f.packet,
                "ts": _utc(f.ts),
                "signature": f.name,
                "signature_id": None,
                "severity": "critical" if f.kind in ("exploit", "implant") else "high",
                "action": "observed",
                "vendor": "wormhunt-pcap",
            },
        )
