"""`wormhunt collect` on this machine writes a bundle that `wormhunt triage` reads back."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from wormhunt.store import Case

MARKER = "wormhunt-collect-test-7f3a"


@pytest.fixture
def child() -> tuple[subprocess.Popen, int]:
    """A child process with a known command line holding a listening socket on loopback."""
    code = (
        "import socket, sys, time\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
        "print(s.getsockname()[1], flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, MARKER], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    yield proc, port
    proc.kill()
    proc.wait()


def wormhunt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wormhunt", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_collect_then_triage_finds_the_process_and_its_socket(child, tmp_path: Path, suffix: str) -> None:
    proc, port = child
    bundle = tmp_path / f"bundle{suffix}"
    out = wormhunt("collect", "--out", str(bundle), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["bundle"] == str(bundle)
    res = wormhunt("triage", str(bundle), "--case", str(tmp_path / "case"), "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    host = socket.gethostname().split(".")[0].upper()
    assert [h["host"] for h in doc["hosts"]] == [host]
    with Case(tmp_path / "case") as case:
        procs = case.query("SELECT pid, command_line, host FROM processes WHERE pid = ?", [proc.pid])
        assert procs and MARKER in procs[0]["command_line"] and procs[0]["host"] == host
        socks = case.query("SELECT pid, listening FROM sockets WHERE local_port = ? AND local_ip = '127.0.0.1'", [port])
        assert socks == [{"pid": proc.pid, "listening": True}]
        manifest = case.manifest()
    assert all(e["status"] == "ingested" and e["skipped"] == 0 for e in manifest), manifest


def test_triage_needs_input() -> None:
    out = wormhunt("triage")
    assert out.returncode == 2 and "--live" in out.stderr
