"""Huawei USG lines: SECLOG SESSION_TEARDOWN for sessions, POLICYDENY for denied ones, IPS DETECT for alerts.

Headers carry the year and the device's offset (`Nov 18 2018 08:38:18+08:00`), as USG6000E firmware prints them;
session payloads carry epoch BeginTime/EndTime. Signature ids are illustrative, the names are what the
knowledge base matches (MS17-010 / DoublePulsar wording).
"""

from __future__ import annotations

from collections.abc import Iterator

from wormhunt.simulate.logformats import A_DENY, A_RESET, A_TIMEOUT, PROTO_NAMES, LogWriter
from wormhunt.simulate.traffic import Flows

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SIGNATURES = {
    "exploit": ("Microsoft Windows SMB Remote Code Execution Vulnerability(MS17-010)", "1000595"),
    "implant": ("DoublePulsar Backdoor Communication", "1000612"),
}
# What each simulated outcome leaves in CloseReason (deny is a separate POLICY log).
CLOSE_REASONS = {A_TIMEOUT: "aged-out", A_RESET: "tcp-rst"}
APPS = {445: "SMB", 139: "NetBIOS", 53: "DNS", 88: "Kerberos", 389: "LDAP", 443: "HTTPS", 80: "HTTP", 3389: "RDP"}


class Writer(LogWriter):
    name = "huawei"
    traffic_file = "usg-session.log"
    alert_file = "usg-ips.log"

    def __init__(self, company, tz_minutes: int = 480) -> None:
        super().__init__(company, tz_minutes)
        self.device = "USG6650-CORE"

    def _header(self, pri: int, ts: float) -> str:
        t = self.local(ts)
        return (
            f"<{pri}>{_MONTHS[t.tm_mon - 1]} {t.tm_mday} {t.tm_year} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
            f"{self.zone(colon=True)} {self.device}"
        )

    def _zone(self, ip: int) -> str:
        return {"servers": "dmz", "untrust": "untrust"}.get(self.zone_of(ip), "trust")

    def traffic(self, f: Flows) -> Iterator[str]:
        for i in range(len(f)):
            ts = float(f.ts[i])
            src, dst = int(f.src[i]), int(f.dst[i])
            sport, dport, proto = int(f.sport[i]), int(f.dport[i]), int(f.proto[i])
            act = int(f.action[i])
            sz, dz = self._zone(src), self._zone(dst)
            if act == A_DENY:
                t = self.local(ts)
                when = f"{t.tm_year}/{t.tm_mon}/{t.tm_mday} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
                yield (
                    f"{self._header(190, ts)} %%01POLICY/6/POLICYDENY(l):vsys=public, protocol={proto}, "
                    f"source-ip={self.ip(src)}, source-port={sport}, destination-ip={self.ip(dst)}, "
                    f"destination-port={dport}, time={when}, source-zone={sz}, destination-zone={dz}, "
                    f"rule-name=default."
                )
                continue
            begin, dur = int(ts), int(f.dur[i])
            reason = CLOSE_REASONS.get(act, "tcp-fin" if proto == 6 else "aged-out")
            yield (
                f"{self._header(190, ts)} %%01SECLOG/6/SESSION_TEARDOWN(l):IPVer=4,"
                f"Protocol={PROTO_NAMES.get(proto, proto)},SourceIP={self.ip(src)},DestinationIP={self.ip(dst)},"
                f"SourcePort={sport},DestinationPort={dport},BeginTime={begin},EndTime={begin + dur},"
                f"SendPkts={int(f.spkt[i])},SendBytes={int(f.sent[i])},RcvPkts={int(f.rpkt[i])},"
                f"RcvBytes={int(f.rcvd[i])},SourceVpnID=0,DestinationVpnID=0,SourceZone={sz},DestinationZone={dz},"
                f"PolicyName={sz}_to_{dz},CloseReason={reason}."
            )

    def alert(self, ts: float, src: int, dst: int, kind: str) -> str | None:
        name, sid = SIGNATURES[kind]
        serial = self.next_id()
        return (
            f"{self._header(188, ts)} %%01IPS/4/DETECT(l):An intrusion was detected. (SyslogId={serial}, "
            f'VSys="public", Policy="{self._zone(src)}_to_{self._zone(dst)}", SrcIp={self.ip(src)}, '
            f"DstIp={self.ip(dst)}, SrcPort={49152 + serial % 16000}, DstPort=445, SrcZone={self._zone(src)}, "
            f'DstZone={self._zone(dst)}, User="unknown", Protocol=TCP, Application="{APPS[445]}", Profile="default", '
            f'SignName="{name}", SignId={sid}, EventNum=1, Target=server, Severity=high, Os=windows, '
            f"Category=Vulnerability, Reference=CVE-2017-0144, Action=Alert)"
        )
