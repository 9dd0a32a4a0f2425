"""autorunsc CSV parser: header mapping, banners, section rows, quoting, times, every encoding.

Fixtures follow formats.md 7.2: per-field inconsistent quoting, section rows (location only),
descriptions with commas and CR/LF inside quotes, unsigned entries, `File not found:` paths.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, assert_same_in_every_encoding
from tests.test_wmi import OTHERS  # the other formats' samples neither sniffer may claim
from wormhunt.sources import FORMATS, autoruns
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_head
from wormhunt.sources.text import decode

REFERENCE = Path(os.environ.get("WORMHUNT_SHARED_REFERENCE", ROOT.parent / "shared" / "reference"))
SAMPLES = REFERENCE / "format-samples" / "autoruns"

HEADER = (
    "Time,Entry Location,Entry,Enabled,Category,Profile,Description,Signer,Company,Image Path,Version,"
    "Launch String,MD5,SHA-1,PESHA-1,PESHA-256,SHA-256,IMP"
)
SHA = "644417B839762A3325920A87C3D955CA974A4EC1D6F008216910267435921255"
CSV_T = (
    HEADER
    + "\n"
    + '20230203-105249,HKLM\\System\\CurrentControlSet\\Services,,,"Services",System-wide,,,,,,,,,,,,\n'
    + '20170512-080102,"HKLM\\System\\CurrentControlSet\\Services","mssecsvc2.0",enabled,"Services",System-wide,'
    + '"Microsoft Security Center (2.0) Service","(Not verified) (Not Verified)","(Not Verified)",'
    + '"c:\\windows\\mssecsvc.exe",,"C:\\WINDOWS\\mssecsvc.exe -m security",,,,,,\n'
    + '19910522-071728,HKLM\\System\\CurrentControlSet\\Control\\Session Manager\\BootExecute,"autocheck autochk *",'
    + 'enabled,"Boot Execute",System-wide,"Auto Check Utility, native","(Verified) Microsoft Windows",'
    + '"Microsoft Corporation","c:\\windows\\system32\\autochk.exe",10.0.17763.1,"autocheck autochk *",'
    + f"990D01F2A6D10A33C382191A24BBAAAF,,,,{SHA},\n"
    + '20200101-000000,"HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Font Drivers","Adobe Type Manager",'
    + 'disabled,"Drivers",System-wide,"Line one\nline ""two""","","","File not found: atmfd.dll",,"atmfd.dll",,,,,,\n'
)


def run(text: str) -> MemorySink:
    sink = MemorySink()
    autoruns.parse(text, sink)
    return sink


def test_exact_rows_utc_times() -> None:
    sink = run(CSV_T)
    assert sink.skipped == 0
    assert sink.meta["autoruns_sections"] == 1
    rows = sink.of("autoruns")
    assert rows[0] == {
        "line": 3,
        "location": "HKLM\\System\\CurrentControlSet\\Services",
        "entry": "mssecsvc2.0",
        "enabled": True,
        "category": "Services",
        "description": "Microsoft Security Center (2.0) Service",
        "publisher": "(Not Verified)",
        "image_path": "c:\\windows\\mssecsvc.exe",
        "launch": "C:\\WINDOWS\\mssecsvc.exe -m security",
        "signer": "(Not verified) (Not Verified)",
        "sha256": None,
        "time": datetime(2017, 5, 12, 8, 1, 2),
        "source": "autorunsc-utc",
    }
    assert (rows[1]["line"], rows[1]["description"], rows[1]["sha256"]) == (4, "Auto Check Utility, native", SHA)
    assert rows[2]["line"] == 5 and rows[2]["description"] == 'Line one\nline "two"'
    assert (rows[2]["enabled"], rows[2]["image_path"], rows[2]["signer"]) == (False, "File not found: atmfd.dll", None)


def test_every_encoding() -> None:
    assert_same_in_every_encoding(autoruns.parse, CSV_T, "autoruns", "autorunsc")


ZH = (
    "Sysinternals Autoruns v14.2 - 自启动程序查看器\n"
    "Copyright (C) 2002-2026 Mark Russinovich\n"
    "Sysinternals - www.sysinternals.com\n"
    "\n"
    "Time,Entry Location,Entry,Enabled,Category,Profile,Description,Signer,Company,Image Path,Version,Launch String\n"
    '2024/4/1 15:26,HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run,,,"Logon",System-wide,,,,,,\n'
    '2024/4/2 9:05,"HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run","rdpclip",enabled,"Logon",System-wide,'
    '"剪贴板监视程序","(Verified) Microsoft Windows","Microsoft Corporation","c:\\windows\\system32\\rdpclip.exe",'
    '10.0.26100.8972,"rdpclip"\n'
)


def test_zh_banner_and_local_time() -> None:
    sink = run(ZH)
    [r] = sink.of("autoruns")
    assert sink.skipped == 0 and sink.meta["autoruns_sections"] == 1
    assert (r["line"], r["entry"], r["description"], r["time"]) == (
        7,
        "rdpclip",
        "剪贴板监视程序",
        datetime(2024, 4, 2, 9, 5),
    )
    assert r["source"] == "autorunsc" and r["sha256"] is None
    assert_same_in_every_encoding(autoruns.parse, ZH, "autoruns", "autorunsc")


def local(times: list[str]) -> str:
    rows = [
        f'{t},"HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run","e{i}",enabled,"Logon",CORP\\li,,,,,,"x.exe"'
        for i, t in enumerate(times)
    ]
    return (
        "Time,Entry Location,Entry,Enabled,Category,Profile,Description,Signer,Company,Image Path,Version,"
        + "Launch String\n"
        + ("\n".join(rows) + "\n")
    )


