"""FortiGate traffic and IPS logs for the simulated period: benign business traffic plus
the worm's scanning and exploitation, as the core firewall between the VLANs sees it
(sessions inside one VLAN never cross the firewall, so they are not logged).

Benign look-alikes are deliberate: PCs use SMB on the file servers and domain controllers
all day, and the backup server opens SMB sessions to every host each night, which is a
445 fan-out as wide as a worm's but with sessions that succeed and move data.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wormhunt.simulate.company import Company
from wormhunt.simulate.outbreak import EXPLOIT, RESET, TIMEOUT, Outbreak, int_ip, ip_int

EXPLOIT_SIG = ("MS.SMB.Server.SMB1.Trans2.Secondary.Handling.Code.Execution", 43796)
BACKDOOR_SIG = ("Backdoor.DoublePulsar", 43963)
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
ACTIONS = ["close", "timeout", "server-rst", "deny", "accept"]
A_CLOSE, A_TIMEOUT, A_RESET, A_DENY, A_ACCEPT = range(5)
# Share of each hour of the day in business traffic (08:00-18:00 busy, nights quiet).
DIURNAL = np.array([1, 1, 1, 1, 1, 1, 2, 4, 9, 10, 10, 9, 7, 9, 10, 10, 9, 7, 4, 3, 2, 2, 1, 1], float)


@dataclass
class Flows:
    """Columns of a batch of sessions (IPv4 as integers, times as epoch seconds)."""

    ts: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    proto: np.ndarray
    action: np.ndarray
    sent: np.ndarray
    rcvd: np.ndarray
    spkt: np.ndarray
    rpkt: np.ndarray
    dur: np.ndarray

    @staticmethod
    def concat(parts: list[Flows]) -> Flows:
        return Flows(*(np.concatenate([getattr(p, f) for p in parts]) for f in Flows.__dataclass_fields__))

    def take(self, idx: np.ndarray) -> Flows:
        return Flows(*(getattr(self, f)[idx] for f in Flows.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.ts)


def _flows(n: int, **cols: np.ndarray) -> Flows:
    zero = np.zeros(n, np.int64)
    return Flows(**{f: cols.get(f, zero) for f in Flows.__dataclass_fields__})


class Generator:
    def __init__(self, company: Company, seed: int) -> None:
        self.c = company
        self.rng = np.random.default_rng(seed)
        hosts = company.hosts
        self.pcs = np.array([ip_int(h.ip) for h in hosts if h.role == "pc"], np.int64)
        self.dcs = np.array([ip_int(h.ip) for h in hosts if h.role == "dc"], np.int64)
        self.files = np.array([ip_int(h.ip) for h in hosts if h.role == "file"], np.int64)
        self.apps = np.array([ip_int(h.ip) for h in hosts if h.role in ("app", "db", "cluster")], np.int64)
        self.servers = np.array([ip_int(h.ip) for h in hosts if h.server], np.int64)
        backup = [h for h in hosts if h.role == "backup"]
        self.backup = ip_int(backup[0].ip) if backup else None
        self.server_net = {ip_int(s + ".0") >> 8 for s in company.server_subnets}
        # Public destinations from the documentation ranges: never a real address.
        self.internet = np.array(
            [ip_int(f"203.0.113.{i}") for i in range(1, 255)] + [ip_int(f"198.51.100.{i}") for i in range(1, 255)],
            np.int64,
        )

    def background(self, start: float, n: int) -> Flows:
        """n benign sessions within the hour starting at `start`."""
        rng = self.rng
        if n <= 0 or len(self.pcs) == 0:
            return _flows(0)
        kind = rng.choice(6, size=n, p=[0.28, 0.2, 0.2, 0.22, 0.05, 0.05])
        src = rng.choice(self.pcs, n)
        dst = np.empty(n, np.int64)
        dport = np.empty(n, np.int64)
        proto = np.full(n, 6, np.int64)
        m = kind == 0  # PC -> DC: DNS, Kerberos, LDAP, SYSVOL over SMB, RPC
        dst[m] = rng.choice(self.dcs, m.sum())
        dport[m] = rng.choice([53, 88, 389, 445, 135], m.sum(), p=[0.35, 0.2, 0.2, 0.2, 0.05])
        proto[m & (dport == 53)] = 17
        m = kind == 1  # PC -> file server: SMB
        dst[m] = rng.choice(self.files, m.sum())
        dport[m] = 445
        m = kind == 2  # PC -> business applications
        dst[m] = rng.choice(self.apps, m.sum())
        dport[m] = rng.choice([443, 80, 1433, 8080], m.sum())
        m = kind == 3  # PC -> internet
        dst[m] = rng.choice(self.internet, m.sum())
        dport[m] = rng.choice([443, 80], m.sum(), p=[0.85, 0.15])
        m = kind == 4  # servers -> internet (updates)
        src[m] = rng.choice(self.servers, m.sum())
        dst[m] = rng.choice(self.internet, m.sum())
        dport[m] = 443
        m = kind == 5  # policy denies: odd ports to servers
        dst[m] = rng.choice(self.servers, m.sum())
        dport[m] = rng.choice([23, 3389, 135, 8080], m.sum())
        action = np.where(kind == 5, A_DENY, A_CLOSE)
        action[(kind != 5) & (rng.random(n) < 0.03)] = A_TIMEOUT
        action[proto == 17] = A_ACCEPT
        big = (dport == 445) & (kind == 1)
        sent = rng.lognormal(7.5, 1.2, n).astype(np.int64) + 60
        rcvd = rng.lognormal(8.5, 1.5, n).astype(np.int64) + 60
        rcvd[big] *= 20
        ok = (action == A_CLOSE) | (action == A_ACCEPT)
        rcvd[~ok] = 0
        sent[action == A_DENY] = 0
        spkt = np.maximum(1, sent // 900 + 1)
        rpkt = np.where(rcvd > 0, np.maximum(1, rcvd // 1200 + 1), 0)
        dur = np.where(ok, rng.integers(0, 120, n), np.where(action == A_TIMEOUT, 30, 0))
        ts = np.sort(start + rng.random(n) * 3600)
        return Flows(ts, src, dst, rng.integers(49152, 65535, n), dport, proto, action, sent, rcvd, spkt, rpkt, dur)

    def backup_night(self, night_start: float) -> Flows:
        """The backup server pulls every host in another VLAN over SMB, one after another."""
        if self.backup is None:
            return _flows(0)
        targets = np.array(
            [d for d in np.concatenate([self.pcs, self.servers]) if (d >> 8) != (self.backup >> 8)], np.int64
        )
        n = len(targets)
        rng = self.rng
        ts = night_start + np.cumsum(rng.uniform(4, 9, n))
        sent = rng.integers(20_000, 80_000, n)
        rcvd = rng.integers(50_000_000, 900_000_000, n)
        return Flows(
            ts,
            np.full(n, self.backup),
            targets,
            rng.integers(49152, 65535, n),
            np.full(n, 445),
            np.full(n, 6),
            np.full(n, A_CLOSE),
            sent,
            rcvd,
            sent // 1400 + 1,
            rcvd // 1400 + 1,
            rng.integers(60, 900, n),
        )

    def crosses_firewall(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        return (src >> 8) != (dst >> 8)


def worm_flows(ob: Outbreak, gen: Generator) -> tuple[Flows, np.ndarray]:
    """Scan/exploit attempts that cross the firewall, and their result codes."""
    keep = gen.crosses_firewall(ob.src, ob.dst)
    ts, src, dst, res = ob.ts[keep], ob.src[keep], ob.dst[keep], ob.result[keep]
    n = len(ts)
    rng = gen.rng
    action = np.where(res == TIMEOUT, A_TIMEOUT, np.where(res == RESET, A_RESET, A_CLOSE))
    sent = np.where(res == TIMEOUT, rng.choice([52, 104, 156], n), rng.integers(600, 3000, n))
    sent[res == EXPLOIT] = rng.integers(120_000, 160_000, (res == EXPLOIT).sum())
    rcvd = np.where(res == TIMEOUT, 0, rng.integers(400, 2000, n))
    spkt = np.where(res == TIMEOUT, rng.integers(1, 4, n), sent // 1000 + 2)
    rpkt = np.where(res == TIMEOUT, 0, rcvd // 1000 + 2)
    dur = np.where(res == TIMEOUT, 30, rng.integers(0, 4, n))
    flows = Flows(
        ts, src, dst, rng.integers(49152, 65535, n), np.full(n, 445), np.full(n, 6), action, sent, rcvd, spkt, rpkt, dur
    )
    return flows, res


class Writer:
    """Formats FortiOS 6.x log lines (device-local date/time, tz, eventtime in seconds)."""

    def __init__(self, company: Company, tz_minutes: int = 480) -> None:
        self.dev = f'devname="{company.firewall}" devid="{company.firewall_id}"'
        self.tz = tz_minutes
        sign = "+" if tz_minutes >= 0 else "-"
        self.tz_text = f"{sign}{abs(tz_minutes) // 60:02d}{abs(tz_minutes) % 60:02d}"
        self.session = 1_000_000
        self.serial = 500_000_000
        self.server_net = {ip_int(s + ".0") >> 8 for s in company.server_subnets}

    def _intf(self, ip: int) -> tuple[str, str]:
        net = ip >> 8
        if net in self.server_net:
            return "port2", "lan"
        if (ip >> 24) in (203, 198):
            return "wan1", "wan"
        return "port3", "lan"

    def _clock(self, ts: float) -> tuple[str, str]:
        t = time.gmtime(int(ts) + self.tz * 60)
        return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}", f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"

    def traffic(self, f: Flows) -> Iterator[str]:
        dev, tz = self.dev, self.tz_text
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
                f'level="notice" vd="root" eventtime={int(ts)} tz="{tz}" srcip={int_ip(src)} '
                f'srcport={int(f.sport[i])} srcintf="{si}" srcintfrole="{sr}" dstip={int_ip(dst)} '
                f'dstport={dport} dstintf="{di}" dstintfrole="{dr}" sessionid={self.session} '
                f'proto={int(f.proto[i])} action="{act}" policyid={policy} policytype="policy" '
                f'service="{svc}" {country} srccountry="Reserved" trandisp="noop" '
                f"duration={int(f.dur[i])} sentbyte={int(f.sent[i])} rcvdbyte={int(f.rcvd[i])} "
                f'sentpkt={int(f.spkt[i])} rcvdpkt={int(f.rpkt[i])} appcat="unscanned"'
            )

    def ips(self, ts: float, src: int, dst: int, sig: tuple[str, int]) -> str:
        d, t = self._clock(ts)
        si, sr = self._intf(src)
        di, dr = self._intf(dst)
        self.serial += 1
        name, vid = sig
        return (
            f'<185>date={d} time={t} {self.dev} logid="0419016384" type="utm" subtype="ips" '
            f'eventtype="signature" level="alert" vd="root" eventtime={int(ts)} tz="{self.tz_text}" '
            f'severity="critical" srcip={int_ip(src)} srccountry="Reserved" dstip={int_ip(dst)} '
            f'srcintf="{si}" srcintfrole="{sr}" dstintf="{di}" dstintfrole="{dr}" sessionid={self.session} '
            f'action="detected" proto=6 service="SMB" policyid=5 attack="{name}" srcport={49152 + self.serial % 16000} '
            f'dstport=445 direction="incoming" attackid={vid} profile="default" '
            f'ref="http://www.fortinet.com/ids/VID{vid}" incidentserialno={self.serial} '
            f'msg="applications3: {name},"'
        )


def write_logs(
    company: Company, ob: Outbreak, start: float, end: float, lines: int, out_dir: Path, seed: int
) -> dict[str, int]:
    """Write `fgt-traffic.log` (about `lines` lines) and `fgt-ips.log`; returns line counts."""
    rng = random.Random(seed)
    gen = Generator(company, rng.randrange(2**32))
    writer = Writer(company)
    worm, results = worm_flows(ob, gen)
    hours = int((end - start) // 3600)
    # `start` is local midnight; the backup job runs at 01:00 local every night.
    nights = [start + d * 86400 + 3600 for d in range(int((end - start) // 86400) + 1)]
    backup = Flows.concat([gen.backup_night(t) for t in nights if start <= t < end] or [_flows(0)])
    fixed = len(worm) + len(backup)
    budget = max(0, lines - fixed)
    hour_of_day = [int((start + h * 3600 + writer.tz * 60) // 3600) % 24 for h in range(hours)]
    weights = DIURNAL[hour_of_day] if hours else np.zeros(0)
    per_hour = np.floor(weights / weights.sum() * budget).astype(int) if hours and weights.sum() else []
    counts = {"traffic": 0, "ips": 0}
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "fgt-traffic.log", "w", encoding="utf-8", newline="\n") as fh:
        for h in range(hours):
            lo, hi = start + h * 3600, start + (h + 1) * 3600
            parts = [gen.background(lo, int(per_hour[h]))]
            for src_flows in (worm, backup):
                sel = np.flatnonzero((src_flows.ts >= lo) & (src_flows.ts < hi))
                if len(sel):
                    parts.append(src_flows.take(sel))
            batch = Flows.concat(parts)
            batch = batch.take(np.argsort(batch.ts, kind="stable"))
            block = "\n".join(writer.traffic(batch))
            if block:
                fh.write(block + "\n")
            counts["traffic"] += len(batch)
    with open(out_dir / "fgt-ips.log", "w", encoding="utf-8", newline="\n") as fh:
        for i in np.flatnonzero(results == EXPLOIT):
            ts, src, dst = float(worm.ts[i]), int(worm.src[i]), int(worm.dst[i])
            fh.write(writer.ips(ts, src, dst, EXPLOIT_SIG) + "\n")
            fh.write(writer.ips(ts + rng.uniform(3, 12), src, dst, BACKDOOR_SIG) + "\n")
            counts["ips"] += 2
    return counts
