"""Windows event logs of a simulated host, as Winlogbeat JSON lines (`winlogbeat_events.json`
in each host bundle; `sources/evtx.py` reads them like EVTX records)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

from wormhunt.simulate.company import Host
from wormhunt.simulate.hostview import SYS32, HostState

# -- Windows event logs (Winlogbeat JSON lines) ----------------------------------------------

SYSMON_CHANNEL = "Microsoft-Windows-Sysmon/Operational"


def _winlog(ts: float, host: Host, channel: str, provider: str, eid: int, rid: int, data: dict[str, str]) -> str:
    stamp = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    doc = {
        "@timestamp": stamp,
        "event": {"code": str(eid), "provider": provider},
        "host": {"name": host.name},
        "winlog": {
            "channel": channel,
            "provider_name": provider,
            "event_id": eid,
            "computer_name": f"{host.name}.corp.local",
            "record_id": rid,
            "event_data": data,
        },
    }
    return json.dumps(doc, ensure_ascii=False)


def event_log(
    st: HostState,
    infected_at: float | None,
    infector: tuple[str, str] | None,
    peers: list[str],
    collect_ts: float,
    seed: int,
) -> str:
    """The host's Security/System/Sysmon/WMI-Activity events as Winlogbeat JSON lines: the
    family's service install (7045) at the infection time, the infector's network logon and
    share access (4624 type 3, 5140 ADMIN$, 5145 IPC$\\svcctl), Sysmon 1/3 of the scanner
    and WMI 5861/Sysmon 19-21 of a fileless family; benign noise on every host.
    `infector`: (host name, ip) of the host that infected this one; `peers`: addresses the
    scanner connects to. Uses its own random stream: the other outputs stay the same."""
    rng = random.Random(f"{seed}:{st.host.name}:events")
    h = st.host
    ev: list[tuple[float, str, str, int, dict[str, str]]] = []
    start = collect_ts - 86400
    for _ in range(rng.randint(20, 40)):  # benign noise
        t = rng.uniform(start, collect_ts)
        kind = rng.random()
        if kind < 0.4:
            ev.append(
                (
                    t,
                    "Security",
                    "Microsoft-Windows-Security-Auditing",
                    4624,
                    {
                        "TargetUserName": rng.choice(["SYSTEM", "LOCAL SERVICE", h.name + "$"]),
                        "TargetDomainName": "NT AUTHORITY",
                        "LogonType": rng.choice(["5", "2", "7"]),
                        "IpAddress": "-",
                        "LogonProcessName": "Advapi  ",
                    },
                )
            )
        elif kind < 0.7:
            ev.append(
                (
                    t,
                    "System",
                    "Service Control Manager",
                    7036,
                    {
                        "param1": rng.choice(
                            ["Windows Update", "Background Intelligent Transfer Service", "Print Spooler"]
                        ),
                        "param2": "running",
                    },
                )
            )
        else:
            exe = rng.choice(["svchost.exe", "conhost.exe", "taskhostw.exe", "dllhost.exe"])
            ev.append(
                (
                    t,
                    SYSMON_CHANNEL,
                    "Microsoft-Windows-Sysmon",
                    1,
                    {
                        "UtcTime": "",
                        "ProcessId": str(rng.randrange(400, 9000, 4)),
                        "Image": rf"{SYS32}\{exe}",
                        "CommandLine": rf"{SYS32}\{exe}",
                        "ParentImage": rf"{SYS32}\services.exe",
                        "User": "NT AUTHORITY\\SYSTEM",
                    },
                )
            )
    if infected_at is not None:
        t = infected_at
        if infector is not None:
            name, ip = infector
            ev.append(
                (
                    t - 4,
                    "Security",
                    "Microsoft-Windows-Security-Auditing",
                    4624,
                    {
                        "TargetUserName": "ANONYMOUS LOGON",
                        "TargetDomainName": "NT AUTHORITY",
                        "LogonType": "3",
                        "IpAddress": ip,
                        "IpPort": str(rng.randrange(49152, 65535)),
                        "WorkstationName": name,
                        "LogonProcessName": "NtLmSsp ",
                        "AuthenticationPackageName": "NTLM",
                    },
                )
            )
            ev.append(
                (
                    t - 3,
                    "Security",
                    "Microsoft-Windows-Security-Auditing",
                    5140,
                    {
                        "SubjectUserName": "ANONYMOUS LOGON",
                        "IpAddress": ip,
                        "ShareName": "\\\\*\\ADMIN$",
                        "ShareLocalPath": "\\??\\C:\\Windows",
                        "AccessMask": "0x1",
                    },
                )
            )
            ev.append(
                (
                    t - 2,
                    "Security",
                    "Microsoft-Windows-Security-Auditing",
                    5145,
                    {
                        "SubjectUserName": "ANONYMOUS LOGON",
                        "IpAddress": ip,
                        "ShareName": "\\\\*\\IPC$",
                        "ShareLocalPath": "",
                        "RelativeTargetName": "svcctl",
                        "AccessMask": "0x12019f",
                    },
                )
            )
        names = st.malware_services or ["snmpstorsrv"]
        for name in names[:1]:
            info = st.service_info.get(name, {})
            image = info.get("path") or r"%SystemRoot%\System32\svchost.exe -k netsvcs"
            ev.append(
                (
                    t,
                    "System",
                    "Service Control Manager",
                    7045,
                    {
                        "ServiceName": name,
                        "ImagePath": image,
                        "ServiceType": "user mode service",
                        "StartType": "auto start",
                        "AccountName": "LocalSystem",
                    },
                )
            )
        for w in st.wmi:
            ev.append(
                (
                    t + 1,
                    SYSMON_CHANNEL,
                    "Microsoft-Windows-Sysmon",
                    19,
                    {
                        "EventType": "WmiFilterEvent",
                        "Operation": "Created",
                        "User": "NT AUTHORITY\\SYSTEM",
                        "EventNamespace": ' "root\\\\cimv2"',
                        "Name": f' "{w["filter"]}"',
                        "Query": f' "{w["query"]}"',
                    },
                )
            )
            ev.append(
                (
                    t + 1,
                    SYSMON_CHANNEL,
                    "Microsoft-Windows-Sysmon",
                    20,
                    {
                        "EventType": "WmiConsumerEvent",
                        "Operation": "Created",
                        "User": "NT AUTHORITY\\SYSTEM",
                        "Name": f' "{w["consumer"]}"',
                        "Type": "Command Line",
                        "Destination": f' "{w["command"]}"',
                    },
                )
            )
            ev.append(
                (
                    t + 1,
                    SYSMON_CHANNEL,
                    "Microsoft-Windows-Sysmon",
                    21,
                    {
                        "EventType": "WmiBindingEvent",
                        "Operation": "Created",
                        "User": "NT AUTHORITY\\SYSTEM",
                        "Consumer": f' "CommandLineEventConsumer.Name=\\"{w["consumer"]}\\""',
                        "Filter": f' "__EventFilter.Name=\\"{w["filter"]}\\""',
                    },
                )
            )
            ev.append(
                (
                    t + 1,
                    "Microsoft-Windows-WMI-Activity/Operational",
                    "Microsoft-Windows-WMI-Activity",
                    5861,
                    {
                        "Namespace": "//./root/subscription",
                        "ESS": w["filter"],
                        "CONSUMER": f'CommandLineEventConsumer="{w["consumer"]}"',
                        "PossibleCause": "Perm. Consumer: instance of CommandLineEventConsumer "
                        f'{{ CommandLineTemplate = "{w["command"]}"; }};',
                    },
                )
            )
        scanner = next((p for p in st.procs if p.pid == st.scanner_pid), None)
        if scanner is not None and scanner.path:
            ev.append(
                (
                    t + 20,
                    SYSMON_CHANNEL,
                    "Microsoft-Windows-Sysmon",
                    1,
                    {
                        "ProcessId": str(scanner.pid),
                        "Image": scanner.path,
                        "CommandLine": scanner.cmd or scanner.path,
                        "ParentImage": rf"{SYS32}\svchost.exe",
                        "User": "NT AUTHORITY\\SYSTEM",
                    },
                )
            )
            for k, dst in enumerate(peers):
                ev.append(
                    (
                        t + 30 + k * 0.5,
                        SYSMON_CHANNEL,
                        "Microsoft-Windows-Sysmon",
                        3,
                        {
                            "ProcessId": str(scanner.pid),
                            "Image": scanner.path,
                            "Protocol": "tcp",
                            "Initiated": "true",
                            "SourceIp": h.ip,
                            "SourcePort": str(rng.randrange(49152, 65535)),
                            "DestinationIp": dst,
                            "DestinationPort": "445",
                            "DestinationPortName": "microsoft-ds",
                        },
                    )
                )
    ev = [e for e in ev if e[0] <= collect_ts]
    ev.sort(key=lambda e: e[0])
    return "".join(_winlog(t, h, ch, prov, eid, i, data) + "\n" for i, (t, ch, prov, eid, data) in enumerate(ev, 1))
