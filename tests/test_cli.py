"""The command line, run as a user would: exit codes, JSON on stdout, messages, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.test_store import NETSTAT

ENV = {**os.environ, "COLUMNS": "160", "PYTHONIOENCODING": "utf-8"}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wormhunt", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=ENV,
        cwd=cwd,
        timeout=600,
    )


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("wormhunt ")


def test_demo_json_matches_ground_truth(tmp_path: Path) -> None:
    out = run("demo", "--json", "--out", str(tmp_path / "d"), "--hosts", "40", "--seed", "5", "--lines", "20000")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)  # exactly one JSON document, nothing else on stdout
    assert doc["ground_truth"]["matches"] is True
    assert {"hosts", "spreaders", "patient_zero"} <= set(doc)
    for h in doc["hosts"]:
        assert {"host", "ip", "status", "first_seen", "findings"} <= set(h)
        assert h["status"] in ("infected", "suspicious", "clean")
    for s in doc["spreaders"]:
        assert {"src", "first_seen", "distinct_targets"} <= set(s)
    assert "Traceback" not in out.stderr


def test_demo_in_chinese_names_patient_zero(tmp_path: Path) -> None:
    out = run(
        "demo", "--lang", "zh-CN", "--out", str(tmp_path / "d"), "--hosts", "40", "--seed", "6", "--lines", "20000"
    )
    assert out.returncode == 0, out.stderr
    truth = json.loads((tmp_path / "d" / "evidence" / "ground_truth.json").read_text(encoding="utf-8"))
    assert "零号病人" in out.stdout and truth["patient_zero"]["host"] in out.stdout
    assert "已感染" in out.stdout


def test_demo_refuses_to_overwrite_a_foreign_folder(tmp_path: Path) -> None:
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "important.txt").write_text("do not delete")
    out = run("demo", "--out", str(keep))
    assert out.returncode != 0 and (keep / "important.txt").exists()
    assert "not a wormhunt demo folder" in out.stderr and "Traceback" not in out.stderr


def _junk(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "random.bin").write_bytes(os.urandom(4096))
    (folder / "empty.log").write_bytes(b"")
    (folder / "sub").mkdir()
    (folder / "sub" / "readme.txt").write_text("hello\n")
    (folder / "sub" / "half.gz").write_bytes(b"\x1f\x8b\x08" + os.urandom(100))


def test_investigate_mixed_junk_with_something_usable(tmp_path: Path) -> None:
    evidence = tmp_path / "ev"
    _junk(evidence)
    (evidence / "netstat.txt").write_text(NETSTAT)
    out = run("investigate", str(evidence), "--case", str(tmp_path / "case"))
    assert out.returncode == 0, out.stderr
    for name in ("random.bin", "empty.log", "readme.txt", "half.gz"):
        assert name in out.stderr
    assert "binary (not text)" in out.stderr and "unrecognized text format" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_investigate_nothing_usable_exits_2(tmp_path: Path) -> None:
    evidence = tmp_path / "ev"
    _junk(evidence)
    out = run("investigate", str(evidence), "--case", str(tmp_path / "case"), "--json")
    assert out.returncode == 2
    doc = json.loads(out.stdout)
    problems = {Path(p["path"]).name: p["status"] for p in doc["evidence"]["problems"]}
    assert problems == {
        "random.bin": "unrecognized",
        "empty.log": "empty",
        "readme.txt": "unrecognized",
        "half.gz": "unrecognized",
    }
    assert out.stderr.strip() == ""  # --json: nothing but the document


def test_bad_language_is_a_usage_error() -> None:
    out = run("demo", "--lang", "fr")
    assert out.returncode == 2 and "unsupported language" in out.stderr


def test_attacker_controlled_strings_are_neutralised(tmp_path: Path) -> None:
    folder = tmp_path / "ev" / "HOSTX"
    folder.mkdir(parents=True)
    evil = "svchost.exe"
    cmd = "[bold red]pwned[/] \x1b[2J\x1b]0;title\x07 \u202egpj.exe"
    wmic = (
        "\nNode,CommandLine,CreationDate,ExecutablePath,Name,ParentProcessId,ProcessId\n"
        f"HOSTX,{cmd},20181118083818.000000+480,C:\\Windows\\AppDiagnostics\\{evil},{evil},4,1234\n"
    )
    (folder / "wmic.csv").write_bytes(b"\xff\xfe" + wmic.replace("\n", "\r\n").encode("utf-16-le"))
    out = run("investigate", str(tmp_path / "ev"), "--case", str(tmp_path / "case"))
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\u202e" not in out.stdout
    assert "\\x1b[2J" in out.stdout and "[bold red]pwned[/]" in out.stdout
    jout = run("investigate", str(tmp_path / "ev"), "--case", str(tmp_path / "case2"), "--json")
    doc = json.loads(jout.stdout)
    (host,) = [h for h in doc["hosts"] if h["host"] == "HOSTX"]
    assert host["status"] == "infected"
    assert cmd in host["findings"][0]["evidence"][0]["text"]  # JSON keeps the exact text, escaped by JSON


def test_hostile_file_names_and_json_controls(tmp_path: Path) -> None:
    evidence = tmp_path / "ev"
    evidence.mkdir()
    name = "[blink red]x\x1b]0;t\x07\u009b\u202e.bin"
    (evidence / name).write_bytes(os.urandom(512))
    out = run("investigate", str(evidence), "--case", str(tmp_path / "case"))
    assert "\x1b" not in out.stderr and "\u009b" not in out.stderr and "\u202e" not in out.stderr
    assert "[blink red]" in out.stderr  # shown as text, not applied as markup
    jout = run("investigate", str(evidence), "--case", str(tmp_path / "case2"), "--json")
    assert "\u009b" not in jout.stdout and "\u202e" not in jout.stdout
    assert json.loads(jout.stdout)["evidence"]["problems"][0]["path"].endswith(name)
