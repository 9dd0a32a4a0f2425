"""Host command output as the real tools write it, in English or Chinese, and encoded the
way each collection method leaves it on disk (formats.md sections 0-3, 6):

- `cmd`: `netstat -ano > f`, `tasklist /v /fo csv > f`, `systeminfo > f` in the OEM code page
  (GBK on zh-CN, CP437 on en-US); `wmic ... /format:csv > f` in UTF-16LE with a BOM;
- `powershell`: the same commands redirected by Windows PowerShell 5.1: UTF-16LE with a BOM,
  and wmic's piped `\\r\\r\\n` line ends;
- `console-copy`: pasted from a console window: the prompt echoed, lines padded to the
  window width, saved as UTF-8.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from pathlib import Path

from wormhunt.simulate.company import OSES, Host
from wormhunt.simulate.hostview import APPDIAG, HostState
from wormhunt.sources.text import display_width

OEM = {"zh-CN": "gbk", "en-US": "cp437"}
WMIC_COLUMNS = "CommandLine,CreationDate,ExecutablePath,Name,ParentProcessId,ProcessId"


def _clock(ts: float, tz_min: int) -> time.struct_time:
    return time.gmtime(int(ts) + tz_min * 60)


def netstat(st: HostState) -> str:
    zh = st.host.locale == "zh-CN"
    out = ["", "活动连接" if zh else "Active Connections", ""]
    out.append(
        "  协议  本地地址          外部地址        状态           PID"
        if zh
        else "  Proto  Local Address          Foreign Address        State           PID"
    )
    for s in st.socks:
        state = s.state or ""
        out.append(f"  {s.proto:<7}{s.local:<23}{s.remote:<23}{state:<16}{s.pid}")
    return "\n".join(out) + "\n"


def tasklist_csv(st: HostState) -> str:
    zh = st.host.locale == "zh-CN"
    header = (
        ["映像名称", "PID", "会话名", "会话#", "内存使用", "状态", "用户名", "CPU 时间", "窗口标题"]
        if zh
        else [
            "Image Name",
            "PID",
            "Session Name",
            "Session#",
            "Mem Usage",
            "Status",
            "User Name",
            "CPU Time",
            "Window Title",
        ]
    )
    na = "暂缺" if zh else "N/A"
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writerow(header)
    for p in st.procs:
        if p.hidden:
            continue
        w.writerow(
            [
                p.name[:25],
                p.pid,
                "Console" if p.session else "Services",
                p.session,
                f"{p.mem_kb:,} K",
                "Unknown" if p.session == 0 else "Running",
                p.user if p.user != "N/A" else na,
                p.cpu,
                na,
            ]
        )
    return buf.getvalue()


def tasklist_svc(st: HostState) -> str:
    """`tasklist /svc`: services wrap at 44 characters onto lines indented 35 spaces."""
    zh = st.host.locale == "zh-CN"
    out = ["", ("映像名称                       PID 服务" if zh else "Image Name                     PID Services")]
    out.append("========================= ======== ============================================")
    na = "暂缺" if zh else "N/A"
    for p in st.procs:
        if p.hidden:
            continue
        names = st.services.get(p.pid)
        chunks: list[str] = []
        line = ""
        for i, svc in enumerate(names or []):
            piece = svc + ("," if i + 1 < len(names) else "")
            if line and len(line) + 1 + len(piece) > 44:
                chunks.append(line)
                line = piece
            else:
                line = f"{line} {piece}" if line else piece
        chunks.append(line or na)
        out.append(f"{p.name[:25]:<25} {p.pid:>8} {chunks[0]}")
        out += [" " * 35 + c for c in chunks[1:]]
    return "\n".join(out) + "\n"


def wmic_csv(st: HostState, tz_min: int) -> str:
    """`wmic process get CommandLine,CreationDate,ExecutablePath,Name,ParentProcessId,ProcessId /format:csv`."""
    node = st.host.name
    lines = ["", "Node,CommandLine,CreationDate,ExecutablePath,Name,ParentProcessId,ProcessId"]
    for p in st.procs:
        if p.hidden:
            continue
        if p.pid in (0, 4):
            created = ""
        else:
            t = _clock(p.created, tz_min)
            created = (
                f"{t.tm_year:04d}{t.tm_mon:02d}{t.tm_mday:02d}{t.tm_hour:02d}{t.tm_min:02d}{t.tm_sec:02d}"
                f".{int(p.created * 1e6) % 1000000:06d}{'+' if tz_min >= 0 else '-'}{abs(tz_min):03d}"
            )
        lines.append(f"{node},{p.cmd or ''},{created},{p.path or ''},{p.name},{p.ppid},{p.pid}")
    return "\n".join(lines) + "\n"


def _label(label: str, width: int) -> str:
    return label + ":" + " " * max(1, width - display_width(label) - 1)


def systeminfo(st: HostState, collect_ts: float) -> str:
    h: Host = st.host
    zh = h.locale == "zh-CN"
    os_info = OSES[h.os]
    fixes = _fixes(h)
    boot = _clock(st.boot_ts, h.tz_offset_min)
    inst = _clock(st.boot_ts - 400 * 86400, h.tz_offset_min)
    if zh:
        width, na = 18, "暂缺"

        def d(t: time.struct_time) -> str:
            return f"{t.tm_year}/{t.tm_mon}/{t.tm_mday}, {t.tm_hour}:{t.tm_min:02d}:{t.tm_sec:02d}"

        version = os_info["version"].replace("N/A", na)
        rows = [
            ("主机名", h.name),
            ("OS 名称", os_info["name_zh"]),
            ("OS 版本", version),
            ("OS 制造商", "Microsoft Corporation"),
            ("OS 配置", "成员服务器" if h.server else "成员工作站"),
            ("OS 构件类型", "Multiprocessor Free"),
            ("注册的所有人", "Windows 用户"),
            ("注册的组织", ""),
            ("产品 ID", "00486-001-0001076-84048"),
            ("初始安装日期", d(inst)),
            ("系统启动时间", d(boot)),
            ("系统制造商", "VMware, Inc." if h.server else "LENOVO"),
            ("系统型号", "VMware Virtual Platform" if h.server else "ThinkCentre M720"),
            ("系统类型", "x64-based PC"),
        ]
        tail = [
            ("Windows 目录", r"C:\Windows"),
            ("系统目录", r"C:\Windows\system32"),
            ("启动设备", r"\Device\HarddiskVolume1"),
            ("系统区域设置", "zh-cn;中文(中国)"),
            ("输入法区域设置", "zh-cn;中文(中国)"),
            ("时区", "(UTC+08:00)北京，重庆，香港特别行政区，乌鲁木齐"),
            ("物理内存总量", "16,383 MB"),
            ("可用的物理内存", "7,201 MB"),
            ("虚拟内存: 最大值", "32,765 MB"),
            ("虚拟内存: 可用", "20,113 MB"),
            ("虚拟内存: 使用中", "12,652 MB"),
            ("页面文件位置", r"C:\pagefile.sys"),
            ("域", "corp.example.com"),
            ("登录服务器", rf"\\{h.name}"),
        ]
        hotfix_head = ("修补程序", f"安装了 {len(fixes)} 个修补程序。")
        nic = ("网卡", "安装了 1 个 NIC。")
        nic_lines = [
            "[01]: Intel(R) PRO/1000 MT Network Connection",
            "    连接名:      本地连接",
            "    启用 DHCP:   否",
            "    IP 地址",
            f"      [01]: {h.ip}",
        ]
        hyperv = ("Hyper-V 要求", "已检测到虚拟机监控程序。将不显示 Hyper-V 所需的功能。")
        proc = ("处理器", "安装了 1 个处理器。")
        bios = ("BIOS 版本", "Phoenix Technologies LTD 6.00, 2018/4/13")
    else:
        width, na = 27, "N/A"

        def d(t: time.struct_time) -> str:
            hour = t.tm_hour % 12 or 12
            ampm = "PM" if t.tm_hour >= 12 else "AM"
            return f"{t.tm_mon}/{t.tm_mday}/{t.tm_year}, {hour}:{t.tm_min:02d}:{t.tm_sec:02d} {ampm}"

        rows = [
            ("Host Name", h.name),
            ("OS Name", os_info["name_en"]),
            ("OS Version", os_info["version"]),
            ("OS Manufacturer", "Microsoft Corporation"),
            ("OS Configuration", "Member Server" if h.server else "Member Workstation"),
            ("OS Build Type", "Multiprocessor Free"),
            ("Registered Owner", "Windows User"),
            ("Registered Organization", ""),
            ("Product ID", "00486-001-0001076-84048"),
            ("Original Install Date", d(inst)),
            ("System Boot Time", d(boot)),
            ("System Manufacturer", "VMware, Inc." if h.server else "LENOVO"),
            ("System Model", "VMware Virtual Platform" if h.server else "ThinkCentre M720"),
            ("System Type", "x64-based PC"),
        ]
        tail = [
            ("Windows Directory", r"C:\Windows"),
            ("System Directory", r"C:\Windows\system32"),
            ("Boot Device", r"\Device\HarddiskVolume1"),
            ("System Locale", "en-us;English (United States)"),
            ("Input Locale", "en-us;English (United States)"),
            ("Time Zone", "(UTC+08:00) Beijing, Chongqing, Hong Kong, Urumqi"),
            ("Total Physical Memory", "16,383 MB"),
            ("Available Physical Memory", "7,201 MB"),
            ("Virtual Memory: Max Size", "32,765 MB"),
            ("Virtual Memory: Available", "20,113 MB"),
            ("Virtual Memory: In Use", "12,652 MB"),
            ("Page File Location(s)", r"C:\pagefile.sys"),
            ("Domain", "corp.example.com"),
            ("Logon Server", rf"\\{h.name}"),
        ]
        hotfix_head = ("Hotfix(s)", f"{len(fixes)} Hotfix(s) Installed.")
        nic = ("Network Card(s)", "1 NIC(s) Installed.")
        nic_lines = [
            "[01]: Intel(R) PRO/1000 MT Network Connection",
            "      Connection Name: Local Area Connection",
            "      DHCP Enabled:    No",
            "      IP address(es)",
            f"      [01]: {h.ip}",
        ]
        hyperv = (
            "Hyper-V Requirements",
            "A hypervisor has been detected. Features required for Hyper-V will not be displayed.",
        )
        proc = ("Processor(s)", "1 Processor(s) Installed.")
        bios = ("BIOS Version", "Phoenix Technologies LTD 6.00, 4/13/2018")
    pad = " " * width
    out = [""]
    out += [_label(k, width) + v for k, v in rows]
    out.append(_label(*proc[:1], width) + proc[1])
    out.append(pad + "[01]: Intel64 Family 6 Model 85 Stepping 4 GenuineIntel ~2195 Mhz")
    out.append(_label(bios[0], width) + bios[1])
    out += [_label(k, width) + v for k, v in tail]
    out.append(_label(hotfix_head[0], width) + hotfix_head[1])
    out += [f"{pad}[{i:02d}]: {kb}" for i, kb in enumerate(fixes, 1)]
    out.append(_label(nic[0], width) + nic[1])
    out += [pad + line for line in nic_lines]
    out.append(_label(hyperv[0], width) + hyperv[1])
    return "\n".join(out) + "\n"


# Services a 2008 R2 host runs outside svchost, with their image paths (for `sc qc`).
_OWN_PROCESS = {"Spooler": r"C:\Windows\System32\spoolsv.exe", "KeyIso": r"C:\Windows\system32\lsass.exe",
                "SamSs": r"C:\Windows\system32\lsass.exe"}  # fmt: skip


def sc_qc(st: HostState) -> str:
    """`sc qc <name>` for every service the host runs, one output after another."""
    ok = "成功" if st.host.locale == "zh-CN" else "SUCCESS"
    by_pid = {p.pid: p for p in st.procs}
    out = []
    for pid, names in sorted(st.services.items()):
        proc = by_pid.get(pid)
        for name in names:
            info = st.service_info.get(name, {})
            path = (
                info.get("path")
                or _OWN_PROCESS.get(name)
                or (proc.cmd if proc and proc.cmd else rf"C:\Windows\system32\{name}.exe")
            )
            out += _qc(ok, name, path, info)
    for name in st.drivers:
        out += _qc(ok, name, st.service_info[name]["path"], st.service_info[name])
    return "\n".join(out)


def _qc(ok: str, name: str, path: str, info: dict[str, str]) -> list[str]:
    shared = "svchost.exe" in path.lower()
    kind = info.get("type") or ("20  WIN32_SHARE_PROCESS" if shared else "10  WIN32_OWN_PROCESS")
    driver = "DRIVER" in kind
    return [
        f"[SC] QueryServiceConfig {ok}",
        "",
        f"SERVICE_NAME: {name}",
        f"        TYPE               : {kind}",
        "        START_TYPE         : " + ("3   DEMAND_START" if driver else "2   AUTO_START"),
        "        ERROR_CONTROL      : 1   NORMAL",
        f"        BINARY_PATH_NAME   : {path}",
        "        LOAD_ORDER_GROUP   :",
        "        TAG                : 0",
        f"        DISPLAY_NAME       : {info.get('display') or name}",
        "        DEPENDENCIES       :" + ("" if driver else " RPCSS"),
        "        SERVICE_START_NAME : " + ("" if driver else "LocalSystem"),
        "",
    ]


_TASK_HEADER = {
    "en-US": ["HostName", "TaskName", "Next Run Time", "Status", "Logon Mode", "Last Run Time", "Last Result",
              "Author", "Task To Run", "Start In", "Comment", "Scheduled Task State", "Idle Time", "Power Management",
              "Run As User", "Delete Task If Not Rescheduled", "Stop Task If Runs X Hours and X Mins", "Schedule",
              "Schedule Type", "Start Time", "Start Date", "End Date", "Days", "Months", "Repeat: Every",
              "Repeat: Until: Time", "Repeat: Until: Duration", "Repeat: Stop If Still Running"],
    "zh-CN": ["主机名", "任务名", "下次运行时间", "模式", "登录状态", "上次运行时间", "上次结果", "创建者",
              "要运行的任务", "起始于", "注释", "计划任务状态", "空闲时间", "电源管理", "作为用户运行",
              "删除没有计划的任务",
              "如果运行了 X 小时 X 分钟，停止任务", "计划", "计划类型", "开始时间", "开始日期", "结束日期", "天", "月",
              "重复: 每", "重复: 截止: 时间", "重复: 截止: 持续时间", "重复: 如果还在运行，停止"],
}  # fmt: skip
_BENIGN_TASKS = [
    (r"\Microsoft\Windows\Defrag\ScheduledDefrag", r"%windir%\system32\defrag.exe -c"),
    (r"\Microsoft\Windows\Customer Experience Improvement Program\Consolidator",
     r"%SystemRoot%\System32\wsqmcons.exe"),
    (r"\Microsoft\Windows\RAC\RacTask", "COM handler"),
]  # fmt: skip


def schtasks_csv(st: HostState) -> str:
    """`schtasks /query /fo csv /v`: the benign Windows tasks plus whatever the host has."""
    zh = st.host.locale == "zh-CN"
    ready, enabled, na = ("就绪", "已启用", "N/A") if zh else ("Ready", "Enabled", "N/A")
    date = "2019/3/22 3:00:00" if zh else "3/22/2019 3:00:00 AM"
    rows = [_TASK_HEADER["zh-CN" if zh else "en-US"]]
    tasks = [(n, r) for n, r in _BENIGN_TASKS] + [(t["name"], t["run"] or na) for t in st.tasks]
    for name, run in tasks:
        row = [st.host.name, name, date, ready, "Interactive/Background", date, "0", "Microsoft Corporation", run,
               na, na, enabled, "Disabled", na, "SYSTEM", "Disabled", "72:00:00", na, "Daily", "3:00:00",
               "1/1/2018", na, "Every 1 day(s)", na, "Disabled", "Disabled", "Disabled", "Disabled"]  # fmt: skip
        rows.append(row)
    return "\n".join(",".join(f'"{c}"' for c in r) for r in rows) + "\n"


def _fixes(h: Host) -> list[str]:
    """The host's installed updates: what `systeminfo`, `wmic qfe` and `Get-HotFix` all list."""
    os_info = OSES[h.os]
    return list(os_info["fixes"]) + (list(os_info["ms17010"]) if h.patched else [])


