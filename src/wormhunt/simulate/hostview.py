"""What a responder's commands would show on each host at collection time: its processes
(genuine Windows ones, its role's software, and on infected hosts the WannaMine 3.0 set)
and its sockets (listeners, business sessions, and the scanner's SYN_SENT fan-out)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from wormhunt.simulate import families
from wormhunt.simulate.company import Company, Host
from wormhunt.simulate.outbreak import Outbreak

SYS32 = r"C:\Windows\System32"
APPDIAG = r"C:\Windows\AppDiagnostics"

# svchost groups of a Windows 7 / 2008 R2 host; Windows 10 splits services further.
# Services hosted by each svchost group on Windows 7 / 2008 R2 (as `tasklist /svc` lists them).
GROUP_SERVICES = {
    "DcomLaunch": ["DcomLaunch", "PlugPlay", "Power"],
    "RPCSS": ["RpcEptMapper", "RpcSs"],
    "LocalServiceNetworkRestricted": ["AudioSrv", "Dhcp", "eventlog", "lmhosts", "wscsvc"],
    "netsvcs": [
        "AeLookupSvc",
        "BITS",
        "CertPropSvc",
        "gpsvc",
        "IKEEXT",
        "iphlpsvc",
        "LanmanServer",
        "ProfSvc",
        "Schedule",
        "SENS",
        "ShellHWDetection",
        "Themes",
        "Winmgmt",
        "wuauserv",
    ],
    "LocalService": ["BFE", "EventSystem", "FontCache", "netprofm", "nsi", "W32Time", "WdiServiceHost"],
    "NetworkService": ["CryptSvc", "Dnscache", "LanmanWorkstation", "NlaSvc", "TermService"],
    "LocalSystemNetworkRestricted": ["TrkWks", "UxSms", "WdiSystemHost"],
    "LocalServiceNoNetwork": ["MpsSvc"],
    "LocalServiceAndNoImpersonation": ["FDResPub", "SSDPSRV", "upnphost"],
    "NetworkServiceNetworkRestricted": ["PolicyAgent"],
    "imgsvc": ["stisvc"],
}
SVCHOST_GROUPS = [
    "DcomLaunch",
    "RPCSS",
    "LocalServiceNetworkRestricted",
    "netsvcs",
    "LocalService",
    "NetworkService",
    "LocalSystemNetworkRestricted",
    "LocalServiceNoNetwork",
    "LocalServiceAndNoImpersonation",
    "NetworkServiceNetworkRestricted",
    "imgsvc",
]


@dataclass
class Proc:
    pid: int
    ppid: int
    name: str
    path: str | None
    cmd: str | None
    user: str
    session: int
    mem_kb: int
    cpu: str
    created: float
    hidden: bool = False  # absent from tasklist/wmic (the scanner on some hosts)


@dataclass
class Sock:
    proto: str
    local: str
    remote: str
    state: str | None
    pid: int


@dataclass
class HostState:
    host: Host
    procs: list[Proc] = field(default_factory=list)
    socks: list[Sock] = field(default_factory=list)
    services: dict[int, list[str]] = field(default_factory=dict)  # PID -> hosted services
    tasks: list[dict[str, str]] = field(default_factory=list)  # scheduled tasks (for task writers)
    files: list[str] = field(default_factory=list)  # malware files on disk
    accounts: list[str] = field(default_factory=list)  # local accounts (`net user`); WannaMine 3.0 adds none
    portproxy: list[tuple[str, str, str, str]] = field(default_factory=list)  # listen addr/port, connect addr/port
    boot_ts: float = 0.0
    infected: bool = False
    scanner_hidden: bool = False
    # Families other than the default WannaMine 3.0 (families.py); all empty for it, so its output is unchanged.
    families: list[str] = field(default_factory=list)
    malware_services: list[str] = field(default_factory=list)  # the worm's service names, in order
    service_info: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> path, dll, type, display ...
    drivers: list[str] = field(default_factory=list)  # kernel-driver services (no process): names in service_info
    run_values: list[tuple[str, str]] = field(default_factory=list)  # HKLM ...\Run name -> command
    wmi: list[dict[str, str]] = field(default_factory=list)  # extra root\subscription filter/consumer/binding sets
    dirs: list[str] = field(default_factory=list)  # working directories listed with `dir /s /t:c`
    scanner_pid: int | None = None
    registry: dict[str, str] = field(default_factory=dict)  # values no bundle artifact shows (ground truth only)


def _pid(rng: random.Random, used: set[int]) -> int:
    while True:
        pid = rng.randrange(200, 12000) // 4 * 4
        if pid not in used:
            used.add(pid)
            return pid


def build(
    company: Company,
    ob: Outbreak,
    host: Host,
    collect_ts: float,
    seed: int,
    family: str = "wannamine3",
    leftovers: float = 0.0,
) -> HostState:
    rng = random.Random(f"{seed}:{host.name}:view")
    inf = ob.infections.get(host.name)
    st = HostState(host, infected=inf is not None)
    st.boot_ts = collect_ts - rng.uniform(3, 40) * 86400
    if inf is not None and st.boot_ts > inf.ts:
        st.boot_ts = inf.ts - rng.uniform(1, 10) * 86400
    used: set[int] = {0, 4}
    procs = st.procs
    boot = st.boot_ts

    def add(
        name: str,
        path: str | None,
        cmd: str | None,
        user: str = "NT AUTHORITY\\SYSTEM",
        session: int = 0,
        ppid: int = 0,
        mem: int | None = None,
        created: float | None = None,
    ) -> Proc:
        p = Proc(
            _pid(rng, used),
            ppid,
            name,
            path,
            cmd,
            user,
            session,
            mem or rng.randint(800, 60000),
            f"0:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
            created or boot + rng.uniform(1, 90),
        )
        procs.append(p)
        return p

    procs.append(Proc(0, 0, "System Idle Process", None, None, "NT AUTHORITY\\SYSTEM", 0, 24, "990:12:01", boot))
    procs.append(Proc(4, 0, "System", None, None, "N/A", 0, 1200, "2:31:07", boot))
    smss = add("smss.exe", rf"{SYS32}\smss.exe", r"\SystemRoot\System32\smss.exe", ppid=4, mem=1100)
    add("csrss.exe", rf"{SYS32}\csrss.exe", None, ppid=smss.pid, mem=4200)
    wininit = add("wininit.exe", rf"{SYS32}\wininit.exe", "wininit.exe", ppid=smss.pid, mem=4000)
    add("csrss.exe", rf"{SYS32}\csrss.exe", None, ppid=smss.pid, session=1, mem=9800)
    add("winlogon.exe", rf"{SYS32}\winlogon.exe", "winlogon.exe", ppid=smss.pid, session=1, mem=6000)
    services = add("services.exe", rf"{SYS32}\services.exe", rf"{SYS32}\services.exe", ppid=wininit.pid, mem=9000)
    lsass = add("lsass.exe", rf"{SYS32}\lsass.exe", rf"{SYS32}\lsass.exe", ppid=wininit.pid, mem=18000)
    if host.os in ("2008r2", "win7"):
        add("lsm.exe", rf"{SYS32}\lsm.exe", rf"{SYS32}\lsm.exe", ppid=wininit.pid, mem=4300)
    svchost: dict[str, Proc] = {}
    for group in SVCHOST_GROUPS:
        user = {
            "LocalService": "NT AUTHORITY\\LOCAL SERVICE",
            "NetworkService": "NT AUTHORITY\\NETWORK SERVICE",
            "RPCSS": "NT AUTHORITY\\NETWORK SERVICE",
        }.get(group, "NT AUTHORITY\\SYSTEM")
        svchost[group] = add(
            "svchost.exe", rf"{SYS32}\svchost.exe", rf"{SYS32}\svchost.exe -k {group}", user=user, ppid=services.pid
        )
        st.services[svchost[group].pid] = list(GROUP_SERVICES[group])
    spooler = add("spoolsv.exe", rf"{SYS32}\spoolsv.exe", rf"{SYS32}\spoolsv.exe", ppid=services.pid, mem=11000)
    st.services[spooler.pid] = ["Spooler"]
    st.services[lsass.pid] = ["KeyIso", "SamSs"] + (["NTDS", "Netlogon", "kdc"] if host.role == "dc" else [])
    add(
        "taskhost.exe" if host.os in ("2008r2", "win7") else "taskhostw.exe",
        rf"{SYS32}\taskhost.exe" if host.os in ("2008r2", "win7") else rf"{SYS32}\taskhostw.exe",
        "taskhost.exe",
        user=f"{host.domain}\\{host.owner.split()[0].lower()}",
        session=1,
        ppid=services.pid,
    )
    wmiprvse = add(
        "WmiPrvSE.exe",
        rf"{SYS32}\wbem\WmiPrvSE.exe",
        rf"{SYS32}\wbem\wmiprvse.exe -Embedding",
        user="NT AUTHORITY\\NETWORK SERVICE",
        ppid=svchost["DcomLaunch"].pid,
    )
    user = f"{host.domain}\\{host.owner.split()[0].lower()}" if host.role == "pc" else f"{host.domain}\\administrator"
    explorer = add(
        "explorer.exe", r"C:\Windows\explorer.exe", r"C:\Windows\Explorer.EXE", user=user, session=1, mem=45000
    )
    add("conhost.exe", rf"{SYS32}\conhost.exe", r"\??\C:\Windows\system32\conhost.exe 0x4", user=user, session=1)
    if host.server:
        add(
            "vmtoolsd.exe",
            r"C:\Program Files\VMware\VMware Tools\vmtoolsd.exe",
            r'"C:\Program Files\VMware\VMware Tools\vmtoolsd.exe"',
            ppid=services.pid,
        )
    role_procs = {
        "dc": [
            ("dns.exe", rf"{SYS32}\dns.exe"),
            ("dfsrs.exe", rf"{SYS32}\dfsrs.exe"),
            ("ismserv.exe", rf"{SYS32}\ismserv.exe"),
        ],
        "db": [
            ("sqlservr.exe", r"C:\Program Files\Microsoft SQL Server\MSSQL10_50.MSSQLSERVER\MSSQL\Binn\sqlservr.exe"),
            ("sqlwriter.exe", r"C:\Program Files\Microsoft SQL Server\90\Shared\sqlwriter.exe"),
        ],
        "app": [("BizServer.exe", r"D:\BizSuite\bin\BizServer.exe"), ("java.exe", r"D:\BizSuite\jre\bin\java.exe")],
        "cluster": [
            ("ClusterMgrSvc.exe", r"D:\ClusterManager\ClusterMgrSvc.exe"),
            ("HeartbeatAgent.exe", r"D:\ClusterManager\HeartbeatAgent.exe"),
        ],
        "backup": [
            ("beserver.exe", r"C:\Program Files\Symantec\Backup Exec\beserver.exe"),
            ("bengine.exe", r"C:\Program Files\Symantec\Backup Exec\bengine.exe"),
        ],
        "file": [("dfssvc.exe", rf"{SYS32}\dfssvc.exe")],
        "pc": [
            ("chrome.exe", r"C:\Program Files (x86)\Google\Chrome\Application\chrome.exe"),
            (
                "WeChat.exe" if host.locale == "zh-CN" else "OUTLOOK.EXE",
                r"C:\Program Files (x86)\Tencent\WeChat\WeChat.exe"
                if host.locale == "zh-CN"
                else r"C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE",
            ),
        ],
    }
    role_pids: dict[str, int] = {}
    for name, path in role_procs[host.role]:
        pc = host.role == "pc"
        cmd = f'"{path}"' + (
            " --type=renderer --field-trial-handle=1628,8223917166689525299,131072" if name == "chrome.exe" else ""
        )
        p = add(
            name,
            path,
            cmd,
            user=user if pc else "NT AUTHORITY\\SYSTEM",
            session=1 if pc else 0,
            ppid=explorer.pid if pc else services.pid,
            mem=rng.randint(20000, 400000),
        )
        role_pids[name] = p.pid
    if host.av_installed:
        if host.locale == "zh-CN":
            add(
                "ZhuDongFangYu.exe",
                r"C:\Program Files (x86)\360\360Safe\deepscan\ZhuDongFangYu.exe",
                None,
                ppid=services.pid,
            )
            add("360tray.exe", r"C:\Program Files (x86)\360\360Safe\safemon\360tray.exe", None, user=user, session=1)
        else:
            add("MsMpEng.exe", r"C:\Program Files\Windows Defender\MsMpEng.exe", None, ppid=services.pid)

    scanner: Proc | None = None
    if inf is not None and family != "wannamine3":
        scanner = families.infect(family, st, company, inf.ts, collect_ts, add, svchost, wmiprvse, user, seed)
    elif inf is not None:
        st.families = ["wannamine3"]
        # WannaMine 3.0: snmpstorsrv.dll runs inside a genuine netsvcs svchost; it starts the
        # AppDiagnostics scanner, the EternalBlue tool while exploiting, and the miner.
        host_svc = svchost["netsvcs"]
        st.services[host_svc.pid].append("snmpstorsrv")
        # What the task runs is not in the public sources (threat-intel.md 1.3, [U]): left empty.
        st.tasks.append({"name": r"\UPnPHostServices", "run": ""})
        st.files += [
            rf"{SYS32}\snmpstorsrv.dll",
            rf"{SYS32}\MarsTraceDiagnostics.xml",
            rf"{SYS32}\TrustedHostex.exe",
            rf"{APPDIAG}\svchost.exe",
            rf"{APPDIAG}\svchost.xml",  # the EternalBlue config, rewritten for every target
            rf"{APPDIAG}\spoolsv.exe",
            rf"{APPDIAG}\x64.dll",
            rf"{APPDIAG}\x86.dll",
        ]
        st.scanner_hidden = rng.random() < 0.4
        scanner = add(
            "spoolsv.exe",
            rf"{APPDIAG}\spoolsv.exe",
            rf"{APPDIAG}\spoolsv.exe",
            ppid=host_svc.pid,
            created=inf.ts + 40,
            mem=rng.randint(3000, 9000),
        )
        scanner.hidden = st.scanner_hidden
        if rng.random() < 0.6:
            target = rng.choice([h for h in company.hosts if h.ip != host.ip])
            add(
                "svchost.exe",
                rf"{APPDIAG}\svchost.exe",
                rf"{APPDIAG}\svchost.exe --InConfig svchost.xml --TargetIp {target.ip} --TargetPort 445 "
                r"--Target WIN72K8R2",
                ppid=scanner.pid,
                created=collect_ts - rng.uniform(5, 60),
            )
        add(
            "TrustedHostex.exe",
            rf"{SYS32}\TrustedHostex.exe",
            rf"{SYS32}\TrustedHostex.exe",
            ppid=host_svc.pid,
            created=inf.ts + 60,
            mem=rng.randint(200000, 600000),
        )
    left = inf is not None and family == "wannamine3" and leftovers > 0
    if left and random.Random(f"{seed}:{host.name}:leftovers").random() < leftovers:
        families.wannamine2_leftovers(st, svchost)
    if scanner is not None:
        st.scanner_pid = scanner.pid
    add("tasklist.exe" if rng.random() < 0.5 else "cmd.exe", rf"{SYS32}\cmd.exe", "cmd.exe", user=user, session=1)

    # Sockets -----------------------------------------------------------------------------
    socks = st.socks
    ip = host.ip

    def eph() -> int:
        return rng.randint(49200, 65000)

    for port, pid in [
        (135, svchost["RPCSS"].pid),
        (445, 4),
        (49152, wininit.pid),
        (49153, svchost["LocalServiceNetworkRestricted"].pid),
        (49154, svchost["netsvcs"].pid),
        (49155, services.pid),
        (49156, lsass.pid),
        (49157, spooler.pid),
    ]:
        socks.append(Sock("TCP", f"0.0.0.0:{port}", "0.0.0.0:0", "LISTENING", pid))
    socks.append(Sock("TCP", f"{ip}:139", "0.0.0.0:0", "LISTENING", 4))
    if host.server:
        socks.append(Sock("TCP", "0.0.0.0:3389", "0.0.0.0:0", "LISTENING", svchost["NetworkService"].pid))
    if host.role == "dc":
        for port in (53, 88, 389, 464, 636, 3268, 3269):
            socks.append(
                Sock(
                    "TCP",
                    f"0.0.0.0:{port}",
                    "0.0.0.0:0",
                    "LISTENING",
                    lsass.pid if port != 53 else role_pids["dns.exe"],
                )
            )
    if host.role == "db":
        socks.append(Sock("TCP", "0.0.0.0:1433", "0.0.0.0:0", "LISTENING", role_pids["sqlservr.exe"]))
    for port, pid in [(135, svchost["RPCSS"].pid), (445, 4), (49152, wininit.pid)]:
        socks.append(Sock("TCP", f"[::]:{port}", "[::]:0", "LISTENING", pid))
    pcs = [h for h in company.hosts if h.role == "pc"]
    files = [h for h in company.hosts if h.role == "file"]
    dcs = [h for h in company.hosts if h.role == "dc"]
    if host.role in ("file", "dc") and pcs:
        # Heavy legitimate SMB: many clients connected to this server's 445, owned by System.
        for peer in rng.sample(pcs, min(len(pcs), rng.randint(20, 60))):
            socks.append(Sock("TCP", f"{ip}:445", f"{peer.ip}:{eph()}", "ESTABLISHED", 4))
    if host.role == "pc":
        for srv in files + dcs[:1]:
            socks.append(Sock("TCP", f"{ip}:{eph()}", f"{srv.ip}:445", "ESTABLISHED", 4))
        if dcs:
            socks.append(Sock("TCP", f"{ip}:{eph()}", f"{dcs[0].ip}:389", "ESTABLISHED", lsass.pid))
        for _ in range(rng.randint(3, 12)):
            socks.append(
                Sock(
                    "TCP",
                    f"{ip}:{eph()}",
                    f"203.0.113.{rng.randint(1, 254)}:443",
                    "ESTABLISHED",
                    role_pids["chrome.exe"],
                )
            )
    if host.role == "backup":
        for peer in rng.sample(company.hosts, min(6, len(company.hosts))):
            if peer.ip != ip:
                socks.append(Sock("TCP", f"{ip}:{eph()}", f"{peer.ip}:445", "ESTABLISHED", 4))
    for _ in range(rng.randint(2, 8)):
        peer = rng.choice(company.hosts)
        socks.append(Sock("TCP", f"{ip}:{eph()}", f"{peer.ip}:{rng.choice([445, 135, 389])}", "TIME_WAIT", 0))
    if scanner is not None:
        # The scanner mid-sweep: many half-open connections to 445 across the company's /24s.
        for _ in range(rng.randint(25, 70)):
            subnet = rng.choice(company.subnets)
            socks.append(Sock("TCP", f"{ip}:{eph()}", f"{subnet}.{rng.randint(1, 254)}:445", "SYN_SENT", scanner.pid))
        infected_peers = [company.hosts_by_name[n] for n in ob.infections if n != host.name]
        for peer in rng.sample(infected_peers, min(3, len(infected_peers))):
            socks.append(Sock("TCP", f"{ip}:{eph()}", f"{peer.ip}:445", "ESTABLISHED", scanner.pid))
    for port, pid in [
        (123, svchost["LocalService"].pid),
        (500, svchost["netsvcs"].pid),
        (5355, svchost["NetworkService"].pid),
    ]:
        socks.append(Sock("UDP", f"0.0.0.0:{port}", "*:*", None, pid))
    socks.append(Sock("UDP", f"{ip}:137", "*:*", None, 4))
    socks.append(Sock("UDP", f"{ip}:138", "*:*", None, 4))
    socks.append(Sock("UDP", "[::]:500", "*:*", None, svchost["netsvcs"].pid))
    # Local accounts and port forwards: fixed per host (no draw from `rng`, so adding them left every
    # other artifact unchanged). The application servers publish their web console through portproxy.
    st.accounts = ["Administrator", "Guest", "itadmin" if host.server else "deskadmin"]
    if host.role == "app":
        st.portproxy = [(host.ip, "8443", "127.0.0.1", "8080")]
    if inf is not None and family != "wannamine3":
        families.finish(family, st)
    return st
