"""Writers of the simulated network traffic in each firewall / IDS / flow format.

One module per format, each with a `Writer(LogWriter)` class; a module added here is a
format `wormhunt simulate --net-format NAME` can write. The traffic itself (sessions,
results, exploit and implant alerts) is generated once, in `simulate/traffic.py`.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import Iterator

from wormhunt.simulate.company import Company
from wormhunt.simulate.outbreak import int_ip, ip_int
from wormhunt.simulate.traffic import A_ACCEPT, A_CLOSE, A_DENY, A_RESET, A_TIMEOUT, ACTIONS, Flows

__all__ = ["ACTIONS", "A_ACCEPT", "A_CLOSE", "A_DENY", "A_RESET", "A_TIMEOUT", "Flows", "LogWriter"]
PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp"}


class LogWriter:
    """Renders sessions and alerts as lines of one format.

    `traffic_file` receives the sessions, `alert_file` the IPS/IDS alerts (None: the format
    has no alerts, as NetFlow; the same name as `traffic_file`: one file holds both).
    Times are epoch seconds (UTC); `tz_minutes` is the device's offset for formats that
    print local time. `alert` kinds are `exploit` and `implant` (canonical alert kinds).
    """

    name = ""
    traffic_file = ""
    alert_file: str | None = None

    def __init__(self, company: Company, tz_minutes: int = 480) -> None:
        self.company = company
        self.tz = tz_minutes
        self.device = company.firewall
        self.serial = 1_000_000
        self.server_net = {ip_int(s + ".0") >> 8 for s in company.server_subnets}

    # Helpers shared by the formats.
    def local(self, ts: float) -> time.struct_time:
        return time.gmtime(int(ts) + self.tz * 60)

    def zone(self, colon: bool = False) -> str:
        sign = "+" if self.tz >= 0 else "-"
        hh, mm = divmod(abs(self.tz), 60)
        return f"{sign}{hh:02d}:{mm:02d}" if colon else f"{sign}{hh:02d}{mm:02d}"

    def zone_of(self, ip: int) -> str:
        """Firewall zone / interface role of an address: servers, users or the internet."""
        if (ip >> 8) in self.server_net:
            return "servers"
        if (ip >> 24) in (203, 198):
            return "untrust"
        return "users"

    @staticmethod
    def ip(n: int) -> str:
        return int_ip(n)

    def next_id(self) -> int:
        self.serial += 1
        return self.serial

    # What each format implements.
    def header(self, file: str) -> list[str]:
        """Lines at the top of `file` (Zeek `#fields`, a CSV header ...)."""
        return []

    def footer(self, file: str) -> list[str]:
        return []

    def traffic(self, f: Flows) -> Iterator[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def alert(self, ts: float, src: int, dst: int, kind: str) -> str | None:
        """One alert line for an exploit or implant seen from src to dst:445 (None: no alerts)."""
        return None


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def writer(name: str, company: Company, tz_minutes: int = 480) -> LogWriter:
    if name not in available():
        raise ValueError(f"unknown network log format {name!r}; known: {', '.join(available())}")
    return importlib.import_module(f"{__name__}.{name}").Writer(company, tz_minutes)
