"""Remote collection: triage bundles pulled over SSH (asyncssh) or WinRM (pypsrp), many hosts at once.

Each host gets one bundle folder `<out>/<address>_<port>/` in the layout of docs/bundle.md:

- **Windows over SSH** (Win32-OpenSSH, whose default shell is cmd.exe): every entry of
  `collect.windows.COMMANDS` is run as `cmd /c <command line>`; its stdout bytes are written as-is
  (OEM code page, UTF-16 for wmic: the parsers expect them) and its exit code is recorded in
  `manifest.json` exactly as the .ps1/.bat collectors record it.
- **Linux over SSH**: POSIX tools only (`ps`, `ss`, `readlink` on /proc, `sha256sum`), nothing
  installed or written on the host; the outputs are turned here into the same Windows-shaped
  files `collect.live` writes (wmic-process.csv, netstat-ano.txt, filehash.csv), so one set of
  parsers reads both. The raw outputs are not kept; the manifest names each remote command.
- **WinRM** (optional extra `wormhunt[winrm]`): the same COMMANDS through pypsrp's
  `Client.execute_cmd`; needs a Windows host (tested here at its boundaries only).

Which OS an SSH host runs is probed with `uname -s` (cmd.exe does not know it).

Every host has one time budget (`timeout`, seconds) shared by its attempts; connection failures
that may be transient (refused, reset, no route) are retried with exponential backoff inside that
budget, authentication and host key failures are not. A host whose folder already holds a complete
bundle is skipped (resume) only if its manifest names this target's address and port and its
outputs are plain file names. Bundles are written to a `<folder>.part-<random>` folder of their
own per attempt and renamed when complete; an attempt abandoned after its budget (a WinRM thread
cannot be stopped) discards its folder instead of renaming it. Remote output is read in chunks
with a cap per command (`MAX_OUTPUT`, SSH): beyond it the command is stopped and the manifest marks
its output `truncated`. The folder name of a target gets a short hash of the address when
sanitising changed it (IPv6, `/`) or it has upper-case letters, so two targets never share one.

Credentials (environment, keyring, prompt) are never logged, printed or written: every message
that leaves this module goes through `Credentials.scrub`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import getpass
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from wormhunt import __version__
from wormhunt.collect.windows import COMMANDS

ENV_USER = "WORMHUNT_SSH_USER"
ENV_PASSWORD = "WORMHUNT_SSH_PASSWORD"
ENV_KEY = "WORMHUNT_SSH_KEY"
ENV_PASSPHRASE = "WORMHUNT_SSH_KEY_PASSPHRASE"
ENV_KNOWN_HOSTS = "WORMHUNT_SSH_KNOWN_HOSTS"
KEYRING_SERVICE = "wormhunt"
COMMAND_TIMEOUT = 300  # one command on the host, inside the host budget anyway
MAX_OUTPUT = 256 * 1024 * 1024  # bytes kept of one command's output (SSH); the rest is cut, marked truncated
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,200}")


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    protocol: str  # "ssh" or "winrm"

    @property
    def key(self) -> str:
        """Folder name of this target's bundle (file-system safe, one per target: a short hash of
        the address is appended when sanitising changed it or it has upper-case letters)."""
        raw = f"{self.host}_{self.port}"
        key = re.sub(r"[^A-Za-z0-9._-]", "_", raw).strip(".")
        if key != raw or raw != raw.lower():
            key += "-" + hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        return key

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_targets(spec: str, protocol: str, default_port: int | None = None) -> list[Target]:
    """Targets from a file (one `host[:port]` a line, `#` comments) or a comma-separated list.
    IPv6 addresses with a port are written `[addr]:port`. Duplicates are dropped."""
    port0 = default_port or (22 if protocol == "ssh" else 5985)
    path = Path(spec)
    items: Iterable[str]
    if path.is_file():
        items = (line.split("#", 1)[0] for line in path.read_text(encoding="utf-8-sig").splitlines())
    else:
        items = spec.split(",")
    out: list[Target] = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        host, port = item, port0
        if item.startswith("["):
            m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", item)
            if not m:
                raise ValueError(f"bad host entry: {item!r}")
            host, port = m.group(1), int(m.group(2) or port0)
        elif item.count(":") == 1:
            host, _, p = item.partition(":")
            if not p.isdigit():
                raise ValueError(f"bad port in host entry: {item!r}")
            port = int(p)
        if not host or not 0 < port < 65536 or re.search(r"[\s/\\]", host):
            raise ValueError(f"bad host entry: {item!r}")
        t = Target(host, port, protocol)
        if t not in out:
            out.append(t)
    return out


# --------------------------------------------------------------------------- credentials


@dataclass
class Credentials:
    """Who to log in as. `repr` and `str` never show a secret; `scrub` removes them from any text."""

    user: str | None = None
    password: str | None = field(default=None, repr=False)
    key_path: str | None = None
    passphrase: str | None = field(default=None, repr=False)
    source: str = "none"  # env, keyring, prompt, none: where the password came from

    def secrets(self) -> list[str]:
        return [s for s in (self.password, self.passphrase) if s]

    def scrub(self, text: str) -> str:
        for s in sorted(self.secrets(), key=len, reverse=True):
            text = text.replace(s, "***")
        return text


def credentials(
    user: str | None = None,
    *,
    env: dict[str, str] | None = None,
    prompt: bool | None = None,
    use_keyring: bool = True,
) -> Credentials:
    """Credentials from, in order: the environment (WORMHUNT_SSH_USER, WORMHUNT_SSH_PASSWORD,
    WORMHUNT_SSH_KEY, WORMHUNT_SSH_KEY_PASSPHRASE), the system keyring (service `wormhunt`, only
    when the `keyring` package is installed), then a getpass prompt (only on a terminal, and only
    when neither a password nor a key was given)."""
    env = os.environ if env is None else env
    creds = Credentials(
        user=user or env.get(ENV_USER) or getpass.getuser(),
        password=env.get(ENV_PASSWORD) or None,
        key_path=env.get(ENV_KEY) or None,
        passphrase=env.get(ENV_PASSPHRASE) or None,
    )
    if creds.password:
        creds.source = "env"
    if not creds.password and use_keyring:
        with contextlib.suppress(Exception):  # keyring missing, no backend, locked: not an error
            import keyring  # type: ignore[import-not-found]

            pw = keyring.get_password(KEYRING_SERVICE, creds.user)
            if pw:
                creds.password, creds.source = pw, "keyring"
    if prompt is None:
        prompt = sys.stdin.isatty() and sys.stderr.isatty()
    if not creds.password and not creds.key_path and prompt:
        pw = getpass.getpass(f"Password for {creds.user}: ")
        if pw:
            creds.password, creds.source = pw, "prompt"
    return creds


# --------------------------------------------------------------------------- results and bundles


@dataclass
class Result:
    target: Target
    status: str  # collected, skipped (resume), unreachable
    bundle: Path | None = None
    reason: str | None = None
    os: str | None = None
    attempts: int = 0
    seconds: float = 0.0

    def unreachable(self) -> dict[str, Any]:
        return {"host": str(self.target), "reason": self.reason}


def complete_bundle(folder: Path, target: Target | None = None) -> bool:
    """A bundle whose manifest parses, whose listed outputs are plain file names that all exist
    in the folder, and (with `target`) whose manifest names that target's address and port."""
    try:
        doc = json.loads((folder / "manifest.json").read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return False
    if not isinstance(doc, dict):
        return False
    cmds = doc.get("commands")
    if target is not None:
        rem = doc.get("remote")
        if not (isinstance(rem, dict) and rem.get("address") == target.host and rem.get("port") == target.port):
            return False
    return bool(doc.get("host") and isinstance(cmds, list) and cmds) and all(
        isinstance(c, dict) and isinstance(c.get("output"), str) and _PLAIN_NAME.fullmatch(c["output"]) is not None
        and (folder / c["output"]).is_file() and not (folder / c["output"]).is_symlink()
        for c in cmds
    )  # fmt: skip


class _Abandoned(Exception):
    pass


def _write_bundle(folder: Path, manifest: dict[str, Any], files: dict[str, bytes],
                  abandoned: threading.Event | None = None) -> Path:  # fmt: skip
    """Write into a `.part-<random>` folder of this attempt, then rename it over `folder`, unless
    the attempt was `abandoned` meanwhile (its folder is then removed)."""
    part = folder.with_name(f"{folder.name}.part-{secrets.token_hex(6)}")
    part.mkdir(parents=True)
    try:
        for name, data in files.items():
            if not _PLAIN_NAME.fullmatch(name):
                raise ValueError(f"not a plain output name: {name!r}")
            (part / name).write_bytes(data)
        (part / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        if abandoned is not None and abandoned.is_set():
            raise _Abandoned("the attempt was abandoned after its time budget")
        if folder.exists():
            shutil.rmtree(folder)
        part.rename(folder)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    return folder


def _safe_host(name: str, fallback: str) -> str:
    """A host name read from the remote host, reduced to letters, digits, `-` and `_` (it goes into
    CSV rows and the manifest: no separator, quote or line break)."""
    return re.sub(r"[^A-Za-z0-9_-]", "", name)[:63] or re.sub(r"[^A-Za-z0-9_.:-]", "_", fallback)[:63]


def _manifest(host: str, target: Target, started: datetime, name: str, commands: list[dict[str, Any]]) -> dict:
    return {
        "host": host,
        "ips": [target.host] if re.fullmatch(r"[0-9.]+|[0-9A-Fa-f:]+", target.host) else [],
        "collected_at": started.isoformat(timespec="seconds"),
        "collector": {"name": name, "version": __version__},
        "remote": {"protocol": target.protocol, "address": target.host, "port": target.port},
        "commands": commands,
    }


# --------------------------------------------------------------------------- error reasons


class _HostKeyUnknown(Exception):
    pass


class _Unreachable(Exception):
    def __init__(self, reason: str, retry: bool) -> None:
        super().__init__(reason)
        self.reason, self.retry = reason, retry


def _reason(exc: BaseException, creds: Credentials) -> tuple[str, bool]:
    """(short reason, worth retrying) for an exception; the text is scrubbed of secrets."""
    import asyncssh

    if isinstance(exc, _Unreachable):
        return exc.reason, exc.retry
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout", False
    if isinstance(exc, asyncssh.PermissionDenied):
        return "auth failed", False
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        text = str(exc)
        return ("host key changed" if "changed" in text else "host key unknown"), False
    if isinstance(exc, asyncssh.KeyImportError | asyncssh.KeyEncryptionError):
        return creds.scrub(f"client key unreadable: {exc}")[:200], False
    if isinstance(exc, socket.gaierror):
        return "name not resolved", False
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused", True
    if isinstance(exc, ConnectionResetError | asyncssh.ConnectionLost | BrokenPipeError):
        return "connection reset", True
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return ("no route to host" if exc.errno == errno.EHOSTUNREACH else "network unreachable"), True
    if isinstance(exc, OSError) and exc.errno == errno.ETIMEDOUT:
        return "timeout", True
    if isinstance(exc, asyncssh.Error):
        return creds.scrub(f"ssh error: {exc.reason}")[:200], True
    return creds.scrub(f"{type(exc).__name__}: {exc}")[:200], False


# --------------------------------------------------------------------------- SSH


def _known_hosts_path(path: str | Path | None) -> Path:
    return Path(path or os.environ.get(ENV_KNOWN_HOSTS) or Path.home() / ".ssh" / "known_hosts")


def _ssh_client_factory(target: Target, known: Path, accept_new: bool, learned: list[Any]) -> Any:
    import asyncssh

    text = known.read_text(encoding="utf-8", errors="replace") if known.is_file() else ""
    db = asyncssh.import_known_hosts(text)
    trusted = asyncssh.match_known_hosts(db, target.host, target.host, target.port)[0]

    class Client(asyncssh.SSHClient):
        def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
            if trusted:  # the host is known under another key: never trust on first use
                learned.append("changed")
                return False
            if accept_new:
                learned.append(key)
                return True
            return False

    return Client, db


def _remember_key(known: Path, target: Target, key: Any) -> None:
    name = target.host if target.port == 22 else f"[{target.host}]:{target.port}"
    known.parent.mkdir(parents=True, exist_ok=True)
    line = f"{name} {key.export_public_key('openssh').decode().strip()}\n"
    with known.open("a", encoding="utf-8") as fh:
        fh.write(line)


# Linux: one session per command; the scripts only read /proc and run ps/ss.
_LINUX_PS = "ps -eo pid=,ppid=,lstart=,comm=,args= -ww"
_LINUX_EXE = (
    'for p in /proc/[0-9]*; do e=$(readlink "$p/exe" 2>/dev/null) && printf "%s\\t%s\\n" "${p#/proc/}" "$e"; done'
)
_LINUX_SS = "ss -tuanpH 2>/dev/null || ss -tuanp"


async def _ssh_collect(
    target: Target, creds: Credentials, out: Path, known: Path, accept_new: bool, attempt_timeout: float
) -> Result:
    import asyncssh

    learned: list[Any] = []
    client, db = _ssh_client_factory(target, known, accept_new, learned)
    kwargs: dict[str, Any] = {
        "port": target.port,
        "username": creds.user,
        "known_hosts": db,
        "connect_timeout": max(1.0, attempt_timeout),
        "client_factory": client,
        "agent_path": None,
        "config": [],
    }
    if creds.password:
        kwargs["password"] = creds.password
    if creds.key_path:
        kwargs["client_keys"] = [creds.key_path]
        kwargs["passphrase"] = creds.passphrase
    else:
        kwargs["client_keys"] = None if creds.password else ()
    if not creds.password:
        kwargs["password"] = None
    started = datetime.now().astimezone()
    try:
        conn_cm = asyncssh.connect(target.host, **kwargs)
        async with conn_cm as conn:
            for k in learned:
                if not isinstance(k, str):
                    _remember_key(known, target, k)

            truncated: set[str] = set()

            async def run(cmd: str) -> tuple[bytes, int]:
                out_b, code, cut = await read_capped(conn, cmd)
                if cut:
                    truncated.add(cmd)
                return out_b, code

            uname, rc = await run("uname -s")
            kind = "linux" if rc == 0 and uname.strip() and b"windows" not in uname.lower() else "windows"
            name_b, _ = await run("hostname")
            host = _safe_host(name_b.decode("utf-8", "replace").strip().split(".")[0], target.host)
            if kind == "windows":
                files: dict[str, bytes] = {}
                commands = []
                for c in COMMANDS:
                    data, code = await run(f"cmd /c {c.cmd}")
                    files[c.output] = data
                    commands.append({"command": c.cmd, "exit_code": code, "output": c.output})
                    if f"cmd /c {c.cmd}" in truncated:
                        commands[-1]["truncated"] = True
                manifest = _manifest(host, target, started, "wormhunt sweep (ssh, windows)", commands)
            else:
                files, commands = await _linux_bundle(run, host)
                manifest = _manifest(host, target, started, "wormhunt sweep (ssh, linux)", commands)
                if truncated:
                    manifest["truncated"] = sorted(truncated)
    except asyncssh.HostKeyNotVerifiable as exc:
        if "changed" in learned:
            raise _Unreachable("host key changed (known_hosts has another key)", False) from None
        raise _Unreachable("host key unknown (add it to known_hosts or use --ssh-accept-new)", False) from exc
    bundle = _write_bundle(out / target.key, manifest, files)
    return Result(target, "collected", bundle, os=kind)


async def read_capped(conn: Any, cmd: str, limit: int | None = None) -> tuple[bytes, int, bool]:
    """stdout of `cmd` read in chunks, at most `limit` bytes (MAX_OUTPUT); beyond it the command is
    stopped and the output marked truncated. stderr is discarded (never buffered)."""
    import asyncssh

    limit = MAX_OUTPUT if limit is None else limit
    proc = await conn.create_process(cmd, encoding=None, stderr=asyncssh.DEVNULL)
    buf = bytearray()
    cut = False
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT):
            while True:
                chunk = await proc.stdout.read(1 << 16)
                if not chunk:
                    break
                if len(buf) + len(chunk) > limit:
                    buf += chunk[: limit - len(buf)]
                    cut = True
                    break
                buf += chunk
            if not cut:
                await proc.wait_closed()
    finally:
        if cut or proc.exit_status is None:
            proc.close()
    code = proc.exit_status if proc.exit_status is not None else -1
    return bytes(buf), code, cut


def _field(value: str) -> str:
    """A field of the wmic CSV layout (which the wmic parser reads unquoted, like wmic writes it):
    no comma, no quote, no control character."""
    return re.sub(r'[\x00-\x1f\x7f,"]', " ", value)


async def _linux_bundle(run: Callable[[str], Any], host: str) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    from wormhunt.collect import live

    host = _safe_host(host, "host")

    ps_out, ps_rc = await run(_LINUX_PS)
    exe_out, exe_rc = await run(_LINUX_EXE)
    ss_out, ss_rc = await run(_LINUX_SS)
    exes = {}
    for line in exe_out.decode("utf-8", "replace").splitlines():
        pid, _, exe = line.partition("\t")
        if pid.isdigit() and exe:
            exes[pid] = exe.removesuffix(" (deleted)")
    rows = []
    for line in ps_out.decode("utf-8", "replace").splitlines():
        parts = line.split(None, 2)
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        pid, ppid, rest = parts
        if not ppid.isdigit():
            continue
        lstart, comm_args = rest[:24], rest[24:].strip()
        comm, _, args = comm_args.partition(" ")
        try:
            created = live._cim(datetime.strptime(" ".join(lstart.split()), "%a %b %d %H:%M:%S %Y").timestamp())
        except ValueError:
            created = ""
        # the command line is the layout's one free column (the parser re-joins its commas); every
        # other field loses commas, and every field loses control characters, so no row is forged
        args = re.sub(r"[\x00-\x1f\x7f]", " ", args.strip())
        exe = exes.get(pid, "")
        name = exe.rsplit("/", 1)[-1] if exe else comm  # ps truncates comm to 15 characters
        rows.append(",".join([host, args, created, _field(exe), _field(name), ppid, pid]))
    header = "Node,CommandLine,CreationDate,ExecutablePath,Name,ParentProcessId,ProcessId"
    procs = "\r\n" + "\r\n".join([header, *rows]) + "\r\n"
    images = sorted(set(exes.values()))
    hash_lines: list[str] = ['"Algorithm","Hash","Path"']
    hash_rc = 0
    if images:
        quoted = " ".join("'" + p.replace("'", "'\\''") + "'" for p in images)
        h_out, hash_rc = await run(f"sha256sum -- {quoted} 2>/dev/null")
        for line in h_out.decode("utf-8", "replace").splitlines():
            digest, _, path = line.partition("  ")
            if len(digest) == 64 and path:
                hash_lines.append(f'"SHA256","{digest.upper()}","{path.replace(chr(34), chr(34) * 2)}"')
    netstat = _ss_to_netstat(ss_out.decode("utf-8", "replace"))
    files = {
        "wmic-process.csv": procs.encode(),
        "netstat-ano.txt": netstat.encode(),
        "filehash.csv": ("\r\n".join(hash_lines) + "\r\n").encode(),
    }
    commands = [
        {"command": f"{_LINUX_PS}; {_LINUX_EXE} (wmic process /format:csv layout)", "exit_code": ps_rc or exe_rc,
         "output": "wmic-process.csv"},
        {"command": f"{_LINUX_SS} (netstat -ano layout)", "exit_code": ss_rc, "output": "netstat-ano.txt"},
        {"command": "sha256sum of running images (Get-FileHash CSV layout)", "exit_code": hash_rc,
         "output": "filehash.csv"},
    ]  # fmt: skip
    return files, commands


def _ss_to_netstat(text: str) -> str:
    """`ss -tuanp` lines in the `netstat -ano` layout (listening sockets have foreign 0.0.0.0:0)."""
    lines = ["", "Active Connections", "", "  Proto  Local Address          Foreign Address        State           PID"]
    states = {"LISTEN": "LISTENING", "ESTAB": "ESTABLISHED", "TIME-WAIT": "TIME_WAIT", "SYN-SENT": "SYN_SENT",
              "CLOSE-WAIT": "CLOSE_WAIT", "FIN-WAIT-1": "FIN_WAIT_1", "FIN-WAIT-2": "FIN_WAIT_2",
              "SYN-RECV": "SYN_RECEIVED", "LAST-ACK": "LAST_ACK", "CLOSING": "CLOSING"}  # fmt: skip
    for line in text.splitlines():
        f = line.split()
        if len(f) < 6 or f[0] not in ("tcp", "udp"):
            continue
        proto, state, local, peer = f[0].upper(), f[1], f[4], f[5]
        pid = re.search(r"pid=(\d+)", line)
        local = _endpoint(local)
        if proto == "TCP":
            remote = ("[::]:0" if local.startswith("[") else "0.0.0.0:0") if state == "LISTEN" else _endpoint(peer)
            st = states.get(state, state)
        else:
            remote, st = "*:*", ""
        lines.append(f"  {proto:<6} {local:<22} {remote:<22} {st:<15} {pid.group(1) if pid else 0}")
    return "\r\n".join(lines) + "\r\n"


def _endpoint(ep: str) -> str:
    addr, _, port = ep.rpartition(":")
    addr = addr.strip("[]").split("%")[0]
    if addr == "*":
        addr = "0.0.0.0"
    port = "0" if port == "*" else port
    if addr.startswith("::ffff:") and "." in addr:
        addr = addr[7:]
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


# --------------------------------------------------------------------------- WinRM


def winrm_client(target: Target, creds: Credentials, auth: str = "negotiate", ssl: bool | None = None,
                 timeout: float = 30) -> Any:  # fmt: skip
    """A pypsrp Client for `target` (auth: negotiate, ntlm, kerberos, credssp; ssl defaults to port 5986)."""
    if auth not in ("negotiate", "ntlm", "kerberos", "credssp", "basic"):
        raise ValueError(f"unknown WinRM auth {auth!r}")
    try:
        from pypsrp.client import Client
    except ImportError:
        raise RuntimeError("WinRM needs the optional extra: pip install 'wormhunt[winrm]'") from None
    use_ssl = target.port == 5986 if ssl is None else ssl
    t = max(1, int(timeout))
    return Client(target.host, port=target.port, username=creds.user, password=creds.password, ssl=use_ssl,
                  auth=auth, connection_timeout=t, read_timeout=t + 5, operation_timeout=max(1, t - 5),
                  cert_validation=True, reconnection_retries=0)  # fmt: skip


def _winrm_collect_sync(target: Target, creds: Credentials, out: Path, auth: str, timeout: float,
                        abandoned: threading.Event | None = None) -> Result:  # fmt: skip
    started = datetime.now().astimezone()
    client = winrm_client(target, creds, auth, timeout=timeout)
    try:
        name, _, _ = client.execute_cmd("hostname")
    except Exception as exc:  # requests/pypsrp/spnego errors: map to a reason
        raise _winrm_error(exc, creds) from None
    host = _safe_host(name.strip(), target.host)
    files, commands = {}, []
    for c in COMMANDS:
        if abandoned is not None and abandoned.is_set():
            raise _Abandoned("the attempt was abandoned after its time budget")
        text, _err, code = client.execute_cmd(f"cmd /c {c.cmd}", encoding="437")
        files[c.output] = text.encode("437")  # cp437 maps every byte: this gives back the bytes sent
        commands.append({"command": c.cmd, "exit_code": code, "output": c.output})
    manifest = _manifest(host, target, started, "wormhunt sweep (winrm)", commands)
    return Result(target, "collected", _write_bundle(out / target.key, manifest, files, abandoned), os="windows")


def _winrm_error(exc: BaseException, creds: Credentials) -> _Unreachable:
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    text = " ".join(str(x) for x in chain)
    if any(isinstance(x, ConnectionRefusedError) for x in chain) or "Connection refused" in text:
        return _Unreachable("connection refused", True)
    if "timed out" in text.lower():
        return _Unreachable("timeout", False)
    if "401" in text or "credentials" in text.lower() or "auth" in type(exc).__name__.lower():
        return _Unreachable("auth failed", False)
    if "No route to host" in text:
        return _Unreachable("no route to host", True)
    return _Unreachable(creds.scrub(f"winrm error: {type(exc).__name__}: {exc}")[:200], False)


# --------------------------------------------------------------------------- the sweep


async def _in_daemon_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run blocking `fn` in a daemon thread: a host that outlives its budget is abandoned, not waited
    for (asyncio.to_thread's executor would hold the end of the run until the call returns)."""
    import threading

    loop = asyncio.get_running_loop()
    fut: asyncio.Future = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not fut.done():
            (fut.set_result if ok else fut.set_exception)(value)

    def work() -> None:
        try:
            value, ok = fn(*args), True
        except BaseException as exc:
            value, ok = exc, False
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, ok, value)

    threading.Thread(target=work, daemon=True, name="wormhunt-winrm").start()
    return await fut


async def _one(
    target: Target,
    creds: Credentials,
    out: Path,
    *,
    timeout: float,
    retries: int,
    known: Path,
    accept_new: bool,
    winrm_auth: str,
) -> Result:
    folder = out / target.key
    if complete_bundle(folder, target):
        return Result(target, "skipped", folder)
    start = time.monotonic()
    deadline = start + timeout
    attempts, reason = 0, "timeout"
    while True:
        attempts += 1
        left = deadline - time.monotonic()
        if left <= 0:
            reason = "timeout"
            break
        abandoned = threading.Event()  # set when this attempt is given up: its thread then writes nothing
        try:
            if target.protocol == "ssh":
                coro = _ssh_collect(target, creds, out, known, accept_new, left)
            else:
                coro = _in_daemon_thread(_winrm_collect_sync, target, creds, out, winrm_auth, left, abandoned)
            res = await asyncio.wait_for(coro, left)
            res.attempts, res.seconds = attempts, time.monotonic() - start
            return res
        except asyncio.CancelledError:
            abandoned.set()
            raise
        except BaseException as exc:  # every failure becomes a reason
            abandoned.set()
            reason, retry = _reason(exc, creds)
        if not retry or attempts > retries:
            break
        backoff = min(0.5 * 2 ** (attempts - 1), 8.0)
        if time.monotonic() + backoff >= deadline:
            break
        await asyncio.sleep(backoff)
    return Result(target, "unreachable", reason=creds.scrub(reason), attempts=attempts,
                  seconds=time.monotonic() - start)  # fmt: skip


async def sweep_async(
    targets: list[Target],
    creds: Credentials,
    out: Path,
    *,
    concurrency: int = 16,
    timeout: float = 120,
    retries: int = 2,
    known_hosts: str | Path | None = None,
    accept_new: bool = False,
    winrm_auth: str = "negotiate",
    on_done: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Collect every target, at most `concurrency` at once; one Result per target, in input order."""
    out.mkdir(parents=True, exist_ok=True)
    sem = asyncio.Semaphore(max(1, concurrency))
    known = _known_hosts_path(known_hosts)

    async def guarded(t: Target) -> Result:
        async with sem:
            res = await _one(t, creds, out, timeout=timeout, retries=retries, known=known,
                             accept_new=accept_new, winrm_auth=winrm_auth)  # fmt: skip
        if on_done:
            on_done(res)
        return res

    return list(await asyncio.gather(*(guarded(t) for t in targets)))


def sweep(targets: list[Target], creds: Credentials, out: Path, **kwargs: Any) -> list[Result]:
    """Synchronous wrapper of `sweep_async`."""
    import logging

    logging.getLogger("asyncssh").setLevel(logging.WARNING)  # its INFO lines name users and hosts
    return asyncio.run(sweep_async(targets, creds, out, **kwargs))
