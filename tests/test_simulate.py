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

    # Artifacts with content only: what commands print when there is nothing has its own test.
    truth = simulate(tmp_path / "s", hosts=30, seed=9, lines=2000, days=1, empty_outputs=False)
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


# ---------------------------------------------------------------- families, leftovers, empty outputs

WM4_NAME = re.compile(
    r"^(Windows|Microsoft|Network|Remote|Function|Secure|Application)(Update|Time|NetBIOS|RPC|Protocol|SSDP|UPnP)"
    r"(Service|Host|Client|Event|Manager|Helper|System)$"
)


def _hosts(case, sql: str) -> set[str]:
    return {r["host"] for r in case.query(sql)}


def _family_hosts(case, family: str) -> dict[str, set[str]]:
    """Per artifact kind, the hosts whose parsed bundle shows `family`'s artifacts."""
    q = {
        "wannamine3": {
            "service": "SELECT host FROM services WHERE name = 'snmpstorsrv'",
            "task": "SELECT host FROM tasks WHERE name = '\\UPnPHostServices'",
            "dir": "SELECT host FROM files WHERE source = 'dir' AND path ILIKE 'C:\\Windows\\AppDiagnostics\\%'",
            "hash": "SELECT host FROM files WHERE sha256 IS NOT NULL AND path ILIKE '%\\snmpstorsrv.dll'",
            "autoruns": "SELECT host FROM autoruns WHERE entry = 'snmpstorsrv'",
            "process": "SELECT host FROM processes WHERE name = 'TrustedHostex.exe'",
        },
        "wannamine4": {
            "service": "SELECT host FROM services WHERE regexp_matches(name, '" + WM4_NAME.pattern + "')",
            "dir": "SELECT host FROM files WHERE source = 'dir' AND path ILIKE 'C:\\Windows\\NetworkDistribution\\%'",
            "hash": "SELECT host FROM files WHERE sha256 IS NOT NULL AND path ILIKE '%\\System32\\dllhostex.exe'",
            "autoruns": "SELECT host FROM autoruns WHERE regexp_matches(entry, '" + WM4_NAME.pattern + "') "
            "AND image_path ILIKE 'c:\\windows\\system32\\%.dll'",
            "process": "SELECT host FROM processes WHERE name = 'dllhostex.exe' AND command_line LIKE '% -o stratum%'",
        },
        "wannamine-fileless": {
            "filter": "SELECT host FROM wmi WHERE class = '__EventFilter' AND (name = 'DSM Event Log Filter' "
            "OR regexp_matches(name, '^SCM Event\\d Log Filter$'))",
            "consumer": "SELECT host FROM wmi WHERE class = 'CommandLineEventConsumer' "
            "AND command LIKE 'powershell -NoP -NonI -W Hidden -E %'",
            "binding": "SELECT host FROM wmi WHERE class = '__FilterToConsumerBinding' AND consumer LIKE "
            "'CommandLineEventConsumer%'",
            "process": "SELECT host FROM processes WHERE name = 'powershell.exe' AND command_line LIKE '% -E %'",
            "service": "SELECT host FROM services WHERE name = 'WinRing0_1_2_0' AND type = 'KERNEL_DRIVER'",
        },
        "dtlminer": {
            "service": "SELECT host FROM services WHERE name IN ('Ddriver', 'WebServers', 'DnsScan') "
            "GROUP BY host HAVING count(DISTINCT name) = 3",
            "task": "SELECT host FROM tasks WHERE name IN ('\\Microsoft\\windows\\Bluetooths', '\\dnsscan', "
            "'\\Certificate', '\\Ddrivers', '\\WebServers') GROUP BY host HAVING count(*) = 5",
            "portproxy": "SELECT host FROM host_config WHERE kind = 'portproxy' AND name IN ('0.0.0.0:65531', "
            "'0.0.0.0:65532') GROUP BY host HAVING count(*) = 2",
            "user": "SELECT host FROM host_config WHERE kind = 'user' AND name = 'k8h3d'",
            "autoruns": "SELECT host FROM autoruns WHERE location ILIKE '%\\Run' AND entry IN ('Ddriver', 'WebServers')"
            " GROUP BY host HAVING count(*) = 2",
            "process": "SELECT host FROM processes WHERE image_path ILIKE 'C:\\Windows\\System32\\drivers\\%.exe'",
            "hash": "SELECT host FROM files WHERE sha256 IS NOT NULL AND path ILIKE '%\\Microsoft\\cred.ps1'",
        },
        "wannamine2": {
            "service": "SELECT host FROM services WHERE name = 'wmassrv'",
            "dir": "SELECT host FROM files WHERE source = 'dir' "
            "AND path ILIKE 'C:\\Windows\\SpeechsTracing\\spoolsv.exe'",
            "hash": "SELECT host FROM files WHERE sha256 IS NOT NULL AND path ILIKE '%\\HalPluginsServices.dll'",
            "autoruns": "SELECT host FROM autoruns WHERE entry = 'wmassrv'",
        },
    }[family]
    return {kind: _hosts(case, sql) for kind, sql in q.items()}


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
@pytest.mark.parametrize("family", ["wannamine3", "wannamine4", "wannamine-fileless", "dtlminer"])
def test_each_family_leaves_its_artifacts_on_infected_hosts_only(tmp_path: Path, family: str, locale: str) -> None:
    from wormhunt.ingest import ingest
    from wormhunt.store import Case

    truth = simulate(tmp_path / "ev", hosts=24, seed=4, days=1, lines=1000, locale=locale, family=family)
    assert truth["family"] == family
    infected = set(truth["infected"])
    assert infected and {h["host"] for h in truth["hosts"] if h["families"] == [family]} == infected
    with Case(tmp_path / "case") as case:
        ingest(case, [tmp_path / "ev" / "hosts"])
        for kind, hosts in _family_hosts(case, family).items():
            assert hosts == infected, (family, kind, sorted(hosts ^ infected))
        for other in ("wannamine3", "wannamine4", "wannamine-fileless", "dtlminer", "wannamine2"):
            if other != family:
                assert not any(_family_hosts(case, other).values()), other
        # Windows' own SCM Event Log binding is on every host, whatever the family.
        assert _hosts(case, "SELECT host FROM wmi WHERE name = 'SCM Event Log Filter'") == {
            h["host"] for h in truth["hosts"]
        }
        # The scanner behind the 445 fan-out is the family's process, recorded in the truth.
        for h in truth["hosts"]:
            if h["infected"]:
                netstat = decode((tmp_path / "ev" / "hosts" / h["host"] / "netstat_ano.txt").read_bytes()).text
                assert f"SYN_SENT        {h['artifacts']['scanner_pid']}" in netstat
    manifest = [json.loads(x) for x in (tmp_path / "case" / "evidence" / "manifest.jsonl").read_text().splitlines()]
    # Recognised with records, or what a command prints when there is nothing (clean hosts).
    def fine(e: dict) -> bool:
        nothing = e["status"] == "empty" and Path(e["path"]).name in ("dir_appdiagnostics.txt", "portproxy.txt")
        return (e["status"] == "ingested" or nothing) and e["skipped"] == 0

    assert [(e["path"], e["status"], e.get("skip_examples")) for e in manifest if not fine(e)] == []
    if family == "wannamine4":
        names = {h["artifacts"]["services"][0] for h in truth["hosts"] if h["infected"]}
        assert all(WM4_NAME.match(n) for n in names) and len(names) > 1  # random per host


