"""hostcfg parsers: `netsh interface portproxy show all` and `net user`, en and zh-CN, every encoding.

No captures are in the shared samples; the fixtures follow the commands' well-known layouts:
netsh prints a `Listen on ipv4: Connect to ipv4:` title (zh `侦听 ipv4: 连接到 ipv4:`), an
`Address Port Address Port` header (zh `地址 端口 地址 端口`) and a dashed ruler; `net user`
prints `User accounts for \\\\HOST` (zh `\\\\HOST 的用户帐户`), a ruler, names padded to 25
characters in three columns and a completion line.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import assert_same_in_every_encoding
from wormhunt.sources import FORMATS, hostcfg
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_head

PP_EN = """C:\\Windows\\system32>netsh interface portproxy show all

Listen on ipv4:             Connect to ipv4:

Address         Port        Address         Port
--------------- ----------  --------------- ----------
0.0.0.0         8080        10.0.0.5        80
10.1.1.5        3389        192.168.7.20    3389

Listen on ipv4:             Connect to ipv6:

Address         Port        Address         Port
--------------- ----------  --------------- ----------
0.0.0.0         445         fe80::1         445

"""

PP_ZH = """
侦听 ipv4:                 连接到 ipv4:

地址            端口        地址            端口
--------------- ----------  --------------- ----------
0.0.0.0         8080        10.0.0.5        80
*               65533       pool.minexmr.com 4444

"""

NU_EN = """C:\\Users\\admin>net user

User accounts for \\\\WS-FIN-07

-------------------------------------------------------------------------------
Administrator            DefaultAccount           Guest
WDAGUtilityAccount       Wang Fang                svc$backup
admin1
The command completed successfully.

"""

NU_ZH = """
\\\\WIN-KOHRC1DGOL9 的用户帐户

-------------------------------------------------------------------------------
Administrator            DefaultAccount           Guest
李伟                     WDAGUtilityAccount
命令成功完成。

