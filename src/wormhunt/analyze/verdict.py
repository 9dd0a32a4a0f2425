"""From findings to hosts: who is who (IP <-> host name), each host's status, and patient zero."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wormhunt.model import SEVERITIES, Finding
from wormhunt.store import Case

INFECTED_AT = SEVERITIES.index("high")
SUSPICIOUS_AT = SEVERITIES.index("medium")


@dataclass
class HostView:
    host: str
    ip: str | None = None
    ips: list[str] = field(default_factory=list)
    asset: dict[str, Any] = field(default_factory=dict)
    os: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def status(self) -> str:
        top = max((f.rank for f in self.findings), default=-1)
        return "infected" if top >= INFECTED_AT else "suspicious" if top >= SUSPICIOUS_AT else "clean"

    def first_seen(self, network_only: bool = False) -> datetime | None:
        times = [
            f.first_seen
            for f in self.findings
            if f.rank >= INFECTED_AT and f.first_seen and (not network_only or f.rule.startswith("net."))
        ]
        return min(times) if times else None


def _usable_ip(ip: str | None) -> bool:
    if not ip or ip in ("*", "0.0.0.0", "::"):
        return False
    try:
        addr = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return False
    return not (addr.is_loopback or addr.is_link_local or addr.is_unspecified or addr.is_multicast)


class Identity:
    """Maps IPs to host names from systeminfo NICs, netstat local addresses and the asset list."""

    def __init__(self, case: Case) -> None:
        self.ip_to_host: dict[str, str] = {}
        self.host_ips: dict[str, list[str]] = {}
        self.assets: dict[str, dict[str, Any]] = {}
        self.os: dict[str, str] = {}
        self.canonical: dict[str, str] = {}
        for r in case.query(
            "SELECT host, os_name, ips FROM host_info WHERE host IS NOT NULL ORDER BY evidence_id, line"
        ):
            self._host(r["host"])
            self.os.setdefault(r["host"], r["os_name"])
            for ip in r["ips"] or []:
                self._bind(ip, r["host"])
        for r in case.query(
            "SELECT DISTINCT host, local_ip FROM sockets WHERE host IS NOT NULL ORDER BY host, local_ip"
        ):
            self._host(r["host"])
            self._bind(r["local_ip"], r["host"])
        for r in case.query("SELECT DISTINCT host FROM processes WHERE host IS NOT NULL ORDER BY host"):
            self._host(r["host"])
        for r in case.query("SELECT * FROM assets ORDER BY evidence_id, line"):
            name = self._host(r["hostname"] or r["ip"])
            self.assets[name] = {k: r[k] for k in ("role", "os", "owner", "av_installed", "av_forbidden")}
            self._bind(r["ip"], name)

    def _host(self, name: str) -> str:
        key = name.upper()
        if key not in self.canonical:
            self.canonical[key] = name
            self.host_ips.setdefault(name, [])
        return self.canonical[key]

    def _bind(self, ip: str | None, host: str) -> None:
        if not _usable_ip(ip):
            return
        host = self._host(host)
        self.ip_to_host.setdefault(ip, host)
        if ip not in self.host_ips[host]:
            self.host_ips[host].append(ip)

    def host_of(self, ip: str) -> str:
        return self.ip_to_host.get(ip, ip)

    def role_by_ip(self) -> dict[str, str]:
        return {ip: (self.assets.get(h) or {}).get("role") or "" for ip, h in self.ip_to_host.items()}


def build_hosts(identity: Identity, findings: list[Finding]) -> dict[str, HostView]:
    hosts: dict[str, HostView] = {}
    for name, ips in identity.host_ips.items():
        hosts[name] = HostView(
            name, ips[0] if ips else None, list(ips), identity.assets.get(name, {}), identity.os.get(name)
        )
    for f in findings:
        if f.ip and f.host == f.ip:
            f.host = identity.host_of(f.ip)
        name = identity.canonical.get(f.host.upper(), f.host)
        f.host = name
        view = hosts.setdefault(name, HostView(name, f.ip, [f.ip] if f.ip else []))
        view.findings.append(f)
    for view in hosts.values():
        view.findings.sort(key=lambda f: (-f.rank, f.first_seen or datetime.max, f.rule))
    return hosts


def patient_zero(hosts: dict[str, HostView]) -> dict[str, Any] | None:
    """The infected host whose malicious network activity was seen first.

    Network times are comparable across hosts (one firewall clock); host-side times are used
    only when no infected host was seen on the network.
    """
    infected = [h for h in hosts.values() if h.status == "infected"]
    if not infected:
        return None
    for network_only in (True, False):
        timed = sorted(
            ((h.first_seen(network_only), h) for h in infected if h.first_seen(network_only)),
            key=lambda x: (x[0], x[1].host),
        )
        if timed:
            first_ts, first = timed[0]
            basis = next(f for f in first.findings if f.first_seen == first_ts and f.rank >= INFECTED_AT)
            nxt = timed[1][0] if len(timed) > 1 else None
            return {
                "host": first.host,
                "ip": first.ip,
                "first_seen": first_ts,
                "basis": basis.rule,
                "lead_seconds": (nxt - first_ts).total_seconds() if nxt else None,
                "runner_up": timed[1][1].host if len(timed) > 1 else None,
                "evidence": basis.evidence,
            }
    return {
        "host": infected[0].host,
        "ip": infected[0].ip,
        "first_seen": None,
        "basis": "no timing evidence",
        "lead_seconds": None,
        "runner_up": None,
        "evidence": [],
    }
