"""Network detections written once, as ibis expressions, for every engine.

The expressions are built over unbound `flows` and `net_alerts` tables and compiled to the
engine's SQL (DuckDB by default, Spark or ClickHouse for sites that keep their logs there;
see `engines.py`). So the results are identical everywhere they are written with portable
operations only:

- time windows by epoch arithmetic on whole seconds (no `bucket()`/`tumble()`);
- distinct counts as counts of `DISTINCT` rows, never `nunique` (ClickHouse compiles that
  to the approximate `uniq`);
- "first row" by `row_number()` over a total order, never `arg_min` (ties differ);
- times leave the engine as epoch seconds and become datetimes in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir
from ibis import _

from wormhunt.knowledge import load
from wormhunt.model import FLOWS, NET_ALERTS, Kind

_IBIS_TYPES = {
    "VARCHAR": "string",
    "INTEGER": "int32",
    "BIGINT": "int64",
    "BOOLEAN": "boolean",
    "TIMESTAMP": "timestamp",
}
ALERT_KINDS = ("scan", "probe", "exploit", "implant", "miner")
SMB_PORTS = (445, 139)


def table(kind: Kind) -> ir.Table:
    """An unbound table with the record kind's columns (lists are not used by detections)."""
    return ibis.table({c.name: _IBIS_TYPES[c.sql] for c in kind.all_columns if c.sql in _IBIS_TYPES}, name=kind.name)


