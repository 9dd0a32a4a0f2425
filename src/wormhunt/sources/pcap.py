"""pcap and pcapng captures: TCP conversations as flows, SMB1 exploitation as alerts.

Packets are read with dpkt; each TCP direction is reassembled enough to cut NetBIOS
session frames out of it (a resync on the next `\\xffSMB` header recovers from lost
segments). A capture holding only SMB payload packets and no SYNs still works: a
conversation starts at its first packet, and the client is the side talking to 445/139.
Evidence is the packet number (in the `line` column).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dpkt

from wormhunt.model import FLOWS, NET_ALERTS
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


@dataclass
class _Direction:
    next_seq: int | None = None
    buf: bytearray = field(default_factory=bytearray)
    packets: list[int] = field(default_factory=list)  # packet number of the first byte of buf


@dataclass
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
    up: _Direction = field(default_factory=_Direction)
    down: _Direction = field(default_factory=_Direction)
    smb: smb1.Conversation = field(default_factory=smb1.Conversation)


def _ip_pair(ip: dpkt.Packet) -> tuple[str, str]:
    family = socket.AF_INET6 if isinstance(ip, dpkt.ip6.IP6) else socket.AF_INET
    return socket.inet_ntop(family, ip.src), socket.inet_ntop(family, ip.dst)


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


def _packets(path: Path):
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(0)
        reader = dpkt.pcapng.Reader(fh) if head == PCAPNG_MAGIC else dpkt.pcap.Reader(fh)
        datalink = reader.datalink()
        packets = iter(reader)
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


def parse_file(path: Path, encoding: Encoding, sink: Sink) -> None:
    """Read a capture into `flows` (one per TCP conversation) and `net_alerts` (SMB findings)."""
    del encoding  # binary
    conns: dict[tuple, _Conn] = {}
    host = f"pcap:{path.name}"
    for number, ts, datalink, buf in _packets(path):
        try:
            ip = _link(datalink, buf)
        except (dpkt.UnpackError, struct.error, ValueError):
            sink.skip(number, "undecodable packet")
            continue
        if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6) or not isinstance(ip.data, dpkt.tcp.TCP):
            continue  # not TCP: nothing SMB here, and not an error
        tcp = ip.data
        src, dst = _ip_pair(ip)
        a, b = (src, tcp.sport), (dst, tcp.dport)
        if tcp.dport in SMB_PORTS or (tcp.sport not in SMB_PORTS and tcp.dport < tcp.sport):
            client, server, upward = a, b, True
        else:
            client, server, upward = b, a, False
        key = (client, server)
        conn = conns.get(key)
        if conn is None:
            conn = conns[key] = _Conn(client, server, ts, ts, number)
        conn.last_ts = ts
        flags = tcp.flags
        if flags & dpkt.tcp.TH_SYN:
            if flags & dpkt.tcp.TH_ACK:
                conn.synack = True
            else:
                conn.syn = True
        conn.rst |= bool(flags & dpkt.tcp.TH_RST)
        conn.fin |= bool(flags & dpkt.tcp.TH_FIN)
        payload = bytes(tcp.data)
        if upward:
            conn.bytes_out += len(payload)
        else:
            conn.bytes_in += len(payload)
            conn.pkts_in += 1
        if not payload or server[1] not in SMB_PORTS:
            continue
        side = conn.up if upward else conn.down
        for frame, first in _frames(side, payload, tcp.seq, number):
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
    trees = sorted(set(conn.smb.trees))
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
    for f in conn.smb.findings:
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
