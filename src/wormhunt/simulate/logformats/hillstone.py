"""Hillstone StoneOS `Traffic@FLOW: SESSION:` lines, each message ending in the device's `\\n\\0`.

Headers are device-local without a year (`Nov 18 08:38:18`); closed sessions carry `start time`/`close time` with
the year. StoneOS threat logs are not documented in the reference material, so this writer has no alert file.
"""

from __future__ import annotations

from collections.abc import Iterator

from wormhunt.simulate.logformats import A_DENY, A_RESET, A_TIMEOUT, LogWriter
from wormhunt.simulate.traffic import Flows

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
PROTOS = {6: "TCP", 17: "UDP", 1: "ICMP"}
APPS = {445: "SMB", 139: "NetBIOS", 53: "DNS", 88: "Kerberos", 389: "LDAP", 443: "HTTPS", 80: "HTTP", 3389: "RDP"}
END = {A_TIMEOUT: "Ageout", A_RESET: "TCP RST"}


class Writer(LogWriter):
    name = "hillstone"
    traffic_file = "hillstone-traffic.log"
    alert_file = None

    def __init__(self, company, tz_minutes: int = 480) -> None:
        super().__init__(company, tz_minutes)
        self.device = "2812008195003847"  # StoneOS names itself by serial number

    def _clock(self, ts: float) -> tuple[str, str]:
        t = self.local(ts)
        hms = f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {hms}", f"{t.tm_year}-{t.tm_mon:02d}-{t.tm_mday:02d} {hms}"

    def _intf(self, ip: int) -> str:
        return {"servers": "ethernet0/2", "untrust": "ethernet0/0"}.get(self.zone_of(ip), "ethernet0/1")

    def traffic(self, f: Flows) -> Iterator[str]:
        for i in range(len(f)):
            ts, dur = float(f.ts[i]), int(f.dur[i])
            src, dst = int(f.src[i]), int(f.dst[i])
            dport, proto, act = int(f.dport[i]), int(f.proto[i]), int(f.action[i])
            header, start = self._clock(ts)
            ends = f"{self.ip(src)}:{int(f.sport[i])}->{self.ip(dst)}:{dport}({PROTOS.get(proto, proto)})"
            head = f"<190>{header} {self.device}(root) 44243624 Traffic@FLOW: SESSION: {ends}"
            if act == A_DENY:
                yield (
                    f"{head}, interface {self._intf(src)}, vr trust-vr, policy 16, user -@-, host -, "
                    f"mac 0000.0000.0000, policy deny\n\x00"
                )
                continue
            _, close = self._clock(ts + dur)
            reason = END.get(act, "TCP FIN" if proto == 6 else "Ageout")
            yield (
                f"{head}, application {APPS.get(dport, 'TCP-ANY' if proto == 6 else 'UDP-ANY')}, "
                f"interface {self._intf(src)}, vr trust-vr, policy 1, user -@-, host -, "
                f"send packets {int(f.spkt[i])},send bytes {int(f.sent[i])},receive packets {int(f.rpkt[i])},"
                f"receive bytes {int(f.rcvd[i])},start time {start},close time {close},session end,{reason}\n\x00"
            )
