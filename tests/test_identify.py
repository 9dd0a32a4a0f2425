"""wormhunt identify: hashes, PE facts, YARA (project and user rules), skips, ClamAV absent."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wormhunt.identify import clamav, identify
from wormhunt.identify.hashes import hash_file
from wormhunt.identify.pe import name_notes, pe_facts
from wormhunt.identify.yarascan import compile_rules, project_rule_files

FUZZBUNCH = (
    b"Eternalblue-2.2.0.exe --InConfig Eternalblue-2.2.0.xml --TargetIp 10.0.0.5 --TargetPort 445 "
    b"--OutConfig out.txt --Target WIN72K8R2\r\nloads trch-1.dll tucl-1.dll coli-0.dll\r\n"
)


def _launchers() -> list[Path]:
    spec = importlib.util.find_spec("pip")
    if spec is None or spec.origin is None:
        return []
    folder = Path(spec.origin).parent / "_vendor" / "distlib"
    return sorted(folder.glob("*.exe"))


@pytest.fixture
def launcher() -> Path:
    found = [p for p in _launchers() if p.name in ("t64.exe", "w64.exe", "t32.exe")] or _launchers()
    if not found:
        pytest.skip("no Windows launcher executable shipped with pip here")
    return found[0]


def test_hashes_match_hashlib_in_one_read(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # spans several chunks
    f = tmp_path / "blob.bin"
    f.write_bytes(data)
    hashes, kept = hash_file(f, keep=True)
    assert kept == data
    assert hash_file(f)[0] == hashes  # the chunked path (content not kept) agrees
    assert hashes.md5 == hashlib.md5(data).hexdigest()
    assert hashes.sha1 == hashlib.sha1(data).hexdigest()
    assert hashes.sha256 == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert hash_file(empty)[0].sha256 == hashlib.sha256(b"").hexdigest()


def test_pe_facts_on_a_real_launcher(launcher: Path) -> None:
    facts = pe_facts(launcher.read_bytes(), launcher.name)
    assert facts.is_pe and facts.error is None
    assert facts.machine in ("I386", "AMD64", "ARM64", "ARMNT")
    when = datetime.fromisoformat(facts.compile_time.replace("Z", "+00:00"))
    assert datetime(2000, 1, 1, tzinfo=UTC) < when < datetime.now(UTC)
    assert facts.imphash and len(facts.imphash) == 32 and int(facts.imphash, 16) >= 0
    assert facts.signed is False and facts.signature_status == "NO_SIGNATURE"
    assert not [n for n in facts.notes if n.code == "pe.name_mismatch"]  # under its own name
    pefile = pytest.importorskip("pefile")
    for exe in _launchers():
        pe = pefile.PE(str(exe), fast_load=False)
        assert pe_facts(exe.read_bytes(), exe.name).imphash == pe.get_imphash(), exe.name


def test_name_mismatch_when_a_launcher_poses_as_svchost(launcher: Path, tmp_path: Path) -> None:
    facts = pe_facts(launcher.read_bytes(), launcher.name)
    # The pip launchers carry version info (OriginalFilename t64.exe ...); without it the rule
    # could not fire, and test_name_rules_without_a_pe covers the rule on its own.
    assert facts.version_info.get("OriginalFilename")
    fake = tmp_path / "svchost.exe"
    shutil.copyfile(launcher, fake)
    result = identify([fake], use_clamav=False, workers=1)
    pe = result.files[0].pe
    codes = {n.code: n for n in pe.notes}
    assert codes["pe.name_mismatch"].severity == "alert"
    assert codes["pe.name_mismatch"].params["original"] == facts.version_info["OriginalFilename"]
    assert "pe.system_name_not_microsoft" in codes
    assert "pe_heuristics" in result.files[0].detections()
    assert result.files[0].ssdeep and result.files[0].ssdeep.count(":") == 2


def test_name_rules_without_a_pe() -> None:
    info = {"OriginalFilename": "Eternalblue-2.2.0.exe", "CompanyName": "", "InternalName": "Eternalblue"}
    notes = {n.code: n for n in name_notes("svchost.exe", info, signed=False)}
    assert notes["pe.name_mismatch"].severity == "alert"
    assert "pe.system_name_not_microsoft" in notes
    ms = {"OriginalFilename": "svchost.exe.mui", "InternalName": "svchost", "CompanyName": "Microsoft Corporation"}
    assert [n.code for n in name_notes("SVCHOST.EXE", ms, signed=True)] == []
    assert [n.code for n in name_notes("svchost.exe", ms, signed=False)] == ["pe.system_name_unsigned"]
    other = {"OriginalFilename": "setup.exe"}
    assert [(n.code, n.severity) for n in name_notes("invoice.exe", other, False)] == [("pe.name_mismatch", "warn")]


def test_not_a_pe_and_damaged_pe_never_raise(launcher: Path) -> None:
    assert pe_facts(b"hello", "a.txt").is_pe is False
    assert pe_facts(b"MZ" + b"\x00" * 200, "a.exe").error
    data = launcher.read_bytes()
    cut = pe_facts(data[:2048], launcher.name)
    assert cut.is_pe and cut.error
    junk = pe_facts(data[:512] + os.urandom(4096), "x.exe")
    assert junk.is_pe


def test_project_rules_compile_in_yara_x_and_yara_python() -> None:
    yara = pytest.importorskip("yara")
    import yara_x

    files = project_rule_files()
    assert {f.stem for f in files} >= {"eternalblue", "xmrig", "wannamine", "wannacry"}
    for f in files:
        source = f.read_text(encoding="utf-8")
        yara.compile(source=source)
        yara_x.compile(source)
        assert 'author = "wormhunt"' in source and "family =" in source and "confidence =" in source
    compiled = compile_rules([])
    assert compiled.warnings == [] and compiled.counts["project"] == len(files)


def test_fuzzbunch_strings_match_the_eternalblue_rule(tmp_path: Path) -> None:
    (tmp_path / "run.bat").write_bytes(FUZZBUNCH)
    (tmp_path / "config.json").write_bytes(
        b'{"pools": [{"url": "stratum+tcp://pool.example:3333", "user": "x", "pass": "x"}], "donate-level": 1,'
        b' "randomx": {}, "nicehash": false}'
    )
    (tmp_path / "clean.txt").write_bytes(b"nothing to see here\n" * 100)
    result = identify([tmp_path], use_clamav=False, workers=1)
    by_name = {Path(f.path).name: f for f in result.files}
    bat = by_name["run.bat"].yara
    match = next(m for m in bat if m.rule == "WH_FuzzBunch_EternalBlue_Tool")
    assert match.source == "project" and match.namespace == "project.eternalblue"
    assert match.meta["family"] == "EternalBlue" and match.meta["author"] == "wormhunt"
    assert "exploit" in match.tags
    assert "WH_XMRig_Config" in {m.rule for m in by_name["config.json"].yara}
    assert by_name["clean.txt"].yara == [] and by_name["clean.txt"].detections() == []
    assert result.summary.engines["yara_project"].detected == 2


def _user_rules(folder: Path) -> None:
    folder.mkdir()
    (folder / "ext.yar").write_text(
        'rule by_name { condition: filename == "target.dat" }\n'
        'rule by_path { condition: filepath contains "inner" and extension == ".log" }\n'
        'rule by_type { strings: $a = "marker" condition: $a and filetype == "" and owner != "" }\n',
        encoding="utf-8",
    )
    (folder / "sub").mkdir()
    (folder / "sub" / "broken.yara").write_text("rule good_before { condition: true }\nrule bad { condition: nope }\n")


def test_user_rules_with_externals_and_a_broken_file(tmp_path: Path) -> None:
    rules = tmp_path / "myrules"
    _user_rules(rules)
    data = tmp_path / "data"
    (data / "inner").mkdir(parents=True)
    (data / "target.dat").write_bytes(b"marker")
    (data / "other.dat").write_bytes(b"no")
    (data / "inner" / "x.log").write_bytes(b"no")
    (data / "x.log").write_bytes(b"no")
    result = identify([data], rule_dirs=[rules], use_clamav=False, workers=1)
    assert [w.file for w in result.rule_warnings] == [str(rules / "sub" / "broken.yara")]
    assert "nope" in result.rule_warnings[0].message
    assert result.rule_files == {"project": len(project_rule_files()), "user": 1}
    hits = {str(Path(f.path).relative_to(data)): sorted(m.rule for m in f.yara) for f in result.files}
    assert hits == {
        "inner/x.log": ["by_path"],
        "other.dat": [],
        "target.dat": ["by_name", "by_type"],
        "x.log": [],
    }
    assert all(m.source == "user" for f in result.files for m in f.yara)
    assert result.summary.engines["yara_user"].detected == 2


def test_process_pool_gives_the_same_results(tmp_path: Path) -> None:
    for i in range(12):
        (tmp_path / f"f{i}.txt").write_bytes(FUZZBUNCH if i % 3 == 0 else b"plain")
    serial = identify([tmp_path], use_clamav=False, workers=1)
    pooled = identify([tmp_path], use_clamav=False, workers=2, executor="process")
    threaded = identify([tmp_path], use_clamav=False, workers=2, executor="thread")

    def key(r):
        return [(f.path, f.hashes.sha256, [m.rule for m in f.yara]) for f in r.files]

    assert key(serial) == key(pooled) == key(threaded)
    assert serial.summary.engines["yara_project"].detected == 4


def test_skips_carry_their_reasons(tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(b"x" * 5000)
    sparse = tmp_path / "sparse.img"
    with open(sparse, "wb") as fh:
        fh.truncate(64 << 20)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_bytes(FUZZBUNCH)
    (tmp_path / "link.txt").symlink_to(outside)
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "ok.txt").write_bytes(b"fine")
    try:
        result = identify([tmp_path, tmp_path / "missing"], use_clamav=False, workers=1, max_size=4096)
    finally:
        outside.unlink()
    reasons = {Path(f.path).name: (f.skipped, f.skip_detail) for f in result.files}
    assert reasons["big.bin"] == ("too_large", "4096")
    if os.stat(sparse).st_blocks * 512 < (64 << 20) // 4:
        assert reasons["sparse.img"][0] in ("sparse", "too_large")
        small = identify([sparse], use_clamav=False, workers=1)
        assert small.files[0].skipped == "sparse"
    assert reasons["link.txt"] == ("symlink", str(outside))
    assert reasons["pipe"][0] == "fifo"
    assert reasons["missing"][0] == "missing"
    assert reasons["ok.txt"] == (None, None)
    assert result.summary.skip_reasons["symlink"] == 1
    link = next(f for f in result.files if f.path.endswith("link.txt"))
    assert link.hashes is None and link.yara == []  # never followed


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything")
def test_unreadable_file_is_skipped(tmp_path: Path) -> None:
    f = tmp_path / "secret.bin"
    f.write_bytes(b"x")
    f.chmod(0)
    result = identify([f], use_clamav=False, workers=1)
    assert result.files[0].skipped == "unreadable"


def test_clamav_absent_is_not_available(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clamav.shutil, "which", lambda name: None)
    (tmp_path / "a.txt").write_bytes(b"a")
    result = identify([tmp_path], workers=1)
    assert result.files[0].clamav.status == "not_available"
    assert result.summary.engines["clamav"].available is False
    assert result.summary.engines["clamav"].detail == "not available"


def test_clamav_output_parsing() -> None:
    out = "/x/a b: c.txt: OK\n/x/eicar.com: Eicar-Test-Signature FOUND\n/x/y: Access denied. ERROR\n"
    parsed = clamav.parse_output(out)
    assert parsed["/x/a b: c.txt"].status == "clean"
    assert parsed["/x/eicar.com"].signature == "Eicar-Test-Signature"
    assert parsed["/x/y"].status == "error"


def test_json_document_shape(tmp_path: Path) -> None:
    (tmp_path / "run.bat").write_bytes(FUZZBUNCH)
    doc = identify([tmp_path], use_clamav=False, workers=1).to_json()
    f = doc["files"][0]
    assert set(f) >= {"path", "size", "hashes", "pe", "yara", "ssdeep", "clamav", "skipped", "notes", "detections",
                      "families"}  # fmt: skip
    assert f["detections"] == ["yara_project"]
    assert set(doc["summary"]["engines"]) == {"yara_project", "yara_user", "clamav", "pe_heuristics", "family_kb"}


def test_fast_ssdeep_equals_ppdeep() -> None:
    import random

    import ppdeep

    from wormhunt.identify.fuzzy import ssdeep

    rng = random.Random(5)
    cases = [b"a", b"abc" * 3, b"\x00" * 5000, b"A" * 100_000, bytes(range(256)) * 300]
    cases += [rng.randbytes(rng.randint(1, 200_000)) for _ in range(12)]
    cases += [bytes(rng.choice(b"ab \n") for _ in range(rng.randint(1, 20_000))) for _ in range(8)]
    cases += [p.read_bytes() for p in _launchers()[:2]]
    for data in cases:
        assert ssdeep(data) == ppdeep.hash(data), len(data)
    assert ssdeep(b"") is None and ssdeep(b"x" * 100, cap=10) is None


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "wormhunt", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=300,
    )


def test_cli_json_and_console_escape_evidence(tmp_path: Path) -> None:
    (tmp_path / "[red]x[bold].bat").write_bytes(FUZZBUNCH)
    (tmp_path / "clean.txt").write_bytes(b"fine")
    out = _cli("identify", str(tmp_path), "--json")
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["summary"]["detected_files"] == 1 and doc["summary"]["scanned"] == 2
    console = _cli("identify", str(tmp_path), "--lang", "en")
    assert console.returncode == 1
    assert "[red]x[bold].bat" in console.stdout  # shown literally, not interpreted as markup
    assert "WH_FuzzBunch_EternalBlue_Tool" in console.stdout
    zh = _cli("identify", str(tmp_path / "clean.txt"), "--lang", "zh-CN")
    assert zh.returncode == 0 and "已扫描 1" in zh.stdout
    assert _cli("identify", str(tmp_path / "nothing-here"), "--json").returncode == 2


def test_same_rule_names_in_two_rule_folders(tmp_path: Path) -> None:
    for side in ("a", "b"):
        folder = tmp_path / side / "rules"
        folder.mkdir(parents=True)
        (folder / "x.yar").write_text(f'rule same {{ strings: $s = "{side}-marker" condition: $s }}\n')
    compiled = compile_rules([tmp_path / "a" / "rules", tmp_path / "b" / "rules"])
    assert compiled.warnings == [] and compiled.counts["user"] == 2
    (tmp_path / "data.txt").write_bytes(b"a-marker b-marker")
    result = identify([tmp_path / "data.txt"], compiled=compiled, use_clamav=False, workers=1)
    assert sorted(m.namespace for m in result.files[0].yara) == ["user0.rules/x.yar", "user1.rules/x.yar"]


def test_family_knowledge_base_names_the_file(tmp_path: Path) -> None:
    # A file name the WannaMine 3.0 entry knows, and an ordinary file: only the first is named.
    (tmp_path / "snmpstorsrv.dll").write_bytes(b"MZ not really a dll")
    (tmp_path / "notes.txt").write_text("meeting notes")
    result = identify([tmp_path], workers=1, use_clamav=False, executor="thread")
    by_name = {Path(f.path).name: f for f in result.files}
    (fam,) = [f for f in by_name["snmpstorsrv.dll"].families if f["verdict"]]
    assert fam["family"] == "wannamine3" and fam["matched"][0]["type"] == "file_name"
    assert "family_kb" in by_name["snmpstorsrv.dll"].detections()
    assert by_name["notes.txt"].families == [] and "family_kb" not in by_name["notes.txt"].detections()
    assert result.summary.engines["family_kb"].detected == 1


def test_workers_are_not_forked_from_a_process_that_has_scanned(tmp_path: Path) -> None:
    """yara-x runs its scan-timeout thread in a process once it has scanned with a timeout; a
    child forked from that process lacks the thread and its timeouts never fire."""
    code = """
import sys
from pathlib import Path
from wormhunt.identify import identify, scan
from wormhunt.identify.yarascan import compile_rules, may_fork
compiled = compile_rules([])
folder = Path(sys.argv[1])
before = scan._executor("process", 2, compiled, scan.Options())[0]
print(before._mp_context.get_start_method(), may_fork())
before.shutdown()
identify([folder], use_clamav=False, workers=1)  # scans in this process
after = scan._executor("process", 2, compiled, scan.Options())[0]
print(after._mp_context.get_start_method(), may_fork())
after.shutdown()
"""
    (tmp_path / "a.txt").write_bytes(FUZZBUNCH)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    first, second = out.stdout.split("\n")[:2]
    if not first.startswith("fork"):
        pytest.skip("this platform does not fork by default")
    assert first == "fork True"
    assert second.split() in (["forkserver", "False"], ["spawn", "False"])