def fake_sha256(path: str, host: str = "") -> str:
    """A stable stand-in for the SHA-256 of a file, derived from its path: the same malware file hashes
    alike on every host. The EternalBlue config (`svchost.xml`) is rewritten for each target, so its
    hash also depends on the host."""
    salt = host if path.lower().endswith("\\svchost.xml") else ""
    return hashlib.sha256(f"wormhunt-sim:{path.lower()}:{salt}".encode()).hexdigest()


def _fake_size(path: str) -> int:
    n = int(fake_sha256(path)[:8], 16)
    return 1024 + n % 16_000 if path.lower().endswith(".xml") else 40_960 + n % 5_000_000


# WannaMine 3.0 forges the creation time of its AppDiagnostics files (incident.md): 2017-04-15.
_FORGED = (2017, 4, 15, 3, 12)


def dir_appdiag(st: HostState, empty_outputs: bool = False) -> str | None:
    """`dir /s /t:c C:\\Windows\\AppDiagnostics`; None when the folder is absent (clean hosts), unless
    `empty_outputs`: then what cmd prints there, the volume banner and `File Not Found` / `找不到文件`."""
    return dir_listing(st, APPDIAG, empty_outputs)


def dir_not_found(st: HostState) -> str:
    """`dir /s` of a folder that does not exist: the volume banner, a blank line, `File Not Found`."""
    zh = st.host.locale == "zh-CN"
    serial = fake_sha256(st.host.name)[:8].upper()
    return (
        "\n".join(
            [
                " 驱动器 C 中的卷没有标签。" if zh else " Volume in drive C has no label.",
                f" 卷的序列号是 {serial[:4]}-{serial[4:]}"
                if zh
                else f" Volume Serial Number is {serial[:4]}-{serial[4:]}",
                "",
                "找不到文件" if zh else "File Not Found",
            ]
        )
        + "\n"
    )


