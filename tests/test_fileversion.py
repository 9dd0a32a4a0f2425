"""srv.sys file versions, `ver` and SMBv1 state -> host_config rows (sources/fileversion.py).

The samples are written by the project in the documented shapes of the commands (docs/audit.md):
PowerShell property names and wmic headers are English on every host; zh-CN hosts differ in the
values (descriptions, language), the `ver` word and the error messages.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import assert_same_in_every_encoding
from wormhunt.sources import FORMATS, fileversion
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_head

VERSIONINFO_EN = r"""PS C:\> (Get-Item C:\Windows\System32\drivers\srv.sys).VersionInfo | Format-List *

Comments           :
CompanyName        : Microsoft Corporation
FileBuildPart      : 7601
FileDescription    : Server driver
FileMajorPart      : 6
FileMinorPart      : 1
FileName           : C:\Windows\System32\drivers\srv.sys
FilePrivatePart    : 23689
FileVersion        : 6.1.7601.23689 (win7sp1_ldr.170209-0600)
InternalName       : SRV.SYS
IsDebug            : False
Language           : English (United States)
OriginalFilename   : SRV.SYS
ProductName        : Microsoft(R) Windows(R) Operating System
ProductVersion     : 6.1.7601.23689
"""

# Plain `| Format-List` (no `*`): no File*Part lines, so ProductVersion is used. (R) stands for the
# registered sign, which a GBK file cannot hold.
VERSIONINFO_ZH = r"""PS C:\Windows\system32> (Get-Item C:\Windows\System32\drivers\srv.sys).VersionInfo | Format-List

OriginalFilename  : SRV.SYS.MUI
FileDescription   : 服务器驱动程序
ProductName       : Microsoft(R) Windows(R) 操作系统
Comments          :
CompanyName       : Microsoft Corporation
FileName          : C:\Windows\System32\drivers\srv.sys
FileVersion       : 6.1.7601.23572 (win7sp1_ldr.161011-0600)
InternalName      : SRV.SYS
IsDebug           : False
IsPatched         : False
IsPrivateBuild    : False
IsPreRelease      : False
IsSpecialBuild    : False
Language          : 中文(简体，中国)
ProductVersion    : 6.1.7601.23572
"""

WMIC_NAME_VERSION = r"""C:\>wmic datafile where name='c:\\windows\\system32\\drivers\\srv.sys' get Name,Version
Name                                 Version
c:\windows\system32\drivers\srv.sys  6.3.9600.18604

"""

WMIC_VERSION_ONLY = r"""Version
6.0.6002.19743
"""

WMIC_LIST = r"""

Name=c:\windows\system32\drivers\srv.sys
Version=5.1.2600.7208


"""

VER_EN = "\nMicrosoft Windows [Version 10.0.14393.953]\n"
VER_ZH = "\nMicrosoft Windows [版本 10.0.14393.447]\n"

SMB1_LIST = r"""PS C:\> Get-SmbServerConfiguration | Format-List EnableSMB1Protocol, EnableSMB2Protocol

EnableSMB1Protocol : False
EnableSMB2Protocol : True
"""

SMB1_TABLE = """
EnableSMB1Protocol
------------------
              True
"""

SMB1_REG = r"""
HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\LanmanServer\Parameters
    SMB1    REG_DWORD    0x0

