"""The one decoder (sources/text.py): encodings, line splitting, prompts and label matching.

Byte strings are produced here by encoding hand-written text the way each Windows producer
writes it (formats.md section 0.1): cmd.exe tools in the OEM code page (GBK on zh-CN, CP850
on Western European hosts), PowerShell 5.1 and wmic in UTF-16LE with or without BOM.
"""

from __future__ import annotations

import codecs

import pytest

from tests.conftest import encodings
from wormhunt.sources.text import (
    SNIFF_BYTES,
    Encoding,
    Labels,
    decode,
    display_width,
    is_prompt,
    iter_lines,
    normalize_label,
    not_available,
    sniff_encoding,
)

ZH_SYSTEMINFO = """\
主机名:           WIN-KOHRC1DGOL9
OS 名称:          Microsoft Windows Server 2012 R2 Standard
OS 版本:          6.3.9600 暂缺 Build 9600
修补程序:         安装了 2 个修补程序。
                  [01]: KB2919355
                  [02]: KB4012213
"""

# A German console copy (cmd.exe, OEM code page 850). Every byte pair it contains is also a
# valid GB18030 sequence, so a decoder that only tries codecs in turn calls it Chinese.
DE_NETSTAT = """\

Aktive Verbindungen

  Proto  Lokale Adresse         Remoteadresse          Status
  TCP    0.0.0.0:135            0.0.0.0:0              ABHÖREN
  TCP    0.0.0.0:445            0.0.0.0:0              ABHÖREN
Verfügbarer physikalischer Speicher: 1.024 MB
"""


# --- encodings ---------------------------------------------------------------------------


def test_utf8_bom_is_skipped_and_recorded() -> None:
    data = codecs.BOM_UTF8 + ZH_SYSTEMINFO.encode("utf-8")
    assert sniff_encoding(data) == Encoding("utf-8", bom=3)
    dec = decode(data)
    assert dec.text == ZH_SYSTEMINFO
    assert not dec.text.startswith("\ufeff")
    assert dec.encoding.label == "utf-8+bom"


def test_utf16le_with_bom() -> None:
    data = codecs.BOM_UTF16_LE + ZH_SYSTEMINFO.encode("utf-16-le")
    assert sniff_encoding(data) == Encoding("utf-16-le", bom=2)
    dec = decode(data)
    assert dec.text == ZH_SYSTEMINFO
    assert dec.encoding.label == "utf-16-le+bom"


@pytest.mark.parametrize(
    "text",
    [
        "Caption    CSName    Description    HotFixID\r\n"
        "http://support.microsoft.com/?kbid=4012212  WS01  Security Update  KB4012212\r\n",
        ZH_SYSTEMINFO,  # Chinese labels: NULs only in the odd bytes of the ASCII parts
    ],
    ids=["wmic-ascii", "zh"],
)
def test_utf16le_without_bom(text: str) -> None:
    data = text.encode("utf-16-le")
    assert sniff_encoding(data) == Encoding("utf-16-le")
    dec = decode(data)
    assert dec.text == text
    assert dec.encoding.label == "utf-16-le"


def test_utf16be_with_bom() -> None:
    data = codecs.BOM_UTF16_BE + ZH_SYSTEMINFO.encode("utf-16-be")
    assert sniff_encoding(data) == Encoding("utf-16-be", bom=2)
    assert decode(data).text == ZH_SYSTEMINFO


def test_strict_utf8_without_bom() -> None:
    text = "Größe 修补程序 KB4012212\n"
    data = text.encode("utf-8")
    assert sniff_encoding(data) == Encoding("utf-8")
    dec = decode(data)
    assert dec.text == text
    assert not dec.encoding.lossy


def test_gbk_chinese_console_output() -> None:
    data = ZH_SYSTEMINFO.replace("\n", "\r\n").encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # precondition: this is not UTF-8 by accident
    assert sniff_encoding(data) == Encoding("gb18030")
    dec = decode(data)
    assert dec.text == ZH_SYSTEMINFO.replace("\n", "\r\n")
    assert dec.encoding.label == "gb18030"


def test_gb18030_four_byte_character() -> None:
    # Rare characters outside GBK are four-byte GB18030 sequences; they must not knock the
    # file off the GB18030 rung (U+20000 is such a character).
    text = "用户名:     张\U00020000\r\n修补程序:   安装了 1 个修补程序。\r\n"
    data = text.encode("gb18030")
    assert sniff_encoding(data).name == "gb18030"
    assert decode(data).text == text