def dir_listing(st: HostState, folder: str, empty_outputs: bool = False) -> str | None:
    """`dir /s /t:c <folder>` of one of the worm's working folders (only its files, one level)."""
    files = sorted((p for p in st.files if p.lower().startswith(folder.lower() + "\\")), key=str.lower)
    if not files:
        return dir_not_found(st) if empty_outputs else None
    zh = st.host.locale == "zh-CN"
    y, mo, d, hh, mi = _FORGED
    if zh:
        stamp = f"{y:04d}/{mo:02d}/{d:02d}  {hh:02d}:{mi:02d}"
    else:
        stamp = f"{mo:02d}/{d:02d}/{y:04d}  {hh % 12 or 12:02d}:{mi:02d} {'PM' if hh >= 12 else 'AM'}"
    total = sum(_fake_size(p) for p in files)
    serial = fake_sha256(st.host.name)[:8].upper()
    free = f"{40_000_000_000 + int(serial, 16) % 20_000_000_000:,}"
    out = [
        " 驱动器 C 中的卷没有标签。" if zh else " Volume in drive C has no label.",
        f" 卷的序列号是 {serial[:4]}-{serial[4:]}" if zh else f" Volume Serial Number is {serial[:4]}-{serial[4:]}",
        "",
        f" {folder} 的目录" if zh else f" Directory of {folder}",
        "",
        f"{stamp}    <DIR>          .",
        f"{stamp}    <DIR>          ..",
    ]
    out += [f"{stamp}    {_fake_size(p):>14,} {p.rsplit(chr(92), 1)[1]}" for p in files]
    n = len(files)
    count = f"{n:>16} 个文件 {total:>14,} 字节" if zh else f"{n:>16} File(s) {total:>14,} bytes"
    out += [count, "", "     所列文件总数:" if zh else "     Total Files Listed:", count]
    out.append(f"{2:>16} 个目录 {free} 可用字节" if zh else f"{2:>16} Dir(s)  {free} bytes free")
    return "\n".join(out) + "\n"


