"""Triage bundles: manifest attribution, and zips from compromised hosts refused safely."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import pytest

from wormhunt.ingest import ingest
from wormhunt.sources.bundle import BundleError, read_manifest, safe_extract
from wormhunt.store import Case

NETSTAT = """
Active Connections

  Proto  Local Address          Foreign Address        State           PID
  TCP    172.16.101.13:49700    192.168.17.19:445      ESTABLISHED     17380
  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       880
"""
MANIFEST = {
    "host": "cluster01",
    "ips": ["172.16.101.13"],
    "collected_at": "2019-03-21T10:00:00+08:00",
    "time_zone": "China Standard Time",
    "locale": "zh-CN",
    "collector": {"name": "wormhunt-collector.ps1", "version": "1"},
    "commands": [{"command": "netstat -ano", "exit_code": 0, "output": "netstat.txt"}],
}


def make_zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def test_bundle_zip_is_ingested_under_its_manifest_host(tmp_path: Path) -> None:
    z = make_zip(
        tmp_path / "b.zip",
        {"bundle/manifest.json": json.dumps(MANIFEST).encode(), "bundle/netstat.txt": NETSTAT.encode()},
    )
    with Case(tmp_path / "case") as case:
        entries = ingest(case, [z])
        assert [(Path(e.path).name, e.status, e.host, e.host_source) for e in entries] == [
            ("netstat.txt", "ingested", "CLUSTER01", "bundle manifest")
        ]
        assert case.count("sockets") == 2
        again = ingest(case, [z])  # the same zip reuses its extracted copy: nothing new
        assert [e.status for e in again] == ["duplicate"]
    (extracted,) = (tmp_path / "case" / "bundles").iterdir()
    assert read_manifest(extracted / "bundle").host == "cluster01"


@pytest.mark.parametrize(
    "members, symlinks, message",
    [
        ({"../../evil": b"x"}, None, "escapes"),
        ({"/etc/evil": b"x"}, None, "absolute"),
        ({"C:/Windows/evil.exe": b"x"}, None, "absolute"),
        ({"ok.txt": b"x"}, {"link": "/etc/passwd"}, "symbolic link"),
    ],
)
def test_malicious_zips_are_refused(tmp_path: Path, members: dict, symlinks: dict | None, message: str) -> None:
    z = make_zip(tmp_path / "evil.zip", members, symlinks)
    with pytest.raises(BundleError, match=message):
        safe_extract(z, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "evil").exists()
    with Case(tmp_path / "case") as case:
        (entry,) = ingest(case, [z])
        assert entry.status == "error" and "unsafe or damaged bundle zip" in entry.message


def test_zip_bomb_is_refused_before_inflating(tmp_path: Path) -> None:
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.bin", "w", force_zip64=True) as out:
        block = bytes(1 << 20)
        for _ in range(1024):  # 1 GB of zeros, about 1 MB compressed
            out.write(block)
    assert z.stat().st_size < 5 << 20
    with pytest.raises(BundleError, match=r"zip bomb|too large"):
        safe_extract(z, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_damaged_zip_is_an_error_not_a_crash(tmp_path: Path) -> None:
    z = make_zip(tmp_path / "b.zip", {"a.txt": b"hello" * 1000})
    data = bytearray(z.read_bytes())
    data[40:60] = b"\x00" * 20  # inside the first member's compressed bytes
    z.write_bytes(bytes(data))
    with Case(tmp_path / "case") as case:
        (entry,) = ingest(case, [z])
    assert entry.status == "error"


def test_manifest_must_name_a_host(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"ips": []}), encoding="utf-8")
    assert read_manifest(tmp_path) is None
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    assert read_manifest(tmp_path) is None
