"""A synthetic enterprise and a WannaMine 3.0 outbreak, written as real-format evidence.

Output folder:
  network/fgt-traffic.log, network/fgt-ips.log   FortiGate logs for the whole period
  hosts/<HOST>/...                                one bundle per host (netstat, tasklist, systeminfo, wmic)
  assets.csv                                      the asset inventory (GBK, Chinese headers)
  ground_truth.json                               infected hosts, times, patient zero, edges

Deterministic per seed. Later families and formats plug in as more writers and more
behaviours in `outbreak.py`; the company and the ground truth stay the same.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wormhunt.simulate import hostview, outbreak, traffic, writers
from wormhunt.simulate.company import OSES, build_company

DEFAULT_START = "2018-11-17"  # the incident's outbreak was 2018-11-18 08:38:18 (UTC+8)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def simulate(
    out: Path,
    hosts: int = 60,
    seed: int = 1,
    days: int = 2,
    lines: int = 200_000,
    start: str = DEFAULT_START,
    locale: str = "mixed",
    net_format: str = "fortigate",
) -> dict[str, Any]:
    """Write a simulated outbreak under `out`; returns the ground truth (also in ground_truth.json)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    company = build_company(hosts, rng, locale)
    tz = 480
    local_midnight = datetime.fromisoformat(start).replace(tzinfo=UTC).timestamp()
    begin = local_midnight - tz * 60
    end = begin + max(1, days) * 86400
    # The outbreak starts in the second half of the period, in working hours, and the
    # responder collects host evidence near the end of it.
    t0 = begin + (max(1, days) - 1) * 86400 + rng.uniform(8.0, 11.0) * 3600 if days > 1 else begin + 9 * 3600
    collect = end - rng.uniform(900, 3600)
    ob = outbreak.run(company, t0, collect, rng)
    counts = traffic.write_logs(company, ob, begin, end, lines, out / "network", rng.randrange(2**32), net_format)
    artifacts = {}
    for host in company.hosts:
        state = hostview.build(company, ob, host, collect, seed)
        writers.write_bundle(state, collect, out / "hosts" / host.name)
        if state.infected:
            artifacts[host.name] = {
                "services": [s for names in state.services.values() for s in names if s == "snmpstorsrv"],
                "tasks": [t["name"] for t in state.tasks],
                "files": state.files,
                "scanner_hidden": state.scanner_hidden,
                "scanner_pid": next(
                    p.pid for p in state.procs if p.path and p.path.endswith(r"AppDiagnostics\spoolsv.exe")
                ),
            }
    (out / "assets.csv").write_bytes(writers.assets_csv(company.hosts))

    by_ip = company.by_ip
    truth = {
        "seed": seed,
        "locale": locale,
        "hosts_total": len(company.hosts),
        "period": {"start": _iso(begin), "end": _iso(end), "collected": _iso(collect), "tz_offset_min": tz},
        "patient_zero": {"host": ob.patient_zero.name, "ip": ob.patient_zero.ip, "infected_at": _iso(ob.t0)},
        "infected": sorted(ob.infections),
        "edges": [
            {
                "src": by_ip[e["src"]].name,
                "dst": by_ip[e["dst"]].name,
                "src_ip": e["src"],
                "dst_ip": e["dst"],
                "ts": _iso(e["ts"]),
            }
            for e in ob.edges
        ],
        "hosts": [
            {
                "host": h.name,
                "ip": h.ip,
                "os": OSES[h.os]["name_en"],
                "role": h.role,
                "locale": h.locale,
                "collection": h.collection,
                "patched": h.patched,
                "av_installed": h.av_installed,
                "av_forbidden": h.av_forbidden,
                "infected": h.name in ob.infections,
                "infected_at": _iso(ob.infections[h.name].ts) if h.name in ob.infections else None,
                "artifacts": artifacts.get(h.name),
            }
            for h in company.hosts
        ],
        "network_format": net_format,
        "firewall_lines": counts,
    }
    (out / "ground_truth.json").write_text(json.dumps(truth, indent=2, ensure_ascii=False), encoding="utf-8")
    return truth
