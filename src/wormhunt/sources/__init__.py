"""Evidence formats: one parser per format, found by content (never by file name)."""

from __future__ import annotations

from wormhunt.sources import (
    asa,
    assets,
    autoruns,
    evtx,
    filelist,
    fileversion,
    fortigate,
    hillstone,
    hostcfg,
    hotfix,
    huawei,
    iptables,
    netstat,
    nfdump,
    paloalto,
    pcap,
    pfirewall,
    pscim,
    sangfor,
    schtasks,
    services,
    suricata,
    systeminfo,
    tasklist,
    wmi,
    wmic,
    zeek,
)
from wormhunt.sources.base import Format

FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "fortigate",
            "FortiGate traffic/IPS log (key=value)",
            fortigate.sniff,
            parse_text=fortigate.parse_text,
            parse_file=fortigate.parse_file,
            host_evidence=False,
        ),
        Format("netstat", "netstat -ano / -anbo / -an", netstat.sniff, parse_text=netstat.parse),
        Format("tasklist", "tasklist (table, /v, /svc, /fo csv)", tasklist.sniff, parse_text=tasklist.parse),
        Format("systeminfo", "systeminfo", systeminfo.sniff, parse_text=systeminfo.parse),
        Format("wmic-process", "wmic process get ... /format:csv", wmic.sniff, parse_text=wmic.parse),
        Format("assets", "asset inventory CSV", assets.sniff, parse_text=assets.parse, host_evidence=False),
        Format(
            "pcap",
            "packet capture (pcap, pcapng)",
            lambda head: 0.0,
            parse_file=pcap.parse_file,
            host_evidence=False,
            sniff_bytes=pcap.sniff_bytes,
        ),
        # Network formats whose module declares its own entries.
        *(
            f
            for m in (paloalto, asa, huawei, hillstone, sangfor, iptables, pfirewall, zeek, suricata, nfdump)
            for f in m.FORMATS
        ),
        # Host artifacts whose module declares its own entries.
        *(
            f
            for m in (services, schtasks, autoruns, wmi, hostcfg, filelist, hotfix, pscim, fileversion, evtx)
            for f in m.FORMATS
        ),
    )
}

__all__ = ["FORMATS", "Format"]
