"""hotfix parser: `wmic qfe` (table, list full, /format:csv) and Get-HotFix (table, CSV).

The reference samples (formats.md 6.4, 6.5) are read in place when present. The hand-written
fixtures follow the same layouts; a zh-CN host prints the same English property names, with
its own date format in InstalledOn and Chinese in the echoed prompt and Description.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import assert_same_in_every_encoding
from wormhunt.sources import FORMATS, hotfix
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_file, detect_head

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "format-samples" / "systeminfo_hotfix"

WMIC_TABLE = """C:\\Users\\管理员>wmic qfe

Caption                                     CSName        Description      FixComments  HotFixID   InstallDate  InstalledBy          InstalledOn  Name  ServicePackInEffect  Status
http://support.microsoft.com/?kbid=4012212  FS01          Security Update               KB4012212               NT AUTHORITY\\SYSTEM  2017/3/15
http://support.microsoft.com/?kbid=2999226  FS01          Update                        KB2999226               FS01\\管理员          2016/1/2
                                            FS01                                        File 1  \x20
"""  # noqa: E501 - console width

WMIC_CSV = """
Node,Caption,CSName,Description,FixComments,HotFixID,InstallDate,InstalledBy,InstalledOn,Name,ServicePackInEffect,Status
FS01,http://support.microsoft.com/?kbid=4012212,FS01,Security Update,,KB4012212,,NT AUTHORITY\\SYSTEM,3/15/2017,,,
FS01,http://support.microsoft.com/?kbid=2999226,FS01,Update,,KB2999226,,NT AUTHORITY\\SYSTEM,1/2/2016,,,
"""

WMIC_LIST = """

Caption=http://support.microsoft.com/?kbid=4012212
CSName=FS01
Description=Security Update
FixComments=
HotFixID=KB4012212
InstallDate=
InstalledBy=NT AUTHORITY\\SYSTEM
InstalledOn=3/15/2017
Name=
ServicePackInEffect=
Status=


Caption=
CSName=FS01
HotFixID=KB893803v2 - Update
"""

GETHOTFIX_TABLE = """PS C:\\Users\\管理员> Get-HotFix

Source        Description      HotFixID      InstalledBy          InstalledOn
------        -----------      --------      -----------          -----------
FS01          Security Update  KB4012212     NT AUTHORITY\\SYSTEM  2017/3/15 0:00:00
FS01          更新             KB2999226     FS01\\管理员          2016/1/2 0:00:00
FS01          Update           KB5001078
"""

GETHOTFIX_CSV = """#TYPE System.Management.ManagementObject#root\\cimv2\\Win32_QuickFixEngineering
"PSComputerName","InstalledOn","__GENUS","__CLASS","Description","HotFixID","InstalledBy","Caption"
"FS01","3/15/2017 12:00:00 AM","2","Win32_QuickFixEngineering","Security Update","KB4012212","NT AUTHORITY\\SYSTEM","http://support.microsoft.com/?kbid=4012212"
"FS01","","2","Win32_QuickFixEngineering","Update, rollup","KB2999226","",""
"""


GETHOTFIX_LIST = """PS C:\\Users\\管理员> Get-HotFix | Format-List


Source        : FS01
Description   : Security Update
HotFixID      : KB4012212
InstalledBy   : NT AUTHORITY\\SYSTEM
InstalledOn   : 2017/3/15 0:00:00

