"""netstat parser: -ano/-aon/-anbo/-an/-nat, en and zh-CN, encodings, overflow, junk and truncation.

Fixtures are written by hand in the layout of formats.md section 1 (columns at 2/9/32/55/71,
zh headers that do not line up with the data, UDP rows without a state, `-b` continuation lines).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import assert_same_in_every_encoding, encodings
from wormhunt.sources import netstat
from wormhunt.sources.base import MemorySink
from wormhunt.sources.text import decode

EN_ANO = """
Active Connections

  Proto  Local Address          Foreign Address        State           PID
  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       912
  TCP    0.0.0.0:445            0.0.0.0:0              LISTENING       4
  TCP    10.1.4.27:139          0.0.0.0:0              LISTENING       4
  TCP    10.1.4.27:49823        10.1.4.88:445          SYN_SENT        3120
  TCP    10.1.4.27:50110        93.184.216.34:14444    ESTABLISHED     3120
  TCP    10.1.4.27:50001        10.1.4.5:139           TIME_WAIT       0
  TCP    [::]:445               [::]:0                 LISTENING       4
  TCP    [::1]:49670            [::1]:49671            ESTABLISHED     2204
  UDP    0.0.0.0:500            *:*                                    2980
  UDP    10.1.4.27:137          *:*                                    4
  UDP    [fe80::5d2c:9a1e:7b40:1c3f%12]:1900  *:*                                    3344
"""

# Same connections from a zh-CN host: Chinese title and header (header words do not sit
# over their columns), state words stay English.
ZH_ANO = """
活动连接

  协议  本地地址          外部地址        状态           PID
  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       912
  TCP    0.0.0.0:445            0.0.0.0:0              LISTENING       4
  TCP    10.1.4.27:139          0.0.0.0:0              LISTENING       4
  TCP    10.1.4.27:49823        10.1.4.88:445          SYN_SENT        3120
  TCP    10.1.4.27:50110        93.184.216.34:14444    ESTABLISHED     3120
  TCP    10.1.4.27:50001        10.1.4.5:139           TIME_WAIT       0
  TCP    [::]:445               [::]:0                 LISTENING       4
  TCP    [::1]:49670            [::1]:49671            ESTABLISHED     2204
  UDP    0.0.0.0:500            *:*                                    2980
  UDP    10.1.4.27:137          *:*                                    4
  UDP    [fe80::5d2c:9a1e:7b40:1c3f%12]:1900  *:*                                    3344
"""

# `netstat -aon` typed at a prompt; this zh copy has its own header spacing.
ZH_AON_PROMPT = """C:\\Users\\zhang>netstat -aon

活动连接

  协议  本地地址                外部地址              状态             PID
  TCP    127.0.0.1:8411         127.0.0.1:58296        TIME_WAIT       0
  TCP    10.1.4.30:50433        10.1.4.27:445          ESTABLISHED     4
"""

EN_ANO_PS_PROMPT = """PS C:\\Users\\admin> netstat -ano

Active Connections

  Proto  Local Address          Foreign Address        State           PID
  TCP    10.1.4.27:49823        10.1.4.88:445          SYN_SENT        3120
PS C:\\Users\\admin> tasklist /fi "PID eq 3120"
"""

EN_ANBO = """C:\\Users\\x>netstat -anbo
Active Connections

  Proto  Local Address          Foreign Address        State           PID
  TCP    0.0.0.0:22             0.0.0.0:0              LISTENING       2016
 [sshd.exe]
  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       912
  RpcSs
 [svchost.exe]
  TCP    0.0.0.0:445            0.0.0.0:0              LISTENING       4
 Can not obtain ownership information
  TCP    10.1.4.27:49823        10.1.4.88:445          SYN_SENT        3120
 [powershell.exe]
  UDP    [fe80::5d2c:9a1e:7b40:1c3f%12]:1900  *:*                                    3344
  SSDPSRV
 [svchost.exe]
  UDP    0.0.0.0:5353           *:*                                    2268
