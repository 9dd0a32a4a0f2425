"""Spread: when each infected host was infected, who infected whom, who was first.

Infection time per host, from the strongest evidence there is: an event the host logged
(a service install, 7045/4697, or another event-based finding), then the network (the first
exploit it received that it went on to spread from, or the start of its own spreading),
then file times in the family's folders, which the worm can forge (WannaMine 3.0 dates its
DLL 2009-07-14), so they are kept but marked.

An edge u → v needs contact: u sent SMB or exploit traffic to v (IPS alerts, 445 flows, or
v's logon/share events naming u's address) after u was infected and shortly before v was. A
worm infects a host the first time an infected host reaches it, so the infector is the
earliest such contact, from the most direct kind of evidence. Patient zero is the earliest
infected host with no infector in scope; if an address outside the evidence hit it first,
that is said instead.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import networkx as nx

from wormhunt.analyze.verdict import HostView, Identity
from wormhunt.model import EvidenceRef
from wormhunt.store import Case

# How long before its own infection time a host may have been contacted by its infector
# (an exploit, then the payload, then the service install: minutes, not hours).
CONTACT_WINDOW = timedelta(hours=2)
# Times from different sources disagree by a little (a firewall and a host clock).
SLACK = timedelta(minutes=2)
EVENT_RULE_PREFIX = "events."  # host event-log findings: times the worm cannot rewrite


@dataclass
class Infection:
    host: str
    time: datetime | None
    basis: str  # event, network_hop, network_spreading, file_time, none
    forgeable: bool = False
    evidence: list[EvidenceRef] = field(default_factory=list)


@dataclass
class Edge:
    src: str
    dst: str
    ts: datetime
    evidence: list[str]  # what shows the contact: alert, flow, logon …

    def to_json(self) -> dict[str, Any]:
        return {"src": self.src, "dst": self.dst, "ts": self.ts.isoformat(sep=" "), "evidence": self.evidence}


@dataclass
class Spread:
    infections: dict[str, Infection]
    edges: list[Edge]
    patient_zero: dict[str, Any] | None
    timeline: list[dict[str, Any]]
    graph: nx.DiGraph

    def to_json(self) -> dict[str, Any]:
        return {
            "patient_zero": self.patient_zero,
            "edges": [e.to_json() for e in self.edges],
            "infections": [
                {
                    "host": i.host,
                    "time": i.time.isoformat(sep=" ") if i.time else None,
                    "basis": i.basis,
                    "forgeable": i.forgeable,
                }
                for i in sorted(self.infections.values(), key=lambda i: (i.time or datetime.max, i.host))
            ],
            "timeline": self.timeline,
        }


def _infection(view: HostView, hop_time: datetime | None, spreading: datetime | None) -> Infection:
    events = [f for f in view.findings if f.rule.startswith(EVENT_RULE_PREFIX) and f.first_seen and f.rank >= 3]
    if events:
        first = min(events, key=lambda f: f.first_seen)  # type: ignore[arg-type, return-value]
        return Infection(view.host, first.first_seen, "event", False, first.evidence[:3])
    if hop_time:
        return Infection(view.host, hop_time, "network_hop")
    if spreading:
        return Infection(view.host, spreading, "network_spreading")
    stomped = [f for f in view.findings if f.rule == "host.timestomp_hint"]
    files = [f for f in view.findings if f.first_seen and f.rule.startswith("host.") and f not in stomped]
    if files:
        first = min(files, key=lambda f: f.first_seen)  # type: ignore[arg-type, return-value]
        return Infection(view.host, first.first_seen, "file_time", True, first.evidence[:3])
    return Infection(view.host, None, "none")


def _contacts(case: Case, ip_of: dict[str, list[str]], infected: dict[str, Infection]) -> list[tuple]:
    """(src ip, dst host, ts, what) contacts into infected hosts within their windows."""
    rows: list[tuple] = []
    targets = [
        (ip, host, inf.time - CONTACT_WINDOW, inf.time + SLACK)
        for host, inf in infected.items()
        if inf.time
        for ip in ip_of.get(host, [])
    ]
    if not targets:
        return rows
    case.con.execute("CREATE OR REPLACE TEMP TABLE _wh_targets (ip VARCHAR, host VARCHAR, lo TIMESTAMP, hi TIMESTAMP)")
    case.con.executemany("INSERT INTO _wh_targets VALUES (?, ?, ?, ?)", targets)
    try:
        for what, sql in (
            (
                "alert",
                """SELECT a.src_ip, t.host, min(a.ts) AS ts FROM net_alerts a JOIN _wh_targets t
                   ON a.dst_ip = t.ip AND a.ts BETWEEN t.lo AND t.hi GROUP BY ALL""",
            ),
            (
                "smb_flow",
                """SELECT f.src_ip, t.host, min(f.ts) AS ts FROM flows f JOIN _wh_targets t
                   ON f.dst_ip = t.ip AND f.ts BETWEEN t.lo AND t.hi
                   WHERE f.dst_port IN (445, 139) GROUP BY ALL""",
            ),
        ):
            for src, host, ts in case.con.execute(sql).fetchall():
                rows.append((src, host, ts, what))
        # The victim's own log names the source: a network logon, a share or named pipe opened.
        for src, host, ts, eid in case.con.execute(
            """WITH e AS (SELECT host, ts, event_id,
                                 coalesce(data['IpAddress'], data['SourceAddress']) AS src_ip FROM events
                          WHERE event_id IN (4624, 5140, 5145)
                            AND (event_id <> 4624 OR data['LogonType'] = '3'))
               SELECT e.src_ip, t.host, min(e.ts), min(e.event_id) FROM e JOIN _wh_targets t
               ON upper(e.host) = upper(t.host) AND e.ts BETWEEN t.lo AND t.hi
               WHERE e.src_ip IS NOT NULL AND e.src_ip NOT IN ('-', '::1', '127.0.0.1') GROUP BY ALL"""
        ).fetchall():
            rows.append((src, host, ts, f"event {eid}"))
    finally:
        case.con.execute("DROP TABLE IF EXISTS _wh_targets")
    return rows


def analyze_spread(
    case: Case, identity: Identity, hosts: dict[str, HostView], spreaders: list[dict[str, Any]]
) -> Spread:
    """Infection times, propagation edges, patient zero and a merged timeline."""
    by_ip = {s["src"]: s for s in spreaders}
    infected_views = {h: v for h, v in hosts.items() if v.status == "infected"}
    infections: dict[str, Infection] = {}
    for host, view in infected_views.items():
        hop = spreading = None
        for ip in view.ips or ([view.ip] if view.ip else []):
            s = by_ip.get(ip)
            if s:
                spreading = min(filter(None, (spreading, s["first_seen"])), default=None)
                for reason, params in s["reasons"]:
                    if reason == "reason.hop":
                        at = datetime.fromisoformat(params["at"])
                        hop = min(filter(None, (hop, at)), default=None)
        infections[host] = _infection(view, hop, spreading)

    host_of = {ip: h for h, v in infected_views.items() for ip in (v.ips or ([v.ip] if v.ip else []))}
    ip_of = {h: list(v.ips or ([v.ip] if v.ip else [])) for h, v in infected_views.items()}
    # The best contact per (infector, victim): events name the source most directly, then alerts, then flows.
    strength = {"alert": 1, "smb_flow": 0}
    best: dict[str, tuple] = {}
    outside: dict[str, tuple] = {}
    flow_sources: dict[str, set[str]] = defaultdict(set)
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for src_ip, dst, ts, what in _contacts(case, ip_of, infections):
        src = host_of.get(src_ip)
        if src == dst:
            continue
        if src is None:
            if what != "smb_flow" and (dst not in outside or ts < outside[dst][1]):
                outside[dst] = (src_ip, ts, what)
            continue
        t_src = infections[src].time
        if t_src is None or t_src > ts + SLACK:
            continue  # the source was not infected yet when it made contact
        seen[(src, dst)].add(what)
        if what == "smb_flow":
            flow_sources[dst].add(src)
        # A worm infects a host the first time an infected host reaches it: the earliest contact wins.
        rank = (strength.get(what, 2), -ts.timestamp())
        if dst not in best or rank > best[dst][0]:
            best[dst] = (rank, src, ts, what)
    # 445 flows alone are weak: a scanning worm reaches every host, and a firewall does not see
    # traffic inside a subnet, so the real infector may be missing from them. A flow-only edge
    # is kept only when a single infected host reached the victim in its window.
    edges = [
        Edge(src, dst, ts, [what, *sorted(seen[src, dst] - {what})])  # the deciding evidence first
        for dst, (_, src, ts, what) in sorted(best.items())
        if what != "smb_flow" or len(flow_sources[dst]) == 1
    ]
    graph = nx.DiGraph()
    graph.add_nodes_from(infections)
    for e in edges:
        graph.add_edge(e.src, e.dst, ts=e.ts)
    # A contact that would close a cycle is not an infection path: drop the later edge.
    while True:
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            break
        u, v = max(cycle, key=lambda uv: graph.edges[uv]["ts"])[:2]
        graph.remove_edge(u, v)
        edges = [e for e in edges if (e.src, e.dst) != (u, v)]
    patient_zero = _patient_zero(infections, graph, outside)
    return Spread(
        infections, sorted(edges, key=lambda e: (e.ts, e.dst)), patient_zero, _timeline(infections, edges), graph
    )


def _patient_zero(
    infections: dict[str, Infection], graph: nx.DiGraph, outside: dict[str, tuple]
) -> dict[str, Any] | None:
    roots = sorted(
        (i for h, i in infections.items() if graph.in_degree(h) == 0 and i.time),
        key=lambda i: (i.time, i.host),
    )
    if not roots:
        return None
    first = roots[0]
    out: dict[str, Any] = {
        "host": first.host,
        "infected_at": first.time.isoformat(sep=" ") if first.time else None,
        "basis": first.basis,
        "forgeable": first.forgeable,
        "reach": len(nx.descendants(graph, first.host)),
        "other_roots": [r.host for r in roots[1:]],
    }
    if first.host in outside:
        src_ip, ts, what = outside[first.host]
        out["infected_from_outside"] = {"ip": src_ip, "ts": ts.isoformat(sep=" "), "evidence": what}
    return out


def _timeline(infections: dict[str, Infection], edges: list[Edge]) -> list[dict[str, Any]]:
    items = [
        {
            "ts": i.time.isoformat(sep=" "),
            "host": i.host,
            "what": "infected",
            "basis": i.basis,
            "forgeable": i.forgeable,
        }
        for i in infections.values()
        if i.time
    ]
    items += [
        {"ts": e.ts.isoformat(sep=" "), "host": e.dst, "what": "contact", "from": e.src, "evidence": e.evidence}
        for e in edges
    ]
    return sorted(items, key=lambda x: (x["ts"], x["host"], x["what"]))
