"""MS17-010 audit (analyze/patch.py): one test per rule, the real systeminfo files, and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wormhunt.analyze.patch import FileVersion, HostFacts, Hotfix, Ref, audit_case, decide, match_family
from wormhunt.cli import app
from wormhunt.ingest import ingest
from wormhunt.knowledge import KnowledgeError, load, validate
from wormhunt.store import Case

REF = Ref("test", 1, 1, "test")


def host(version: str, os_name: str = "", kbs: tuple[str, ...] = (), source: str = "systeminfo", **kw) -> HostFacts:
    f = HostFacts("H", os_name=os_name or None, os_version=version, **kw)
    f.hotfixes = [Hotfix(kb, source, REF) for kb in kbs]
    if source == "systeminfo" and "declared" not in kw:
        f.declared = f.listed = len(kbs)
    return f


def srv(facts: HostFacts, version: str, source: str = "VersionInfo File*Part") -> HostFacts:
    facts.files.append(FileVersion(r"C:\Windows\System32\drivers\srv.sys", version, source, REF))
    return facts


WIN7 = ("6.1.7601", "Microsoft Windows 7 Enterprise")
OLD_WIN7_KBS = ("KB2534111", "KB976902", "KB3125574")


def test_knowledge_loads_and_rejects_bad_entries() -> None:
    data = load("ms17010")
    ids = {f["id"] for f in data["families"]}
    assert {"xp", "xp64_2003", "vista_2008", "win7_2008r2", "win8", "server2012", "win81_2012r2"} <= ids
    assert {"win10_1507", "win10_1511", "win10_1607_2016", "win10_fixed"} <= ids
    bad = {**data, "families": [{**data["families"][0], "fixing_kbs": [{"kb": "KB12", "kind": "x", "source": "C"}]}]}
    with pytest.raises(KnowledgeError):
        validate("ms17010", bad)
    bad = {**data, "families": [{**data["families"][0], "srv_sys": [{"min": "6.1", "source": "C"}]}]}
    with pytest.raises(KnowledgeError, match="srv_sys"):
        validate("ms17010", bad)


def test_family_matching() -> None:
    assert match_family("6.2.9200", "Microsoft Windows Server 2012 Standard")["id"] == "server2012"
    assert match_family("6.2.9200", "Microsoft Windows 8 Pro")["id"] == "win8"
    assert match_family("10.0.14393", "Microsoft Windows Server 2016")["id"] == "win10_1607_2016"
    assert match_family("10.0.26100")["id"] == "win10_fixed"
    assert match_family("10.0.14000") is None


@pytest.mark.parametrize(
    ("version", "verdict"),
    [
        ("6.1.7601.23688", "vulnerable"),  # one below the threshold
        ("6.1.7601.23689", "patched"),  # at the threshold
        ("6.1.7601.24000", "patched"),
    ],
)
def test_srv_sys_threshold_win7(version: str, verdict: str) -> None:
    # srv.sys beats the KB list: an old KB list with a new file is patched, and the reverse.
    a = decide(srv(host(*WIN7, kbs=OLD_WIN7_KBS), version))
    assert (a.verdict, a.reason) == (verdict, "srvsys_ok" if verdict == "patched" else "srvsys_below")


def test_srv_sys_vista_branches_and_windows10() -> None:
    vista = ("6.0.6002", "Microsoft Windows Server 2008 Standard")
    assert decide(srv(host(*vista), "6.0.6002.19742")).verdict == "vulnerable"  # GDR just below
    assert decide(srv(host(*vista), "6.0.6002.19743")).verdict == "patched"
    assert decide(srv(host(*vista), "6.0.6002.24066")).verdict == "vulnerable"  # LDR just below
    assert decide(srv(host(*vista), "6.0.6002.24067")).verdict == "patched"
    # An LDR file above the GDR minimum but below the LDR one is still vulnerable.
    assert decide(srv(host(*vista), "6.0.6002.23000")).verdict == "vulnerable"
    # Vista SP1's file is an older build: below any fixed version.
    assert decide(srv(host("6.0.6001", "Windows Vista"), "6.0.6001.18000")).verdict == "vulnerable"
    w1607 = ("10.0.14393", "Microsoft Windows Server 2016 Standard")
    assert decide(srv(host(*w1607), "10.0.14393.952")).verdict == "vulnerable"
    assert decide(srv(host(*w1607), "10.0.14393.953")).verdict == "patched"
    # Windows 10 keeps the release number in the FileVersion string: it does not make a host vulnerable.
    a = decide(srv(host(*w1607, kbs=("KB4093119",)), "10.0.14393.0", source="VersionInfo FileVersion"))
    assert a.verdict == "unknown" and a.notes[0][0] == "srvsys_not_decisive"
    # A srv.sys version alone (no systeminfo) finds its OS.
    alone = srv(HostFacts("H"), "6.3.9600.18603")
    assert (decide(alone).verdict, decide(alone).family) == ("vulnerable", "win81_2012r2")


def test_pending_reboot_note() -> None:
    a = decide(srv(host(*WIN7, kbs=("KB4012212",)), "6.1.7601.23000"))
    assert a.verdict == "vulnerable" and ("kb_but_old_file", {"kb": "KB4012212"}) in a.notes


@pytest.mark.parametrize(
    "kb",
    ["KB4012212", "KB4012215", "KB4015549", "KB4019264", "KB4019263"],
)
def test_original_kbs_and_rollups_supersede(kb: str) -> None:
    a = decide(host(*WIN7, kbs=(*OLD_WIN7_KBS, kb)))
    assert (a.verdict, a.reason, a.params["kb"]) == ("patched", "kb_fix", kb)


def test_rollup_of_another_os_does_not_count() -> None:
    # KB4015549 is a Windows 7 rollup; on 2012 R2 it fixes nothing (a community list gets this wrong).
    a = decide(host("6.3.9600", "Microsoft Windows Server 2012 R2 Standard", kbs=("KB2919355", "KB4015549")))
    assert a.verdict == "unknown" and a.reason == "later_kbs"  # an unknown later KB, not a fix


def test_april_security_only_trap() -> None:
    a = decide(host(*WIN7, kbs=(*OLD_WIN7_KBS, "KB4015546")))
    assert (a.verdict, a.reason, a.params) == ("vulnerable", "april_trap", {"kb": "KB4015546"})
    # With the April monthly rollup beside it, the host is patched.
    assert decide(host(*WIN7, kbs=("KB4015546", "KB4015549"))).verdict == "patched"
    # 2012 R2's April security-only update alone: vulnerable too.
    r2 = decide(host("6.3.9600", "Microsoft Windows Server 2012 R2", kbs=("KB2919355", "KB4015547")))
    assert (r2.verdict, r2.reason) == ("vulnerable", "april_trap")


def test_complete_list_without_anything_recent_is_vulnerable() -> None:
    a = decide(host(*WIN7, kbs=OLD_WIN7_KBS))
    assert (a.verdict, a.reason, a.params["floor"]) == ("vulnerable", "nothing_since", "KB4012212")
    # An unknown KB from after March 2017 may be a later rollup: unknown, never vulnerable.
    b = decide(host(*WIN7, kbs=(*OLD_WIN7_KBS, "KB4493472")))
    assert (b.verdict, b.reason) == ("unknown", "later_kbs")


def test_windows7_rtm_cannot_take_the_fix() -> None:
    rtm = ("6.1.7600", "Microsoft Windows 7 Professional")
    assert (decide(host(*rtm)).verdict, decide(host(*rtm)).reason) == ("vulnerable", "cannot_take_fix")
    # Even with a Windows 7 SP1 KB listed (it cannot have installed).
    assert decide(host(*rtm, kbs=("KB4012212",))).verdict == "vulnerable"
    assert decide(srv(host(*rtm), "6.1.7600.16385")).reason == "srvsys_rtm"
    # ... unless srv.sys says otherwise (the host was upgraded since systeminfo ran).
    assert decide(srv(host(*rtm), "6.1.7601.23689")).verdict == "patched"


def test_truncated_systeminfo_list_is_unknown() -> None:
    a = decide(host(*WIN7, kbs=OLD_WIN7_KBS, declared=250, listed=3))
    assert (a.verdict, a.reason, a.params) == ("unknown", "truncated", {"declared": 250, "listed": 3})
    # A fix KB seen in the part that was listed still counts.
    assert decide(host(*WIN7, kbs=("KB4012215",), declared=250, listed=1)).verdict == "patched"


@pytest.mark.parametrize(("source", "kbs", "verdict"), [
    ("wmic qfe", (*OLD_WIN7_KBS, "KB4019264"), "patched"),
    ("Get-HotFix", (*OLD_WIN7_KBS, "KB4012212"), "patched"),
    ("wmic qfe", OLD_WIN7_KBS, "vulnerable"),
    ("Get-HotFix", (*OLD_WIN7_KBS, "KB4015546"), "vulnerable"),
])  # fmt: skip
def test_truncated_list_settled_by_another_source(source: str, kbs: tuple[str, ...], verdict: str) -> None:
    f = host(*WIN7, kbs=OLD_WIN7_KBS[:2], declared=250, listed=2)
    f.hotfixes += [Hotfix(kb, source, REF) for kb in kbs]
    assert decide(f).verdict == verdict


def test_truncated_list_settled_by_srv_sys() -> None:
    f = srv(host(*WIN7, kbs=OLD_WIN7_KBS, declared=250, listed=3), "6.1.7601.23689")
    assert decide(f).verdict == "patched"


def test_windows10() -> None:
    # 1703 (15063) and later shipped fixed, whatever the (often one-line) KB list says.
    for build in ("10.0.15063", "10.0.17134", "10.0.17763", "10.0.22631"):
        assert decide(host(build, "Microsoft Windows 10 Pro")).reason == "release_fixed", build
    w1607 = ("10.0.14393", "Microsoft Windows 10 Enterprise")
    assert decide(host(*w1607, kbs=("KB4013429",))).verdict == "patched"
    assert decide(host(*w1607, kbs=("KB4019472",))).verdict == "patched"  # a later CU
    assert decide(host(*w1607, kbs=("KB3199986",))).verdict == "vulnerable"  # nothing from 2017-03 on
    assert decide(host(*w1607, kbs=("KB4093119",))).verdict == "unknown"  # a later CU not in the table
    # The update build revision from `ver`.
    assert decide(host(*w1607, ubr=953)).reason == "ubr_ok"
    low = decide(host(*w1607, ubr=447))
    assert (low.verdict, low.reason, low.build) == ("vulnerable", "ubr_below", "10.0.14393.447")
    assert decide(host("10.0.10240", "Windows 10", ubr=17318)).verdict == "vulnerable"
    assert decide(host("10.0.10586", "Windows 10", ubr=839)).verdict == "patched"


def test_smb1_and_unknown_os() -> None:
    f = host(*WIN7, kbs=OLD_WIN7_KBS, smb1="disabled")
    a = decide(f)
    assert a.verdict == "vulnerable" and a.smb1 == "disabled" and a.notes == [("smb1_disabled", {})]
    assert decide(host("4.0.1381")).verdict == "unknown"
    assert decide(HostFacts("H")).reason == "os_unknown"
    assert decide(host(*WIN7, declared=None)).reason in ("nothing_since", "no_hotfix_list")
    none = HostFacts("H", os_version="6.1.7601")
    assert decide(none).reason == "no_hotfix_list"


# ---------------------------------------------------------------- through a case

SYSTEMINFO = """Host Name:                 SRV-LEGACY
OS Name:                   Microsoft Windows Server 2008 R2 Standard
OS Version:                6.1.7601 Service Pack 1 Build 7601
System Type:               x64-based PC
Hotfix(s):                 4 Hotfix(s) Installed.
                           [01]: KB2534111
                           [02]: KB976902