def test_cp850_western_console_is_not_taken_for_gbk() -> None:
    data = DE_NETSTAT.replace("\n", "\r\n").encode("cp850")
    data.decode("gb18030")  # precondition: it *is* valid GB18030, so the test can fail
    enc = sniff_encoding(data)
    assert enc.name == "cp850"
    assert enc.lossy
    dec = decode(data)
    assert "ABHÖREN" in dec.text
    assert "Verfügbarer physikalischer Speicher" in dec.text
    assert dec.encoding.label == "cp850(lossy)"


def test_latin_fallback_is_flagged_lossy() -> None:
    data = "Nom de l'hôte: café crème brûlée\r\n".encode("cp1252")
    enc = sniff_encoding(data)
    assert enc == Encoding("cp1252", lossy=True)
    dec = decode(data)
    assert dec.text == "Nom de l'hôte: café crème brûlée\r\n"
    assert dec.encoding.label == "cp1252(lossy)"


def test_undecodable_bytes_never_raise() -> None:
    dec = decode(b"\x81\x00\xff\xfe\x00\x9d\x8d")
    assert dec.encoding.lossy
    assert isinstance(dec.text, str)


@pytest.mark.parametrize("bom", [True, False], ids=["bom", "nobom"])
def test_truncated_utf16_with_odd_length(bom: bool) -> None:
    body = "Host Name:                 WS01\r\nOS Name:".encode("utf-16-le") + b"O"  # half a char
    data = (codecs.BOM_UTF16_LE if bom else b"") + body
    assert len(data) % 2 == 1
    dec = decode(data)
    assert dec.encoding.name == "utf-16-le"
    assert dec.encoding.bom == (2 if bom else 0)
    assert dec.encoding.lossy  # flagged, not hidden
    assert dec.text.startswith("Host Name:                 WS01\r\nOS Name:")
    assert dec.text.endswith("\ufffd")
    assert dec.encoding.label == ("utf-16-le+bom(lossy)" if bom else "utf-16-le(lossy)")


def test_probe_cut_inside_a_character_only_counts_when_incomplete() -> None:
    utf8 = "修补程序".encode()[:-1]  # the probe ends in the middle of a character
    assert sniff_encoding(utf8, complete=False) == Encoding("utf-8")
    assert sniff_encoding(utf8, complete=True).name != "utf-8"
    gbk = "修补程序 安装了".encode("gbk")[:-1]
    assert sniff_encoding(gbk, complete=False) == Encoding("gb18030")
    assert sniff_encoding(gbk, complete=True).name != "gb18030"


def test_decode_walks_down_the_ladder_past_the_probe() -> None:
    # ASCII for longer than the probe, then GBK: the probe says UTF-8, the whole file is GB18030.
    tail = "\r\n修补程序:         安装了 6 个修补程序。\r\n"
    data = b"A" * (SNIFF_BYTES + 10) + tail.encode("gbk")
    dec = decode(data)
    assert dec.encoding == Encoding("gb18030")
    assert dec.text.endswith(tail)
    # ... and a Western OEM tail is not forced into GB18030.
    data = b"A" * (SNIFF_BYTES + 10) + "\r\nStatus ABHÖREN Größe\r\n".encode("cp850")
    dec = decode(data)
    assert dec.encoding == Encoding("cp850", lossy=True)
    assert dec.text.endswith("ABHÖREN Größe\r\n")


@pytest.mark.parametrize("variant", sorted(encodings(ZH_SYSTEMINFO)))
def test_every_producer_variant_decodes_to_the_same_lines(variant: str) -> None:
    data = encodings(ZH_SYSTEMINFO)[variant]
    lines = [line for _, line in iter_lines(decode(data).text)]
    assert lines == ZH_SYSTEMINFO.split("\n")


# --- lines -------------------------------------------------------------------------------


def test_iter_lines_endings_padding_and_numbers() -> None:
    text = "a\r\r\nb   \r\nc\t \r\n\r\n   d   \n主机名:　\r\nx\ry\n"
    assert list(iter_lines(text)) == [
        (1, "a"),  # \r\r\n from piped wmic is one line end
        (2, "b"),  # right padding removed
        (3, "c"),
        (4, ""),  # blank lines keep their number
        (5, "   d"),  # leading indentation is data (systeminfo continuation lines)
        (6, "主机名:"),  # full-width space padding removed
        (7, "x\ry"),  # a lone \r inside a line is text, not a line end
        (8, ""),
    ]


def test_iter_lines_console_width_padding() -> None:
    text = "".join(line.ljust(120) + "\r\n" for line in ["Host Name:   WS01", "", "  TCP  0.0.0.0:445"])
    assert list(iter_lines(text)) == [(1, "Host Name:   WS01"), (2, ""), (3, "  TCP  0.0.0.0:445"), (4, "")]