def certutil_sha256(st: HostState) -> str | None:
    """`certutil -hashfile <f> SHA256` for each malware file, run one after another.

    Windows 7 / 2008 R2 certutil prints the digest as space-separated byte pairs; zh-CN
    builds of that age word the header `SHA256 的 文件 <path> 哈希:`."""
    if not st.files:
        return None
    zh = st.host.locale == "zh-CN"
    old = st.host.os in ("2008r2", "win7")
    out = []
    for path in st.files:
        digest = fake_sha256(path, st.host.name)
        if zh:
            out.append(f"SHA256 的 文件 {path} 哈希:" if old else f"SHA256 的 {path} 哈希:")
        else:
            out.append(f"SHA256 hash of file {path}:" if old else f"SHA256 hash of {path}:")
        out.append(" ".join(digest[i : i + 2] for i in range(0, 64, 2)) if old else digest)
        done = "CertUtil: -hashfile 命令成功完成。" if zh else "CertUtil: -hashfile command completed successfully."
        out.append(done)
    return "\n".join(out) + "\n"


def portproxy(st: HostState, empty_outputs: bool = False) -> str | None:
    """`netsh interface portproxy show all`; without a forward netsh prints nothing: None, or with
    `empty_outputs` an empty file (ingest records it as empty)."""
    if not st.portproxy:
        return "" if empty_outputs else None
    zh = st.host.locale == "zh-CN"
    out = [
        "",
        "侦听 ipv4:                 连接到 ipv4:" if zh else "Listen on ipv4:             Connect to ipv4:",
        "",
        (
            "地址            端口        地址            端口"
            if zh
            else "Address         Port        Address         Port"
        ),
        "--------------- ----------  --------------- ----------",
    ]
    out += [f"{a:<15} {p:<11} {ca:<15} {cp}" for a, p, ca, cp in st.portproxy]
    return "\n".join(out) + "\n\n"