@dataclass(frozen=True)
class Params:
    ports: tuple[int, ...]
    window_s: int
    threshold: int
    failed_actions: tuple[str, ...]
    onset_run: int
    evidence_rows: int = 5

    @classmethod
    def from_knowledge(cls) -> Params:
        cfg = load("network")
        f = cfg["smb_fanout"]
        return cls(
            tuple(int(p) for p in f["ports"]),
            int(f["window_minutes"] * 60),
            int(f["min_distinct_targets"]),
            tuple(a.lower() for a in cfg["failed_actions"]),
            int(f["onset_run"]),
        )

    @property
    def run_seconds(self) -> int:
        """Longest a run of `onset_run` first contacts may take at the detection pace."""
        return max(1, self.onset_run * self.window_s // self.threshold)


def _seconds(ts: ir.TimestampValue) -> ir.IntegerValue:
    return ts.epoch_seconds().floor().cast("int64")


# Engines agree on epoch seconds only inside this range (ClickHouse clamps to 32 bits, Spark
# rounds toward zero before 1970); a time outside it is a parser's misreading anyway.
TIME_MIN, TIME_MAX = datetime(1970, 1, 2), datetime(2106, 2, 6)


def _sane_time(ts: ir.TimestampValue) -> ir.BooleanValue:
    return ts.notnull() & (ts >= TIME_MIN) & (ts < TIME_MAX)


def _smb_flows(flows: ir.Table, p: Params) -> ir.Table:
    failed = flows.action.fill_null("").lower().isin(list(p.failed_actions)) | (flows.bytes_in.fill_null(1) == 0)
    return flows.filter(
        flows.dst_port.isin(list(p.ports)), flows.src_ip.notnull(), flows.dst_ip.notnull(), _sane_time(flows.ts)
    ).select(
        "src_ip",
        "dst_ip",
        "evidence_id",
        "line",
        s=_seconds(flows.ts),
        failed=failed.ifelse(1, 0),
    )


def fanout(flows: ir.Table, p: Params) -> dict[str, ir.Table]:
    """SMB fan-out per source: the sources that reached `threshold` distinct hosts within one
    window (tumbling windows plus the same shifted by half, so a burst across an edge is
    seen whole), with onset, extent, failed ratio, new-destination rate and evidence rows."""
    f = _smb_flows(flows, p)
    firsts_all = f.group_by(["src_ip", "dst_ip"]).aggregate(s=_.s.min())
    # Only a source that reached N hosts in all can reach N in one window: the windowed work
    # then runs on a handful of sources instead of every client.
    total = firsts_all.group_by("src_ip").aggregate(total_targets=_.count()).filter(_.total_targets >= p.threshold)
    f = f.semi_join(total, "src_ip").mutate(
        w1=_.s // p.window_s,
        w2=(_.s + p.window_s // 2) // p.window_s,
    )

    def hot(col: str) -> ir.Table:
        d = f.select("src_ip", "dst_ip", w=f[col]).distinct()
        return d.group_by(["src_ip", "w"]).aggregate(n=_.count()).filter(_.n >= p.threshold)

    hot1, hot2 = hot("w1"), hot("w2")
    in1 = f.semi_join(hot1, [f.src_ip == hot1.src_ip, f.w1 == hot1.w])
    in2 = f.semi_join(hot2, [f.src_ip == hot2.src_ip, f.w2 == hot2.w])
    hf = in1.union(in2, distinct=True)
    peak = hot1.union(hot2).group_by("src_ip").aggregate(max_targets=_.n.max())

    # Onset: the first of `onset_run` first contacts (hosts this source never reached before)
    # made at the detection pace or faster. A PC's usual SMB to its file servers is not new,
    # so it cannot pull the start of a scan back by minutes.
    firsts = firsts_all.semi_join(peak, "src_ip")
    w = ibis.window(group_by="src_ip", order_by=["s", "dst_ip"], preceding=0, following=p.onset_run - 1)
    runs = firsts.mutate(span=_.s.max().over(w) - _.s, k=_.s.count().over(w))
    agg = hf.group_by("src_ip").aggregate(
        window_start_s=_.s.min(),
        last_seen_s=_.s.max(),
        sessions=_.count(),
        failed_sessions=_.count(where=_.failed == 1),
    )
    # A run only dates the scan it belongs to: one that starts within a run's length of the
    # hot windows, so a later burst elsewhere cannot move the onset past the scan itself.
    onset = (
        runs.filter(_.k == p.onset_run, _.span <= p.run_seconds)
        .join(agg.select("src_ip", "window_start_s", "last_seen_s"), "src_ip")
        .filter(_.s >= _.window_start_s - p.run_seconds, _.s <= _.last_seen_s)
        .group_by("src_ip")
        .aggregate(onset_s=_.s.min())
    )

    # New-destination rate: hosts reached for the first time within one hot window (plain
    # or shifted), at peak.
    def new_in(shift: int, hot_w: ir.Table) -> ir.Table:
        return (
            firsts.mutate(w=(_.s + shift) // p.window_s)
            .semi_join(hot_w, ["src_ip", "w"])
            .group_by(["src_ip", "w"])
            .aggregate(n=_.count())
        )

    new = new_in(0, hot1).union(new_in(p.window_s // 2, hot2)).group_by("src_ip").aggregate(new_targets=_.n.max())
    spreaders = (
        agg.join(total, "src_ip")
        .join(peak, "src_ip")
        .left_join(onset, "src_ip")
        .left_join(new, "src_ip")
        .select(
            "src_ip",
            "window_start_s",
            "last_seen_s",
            "sessions",
            "failed_sessions",
            "total_targets",
            "max_targets",
            first_seen_s=ibis.greatest(_.onset_s.fill_null(_.window_start_s), _.window_start_s),
            new_targets=_.new_targets.fill_null(0),
        )
        .order_by(["first_seen_s", "src_ip"])
    )
    rn = ibis.row_number().over(group_by="src_ip", order_by=["s", "evidence_id", "line"])
    evidence = (
        hf.mutate(rn=rn)
        .filter(_.rn < p.evidence_rows)
        .select("src_ip", "evidence_id", "line", "s")
        .order_by(["src_ip", "s", "evidence_id", "line"])
    )
    return {"spreaders": spreaders, "fanout_evidence": evidence, "hot_flows": hf}


def signature_pairs(alerts: ir.Table) -> ir.Table:
    """The distinct (signature, id) pairs: matched against the knowledge in Python, once."""
    return alerts.select("signature", "signature_id").distinct()


Match = tuple[str | None, str | None, int, str, tuple[int, ...]]  # signature, id, rule, kind, ports


def matches(pairs: list[dict[str, Any]]) -> list[Match]:
    """Which (signature, id) pairs are a known kind, by the knowledge table's first hit."""
    specs = load("network_signatures")["signatures"]
    out = []
    for row in pairs:
        spec = signature_spec(row["signature"], row["signature_id"])
        if spec is not None:
            out.append(
                (row["signature"], row["signature_id"], specs.index(spec), spec["kind"], tuple(spec.get("ports", ())))
            )
    return sorted(out, key=lambda m: (m[0] or "", m[1] or ""))


def signature_spec(name: str | None, sig_id: str | None) -> dict[str, Any] | None:
    """The knowledge entry a sensor's signature name or id belongs to, if any."""
    import re

    for spec in load("network_signatures")["signatures"]:
        if name and re.search(spec["match"], name, re.IGNORECASE):
            return spec
        if sig_id and any(sig_id == i for ids in spec["ids"].values() for i in ids):
            return spec
    return None


def _same(col: ir.StringValue, value: str | None) -> ir.BooleanValue:
    return col.isnull() if value is None else col == value


def kinded_alerts(alerts: ir.Table, found: list[Match]) -> ir.Table:
    """Alerts whose signature is known, with its rule number and canonical kind. The mapping
    is inlined as CASE expressions, so it runs on any engine without a side table."""
    if not found:
        return alerts.filter(ibis.literal(False)).mutate(
            rule=ibis.literal(-1), kind=ibis.literal(""), s=ibis.literal(0, "int64"), sig=alerts.signature
        )
    rule_cases, kind_cases = [], []
    for name, sig_id, rule, kind, ports in found:
        cond = _same(alerts.signature, name) & _same(alerts.signature_id, sig_id)
        if ports:
            cond = cond & (alerts.dst_port.isnull() | alerts.dst_port.isin(list(ports)))
        rule_cases.append((cond, rule))
        kind_cases.append((cond, kind))
    smb = list(SMB_PORTS)
    # A sensor reports a server's answer (EternalBlue echo response, DoublePulsar beacon
    # response) from the SMB server to the client: the target is always the SMB server side.
    reply = alerts.src_port.isin(smb) & ~alerts.dst_port.fill_null(0).isin(smb) & alerts.dst_ip.notnull()
    # A scan notice may name no target (Zeek's Address_Scan): dst '' keeps the grouping keys
    # free of NULLs, which no engine joins on.
    return (
        alerts.filter(alerts.src_ip.notnull(), _sane_time(alerts.ts))
        .mutate(rule=ibis.cases(*rule_cases, else_=-1), kind=ibis.cases(*kind_cases, else_=""))
        .filter(_.rule >= 0)
        .mutate(
            s=_seconds(_.ts),
            sig=_.signature.fill_null(_.signature_id),
            src_ip=reply.ifelse(alerts.dst_ip, alerts.src_ip),
            dst_ip=reply.ifelse(alerts.src_ip, alerts.dst_ip.fill_null("")),
        )
    )


def alert_pairs(ka: ir.Table) -> ir.Table:
    """One row per (kind, rule, source, target, signature): count, first and last seen, and
    the earliest alert as evidence."""
    keys = ["kind", "rule", "src_ip", "dst_ip", "sig"]
    rn = ibis.row_number().over(group_by=keys, order_by=["s", "evidence_id", "line"])
    first = ka.mutate(rn=rn).filter(_.rn == 0).select(*keys, "evidence_id", "line")
    agg = ka.group_by(keys).aggregate(count=_.count(), first_seen_s=_.s.min(), last_seen_s=_.s.max())
    return agg.join(first, keys).order_by(["first_seen_s", "src_ip", "dst_ip", "kind", "sig", "rule"])


def chains(ka: ir.Table) -> ir.Table:
    """Per target: when each stage of the chain scan -> probe -> exploit -> implant was first seen."""
    stages = ["scan", "probe", "exploit", "implant"]
    return (
        ka.filter(_.kind.isin(stages), _.dst_ip != "")
        .group_by("dst_ip")
        .aggregate(**{f"{k}_s": _.s.min(where=_.kind == k) for k in stages})
        .order_by("dst_ip")
    )


def hops(ka: ir.Table, hot_flows: ir.Table) -> ir.Table:
    """Worm hops: a host that received an exploit (or holds an implant) and afterwards starts
    exploiting or fanning out itself. `infector` is the first source that hit it; activity
    before the hit (a backup job, say) does not count as spreading."""
    hit = ka.filter(_.kind.isin(["exploit", "implant"]), _.dst_ip != "")
    rn = ibis.row_number().over(group_by="dst_ip", order_by=["s", "src_ip"])
    inbound = hit.mutate(rn=rn).filter(_.rn == 0).select(host=_.dst_ip, infector=_.src_ip, infected_s=_.s)
    outbound = ka.filter(_.kind == "exploit").select("src_ip", "s").union(hot_flows.select("src_ip", "s"))
    return (
        inbound.join(outbound, inbound.host == outbound.src_ip)
        .filter(_.s > _.infected_s)
        .group_by(["infector", "host", "infected_s"])
        .aggregate(spreading_s=_.s.min())
        .order_by(["infected_s", "host"])
    )


def detections(found: list[Match], p: Params) -> dict[str, ir.Table]:
    """Every network detection as named expressions over the unbound tables."""
    flows, alerts = table(FLOWS), table(NET_ALERTS)
    out = fanout(flows, p)
    hot_flows = out.pop("hot_flows")
    ka = kinded_alerts(alerts, found)
    out["alert_pairs"] = alert_pairs(ka)
    out["chains"] = chains(ka)
    out["hops"] = hops(ka, hot_flows)
    return out
