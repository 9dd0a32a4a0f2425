"""A small SMB1 decoder: just what tells an MS17-010 probe, exploit and implant apart.

Facts from threat-intel.md sections 3.3-3.4 and 4.3: the vulnerability probe is a
SMB_COM_TRANSACTION PeekNamedPipe on FID 0 (a reply of STATUS_INSUFF_SERVER_RESOURCES means
vulnerable); the DoublePulsar knock is a TRANS2 with the unimplemented SESSION_SETUP
subcommand, and an implanted server answers with Multiplex ID 81-83; EternalBlue interleaves
NT_TRANSACT and TRANS2_SECONDARY requests; EternalChampion/Romance send NT_TRANSACT_SECONDARY
bursts or the unimplemented NT_TRANSACT_RENAME.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SMB_TRANSACTION = 0x25
SMB_TRANS2 = 0x32
SMB_TRANS2_SECONDARY = 0x33
SMB_NT_TRANSACT = 0xA0
SMB_NT_TRANSACT_SECONDARY = 0xA1
SMB_TREE_CONNECT_ANDX = 0x75
TRANS_PEEK_NAMED_PIPE = 0x23
TRANS2_SESSION_SETUP = 0x0E
NT_TRANSACT_RENAME = 0x05
STATUS_INSUFF_SERVER_RESOURCES = 0xC0000205
IMPLANT_MIDS = (81, 82, 83)
# Requests that no ordinary client sends in numbers (thresholds from the public captures:
# EternalBlue sends 16 TRANS2_SECONDARY, EternalChampion 14 NT_TRANSACT_SECONDARY).
SECONDARY_BURST = 3


@dataclass
class Message:
    command: int
    status: int
    response: bool
    mid: int
    setup: tuple[int, ...] = ()
    nt_function: int | None = None
    tree_path: str | None = None


def parse(frame: bytes) -> Message | None:
    """One SMB1 message (the bytes after the 4-byte NetBIOS header), or None if not SMB1."""
    if len(frame) < 33 or frame[:4] != b"\xffSMB":
        return None
    command = frame[4]
    status = struct.unpack_from("<I", frame, 5)[0]
    response = bool(frame[9] & 0x80)
    mid = struct.unpack_from("<H", frame, 30)[0]
    msg = Message(command, status, response, mid)
    wc = frame[32]
    words = frame[33 : 33 + 2 * wc]
    if response or len(words) < 2 * wc:
        return msg
    if command in (SMB_TRANSACTION, SMB_TRANS2) and wc >= 14:
        setup_count = words[26]
        setup = words[28 : 28 + 2 * setup_count]
        msg.setup = struct.unpack_from(f"<{len(setup) // 2}H", setup) if setup else ()
    elif command == SMB_NT_TRANSACT and wc >= 19:
        msg.nt_function = struct.unpack_from("<H", words, 36)[0]
    elif command == SMB_TREE_CONNECT_ANDX and wc >= 4:
        data = frame[33 + 2 * wc + 2 :]
        password_len = struct.unpack_from("<H", words, 6)[0]
        path = data[password_len:]
        unicode = bool(struct.unpack_from("<H", frame, 10)[0] & 0x8000)
        if unicode:
            if (33 + 2 * wc + 2 + password_len) % 2:
                path = path[1:]  # Unicode strings are aligned to an even offset
            # Split on a whole UTF-16 NUL: a byte split would cut `$\x00` from its last byte.
            msg.tree_path = path[: len(path) // 2 * 2].decode("utf-16-le", "replace").split("\x00")[0]
        else:
            msg.tree_path = path.split(b"\x00")[0].decode("latin-1")
    return msg


@dataclass
class Finding:
    kind: str  # probe, exploit, implant
    name: str  # signature name, mapped to its kind in knowledge/network_signatures.yaml
    packet: int  # evidence: the packet that completed the pattern
    ts: float


@dataclass
class Conversation:
    """SMB1 state of one TCP connection (client -> server)."""

    counts: dict[int, int] = field(default_factory=dict)
    pending: dict[int, Message] = field(default_factory=dict)  # requests by MID awaiting a reply
    trees: list[tuple[str, int, float]] = field(default_factory=list)  # (\\host\share, packet, time)
    findings: list[Finding] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def _find(self, kind: str, name: str, packet: int, ts: float) -> None:
        if name not in self.seen:
            self.seen.add(name)
            self.findings.append(Finding(kind, name, packet, ts))

    def request(self, msg: Message, packet: int, ts: float) -> None:
        self.counts[msg.command] = self.counts.get(msg.command, 0) + 1
        self.pending[msg.mid] = msg
        if msg.tree_path and all(msg.tree_path != t[0] for t in self.trees):
            self.trees.append((msg.tree_path, packet, ts))
        if msg.command == SMB_TRANSACTION and msg.setup[:2] == (TRANS_PEEK_NAMED_PIPE, 0):
            self._find("probe", "SMB1 PeekNamedPipe on FID 0 (MS17-010 probe)", packet, ts)
        elif msg.command == SMB_TRANS2 and msg.setup[:1] == (TRANS2_SESSION_SETUP,):
            self._find("probe", "SMB1 TRANS2 SESSION_SETUP (DoublePulsar knock)", packet, ts)
        elif msg.command == SMB_NT_TRANSACT and msg.nt_function == NT_TRANSACT_RENAME:
            self._find("exploit", "SMB1 NT_TRANSACT_RENAME (EternalChampion/EternalRomance)", packet, ts)
        c = self.counts
        if c.get(SMB_TRANS2_SECONDARY, 0) >= SECONDARY_BURST and c.get(SMB_NT_TRANSACT, 0):
            self._find("exploit", "SMB1 NT_TRANSACT and TRANS2_SECONDARY interleaved (EternalBlue)", packet, ts)
        if c.get(SMB_NT_TRANSACT_SECONDARY, 0) >= SECONDARY_BURST:
            self._find("exploit", "SMB1 NT_TRANSACT_SECONDARY burst (EternalChampion/EternalRomance)", packet, ts)

    def response(self, msg: Message, packet: int, ts: float) -> None:
        req = self.pending.pop(msg.mid, None)
        if msg.command == SMB_TRANSACTION and msg.status == STATUS_INSUFF_SERVER_RESOURCES:
            name = "SMB1 probe answered STATUS_INSUFF_SERVER_RESOURCES (vulnerable to MS17-010)"
            self._find("probe", name, packet, ts)
        if msg.command == SMB_TRANS2 and msg.mid in IMPLANT_MIDS and req is None:
            # The implant answers the knock with the request's Multiplex ID plus 0x10.
            knock = self.pending.pop(msg.mid - 0x10, None) or self.pending.pop(msg.mid - 0x11, None)
            if knock is None or knock.setup[:1] == (TRANS2_SESSION_SETUP,):
                self._find("implant", "DoublePulsar reply (Multiplex ID 81-83): implant present", packet, ts)