def net_user(st: HostState) -> str:
    """`net user`: names in 25-character columns, three to a line."""
    zh = st.host.locale == "zh-CN"
    out = ["", rf"\\{st.host.name} 的用户帐户" if zh else rf"User accounts for \\{st.host.name}", "", "-" * 79]
    names = st.accounts
    for i in range(0, len(names), 3):
        out.append("".join(f"{n:<25}" for n in names[i : i + 3]))
    out += ["命令成功完成。" if zh else "The command completed successfully.", ""]
    return "\n".join(out) + "\n"


_QFE_COLUMNS = "Caption,CSName,Description,FixComments,HotFixID,InstallDate,InstalledBy,InstalledOn,Name," \
    "ServicePackInEffect,Status"  # fmt: skip


def _fix_date(kb: str, i: int) -> tuple[int, int, int]:
    """Install date of an update: the MS17-010 ones after their March 2017 release, the rest earlier."""
    n = int(kb[2:]) if kb[2:].isdigit() else i
    if kb.startswith("KB40121"):
        return 2017, 3, 15 + n % 14
    return 2015 + n % 2, 1 + n % 12, 1 + n % 28


def hotfixes(st: HostState) -> tuple[str, str]:
    """(tool, text): `wmic qfe list full /format:csv` from cmd and console, `Get-HotFix` CSV from PowerShell.

    Property names are not localized; InstalledOn follows the host's short date format."""
    h = st.host
    zh = h.locale == "zh-CN"
    fixes = _fixes(h)
    if h.collection == "powershell":
        buf = io.StringIO()
        w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
        w.writerow(["Source", "Description", "HotFixID", "InstalledBy", "InstalledOn"])
        for i, kb in enumerate(fixes):
            y, m, d = _fix_date(kb, i)
            when = f"{y}/{m}/{d} 0:00:00" if zh else f"{m}/{d}/{y} 12:00:00 AM"
            desc = "Security Update" if kb in OSES[h.os]["ms17010"] else "Update"
            w.writerow([h.name, desc, kb, "NT AUTHORITY\\SYSTEM", when])
        return "hotfix-ps", buf.getvalue()
    lines = ["", "Node," + _QFE_COLUMNS]
    for i, kb in enumerate(fixes):
        y, m, d = _fix_date(kb, i)
        when = f"{y}/{m}/{d}" if zh else f"{m}/{d}/{y}"
        desc = "Security Update" if kb in OSES[h.os]["ms17010"] else "Update"
        url = f"http://support.microsoft.com/?kbid={kb[2:]}"
        lines.append(f"{h.name},{url},{h.name},{desc},,{kb},,NT AUTHORITY\\SYSTEM,{when},,,")
    return "wmic-qfe", "\n".join(lines) + "\n"


def _format_list(props: list[tuple[str, str]], width: int = 119) -> list[str]:
    """One object as PowerShell Format-List prints it: names padded to the longest, long values
    wrapped at the console width onto lines indented to the value column (inside tokens too)."""
    pad = max(len(k) for k, _ in props)
    out = []
    for key, value in props:
        head = f"{key:<{pad}} : "
        room = width - len(head)
        if not value:
            out.append(f"{key:<{pad}} :")
            continue
        chunks = [value[i : i + room] for i in range(0, len(value), room)]
        out.append(head + chunks[0])
        out += [" " * len(head) + c for c in chunks[1:]]
    return out


