"""Zeek 6 TSV logs: conn.log for the sessions, notice.log for zeek-EternalSafety notices.

A passive sensor between the VLANs sees what the firewall sees, in Zeek's words: the
session results become `conn_state` values (a SYN nobody answers is S0, one answered by a
RST is REJ, a reset after data is RSTR), and exploit / implant alerts become the notices
the EternalSafety package raises (`EternalSafety::EternalBlue`, `EternalSafety::DoublePulsar`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from wormhunt.simulate.logformats import A_ACCEPT, A_CLOSE, A_DENY, A_RESET, A_TIMEOUT, PROTO_NAMES, LogWriter
from wormhunt.simulate.traffic import Flows

CONN_FIELDS = (
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("proto", "enum"),
    ("service", "string"),
    ("duration", "interval"),
    ("orig_bytes", "count"),
    ("resp_bytes", "count"),
    ("conn_state", "string"),
    ("local_orig", "bool"),
    ("local_resp", "bool"),
    ("missed_bytes", "count"),
    ("history", "string"),
    ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"),
    ("resp_pkts", "count"),
    ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"),
)
NOTICE_FIELDS = (
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("fuid", "string"),
    ("file_mime_type", "string"),
    ("file_desc", "string"),
    ("proto", "enum"),
    ("note", "enum"),
    ("msg", "string"),
    ("sub", "string"),
    ("src", "addr"),
    ("dst", "addr"),
    ("p", "port"),
    ("n", "count"),
    ("peer_descr", "string"),
    ("actions", "set[enum]"),
    ("email_dest", "set[string]"),
    ("suppress_for", "interval"),
    ("remote_location.country_code", "string"),
    ("remote_location.region", "string"),
    ("remote_location.city", "string"),
    ("remote_location.latitude", "double"),
    ("remote_location.longitude", "double"),
)
# Session results -> (conn_state, history) for TCP; a reset after data is RSTR, before it REJ.
STATES = {
    A_CLOSE: ("SF", "ShADadFf"),
    A_ACCEPT: ("SF", "ShADadFf"),
    A_TIMEOUT: ("S0", "S"),
    A_DENY: ("S0", "S"),  # a firewall drop: the sensor sees the SYN and nothing back
}
# Zeek names the protocol its analyzer confirmed; an unanswered session has none.
SERVICES = {
    445: "smb",
    139: "smb",
    53: "dns",
    88: "krb_tcp",
    389: "ldap",
    443: "ssl",
    80: "http",
    8080: "http",
    3389: "rdp",
    135: "dce_rpc",
    123: "ntp",
}
NOTICES = {
    "exploit": (
        "EternalSafety::EternalBlue",
        "SMBv1 proto violation, possible EternalBlue or other buffer exploit: {o}/tcp tried to interleave "
        "NT_TRANSACT and TRANS2_SECONDARY commands in request to {r}/tcp",
    ),
    "implant": ("EternalSafety::DoublePulsar", "Possible DoublePulsar backdoor detected on {r}/tcp"),
}
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_MIX = 0x9E3779B97F4A7C15F39CC0605CEDC835  # odd: consecutive serials spread over every digit


def _private(ip: int) -> bool:
    return (ip >> 24) == 10 or (ip >> 20) == (172 << 4 | 1) or (ip >> 16) == (192 << 8 | 168)


def _stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(int(ts)))


class Writer(LogWriter):
    name = "zeek"
    traffic_file = "conn.log"
    alert_file = "notice.log"

    def __init__(self, company, tz_minutes: int = 480) -> None:
        super().__init__(company, tz_minutes)
        self.last: dict[str, float] = {}

    def uid(self) -> str:
        """A connection uid in Zeek's shape (`C` + 17 base-62 characters), deterministic."""
        n = self.next_id() * _MIX % 62**17
        out = []
        for _ in range(17):
            n, r = divmod(n, 62)
            out.append(_B62[r])
        return "C" + "".join(out)

    def header(self, file: str) -> list[str]:
        fields = CONN_FIELDS if file == self.traffic_file else NOTICE_FIELDS
        # No `#open` line: the writer learns the period only from the records it writes.
        return [
            "#separator \\x09",
            "#set_separator\t,",
            "#empty_field\t(empty)",
            "#unset_field\t-",
            f"#path\t{'conn' if file == self.traffic_file else 'notice'}",
            "#fields\t" + "\t".join(f for f, _ in fields),
            "#types\t" + "\t".join(t for _, t in fields),
        ]

    def footer(self, file: str) -> list[str]:
        last = self.last.get(file)
        return [f"#close\t{_stamp(last)}"] if last is not None else []

    def traffic(self, f: Flows) -> Iterator[str]:
        for i in range(len(f)):
            ts = float(f.ts[i])
            src, dst = int(f.src[i]), int(f.dst[i])
            dport, proto, act = int(f.dport[i]), int(f.proto[i]), int(f.action[i])
            sent, rcvd, spkt, rpkt = int(f.sent[i]), int(f.rcvd[i]), int(f.spkt[i]), int(f.rpkt[i])
            if act == A_RESET:
                state, history = ("RSTR", "ShADadr") if rcvd > 0 else ("REJ", "Sr")
            else:
                state, history = STATES[act]
            if proto != 6:
                history = "Dd" if rcvd > 0 else "D"
                state = "SF" if rcvd > 0 else "S0"
            answered = state not in ("S0", "REJ")
            # Unanswered: the SYNs (40 bytes each) carried no payload.
            orig_bytes = sent if answered else 0
            resp_bytes = rcvd if answered else 0
            rpkt = rpkt if answered else (1 if state == "REJ" else 0)
            dur = int(f.dur[i])
            duration = f"{dur + (self.serial % 997) / 1000:.6f}" if dur or answered else "-"
            self.last[self.traffic_file] = ts
            fields = (
                f"{ts:.6f}",
                self.uid(),
                self.ip(src),
                str(int(f.sport[i])),
                self.ip(dst),
                str(dport),
                PROTO_NAMES.get(proto, "unknown_transport"),
                SERVICES.get(dport, "-") if answered and resp_bytes else "-",
                duration,
                str(orig_bytes),
                str(resp_bytes),
                state,
                "T" if _private(src) else "F",
                "T" if _private(dst) else "F",
                "0",
                history,
                str(spkt),
                str(orig_bytes + 40 * spkt),
                str(rpkt),
                str(resp_bytes + 40 * rpkt),
                "-",
            )
            yield "\t".join(fields)

    def alert(self, ts: float, src: int, dst: int, kind: str) -> str | None:
        if kind not in NOTICES:
            return None
        note, msg = NOTICES[kind]
        sport = 49152 + self.serial % 16000
        o, r = f"{self.ip(src)}:{sport}", f"{self.ip(dst)}:445"
        self.last[self.alert_file or ""] = max(ts, self.last.get(self.alert_file or "", ts))
        fields = (
            f"{ts:.6f}",
            self.uid(),
            self.ip(src),
            str(sport),
            self.ip(dst),
            "445",
            "-",
            "-",
            "-",
            "tcp",
            note,
            msg.format(o=o, r=r),
            "-",
            self.ip(src),
            self.ip(dst),
            "445",
            "-",
            "-",
            "Notice::ACTION_LOG",
            "(empty)",
            "3600.000000",
            "-",
            "-",
            "-",
            "-",
            "-",
        )
        return "\t".join(fields)
