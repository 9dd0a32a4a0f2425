"""A synthetic company: subnets, servers and PCs, their OS, role, owner and antivirus.

Modelled on the reference incident: a Chinese company with a server VLAN (172.16.101.0/24),
PC VLANs (192.168.16.0/24 ...), a core FortiGate between them, Windows Server 2008 R2
business servers that the vendor forbids antivirus on, and a mix of Windows 7 and 10 PCs.
Everything is drawn from one seeded generator, so a seed always gives the same company.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# OS catalog: what systeminfo prints, and whether MS17-010 is installed by default.
# `vulnerable_share`: how many hosts of this OS are left unpatched (the incident's servers
# were two years behind; the Windows 10 fleet is patched by its cumulative updates).
OSES: dict[str, dict] = {
    "2008r2": {
        "name_en": "Microsoft Windows Server 2008 R2 Enterprise",
        "name_zh": "Microsoft Windows Server 2008 R2 Enterprise",
        "version": "6.1.7601 Service Pack 1 Build 7601",
        "build": 7601,
        "fixes": ["KB2999226", "KB3020369", "KB3125574"],
        "ms17010": ["KB4012212", "KB4012215"],
        "vulnerable_share": 0.85,
        "server": True,
    },
    "2012r2": {
        "name_en": "Microsoft Windows Server 2012 R2 Standard",
        "name_zh": "Microsoft Windows Server 2012 R2 Standard",
        "version": "6.3.9600 N/A Build 9600",
        "build": 9600,
        "fixes": ["KB2919355", "KB2919442", "KB2937220", "KB2938772"],
        "ms17010": ["KB4012213", "KB4012216"],
        "vulnerable_share": 0.0,
        "server": True,
    },
    "win7": {
        "name_en": "Microsoft Windows 7 Professional",
        "name_zh": "Microsoft Windows 7 专业版",
        "version": "6.1.7601 Service Pack 1 Build 7601",
        "build": 7601,
        "fixes": ["KB2534111", "KB2999226", "KB3125574"],
        "ms17010": ["KB4012212", "KB4012215"],
        "vulnerable_share": 0.5,
        "server": False,
    },
    "win10": {
        "name_en": "Microsoft Windows 10 Pro",
        "name_zh": "Microsoft Windows 10 专业版",
        "version": "10.0.17134 N/A Build 17134",
        "build": 17134,
        "fixes": ["KB4100347", "KB4456655", "KB4462919"],
        "ms17010": [],
        "vulnerable_share": 0.0,
        "server": False,
    },
}

ROLES_EN = {
    "dc": "Domain controller",
    "file": "File server",
    "cluster": "Cluster management server",
    "app": "Business application server",
    "db": "Database server",
    "backup": "Backup server",
    "pc": "Employee PC",
}
ROLES_ZH = {
    "dc": "域控制器",
    "file": "文件服务器",
    "cluster": "集群管理服务器",
    "app": "业务应用服务器",
    "db": "数据库服务器",
    "backup": "备份服务器",
    "pc": "员工电脑",
}
_SURNAMES = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu", "Xu", "Sun"]
_GIVEN = ["Wei", "Fang", "Na", "Min", "Jing", "Lei", "Yang", "Jun", "Tao", "Ming", "Chao", "Hui"]


@dataclass
class Host:
    name: str
    ip: str
    subnet: str
    os: str
    role: str
    owner: str
    av_installed: bool
    av_forbidden: bool
    locale: str  # zh-CN or en-US
    collection: str  # how its evidence was captured: cmd, powershell or console-copy
    patched: bool
    domain: str = "CORP"
    tz_offset_min: int = 480

    @property
    def vulnerable(self) -> bool:
        return not self.patched and self.os in ("2008r2", "win7")

    @property
    def server(self) -> bool:
        return OSES[self.os]["server"]


@dataclass
class Company:
    name: str
    domain: str
    hosts: list[Host]
    subnets: list[str]  # "a.b.c" prefixes of /24s
    firewall: str = "FGT-CORE"
    firewall_id: str = "FG100E4Q17000001"
    by_ip: dict[str, Host] = field(default_factory=dict)
    hosts_by_name: dict[str, Host] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_ip = {h.ip: h for h in self.hosts}
        self.hosts_by_name = {h.name: h for h in self.hosts}

    @property
    def server_subnets(self) -> list[str]:
        return sorted({h.subnet for h in self.hosts if h.server})


def _owner(rng: random.Random) -> str:
    return f"{rng.choice(_SURNAMES)} {rng.choice(_GIVEN)}"


def build_company(n_hosts: int, rng: random.Random, locale: str = "mixed") -> Company:
    """A company of `n_hosts` Windows hosts (at least 8); `locale` is mixed, zh-CN or en-US."""
    n_hosts = max(8, n_hosts)
    # About a fifth are servers, but at least enough for the incident's eight business servers.
    n_servers = max(6, min(250, max(round(n_hosts * 0.22), min(14, n_hosts // 2))))
    n_pcs = n_hosts - n_servers
    server_subnets = ["172.16.101"] + (["172.16.102"] if n_servers > 200 else [])
    pc_subnets = [f"192.168.{16 + i}" for i in range(max(1, -(-n_pcs // 200)))]
    hosts: list[Host] = []

    roles = ["cluster", "dc", "dc", "file", "file", "backup"]
    roles += ["app" if i % 3 else "db" for i in range(n_servers - len(roles))]
    used: set[str] = set()

    def ip_in(subnet: str) -> str:
        while True:
            ip = f"{subnet}.{rng.randint(10, 250)}"
            if ip not in used:
                used.add(ip)
                return ip

    zh_share = {"mixed": 0.7, "zh-CN": 1.0, "en-US": 0.0}[locale]
    for i, role in enumerate(roles):
        subnet = server_subnets[0] if i < 200 else server_subnets[-1]
        if role in ("cluster", "app", "db"):
            os_key = "2008r2" if rng.random() < 0.8 or role == "cluster" else "2012r2"
        elif role == "backup":
            os_key = "2012r2"
        else:
            os_key = rng.choice(["2008r2", "2012r2"])
        forbidden = role == "cluster" or (role == "app" and rng.random() < 0.6)
        vuln_share = OSES[os_key]["vulnerable_share"]
        patched = not (role in ("cluster", "app", "db") and rng.random() < vuln_share)
        if role == "cluster":
            patched = False
        prefix = {"dc": "DC", "file": "FS", "cluster": "CLUSTER", "app": "APP", "db": "DB", "backup": "BACKUP"}[role]
        hosts.append(
            Host(
                name=f"{prefix}{sum(1 for h in hosts if h.role == role) + 1:02d}",
                ip=ip_in(subnet),
                subnet=subnet,
                os=os_key,
                role=role,
                owner=_owner(rng),
                av_installed=not forbidden,
                av_forbidden=forbidden,
                locale="zh-CN" if rng.random() < zh_share else "en-US",
                collection=rng.choice(["cmd", "cmd", "powershell", "console-copy"]),
                patched=patched,
            )
        )
    for i in range(n_pcs):
        subnet = pc_subnets[i // 200]
        os_key = "win7" if rng.random() < 0.15 else "win10"
        patched = not (os_key == "win7" and rng.random() < OSES["win7"]["vulnerable_share"])
        hosts.append(
            Host(
                name=f"PC-{subnet.split('.')[-1]}-{i % 200 + 1:03d}",
                ip=ip_in(subnet),
                subnet=subnet,
                os=os_key,
                role="pc",
                owner=_owner(rng),
                av_installed=rng.random() < 0.9,
                av_forbidden=False,
                locale="zh-CN" if rng.random() < zh_share else "en-US",
                collection=rng.choice(["cmd", "cmd", "powershell", "console-copy"]),
                patched=patched,
            )
        )
    # The incident had 8 infected servers: keep at least 8 unpatched 2008 R2 business servers
    # (the cluster manager included) whenever the company has that many business servers.
    biz = [h for h in hosts if h.role in ("app", "db", "cluster")]
    unpatched = [h for h in biz if h.vulnerable]
    for h in biz:
        if len(unpatched) >= 8:
            break
        if not h.vulnerable:
            h.os, h.patched = "2008r2", False
            unpatched.append(h)
    return Company("Example Manufacturing Co.", "CORP", hosts, server_subnets + pc_subnets)
