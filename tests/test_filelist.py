"""filelist parsers: `dir` (en/zh, /t:c, /t:w), Get-ChildItem CSV, certutil -hashfile (en/zh),
Get-FileHash (table, list, CSV), in every encoding.

No captures of these commands are in the shared samples; the fixtures are written from the
commands' well-known layouts: `dir` puts the date and time in the short date format, then
`<DIR>` or a right-aligned size with thousands separators, then the name; certutil prints
`<ALG> hash of <file>:` (Windows 7: `hash of file`, hex with spaces) or zh
`<file> 的 <ALG> 哈希:`; Get-FileHash's table pads Algorithm to 16 and Hash to 71 cells.
"""

from __future__ import annotations

from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import assert_same_in_every_encoding
from wormhunt.sources import FORMATS, filelist
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_head

MD5 = "60bcd3ac0d5fdcc68443e38c1537841a"
SHA1 = "310158adf17abe716d03865c11be32d03ec9083f"
SHA256 = "42e19a6c973ef25964833d51d595333b887f23429c2f2c0c5c5aa73e19fc3aff"

ZH_DIR = """C:\\Users\\Administrator>dir /s /t:c C:\\Windows\\AppDiagnostics
 驱动器 C 中的卷没有标签。
 卷的序列号是 5A3C-1F2B

 C:\\Windows\\AppDiagnostics 的目录

2017/04/15  10:23    <DIR>          .
2017/04/15  10:23    <DIR>          ..
2017/04/15  10:23    <DIR>          cache
2017/04/15  10:23           142,336 svchost.exe
2017/04/15  10:24         5,201,756 任务计划.dll
               2 个文件      5,344,092 字节

 C:\\Windows\\AppDiagnostics\\cache 的目录

2017/04/15  10:23    <DIR>          .
2017/04/15  10:23    <DIR>          ..
2018/01/02  09:05                 0 tmp.dat
               1 个文件              0 字节

     所列文件总数:
               3 个文件      5,344,092 字节
               5 个目录 10,234,556,416 可用字节
"""

EN_DIR = """ Volume in drive C has no label.
 Volume Serial Number is 5A3C-1F2B

 Directory of C:\\

04/15/2017  10:23 AM    <DIR>          .
07/14/2009  04:08 AM    <JUNCTION>     Documents and Settings [C:\\Users]
12/31/2017  01:05 PM         1,142,336 my miner.exe
               1 File(s)      1,142,336 bytes
               2 Dir(s)  10,234,556,416 bytes free
"""

GCI_EN = """#TYPE Selected.System.IO.FileInfo
"FullName","Length","CreationTime","LastWriteTime"
"C:\\Windows\\AppDiagnostics\\svchost.exe","142336","4/15/2017 10:23:11 AM","4/15/2017 10:23:11 AM"
"C:\\Windows\\AppDiagnostics\\cache",,"4/15/2017 10:23:10 AM","1/2/2018 9:05:00 PM"
"C:\\Windows\\Temp\\a, b.ps1","12","12/30/2017 1:00:00 PM","12/31/2017 1:00:00 PM"
"""

GCI_ZH = """"FullName","Length","CreationTime","LastWriteTime","PSIsContainer"
"C:\\Windows\\AppDiagnostics\\svchost.exe","142336","2017/4/15 10:23:11","2017/4/15 10:23:11","False"
"C:\\用户\\桌面","","2017/4/15 10:23:10","2018/1/2 21:05:00","True"
"""

CU_EN = f"""C:\\>certutil -hashfile C:\\Windows\\AppDiagnostics\\svchost.exe SHA256
SHA256 hash of C:\\Windows\\AppDiagnostics\\svchost.exe:
{SHA256}
CertUtil: -hashfile command completed successfully.
C:\\>certutil -hashfile C:\\Windows\\AppDiagnostics\\svchost.exe
SHA1 hash of file C:\\Windows\\AppDiagnostics\\svchost.exe:
{" ".join(SHA1[i : i + 2] for i in range(0, 40, 2))}
CertUtil: -hashfile command completed successfully.
"""

CU_ZH = f"""C:\\Windows\\AppDiagnostics\\svchost.exe 的 MD5 哈希:
{MD5}
CertUtil: -hashfile 命令成功完成。
C:\\用户\\任务.exe 的 SHA256 哈希:
{SHA256.upper()}
CertUtil: -hashfile 命令成功完成。
"""