def test_day_month_order_from_the_file() -> None:
    rows = run(local(["13/02/2025 17:30:00", "01/04/2024 12:56:32"])).of("autoruns")
    assert [r["time"] for r in rows] == [datetime(2025, 2, 13, 17, 30), datetime(2024, 4, 1, 12, 56, 32)]
    rows = run(local(["02/13/2025 5:30:00 PM", "01/04/2024 12:56:32"])).of("autoruns")
    assert [r["time"] for r in rows] == [datetime(2025, 2, 13, 17, 30), datetime(2024, 1, 4, 12, 56, 32)]
    sink = run(local(["01-04-2024 12:56:32", "", "not a time"]))
    assert sink.meta["autoruns_ambiguous_times"] == 1
    assert [r["time"] for r in sink.of("autoruns")] == [datetime(2024, 1, 4, 12, 56, 32), None, None]


def test_tab_variant_without_signer() -> None:
    cols = "\t".join(
        [
            "Time",
            "Entry Location",
            "Entry",
            "Enabled",
            "Category",
            "Profile",
            "Description",
            "Company",
            "Image Path",
            "Version",
            "Launch String",
        ]
    )
    row = "\t".join(
        [
            "20230106-150455",
            "HKLM\\Run",
            "bad",
            "enabled",
            "Logon",
            "System-wide",
            "d, with comma",
            "ACME",
            "c:\\x.exe",
            "1.0",
            "c:\\x.exe /q",
        ]
    )
    [r] = run(cols + "\n" + row + "\n").of("autoruns")
    assert (r["description"], r["publisher"], r["signer"], r["launch"]) == (
        "d, with comma",
        "ACME",
        None,
        "c:\\x.exe /q",
    )
    assert detect_head((cols + "\n" + row).encode("utf-16-le"), complete=True).format.name == "autorunsc"


def test_malformed_rows_are_counted_with_lines() -> None:
    lines = CSV_T.rstrip("\n").split("\n")
    text = "\n".join(
        [
            *lines[:3],
            '20170512-080102,"HKLM\\Run","cut here",enabled',  # line 4: cut short
            ',,"no location",enabled,"Logon",System-wide,,,,,,,,,,,,',  # line 5: no location
            *lines[3:],
            '20170512-080102,"HKLM\\Run","unterminated,enabled,"Logon"',  # last line: quote never closed
        ]
    )
    sink = run(text)
    assert len(sink.of("autoruns")) == 3
    assert sink.skip_counts == {
        "wrong number of CSV fields": 1,
        "row without an entry location": 1,
        "unterminated quote": 1,
    }
    assert sorted(s.line for s in sink.skips) == [4, 5, len(text.split("\n"))]
    assert [r["line"] for r in sink.of("autoruns")] == [3, 6, 7]


def test_no_header_counts_every_line() -> None:
    body = "\n".join(CSV_T.split("\n")[1:3])
    sink = run("Sysinternals Autoruns v14.2\n\n" + body)
    assert not sink.of("autoruns")
    assert sink.skip_counts == {"no autorunsc CSV header": 3}


def test_samples() -> None:
    def sample(name: str) -> MemorySink:
        path = SAMPLES / name
        if not path.is_file():
            pytest.skip(f"format sample {path} not present")
        data = path.read_bytes()
        assert detect_head(data, complete=True).format.name == "autorunsc"
        assert (
            detect_head(b"\xff\xfe" + decode(data).text.encode("utf-16-le"), complete=True).format.name == "autorunsc"
        )
        return run(decode(data).text)

    sink = sample("autorunsc_a-all_c_h_s_sample.csv")
    assert sink.skipped == 0 and sink.meta["autoruns_sections"] == 3
    boot, ie = sink.of("autoruns")
    assert (boot["line"], boot["entry"], boot["time"]) == (3, "autocheck autochk *", datetime(1991, 5, 22, 7, 17, 28))
    assert boot["sha256"] == SHA and boot["signer"] == "(Verified) Microsoft Windows"
    assert (ie["line"], ie["category"], ie["launch"]) == (5, "Hijacks", None)
    sink = sample("zh-CN_autorunsc_with-banner_localtime.csv")
    [r] = sink.of("autoruns")
    assert (r["line"], r["description"], r["time"]) == (7, "剪贴板监视程序", datetime(1976, 9, 29, 12, 9))


@pytest.mark.parametrize("name", sorted(OTHERS))
def test_does_not_claim_other_formats(name: str) -> None:
    assert autoruns.sniff(OTHERS[name]) == 0.0


@pytest.mark.parametrize("text", [CSV_T, ZH])
def test_other_formats_do_not_claim_ours(text: str) -> None:
    ours = autoruns.sniff(text)
    assert all(f.sniff(text) < ours for f in FORMATS.values() if f.name != "autorunsc")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_random_text_never_raises(text: str) -> None:
    run(text)
    run(HEADER + "\n" + text)
    autoruns.sniff(text)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_lines_never_raise_and_keep_other_rows(data: st.DataObject) -> None:
    lines = CSV_T.split("\n")
    i = data.draw(st.integers(1, len(lines) - 1))
    junk = data.draw(st.text(alphabet=st.characters(blacklist_characters='"\n\r'), max_size=80))
    lines[i] = junk
    sink = run("\n".join(lines))
    # Line 6 continues the quoted description of line 5: losing it cuts that record.
    untouched = {3, 4, 5} - {i + 1} - ({5} if i == 5 else set())
    assert untouched <= {r["line"] for r in sink.of("autoruns")}
