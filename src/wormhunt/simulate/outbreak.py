"""A WannaMine 3.0 outbreak (threat-intel.md section 1) played out over the company.

Patient zero (the unpatched, AV-less cluster manager, as in the incident) starts its scanner
a minute after infection. Each scanner sweeps every address of the company's /24s in random
order at a few attempts per second; a live, unpatched Windows 7 / 2008 R2 host it reaches is
exploited with EternalBlue and starts scanning in turn. Because the first sweep covers every
address, every reachable vulnerable host is infected within minutes; later sweeps repeat
every hour or so until the responder collects evidence.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

import numpy as np

from wormhunt.simulate.company import Company, Host

SCAN_RATE = 5.0  # attempts per second (spoolsv.exe scanner)
START_DELAY = (30.0, 90.0)  # infection -> scanner running
EXPLOIT_DELAY = (8.0, 25.0)  # exploit -> DoublePulsar payload running
SWEEP_PAUSE = (40 * 60.0, 90 * 60.0)

# Result codes of one connection attempt.
TIMEOUT, RESET, PROBE, EXPLOIT = 0, 1, 2, 3


@dataclass
class Infection:
    host: str
    ip: str
    ts: float  # epoch seconds UTC
    by: str | None  # infector IP, None for patient zero


@dataclass
class Outbreak:
    patient_zero: Host
    t0: float
    collect_ts: float
    infections: dict[str, Infection] = field(default_factory=dict)
    # attempts: parallel arrays, sorted by time
    ts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    src: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # IPv4 as int
    dst: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    result: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))

    @property
    def edges(self) -> list[dict]:
        return [
            {"src": i.by, "dst": i.ip, "ts": i.ts}
            for i in sorted(self.infections.values(), key=lambda x: x.ts)
            if i.by is not None
        ]


def ip_int(ip: str) -> int:
    a, b, c, d = (int(x) for x in ip.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def int_ip(n: int) -> str:
    return f"{(n >> 24) & 255}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def _targets(company: Company, own: str) -> np.ndarray:
    out = []
    for subnet in company.subnets:
        base = ip_int(subnet + ".0")
        out.extend(base + k for k in range(1, 255))
    arr = np.array(out, np.int64)
    return arr[arr != ip_int(own)]


def _answer(company: Company, dst: int, filtered: set[str]) -> int:
    host = company.by_ip.get(int_ip(dst))
    if host is None or host.ip in filtered:
        return TIMEOUT
    return PROBE


def run(company: Company, t0: float, collect_ts: float, rng: random.Random) -> Outbreak:
    """Simulate infections and every scan attempt between t0 and collection time."""
    np_rng = np.random.default_rng(rng.randrange(2**32))
    # Patient zero: as in the incident, an unpatched business server (the cluster manager
    # more often than not), reached from outside the evidence (a contractor laptop, a VPN).
    candidates = [h for h in company.hosts if h.vulnerable and h.server]
    cluster = next(h for h in company.hosts if h.role == "cluster")
    p0 = cluster if rng.random() < 0.5 or not candidates else rng.choice(candidates)
    ob = Outbreak(p0, t0, collect_ts)
    ob.infections[p0.name] = Infection(p0.name, p0.ip, t0, None)
    # Windows 10 PCs with the host firewall closing 445 look dead to a scanner.
    filtered = {h.ip for h in company.hosts if h.os == "win10" and rng.random() < 0.5}

    # Phase 1: first sweeps, attempt by attempt in global time order (infections happen here).
    heap: list[tuple[float, int, str, int]] = []
    sweeps: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    seq = 0

    def start_sweep(host: Host, at: float) -> None:
        nonlocal seq
        targets = _targets(company, host.ip)
        np_rng.shuffle(targets)
        times = at + np.cumsum(np_rng.exponential(1.0 / SCAN_RATE, len(targets)))
        sweeps[host.name] = (targets, times)
        heapq.heappush(heap, (float(times[0]), seq, host.name, 0))
        seq += 1

    start_sweep(p0, t0 + rng.uniform(*START_DELAY))
    records: list[tuple[float, int, int, int]] = []
    first_sweep_end: dict[str, float] = {}
    while heap:
        when, _, name, k = heapq.heappop(heap)
        if when > collect_ts:
            continue
        src = company.hosts_by_name[name]
        targets, times = sweeps[name]
        dst = int(targets[k])
        res = _answer(company, dst, filtered)
        victim = company.by_ip.get(int_ip(dst))
        if res == PROBE and victim is not None and victim.vulnerable and victim.name not in ob.infections:
            res = EXPLOIT
            at = when + rng.uniform(*EXPLOIT_DELAY)
            if at <= collect_ts:
                ob.infections[victim.name] = Infection(victim.name, victim.ip, at, src.ip)
                start_sweep(victim, at + rng.uniform(*START_DELAY))
        records.append((when, ip_int(src.ip), dst, res))
        if k + 1 < len(targets):
            heapq.heappush(heap, (float(times[k + 1]), seq, name, k + 1))
            seq += 1
        else:
            first_sweep_end[name] = when

    # Phase 2: repeated sweeps find nothing new; generate them in bulk per host.
    live = np.array([ip_int(h.ip) for h in company.hosts if h.ip not in filtered], np.int64)
    parts = [np.array(records, dtype=np.float64).reshape(-1, 4)]
    for name, end in first_sweep_end.items():
        host = company.hosts_by_name[name]
        t = end + rng.uniform(*SWEEP_PAUSE)
        while t < collect_ts:
            targets = _targets(company, host.ip)
            np_rng.shuffle(targets)
            times = t + np.cumsum(np_rng.exponential(1.0 / SCAN_RATE, len(targets)))
            keep = times <= collect_ts
            res = np.where(np.isin(targets[keep], live), PROBE, TIMEOUT).astype(np.float64)
            block = np.column_stack([times[keep], np.full(keep.sum(), ip_int(host.ip)), targets[keep], res])
            parts.append(block)
            t = (times[-1] if len(times) else t) + rng.uniform(*SWEEP_PAUSE)
    allrec = np.concatenate(parts) if parts else np.zeros((0, 4))
    order = np.argsort(allrec[:, 0], kind="stable")
    allrec = allrec[order]
    ob.ts = allrec[:, 0]
    ob.src = allrec[:, 1].astype(np.int64)
    ob.dst = allrec[:, 2].astype(np.int64)
    ob.result = allrec[:, 3].astype(np.int8)
    return ob
