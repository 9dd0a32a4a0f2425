"""The outbreak simulator: deterministic, consistent ground truth, real formats and encodings."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from wormhunt.simulate import simulate
from wormhunt.sources.detect import detect_file
from wormhunt.sources.text import decode


def tree_hash(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = simulate(tmp_path / "a", hosts=30, seed=4, lines=5000)
    b = simulate(tmp_path / "b", hosts=30, seed=4, lines=5000)
    assert a == b
    assert tree_hash(tmp_path / "a") == tree_hash(tmp_path / "b")
    c = simulate(tmp_path / "c", hosts=30, seed=5, lines=5000)
    assert tree_hash(tmp_path / "a") != tree_hash(tmp_path / "c")
    assert c["infected"] != a["infected"] or c["patient_zero"] != a["patient_zero"]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_ground_truth_is_consistent(tmp_path: Path, seed: int) -> None:
    truth = simulate(tmp_path / "s", hosts=80, seed=seed, lines=10_000)
    hosts = {h["host"]: h for h in truth["hosts"]}
    t = {n: datetime.fromisoformat(h["infected_at"]) for n, h in hosts.items() if h["infected"]}
    p0 = truth["patient_zero"]["host"]
    assert min(t, key=t.get) == p0
    assert sorted(t) == truth["infected"]
    for name in truth["infected"]:
        h = hosts[name]
        # Only unpatched Windows 7 / 2008 R2 can be infected by EternalBlue here.
        assert not h["patched"] and ("2008 R2" in h["os"] or "Windows 7" in h["os"])
    for e in truth["edges"]:
        assert t[e["src"]] < t[e["dst"]] and e["dst"] in t
        assert abs((datetime.fromisoformat(e["ts"]) - t[e["dst"]]).total_seconds()) < 1
    assert {e["dst"] for e in truth["edges"]} == set(truth["infected"]) - {p0}
    # The incident: at least 7 servers besides patient zero, all within minutes.
    servers = [n for n in truth["infected"] if hosts[n]["role"] != "pc" and n != p0]
    assert len(servers) >= 7
    assert max(t[n] for n in servers) - t[p0] < (datetime(2000, 1, 1, 0, 15) - datetime(2000, 1, 1))


def test_evidence_is_written_in_real_formats_and_encodings(tmp_path: Path) -> None:
    truth = simulate(tmp_path / "s", hosts=40, seed=9, lines=5000)
    expected = {
        "netstat_ano.txt": "netstat",
        "tasklist_v.csv": "tasklist",
        "tasklist_svc.txt": "tasklist",
        "systeminfo.txt": "systeminfo",
        "wmic_process.csv": "wmic-process",
    }
    seen_encodings = set()
    for h in truth["hosts"]:
        folder = tmp_path / "s" / "hosts" / h["host"]
        for name, fmt in expected.items():
            det = detect_file(folder / name)
            assert det.format is not None and det.format.name == fmt, (h["host"], name)
            seen_encodings.add((h["locale"], h["collection"], name, det.encoding.label))
            text = decode((folder / name).read_bytes()).text
            if h["collection"] == "console-copy":
                assert text.startswith("C:\\Windows\\system32>")
        si = decode((folder / "systeminfo.txt").read_bytes()).text
        assert ("主机名:" in si) == (h["locale"] == "zh-CN")
    labels = {enc for (_, coll, name, enc) in seen_encodings}
    assert {"gb18030", "utf-16-le+bom", "utf-8"} <= labels
    for locale, coll, name, enc in seen_encodings:
        if coll == "powershell" or (name == "wmic_process.csv" and coll == "cmd"):
            assert enc == "utf-16-le+bom"
        elif coll == "cmd" and locale == "zh-CN":
            assert enc == "gb18030"
    assert detect_file(tmp_path / "s" / "network" / "fgt-traffic.log").format.name == "fortigate"
    assert detect_file(tmp_path / "s" / "assets.csv").format.name == "assets"
    assert json.loads((tmp_path / "s" / "ground_truth.json").read_text(encoding="utf-8")) == truth


def test_infected_hosts_carry_the_wannamine_artifacts(tmp_path: Path) -> None:
    from wormhunt.sources import tasklist
    from wormhunt.sources.base import MemorySink

    truth = simulate(tmp_path / "s", hosts=40, seed=10, lines=5000)
    hidden = 0
    for h in truth["hosts"]:
        svc = MemorySink()
        tasklist.parse(decode((tmp_path / "s" / "hosts" / h["host"] / "tasklist_svc.txt").read_bytes()).text, svc)
        hosted = {s for r in svc.of("processes") for s in (r["services"] or [])}
        pids = {r["pid"] for r in svc.of("processes")}
        if not h["infected"]:
            assert h["artifacts"] is None and "snmpstorsrv" not in hosted
            continue
        art = h["artifacts"]
        assert art["services"] == ["snmpstorsrv"] and art["tasks"] == ["\\UPnPHostServices"]
        assert "C:\\Windows\\AppDiagnostics\\svchost.exe" in art["files"]
        assert "snmpstorsrv" in hosted  # the service shows in `tasklist /svc`, inside a genuine svchost
        # The scanner is missing from the process lists exactly where the truth says it is hidden.
        assert (art["scanner_pid"] not in pids) == art["scanner_hidden"]
        netstat = decode((tmp_path / "s" / "hosts" / h["host"] / "netstat_ano.txt").read_bytes()).text
        assert f"SYN_SENT        {art['scanner_pid']}" in netstat
        hidden += art["scanner_hidden"]
    assert 0 < hidden < len(truth["infected"])


def test_scales_to_a_thousand_hosts(tmp_path: Path) -> None:
    truth = simulate(tmp_path / "s", hosts=1000, seed=2, lines=100_000, days=1)
    assert truth["hosts_total"] == 1000
    assert len(list((tmp_path / "s" / "hosts").iterdir())) == 1000
    lines = truth["firewall_lines"]["traffic"]
    with open(tmp_path / "s" / "network" / "fgt-traffic.log", "rb") as fh:
        assert sum(1 for _ in fh) == lines
    assert lines >= 95_000
    assert len(truth["infected"]) >= 8


NEW_ARTIFACTS = {
    "dir_appdiagnostics.txt": {"dir"},
    "certutil_sha256.txt": {"certutil-hashfile"},
    "portproxy.txt": {"netsh-portproxy"},
    "net_user.txt": {"net-user"},
    "hotfixes.csv": {"wmic-qfe", "Get-HotFix"},
    "wmi_subscriptions.txt": {"wmi-subscription"},
    "autoruns.csv": {"autorunsc"},
}


def test_bundles_carry_the_responder_artifacts_in_both_locales(tmp_path: Path) -> None:
    from wormhunt.sources import autoruns as autoruns_src
    from wormhunt.sources import filelist, hostcfg, hotfix, wmi
    from wormhunt.sources.base import MemorySink, Sink

    truth = simulate(tmp_path / "s", hosts=30, seed=9, lines=2000, days=1)
    seen: set[tuple[str, bool]] = set()
    for h in truth["hosts"]:
        folder = tmp_path / "s" / "hosts" / h["host"]
        present = {name for name in NEW_ARTIFACTS if (folder / name).exists()}
        # AppDiagnostics listing and hashes only where the worm left files; portproxy only where a forward exists.
        assert ({"dir_appdiagnostics.txt", "certutil_sha256.txt"} <= present) == h["infected"], h["host"]
        assert ("portproxy.txt" in present) == (h["role"] == "app"), h["host"]
        assert {"net_user.txt", "hotfixes.csv", "wmi_subscriptions.txt", "autoruns.csv"} <= present
        for name in present:
            det = detect_file(folder / name)
            assert det.format is not None and det.format.name in NEW_ARTIFACTS[name], (h["host"], name, det)
        seen.add((h["locale"], h["infected"]))

        def rows(name: str, parser: Callable[[str, Sink], None], table: str, folder: Path = folder) -> list[dict]:
            sink = MemorySink()
            parser(decode((folder / name).read_bytes()).text, sink)
            assert sink.skips == [], (folder.name, name, sink.skips)
            return sink.of(table)

        users = [r["name"] for r in rows("net_user.txt", hostcfg.parse_netuser, "host_config")]
        assert users[:2] == ["Administrator", "Guest"] and len(users) == 3
        # The same updates as systeminfo lists, MS17-010 among them exactly when the host is patched.
        kbs = {r["hotfix"] for r in rows("hotfixes.csv", hotfix.parse, "hotfixes")}
        listed_by_systeminfo = set(re.findall(r"\]: (KB\d+)", decode((folder / "systeminfo.txt").read_bytes()).text))
        assert kbs == listed_by_systeminfo and kbs
        subs = rows("wmi_subscriptions.txt", wmi.parse, "wmi")
        assert [r["class"] for r in subs] == ["__EventFilter", "NTEventLogEventConsumer", "__FilterToConsumerBinding"]
        assert subs[0]["name"] == "SCM Event Log Filter" and subs[2]["consumer"].endswith('"SCM Event Log Consumer"')
        entries = {r["entry"] for r in rows("autoruns.csv", autoruns_src.parse, "autoruns")}
        assert ("snmpstorsrv" in entries) == h["infected"]
        if h["infected"]:
            listed = rows("dir_appdiagnostics.txt", filelist.parse_dir, "files")
            assert {r["path"] for r in listed} == {f for f in h["artifacts"]["files"] if "AppDiagnostics" in f}
            # The forged creation date; the reader files it as `created` only when the echoed `dir /t:c`
            # prompt says which time the listing shows (console copies), else as `modified`.
            assert {(r["created"] or r["modified"]).date().isoformat() for r in listed} == {"2017-04-15"}
            assert all(r["created"] is not None for r in listed) == (h["collection"] == "console-copy")
            hashed = rows("certutil_sha256.txt", filelist.parse_certutil, "files")
            assert {r["path"] for r in hashed} == set(h["artifacts"]["files"])
            assert all(len(r["sha256"]) == 64 for r in hashed)
        if h["role"] == "app":
            fwd = rows("portproxy.txt", hostcfg.parse_portproxy, "host_config")
            assert [r["name"] for r in fwd] == [f"{h['ip']}:8443"]
    assert seen == {("zh-CN", True), ("zh-CN", False), ("en-US", True), ("en-US", False)}
