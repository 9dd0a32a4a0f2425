"""The watch page in headless Chromium (the Debian `chromium`, driven by Playwright with
`executable_path`): after a replay it shows patient zero among the spreaders, updating without
a reload, and no request leaves the page except to the watch process itself. Skips when
chromium or Playwright is absent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.test_watch_support import WatchProc, free_port, get, log_lines, send_tcp, wait_for
from wormhunt.simulate import simulate

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)


def test_page_shows_the_spreader_live_and_requests_nothing_outside(tmp_path: Path) -> None:
    if not CHROMIUM:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    simulate(tmp_path / "sim", hosts=40, seed=2, days=1, lines=6000)
    truth = json.loads((tmp_path / "sim" / "ground_truth.json").read_text())
    pz = truth["patient_zero"]["ip"]
    tcp, ui = free_port(), free_port()
    w = WatchProc(tmp_path / "case", "--listen", f"tcp://127.0.0.1:{tcp}", "--ui", f"127.0.0.1:{ui}")
    base = f"http://127.0.0.1:{ui}"
    try:
        assert wait_for(lambda: "stored" in get(base + "/api/state"), 60)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page()
                requests: list[str] = []
                page.on("request", lambda r: requests.append(r.url))
                page.goto(base + "/")
                assert pz not in page.inner_text("body")  # nothing replayed yet
                send_tcp(tcp, log_lines(tmp_path / "sim"))  # the page is not reloaded from here on
                # Polled from here: the page's CSP forbids the eval a wait_for_function would need.
                assert wait_for(lambda: pz in page.inner_text("body"), 90)
                assert requests and all(u.startswith(base) for u in requests), requests
            finally:
                browser.close()
    finally:
        w.stop()
