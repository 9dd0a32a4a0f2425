"""FortiOS 6.x traffic and IPS lines (device-local date/time, tz, eventtime in seconds)."""

from __future__ import annotations

from collections.abc import Iterator

from wormhunt.simulate.logformats import ACTIONS, LogWriter
from wormhunt.simulate.traffic import Flows

SIGNATURES = {
    "exploit": ("MS.SMB.Server.SMB1.Trans2.Secondary.Handling.Code.Execution", 43796),
    "implant": ("Backdoor.DoublePulsar", 43963),
}
SERVICES = {
    445: "SMB",
    139: "SAMBA",
    53: "DNS",
    88: "KERBEROS",
    389: "LDAP",
    443: "HTTPS",
    80: "HTTP",
    1433: "MS-SQL",
    3389: "RDP",
    135: "DCE-RPC",
    8080: "tcp/8080",
    123: "NTP",
    23: "TELNET",
}


class Writer(LogWriter):
    name = "fortigate"
    traffic_file = "fgt-traffic.log"
    alert_file = "fgt-ips.log"

    def __init__(self, company, tz_minutes: int = 480) -> None:
        super().__init__(company, tz_minutes)
        self.dev = f'devname="{company.firewall}" devid="{company.firewall_id}"'
        self.session = 1_000_000

    def _intf(self, ip: int) -> tuple[str, str]:
        zone = self.zone_of(ip)
        return {"servers": ("port2", "lan"), "untrust": ("wan1", "wan")}.get(zone, ("port3", "lan"))

    def _clock(self, ts: float) -> tuple[str, str]:
        t = self.local(ts)
        return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}", f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"

    def traffic(self, f: Flows) -> Iterator[str]:
        dev, tz = self.dev, self.zone()
        for i in range(len(f)):
            ts = float(f.ts[i])
            d, t = self._clock(ts)
            src, dst = int(f.src[i]), int(f.dst[i])
            si, sr = self._intf(src)
            di, dr = self._intf(dst)
            dport = int(f.dport[i])
            act = ACTIONS[int(f.action[i])]
            self.session += 1
            svc = SERVICES.get(dport, f"tcp/{dport}")
            country = 'dstcountry="Reserved"' if dr == "lan" else 'dstcountry="United States"'
            policy = 0 if act == "deny" else (5 if dr == "lan" else 9)
            yield (
                f'<189>date={d} time={t} {dev} logid="0000000013" type="traffic" subtype="forward" '
                f'level="notice" vd="root" eventtime={int(ts)} tz="{tz}" srcip={self.ip(src)} '
                f'srcport={int(f.sport[i])} srcintf="{si}" srcintfrole="{sr}" dstip={self.ip(dst)} '
                f'dstport={dport} dstintf="{di}" dstintfrole="{dr}" sessionid={self.session} '
                f'proto={int(f.proto[i])} action="{act}" policyid={policy} policytype="policy" '
                f'service="{svc}" {country} srccountry="Reserved" trandisp="noop" '
                f"duration={int(f.dur[i])} sentbyte={int(f.sent[i])} rcvdbyte={int(f.rcvd[i])} "
                f'sentpkt={int(f.spkt[i])} rcvdpkt={int(f.rpkt[i])} appcat="unscanned"'
            )

    def alert(self, ts: float, src: int, dst: int, kind: str) -> str | None:
        d, t = self._clock(ts)
        si, sr = self._intf(src)
        di, dr = self._intf(dst)
        serial = self.next_id()
        name, vid = SIGNATURES[kind]
        return (
            f'<185>date={d} time={t} {self.dev} logid="0419016384" type="utm" subtype="ips" '
            f'eventtype="signature" level="alert" vd="root" eventtime={int(ts)} tz="{self.zone()}" '
            f'severity="critical" srcip={self.ip(src)} srccountry="Reserved" dstip={self.ip(dst)} '
            f'srcintf="{si}" srcintfrole="{sr}" dstintf="{di}" dstintfrole="{dr}" sessionid={self.session} '
            f'action="detected" proto=6 service="SMB" policyid=5 attack="{name}" srcport={49152 + serial % 16000} '
            f'dstport=445 direction="incoming" attackid={vid} profile="default" '
            f'ref="http://www.fortinet.com/ids/VID{vid}" incidentserialno={serial} '
            f'msg="applications3: {name},"'
        )
