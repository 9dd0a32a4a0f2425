"""Live collection with psutil: a triage bundle of the machine wormhunt runs on.

Read-only. Outputs are written in the shapes of the Windows tools whose parsers already
exist (a `wmic process ... /format:csv` table, `netstat -ano`, `Get-FileHash` CSV), so a live
bundle and one collected by the Windows scripts go through the same parsers. On Windows the
native commands (services, tasks, WMI subscriptions ...) are run as well, as the scripts do.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from wormhunt import __version__

# Windows commands run in addition on Windows hosts: (output file, command line).
WINDOWS_COMMANDS = (
    ("systeminfo.txt", ["systeminfo"]),
    ("sc-queryex.txt", ["sc", "queryex", "type=", "service", "state=", "all"]),
    ("schtasks-v.csv", ["schtasks", "/query", "/fo", "csv", "/v"]),
    ("tasklist-v.csv", ["tasklist", "/v", "/fo", "csv"]),
    ("portproxy.txt", ["netsh", "interface", "portproxy", "show", "all"]),
    ("net-user.txt", ["net", "user"]),
    ("qfe.txt", ["wmic", "qfe", "list", "brief"]),
)
MAX_HASH_BYTES = 256 << 20  # images larger than this are listed without a hash


def _cim(ts: float) -> str:
    """CIM_DATETIME (`yyyymmddHHMMSS.ffffff+UUU`, local time and its offset in minutes)."""
    local = datetime.fromtimestamp(ts).astimezone()
    offset = int(local.utcoffset().total_seconds() // 60) if local.utcoffset() else 0
    return local.strftime("%Y%m%d%H%M%S.%f") + f"{'+' if offset >= 0 else '-'}{abs(offset):03d}"


def _endpoint(addr: Any) -> str:
    if not addr:
        return "*:*"
    ip, port = addr.ip, addr.port
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def processes_csv(host: str) -> tuple[str, list[str]]:
    """wmic-style process table and the list of image paths seen."""
    rows, images = [], []
    for p in psutil.process_iter(["pid", "ppid", "name", "exe", "cmdline", "create_time"]):
        info = p.info
        # One row per process: a line break inside an argument (python -c "...") is flattened.
        cmd = " ".join(info.get("cmdline") or []).replace("\r", " ").replace("\n", " ")
        exe = info.get("exe") or ""
        if exe:
            images.append(exe)
        created = _cim(info["create_time"]) if info.get("create_time") else ""
        # wmic never quotes: commas inside a command line are what the parser re-joins.
        rows.append(",".join([host, cmd, created, exe.replace(",", " "), info.get("name") or "",
                              str(info.get("ppid") or 0), str(info["pid"])]))  # fmt: skip
    header = "Node,CommandLine,CreationDate,ExecutablePath,Name,ParentProcessId,ProcessId"
    return "\r\n" + "\r\n".join([header, *rows]) + "\r\n", sorted(set(images))


def netstat_text() -> str:
    lines = ["", "Active Connections", "", "  Proto  Local Address          Foreign Address        State           PID"]
    try:
        conns = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        conns = []
    for c in sorted(conns, key=lambda c: (c.type, c.laddr or (), c.raddr or ())):
        proto = "TCP" if c.type == socket.SOCK_STREAM else "UDP"
        local = _endpoint(c.laddr)
        if proto == "TCP":
            remote = (
                _endpoint(c.raddr) if c.raddr else ("[::]:0" if ":" in (c.laddr.ip if c.laddr else "") else "0.0.0.0:0")
            )
            state = "LISTENING" if c.status == psutil.CONN_LISTEN else (c.status or "")
        else:
            remote, state = "*:*", ""
        lines.append(f"  {proto:<6} {local:<22} {remote:<22} {state:<15} {c.pid or 0}")
    return "\r\n".join(lines) + "\r\n"


def hashes_csv(images: list[str]) -> str:
    """`Get-FileHash | ConvertTo-Csv` shape for the running images."""
    out = io.StringIO()
    w = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    w.writerow(["Algorithm", "Hash", "Path"])
    for path in images:
        try:
            if os.path.getsize(path) > MAX_HASH_BYTES:
                continue
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
        except OSError:
            continue
        w.writerow(["SHA256", h.hexdigest().upper(), path])
    return out.getvalue()


def collect(out: Path) -> Path:
    """Write a bundle of this machine to `out` (a folder, or a `.zip`); returns `out`."""
    host = socket.gethostname().split(".")[0]
    started = datetime.now().astimezone()
    work = Path(tempfile.mkdtemp(prefix="wormhunt-collect-"))
    commands: list[dict[str, Any]] = []
    try:
        procs, images = processes_csv(host)
        outputs = {
            "wmic-process.csv": (procs, "psutil: processes (wmic process /format:csv layout)"),
            "netstat-ano.txt": (netstat_text(), "psutil: connections (netstat -ano layout)"),
            "filehash.csv": (hashes_csv(images), "sha256 of running images (Get-FileHash CSV layout)"),
        }
        for name, (text, what) in outputs.items():
            (work / name).write_text(text, encoding="utf-8", newline="")
            commands.append({"command": what, "exit_code": 0, "output": name})
        if os.name == "nt":  # pragma: no cover - exercised on Windows only
            for name, argv in WINDOWS_COMMANDS:
                res = subprocess.run(argv, capture_output=True, timeout=300, check=False)
                (work / name).write_bytes(res.stdout)
                commands.append({"command": " ".join(argv), "exit_code": res.returncode, "output": name})
        ips = sorted(
            {
                a.address.split("%")[0]
                for addrs in psutil.net_if_addrs().values()
                for a in addrs
                if a.family in (socket.AF_INET, socket.AF_INET6)
            }
        )
        manifest = {
            "host": host,
            "ips": ips,
            "collected_at": started.isoformat(timespec="seconds"),
            "time_zone": time.tzname[0],
            "locale": os.environ.get("LANG", ""),
            "collector": {"name": "wormhunt collect", "version": __version__},
            "commands": commands,
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        if out.suffix.lower() == ".zip":
            out.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
                for f in sorted(work.iterdir()):
                    zf.write(f, f"{host}/{f.name}")
        else:
            out.mkdir(parents=True, exist_ok=True)
            for f in work.iterdir():
                shutil.copy2(f, out / f.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out
