"""What settles MS17-010 on a host beyond its KB list -> `host_config` rows (docs/audit.md).

* File versions (kind `file_version`, name = the file, value = `Major.Minor.Build.Private`):
  `(Get-Item C:\\Windows\\System32\\drivers\\srv.sys).VersionInfo | Format-List` and
  `wmic datafile where name='c:\\\\windows\\\\system32\\\\drivers\\\\srv.sys' get Name,Version`
  (table, `/format:list`, or `get Version` alone, which does not print the file name). From
  VersionInfo the numeric File*Part properties are used first, as Microsoft's check script does,
  then ProductVersion, then the FileVersion string (which on Windows 10 can keep the release
  version after updates; the row's source says which). A `Get-Item` "cannot find path" error
  is kept as kind `file_absent`.
* The OS version with its update build revision (kind `os_version`, name `ver`):
  `ver` prints `Microsoft Windows [Version 10.0.14393.953]` (zh-CN `[版本 10.0.17763.1]`).
* SMBv1 server state (kind `smb1`, value `enabled`/`disabled`): `Get-SmbServerConfiguration`
  (`EnableSMB1Protocol : False`, list or table) and `reg query ...\\LanmanServer\\Parameters /v SMB1`.

Property and value names are not localized, so the same lines come from en and zh-CN hosts.
"""

from __future__ import annotations

import re

from wormhunt.model import HOST_CONFIG
from wormhunt.sources.base import Format, Sink, to_int
from wormhunt.sources.text import is_prompt, iter_lines

_FL = re.compile(r"^(?P<key>[A-Za-z_]\w*)\s*:(?:\s+(?P<value>.*))?$")
_VERSION = re.compile(r"^\s*(\d{1,5})\.(\d{1,5})\.(\d{1,5})\.(\d{1,5})(?!\d)")
_VER = re.compile(
    r"^\s*Microsoft Windows\s*\[(?:Version|版本|Versión|Versione|Versie|Wersja)\s+(\d+\.\d+\.\d+(?:\.\d+)?)\]"
)
_WMIC_LIST = re.compile(r"^(?P<key>Name|Version)=(?P<value>.*)$", re.IGNORECASE)
_ABSENT = (
    re.compile(r"Cannot find path '(?P<path>[^']+)' because it does not exist", re.IGNORECASE),
    re.compile(r"找不到路径[“\"'](?P<path>[^”\"']+)[”\"']，?因为该路径不存在"),
)
_SMB1_FL = re.compile(r"^\s*EnableSMB1Protocol\s*:\s*(?P<value>True|False)\s*$", re.IGNORECASE)
_SMB1_REG = re.compile(r"^\s+SMB1\s+REG_DWORD\s+(?P<value>0x[0-9a-fA-F]+)\s*$")
_LANMAN = re.compile(r"\\LanmanServer\\Parameters\s*$", re.IGNORECASE)
_RULER = re.compile(r"^\s*-{3,}\s*$")
_NO_INSTANCE = re.compile(r"^\s*(?:No Instance\(s\) Available\.?|没有可用实例。?)\s*$", re.IGNORECASE)
_VERSIONINFO_KEYS = {"FileVersion", "ProductVersion", "FileName", "FileMajorPart", "OriginalFilename"}


def _lines(head: str) -> list[str]:
    return [line for _, line in iter_lines(head) if line.strip()][:60]


def sniff_versioninfo(head: str) -> float:
    lines = _lines(head)
    keys = {m.group("key") for line in lines if (m := _FL.match(line))}
    if len(keys & _VERSIONINFO_KEYS) >= 3 and ("FileVersion" in keys or "FileMajorPart" in keys):
        return 0.95
    if any(p.search(line) for line in lines for p in _ABSENT) and any("srv.sys" in ln.lower() for ln in lines):
        return 0.9
    content = [ln for ln in lines if not is_prompt(ln) and not ln.lower().startswith("please wait")]
    for i, line in enumerate(content[:-1]):
        words = line.split()
        if words in (["Version"], ["Name", "Version"]) and _VERSION.match(content[i + 1].split()[-1]):
            return 0.9
    if any(_WMIC_LIST.match(ln) and ln.lower().startswith("version=") for ln in content) and len(content) <= 6:
        return 0.9
    return 0.0


def sniff_ver(head: str) -> float:
    content = [ln for ln in _lines(head) if not is_prompt(ln) and not ln.startswith("(c)")]
    # The same line is cmd.exe's banner at the top of any console copy: only a short file is `ver`.
    if content and len(content) <= 3 and any(_VER.match(ln) for ln in content):
        return 0.9
    return 0.0


def sniff_smb1(head: str) -> float:
    lines = _lines(head)
    if any(_SMB1_FL.match(ln) for ln in lines):
        return 0.9
    if any(ln.strip() == "EnableSMB1Protocol" for ln in lines):
        return 0.85
    if any(_LANMAN.search(ln) for ln in lines) and any(_SMB1_REG.match(ln) for ln in lines):
        return 0.9
    return 0.0


def _version_of(text: str | None) -> str | None:
    m = _VERSION.match(text or "")
    return ".".join(str(int(g)) for g in m.groups()) if m else None


def _row(sink: Sink, no: int, kind: str, name: str, value: str, source: str) -> None:
    sink.row(HOST_CONFIG, {"line": no, "kind": kind, "name": name, "value": value, "source": source})