# --- prompts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "C:\\Users\\x>netstat -ano",
        "C:\\phpstudy_pro\\WWW\\eyoucms1.0\\preview> systeminfo",
        "PS C:\\Users\\Administrator> Get-Hotfix",
        "  c:\\>tasklist /v",
        "D:\\case 7\\host 12>systeminfo > si.txt",
    ],
)
def test_is_prompt(line: str) -> None:
    assert is_prompt(line)


@pytest.mark.parametrize(
    "line",
    [
        "C:\\Users\\x>",  # a prompt with no command after it
        "PS C:\\Users\\x> ",
        "Windows Directory:         C:\\Windows",
        "                           C:\\Windows\\system32",
        "Page File Location(s):     C:\\pagefile.sys",
        "  TCP    0.0.0.0:445            0.0.0.0:0              LISTENING       4",
        "",
    ],
)
def test_is_not_prompt(line: str) -> None:
    assert not is_prompt(line)


# --- labels ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Virtual Memory: Max Size:", "virtual memory:max size"),
        ("Host\u00a0Name", "HOST NAME"),
        ("主机名：", "主机名:"),
        ("Ｈｏｔｆｉｘ（ｓ）", "Hotfix(s)"),
        ("虚拟内存: 最大值:", "虚拟内存最大值"),
        ("Mémoire virtuelle : taille maximale", "MÉMOIRE VIRTUELLE: TAILLE MAXIMALE"),
    ],
)
def test_normalize_label_equal(a: str, b: str) -> None:
    assert normalize_label(a) == normalize_label(b)


def test_normalize_label_values() -> None:
    assert normalize_label("  Virtual Memory: Max Size:  ") == "virtualmemorymaxsize"
    assert normalize_label("OS 构件类型:") == "os构件类型"
    assert normalize_label("Host Name") != normalize_label("OS Name")


def test_labels_systeminfo_section() -> None:
    labels = Labels("systeminfo")
    assert labels.get("Host Name") == "host_name"
    assert labels.get("主机名") == "host_name"
    assert labels.get("  HOST NAME:  ") == "host_name"
    assert labels.get("Virtual Memory: Max Size") == "vm_max"
    assert labels.get("虚拟内存: 最大值:") == "vm_max"
    assert labels.get("OS 构件类型") == labels.get("OS 构建类型") == "os_build_type"
    assert labels.get("修补程序") == labels.get("Hotfix(s)") == "hotfixes"
    assert labels.get("NetWork Card(s)") == "network_cards"
    assert labels.get("Page File: Max Size") == "vm_max"  # Server 2003 wording
    assert labels.get("Favourite Colour") is None
    assert "Hyper-V 要求" in labels
    assert "Favourite Colour" not in labels
    # systeminfo's print order, used to place a label the dictionary lacks
    assert labels.order[:3] == ["host_name", "os_name", "os_version"]
    assert labels.order.index("hotfixes") == labels.order.index("logon_server") + 1
    assert labels.order[-1] == "hyperv"


def test_labels_list_section() -> None:
    labels = Labels("tasklist_empty")
    msg = "INFO: No tasks are running which match the specified criteria."
    assert labels.get(msg) == msg
    assert labels.get("信息: 没有运行的任务匹配指定标准。") == "信息: 没有运行的任务匹配指定标准。"
    assert labels.order == []


@pytest.mark.parametrize("value", [None, "", "   ", "N/A", " N/A ", "暂缺", "N/D"])
def test_not_available(value: str | None) -> None:
    assert not_available(value)


@pytest.mark.parametrize("value", ["WORKGROUP", "0", "No", "6.3.9600 暂缺 Build 9600", "\\\\DC01"])
def test_available(value: str) -> None:
    assert not not_available(value)


@pytest.mark.parametrize(
    ("text", "width"),
    [
        ("", 0),
        ("Host Name:", 10),
        ("主机名:", 7),
        ("OS 构件类型:", 12),
        ("虚拟内存: 最大值:", 17),
        ("(UTC+08:00)北京，重庆", 21),  # full-width comma is two cells
        ("ＡＢ", 4),
        ("Größe", 5),
    ],
)
def test_display_width(text: str, width: int) -> None:
    assert display_width(text) == width


def test_display_width_puts_zh_systeminfo_values_at_cell_18() -> None:
    labelled = [line for line in ZH_SYSTEMINFO.splitlines() if line and not line[0].isspace()]
    assert len(labelled) == 4
    for line in labelled:
        label, _, rest = line.partition(":")
        start = len(label) + 1 + len(rest) - len(rest.lstrip())
        assert display_width(line[:start]) == 18, line
        assert len(line[:start]) < 18  # fewer characters than cells: CJK labels are double width