def test_leftovers_give_some_hosts_wannamine2_as_well(tmp_path: Path) -> None:
    from wormhunt.ingest import ingest
    from wormhunt.store import Case

    truth = simulate(tmp_path / "ev", hosts=30, seed=4, days=1, lines=1000, leftovers=0.5)
    both = {h["host"] for h in truth["hosts"] if h["families"] == ["wannamine3", "wannamine2"]}
    only = {h["host"] for h in truth["hosts"] if h["families"] == ["wannamine3"]}
    assert both and only and both | only == set(truth["infected"])
    for h in truth["hosts"]:
        if h["host"] in both:
            assert h["artifacts"]["services"] == ["snmpstorsrv", "wmassrv"]
            assert "C:\\Windows\\SpeechsTracing\\spoolsv.exe" in h["artifacts"]["files"]
    with Case(tmp_path / "case") as case:
        ingest(case, [tmp_path / "ev" / "hosts"])
        for kind, hosts in _family_hosts(case, "wannamine2").items():
            assert hosts == both, kind
        for kind, hosts in _family_hosts(case, "wannamine3").items():
            assert hosts == both | only, kind


def test_default_is_wannamine3_without_leftovers(tmp_path: Path) -> None:
    a = simulate(tmp_path / "a", hosts=24, seed=3, days=1, lines=1000)
    b = simulate(tmp_path / "b", hosts=24, seed=3, days=1, lines=1000, family="wannamine3", leftovers=0.0)
    assert a == b and a["family"] == "wannamine3" and a["leftovers"] == 0.0
    assert tree_hash(tmp_path / "a") == tree_hash(tmp_path / "b")
    assert all(h["families"] == (["wannamine3"] if h["infected"] else []) for h in a["hosts"])
    with pytest.raises(ValueError):
        simulate(tmp_path / "c", hosts=8, family="wannacry")


def test_empty_outputs_are_recognised_and_raise_nothing(tmp_path: Path) -> None:
    from wormhunt.analyze import analyze
    from wormhunt.ingest import ingest
    from wormhunt.store import Case

    truth = simulate(tmp_path / "ev", hosts=24, seed=5, days=1, lines=1000, empty_outputs=True)
    clean = {h["host"] for h in truth["hosts"] if not h["infected"]}
    for h in truth["hosts"]:
        folder = tmp_path / "ev" / "hosts" / h["host"]
        assert (folder / "dir_appdiagnostics.txt").exists() and (folder / "portproxy.txt").exists()
        if h["host"] in clean:
            det = detect_file(folder / "dir_appdiagnostics.txt")
            assert det.format is not None and det.format.name == "dir"
            text = decode((folder / "dir_appdiagnostics.txt").read_bytes()).text
            assert ("找不到文件" if h["locale"] == "zh-CN" else "File Not Found") in text
    with Case(tmp_path / "case") as case:
        ingest(case, [tmp_path / "ev" / "hosts"])
        inv = analyze(case)
    manifest = [json.loads(x) for x in (tmp_path / "case" / "evidence" / "manifest.jsonl").read_text().splitlines()]
    assert not [e for e in manifest if e["status"] in ("error", "unrecognized") or e["skipped"]]
    for name in clean:
        high = (
            [f.rule for f in inv.hosts[name].findings if f.severity in ("high", "critical")]
            if name in inv.hosts
            else []
        )
        assert high == [], (name, high)
