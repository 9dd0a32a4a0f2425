"""Sangfor AF `fwlog:` lines: 服务控制或应用控制 for sessions, IPS防护日志 for alerts (UTF-8, Chinese keys).

The service-control log records the policy decision only (允许/拒绝): timeouts and resets are not visible in it.
Headers are device-local without a year, as in the captures.
"""

from __future__ import annotations

from collections.abc import Iterator

from wormhunt.simulate.logformats import A_DENY, PROTO_NAMES, LogWriter
from wormhunt.simulate.traffic import Flows

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SIGNATURES = {
    "exploit": ("系统漏洞攻击", "Microsoft Windows SMB远程代码执行漏洞(MS17-010)永恒之蓝"),
    "implant": ("后门木马", "双脉冲星(DoublePulsar)后门通信"),
}
APPS = {445: ("文件传输", "SMB"), 53: ("网络协议", "DNS"), 80: ("访问网站", "HTTP_GET"), 443: ("访问网站", "HTTPS")}


class Writer(LogWriter):
    name = "sangfor"
    traffic_file = "sangfor-fwlog.log"
    alert_file = "sangfor-ips.log"

    def __init__(self, company, tz_minutes: int = 480) -> None:
        super().__init__(company, tz_minutes)
        self.device = "localhost"  # what AF prints as its syslog host

    def _header(self, pri: int, ts: float) -> str:
        t = self.local(ts)
        return (
            f"<{pri}>{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} "
            f"{self.device} fwlog: "
        )

    def traffic(self, f: Flows) -> Iterator[str]:
        for i in range(len(f)):
            dport = int(f.dport[i])
            app_type, app = APPS.get(dport, ("Other", "any"))
            verdict = "拒绝" if int(f.action[i]) == A_DENY else "允许"
            yield (
                f"{self._header(134, float(f.ts[i]))}日志类型:服务控制或应用控制, 策略名称:内网互访, 用户:(null), "
                f"源IP:{self.ip(int(f.src[i]))}, 源端口:{int(f.sport[i])}, 目的IP:{self.ip(int(f.dst[i]))}, "
                f"目的端口:{dport}, 协议:{PROTO_NAMES.get(int(f.proto[i]), 'tcp')}, 应用类型:{app_type}, "
                f"应用名称:{app}, 系统动作:{verdict}"
            )

    def alert(self, ts: float, src: int, dst: int, kind: str) -> str | None:
        attack, name = SIGNATURES[kind]
        return (
            f"{self._header(23, ts)}日志类型:IPS防护日志, 源IP:{self.ip(src)}, "
            f"源端口:{49152 + self.next_id() % 16000}, 目的IP:{self.ip(dst)}, 目的端口:445, 协议:tcp, "
            f"攻击类型:{attack}, 漏洞名称:{name}, 严重等级:高, 动作:允许"
        )