def wmi_subscriptions(st: HostState) -> str:
    """`Get-WmiObject -Namespace root\\subscription -Class __EventFilter`, then `__EventConsumer`,
    then `__FilterToConsumerBinding`: Format-List, objects two blank lines apart (formats.md 7.1).

    Every host has Windows' own SCM Event Log filter, consumer and binding; WannaMine 3.0 adds none."""
    node = st.host.name
    ns = r"ROOT\Subscription"

    def system(cls: str, sup: str, relpath: str, count: int, deriv: str) -> list[tuple[str, str]]:
        return [
            ("__GENUS", "2"),
            ("__CLASS", cls),
            ("__SUPERCLASS", sup),
            ("__DYNASTY", "__SystemClass"),
            ("__RELPATH", relpath),
            ("__PROPERTY_COUNT", str(count)),
            ("__DERIVATION", deriv),
            ("__SERVER", node),
            ("__NAMESPACE", ns),
            ("__PATH", rf"\\{node}\{ns}:{relpath}"),
        ]

    filt = '__EventFilter.Name="SCM Event Log Filter"'
    cons = 'NTEventLogEventConsumer.Name="SCM Event Log Consumer"'
    binding = "__FilterToConsumerBinding.Consumer=" + '"' + cons.replace('"', '\\"') + '",Filter="'
    binding += filt.replace('"', '\\"') + '"'
    rel = "{__IndicationRelated, __SystemClass}"
    objects = [
        [
            *system("__EventFilter", "__IndicationRelated", filt, 6, rel),
            ("CreatorSID", "{1, 2, 0, 0...}"),
            ("EventAccess", ""),
            ("EventNamespace", r"root\cimv2"),
            ("Name", "SCM Event Log Filter"),
            ("Query", "select * from MSFT_SCMEventLogEvent"),
            ("QueryLanguage", "WQL"),
            ("PSComputerName", node),
        ],
        [
            *system("NTEventLogEventConsumer", "__EventConsumer", cons, 13,
                "{__EventConsumer, __IndicationRelated, __SystemClass}"),
            ("Category", "0"),
            ("CreatorSID", "{1, 2, 0, 0...}"),
            ("EventID", "0"),
            ("EventType", "1"),
            ("InsertionStringTemplates", "{}"),
            ("MachineName", ""),
            ("MaximumQueueSize", ""),
            ("Name", "SCM Event Log Consumer"),
            ("NameOfRawDataProperty", ""),
            ("NameOfUserSIDProperty", "sid"),
            ("NumberOfInsertionStrings", "0"),
            ("SourceName", "Service Control Manager"),
            ("UNCServerName", ""),
            ("PSComputerName", node),
        ],
        [
            *system("__FilterToConsumerBinding", "__IndicationRelated", binding, 7, rel),
            ("Consumer", cons),
            ("CreatorSID", "{1, 2, 0, 0...}"),
            ("DeliverSynchronously", "False"),
            ("DeliveryQoS", ""),
            ("Filter", filt),
            ("MaintainSecurityContext", "False"),
            ("SlowDownProviders", "False"),
            ("PSComputerName", node),
        ],
    ]  # fmt: skip
    for k, w in enumerate(st.wmi):
        # A fileless family's own set, listed by each Get-WmiObject after the built-in object of its class.
        f_rel = f'__EventFilter.Name="{w["filter"]}"'
        c_rel = f'CommandLineEventConsumer.Name="{w["consumer"]}"'
        b_rel = "__FilterToConsumerBinding.Consumer=" + '"' + c_rel.replace('"', '\\"') + '",Filter="'
        b_rel += f_rel.replace('"', '\\"') + '"'
        objects.insert(1 + k, [
            *system("__EventFilter", "__IndicationRelated", f_rel, 6, rel),
            ("CreatorSID", "{1, 5, 0, 0...}"),
            ("EventAccess", ""),
            ("EventNamespace", r"root\cimv2"),
            ("Name", w["filter"]),
            ("Query", w["query"]),
            ("QueryLanguage", "WQL"),
            ("PSComputerName", node),
        ])  # fmt: skip
        cons_props = {"CommandLineTemplate": w["command"], "CreateNewConsole": "False",
                      "CreateNewProcessGroup": "False", "CreateSeparateWowVdm": "False", "CreateSharedWowVdm": "False",
                      "CreatorSID": "{1, 5, 0, 0...}", "DesktopName": "", "ExecutablePath": "", "FillAttribute": "",
                      "ForceOffFeedback": "False", "ForceOnFeedback": "False", "KillTimeout": "0", "MachineName": "",
                      "MaximumQueueSize": "", "Name": w["consumer"], "Priority": "32", "RunInteractively": "False",
                      "ShowWindowCommand": "", "UseDefaultErrorMode": "False", "WindowTitle": "",
                      "WorkingDirectory": "", "XCoordinate": "", "XNumCharacters": "", "XSize": "", "YCoordinate": "",
                      "YNumCharacters": "", "YSize": ""}  # fmt: skip
        objects.insert(3 + 2 * k, [
            *system("CommandLineEventConsumer", "__EventConsumer", c_rel, 27,
                    "{__EventConsumer, __IndicationRelated, __SystemClass}"),
            *sorted(cons_props.items()),
            ("PSComputerName", node),
        ])  # fmt: skip
        objects.append([
            *system("__FilterToConsumerBinding", "__IndicationRelated", b_rel, 7, rel),
            ("Consumer", c_rel),
            ("CreatorSID", "{1, 5, 0, 0...}"),
            ("DeliverSynchronously", "False"),
            ("DeliveryQoS", ""),
            ("Filter", f_rel),
            ("MaintainSecurityContext", "False"),
            ("SlowDownProviders", "False"),
            ("PSComputerName", node),
        ])  # fmt: skip
    out = [""]
    for obj in objects:
        out += [*_format_list(obj), "", ""]
    return "\n".join(out) + "\n"