"""
QFE = """HotFixID   InstalledOn
KB2534111  3/1/2016
KB976902   3/1/2016
KB3125574  3/1/2016
KB4015546  4/20/2017
"""
SRV_VERSION = "Version\n6.1.7601.23689\n"


def write_host(root: Path, name: str, files: dict[str, str], encoding: str = "utf-8") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"host": name}), encoding="utf-8")
    for fname, text in files.items():
        (folder / fname).write_bytes(text.replace("\n", "\r\n").encode(encoding))
    return folder


def test_case_end_to_end(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    write_host(ev, "A", {"systeminfo.txt": SYSTEMINFO})  # truncated: unknown
    write_host(ev, "B", {"systeminfo.txt": SYSTEMINFO, "qfe.txt": QFE})  # qfe: only the April trap
    write_host(ev, "C", {"systeminfo.txt": SYSTEMINFO, "srv.txt": SRV_VERSION}, "utf-16")  # srv.sys fixed
    with Case(tmp_path / "case") as c:
        ingest(c, [ev])
        got = {a.host: (a.verdict, a.reason) for a in audit_case(c)}
    assert got == {
        "A": ("unknown", "truncated"),
        "B": ("vulnerable", "april_trap"),
        "C": ("patched", "srvsys_ok"),
    }


def test_cli_json_and_table(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    write_host(ev, "B", {"systeminfo.txt": SYSTEMINFO, "qfe.txt": QFE})
    write_host(ev, "E", {"systeminfo.txt": SYSTEMINFO.replace("R2 Standard", "R2 [red]X[/]")})
    runner = CliRunner()
    res = runner.invoke(app, ["audit", "ms17-010", str(ev), "--json", "--lang", "en"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    hosts = {h["host"]: h for h in doc["hosts"]}
    assert hosts["B"]["verdict"] == "vulnerable" and "April 2017" in hosts["B"]["reason"]
    assert hosts["B"]["os"] == "Microsoft Windows Server 2008 R2 Standard" and hosts["B"]["build"] == "6.1.7601"
    assert any(e["text"].startswith("KB4015546") for e in hosts["B"]["evidence"])
    assert {"host", "verdict", "reason", "os", "build", "evidence"} <= set(hosts["E"])
    assert doc["summary"] == {"hosts": 2, "patched": 0, "vulnerable": 1, "unknown": 1}
    assert "not a cure" in doc["remediation"]
    zh = runner.invoke(app, ["audit", "ms17-010", str(ev), "--lang", "zh-CN"])
    assert zh.exit_code == 0 and "不能清除感染" in zh.stdout and "存在漏洞" in zh.stdout
    en = runner.invoke(app, ["audit", "ms17-010", str(ev), "--lang", "en"])
    assert "not a cure" in en.stdout.replace("\n", " ")
    assert "[red]X[/]" in en.stdout  # evidence text is escaped, not rendered as markup
    bad = runner.invoke(app, ["audit", "ms17-010"])
    assert bad.exit_code != 0


# ---------------------------------------------------------------- the real files

# Expected verdict per real systeminfo file, reasoned from its OS and hotfix list
# (threat-intel.md 3.2, knowledge/ms17010.yaml). "Nothing from 2017-03 on" means the list is
# complete (declared == listed) and no KB is numbered at or above the OS's lowest March 2017
# MS17-010 KB, so no update that could contain the fix is installed.
REAL = {
    # Windows 10 1803 (17134), 1809 (17763), 21H1/21H2/22H2 and Windows 11: 1703 (15063) and
    # later shipped fixed; the KB lists (often only the latest CU) do not matter.
    "10_1803_x64_education_en-us_systeminfo.txt": "patched",
    "10_1803_x64_enterprise_es-ar_20190307_systeminfo.txt": "patched",
    "10_1803_x64_pro_it_systeminfo.txt": "patched",  # Italian, cp850
    "10_1803_x64_proforworkstations_en-us_A_20190305_systeminfo.txt": "patched",  # UTF-16
    "10_1803_x64_proforworkstations_en-us_B_20190306_systeminfo.txt": "patched",  # 0 hotfixes: the build decides
    "10_1803_x64_proforworkstations_en-us_systeminfo.txt": "patched",
    "10_1803_x86_enterprise_nl_systeminfo.txt": "patched",
    "10_1809_x64_education_en-us_20190306_systeminfo.txt": "patched",
    "10_1809_x64_education_en-us_systeminfo.txt": "patched",
    "10_1809_x64_education_es_systeminfo.txt": "patched",
    "10_1809_x64_enterprise_zh-cn_systeminfo.txt": "patched",  # zh-CN, GBK: LTSC 1809, build 17763
    "10_1809_x64_pro_en-us_20190307_systeminfo.txt": "patched",
    "10_21H1_x64_enterprise_systeminfo.txt": "patched",
    "10_21H2_x64_pro_systeminfo.txt": "patched",
    "10_22H2_x64_enterprise_en-us_systeminfo.txt": "patched",
    "11_21H2_x64_enterprise_systeminfo.txt": "patched",
    "11_22H2_x64_home-single-language_systeminfo.txt": "patched",
    "11_23H2_x64_enterprise_systeminfo.txt": "patched",
    "11_24H2_x64_enterprise_systeminfo.txt": "patched",
    "srv_2019_rtm_datacenter_en-us_systeminfo.txt": "patched",  # 17763: Server 2019 shipped fixed
    "srv_2022_systeminfo.txt": "patched",  # 20348
    # Windows 10 1507 (10240): KB3074665 and KB4021701, complete. No fixing CU from the table
    # (KB4012606, KB4015221, KB4016637, KB4019474), but KB4021701 is above the floor KB4012606 and
    # is not in the table: it may be a later CU, and later CU numbers are not in the reference.
    "10_rtm_x64_pro_en-us_systeminfo.txt": "unknown",
    # Windows 7 SP1 x64 A: 219 of 219 listed, highest KB3061518 (2015): nothing from 2017-03 on.
    "7_sp1_x64_enterprise_en-us_A_systeminfo.txt": "vulnerable",
    # Windows 7 SP1 x64 B: 271 declared, 245 listed (cut short), no MS17-010 KB in the part
    # listed: unknown. (Its wmic qfe lists all 271: see the pair test below.)
    "7_sp1_x64_enterprise_en-us_B_systeminfo.txt": "unknown",
    # Windows 7 SP1 fr (cmd, cp850; PowerShell, UTF-16): complete lists with KB4019990, KB4040980
    # and KB4493472 above the floor KB4012212, none of them in the table: may hold a later rollup.
    "7_sp1_x64_enterprise_fr_systeminfo_cmd.txt": "unknown",
    "7_sp1_x64_enterprise_fr_systeminfo_powershell.txt": "unknown",
    # Windows 7 SP1 de: 263 declared, 245 listed, no MS17-010 KB listed: cut short, unknown.
    "7_sp1_x64_ultimaten_de_systeminfo.txt": "unknown",
    # Windows 7 SP1 x86: KB2534111 and KB976902, complete: nothing from 2017-03 on.
    "7_sp1_x86_enterprise_en-us_systeminfo.txt": "vulnerable",
    # Windows 8.1 Update 1: 6 of 6, highest KB2949621 (2014): nothing from 2017-03 on.
    "8.1_u1_x64_enterprise_en-us_systeminfo.txt": "vulnerable",
    # Server 2003 RTM / SP1 / R2 SP2 x64: 3, 1 and 1 items (File 1, Q147222, KB893803), complete,
    # no KB4012598: vulnerable.
    "srv_2003_rtm_x86_standard_en-us_systeminfo.txt": "vulnerable",
    "srv_2003_sp1_x64_standard_en-us_systeminfo.txt": "vulnerable",
    "srv_2003r2_sp2_rtm_x64_standard_en-us_systeminfo.txt": "vulnerable",
    # Server 2003 R2 SP2 x86: 352 declared, 239 listed, no KB4012598 listed: cut short, unknown.
    "srv_2003r2_sp2_x86_standard_en-us_systeminfo.txt": "unknown",
    # Server 2008 SP1 (6001) x64 and x86: KB956250 only, complete: vulnerable (the fix needs SP2).
    "srv_2008_rtm_x64_standard_en-us_systeminfo.txt": "vulnerable",
    "srv_2008_rtm_x86_standard_en-us_systeminfo.txt": "vulnerable",
    # Server 2012 R2: 154 (and 156) of as many listed. No 8.1/2012 R2 MS17-010 KB from the table,
    # but ten or more KBs above the floor KB4012213 (KB4033428 ... KB4489881) that the table does
    # not know; later monthly rollup numbers are not in the reference: unknown.
    "srv_2012r2_u1_systeminfo.txt": "unknown",
    "srv_2012r2_u1_systeminfo2.txt": "unknown",
    # Vista RTM (6000) and SP1 (6001): 105 and 174 listed, complete, highest KB981349 / KB2555917.
    "vista_x64_sp0_systeminfo.txt": "vulnerable",
    "vista_x64_sp1_systeminfo.txt": "vulnerable",
    # XP RTM, SP1, SP2 x86: File 1 / Q147222 / KB893803, complete: vulnerable.
    "xp_rtm_x86_professional_en-us_systeminfo.txt": "vulnerable",
    "xp_sp1_x86_systeminfo.txt": "vulnerable",
    "xp_sp2_x86_systeminfo.txt": "vulnerable",
    # XP x64 SP2 (5.2.3790): 300 declared, 228 listed, no KB4012598 listed: cut short, unknown.
    "xp_sp2_x64_systeminfo.txt": "unknown",
    # XP SP3: 262 declared, 220 listed: cut short, unknown (its wmic qfe settles it: pair test).
    "xp_sp3_x86_professional_en-us_systeminfo.txt": "unknown",
}

# systeminfo + wmic qfe of the same host, copied side by side into a temporary folder.
REAL_PAIRS = {
    # XP SP3: the qfe lists all 262 entries, highest KB2934207 (2014), no KB4012598: vulnerable.
    ("xp_sp3_x86_professional_en-us_systeminfo.txt", "xp_sp3_x86_professional_en-us_qfe.txt"): "vulnerable",
    # Windows 7 B: the qfe lists all 271; still no MS17-010 KB from the table, but KB4019990,
    # KB4040980, KB4457044, KB4459934, KB4467107 are above the floor and unknown to it: unknown.
    ("7_sp1_x64_enterprise_en-us_B_systeminfo.txt", "7_sp1_x64_enterprise_en-us_B_qfe.txt"): "unknown",
}


def _verdicts(case_dir: Path, paths: list[Path]) -> list[tuple[str, str]]:
    with Case(case_dir) as c:
        ingest(c, paths)
        return [(a.verdict, a.reason) for a in audit_case(c)]


def test_real_systeminfo_files(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "systeminfo"
    if not folder.is_dir():
        pytest.skip("no systeminfo folder in the shared data")
    present = {p.name for p in folder.glob("*systeminfo*.txt")}
    assert present == set(REAL), "a real file without an expected verdict (or one gone)"
    wrong = {}
    for i, (name, expected) in enumerate(sorted(REAL.items())):
        got = _verdicts(tmp_path / f"c{i}", [folder / name])
        if [v for v, _ in got] != [expected]:
            wrong[name] = (expected, got)
    assert not wrong


def test_real_systeminfo_with_qfe(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "systeminfo"
    if not folder.is_dir():
        pytest.skip("no systeminfo folder in the shared data")
    for i, (names, expected) in enumerate(REAL_PAIRS.items()):
        pair = tmp_path / f"host{i}"
        pair.mkdir()
        for name in names:
            shutil.copy(folder / name, pair / name)
        got = _verdicts(tmp_path / f"c{i}", [pair])
        assert [v for v, _ in got] == [expected], (names, got)
        assert got[0][1] != "truncated"  # the qfe made the list complete
