"""Helpers for the watch tests (no tests here): start `wormhunt watch` as a subprocess on
loopback, replay logs over UDP/TCP, read alerts. Every socket stays on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class WatchProc:
    def __init__(self, case: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.case = case
        self.args = [sys.executable, "-m", "wormhunt", "watch", "--case", str(case), *args]
        self.proc = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "WORMHUNT_DEBUG": "1", **(env or {})},
        )
        self.stderr: list[str] = []
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        if not self.ready.wait(120):
            self.kill()
            raise AssertionError("watch did not start:\n" + "".join(self.stderr))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            if "ready" in line:
                self.ready.set()

    def stop(self, timeout: float = 120) -> dict[str, Any] | None:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=timeout)
        self.thread.join(5)
        assert self.proc.returncode == 0, "".join(self.stderr)
        return json.loads(out) if out.strip() else None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)


def send_tcp(port: int, lines: list[bytes], framing: str = "newline", chunk: int = 500) -> None:
    with socket.create_connection((LOOPBACK, port)) as s:
        for i in range(0, len(lines), chunk):
            part = lines[i : i + chunk]
            if framing == "octet":
                s.sendall(b"".join(b"%d " % len(m) + m for m in part))
            else:
                s.sendall(b"".join(m + b"\n" for m in part))


def send_udp(port: int, lines: list[bytes], pace_every: int = 200, pause: float = 0.002) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i, m in enumerate(lines):
            s.sendto(m, (LOOPBACK, port))
            if i % pace_every == 0:
                time.sleep(pause)  # a burst larger than the socket buffer is lost by design


def read_alerts(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


def items(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [it for r in records for it in r["items"]]


def spreader_ips(records: list[dict[str, Any]]) -> set[str]:
    return {it["src"] for it in items(records) if it["category"] == "spreader"}


def alert_keys(records: list[dict[str, Any]]) -> set[tuple]:
    return {
        (it["alert"]["kind"], it["alert"]["src"], it["alert"]["dst"], it["alert"]["signature"])
        for it in items(records)
        if it["category"] != "spreader"
    }


def wait_for(pred, timeout: float = 120, every: float = 0.2) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(every)
    return False


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:  # loopback only
        return resp.read().decode("utf-8")


def detect_json(paths: list[Path]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "wormhunt", "detect", *map(str, paths), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def log_lines(folder: Path) -> list[bytes]:
    """The simulated FortiGate logs as lines, in time order (traffic and IPS interleaved)."""
    lines = []
    for p in sorted((folder / "network").glob("*.log")):
        lines += [ln for ln in p.read_bytes().splitlines() if ln.strip()]
    return sorted(lines, key=lambda ln: ln.split(b"eventtime=", 1)[-1][:10])
