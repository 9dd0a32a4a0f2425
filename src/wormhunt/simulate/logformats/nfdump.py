"""nfdump 1.6.x `-o csv` (48 columns, exporter-local times, Summary trailer).

NetFlow records are unidirectional: a session becomes the initiator's record plus, when the
other side answered, a reply record with the addresses and ports swapped. The flags column
tells the outcome: a worm's unanswered SYN is `....S.` with a packet or three and no reply.
"""

from __future__ import annotations

from collections.abc import Iterator

from wormhunt.simulate.logformats import A_ACCEPT, A_CLOSE, A_DENY, A_RESET, A_TIMEOUT, LogWriter
from wormhunt.simulate.traffic import Flows
from wormhunt.sources.nfdump import HEADER_16

PROTO = {6: "TCP", 17: "UDP", 1: "ICMP"}
# Initiator / reply flags per outcome (nfdump prints UAPRSF).
FLAGS = {
    A_CLOSE: (".AP.SF", ".AP.SF"),
    A_ACCEPT: (".AP.SF", ".AP.SF"),
    A_TIMEOUT: ("....S.", None),
    A_DENY: ("....S.", None),
    A_RESET: (".AP.S.", ".APR.."),
}
_TAIL_ZEROS = ",".join(["0"] * 8)  # in,out,sas,das,smk,dmk,dtos,dir
_MACS = ",".join(["00:00:00:00:00:00"] * 4)
_MPLS = ",".join(["0-0-0"] * 10)


class Writer(LogWriter):
    name = "nfdump"
    traffic_file = "nfcapd.csv"
    alert_file = None

    def __init__(self, company, tz_minutes: int = 480) -> None:
        super().__init__(company, tz_minutes)
        subnets = company.server_subnets
        self.router = f"{subnets[0]}.1" if subnets else "10.0.0.1"
        self.flows = self.bytes = self.packets = 0

    def header(self, file: str) -> list[str]:
        return [",".join(HEADER_16)]

    def footer(self, file: str) -> list[str]:
        return [
            "Summary",
            "flows,bytes,packets,avg_bps,avg_pps,avg_bpp",
            f"{self.flows},{self.bytes},{self.packets},0,0,0",
        ]

    def _clock(self, ts: float) -> str:
        t = self.local(ts)
        return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"

    def _line(
        self, ts: float, dur: int, src: int, dst: int, sp: int, dp: int, proto: int, flg: str, pkts: int, nbytes: int
    ) -> str:
        self.flows += 1
        self.bytes += nbytes
        self.packets += pkts
        pr = PROTO.get(proto, str(proto))
        flags = flg if proto == 6 else "......"
        received = self._clock(ts + dur + 1) + ".000"
        return (
            f"{self._clock(ts)},{self._clock(ts + dur)},{dur:.3f},{self.ip(src)},{self.ip(dst)},{sp},{dp},{pr},"
            f"{flags},0,0,{pkts},{nbytes},0,0,{_TAIL_ZEROS},0.0.0.0,0.0.0.0,0,0,{_MACS},{_MPLS},"
            f"0.000,0.000,0.000,{self.router},0/0,1,{received}"
        )

    def traffic(self, f: Flows) -> Iterator[str]:
        for i in range(len(f)):
            ts, dur = float(f.ts[i]), int(f.dur[i])
            src, dst, sp, dp, proto = int(f.src[i]), int(f.dst[i]), int(f.sport[i]), int(f.dport[i]), int(f.proto[i])
            act = int(f.action[i])
            ask, answer = FLAGS.get(act, (".AP.SF", ".AP.SF"))
            pkts = max(1, int(f.spkt[i]))
            sent = int(f.sent[i]) if act not in (A_DENY, A_TIMEOUT) else 52 * pkts  # SYNs only: 52 bytes each
            yield self._line(ts, dur, src, dst, sp, dp, proto, ask, pkts, sent)
            if answer is not None and int(f.rcvd[i]) > 0:
                rpkt = max(1, int(f.rpkt[i]))
                yield self._line(ts + 0.001, dur, dst, src, dp, sp, proto, answer, rpkt, int(f.rcvd[i]))