_AUTORUNS_HEADER = ["Time", "Entry Location", "Entry", "Enabled", "Category", "Profile", "Description", "Signer",
                    "Company", "Image Path", "Version", "Launch String", "MD5", "SHA-1", "PESHA-1", "PESHA-256",
                    "SHA-256", "IMP"]  # fmt: skip
_RUN = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run"
_SERVICES = r"HKLM\System\CurrentControlSet\Services"


def autoruns_csv(st: HostState) -> str:
    """`autorunsc -a * -c -h -s` (no `-t`: times in the host's short date format), benign entries and,
    on infected hosts, the snmpstorsrv service."""
    zh = st.host.locale == "zh-CN"

    def when(y: int, m: int, d: int, hh: int, mi: int) -> str:
        if zh:
            return f"{y}/{m}/{d} {hh}:{mi:02d}"
        return f"{m}/{d}/{y} {hh % 12 or 12}:{mi:02d} {'PM' if hh >= 12 else 'AM'}"

    def hashes(path: str) -> list[str]:
        h = fake_sha256(path).upper()
        return [h[:32], h[:40], h[24:64], h[::-1], h, h[8:40]]

    def key_time(ts: float) -> str:
        t = _clock(ts, st.host.tz_offset_min)
        return when(t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min)

    # Section rows carry each key's last write: OS install (as systeminfo shows it), a software
    # install some days later, and the last service change before the last boot.
    installed = st.boot_ts - 400 * 86400
    spread = int(fake_sha256(st.host.name)[:8], 16)
    run_written = installed + 86400 + spread % (300 * 86400)
    services_written = st.boot_ts - 86400 - (spread >> 8) % (20 * 86400)
    ms, verified = "Microsoft Corporation", "(Verified) Microsoft Windows"
    rows: list[list[str]] = [[key_time(installed), "HKLM\\System\\CurrentControlSet\\Control\\Session Manager\\"
                              "BootExecute", *[""] * 16]]  # fmt: skip
    rows.append([when(2009, 7, 14, 1, 39), rows[0][1], "autocheck autochk *", "enabled", "Boot Execute",
                 "System-wide", "Auto Check Utility", verified, ms, r"c:\windows\system32\autochk.exe",
                 "6.1.7600.16385", "autocheck autochk *", *hashes(r"c:\windows\system32\autochk.exe")])  # fmt: skip
    rows.append([key_time(run_written), _RUN, *[""] * 16])
    if st.host.server:
        vm = r"c:\program files\vmware\vmware tools\vmtoolsd.exe"
        rows.append([when(2018, 4, 13, 10, 5), _RUN, "VMware User Process", "enabled", "Logon", "System-wide",
                     "VMware Tools Core Service", "(Verified) VMware, Inc.", "VMware, Inc.", vm, "10.2.5.3619",
                     rf'"{vm}" -n vmusr', *hashes(vm)])  # fmt: skip
    for name, cmd in st.run_values:
        image = cmd.split(" ")[0].lower()
        rows.append([key_time(st.boot_ts - 3600), _RUN, name, "enabled", "Logon", "System-wide", "",
                     "(Not verified) ", "", image, "", cmd, *hashes(image)])  # fmt: skip
    rows.append([key_time(services_written), _SERVICES, *[""] * 16])
    spool = r"c:\windows\system32\spoolsv.exe"
    rows.append([when(2010, 11, 20, 21, 29), _SERVICES, "Spooler", "enabled", "Services", "System-wide",
                 "Print Spooler: Loads files to memory for later printing.", verified, ms, spool,
                 "6.1.7601.17514", r"C:\Windows\System32\spoolsv.exe", *hashes(spool)])  # fmt: skip
    if "snmpstorsrv" in {s for names in st.services.values() for s in names}:
        dll = r"c:\windows\system32\snmpstorsrv.dll"
        rows.append([when(2017, 4, 15, 3, 12), _SERVICES, "snmpstorsrv", "enabled", "Services", "System-wide",
                     "snmpstorsrv: Simple Network Management Protocol (SNMP) Storage Service", "(Not verified) ",
                     "", dll, "", r"C:\Windows\System32\svchost.exe -k netsvcs", *hashes(dll)])  # fmt: skip
    for name, info in st.service_info.items():
        launch = info.get("path") or r"C:\Windows\System32\svchost.exe -k netsvcs"
        image = (info.get("dll") or launch.removeprefix("\\??\\").split(" ")[0]).lower()
        category = "Drivers" if name in st.drivers else "Services"
        rows.append([key_time(st.boot_ts - 7200), _SERVICES, name, "enabled", category, "System-wide",
                     info.get("description") or name, "(Not verified) ", "", image, "", launch,
                     *hashes(image)])  # fmt: skip
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_AUTORUNS_HEADER)
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def encode(text: str, host: Host, tool: str) -> bytes:
    """Bytes on disk for `text` collected from `host` by its collection method."""
    if tool == "autoruns":
        # autorunsc writes its CSV as UTF-16LE itself, however it is redirected.
        return b"\xff\xfe" + text.replace("\n", "\r\n").encode("utf-16-le")
    if host.collection == "powershell":
        body = text.replace("\n", "\r\r\n" if tool in ("wmic", "wmic-qfe") else "\r\n")
        return b"\xff\xfe" + body.encode("utf-16-le")
    if host.collection == "console-copy":
        prompt = {
            "netstat": "netstat -ano",
            "tasklist": "tasklist /v /fo csv",
            "tasklist-svc": "tasklist /svc",
            "systeminfo": "systeminfo",
            "wmic": "wmic process get " + WMIC_COLUMNS + " /format:csv",
            "sc": "for /f %s in (services.txt) do sc qc %s",
            "schtasks": "schtasks /query /fo csv /v",
            "dir": r"dir /s /t:c C:\Windows\AppDiagnostics",
            "certutil": "for %f in (files.txt) do certutil -hashfile %f SHA256",
            "portproxy": "netsh interface portproxy show all",
            "net-user": "net user",
            "wmic-qfe": "wmic qfe list full /format:csv",
            "wmi": 'powershell -c "Get-WmiObject -Namespace root\\subscription -Class __EventFilter; '
            "Get-WmiObject -Namespace root\\subscription -Class __EventConsumer; "
            'Get-WmiObject -Namespace root\\subscription -Class __FilterToConsumerBinding"',
        }.get(tool) or rf"dir /s /t:c {tool.removeprefix('dir:')}"
        width = 120
        lines = [f"C:\\Windows\\system32>{prompt}", *text.split("\n")]
        padded = [ln + " " * max(0, width - display_width(ln)) if ln else ln for ln in lines]
        return "\r\n".join(padded).encode("utf-8")
    if tool in ("wmic", "wmic-qfe"):
        return b"\xff\xfe" + text.replace("\n", "\r\n").encode("utf-16-le")
    return text.replace("\n", "\r\n").encode(OEM[host.locale], errors="replace")


