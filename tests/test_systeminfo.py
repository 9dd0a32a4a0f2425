"""systeminfo parser: hand-written en and zh-CN fixtures in every encoding, then real captures.

Fixtures follow formats.md section 6: English labels padded so values start at column 27,
Chinese labels padded to display column 18 (CJK characters take two cells), `暂缺` for N/A,
`安装了 N 个修补程序。`, labels that contain a colon themselves (`Virtual Memory: Max Size:`),
NIC blocks with IP sub-items, trailing spaces and an echoed prompt.

The acceptance test reads the real captures in ../shared/data/systeminfo in place (skipped
when that folder is absent). Its expected table was established by reading each file (iconv /
Python decoding and grep), not from the parser's output.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import encodings
from wormhunt.sources import systeminfo
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_head
from wormhunt.sources.text import SNIFF_BYTES, decode, display_width

CUT = "hotfix entry cut short (systeminfo truncated the list)"

# en-US, Windows 7 SP1. `\x20` marks the trailing spaces of real console copies.
EN = """\
C:\\Users\\admin>systeminfo

Host Name:                 WS-FIN-07
OS Name:                   Microsoft Windows 7 Professional\x20
OS Version:                6.1.7601 Service Pack 1 Build 7601
OS Manufacturer:           Microsoft Corporation
OS Configuration:          Member Workstation
OS Build Type:             Multiprocessor Free
Registered Owner:          Finance
Registered Organization:\x20\x20\x20
Product ID:                00371-OEM-8992671-00524
Original Install Date:     11/30/2016, 10:15:42 AM
System Boot Time:          3/2/2017, 8:01:09 PM
System Manufacturer:       Dell Inc.
System Model:              OptiPlex 7010
System Type:               x64-based PC
Processor(s):              1 Processor(s) Installed.
                           [01]: Intel64 Family 6 Model 58 Stepping 9 GenuineIntel ~3401 Mhz
BIOS Version:              Dell Inc. A29, 6/28/2018
Windows Directory:         C:\\Windows
System Directory:          C:\\Windows\\system32
Boot Device:               \\Device\\HarddiskVolume1
System Locale:             en-us;English (United States)
Input Locale:              en-us;English (United States)
Time Zone:                 (UTC-05:00) Eastern Time (US & Canada)
Total Physical Memory:     8,089 MB
Available Physical Memory: 5,112 MB
Virtual Memory: Max Size:  16,177 MB
Virtual Memory: Available: 12,640 MB
Virtual Memory: In Use:    3,537 MB
Page File Location(s):     C:\\pagefile.sys
Domain:                    corp.example.com
Logon Server:              \\\\DC01\x20
Hotfix(s):                  4 Hotfix(s) Installed.\x20
                           [01]: KB2479943
                           [02]: KB4012212
                           [03]: KB976902
                           [04]: KB893803v2 - Update
Network Card(s):           1 NIC(s) Installed.
                           [01]: Intel(R) 82579LM Gigabit Network Connection
                                 Connection Name: Local Area Connection
                                 DHCP Enabled:    Yes
                                 DHCP Server:     10.20.30.1
                                 IP address(es)
                                 [01]: 10.20.30.41\x20
                                 [02]: fe80::1c2d:3e4f:5a6b:7c8d
Hyper-V Requirements:      VM Monitor Mode Extensions: Yes
                           Virtualization Enabled In Firmware: No
                           Second Level Address Translation: Yes
                           Data Execution Prevention Available: Yes\x20\x20\x20
"""

EN_HOST = {
    "line": 3,
    "hostname": "WS-FIN-07",
    "os_name": "Microsoft Windows 7 Professional",
    "os_version": "6.1.7601 Service Pack 1 Build 7601",
    "os_build": 7601,
    "service_pack": "Service Pack 1",
    "system_type": "x64-based PC",
    "domain": "corp.example.com",
    "install_date": datetime(2016, 11, 30, 10, 15, 42),
    # 3/2/2017 alone is ambiguous; 11/30/2016 in the same report proves month-first.
    "boot_time": datetime(2017, 3, 2, 20, 1, 9),
    "time_zone": "(UTC-05:00) Eastern Time (US & Canada)",
    "utc_offset_min": -300,
    "locale": "en-us;English (United States)",
    "language": "en",
    "ips": ["10.20.30.41", "fe80::1c2d:3e4f:5a6b:7c8d"],
    "hotfixes_declared": 4,
    "hotfixes_listed": 4,
}
EN_HOTFIXES = [
    ("KB2479943", "KB2479943"),
    ("KB4012212", "KB4012212"),
    ("KB976902", "KB976902"),
    ("KB893803", "KB893803v2 - Update"),
]

# zh-CN, Server 2012 R2 (cp936 console). Values at display column 18.
ZH = """\
C:\\Users\\Administrator>systeminfo