"""


def run(parse, text: str) -> MemorySink:
    sink = MemorySink()
    parse(text, sink)
    return sink


def rows(sink: MemorySink) -> list[tuple]:
    return [(r["line"], r["kind"], r["name"], r["value"], r["source"]) for r in sink.of("host_config")]


def test_portproxy_en() -> None:
    sink = run(hostcfg.parse_portproxy, PP_EN)
    assert rows(sink) == [
        (7, "portproxy", "0.0.0.0:8080", "10.0.0.5:80", "netsh"),
        (8, "portproxy", "10.1.1.5:3389", "192.168.7.20:3389", "netsh"),
        (14, "portproxy", "0.0.0.0:445", "[fe80::1]:445", "netsh"),
    ]
    assert sink.skipped == 0


def test_portproxy_zh() -> None:
    sink = run(hostcfg.parse_portproxy, PP_ZH)
    assert rows(sink) == [
        (6, "portproxy", "0.0.0.0:8080", "10.0.0.5:80", "netsh"),
        (7, "portproxy", "*:65533", "pool.minexmr.com:4444", "netsh"),
    ]


def test_portproxy_malformed_counted() -> None:
    lines = PP_EN.split("\n")
    lines[6] = "0.0.0.0         8080        10.0"  # line 7 cut short
    lines.insert(7, "10.1.1.5        99999       1.2.3.4         80")  # line 8: port out of range
    sink = run(hostcfg.parse_portproxy, "\n".join(lines))
    assert [s.line for s in sink.skips] == [7, 8]
    assert [r["line"] for r in sink.of("host_config")] == [9, 15]
    assert run(hostcfg.parse_portproxy, "0.0.0.0 80 1.1.1.1 80\n").skipped == 1  # no table header


def test_net_user_en_zh() -> None:
    assert rows(run(hostcfg.parse_netuser, NU_EN)) == [
        (6, "user", "Administrator", None, "net user"),
        (6, "user", "DefaultAccount", None, "net user"),
        (6, "user", "Guest", None, "net user"),
        (7, "user", "WDAGUtilityAccount", None, "net user"),
        (7, "user", "Wang Fang", None, "net user"),
        (7, "user", "svc$backup", None, "net user"),
        (8, "user", "admin1", None, "net user"),
    ]
    assert [(r["line"], r["name"]) for r in run(hostcfg.parse_netuser, NU_ZH).of("host_config")] == [
        (5, "Administrator"),
        (5, "DefaultAccount"),
        (5, "Guest"),
        (6, "李伟"),
        (6, "WDAGUtilityAccount"),
    ]


def test_net_user_lines_outside_listing_counted() -> None:
    sink = run(hostcfg.parse_netuser, "junk first\n" + NU_EN + "trailing junk\n")
    assert [s.line for s in sink.skips] == [1, 12]
    assert len(sink.of("host_config")) == 7


def test_every_encoding() -> None:
    for parse, text, fmt in (
        (hostcfg.parse_portproxy, PP_EN, "netsh-portproxy"),
        (hostcfg.parse_portproxy, PP_ZH, "netsh-portproxy"),
        (hostcfg.parse_netuser, NU_EN, "net-user"),
        (hostcfg.parse_netuser, NU_ZH, "net-user"),
    ):
        assert_same_in_every_encoding(parse, text, "host_config", fmt)


def test_registered_and_not_claiming_others() -> None:
    from tests.test_properties import DOCS as OTHER_DOCS

    assert FORMATS["netsh-portproxy"].host_evidence and FORMATS["net-user"].host_evidence
    for name, doc in OTHER_DOCS.items():
        assert detect_head(doc.encode(), complete=True).format.name not in ("netsh-portproxy", "net-user"), name


FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(text=st.text(max_size=600), parse=st.sampled_from([hostcfg.parse_portproxy, hostcfg.parse_netuser]))
def test_random_text_never_raises(text: str, parse) -> None:
    assert run(parse, text).skipped <= text.count("\n") + 1


@FAST
@given(data=st.data(), case=st.sampled_from([("pp", PP_EN), ("pp", PP_ZH), ("nu", NU_EN), ("nu", NU_ZH)]))
def test_mutated_line_keeps_other_rows(data: st.DataObject, case: tuple[str, str]) -> None:
    parse = hostcfg.parse_portproxy if case[0] == "pp" else hostcfg.parse_netuser
    lines = case[1].split("\n")
    base = rows(run(parse, case[1]))
    target = data.draw(st.sampled_from(sorted({r[0] for r in base})))
    junk = data.draw(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20))
    cut = data.draw(st.integers(0, len(lines[target - 1])))
    lines[target - 1] = (lines[target - 1][:cut] + junk).replace("\n", " ").replace("\r", " ")
    after = rows(run(parse, "\n".join(lines)))
    assert [r for r in after if r[0] != target] == [r for r in base if r[0] != target]


def test_portproxy_without_forwards() -> None:
    # netsh prints nothing when there is no forward: an empty redirect cannot be recognised (ingest calls it
    # empty); a console copy keeps the echoed command, which is recognised as a portproxy listing of no rows.
    for prompt in ("C:\\Windows\\system32>netsh interface portproxy show all", "C:\\>netsh int portproxy show v4tov4"):
        doc = prompt + " " * 40 + "\r\n\r\n"
        for enc in ("utf-8", "gbk", "utf-16-le"):
            det = detect_head(doc.encode(enc), complete=True)
            assert det.format is not None and det.format.name == "netsh-portproxy", (prompt, enc)
        sink = MemorySink()
        hostcfg.parse_portproxy(doc, sink)
        assert sink.of("host_config") == [] and sink.skips == []
    det = detect_head(b"", complete=True)
    assert det.format is None and det.reason == "empty"
    # Another command's echo alone is not a portproxy listing.
    assert detect_head(b"C:\\>netsh advfirewall show allprofiles\r\n", complete=True).format is None or (
        detect_head(b"C:\\>netsh advfirewall show allprofiles\r\n", complete=True).format.name != "netsh-portproxy"
    )
