"""Host detections from command output: hidden PIDs, system binaries out of place, and
user-mode processes fanning out to port 445 (incident steps 4-5)."""

from __future__ import annotations

from typing import Any

from wormhunt.intel.families import normalize_path
from wormhunt.knowledge import load
from wormhunt.model import Finding, evidence_refs
from wormhunt.store import Case


def _norm_dir(path: str) -> str:
    """The folder of a Windows path, in the knowledge base's spelling (see `normalize_path`)."""
    p = normalize_path(path)
    return p.rsplit("\\", 1)[0].rstrip("\\") if "\\" in p else ""


def _expand(folder: str) -> str:
    return normalize_path(folder).rstrip("\\")


def masquerades(case: Case) -> list[Finding]:
    """System binary names running from outside their Windows folders, and extra instances."""
    kb = load("system_binaries")
    binaries = {k.lower(): v for k, v in kb["binaries"].items()}
    worm = [(_expand(w["path"]), w) for w in kb["worm_folders"]]
    out: list[Finding] = []
    rows = case.query(
        """SELECT host, pid, name, image_path, created, evidence_id, line FROM processes
           WHERE image_path IS NOT NULL AND lower(name) IN (SELECT unnest(?::VARCHAR[]))
           ORDER BY host, evidence_id, line""",
        [list(binaries)],
    )
    for r in rows:
        spec = binaries[r["name"].lower()]
        folder = _norm_dir(r["image_path"])
        allowed = {_expand(f) for f in spec["folders"]}
        if not folder or folder in allowed:
            continue
        family = next((w for root, w in worm if folder == root or folder.startswith(root + "\\")), None)
        params = {
            "name": r["name"],
            "folder": r["image_path"].rsplit("\\", 1)[0],
            "path": r["image_path"],
            "pid": r["pid"],
            "family": family["family"] if family and family["family"] else "",
        }
        known = family is not None and family["family"]
        out.append(
            Finding(
                "host.masquerade",
                r["host"],
                "critical" if known else "high",
                "T1036.005",
                "finding.masquerade_worm" if known else "finding.masquerade",
                params,
                r["created"],
                None,
                evidence_refs("processes", [r]),
            )
        )
    counts = case.query(
        """SELECT host, evidence_id, lower(name) AS name, count(*) AS n,
                  min_by({'evidence_id': evidence_id, 'line': line}, line, 5) AS ev
           FROM processes WHERE lower(name) IN (SELECT unnest(?::VARCHAR[]))
           GROUP BY host, evidence_id, lower(name)""",
        [[n for n, s in binaries.items() if "max_instances" in s]],
    )
    seen: set[tuple[str, str]] = set()
    for r in counts:
        limit = binaries[r["name"]]["max_instances"]
        if r["n"] > limit and (r["host"], r["name"]) not in seen:
            seen.add((r["host"], r["name"]))
            out.append(
                Finding(
                    "host.too_many_instances",
                    r["host"],
                    "medium",
                    "T1036.005",
                    "finding.too_many_instances",
                    {"name": r["name"], "count": r["n"], "max": limit},
                    None,
                    None,
                    evidence_refs("processes", r["ev"]),
                )
            )
    return out


def smb_fanout_by_pid(case: Case) -> list[dict[str, Any]]:
    cfg = load("network")["host_smb_fanout"]
    ports = load("network")["smb_fanout"]["ports"]
    return case.query(
        """SELECT host, pid, count(DISTINCT remote_ip) AS peers,
                  count(*) FILTER (WHERE state = 'SYN_SENT') AS syn,
                  min_by({'evidence_id': evidence_id, 'line': line}, line, 5) AS ev
           FROM sockets
           WHERE remote_port IN (SELECT unnest($ports::INTEGER[])) AND NOT coalesce(listening, false)
             AND pid IS NOT NULL AND pid NOT IN (SELECT unnest($exempt::INTEGER[]))
             AND remote_ip NOT IN ('*', '0.0.0.0', '::')
           GROUP BY host, pid HAVING count(DISTINCT remote_ip) >= $peers
           ORDER BY host, pid""",
        {"ports": ports, "exempt": cfg["exempt_pids"], "peers": cfg["min_distinct_peers"]},
    )