def write_bundle(st: HostState, collect_ts: float, folder: Path, empty_outputs: bool = False) -> list[Path]:
    """One host's files. `empty_outputs`: also write what the commands print when there is nothing to show
    (`File Not Found` for the AppDiagnostics listing, an empty portproxy file)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "netstat_ano.txt": ("netstat", netstat(st)),
        "tasklist_v.csv": ("tasklist", tasklist_csv(st)),
        "tasklist_svc.txt": ("tasklist-svc", tasklist_svc(st)),
        "systeminfo.txt": ("systeminfo", systeminfo(st, collect_ts)),
        "wmic_process.csv": ("wmic", wmic_csv(st, st.host.tz_offset_min)),
        "sc_qc.txt": ("sc", sc_qc(st)),
        "schtasks_v.csv": ("schtasks", schtasks_csv(st)),
        "dir_appdiagnostics.txt": ("dir", dir_appdiag(st, empty_outputs)),
        "certutil_sha256.txt": ("certutil", certutil_sha256(st)),
        "portproxy.txt": ("portproxy", portproxy(st, empty_outputs)),
        "net_user.txt": ("net-user", net_user(st)),
        "hotfixes.csv": hotfixes(st),
        "wmi_subscriptions.txt": ("wmi", wmi_subscriptions(st)),
        "autoruns.csv": ("autoruns", autoruns_csv(st)),
    }
    for d in st.dirs:  # the working folders of families other than WannaMine 3.0
        files[f"dir_{d.rsplit(chr(92), 1)[1].lower()}.txt"] = (f"dir:{d}", dir_listing(st, d))
    written = []
    for name, (tool, text) in files.items():
        if text is None:
            continue  # the command printed nothing a reader could recognise (see each writer)
        path = folder / name
        path.write_bytes(encode(text, st.host, tool))
        written.append(path)
    return written


def assets_csv(hosts: list[Host]) -> bytes:
    """The company's asset list as Excel would save it on a Chinese desktop (GBK)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["主机名", "IP地址", "操作系统", "角色", "负责人", "已安装杀毒", "厂商禁止杀毒"])
    from wormhunt.simulate.company import ROLES_ZH

    for h in hosts:
        w.writerow(
            [
                h.name,
                h.ip,
                OSES[h.os]["name_en"],
                ROLES_ZH[h.role],
                h.owner,
                "是" if h.av_installed else "否",
                "是" if h.av_forbidden else "否",
            ]
        )
    return buf.getvalue().encode("gbk")