FH_TABLE = f"""PS C:\\> Get-FileHash C:\\Windows\\AppDiagnostics\\svchost.exe

Algorithm       Hash                                                                   Path
---------       ----                                                                   ----
SHA256          {SHA256.upper()}       C:\\Windows\\AppDiagnostics\\svchost.exe
MD5             {MD5.upper()}                                       C:\\用户\\任务.exe
"""

FH_LIST = f"""
Algorithm : SHA256
Hash      : {SHA256.upper()}
Path      : C:\\Windows\\AppDiagnostics\\a very long directory name that the cons
            ole wraps\\svchost.exe

Algorithm : SHA1
Hash      : {SHA1.upper()}
Path      : C:\\用户\\任务.exe
"""

FH_CSV = f"""#TYPE Microsoft.Powershell.Utility.FileHash
"Algorithm","Hash","Path"
"SHA256","{SHA256.upper()}","C:\\Windows\\AppDiagnostics\\svchost.exe"
"""


def run(parse, text: str) -> MemorySink:
    sink = MemorySink()
    parse(text, sink)
    return sink


def test_zh_dir_created_times_and_paths() -> None:
    sink = run(filelist.parse_dir, ZH_DIR)
    rows = sink.of("files")
    assert [(r["line"], r["path"], r["size"], r["is_dir"]) for r in rows] == [
        (9, "C:\\Windows\\AppDiagnostics\\cache", None, True),
        (10, "C:\\Windows\\AppDiagnostics\\svchost.exe", 142336, False),
        (11, "C:\\Windows\\AppDiagnostics\\任务计划.dll", 5201756, False),
        (18, "C:\\Windows\\AppDiagnostics\\cache\\tmp.dat", 0, False),
    ]
    svchost = rows[1]
    assert svchost["created"] == datetime(2017, 4, 15, 10, 23)
    assert svchost["modified"] is None and svchost["source"] == "dir" and "host" not in svchost
    assert sink.skipped == 0


def test_en_dir_ampm_junction_default_modified() -> None:
    sink = run(filelist.parse_dir, EN_DIR)
    rows = sink.of("files")
    assert [(r["path"], r["size"], r["is_dir"], r["modified"], r["created"]) for r in rows] == [
        ("C:\\Documents and Settings", None, True, datetime(2009, 7, 14, 4, 8), None),
        ("C:\\my miner.exe", 1142336, False, datetime(2017, 12, 31, 13, 5), None),
    ]


def test_dir_time_switch_from_prompt() -> None:
    text = "C:\\>dir /T:W C:\\x\n Directory of C:\\x\n\n2017/04/15  10:23                 7 a.txt\n"
    assert run(filelist.parse_dir, text).of("files")[0]["modified"] == datetime(2017, 4, 15, 10, 23)
    text = text.replace("/T:W", "/ta")
    assert run(filelist.parse_dir, text).of("files")[0]["accessed"] == datetime(2017, 4, 15, 10, 23)


def test_dir_day_first_decided_by_file() -> None:
    text = (
        " Directory of D:\\\n\n15/04/2017  10:23                 7 a.txt\n03/04/2017  10:23                 7 b.txt\n"
    )
    rows = run(filelist.parse_dir, text).of("files")
    assert [r["modified"] for r in rows] == [datetime(2017, 4, 15, 10, 23), datetime(2017, 4, 3, 10, 23)]


def test_dir_malformed_lines_counted() -> None:
    lines = ZH_DIR.split("\n")
    lines[9] = "2017/04/15  10:23           142,"  # line 10 cut short
    lines.insert(11, "garbage here")  # becomes line 12
    sink = run(filelist.parse_dir, "\n".join(lines))
    assert [(s.line, s.reason) for s in sink.skips] == [(10, "not a dir entry"), (12, "not a dir entry")]
    assert len(sink.of("files")) == 3
    orphan = run(filelist.parse_dir, "2017/04/15  10:23                 7 a.txt\n")
    assert orphan.skips[0].line == 1 and not orphan.of("files")