def hidden_pids(case: Case) -> list[dict[str, Any]]:
    """PIDs that own sockets but appear in no process list of the same host."""
    net = load("network")
    return case.query(
        """SELECT s.host, s.pid, count(*) AS sockets,
                  count(DISTINCT s.remote_ip)
                      FILTER (WHERE s.remote_port IN (SELECT unnest($ports::INTEGER[])) AND NOT s.listening)
                      AS smb_peers,
                  min_by({'evidence_id': s.evidence_id, 'line': s.line}, s.line, 5) AS ev
           FROM sockets s
           WHERE s.pid IS NOT NULL AND s.pid NOT IN (SELECT unnest($exempt::INTEGER[]))
             AND s.host IN (SELECT DISTINCT host FROM processes)
             AND NOT EXISTS (SELECT 1 FROM processes p WHERE p.host = s.host AND p.pid = s.pid)
           GROUP BY s.host, s.pid ORDER BY s.host, s.pid""",
        {"ports": net["smb_fanout"]["ports"], "exempt": net["host_smb_fanout"]["exempt_pids"]},
    )


def unexpected_parents(case: Case) -> list[Finding]:
    """System binaries started by another parent than Windows starts them with (a svchost
    whose parent is not services.exe), when the parent is in the same listing."""
    binaries = {k.lower(): v["parents"] for k, v in load("system_binaries")["binaries"].items() if "parents" in v}
    rows = case.query(
        """SELECT c.host, c.pid, c.name, c.ppid, p.name AS parent, c.created, c.evidence_id, c.line
           FROM processes c JOIN processes p
             ON p.host IS NOT DISTINCT FROM c.host AND p.evidence_id = c.evidence_id AND p.pid = c.ppid
           WHERE lower(c.name) IN (SELECT unnest(?::VARCHAR[])) AND p.name IS NOT NULL
             AND (p.created IS NULL OR c.created IS NULL OR p.created <= c.created)
           ORDER BY c.host, c.evidence_id, c.line""",
        [list(binaries)],
    )
    out = []
    for r in rows:
        allowed = {x.lower() for x in binaries[r["name"].lower()]}
        if r["parent"].lower() not in allowed:
            params = {"name": r["name"], "pid": r["pid"], "parent": r["parent"], "ppid": r["ppid"],
                      "expected": ", ".join(sorted(allowed))}  # fmt: skip
            out.append(
                Finding(
                    "host.unexpected_parent",
                    r["host"],
                    "high",
                    "T1036.005",
                    "finding.unexpected_parent",
                    params,
                    r["created"],
                    None,
                    evidence_refs("processes", [r]),
                )
            )
    return out


def findings(case: Case) -> list[Finding]:
    out = masquerades(case) + unexpected_parents(case)
    images: dict[tuple[str, int], str] = {}
    for r in case.query("SELECT host, pid, name, image_path FROM processes WHERE pid IS NOT NULL"):
        key = (r["host"], r["pid"])
        if r["image_path"] or key not in images:
            images[key] = r["image_path"] or r["name"]
    hidden = {(r["host"], r["pid"]): r for r in hidden_pids(case)}
    for r in hidden.values():
        sev = "high" if r["smb_peers"] else "medium"
        params = {"pid": r["pid"], "sockets": r["sockets"], "smb_peers": r["smb_peers"]}
        out.append(
            Finding(
                "host.hidden_pid",
                r["host"],
                sev,
                "T1564",
                "finding.hidden_pid",
                params,
                None,
                None,
                evidence_refs("sockets", r["ev"]),
            )
        )
    for r in smb_fanout_by_pid(case):
        key = (r["host"], r["pid"])
        image = images.get(key)
        params = {"pid": r["pid"], "image": image or "", "peers": r["peers"], "syn": r["syn"]}
        out.append(
            Finding(
                "host.pid_smb_fanout",
                r["host"],
                "high",
                "T1046",
                "finding.pid_smb_fanout" if image else "finding.pid_smb_fanout_unlisted",
                params,
                None,
                None,
                evidence_refs("sockets", r["ev"]),
            )
        )
    return out