def _emit_versioninfo(block: dict[str, tuple[int, str]], sink: Sink) -> None:
    def get(key: str) -> str:
        return (block.get(key) or (0, ""))[1].strip()

    name = get("FileName") or get("OriginalFilename")
    first = min(no for no, _ in block.values())
    parts = [to_int(get(k)) for k in ("FileMajorPart", "FileMinorPart", "FileBuildPart", "FilePrivatePart")]
    if all(p is not None for p in parts):
        version, source, no = ".".join(str(p) for p in parts), "VersionInfo File*Part", block["FileMajorPart"][0]
    elif version := _version_of(get("ProductVersion")):
        source, no = "VersionInfo ProductVersion", block["ProductVersion"][0]
    elif version := _version_of(get("FileVersion")):
        source, no = "VersionInfo FileVersion", block["FileVersion"][0]
    else:
        sink.skip(first, "VersionInfo block without a usable version", name)
        return
    if not name:
        sink.skip(first, "VersionInfo block without a file name", version)
        return
    _row(sink, no, "file_version", name, version, source)


def parse(text: str, sink: Sink) -> None:
    """Parse file version listings, `ver` and SMBv1 state lines (concatenated too)."""
    block: dict[str, tuple[int, str]] = {}
    last_key: str | None = None
    wmic_cols: list[str] | None = None
    wmic_list: dict[str, tuple[int, str]] = {}
    smb1_table = False
    in_lanman = False

    def flush() -> None:
        nonlocal block, last_key, wmic_list
        if block and _VERSIONINFO_KEYS & set(block):
            _emit_versioninfo(block, sink)
        block, last_key = {}, None
        if "version" in wmic_list:
            no, value = wmic_list["version"]
            name = wmic_list.get("name", (0, ""))[1] or "srv.sys"
            if version := _version_of(value):
                src = "wmic datafile" if "name" in wmic_list else "wmic datafile (file name not printed)"
                _row(sink, no, "file_version", name, version, src)
            else:
                sink.skip(no, "wmic datafile version is not a file version", value)
        wmic_list = {}

    for no, line in iter_lines(text):
        if not line.strip():
            flush()
            continue
        if is_prompt(line) or line.lower().startswith("please wait while wmic"):
            continue
        if m := _VER.match(line):
            _row(sink, no, "os_version", "ver", m.group(1), "ver")
            continue
        if (m := next((p.search(line) for p in _ABSENT if p.search(line)), None)) is not None:
            _row(sink, no, "file_absent", m.group("path"), "absent", "Get-Item")
            continue
        if m := _SMB1_FL.match(line):
            state = "enabled" if m.group("value").lower() == "true" else "disabled"
            _row(sink, no, "smb1", "EnableSMB1Protocol", state, "Get-SmbServerConfiguration")
            continue
        if line.strip() == "EnableSMB1Protocol":
            smb1_table = True
            continue
        if smb1_table:
            if _RULER.match(line):
                continue
            smb1_table = False
            value = line.strip().lower()
            if value in ("true", "false"):
                state = "enabled" if value == "true" else "disabled"
                _row(sink, no, "smb1", "EnableSMB1Protocol", state, "Get-SmbServerConfiguration")
                continue
        if _LANMAN.search(line):
            in_lanman = True
            continue
        if in_lanman and (m := _SMB1_REG.match(line)):
            state = "disabled" if int(m.group("value"), 16) == 0 else "enabled"
            _row(sink, no, "smb1", "LanmanServer\\Parameters\\SMB1", state, "reg query")
            continue
        if _NO_INSTANCE.match(line):
            sink.skip(no, "wmic found no such file", line)
            continue
        if m := _WMIC_LIST.match(line):
            wmic_list[m.group("key").lower()] = (no, m.group("value").strip())
            continue
        if (m := _FL.match(line)) is not None:
            wmic_cols = None
            last_key = m.group("key")
            block[last_key] = (no, (m.group("value") or "").strip())
            continue
        words = line.split()
        if words in (["Version"], ["Name", "Version"]):
            flush()
            wmic_cols = words
            continue
        if wmic_cols is not None:
            version = _version_of(words[-1]) if words else None
            if version is None:
                sink.skip(no, "wmic datafile row without a file version", line)
                continue
            if len(wmic_cols) == 2:
                name = line[: line.rstrip().rfind(words[-1])].strip()
                _row(sink, no, "file_version", name or "srv.sys", version, "wmic datafile")
            else:
                _row(sink, no, "file_version", "srv.sys", version, "wmic datafile (file name not printed)")
            continue
        if line[0].isspace() and last_key is not None and block:
            lno, value = block[last_key]
            block[last_key] = (lno, value + line.strip())  # Format-List wraps long values
            continue
        sink.skip(no, "not a file version, ver or SMBv1 line", line)
    flush()


FORMATS: tuple[Format, ...] = (
    Format(
        "file-version",
        "file version: Get-Item VersionInfo | Format-List, wmic datafile",
        sniff_versioninfo,
        parse_text=parse,
    ),
    Format("ver", "ver (Windows version with update build revision)", sniff_ver, parse_text=parse),
    Format(
        "smb1-state", "SMBv1 server state: Get-SmbServerConfiguration, reg query SMB1", sniff_smb1, parse_text=parse
    ),
)