主机名:           WIN-KOHRC1DGOL9
OS 名称:          Microsoft Windows Server 2012 R2 Standard
OS 版本:          6.3.9600 暂缺 Build 9600
OS 制造商:        Microsoft Corporation
OS 配置:          独立服务器
OS 构件类型:      Multiprocessor Free
注册的所有人:     Windows 用户
注册的组织:\x20\x20\x20\x20\x20\x20\x20
产品 ID:          00252-60020-02714-AA020
初始安装日期:     2025/1/6, 11:21:56
系统启动时间:     2025/10/25, 10:32:01
系统制造商:       Red Hat
系统型号:         KVM
系统类型:         x64-based PC
处理器:           安装了 1 个处理器。
                  [01]: Intel64 Family 6 Model 85 Stepping 4 GenuineIntel ~2000 Mhz
BIOS 版本:        SeaBIOS 1.16.3-2.el9, 2014/4/1
Windows 目录:     C:\\Windows
系统目录:         C:\\Windows\\system32
启动设备:         \\Device\\HarddiskVolume1
系统区域设置:     zh-cn;中文(中国)
输入法区域设置:   zh-cn;中文(中国)
时区:             (UTC+08:00)北京，重庆，香港特别行政区，乌鲁木齐
物理内存总量:     1,023 MB
可用的物理内存:   448 MB
虚拟内存: 最大值: 2,047 MB
虚拟内存: 可用:   1,111 MB
虚拟内存: 使用中: 936 MB
页面文件位置:     C:\\pagefile.sys
域:               WORKGROUP
登录服务器:       暂缺
修补程序:         安装了 3 个修补程序。
                  [01]: KB2919355
                  [02]: KB4012213
                  [03]: KB2949621
网卡:             安装了 1 个 NIC。
                  [01]: Realtek RTL8139C+ Fast Ethernet NIC
                      连接名:      以太网实例 0
                      启用 DHCP:   是
                      DHCP 服务器: 192.168.20.1
                      IP 地址
                        [01]: 192.168.20.10\x20
                        [02]: fe80::41ee:c39e:b973:970d