Source        : FS01
Description   : 更新
HotFixID      : KB2999226
InstalledBy   :
InstalledOn   :
"""


def run(text: str) -> MemorySink:
    sink = MemorySink()
    hotfix.parse(text, sink)
    return sink


def rows(sink: MemorySink) -> list[tuple]:
    return [(r["line"], r["hotfix"], r["raw"], r["source"]) for r in sink.of("hotfixes")]


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("en-US_wmic_qfe_table.txt", "wmic-qfe", [(4, "KB3199986"), (5, "KB5001078"), (6, "KB4103723")]),
        ("en-US_Get-HotFix_table_truncated.txt", "Get-HotFix", [(5, "KB3176936"), (6, "KB3186568"), (7, "KB3199986")]),
        (
            "es-ES_Get-WmiObject_qfe_table.txt",
            "Get-HotFix",
            [(3, "KB4534131"), (4, "KB4465065"), (5, "KB4470788"), (6, "KB4486161")],
        ),
    ],
)
def test_reference_samples(name: str, fmt: str, expected: list[tuple]) -> None:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"sample {path} not present")
    assert detect_file(path).format.name == fmt
    sink = run(path.read_text(encoding="utf-8"))
    assert [(r["line"], r["hotfix"]) for r in sink.of("hotfixes")] == expected
    assert sink.skipped == 0


def test_wmic_table_zh_host() -> None:
    sink = run(WMIC_TABLE)
    assert rows(sink) == [
        (4, "KB4012212", "KB4012212", "wmic qfe"),
        (5, "KB2999226", "KB2999226", "wmic qfe"),
        (6, "File 1", "File 1", "wmic qfe"),  # XP/2003 items have no KB number
    ]
    assert sink.skipped == 0


def test_wmic_csv_and_list() -> None:
    assert rows(run(WMIC_CSV)) == [(3, "KB4012212", "KB4012212", "wmic qfe"), (4, "KB2999226", "KB2999226", "wmic qfe")]
    assert rows(run(WMIC_LIST)) == [
        (7, "KB4012212", "KB4012212", "wmic qfe"),
        (18, "KB893803", "KB893803v2 - Update", "wmic qfe"),
    ]


def test_gethotfix_table_and_csv() -> None:
    sink = run(GETHOTFIX_TABLE)
    assert rows(sink) == [
        (5, "KB4012212", "KB4012212", "Get-HotFix"),
        (6, "KB2999226", "KB2999226", "Get-HotFix"),
        (7, "KB5001078", "KB5001078", "Get-HotFix"),
    ]
    assert sink.skipped == 0
    assert rows(run(GETHOTFIX_LIST)) == [
        (6, "KB4012212", "KB4012212", "Get-HotFix"),
        (12, "KB2999226", "KB2999226", "Get-HotFix"),
    ]
    assert rows(run(GETHOTFIX_CSV)) == [
        (3, "KB4012212", "KB4012212", "Get-HotFix"),
        (4, "KB2999226", "KB2999226", "Get-HotFix"),
    ]


def test_malformed_lines_counted() -> None:
    csv_lines = WMIC_CSV.split("\n")
    csv_lines[2] = csv_lines[2][:40]  # line 3 cut short
    sink = run("\n".join(csv_lines))
    assert [(s.line, s.reason) for s in sink.skips] == [(3, "wrong number of CSV fields")]
    table = GETHOTFIX_TABLE + "FS01          Upd\nrandom junk\n"
    sink = run(table)
    assert [s.line for s in sink.skips] == [8, 9]
    assert run("no header here\nKB123\n").skipped == 2
    assert run("\nNo Instance(s) Available.\n").skipped == 0


def test_every_encoding() -> None:
    for text, fmt in (
        (WMIC_TABLE, "wmic-qfe"),
        (WMIC_CSV, "wmic-qfe"),
        (WMIC_LIST, "wmic-qfe"),
        (GETHOTFIX_TABLE, "Get-HotFix"),
        (GETHOTFIX_CSV, "Get-HotFix"),
        (GETHOTFIX_LIST, "Get-HotFix"),
    ):
        assert_same_in_every_encoding(hotfix.parse, text, "hotfixes", fmt)


def test_registered_and_not_claiming_others() -> None:
    from tests.test_properties import DOCS as OTHER_DOCS

    assert FORMATS["wmic-qfe"].host_evidence and FORMATS["Get-HotFix"].host_evidence
    for name, doc in OTHER_DOCS.items():
        assert detect_head(doc.encode(), complete=True).format.name not in ("wmic-qfe", "Get-HotFix"), name


FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DOCS = [WMIC_TABLE, WMIC_CSV, WMIC_LIST, GETHOTFIX_TABLE, GETHOTFIX_CSV, GETHOTFIX_LIST]


@FAST
@given(text=st.text(max_size=600))
def test_random_text_never_raises(text: str) -> None:
    assert run(text).skipped <= text.count("\n") + 1


@FAST
@given(data=st.data(), doc=st.sampled_from(DOCS))
def test_mutated_line_keeps_other_rows(data: st.DataObject, doc: str) -> None:
    lines = doc.split("\n")
    base = {r["line"]: r for r in run(doc).of("hotfixes")}
    target = data.draw(st.sampled_from(sorted(base)))
    junk = data.draw(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20))
    cut = data.draw(st.integers(0, len(lines[target - 1])))
    lines[target - 1] = (lines[target - 1][:cut] + junk).replace("\n", " ").replace("\r", " ")
    after = {r["line"]: r for r in run("\n".join(lines)).of("hotfixes")}
    for line, row in base.items():
        if line != target:
            assert after.get(line) == row