def test_gci_csv_en_and_zh() -> None:
    rows = run(filelist.parse_gci, GCI_EN).of("files")
    assert [(r["line"], r["path"], r["size"], r["is_dir"], r["created"], r["modified"]) for r in rows] == [
        (3, "C:\\Windows\\AppDiagnostics\\svchost.exe", 142336, False, datetime(2017, 4, 15, 10, 23, 11),
         datetime(2017, 4, 15, 10, 23, 11)),
        (4, "C:\\Windows\\AppDiagnostics\\cache", None, None, datetime(2017, 4, 15, 10, 23, 10),
         datetime(2018, 1, 2, 21, 5)),
        (5, "C:\\Windows\\Temp\\a, b.ps1", 12, False, datetime(2017, 12, 30, 13), datetime(2017, 12, 31, 13)),
    ]  # fmt: skip
    assert rows[0]["source"] == "Get-ChildItem"
    zh = run(filelist.parse_gci, GCI_ZH).of("files")
    assert [(r["path"], r["is_dir"], r["modified"]) for r in zh] == [
        ("C:\\Windows\\AppDiagnostics\\svchost.exe", False, datetime(2017, 4, 15, 10, 23, 11)),
        ("C:\\用户\\桌面", True, datetime(2018, 1, 2, 21, 5)),
    ]


def test_gci_bad_rows_counted() -> None:
    text = GCI_EN + '"C:\\x","12"\n"C:\\y","abc","4/15/2017 10:23:11 AM","4/15/2017 10:23:11 AM"\n'
    sink = run(filelist.parse_gci, text)
    assert [s.line for s in sink.skips] == [6, 7]
    assert len(sink.of("files")) == 3


def test_certutil_en_zh_concatenated() -> None:
    rows = run(filelist.parse_certutil, CU_EN + CU_ZH).of("files")
    assert [(r["line"], r["path"], r["md5"], r["sha1"], r["sha256"], r["source"]) for r in rows] == [
        (2, "C:\\Windows\\AppDiagnostics\\svchost.exe", None, None, SHA256, "certutil"),
        (6, "C:\\Windows\\AppDiagnostics\\svchost.exe", None, SHA1, None, "certutil"),
        (9, "C:\\Windows\\AppDiagnostics\\svchost.exe", MD5, None, None, "certutil"),
        (12, "C:\\用户\\任务.exe", None, None, SHA256, "certutil"),
    ]


def test_certutil_zh_algorithm_first_wording() -> None:
    text = f"SHA256 的 C:\\Windows\\AppDiagnostics\\svchost.exe 哈希:\n{SHA256}\nCertUtil: -hashfile 命令成功完成。\n"
    rows = run(filelist.parse_certutil, text).of("files")
    assert [(r["path"], r["sha256"]) for r in rows] == [("C:\\Windows\\AppDiagnostics\\svchost.exe", SHA256)]


def test_dir_ambiguous_dates_warned_once() -> None:
    text = (
        " Directory of C:\\x\n\n"
        "04/05/2017  10:23 AM                 7 a.txt\n"
        "04/06/2017  10:23 AM                 7 b.txt\n"
    )
    sink = run(filelist.parse_dir, text)
    assert [r["modified"] for r in sink.of("files")] == [datetime(2017, 4, 5, 10, 23), datetime(2017, 4, 6, 10, 23)]
    assert sink.meta["warnings"] == [{"code": "ambiguous_dates", "order": "month first"}]


def test_certutil_errors_and_truncation() -> None:
    text = (
        "SHA256 hash of C:\\a.exe:\n"
        f"{SHA256[:40]}\n"  # cut short
        "CertUtil: -hashfile command completed successfully.\n"
        "CertUtil: -hashfile command FAILED: 0x80070002 (WIN32: 2 ERROR_FILE_NOT_FOUND)\n"
        "SHA256 hash of C:\\b.exe:\n"  # no hash line follows
        "CertUtil: -hashfile command completed successfully.\n"
        "SHA512 hash of C:\\c.exe:\n"
        f"{SHA256}{SHA256}\n"
    )
    sink = run(filelist.parse_certutil, text)
    assert not sink.of("files")
    assert [s.line for s in sink.skips] == [2, 4, 5, 8]


def test_get_filehash_table_list_csv() -> None:
    table = run(filelist.parse_filehash, FH_TABLE).of("files")
    assert [(r["line"], r["path"], r["md5"], r["sha256"]) for r in table] == [
        (5, "C:\\Windows\\AppDiagnostics\\svchost.exe", None, SHA256),
        (6, "C:\\用户\\任务.exe", MD5, None),
    ]
    listed = run(filelist.parse_filehash, FH_LIST).of("files")
    assert [(r["line"], r["path"], r["sha1"], r["sha256"]) for r in listed] == [
        (
            2,
            "C:\\Windows\\AppDiagnostics\\a very long directory name that the console wraps\\svchost.exe",
            None,
            SHA256,
        ),
        (7, "C:\\用户\\任务.exe", SHA1, None),
    ]
    csv_rows = run(filelist.parse_filehash, FH_CSV).of("files")
    assert [(r["line"], r["path"], r["sha256"], r["source"]) for r in csv_rows] == [
        (3, "C:\\Windows\\AppDiagnostics\\svchost.exe", SHA256, "Get-FileHash")
    ]


