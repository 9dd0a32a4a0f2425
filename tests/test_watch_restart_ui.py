"""Restart after SIGKILL mid-stream (no duplicate alert, no missed spreader, loss within the
documented bound); the live page (serves, updates, escapes hostile evidence); alert outputs
to a webhook (with retry) and syslog servers started here on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.test_watch_support import (
    LOOPBACK,
    WatchProc,
    detect_json,
    free_port,
    get,
    log_lines,
    read_alerts,
    send_tcp,
    spreader_ips,
    wait_for,
)
from wormhunt.simulate import simulate
from wormhunt.watch import alerts as outputs
from wormhunt.watch.service import BATCH, QUEUE


@pytest.fixture(scope="module")
def outbreak(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("sim")
    simulate(out, hosts=60, seed=1, days=1, lines=20000)
    truth = json.loads((out / "ground_truth.json").read_text())
    doc = detect_json([out / "network"])
    return {
        "lines": log_lines(out),
        "spreaders": {s["src"] for s in doc["spreaders"]},
        "patient_zero": truth["patient_zero"]["ip"],
    }


def test_sigkill_mid_stream_then_restart(tmp_path: Path, outbreak: dict) -> None:
    lines = outbreak["lines"]
    case, alerts = tmp_path / "case", tmp_path / "alerts.jsonl"
    tcp, ui = free_port(), free_port()
    args = ("--listen", f"tcp://127.0.0.1:{tcp}", "--alert", f"jsonl:{alerts}", "--quiet", "0")
    w = WatchProc(case, *args, "--ui", f"127.0.0.1:{ui}")
    sent = 0
    with socket.create_connection((LOOPBACK, tcp)) as s:
        for i in range(0, len(lines), 200):
            s.sendall(b"".join(x + b"\n" for x in lines[i : i + 200]))
            sent = min(i + 200, len(lines))
            if sent >= len(lines) // 2:
                break
            time.sleep(0.01)  # a few seconds of stream: the kill lands in the middle
        assert wait_for(lambda: json.loads(get(f"http://127.0.0.1:{ui}/api/state"))["stored"] > 0, 60)
        assert wait_for(lambda: spreader_ips(read_alerts(alerts)), 60)  # some alerts went out before the kill
        w.kill()  # SIGKILL: no flush, no state save
    before = read_alerts(alerts)
    w = WatchProc(case, *args, "--json")
    send_tcp(tcp, lines[sent:])
    assert wait_for(lambda: spreader_ips(read_alerts(alerts)) >= outbreak["spreaders"], 120)
    summary = w.stop()
    records = read_alerts(alerts)
    keys = [it["key"] for r in records for it in r["items"]]
    assert len(keys) == len(set(keys)), "an alert was sent twice"
    assert len({r["id"] for r in records}) == len(records)
    assert records[: len(before)] == before
    assert spreader_ips(records) == outbreak["spreaders"]
    lost = len(lines) - summary["stored_messages"]
    print(f"messages lost to SIGKILL: {lost} (bound {QUEUE + BATCH})")
    assert 0 <= lost <= QUEUE + BATCH
    # And against exactly what survived: detect over the watch's own message log agrees.
    survived = detect_json([case / "watch" / "messages.log"])
    assert {s["src"] for s in survived["spreaders"]} == spreader_ips(records)


HOSTILE = '<script>alert("pwn")</script><img src=x onerror=alert(1)>'


def test_ui_serves_updates_and_escapes(tmp_path: Path, outbreak: dict) -> None:
    tcp, ui = free_port(), free_port()
    w = WatchProc(tmp_path / "case", "--listen", f"tcp://127.0.0.1:{tcp}", "--ui", f"127.0.0.1:{ui}")
    base = f"http://127.0.0.1:{ui}"
    try:
        first = json.loads(get(base + "/api/state"))
        lines = outbreak["lines"]
        ips = [x for x in lines if b'subtype="ips"' in x]
        hostile = ips[0].replace(b'msg="', b'msg="' + HOSTILE.encode())
        send_tcp(tcp, [hostile, *lines[: len(lines) // 2]])
        assert wait_for(lambda: json.loads(get(base + "/api/state"))["stored"] > first["stored"], 60)
        assert wait_for(lambda: json.loads(get(base + "/api/state"))["spreaders"], 60)
        second = json.loads(get(base + "/api/state"))
        assert second["stored"] > first["stored"]
        assert second["receivers"][0][1] > first["receivers"][0][1]
        assert wait_for(lambda: "onerror" in get(base + "/api/state"), 60)
        page = get(base + "/")
        assert "wormhunt watch" in page and outbreak["patient_zero"] in page
        assert "onerror" in page  # the evidence is shown ...
        assert HOSTILE not in page and "<img" not in page  # ... as text
        assert "&lt;script&gt;alert(" in page
        assert "api/state" in page and "http://" not in page.split("<script", 1)[1]  # no external requests
    finally:
        w.stop()


def test_webhook_retries_and_syslog_output() -> None:
    got: list[dict] = []
    calls = {"n": 0}

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            calls["n"] += 1
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if calls["n"] < 3:  # two failures first: the output retries
                self.send_response(503)
                self.end_headers()
                return
            got.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sysl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sysl.bind((LOOPBACK, 0))
    sysl.settimeout(10)
    record = {"id": "x-1", "src": "10.0.0.1", "category": "spreader", "items": [{"key": "spreader:10.0.0.1"}]}
    try:
        hook = outputs.parse(f"webhook:http://{LOOPBACK}:{server.server_port}/alert")
        syslog = outputs.parse(f"syslog:{LOOPBACK}:{sysl.getsockname()[1]}")
        outputs.BACKOFF_S = 0.05
        assert asyncio.run(hook.send(record)) is True
        assert got == [record] and calls["n"] == 3
        assert asyncio.run(syslog.send(record)) is True
        data, _ = sysl.recvfrom(65536)
        assert data.startswith(b"<129>1 ") and b" wormhunt - spreader - " in data
        assert json.loads(data.split(b"\xef\xbb\xbf", 1)[1]) == record
        # Bounded: a dead webhook gives up after its retries.
        dead = outputs.parse(f"webhook:http://{LOOPBACK}:{free_port()}/")
        assert asyncio.run(dead.send(record)) is False
    finally:
        server.shutdown()
        sysl.close()