Hyper-V 要求:     已检测到虚拟机监控程序。将不显示 Hyper-V 所需的功能。
"""

ZH_HOST = {
    "line": 3,
    "hostname": "WIN-KOHRC1DGOL9",
    "os_name": "Microsoft Windows Server 2012 R2 Standard",
    "os_version": "6.3.9600 暂缺 Build 9600",
    "os_build": 9600,
    "service_pack": None,  # `暂缺` in the service-pack slot
    "system_type": "x64-based PC",
    "domain": "WORKGROUP",
    "install_date": datetime(2025, 1, 6, 11, 21, 56),
    "boot_time": datetime(2025, 10, 25, 10, 32, 1),
    "time_zone": "(UTC+08:00)北京，重庆，香港特别行政区，乌鲁木齐",
    "utc_offset_min": 480,
    "locale": "zh-cn;中文(中国)",
    "language": "zh-CN",
    "ips": ["192.168.20.10", "fe80::41ee:c39e:b973:970d"],
    "hotfixes_declared": 3,
    "hotfixes_listed": 3,
}
ZH_HOTFIXES = [("KB2919355", "KB2919355"), ("KB4012213", "KB4012213"), ("KB2949621", "KB2949621")]


def parse(text: str) -> MemorySink:
    sink = MemorySink()
    systeminfo.parse(text, sink)
    return sink


def line_of(text: str, needle: str) -> int:
    """1-based number of the (only) line that contains `needle`."""
    hits = [no for no, line in enumerate(text.split("\n"), 1) if needle in line]
    assert len(hits) == 1, needle
    return hits[0]


def hotfix_pairs(sink: MemorySink) -> list[tuple[str, str]]:
    return [(row["hotfix"], row["raw"]) for row in sink.of("hotfixes")]


def warnings(sink: MemorySink) -> list[dict[str, Any]]:
    return [w for w in sink.meta.get("warnings", []) if w["code"] == "hotfix_list_truncated"]


# --- the fixtures are in the documented layout ----------------------------------------------


def _value_start(line: str) -> int:
    """Column where the value begins: after the last `:` of the label and its padding."""
    cut = line.rindex(": ", 0, 30) + 1 if "虚拟内存" in line or "Virtual Memory" in line else line.index(":") + 1
    rest = line[cut:]
    return cut + len(rest) - len(rest.lstrip())


def test_fixtures_follow_the_documented_columns() -> None:
    en = [line for line in EN.splitlines()[2:] if line and not line[0].isspace()]
    zh = [line for line in ZH.splitlines()[2:] if line and not line[0].isspace()]
    assert len(en) == 33 and len(zh) == 33
    for line in en:
        if line.rstrip() == line.split(":")[0] + ":" or line.startswith("Hotfix(s):"):
            continue  # empty value; `Hotfix(s):` has the documented extra space
        assert _value_start(line) == 27, line
    for line in zh:
        if line.rstrip().endswith(":"):
            continue
        assert display_width(line[: _value_start(line)]) == 18, line


# --- English and Chinese reports ----------------------------------------------------------


def test_en_host_info() -> None:
    sink = parse(EN)
    assert sink.of("host_info") == [EN_HOST]
    assert sink.skip_counts == {}
    assert sink.meta == {}


def test_en_hotfix_rows() -> None:
    sink = parse(EN)
    assert hotfix_pairs(sink) == EN_HOTFIXES
    rows = sink.of("hotfixes")
    assert [row["line"] for row in rows] == [
        line_of(EN, "[01]: KB2479943"),
        line_of(EN, "[02]: KB4012212"),
        line_of(EN, "[03]: KB976902"),
        line_of(EN, "[04]: KB893803v2"),
    ]
    assert {row["source"] for row in rows} == {"systeminfo"}


def test_zh_host_info() -> None:
    sink = parse(ZH)
    assert sink.of("host_info") == [ZH_HOST]
    assert hotfix_pairs(sink) == ZH_HOTFIXES
    assert [row["line"] for row in sink.of("hotfixes")] == [
        line_of(ZH, "KB2919355"),
        line_of(ZH, "KB4012213"),
        line_of(ZH, "KB2949621"),
    ]
    assert sink.skip_counts == {}
    assert sink.meta == {}


def test_zh_win11_label_wording() -> None:
    # Windows 11 prints `OS 构建类型`, 2012 R2 and older Windows 10 `OS 构件类型`.
    sink = parse(ZH.replace("OS 构件类型:      ", "OS 构建类型:      "))
    assert sink.of("host_info") == [ZH_HOST]
    assert sink.skip_counts == {}


@pytest.mark.parametrize(
    ("line", "col", "label", "value"),
    [
        ("Virtual Memory: Max Size:  16,177 MB", 27, "Virtual Memory: Max Size", "16,177 MB"),
        ("Virtual Memory: Available: 12,640 MB", 27, "Virtual Memory: Available", "12,640 MB"),
        ("Page File: Max Size:       1,378 MB", 27, "Page File: Max Size", "1,378 MB"),
        ("虚拟内存: 最大值: 2,047 MB", 18, "虚拟内存: 最大值", "2,047 MB"),
        ("虚拟内存: 使用中: 936 MB", 18, "虚拟内存: 使用中", "936 MB"),
        (
            "Time Zone:                 (GMT) Greenwich Mean Time : Dublin, London",
            27,
            "Time Zone",
            "(GMT) Greenwich Mean Time : Dublin, London",
        ),
        (
            "Hyper-V Requirements:      VM Monitor Mode Extensions: Yes",
            27,
            "Hyper-V Requirements",
            "VM Monitor Mode Extensions: Yes",
        ),
        # a label the dictionary does not know: the value column decides which colon ends it
        ("Virtual Memory: Peak Size: 4,000 MB", 27, "Virtual Memory: Peak Size", "4,000 MB"),
        ("Virtualization-based security: Status: Not enabled", 31, "Virtualization-based security",
         "Status: Not enabled"),
    ],
)  # fmt: skip
def test_labels_with_colons_split_at_the_value_column(line: str, col: int, label: str, value: str) -> None:
    assert systeminfo._label_split(line, col) == (label, value)


def test_nic_ips_only_from_the_ip_list() -> None:
    for text, host in ((EN, EN_HOST), (ZH, ZH_HOST)):
        ips = parse(text).of("host_info")[0]["ips"]
        assert ips == host["ips"]
        assert "10.20.30.1" not in ips and "192.168.20.1" not in ips  # DHCP server lines


def test_trailing_spaces_are_not_part_of_values() -> None:
    host = parse(EN).of("host_info")[0]
    assert host["os_name"] == "Microsoft Windows 7 Professional"
    assert host["hotfixes_declared"] == 4  # from ` 4 Hotfix(s) Installed. `
    assert parse(ZH).of("host_info")[0]["ips"][0] == "192.168.20.10"


@pytest.mark.parametrize(
    "prompt",
    ["", "C:\\Users\\admin>systeminfo", "PS C:\\Users\\admin> systeminfo", "C:\\>systeminfo > si.txt"],
)
def test_echoed_prompt_is_skipped_quietly(prompt: str) -> None:
    text = prompt + "\n" + EN.split("\n", 1)[1]
    sink = parse(text)
    assert sink.of("host_info")[0] == EN_HOST
    assert sink.skip_counts == {}


def test_blank_line_between_every_line() -> None:
    # blog copies turn every line into `line\n\n`
    sink = parse("\n\n".join(ZH.split("\n")))
    host = sink.of("host_info")[0]
    assert {k: v for k, v in host.items() if k != "line"} == {k: v for k, v in ZH_HOST.items() if k != "line"}
    assert hotfix_pairs(sink) == ZH_HOTFIXES
    assert sink.skip_counts == {}


def test_console_width_padding() -> None:
    sink = parse("\r\n".join(line.ljust(120) for line in EN.split("\n")))
    assert sink.of("host_info") == [EN_HOST]
    assert hotfix_pairs(sink) == EN_HOTFIXES


def test_unknown_label_wording_is_placed_by_order() -> None:
    text = EN.replace("Domain:                    corp", "Domain Name:               corp")
    assert parse(text).of("host_info")[0]["domain"] == "corp.example.com"
    text = ZH.replace("域:               WORKGROUP", "工作组:           WORKGROUP")
    assert parse(text).of("host_info")[0]["domain"] == "WORKGROUP"


def test_two_reports_in_one_file_stay_apart() -> None:
    second = EN.replace("WS-FIN-07", "WS-FIN-08").replace("[02]: KB4012212", "[02]: KB4012215")
    text = EN + "\n" + second
    sink = parse(text)
    hosts = sink.of("host_info")
    assert [h["hostname"] for h in hosts] == ["WS-FIN-07", "WS-FIN-08"]
    assert hosts[1]["line"] == EN.count("\n") + 1 + 3
    assert [r["hotfix"] for r in sink.of("hotfixes")] == [
        "KB2479943", "KB4012212", "KB976902", "KB893803",
        "KB2479943", "KB4012215", "KB976902", "KB893803",
    ]  # fmt: skip


# --- hotfix lists -------------------------------------------------------------------------


def _with_hotfixes(header: str, items: list[str], text: str = EN) -> str:
    """EN with its hotfix block replaced."""
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("Hotfix(s):"))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith(" "))
    block = [f"Hotfix(s):                 {header}"] + [" " * 27 + item for item in items]
    return "\n".join(lines[:start] + block + lines[end:])


def test_hotfix_item_shapes() -> None:
    items = [
        "[01]: File 1",
        "[02]: Q147222",
        "[03]: KB893803v2 - Update",
        "[04]: {7A068575-C5DB-43D9-BE20-3895D0C69B17}",
        "[05]: 943729",
        "[06]: kb4012212",
        "[07]: KB2862152 - Update",
    ]
    sink = parse(_with_hotfixes("7 Hotfix(s) Installed.", items))
    assert hotfix_pairs(sink) == [
        ("File 1", "File 1"),
        ("Q147222", "Q147222"),
        ("KB893803", "KB893803v2 - Update"),
        ("{7A068575-C5DB-43D9-BE20-3895D0C69B17}", "{7A068575-C5DB-43D9-BE20-3895D0C69B17}"),
        ("943729", "943729"),
        ("KB4012212", "kb4012212"),
        ("KB2862152", "KB2862152 - Update"),
    ]
    assert sink.meta == {}


@pytest.mark.parametrize("na", ["N/A", "暂缺"])
def test_no_hotfixes(na: str) -> None:
    sink = parse(_with_hotfixes(na, []))
    host = sink.of("host_info")[0]
    assert (host["hotfixes_declared"], host["hotfixes_listed"]) == (0, 0)
    assert sink.of("hotfixes") == []
    assert sink.meta == {}


def test_zh_no_hotfixes() -> None:
    lines = [line for line in ZH.split("\n") if "KB" not in line]
    text = "\n".join(lines).replace("安装了 3 个修补程序。", "暂缺")
    sink = parse(text)
    assert (sink.of("host_info")[0]["hotfixes_declared"], sink.of("hotfixes")) == (0, [])


def test_truncated_list_with_cut_marker() -> None:
    items = ["[01]: KB2479943", "[02]: KB4012212", "[03]: KB976902", "[04"]
    sink = parse(_with_hotfixes("271 Hotfix(s) Installed.", items))
    host = sink.of("host_info")[0]
    assert (host["hotfixes_declared"], host["hotfixes_listed"]) == (271, 3)
    assert [r["hotfix"] for r in sink.of("hotfixes")] == ["KB2479943", "KB4012212", "KB976902"]
    assert warnings(sink) == [{"code": "hotfix_list_truncated", "declared": 271, "listed": 3}]
    assert sink.skip_counts == {CUT: 1}


@pytest.mark.parametrize("cut", ["[03]: KB97690", "[03]: KB9", "[03]: Q1472", "[03]: KB976902", "[03]"])
def test_truncated_list_cut_inside_the_last_item(cut: str) -> None:
    # systeminfo cuts a long list at any character; the cut item is not a hotfix. Even six
    # digits at the cut may be a seven-digit KB that lost its last digit, so it is not trusted.
    sink = parse(_with_hotfixes("352 Hotfix(s) Installed.", ["[01]: File 1", "[02]: KB2862152 - Update", cut]))
    assert [r["hotfix"] for r in sink.of("hotfixes")] == ["File 1", "KB2862152"]
    assert sink.of("host_info")[0]["hotfixes_listed"] == 2
    assert warnings(sink) == [{"code": "hotfix_list_truncated", "declared": 352, "listed": 2}]
    assert sink.skip_counts == {CUT: 1}


@pytest.mark.parametrize("last", ["[03]: KB2876331 - Upd", "[03]: KB2876331"])
def test_truncated_list_keeps_a_last_item_whose_kb_is_whole(last: str) -> None:
    # Text after the number, or seven digits (the most a KB number has), mean it is whole.
    items = ["[01]: File 1", "[02]: KB2862152 - Update", last]
    sink = parse(_with_hotfixes("300 Hotfix(s) Installed.", items))
    assert [r["hotfix"] for r in sink.of("hotfixes")] == ["File 1", "KB2862152", "KB2876331"]
    assert warnings(sink) == [{"code": "hotfix_list_truncated", "declared": 300, "listed": 3}]
    assert sink.skip_counts == {}


def test_complete_list_is_not_touched() -> None:
    # The last item of a list that is complete ends at the line end too; it is kept.
    sink = parse(_with_hotfixes("2 Hotfix(s) Installed.", ["[01]: KB2479943", "[02]: KB97690"]))
    assert [r["hotfix"] for r in sink.of("hotfixes")] == ["KB2479943", "KB97690"]
    assert sink.meta == {}


# --- encodings ----------------------------------------------------------------------------


def _variants(text: str) -> dict[str, bytes]:
    out = encodings(text)
    rr = text.replace("\n", "\r\r\n")
    out["utf-16le-bom-crcrlf"] = b"\xff\xfe" + rr.encode("utf-16-le")
    out["gbk-crcrlf"] = rr.encode("gbk")
    return out


ZH_LABELS = {
    "utf-8": "utf-8",
    "utf-8-bom": "utf-8+bom",
    "utf-16le-bom": "utf-16-le+bom",
    "utf-16le-nobom": "utf-16-le",
    "crcrlf": "utf-8",
    "gbk": "gb18030",
    "utf-16le-bom-crcrlf": "utf-16-le+bom",
    "gbk-crcrlf": "gb18030",
}


@pytest.mark.parametrize("variant", sorted(ZH_LABELS))
def test_zh_in_every_encoding(variant: str) -> None:
    data = _variants(ZH)[variant]
    dec = decode(data)
    assert dec.encoding.label == ZH_LABELS[variant]
    sink = parse(dec.text)
    assert sink.of("host_info") == [ZH_HOST]
    assert hotfix_pairs(sink) == ZH_HOTFIXES
    assert sink.skip_counts == {}


@pytest.mark.parametrize("variant", sorted(_variants(EN)))
def test_en_in_every_encoding(variant: str) -> None:
    sink = parse(decode(_variants(EN)[variant]).text)
    assert sink.of("host_info") == [EN_HOST]
    assert hotfix_pairs(sink) == EN_HOTFIXES
    assert sink.skip_counts == {}


@pytest.mark.parametrize("variant", sorted(ZH_LABELS))
def test_detected_as_systeminfo(variant: str) -> None:
    for text in (EN, ZH):
        det = detect_head(_variants(text)[variant], complete=True)
        assert det.format is not None and det.format.name == "systeminfo", (variant, det.reason)


def test_sniff_scores() -> None:
    assert systeminfo.sniff(EN) >= 0.9
    assert systeminfo.sniff(ZH) >= 0.9
    netstat = "\nActive Connections\n\n  Proto  Local Address  Foreign Address  State  PID\n"
    assert systeminfo.sniff(netstat) == 0.0


# --- real captures (../shared/data/systeminfo) --------------------------------------------

# file -> (OS name, OS build, declared hotfix count, listed entries, first hotfix, last hotfix).
# Established by decoding each file (cp850 / gbk / utf-16 / utf-8) and reading its labels and
# `[NN]:` lines. `N/A` counts as 0 declared. "listed" counts whole entries: the cut-off piece
# where systeminfo truncated the list (`[246]`, `[24`, `[2`, `[221`, `[240]: KB2862`) is not one.
# Ids are the KB number where there is one (`KB893803v2 - Update` -> KB893803), else the item.
REAL: dict[str, tuple[str, int, int, int, str | None, str | None]] = {
    "10_1803_x64_education_en-us_systeminfo.txt":
        ("Microsoft Windows 10 Education", 17134, 5, 5, "KB4100347", "KB4343909"),
    "10_1803_x64_enterprise_es-ar_20190307_systeminfo.txt":
        ("Microsoft Windows 10 Enterprise", 17134, 6, 6, "KB4456655", "KB4487029"),
    "10_1803_x64_pro_it_systeminfo.txt":
        ("Microsoft Windows 10 Pro", 17134, 10, 10, "KB4100347", "KB4487017"),
    "10_1803_x64_proforworkstations_en-us_A_20190305_systeminfo.txt":
        ("Microsoft Windows 10 Pro for Workstations", 17134, 4, 4, "KB4462930", "KB4487017"),
    "10_1803_x64_proforworkstations_en-us_B_20190306_systeminfo.txt":
        ("Microsoft Windows 10 Pro for Workstations", 17134, 0, 0, None, None),
    "10_1803_x64_proforworkstations_en-us_systeminfo.txt":
        ("Microsoft Windows 10 Pro for Workstations", 17134, 0, 0, None, None),
    "10_1803_x86_enterprise_nl_systeminfo.txt":
        ("Microsoft Windows 10 Enterprise", 17134, 4, 4, "KB4230204", "KB4457128"),
    "10_1809_x64_education_en-us_20190306_systeminfo.txt":
        ("Microsoft Windows 10 Education", 17763, 9, 9, "KB2693643", "KB4487044"),
    "10_1809_x64_education_en-us_systeminfo.txt":
        ("Microsoft Windows 10 Education", 17763, 6, 6, "KB4465477", "KB4483235"),
    "10_1809_x64_education_es_systeminfo.txt":
        ("Microsoft Windows 10 Education", 17763, 9, 9, "KB4486553", "KB4482887"),
    "10_1809_x64_enterprise_zh-cn_systeminfo.txt":
        ("Microsoft Windows 10 企业版 LTSC", 17763, 1, 1, "KB4464455", "KB4464455"),
    "10_1809_x64_pro_en-us_20190307_systeminfo.txt":
        ("Microsoft Windows 10 Pro", 17763, 5, 5, "KB4486553", "KB4482887"),
    "10_21H1_x64_enterprise_systeminfo.txt":
        ("Microsoft Windows 10 Enterprise", 19043, 4, 4, "KB4601554", "KB5003742"),
    "10_21H2_x64_pro_systeminfo.txt":
        ("Microsoft Windows 10 Pro", 19044, 7, 7, "KB5012117", "KB5005699"),
    "10_22H2_x64_enterprise_en-us_systeminfo.txt":
        ("Microsoft Windows 10 Enterprise", 19045, 1, 1, "KB5022502", "KB5022502"),
    "10_rtm_x64_pro_en-us_systeminfo.txt":
        ("Microsoft Windows 10 Pro", 10240, 2, 2, "KB3074665", "KB4021701"),
    "11_21H2_x64_enterprise_systeminfo.txt":
        ("Microsoft Windows 11 Enterprise", 22000, 4, 4, "KB5004342", "KB5005703"),
    "11_22H2_x64_home-single-language_systeminfo.txt":
        ("Microsoft Windows 11 Home Single Language", 22621, 1, 1, "KB5008215", "KB5008215"),
    "11_23H2_x64_enterprise_systeminfo.txt":
        ("Microsoft Windows 11 Enterprise", 22631, 4, 4, "KB5029921", "KB5031592"),
    "11_24H2_x64_enterprise_systeminfo.txt":
        ("Microsoft Windows 11 Enterprise LTSC", 26100, 3, 3, "KB5037589", "KB5039449"),
    "7_sp1_x64_enterprise_en-us_A_systeminfo.txt":
        ("Microsoft Windows 7 Enterprise", 7601, 219, 219, "KB2849697", "KB982018"),
    "7_sp1_x64_enterprise_en-us_B_systeminfo.txt":
        ("Microsoft Windows 7 Enterprise", 7601, 271, 245, "KB2849697", "KB3127220"),
    "7_sp1_x64_enterprise_fr_systeminfo_cmd.txt":  # CP850 0xFF: no-break space
        ("Microsoft Windows\u00a07 Entreprise N", 7601, 73, 73, "KB2491683", "KB4493472"),
    "7_sp1_x64_enterprise_fr_systeminfo_powershell.txt":
        ("Microsoft Windows\u00a07 Entreprise N", 7601, 93, 93, "KB2491683", "KB4493472"),
    "7_sp1_x64_ultimaten_de_systeminfo.txt":
        ("Microsoft Windows 7 Ultimate N", 7601, 263, 245, "KB2849697", "KB3162835"),
    "7_sp1_x86_enterprise_en-us_systeminfo.txt":
        ("Microsoft Windows 7 Enterprise", 7601, 2, 2, "KB2534111", "KB976902"),
    "8.1_u1_x64_enterprise_en-us_systeminfo.txt":
        ("Microsoft Windows 8.1 Enterprise", 9600, 6, 6, "KB2919355", "KB2949621"),
    "srv_2003_rtm_x86_standard_en-us_systeminfo.txt":
        ("Microsoft(R) Windows(R) Server 2003, Standard Edition", 3790, 3, 3, "File 1", "KB893803"),
    "srv_2003_sp1_x64_standard_en-us_systeminfo.txt":
        ("Microsoft(R) Windows(R) Server 2003 Standard x64 Edition", 3790, 1, 1, "Q147222", "Q147222"),
    "srv_2003r2_sp2_rtm_x64_standard_en-us_systeminfo.txt":
        ("Microsoft(R) Windows(R) Server 2003 Standard x64 Edition", 3790, 1, 1, "Q147222", "Q147222"),
    "srv_2003r2_sp2_x86_standard_en-us_systeminfo.txt":
        ("Microsoft(R) Windows(R) Server 2003, Standard Edition", 3790, 352, 239, "File 1", "KB2862152"),
    "srv_2008_rtm_x64_standard_en-us_systeminfo.txt":
        ("Microsoftr Windows Serverr 2008 Standard", 6001, 1, 1, "KB956250", "KB956250"),
    "srv_2008_rtm_x86_standard_en-us_systeminfo.txt":
        ("Microsoftr Windows Serverr 2008 Standard", 6001, 1, 1, "KB956250", "KB956250"),
    "srv_2012r2_u1_systeminfo.txt":
        ("Microsoft Windows Server 2012 R2 Standard", 9600, 154, 154, "KB2894852", "KB4489881"),
    "srv_2012r2_u1_systeminfo2.txt":
        ("Microsoft Windows Server 2012 R2 Standard", 9600, 156, 156, "KB2894852", "KB4489881"),
    "srv_2019_rtm_datacenter_en-us_systeminfo.txt":
        ("Microsoft Windows Server 2019 Datacenter", 17763, 5, 5, "KB4462930", "KB4480116"),
    "srv_2022_systeminfo.txt":
        ("Microsoft Windows Server 2022 Standard", 20348, 3, 3, "KB5004330", "KB5005552"),
    "vista_x64_sp0_systeminfo.txt":
        ("Microsoftr Windows VistaT Enterprise", 6000, 105, 105, "{7A068575-C5DB-43D9-BE20-3895D0C69B17}",
         "KB981349"),
    "vista_x64_sp1_systeminfo.txt":
        ("Microsoftr Windows VistaT Enterprise", 6001, 174, 174, "{7A068575-C5DB-43D9-BE20-3895D0C69B17}",
         "940157"),
    "xp_rtm_x86_professional_en-us_systeminfo.txt":
        ("Microsoft Windows XP Professional", 2600, 3, 3, "File 1", "KB893803"),
    "xp_sp1_x86_systeminfo.txt":
        ("Microsoft Windows XP Professional", 2600, 3, 3, "File 1", "KB893803"),
    "xp_sp2_x64_systeminfo.txt":
        ("Microsoft(R) Windows(R) XP Professional x64 Edition", 3790, 300, 228, "File 1", "KB2876331"),
    "xp_sp2_x86_systeminfo.txt":
        ("Microsoft Windows XP Professional", 2600, 1, 1, "Q147222", "Q147222"),
    "xp_sp3_x86_professional_en-us_systeminfo.txt":
        ("Microsoft Windows XP Professional", 2600, 262, 220, "File 1", "KB946648"),
}  # fmt: skip

# Files whose encoding is not plain ASCII/UTF-8 (from `file`, the BOM and the bytes themselves:
# 0x8D `ì` in `Sì`, 0xA2 `ó` in `Versión`, 0x8A `è` in `système`, 0xFF no-break space in `32 503 MB`).
REAL_ENCODINGS = {
    "10_1809_x64_enterprise_zh-cn_systeminfo.txt": "gb18030",
    "10_1803_x64_proforworkstations_en-us_A_20190305_systeminfo.txt": "utf-16-le+bom",
    "7_sp1_x64_enterprise_fr_systeminfo_powershell.txt": "utf-16-le+bom",
    "7_sp1_x64_ultimaten_de_systeminfo.txt": "utf-8",
    "10_1803_x64_pro_it_systeminfo.txt": "cp850(lossy)",
    "10_1809_x64_education_es_systeminfo.txt": "cp850(lossy)",
    "10_1809_x64_pro_en-us_20190307_systeminfo.txt": "cp850(lossy)",
    "7_sp1_x64_enterprise_fr_systeminfo_cmd.txt": "cp850(lossy)",
}

NOT_SYSTEMINFO = {
    "10_1803_x64_proforworkstations_en-us_A_20190305_qfe.txt",
    "10_1803_x64_proforworkstations_en-us_A_20190305_updates.txt",
    "10_1803_x64_proforworkstations_en-us_B_20190306_qfe.txt",
    "10_1803_x64_proforworkstations_en-us_B_20190306_updates.txt",
    "10_1809_x64_education_en-us_20190306_qfe.txt",
    "10_1809_x64_education_en-us_20190306_updates.txt",
    "10_1809_x64_pro_en-us_20190307_qfe.txt",
    "7_sp1_x64_enterprise_en-us_B_qfe.txt",
    "srv_2012r2_u1_qfe.txt",
    "srv_2012r2_u1_updates_optional.txt",
    "vista_x64_sp1_qfe.txt",
    "xp_rtm_x86_professional_en-us_qfe.txt",
    "xp_sp1_x86_qfe.txt",
    "xp_sp2_x64_qfe.txt",
    "xp_sp2_x86_qfe.txt",
    "xp_sp3_x86_professional_en-us_qfe.txt",
}


@pytest.fixture
def real_dir(shared_data: Path) -> Path:
    folder = shared_data / "systeminfo"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    return folder


def _parse_real(path: Path) -> tuple[str, MemorySink]:
    dec = decode(path.read_bytes())
    sink = MemorySink()
    systeminfo.parse(dec.text, sink)
    return dec.encoding.label, sink


def test_real_table_covers_every_systeminfo_file(real_dir: Path) -> None:
    assert {p.name for p in real_dir.glob("*systeminfo*")} == set(REAL)


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_systeminfo(real_dir: Path, name: str) -> None:
    os_name, build, declared, listed, first, last = REAL[name]
    label, sink = _parse_real(real_dir / name)
    hosts = sink.of("host_info")
    assert len(hosts) == 1
    host = hosts[0]
    got_ids = [row["hotfix"] for row in sink.of("hotfixes")]
    assert (host["os_name"], host["os_build"]) == (os_name, build)
    assert (host["hotfixes_declared"], host["hotfixes_listed"], len(got_ids)) == (declared, listed, listed)
    assert (got_ids[:1], got_ids[-1:]) == ([first] if first else [], [last] if last else [])
    assert all(row["source"] == "systeminfo" for row in sink.of("hotfixes"))
    assert label == REAL_ENCODINGS.get(name, "utf-8")

    truncated = warnings(sink)
    if declared > listed:
        assert truncated == [{"code": "hotfix_list_truncated", "declared": declared, "listed": listed}]
        assert sink.skip_counts[CUT] == 1
    else:
        assert truncated == []
        assert CUT not in sink.skip_counts


def test_real_truncated_files_are_exactly_these() -> None:
    # the table itself: these five hosts had more hotfixes than systeminfo could print
    assert {name for name, row in REAL.items() if row[2] > row[3]} == {
        "7_sp1_x64_enterprise_en-us_B_systeminfo.txt",
        "7_sp1_x64_ultimaten_de_systeminfo.txt",
        "srv_2003r2_sp2_x86_standard_en-us_systeminfo.txt",
        "xp_sp2_x64_systeminfo.txt",
        "xp_sp3_x86_professional_en-us_systeminfo.txt",
    }


def test_real_zh_cn_gbk_details(real_dir: Path) -> None:
    label, sink = _parse_real(real_dir / "10_1809_x64_enterprise_zh-cn_systeminfo.txt")
    assert label == "gb18030"
    host = sink.of("host_info")[0]
    assert host["hostname"] == "DESKTOP-0CQH3P2"
    assert host["os_version"] == "10.0.17763 暂缺 Build 17763"
    assert host["service_pack"] is None
    assert host["language"] == "zh-CN"
    assert host["install_date"] == datetime(2019, 1, 24, 9, 46, 29)
    assert host["utc_offset_min"] == 60
    assert host["ips"] == ["192.168.5.128", "fe80::80b0:e291:97be:f0a6"]
    assert sink.skip_counts == {}


def test_real_day_first_dates_settled_by_the_bios_date(real_dir: Path) -> None:
    # en-US labels, day-first user format: `05/03/2019` is 5 March (the file is dated 20190305),
    # which only the BIOS date `21/08/2018` in the same report proves.
    _, sink = _parse_real(real_dir / "10_1803_x64_proforworkstations_en-us_A_20190305_systeminfo.txt")
    host = sink.of("host_info")[0]
    assert host["boot_time"] == datetime(2019, 3, 5, 21, 1, 50)
    assert host["install_date"] == datetime(2018, 5, 3, 9, 31, 28)


def test_real_files_are_detected_as_systeminfo(real_dir: Path) -> None:
    for name in REAL:
        data = (real_dir / name).read_bytes()
        det = detect_head(data[:SNIFF_BYTES], complete=len(data) <= SNIFF_BYTES)
        assert det.format is not None and det.format.name == "systeminfo", name


def test_real_qfe_and_update_listings_are_not_systeminfo(real_dir: Path) -> None:
    found = {p.name for p in real_dir.iterdir() if p.name.endswith(("_qfe.txt", "_updates.txt"))}
    found |= {p.name for p in real_dir.glob("*_updates_*.txt")}
    assert found == NOT_SYSTEMINFO
    for name in sorted(found):
        head = (real_dir / name).read_bytes()[:SNIFF_BYTES]
        det = detect_head(head, complete=True)
        assert det.format is None or det.format.name != "systeminfo", name
