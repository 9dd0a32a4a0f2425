"""Cisco ASA syslog: a Built and a Teardown line per session, 106023 for denied ones; no IPS alerts.

Headers carry the year (`logging timestamp`) in device-local time. The Teardown line is written
right after its Built line, stamped with the session's end, so times in the file step back a
little after long sessions (real logs interleave them instead). Interfaces and their security
levels decide the direction word: traffic towards a higher level is `inbound`, and then the
first endpoint (`for ...`) is the initiator.
"""

from __future__ import annotations

from collections.abc import Iterator

from wormhunt.simulate.logformats import A_ACCEPT, A_CLOSE, A_DENY, A_RESET, A_TIMEOUT, LogWriter
from wormhunt.simulate.traffic import Flows

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# nameif and security level of each zone's interface.
IFACES = {"untrust": ("outside", 0), "users": ("inside", 50), "servers": ("servers", 100)}


class Writer(LogWriter):
    name = "asa"
    traffic_file = "asa.log"
    alert_file = None

    def __init__(self, company, tz_minutes: int = 480) -> None:
        super().__init__(company, tz_minutes)
        self.device = "ASA-CORE"
        self.conn = 31_000_000

    def _head(self, ts: float, level: int, msg: str) -> str:
        t = self.local(ts)
        return (
            f"<{160 + level}>{_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {self.device} : %ASA-{level}-{msg}"
        )

    def traffic(self, f: Flows) -> Iterator[str]:
        for i in range(len(f)):
            ts = float(f.ts[i])
            src, dst = int(f.src[i]), int(f.dst[i])
            sport, dport, proto = int(f.sport[i]), int(f.dport[i]), int(f.proto[i])
            act, dur = int(f.action[i]), int(f.dur[i])
            (sif, slevel), (dif, dlevel) = IFACES[self.zone_of(src)], IFACES[self.zone_of(dst)]
            s, d = f"{self.ip(src)}/{sport}", f"{self.ip(dst)}/{dport}"
            if act == A_DENY:
                word = "udp" if proto == 17 else "tcp"
                acl = f'by access-group "{sif}_access_in" [0x0, 0x0]'
                yield self._head(ts, 4, f"106023: Deny {word} src {sif}:{s} dst {dif}:{d} {acl}")
                continue
            self.conn += 1
            inbound = slevel < dlevel
            # `for` is the foreign (lower-level) side: the initiator inbound, the responder outbound.
            (fi, fa), (ti, ta) = ((sif, s), (dif, d)) if inbound else ((dif, d), (sif, s))
            word = "UDP" if proto == 17 else "TCP"
            built, tear = ("302015", "302016") if proto == 17 else ("302013", "302014")
            yield self._head(
                ts,
                6,
                f"{built}: Built {'inbound' if inbound else 'outbound'} {word} connection {self.conn} "
                f"for {fi}:{fa} ({fa}) to {ti}:{ta} ({ta})",  # no NAT: mapped = real
            )
            total = int(f.sent[i]) + int(f.rcvd[i])
            if proto == 17 or act == A_ACCEPT:
                reason = ""
            elif act == A_TIMEOUT:
                reason, total = " SYN Timeout", 0
            elif act == A_RESET:
                # The server reset it: Reset-I when the server sits on the higher-level interface.
                reason = " TCP Reset-I" if dlevel > slevel else " TCP Reset-O"
            else:
                reason = " TCP FINs" if act == A_CLOSE else ""
            h, rest = divmod(dur, 3600)
            yield self._head(
                ts + dur,
                6,
                f"{tear}: Teardown {word} connection {self.conn} for {fi}:{fa} to {ti}:{ta} "
                f"duration {h}:{rest // 60:02d}:{rest % 60:02d} bytes {total}{reason}",
            )
