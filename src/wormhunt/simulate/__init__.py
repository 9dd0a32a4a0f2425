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

from wormhunt.simulate import eventlog, families, hostview, outbreak, traffic, writers
from wormhunt.simulate.company import OSES, build_company
from wormhunt.simulate.families import FAMILIES

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
    family: str = "wannamine3",
    leftovers: float = 0.0,
    empty_outputs: bool = True,
) -> dict[str, Any]:
    """Write a simulated outbreak under `out`; returns the ground truth (also in ground_truth.json).

    `family`: what infected hosts carry (wannamine3, wannamine4, wannamine-fileless, dtlminer; the spread
    in the network logs is the same EternalBlue worm for all). `leftovers`: the share of WannaMine 3.0
    hosts that also keep WannaMine 2.0 leftovers. `empty_outputs`: clean hosts' bundles also hold what
    the commands print when there is nothing (`File Not Found`, an empty portproxy listing)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; use one of {', '.join(FAMILIES)}")
    if not 0.0 <= leftovers <= 1.0:
        raise ValueError("leftovers is a fraction between 0 and 1")
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
    host_families: dict[str, list[str]] = {}
    for host in company.hosts:
        state = hostview.build(company, ob, host, collect, seed, family, leftovers)
        writers.write_bundle(state, collect, out / "hosts" / host.name, empty_outputs)
        inf = ob.infections.get(host.name)
        infector = company.by_ip.get(inf.by) if inf is not None and inf.by else None
        peers = sorted({e["dst"] for e in ob.edges if e["src"] == host.ip}) or [
            h.ip for h in company.hosts if h.ip != host.ip
        ][:24]
        (out / "hosts" / host.name / "winlogbeat_events.json").write_text(
            eventlog.event_log(
                state,
                inf.ts if inf is not None else None,
                (infector.name, infector.ip) if infector is not None else None,
                peers if len(peers) >= 12 else [h.ip for h in company.hosts if h.ip != host.ip][:24],
                collect,
                seed,
            ),
            encoding="utf-8",
        )
        host_families[host.name] = state.families
        if state.infected:
            artifacts[host.name] = {
                "services": state.malware_services
                or [s for names in state.services.values() for s in names if s == "snmpstorsrv"],
                "tasks": [t["name"] for t in state.tasks],
                "files": state.files,
                "scanner_hidden": state.scanner_hidden,
                "scanner_pid": state.scanner_pid,
                **families.artifacts(state),
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
                "families": host_families[h.name],
            }
            for h in company.hosts
        ],
        "network_format": net_format,
        "family": family,
        "leftovers": leftovers,
        "firewall_lines": counts,
    }
    (out / "ground_truth.json").write_text(json.dumps(truth, indent=2, ensure_ascii=False), encoding="utf-8")
    return truth