def test_get_filehash_bad_rows_counted() -> None:
    text = FH_TABLE + f"SHA256          {SHA256[:50]}\nSHA384          {SHA256}  C:\\z\n"
    sink = run(filelist.parse_filehash, text)
    assert [s.line for s in sink.skips] == [7, 8]
    assert len(sink.of("files")) == 2


def test_every_encoding() -> None:
    cases = [
        (filelist.parse_dir, ZH_DIR, "dir"),
        (filelist.parse_dir, EN_DIR, "dir"),
        (filelist.parse_gci, GCI_EN, "Get-ChildItem-csv"),
        (filelist.parse_gci, GCI_ZH, "Get-ChildItem-csv"),
        (filelist.parse_certutil, CU_EN, "certutil-hashfile"),
        (filelist.parse_certutil, CU_ZH, "certutil-hashfile"),
        (filelist.parse_filehash, FH_TABLE, "Get-FileHash"),
        (filelist.parse_filehash, FH_LIST, "Get-FileHash"),
        (filelist.parse_filehash, FH_CSV, "Get-FileHash"),
    ]
    for parse, text, name in cases:
        assert_same_in_every_encoding(parse, text, "files", name)


def test_registered_and_not_claiming_others() -> None:
    for name in ("dir", "Get-ChildItem-csv", "certutil-hashfile", "Get-FileHash"):
        assert FORMATS[name].host_evidence
    from tests.test_properties import DOCS as OTHER_DOCS

    ours = {f.name for f in filelist.FORMATS}
    for name, doc in OTHER_DOCS.items():
        assert detect_head(doc.encode(), complete=True).format.name not in ours, name
    for f in filelist.FORMATS:
        assert f.sniff("Host Name:                 FS01\nOS Name:                   Windows\n") == 0.0
        assert f.sniff("\nActive Connections\n\n  Proto  Local Address  Foreign Address  State  PID\n") == 0.0


PARSERS = [filelist.parse_dir, filelist.parse_gci, filelist.parse_certutil, filelist.parse_filehash]
DOCS = [ZH_DIR, EN_DIR, GCI_EN, GCI_ZH, CU_EN, CU_ZH, FH_TABLE, FH_LIST, FH_CSV]
FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(text=st.text(max_size=600), parse=st.sampled_from(PARSERS))
def test_random_text_never_raises(text: str, parse) -> None:
    sink = run(parse, text)
    assert sink.skipped <= text.count("\n") + 1


@FAST
@given(data=st.data(), idx=st.integers(0, len(DOCS) - 1))
def test_mutated_line_never_raises(data: st.DataObject, idx: int) -> None:
    doc = DOCS[idx]
    parse = {0: filelist.parse_dir, 1: filelist.parse_dir, 2: filelist.parse_gci, 3: filelist.parse_gci}.get(
        idx, filelist.parse_certutil if idx < 6 else filelist.parse_filehash
    )
    lines = doc.split("\n")
    target = data.draw(st.integers(0, len(lines) - 1))
    junk = data.draw(st.text(max_size=30))
    cut = data.draw(st.integers(0, len(lines[target])))
    lines[target] = (lines[target][:cut] + junk).replace("\n", " ").replace("\r", " ")
    sink = run(parse, "\n".join(lines))
    assert all(1 <= s.line <= len(lines) for s in sink.skips)
    assert all(1 <= r["line"] <= len(lines) for r in sink.of("files"))


DIR_NOT_FOUND_EN = """C:\\Windows\\system32>dir /s /t:c C:\\Windows\\AppDiagnostics
 Volume in drive C has no label.
 Volume Serial Number is 5E2A-81C4

File Not Found
"""
DIR_NOT_FOUND_ZH = """ 驱动器 C 中的卷没有标签。
 卷的序列号是 5E2A-81C4

找不到文件
"""


def test_dir_of_a_missing_folder_is_a_dir_listing_with_no_files() -> None:
    from wormhunt.sources.detect import detect_head

    for doc, enc in ((DIR_NOT_FOUND_EN, "cp437"), (DIR_NOT_FOUND_ZH, "gbk")):
        det = detect_head(doc.replace("\n", "\r\n").encode(enc), complete=True)
        assert det.format is not None and det.format.name == "dir", doc
        sink = MemorySink()
        filelist.parse_dir(doc, sink)
        assert sink.of("files") == [] and sink.skips == []
