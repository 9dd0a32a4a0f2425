"""The Windows collector scripts: every command has a parser, and the PowerShell one is 2.0-safe."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from wormhunt.collect.windows import COMMANDS, render
from wormhunt.sources import FORMATS


def test_every_command_has_a_parser_for_its_output() -> None:
    missing = [(c.output, c.format) for c in COMMANDS if c.format not in FORMATS]
    assert missing == []
    assert len({c.output for c in COMMANDS}) == len(COMMANDS)
    assert FORMATS[next(c.format for c in COMMANDS if c.output == "schtasks-v.csv")].host_evidence


@pytest.mark.parametrize("kind", ["ps1", "bat"])
def test_scripts_run_every_command_and_write_a_manifest(kind: str) -> None:
    text = render(kind)
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    for c in COMMANDS:
        assert c.output in text
        assert (c.cmd if kind == "bat" else c.cmd.replace("'", "''")) in text
    assert "manifest.json" in text


def test_powershell_script_uses_nothing_newer_than_powershell_2() -> None:
    text = render("ps1")
    for newer in (
        "ConvertTo-Json",
        "Get-CimInstance",
        "-Encoding UTF8NoBOM",
        "[ordered]",
        "Invoke-WebRequest",
        "::new(",
    ):
        assert newer not in text
    # Read-only: nothing that installs, deletes or changes the host.
    for verb in ("Remove-Item", "Set-ItemProperty", "Stop-Process", "Install-", "New-Service", "sc delete", "reg add"):
        assert verb not in text
    assert re.search(r"schtasks /query", text) and "schtasks /delete" not in text.lower()


def test_collector_verb_prints_the_script() -> None:
    out = subprocess.run([sys.executable, "-m", "wormhunt", "collector", "--windows", "bat"], capture_output=True)
    assert out.returncode == 0 and out.stdout.startswith(b"@echo off\r\n")
    bad = subprocess.run([sys.executable, "-m", "wormhunt", "collector", "--windows", "sh"], capture_output=True)
    assert bad.returncode == 2
