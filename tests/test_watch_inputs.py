"""Malformed syslog is counted and never stops the receiver; file tailing follows rotation and
truncation and resumes at its saved offset; framing units."""

from __future__ import annotations

import json
import os
import socket
import time
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
from wormhunt.watch.receiver import Framer, SourceStats, split_datagram


@pytest.fixture(scope="module")
def outbreak(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("sim")
    simulate(out, hosts=40, seed=2, days=1, lines=6000)
    doc = detect_json([out / "network"])
    truth = json.loads((out / "ground_truth.json").read_text())
    return {
        "dir": out,
        "lines": log_lines(out),
        "spreaders": {s["src"] for s in doc["spreaders"]},
        "patient_zero": truth["patient_zero"]["ip"],
    }


# -- framing units ---------------------------------------------------------------------------


def test_newline_framing_cuts_over_long_lines_and_keeps_going() -> None:
    st = SourceStats()
    f = Framer(st, max_len=10)
    out = f.feed(b"<1>short\n<1>" + b"x" * 50)
    out += f.feed(b"y" * 50 + b"\n<1>next\n<1>last")
    out += f.close()
    assert out == [b"<1>short", b"<1>xxxxxxx", b"<1>next", b"<1>last"]
    assert st.errors["over-long"] == 1


def test_octet_framing_split_anywhere_and_over_long_frames() -> None:
    st = SourceStats()
    msgs = [b"<1>hello", b"<2>" + b"z" * 30, b"<3>world"]
    stream = b"".join(b"%d " % len(m) + m for m in msgs)
    f = Framer(st, max_len=16)
    out = []
    for i in range(len(stream)):  # one byte at a time
        out += f.feed(stream[i : i + 1])
    out += f.close()
    assert out == [b"<1>hello", (b"<2>" + b"z" * 30)[:16], b"<3>world"]
    assert st.errors["over-long"] == 1 and st.errors["truncated frame"] == 0


def test_octet_framing_truncated_and_wrong_counts_resynchronise() -> None:
    st = SourceStats()
    f = Framer(st)
    good = b"<189>date=2018-11-17 a=b"
    frame = b"%d " % len(good) + good
    # A count larger than its frame swallows the head of the next one: that frame is lost, the
    # reader finds the following frame again (framing error counted). A last frame is cut short.
    stream = frame + b"40 <1>short" + frame + frame + frame + b"999 <1>cut"
    out = f.feed(stream)
    out += f.close()
    assert out.count(good) >= 2
    assert st.errors["framing error"] >= 1
    assert st.errors["truncated frame"] == 1


def test_datagram_lines_and_cut() -> None:
    st = SourceStats()
    assert split_datagram(b"<1>a\r\n<1>b\n\n", st) == [b"<1>a", b"<1>b"]
    assert split_datagram(b"<1>" + b"q" * 100, st, max_len=8) == [b"<1>qqqqq"]
    assert st.errors["over-long"] == 1


# -- malformed input against the running process ----------------------------------------------


def test_malformed_syslog_is_counted_and_valid_lines_still_alert(tmp_path: Path, outbreak: dict) -> None:
    tcp, udp, ui = free_port(), free_port(socket.SOCK_DGRAM), free_port()
    alerts = tmp_path / "alerts.jsonl"
    w = WatchProc(
        tmp_path / "case",
        *("--listen", f"tcp://127.0.0.1:{tcp}", "--listen", f"udp://127.0.0.1:{udp}"),
        *("--alert", f"jsonl:{alerts}", "--ui", f"127.0.0.1:{ui}", "--json"),
    )
    line = outbreak["lines"][0]
    junk = bytes(range(256)) * 4
    gbk = line.replace(b'devname="FGT-CORE"', '设备名="防火墙-核心" devname="防火墙"'.encode("gbk"))
    bad_utf8 = line.replace(b'devname="FGT-CORE"', b'devname="FGT\xff\xfe\xc3"')
    try:
        # Newline framing: junk, an over-long line, GBK and invalid UTF-8 text.
        send_tcp(tcp, [junk.replace(b"\n", b" "), b"<189>" + b"A" * 200_000, gbk, bad_utf8])
        # Octet counting: a frame whose count promises more than ever arrives.
        with socket.create_connection((LOOPBACK, tcp)) as s:
            s.sendall(b"%d " % len(line) + line + b"5000 " + line[:100])
        # Octet counting: a count that is itself cut off.
        with socket.create_connection((LOOPBACK, tcp)) as s:
            s.sendall(b"%d " % len(line) + line + b"12")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(junk, (LOOPBACK, udp))
            s.sendto(b"\x00\x01\x02\x03" * 50, (LOOPBACK, udp))

        def counted() -> bool:
            st = json.loads(get(f"http://127.0.0.1:{ui}/api/state"))
            return st["parse_errors"] >= 3 and st["stored"] >= 4

        assert wait_for(counted, 60)
        # The receiver still works: the outbreak itself is found.
        send_tcp(tcp, outbreak["lines"])
        assert wait_for(lambda: outbreak["patient_zero"] in spreader_ips(read_alerts(alerts)), 120)
    finally:
        summary = w.stop()
    assert summary is not None
    errors = summary["receivers"][f"tcp://127.0.0.1:{tcp}"]["errors"]
    assert errors.get("over-long") == 1
    assert errors.get("truncated frame") == 2
    assert summary["parse"].get("binary junk", 0) >= 3  # TCP junk and two UDP datagrams
    assert spreader_ips(read_alerts(alerts)) == outbreak["spreaders"]
    text = (tmp_path / "case" / "watch" / "messages.log").read_text(encoding="utf-8")
    assert "防火墙" in text  # GBK decoded by the project's decoder, not mangled
    assert "\x00" not in text


# -- file tailing ------------------------------------------------------------------------------


def test_tail_follows_rotation_and_truncation_and_resumes(tmp_path: Path, outbreak: dict) -> None:
    lines = outbreak["lines"]
    log = tmp_path / "fgt.log"
    a, b, c = len(lines) // 3, 2 * len(lines) // 3, len(lines)
    log.write_bytes(b"".join(x + b"\n" for x in lines[:a]))
    alerts = tmp_path / "alerts.jsonl"
    ui = free_port()
    w = WatchProc(tmp_path / "case", "--tail", str(log), "--alert", f"jsonl:{alerts}", "--ui", f"127.0.0.1:{ui}")

    def stored() -> int:
        return json.loads(get(f"http://127.0.0.1:{ui}/api/state"))["stored"]

    try:
        assert wait_for(lambda: stored() == a, 60)
        # Rotation: the old file gets a last line after the rename, then a new file appears.
        os.rename(log, tmp_path / "fgt.log.1")
        with open(tmp_path / "fgt.log.1", "ab") as fh:
            fh.write(lines[a] + b"\n")
        log.write_bytes(b"".join(x + b"\n" for x in lines[a + 1 : b]))
        assert wait_for(lambda: stored() == b, 60)
        # Truncation in place (copytruncate), then the rest.
        with open(log, "r+b") as fh:
            fh.truncate(0)
        time.sleep(1.0)
        with open(log, "ab") as fh:
            fh.write(b"".join(x + b"\n" for x in lines[b:c]))
        assert wait_for(lambda: stored() == c, 60)
        assert wait_for(lambda: spreader_ips(read_alerts(alerts)) == outbreak["spreaders"], 60)
    finally:
        w.stop()
    n_alerts = len(read_alerts(alerts))
    # A restart resumes at the saved offset: nothing read twice, nothing alerted again.
    w = WatchProc(tmp_path / "case", "--tail", str(log), "--alert", f"jsonl:{alerts}", "--json")
    time.sleep(2)
    summary = w.stop()
    assert summary["stored_messages"] == c
    assert len(read_alerts(alerts)) == n_alerts
