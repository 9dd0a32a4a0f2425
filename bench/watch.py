"""Benchmark `wormhunt watch` on loopback: sustained messages/s over TCP (loss must be 0) and
UDP (loss rate), peak RSS of the process, and alert latency (p50/p99, upper bound measured
from the oldest message of the detection run that found the alert). Prints its figures.

    python bench/watch.py [--hosts 200] [--lines 200000]
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.test_watch_support import (
    LOOPBACK,
    WatchProc,
    free_port,
    get,
    log_lines,
    read_alerts,
    wait_for,
)

from wormhunt.simulate import simulate


def peak_rss(pid: int, stop: threading.Event, out: list[int]) -> None:
    p = psutil.Process(pid)
    while not stop.is_set():
        try:
            out.append(p.memory_info().rss)
        except psutil.Error:
            return
        time.sleep(0.1)


def run(proto: str, lines: list[bytes], tmp: Path) -> dict:
    port = free_port(socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM)
    ui = free_port()
    alerts = tmp / f"{proto}.jsonl"
    w = WatchProc(
        tmp / f"case-{proto}",
        "--listen",
        f"{proto}://127.0.0.1:{port}",
        "--ui",
        f"127.0.0.1:{ui}",
        "--alert",
        f"jsonl:{alerts}",
        "--format",
        "fortigate",
        "--json",
    )
    rss: list[int] = []
    stop = threading.Event()
    threading.Thread(target=peak_rss, args=(w.proc.pid, stop, rss), daemon=True).start()
    t0 = time.perf_counter()
    if proto == "tcp":
        with socket.create_connection((LOOPBACK, port)) as s:
            for i in range(0, len(lines), 2000):
                s.sendall(b"".join(x + b"\n" for x in lines[i : i + 2000]))
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for x in lines:
                s.sendto(x, (LOOPBACK, port))
    sent_s = time.perf_counter() - t0

    def received() -> int:
        return sum(r[1] for r in json.loads(get(f"http://127.0.0.1:{ui}/api/state"))["receivers"])

    def stored() -> int:
        return json.loads(get(f"http://127.0.0.1:{ui}/api/state"))["stored"]

    wait_for(lambda: stored() >= received() and (proto == "udp" or stored() >= len(lines)), 600, 0.05)
    done_s = time.perf_counter() - t0
    summary = w.stop()
    stop.set()
    lat = sorted(r["latency_s"] for r in read_alerts(alerts) if not r["digest"])

    def pct(q):
        return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else None

    return {
        "proto": proto,
        "messages": len(lines),
        "stored": summary["stored_messages"],
        "lost": len(lines) - summary["stored_messages"],
        "loss_rate": round(1 - summary["stored_messages"] / len(lines), 4),
        "send_s": round(sent_s, 2),
        "ingested_per_s": round(summary["stored_messages"] / done_s),
        "peak_rss_mb": round(max(rss) / 2**20, 1) if rss else None,
        "alerts": len(lat),
        "latency_p50_s": pct(0.5),
        "latency_p99_s": pct(0.99),
        "spreaders": len(summary["spreaders"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=200)
    ap.add_argument("--lines", type=int, default=200_000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="wormhunt-bench-watch-") as tmp:
        tmp = Path(tmp)
        simulate(tmp / "sim", hosts=a.hosts, seed=7, days=1, lines=a.lines)
        lines = log_lines(tmp / "sim")
        for proto in ("tcp", "udp"):
            print(json.dumps(run(proto, lines, tmp)), flush=True)


if __name__ == "__main__":
    main()