"""

# zh `-anbo` copied from a console window: every line right-padded to the window width.
ZH_ANBO = """活动连接

  协议  本地地址          外部地址        状态           PID
  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       1032
  RpcSs
 [svchost.exe]
  TCP    0.0.0.0:445            0.0.0.0:0              LISTENING       4
 无法获取所有权信息
  TCP    0.0.0.0:902            0.0.0.0:0              LISTENING       19200
 [vmware-authd.exe]
  UDP    [fe80::e908:14c9:dc52:d1d5%5]:2177  *:*                                    4836
  QWAVE
 [svchost.exe]"""
ZH_ANBO_PADDED = "\n".join(line.ljust(96) for line in ZH_ANBO.split("\n"))

ZH_AN_NO_PID = """活动连接

  协议  本地地址          外部地址        状态
  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING
  TCP    10.1.4.27:49823        10.1.4.88:445          SYN_SENT
  UDP    0.0.0.0:500            *:*
"""

# Server 2003 `netstat -nat`: Offload State where -o puts the PID, blank line after the header,
# UDP rows end after `*:*` plus trailing spaces.
NAT_2003 = "\n".join(
    [
        "",
        "Active Connections",
        "",
        "  Proto  Local Address          Foreign Address        State           Offload State",
        "",
        "  TCP    0.0.0.0:445            0.0.0.0:0              LISTENING       InHost      ",
        "  TCP    10.10.10.14:1037       10.10.14.16:445        SYN_SENT        InHost      ",
        "  TCP    10.10.10.14:80         10.10.14.16:51528      CLOSE_WAIT      InHost      ",
        "  UDP    0.0.0.0:445            *:*                    ",
        "",
    ]
)


def parse(text: str) -> MemorySink:
    sink = MemorySink()
    netstat.parse(text, sink)
    return sink


def without_line(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "line"} for r in rows]


def test_ano_english_fields() -> None:
    sink = parse(EN_ANO)
    rows = sink.of("sockets")
    assert len(rows) == 11
    assert sink.skipped == 0
    first = rows[0]
    assert first == {
        "line": 5,
        "proto": "TCP",
        "local_ip": "0.0.0.0",
        "local_port": 135,
        "remote_ip": "0.0.0.0",
        "remote_port": 0,
        "state": "LISTENING",
        "listening": True,
        "pid": 912,
        "image": None,
        "component": None,
    }
    syn = rows[3]
    assert (syn["local_ip"], syn["local_port"], syn["remote_ip"], syn["remote_port"]) == (
        "10.1.4.27",
        49823,
        "10.1.4.88",
        445,
    )
    assert syn["state"] == "SYN_SENT" and syn["pid"] == 3120 and syn["listening"] is False
    assert rows[4]["remote_port"] == 14444 and rows[4]["state"] == "ESTABLISHED"
    # Physical line numbers of the source are kept.
    assert [r["line"] for r in rows] == list(range(5, 16))


def test_time_wait_has_pid_zero() -> None:
    (tw,) = [r for r in parse(EN_ANO).of("sockets") if r["state"] == "TIME_WAIT"]
    assert tw["pid"] == 0 and tw["remote_ip"] == "10.1.4.5" and tw["remote_port"] == 139
    assert tw["listening"] is False


def test_ipv6_brackets_and_scope_id() -> None:
    rows = parse(EN_ANO).of("sockets")
    v6_listen = rows[6]
    assert v6_listen["local_ip"] == "::" and v6_listen["local_port"] == 445
    assert v6_listen["remote_ip"] == "::" and v6_listen["remote_port"] == 0 and v6_listen["listening"] is True
    loop = rows[7]
    assert (loop["local_ip"], loop["remote_ip"], loop["remote_port"]) == ("::1", "::1", 49671)
    scoped = rows[10]
    # The `%12` scope id stays with the address; the overflowing address does not shift the PID.
    assert scoped["local_ip"] == "fe80::5d2c:9a1e:7b40:1c3f%12" and scoped["local_port"] == 1900
    assert scoped["pid"] == 3344


def test_udp_rows_have_no_state_and_never_listen() -> None:
    udp = [r for r in parse(EN_ANO).of("sockets") if r["proto"] == "UDP"]
    assert [(r["local_port"], r["pid"]) for r in udp] == [(500, 2980), (137, 4), (1900, 3344)]
    for r in udp:
        assert r["state"] is None
        assert r["remote_ip"] == "*" and r["remote_port"] is None
        assert r["listening"] is False


def test_chinese_header_gives_the_same_rows() -> None:
    en, zh = parse(EN_ANO), parse(ZH_ANO)
    assert zh.skipped == 0
    assert zh.of("sockets") == en.of("sockets")  # same physical lines too


def test_aon_with_echoed_prompt_and_other_zh_header_spacing() -> None:
    sink = parse(ZH_AON_PROMPT)
    assert sink.skipped == 0
    rows = sink.of("sockets")
    assert [(r["local_ip"], r["local_port"], r["state"], r["pid"], r["line"]) for r in rows] == [
        ("127.0.0.1", 8411, "TIME_WAIT", 0, 6),
        ("10.1.4.30", 50433, "ESTABLISHED", 4, 7),
    ]


def test_powershell_prompts_before_and_after_the_table_are_not_rows_or_skips() -> None:
    sink = parse(EN_ANO_PS_PROMPT)
    assert sink.skipped == 0
    (row,) = sink.of("sockets")
    assert row["pid"] == 3120 and row["remote_port"] == 445 and row["line"] == 6


def test_anbo_component_image_and_no_owner() -> None:
    sink = parse(EN_ANBO)
    assert sink.skipped == 0
    rows = sink.of("sockets")
    got = [(r["local_port"], r["pid"], r["component"], r["image"]) for r in rows]
    assert got == [
        (22, 2016, None, "sshd.exe"),
        (135, 912, "RpcSs", "svchost.exe"),
        (445, 4, None, None),  # "Can not obtain ownership information"
        (49823, 3120, None, "powershell.exe"),
        (1900, 3344, "SSDPSRV", "svchost.exe"),
        (5353, 2268, None, None),  # last row without continuation lines
    ]
    # The row keeps its own physical line, not the line of its continuation.
    assert [r["line"] for r in rows] == [5, 7, 10, 12, 14, 17]


def test_anbo_zh_padded_with_no_owner_message() -> None:
    sink = parse(ZH_ANBO_PADDED)
    assert sink.skipped == 0
    got = [
        (r["proto"], r["local_ip"], r["local_port"], r["pid"], r["component"], r["image"]) for r in sink.of("sockets")
    ]
    assert got == [
        ("TCP", "0.0.0.0", 135, 1032, "RpcSs", "svchost.exe"),
        ("TCP", "0.0.0.0", 445, 4, None, None),  # 无法获取所有权信息
        ("TCP", "0.0.0.0", 902, 19200, None, "vmware-authd.exe"),
        ("UDP", "fe80::e908:14c9:dc52:d1d5%5", 2177, 4836, "QWAVE", "svchost.exe"),
    ]


def test_an_without_pid_column() -> None:
    sink = parse(ZH_AN_NO_PID)
    assert sink.skipped == 0
    got = [
        (r["proto"], r["local_port"], r["remote_port"], r["state"], r["listening"], r["pid"])
        for r in sink.of("sockets")
    ]
    assert got == [
        ("TCP", 135, 0, "LISTENING", True, None),
        ("TCP", 49823, 445, "SYN_SENT", False, None),
        ("UDP", 500, None, None, False, None),
    ]


def test_server_2003_offload_state_column_is_not_a_pid() -> None:
    sink = parse(NAT_2003)
    assert sink.skipped == 0
    rows = sink.of("sockets")
    got = [(r["proto"], r["local_ip"], r["local_port"], r["remote_port"], r["state"], r["pid"]) for r in rows]
    assert got == [
        ("TCP", "0.0.0.0", 445, 0, "LISTENING", None),
        ("TCP", "10.10.10.14", 1037, 445, "SYN_SENT", None),
        ("TCP", "10.10.10.14", 80, 51528, "CLOSE_WAIT", None),
        ("UDP", "0.0.0.0", 445, None, None, None),
    ]
    assert rows[0]["listening"] is True
    assert all("InHost" not in (r["state"] or "") for r in rows)


def test_long_addresses_push_columns_right() -> None:
    text = (
        "  Proto  Local Address          Foreign Address        State           PID\n"
        "  TCP    [2001:db8:85a3:1f00:1c2d:9e4f:7a10:3b2c]:50432  [2606:4700:4700::1111]:443  "
        "ESTABLISHED     5120\n"
        "  TCP    [fe80::1c2d:9e4f:7a10:3b2c%17]:49702  [fe80::aa:bbff:fecc:ddee%17]:445  "
        "SYN_SENT        3120\n"
        "  TCP    [::]:49664             [::]:0                 LISTENING       788\n"
    )
    sink = parse(text)
    assert sink.skipped == 0
    a, b, c = sink.of("sockets")
    assert a["local_ip"] == "2001:db8:85a3:1f00:1c2d:9e4f:7a10:3b2c" and a["local_port"] == 50432
    assert a["remote_ip"] == "2606:4700:4700::1111" and a["remote_port"] == 443
    assert a["state"] == "ESTABLISHED" and a["pid"] == 5120
    assert b["local_ip"] == "fe80::1c2d:9e4f:7a10:3b2c%17" and b["remote_ip"] == "fe80::aa:bbff:fecc:ddee%17"
    assert b["remote_port"] == 445 and b["pid"] == 3120 and b["state"] == "SYN_SENT"
    assert c["listening"] is True and c["pid"] == 788


def test_listening_is_decided_by_foreign_address_not_state_word() -> None:
    text = (
        "  Proto  Lokale Adresse         Remoteadresse          Status          PID\n"
        "  TCP    0.0.0.0:445            0.0.0.0:0              ABHÖREN         4\n"
        "  TCP    [::]:135               [::]:0                 侦听            912\n"
        "  TCP    0.0.0.0:5985           0.0.0.0:0              SOMETHINGNEW    4\n"
        "  TCP    10.1.4.27:445          10.1.4.90:0            SYN_RECEIVED    4\n"
        "  TCP    10.1.4.27:445          10.1.4.91:50000        HERGESTELLT     4\n"
    )
    sink = parse(text)
    assert sink.skipped == 0
    rows = sink.of("sockets")
    assert [r["listening"] for r in rows] == [True, True, True, False, False]
    # Known localized words map to English; unknown ones are kept verbatim.
    assert [r["state"] for r in rows] == [
        "LISTENING",
        "LISTENING",
        "SOMETHINGNEW",
        "SYN_RECEIVED",
        "ESTABLISHED",
    ]


@pytest.mark.parametrize("state", ["FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT", "LAST_ACK", "CLOSING", "DELETE_TCB"])
def test_every_tcp_state_word_is_accepted(state: str) -> None:
    line = f"  TCP    10.1.4.27:50001        10.1.4.5:445           {state:<15} 3120\n"
    sink = parse(line)
    assert sink.skip_counts == {}
    (row,) = sink.of("sockets")
    assert row["state"] == state and row["pid"] == 3120 and row["remote_port"] == 445


def test_right_padded_lines_parse_like_unpadded() -> None:
    padded = "\n".join(line.ljust(120) for line in EN_ANO.split("\n"))
    sink = parse(padded)
    assert sink.skipped == 0
    assert sink.of("sockets") == parse(EN_ANO).of("sockets")


def test_blog_copy_with_every_line_doubled() -> None:
    # Blog copies turn every line into `line\n\n`: blank lines between a row and its
    # `-b` continuation lines must not detach them.
    sink = parse(EN_ANBO.replace("\n", "\n\n"))
    assert sink.skipped == 0
    expected = parse(EN_ANBO).of("sockets")
    assert without_line(sink.of("sockets")) == without_line(expected)
    assert [r["line"] for r in sink.of("sockets")] == [2 * r["line"] - 1 for r in expected]


def test_truncated_last_line_is_skipped_not_raised() -> None:
    sink = parse(EN_ANO + "  TCP    10.1.4.27:49830        10.1.4.9")
    assert len(sink.of("sockets")) == 11
    assert sink.skip_counts == {"truncated row": 1}
    assert sink.skips[0].line == 16 and sink.skips[0].text.endswith("10.1.4.9")


def test_line_cut_in_the_state_column_is_truncated_when_the_header_has_pid() -> None:
    # Looks like a `-an` row, but this listing has a PID column: the line was cut off.
    sink = parse(EN_ANO + "  TCP    10.1.4.27:49830        10.1.4.95:445          SYN_SE")
    assert len(sink.of("sockets")) == 11
    assert sink.skip_counts == {"truncated row": 1}
    sink = parse(EN_ANO + "  UDP    0.0.0.0:5355           *:*")
    assert len(sink.of("sockets")) == 11
    assert sink.skip_counts == {"truncated row": 1}


def test_junk_lines_after_the_header_are_counted() -> None:
    text = EN_ANO.rstrip("\n").split("\n")
    text[6:6] = ["^C", "  ...", "[...]"]  # between the 2nd and 3rd row
    sink = parse("\n".join(text) + "\nThe requested operation requires elevation.\n")
    rows = sink.of("sockets")
    assert len(rows) == 11
    assert sink.skip_counts == {"not a netstat row": 4}
    assert [s.line for s in sink.skips] == [7, 8, 9, 19]
    # The indented junk line was not taken for a `-b` component of the row above it.
    assert all(r["component"] is None and r["image"] is None for r in rows)


def test_lines_before_the_header_are_ignored_but_junk_after_is_not() -> None:
    sink = parse("some banner text\n\n" + EN_ANO)
    assert sink.skipped == 0 and len(sink.of("sockets")) == 11


def test_second_component_line_without_image_is_junk() -> None:
    text = (
        "  Proto  Local Address          Foreign Address        State           PID\n"
        "  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       912\n"
        "  RpcSs\n"
        "  EventLog\n"
        " [svchost.exe]\n"
    )
    sink = parse(text)
    (row,) = sink.of("sockets")
    assert row["component"] == "RpcSs" and row["image"] == "svchost.exe"
    assert sink.skip_counts == {"not a netstat row": 1} and sink.skips[0].line == 4


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("  TCP    10.1.4.27:445          10.1.4.5:445           ESTABLISHED     12ab", "bad PID"),
        ("  TCP    10.1.4.27              10.1.4.5:445           ESTABLISHED     4", "bad address"),
        ("  TCP    10.1.4.27:99999        10.1.4.5:445           ESTABLISHED     4", "bad address"),
        ("  TCP    10.1.4.27:445          10.1.4.5:445           4               4", "bad state"),
        ("  TCP    10.1.4.27:445          10.1.4.5:445           ESTABLISHED     4    9", "too many fields"),
        ("  UDP    0.0.0.0:500            *:*                    4     5", "too many fields"),
    ],
)
def test_bad_rows_are_skipped_with_a_reason(line: str, reason: str) -> None:
    sink = parse("  Proto  Local Address          Foreign Address        State           PID\n" + line + "\n")
    assert sink.of("sockets") == []
    assert sink.skip_counts == {reason: 1}
    assert sink.skips[0].line == 2 and sink.skips[0].text == line


def test_rows_without_header_from_findstr() -> None:
    text = (
        "  TCP    10.1.4.27:49823        10.1.4.88:445          SYN_SENT        3120\n"
        "  TCP    10.1.4.27:49824        10.1.4.89:445          SYN_SENT        3120\n"
        "  TCP    0.0.0.0:445            0.0.0.0:0              LISTENING       4\n"
    )
    sink = parse(text)
    assert sink.skipped == 0
    assert [(r["remote_ip"], r["pid"], r["listening"]) for r in sink.of("sockets")] == [
        ("10.1.4.88", 3120, False),
        ("10.1.4.89", 3120, False),
        ("0.0.0.0", 4, True),
    ]
    assert netstat.sniff(text) == pytest.approx(0.7)


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("192.168.1.5:445", ("192.168.1.5", 445)),
        ("[fe80::1%11]:1900", ("fe80::1%11", 1900)),
        ("[::]:0", ("::", 0)),
        ("*:*", ("*", None)),
        ("0.0.0.0:65536", (None, None)),
        ("nonsense", (None, None)),
        (":445", (None, None)),
    ],
)
def test_split_endpoint(endpoint: str, expected: tuple[str | None, int | None]) -> None:
    assert netstat.split_endpoint(endpoint) == expected


def test_sniff_scores() -> None:
    assert netstat.sniff(EN_ANO) == pytest.approx(0.95)
    assert netstat.sniff(ZH_AN_NO_PID) == pytest.approx(0.95)
    header_only = "  Proto  Local Address          Foreign Address        State\n"
    assert netstat.sniff(header_only) == pytest.approx(0.3)
    assert netstat.sniff("Image Name                     PID Session Name\n") == 0.0


ALL_FIXTURES = {
    "en-ano": EN_ANO,
    "zh-ano": ZH_ANO,
    "zh-aon-prompt": ZH_AON_PROMPT,
    "en-anbo": EN_ANBO,
    "zh-anbo-padded": ZH_ANBO_PADDED,
    "zh-an": ZH_AN_NO_PID,
    "2003-nat": NAT_2003,
}


@pytest.mark.parametrize("name", sorted(ALL_FIXTURES))
def test_every_encoding_is_detected_and_gives_the_same_rows(name: str) -> None:
    assert_same_in_every_encoding(netstat.parse, ALL_FIXTURES[name], "sockets", "netstat")


def test_gbk_bytes_decode_as_chinese() -> None:
    decoded = decode(encodings(ZH_ANBO_PADDED)["gbk"])
    assert decoded.encoding.name == "gb18030"
    assert "无法获取所有权信息" in decoded.text
