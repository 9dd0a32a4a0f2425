"""PAN-OS 9.x syslog CSV: TRAFFIC end/deny lines for sessions, THREAT vulnerability/spyware lines for alerts.

Times are device-local `YYYY/MM/DD HH:MM:SS` behind a BSD-syslog header, as PAN-OS sends them
by default. How a session ended goes where PAN-OS puts it: the action (allow/deny) and the
Session End Reason (tcp-fin, aged-out, tcp-rst-from-server, policy-deny). Threat ids are
illustrative (a real MS17-010 threat log was not found); the names use the wording the
knowledge base matches (Windows SMB Remote Code Execution, DoublePulsar).
"""

from __future__ import annotations

from collections.abc import Iterator

from wormhunt.simulate.logformats import A_ACCEPT, A_DENY, A_RESET, A_TIMEOUT, PROTO_NAMES, LogWriter
from wormhunt.simulate.traffic import Flows

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SIGNATURES = {
    "exploit": ("vulnerability", "Microsoft Windows SMB Remote Code Execution Vulnerability", 32424),
    "implant": ("spyware", "DoublePulsar SMB Backdoor Command and Control Traffic", 86123),
}
APPS = {
    445: "ms-ds-smb",
    139: "netbios-ss",
    53: "dns",
    88: "kerberos",
    389: "ldap",
    443: "ssl",
    80: "web-browsing",
    1433: "mssql-db",
    3389: "ms-rdp",
    135: "msrpc",
    8080: "web-browsing",
    123: "ntp",
    23: "telnet",
}
IFACES = {"servers": "ethernet1/3", "untrust": "ethernet1/1", "users": "ethernet1/2"}


class Writer(LogWriter):
    name = "paloalto"
    traffic_file = "pan-traffic.log"
    alert_file = "pan-threat.log"

    def __init__(self, company, tz_minutes: int = 480) -> None:
        super().__init__(company, tz_minutes)
        self.device = "PA-3220-CORE"
        self.serial_no = "013201009876"
        self.session = 200_000
        self.seq = 7_000_000_000

    def _clock(self, ts: float) -> str:
        t = self.local(ts)
        return f"{t.tm_year:04d}/{t.tm_mon:02d}/{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"

    def _header(self, pri: int, ts: float) -> str:
        t = self.local(ts)
        clock = f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        return f"<{pri}>{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {clock} {self.device}"

    def _common(self, kind: str, subtype: str, when: str, src: int, dst: int, app: str, rule: str) -> str:
        sz, dz = self.zone_of(src), self.zone_of(dst)
        return (
            f"1,{when},{self.serial_no},{kind},{subtype},2049,{when},{self.ip(src)},{self.ip(dst)},0.0.0.0,0.0.0.0,"
            f"{rule},,,{app},vsys1,{sz},{dz},{IFACES[sz]},{IFACES[dz]},log-forwarding,{when}"
        )

    def traffic(self, f: Flows) -> Iterator[str]:
        for i in range(len(f)):
            start = float(f.ts[i])
            dur = int(f.dur[i])
            src, dst = int(f.src[i]), int(f.dst[i])
            sport, dport, proto = int(f.sport[i]), int(f.dport[i]), int(f.proto[i])
            act = int(f.action[i])
            sent, rcvd, spkt, rpkt = int(f.sent[i]), int(f.rcvd[i]), int(f.spkt[i]), int(f.rpkt[i])
            if act == A_DENY:
                subtype, action, reason, app, rule = "deny", "deny", "policy-deny", "not-applicable", "deny-all"
                rcvd = rpkt = 0
            else:
                subtype, action, rule = "end", "allow", "allow-internal"
                app = APPS.get(dport, "unknown-tcp" if proto == 6 else "unknown-udp")
                if act == A_TIMEOUT:
                    reason, app, rcvd, rpkt = "aged-out", "incomplete", 0, 0
                elif act == A_RESET:
                    reason = "tcp-rst-from-server"
                elif act == A_ACCEPT or proto != 6:
                    reason = "aged-out"
                else:
                    reason = "tcp-fin"
            self.session += 1
            self.seq += 1
            end = self._clock(start + dur)
            yield (
                f"{self._header(14, start + dur)} {self._common('TRAFFIC', subtype, end, src, dst, app, rule)},"
                f"{self.session},1,{sport},{dport},0,0,0x400019,{PROTO_NAMES.get(proto, proto)},{action},"
                f"{sent + rcvd},{sent},{rcvd},{spkt + rpkt},{self._clock(start)},{dur},any,0,{self.seq},0x0,"
                f"10.0.0.0-10.255.255.255,10.0.0.0-10.255.255.255,0,{spkt},{rpkt},{reason},0,0,0,0,,{self.device},"
                "from-policy,,,0,,0,,N/A,0,0,0,0"
            )

    def alert(self, ts: float, src: int, dst: int, kind: str) -> str | None:
        subtype, name, tid = SIGNATURES[kind]
        when = self._clock(ts)
        self.seq += 1
        sport = 49152 + self.next_id() % 16000
        return (
            f"{self._header(12, ts)} {self._common('THREAT', subtype, when, src, dst, 'ms-ds-smb', 'allow-internal')},"
            f'{self.session},1,{sport},445,0,0,0x2000,tcp,alert,"",{name}({tid}),any,critical,client-to-server,'
            f"{self.seq},0x8000000000000000,10.0.0.0-10.255.255.255,10.0.0.0-10.255.255.255,0,,0,,,0,,,,,,,,0,"
            f"0,0,0,0,,{self.device},,,,,0,,0,,N/A,code-execution,AppThreat-8054-4933,0x0"
        )
