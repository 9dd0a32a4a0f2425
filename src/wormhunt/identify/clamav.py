"""ClamAV when present: clamdscan (a running clamd), else clamscan, else "not available".

wormhunt never installs ClamAV and never fails without it. The files are handed over in one
batch (`--file-list`), so clamscan loads its database once per run.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from wormhunt.identify.model import ClamResult

SOCKETS = (
    "/run/clamav/clamd.ctl",
    "/var/run/clamav/clamd.ctl",
    "/run/clamd.scan/clamd.sock",
    "/var/run/clamd.scan/clamd.sock",
    "/tmp/clamd.socket",
)


@dataclass
class ClamEngine:
    engine: str | None  # "clamdscan", "clamscan" or None
    command: str | None = None
    detail: str = ""

    @property
    def available(self) -> bool:
        return self.engine is not None


def _clamd_alive(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(path)
            s.sendall(b"zPING\0")
            return s.recv(16).startswith(b"PONG")
    except OSError:
        return False


def detect() -> ClamEngine:
    clamdscan = shutil.which("clamdscan")
    if clamdscan:
        live = next((p for p in SOCKETS if Path(p).exists() and _clamd_alive(p)), None)
        if live:
            return ClamEngine("clamdscan", clamdscan, f"clamd at {live}")
    clamscan = shutil.which("clamscan")
    if clamscan:
        return ClamEngine("clamscan", clamscan, clamscan)
    return ClamEngine(None, None, "not available")


def parse_output(text: str) -> dict[str, ClamResult]:
    out: dict[str, ClamResult] = {}
    for line in text.splitlines():
        path, sep, verdict = line.rpartition(": ")
        if not sep:
            continue
        if verdict == "OK":
            out[path] = ClamResult("clean")
        elif verdict.endswith(" FOUND"):
            out[path] = ClamResult("infected", verdict[: -len(" FOUND")])
        elif verdict.endswith("ERROR"):
            out[path] = ClamResult("error", verdict)
    return out


def scan(engine: ClamEngine, paths: list[str], timeout: float = 3600) -> dict[str, ClamResult]:
    """ClamResult per path; every path gets one (not_available / error when ClamAV could not say)."""
    if not engine.available or not paths:
        return {p: ClamResult("not_available") for p in paths}
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as fh:
        fh.write("\n".join(paths) + "\n")
        listing = fh.name
    args = [engine.command or engine.engine or "", "--no-summary", f"--file-list={listing}"]
    if engine.engine == "clamdscan":
        args.insert(1, "--fdpass")
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
        found = parse_output(proc.stdout)
        failure = None if proc.returncode in (0, 1) else (proc.stderr.strip().splitlines() or ["error"])[-1]
    except (OSError, subprocess.TimeoutExpired) as exc:
        found, failure = {}, f"{type(exc).__name__}: {exc}"
    finally:
        Path(listing).unlink(missing_ok=True)
    out: dict[str, ClamResult] = {}
    for p in paths:
        r = found.get(p)
        out[p] = ClamResult(r.status, r.signature, engine.engine) if r else ClamResult("error", failure or "no verdict")
    return out
