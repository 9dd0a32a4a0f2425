"""Suricata EVE JSON: sessions as `flow` records and the worm's SMB exploitation as `alert` records, one file.

The sensor sits on the core switch's span port, so it sees what the firewall logs. How each
session result looks in EVE (Suricata has no words for them; flow.state and packet counts say it):
close -> state `closed`, both sides' TCP flags SYN/ACK/PSH/FIN; timeout and deny -> state
`new`, SYNs only and nothing back; server-rst -> state `closed` with the server sending only
RST; accept (UDP) -> `established` when answered. Times are device-local with their offset.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from wormhunt.simulate.logformats import A_ACCEPT, A_CLOSE, A_DENY, A_RESET, A_TIMEOUT, LogWriter
from wormhunt.simulate.traffic import Flows

# ET Open rules (threat-intel.md 4.1). The DOUBLEPULSAR beacon response comes from the
# implanted server, so its alert runs from the victim's 445 back to the attacker.
SIGNATURES = {
    "exploit": (2024217, 3, "ET EXPLOIT Possible ETERNALBLUE MS17-010 Heap Spray"),
    "implant": (2024216, 2, "ET EXPLOIT Possible DOUBLEPULSAR Beacon Response"),
}
APP_PROTO = {445: "smb", 139: "smb", 53: "dns", 88: "krb5", 80: "http", 8080: "http", 443: "tls", 123: "ntp"}
APP_PROTO.update({135: "dcerpc", 3389: "rdp"})
PROTO = {6: "TCP", 17: "UDP", 1: "ICMP"}
# (flow.state, tcp_flags_ts, tcp_flags_tc) per session result.
TCP_LOOK = {
    A_CLOSE: ("closed", "1b", "1b"),
    A_TIMEOUT: ("new", "02", "00"),
    A_DENY: ("new", "02", "00"),
    A_RESET: ("closed", "02", "14"),
    A_ACCEPT: ("established", "1b", "1b"),
}
SYN_BYTES = 66


def _dumps(record: dict) -> str:
    return json.dumps(record, separators=(",", ":"))


class Writer(LogWriter):
    name = "suricata"
    traffic_file = "eve.json"
    alert_file = "eve.json"

    def __init__(self, company, tz_minutes: int = 480) -> None:
        super().__init__(company, tz_minutes)
        self.sensor = f"{company.firewall}-ids".lower()
        self.flow_id = 1_100_000_000_000_000

    def stamp(self, ts: float) -> str:
        t = self.local(ts)
        micros = round((ts - int(ts)) * 1_000_000) % 1_000_000
        return (
            f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
            f".{micros:06d}{self.zone()}"
        )

    def _next_flow(self) -> int:
        self.flow_id += 7919  # Suricata's flow ids look random; only uniqueness matters here
        return self.flow_id

    def traffic(self, f: Flows) -> Iterator[str]:
        for i in range(len(f)):
            ts, dur = float(f.ts[i]), int(f.dur[i])
            act, proto, dport = int(f.action[i]), int(f.proto[i]), int(f.dport[i])
            state, flags_ts, flags_tc = TCP_LOOK.get(act, ("closed", "1b", "1b"))
            spkt, rpkt = max(1, int(f.spkt[i])), int(f.rpkt[i])
            sent, rcvd = int(f.sent[i]), int(f.rcvd[i])
            if act in (A_TIMEOUT, A_DENY):
                rpkt, rcvd = 0, 0
                sent = sent or SYN_BYTES * spkt
            elif act == A_RESET:
                rpkt, rcvd = max(1, rpkt), rcvd or 60
            elif proto != 6 and rpkt == 0:
                state = "new"
            record = {
                "timestamp": self.stamp(ts + dur),
                "flow_id": self._next_flow(),
                "in_iface": "eth1",
                "event_type": "flow",
                "src_ip": self.ip(int(f.src[i])),
                "src_port": int(f.sport[i]),
                "dest_ip": self.ip(int(f.dst[i])),
                "dest_port": dport,
                "proto": PROTO.get(proto, str(proto)),
            }
            if dport in APP_PROTO and rpkt:
                record["app_proto"] = APP_PROTO[dport]
            record["flow"] = {
                "pkts_toserver": spkt,
                "pkts_toclient": rpkt,
                "bytes_toserver": sent,
                "bytes_toclient": rcvd,
                "start": self.stamp(ts),
                "end": self.stamp(ts + dur),
                "age": dur,
                "state": state,
                "reason": "timeout",
                "alerted": False,
            }
            if proto == 6:
                record["tcp"] = {
                    "tcp_flags": f"{int(flags_ts, 16) | int(flags_tc, 16):02x}",
                    "tcp_flags_ts": flags_ts,
                    "tcp_flags_tc": flags_tc,
                    "syn": True,
                    **({"rst": True} if act == A_RESET else {}),
                    "state": state if state != "new" else "syn_sent",
                }
            record["host"] = self.sensor
            yield _dumps(record)

    def alert(self, ts: float, src: int, dst: int, kind: str) -> str | None:
        sid, rev, signature = SIGNATURES[kind]
        port = 49152 + self.next_id() % 16000
        a, b = (self.ip(src), port), (self.ip(dst), 445)
        if kind == "implant":
            a, b = b, a  # the beacon response: victim:445 -> attacker
        record = {
            "timestamp": self.stamp(ts),
            "flow_id": self._next_flow(),
            "in_iface": "eth1",
            "event_type": "alert",
            "src_ip": a[0],
            "src_port": a[1],
            "dest_ip": b[0],
            "dest_port": b[1],
            "proto": "TCP",
            "alert": {
                "action": "allowed",
                "gid": 1,
                "signature_id": sid,
                "rev": rev,
                "signature": signature,
                "category": "A Network Trojan was detected",
                "severity": 1,
            },
            "app_proto": "smb",
            "flow": {"pkts_toserver": 12, "pkts_toclient": 9, "bytes_toserver": 131072, "bytes_toclient": 1290},
            "host": self.sensor,
        }
        return _dumps(record)
