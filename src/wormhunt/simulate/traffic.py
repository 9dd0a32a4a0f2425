"""Network traffic for the simulated period (written in any format by `logformats/`): benign business traffic plus
the worm's scanning and exploitation, as the core firewall between the VLANs sees it
(sessions inside one VLAN never cross the firewall, so they are not logged).

Benign look-alikes are deliberate: PCs use SMB on the file servers and domain controllers
all day, and the backup server opens SMB sessions to every host each night, which is a
445 fan-out as wide as a worm's but with sessions that succeed and move data.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from wormhunt.simulate.company import Company
from wormhunt.simulate.outbreak import EXPLOIT, RESET, TIMEOUT, Outbreak, ip_int

# What happened to a session; each log format words these its own way.
ACTIONS = ("close", "timeout", "server-rst", "deny", "accept")
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


def write_logs(
    company: Company,
    ob: Outbreak,
    start: float,
    end: float,
    lines: int,
    out_dir: Path,
    seed: int,
    fmt: str = "fortigate",
) -> dict[str, int]:
    """Write about `lines` sessions plus the exploit/implant alerts in format `fmt`;
    returns the counts: `traffic` sessions, `alerts`, and lines per file."""
    from wormhunt.simulate.logformats import writer as make_writer

    rng = random.Random(seed)
    gen = Generator(company, rng.randrange(2**32))
    writer = make_writer(fmt, company)
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
    files_count: dict[str, int] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    names = dict.fromkeys(n for n in (writer.traffic_file, writer.alert_file) if n)
    with contextlib.ExitStack() as stack:
        files = {n: stack.enter_context(open(out_dir / n, "w", encoding="utf-8", newline="\n")) for n in names}
        for name, out in files.items():
            _emit(out, writer.header(name), files_count, name)
        sessions = alerts_written = 0
        for h in range(hours):
            lo, hi = start + h * 3600, start + (h + 1) * 3600
            parts = [gen.background(lo, int(per_hour[h]))]
            for src_flows in (worm, backup):
                sel = np.flatnonzero((src_flows.ts >= lo) & (src_flows.ts < hi))
                if len(sel):
                    parts.append(src_flows.take(sel))
            batch = Flows.concat(parts)
            batch = batch.take(np.argsort(batch.ts, kind="stable"))
            sessions += _emit(files[writer.traffic_file], writer.traffic(batch), files_count, writer.traffic_file)
        if writer.alert_file:
            alerts = []
            for i in np.flatnonzero(results == EXPLOIT):
                ts, src, dst = float(worm.ts[i]), int(worm.src[i]), int(worm.dst[i])
                alerts.append(writer.alert(ts, src, dst, "exploit"))
                alerts.append(writer.alert(ts + rng.uniform(3, 12), src, dst, "implant"))
            alerts_written = _emit(files[writer.alert_file], (a for a in alerts if a), files_count, writer.alert_file)
        for name, out in files.items():
            _emit(out, writer.footer(name), files_count, name)
    return {"traffic": sessions, "alerts": alerts_written, "files": files_count}


def _emit(fh: TextIO, lines: Iterable[str], files_count: dict[str, int], name: str) -> int:
    block = list(lines)
    if block:
        fh.write("\n".join(block) + "\n")
    files_count[name] = files_count.get(name, 0) + len(block)
    return len(block)