"""

ABSENT_EN = (
    "Get-Item : Cannot find path 'C:\\Windows\\System32\\drivers\\srv.sys' because it does not exist.\n"
    "At line:1 char:2\n"
)
ABSENT_ZH = "Get-Item : 找不到路径“C:\\Windows\\System32\\drivers\\srv.sys”，因为该路径不存在。\n"


def run(text: str) -> MemorySink:
    sink = MemorySink()
    fileversion.parse(text, sink)
    return sink


def rows(text: str) -> list[tuple]:
    return [(r["kind"], r["name"], r["value"], r["source"]) for r in run(text).of("host_config")]


def test_versioninfo_en_uses_the_numeric_parts() -> None:
    assert rows(VERSIONINFO_EN) == [
        ("file_version", r"C:\Windows\System32\drivers\srv.sys", "6.1.7601.23689", "VersionInfo File*Part")
    ]
    assert run(VERSIONINFO_EN).of("host_config")[0]["line"] == 7  # FileMajorPart


def test_versioninfo_zh_uses_product_version() -> None:
    assert rows(VERSIONINFO_ZH) == [
        ("file_version", r"C:\Windows\System32\drivers\srv.sys", "6.1.7601.23572", "VersionInfo ProductVersion")
    ]
    assert run(VERSIONINFO_ZH).skipped == 0


def test_versioninfo_fileversion_string_last() -> None:
    text = "FileName    : C:\\x\\srv.sys\nFileVersion : 6.2.9200.22099 (win8_ldr.170304-1800)\nIsDebug : False\n"
    assert rows(text) == [("file_version", "C:\\x\\srv.sys", "6.2.9200.22099", "VersionInfo FileVersion")]


def test_wmic_datafile_shapes() -> None:
    assert rows(WMIC_NAME_VERSION) == [
        ("file_version", r"c:\windows\system32\drivers\srv.sys", "6.3.9600.18604", "wmic datafile")
    ]
    assert rows(WMIC_VERSION_ONLY) == [
        ("file_version", "srv.sys", "6.0.6002.19743", "wmic datafile (file name not printed)")
    ]
    assert rows(WMIC_LIST) == [
        ("file_version", r"c:\windows\system32\drivers\srv.sys", "5.1.2600.7208", "wmic datafile")
    ]
    assert run("Version\nNo Instance(s) Available.\n").of("host_config") == []
    assert run("Version\n没有可用实例。\n").skip_counts == {"wmic found no such file": 1}


def test_ver_en_and_zh() -> None:
    assert rows(VER_EN) == [("os_version", "ver", "10.0.14393.953", "ver")]
    assert rows(VER_ZH) == [("os_version", "ver", "10.0.14393.447", "ver")]


def test_smb1_state() -> None:
    assert rows(SMB1_LIST) == [("smb1", "EnableSMB1Protocol", "disabled", "Get-SmbServerConfiguration")]
    assert rows(SMB1_TABLE) == [("smb1", "EnableSMB1Protocol", "enabled", "Get-SmbServerConfiguration")]
    assert rows(SMB1_REG) == [("smb1", "LanmanServer\\Parameters\\SMB1", "disabled", "reg query")]


def test_absent_srv_sys_en_and_zh() -> None:
    assert rows(ABSENT_EN)[0] == ("file_absent", r"C:\Windows\System32\drivers\srv.sys", "absent", "Get-Item")
    assert rows(ABSENT_ZH) == [("file_absent", r"C:\Windows\System32\drivers\srv.sys", "absent", "Get-Item")]


def test_every_encoding() -> None:
    for text, fmt in (
        (VERSIONINFO_EN, "file-version"),
        (VERSIONINFO_ZH, "file-version"),
        (WMIC_NAME_VERSION, "file-version"),
        (WMIC_VERSION_ONLY, "file-version"),
        (WMIC_LIST, "file-version"),
        (ABSENT_ZH, "file-version"),
        (VER_EN, "ver"),
        (VER_ZH, "ver"),
        (SMB1_LIST, "smb1-state"),
        (SMB1_TABLE, "smb1-state"),
        (SMB1_REG, "smb1-state"),
    ):
        assert_same_in_every_encoding(fileversion.parse, text, "host_config", fmt)


def test_registered_and_not_claiming_others() -> None:
    from tests.test_properties import DOCS as OTHER_DOCS

    mine = ("file-version", "ver", "smb1-state")
    assert all(FORMATS[name].host_evidence for name in mine)
    for name, doc in OTHER_DOCS.items():
        assert detect_head(doc.encode(), complete=True).format.name not in mine, name
    # cmd's banner at the top of a longer console copy is not `ver` output.
    banner = "Microsoft Windows [Version 10.0.17763.1]\n(c) 2018 Microsoft Corporation.\n\nC:\\>netstat -ano\n"
    rows_ = "\n".join(f"  TCP    0.0.0.0:{p}  0.0.0.0:0  LISTENING  4" for p in range(9))
    assert fileversion.sniff_ver(banner + rows_) == 0.0


FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(text=st.text(max_size=600))
def test_random_text_never_raises(text: str) -> None:
    assert run(text).skipped <= text.count("\n") + 1
