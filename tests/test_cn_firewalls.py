"""Chinese-vendor firewall logs: Huawei USG, Hillstone StoneOS, Sangfor AF (parsers, sniffers, simulator writers)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ROOT, assert_same_in_every_encoding
from tests.netlog_helpers import fast, mutate_line, non_blank, parse_with, simulate_and_parse
from wormhunt.analyze.network import signature_spec
from wormhunt.sources import hillstone, huawei, sangfor
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_file, detect_head
from wormhunt.sources.text import decode, sniff_encoding

SAMPLES = ROOT.parent / "shared" / "reference" / "format-samples"
PARSERS = {"huawei": huawei.parse_text, "hillstone": hillstone.parse_text, "sangfor": sangfor.parse_text}
SNIFFERS = {"huawei": huawei.sniff, "hillstone": hillstone.sniff, "sangfor": sangfor.sniff}

# Hand-written lines in the documented layouts (formats.md 9.4-9.6), with values of our own.
HUAWEI = "\n".join(
    [
        # Relay header, then the device's own time and name; epochs in the payload win.
        "Nov 18 08:40:00 10.1.1.254 2018-11-18 08:39:59 USG-CORE %%01SECLOG/6/SESSION_TEARDOWN(l):IPVer=4,"
        "Protocol=tcp,SourceIP=172.16.101.13,DestinationIP=192.168.16.78,SourcePort=51234,DestinationPort=445,"
        "BeginTime=1542501498,EndTime=1542501528,SendPkts=3,SendBytes=156,RcvPkts=0,RcvBytes=0,SourceVpnID=0,"
        "DestinationVpnID=0,SourceZone=trust,DestinationZone=dmz,PolicyName=any,CloseReason=aged-out.",
        "<190>Nov 18 2018 08:38:20+08:00 USG-CORE %%01SECLOG/6/SESSION_TEARDOWN(l):IPVer=4,Protocol=tcp,"
        "SourceIP=172.16.101.13,DestinationIP=192.168.16.79,SourcePort=51240,DestinationPort=445,BeginTime=1542501500,"
        "EndTime=1542501501,SendPkts=2,SendBytes=120,RcvPkts=1,RcvBytes=60,CloseReason=tcp-rst.",
        "<190>Nov 18 2018 08:38:21+08:00 USG-CORE %%01POLICY/6/POLICYDENY(l):vsys=public, protocol=6, "
        "source-ip=172.16.101.13, source-port=51250, destination-ip=10.9.9.9, destination-port=445, "
        "time=2018/11/18 08:38:21, source-zone=trust, destination-zone=untrust, rule-name=default.",
        "<190>Jan 19 2023 08:53:29 USG6630E-01 %%01POLICY/6/POLICYPERMIT(l):vsys=public, protocol=9, "
        "source-ip=10.0.0.1, source-port=0, destination-ip=10.0.0.2, destination-port=0, rule-name=zone1-zone2.",
        "<188>Nov 18 2018 08:38:25+08:00 USG-CORE %%01IPS/4/DETECT(l)[7]:CID=0x814f041e;An intrusion was detected. "
        '(SyslogId=9, Vsys="public", Policy="p, with comma", SrcIp=172.16.101.13, DstIp=192.168.16.80, '
        'SrcPort=51260, DstPort=445, Protocol=TCP, SignName="Microsoft Windows SMB Remote Code Execution '
        'Vulnerability(MS17-010)", SignId=1000595, Severity=critical, Action=Block)',
        "<188>Jun  6 2023 13:53:05 USG6630E-01 IPSTRAP/4/THREATTRAP:OID 1.3.6.1.4.1.2011.6.122.43.1.2.8 An intrusion "
        "was detected. (SrcIp=10.2.2.2, DstIp=10.3.3.3, SrcPort=4444, DstPort=445, Protocol=TCP, "
        'SignName="DoublePulsar Backdoor Communication", SignId=1000612, Severity=high, Action=Alert, '
        "DetectTime=2023/06/06 14:53:06)",
    ]
)
HILLSTONE = "\n".join(
    [
        "<190>Nov 18 08:38:48 2812008195003847(root) 44243624 Traffic@FLOW: SESSION: 172.16.101.13:51234->"
        "192.168.16.78:445(TCP), application SMB, interface ethernet0/1, vr trust-vr, policy 1, user -@-, host -, "
        "send packets 3,send bytes 156,receive packets 0,receive bytes 0,start time 2018-11-18 08:38:18,"
        "close time 2018-11-18 08:38:48,session end,Ageout",
        # Newer firmware: missing commas and periods before the times.
        "<190>Nov 18 08:38:21 2812008195003847(root) 44243630 Traffic@FLOW: SESSION: 172.16.101.13:51240->"
        "192.168.16.79:445(TCP), application SMB, interface ethernet0/1, vr trust-vr, policy 1, user -@- host - "
        "mac 0000.0000.0000, send packets 4, send bytes 1200, receive packets 3, receive bytes 900, "
        "start time 2018-11-18 08:38:20. close time 2018-11-18 08:38:21. session end. TCP RST",
        "Nov 18 08:38:22 2812008195003847(root) 4424362f Traffic@FLOW: SESSION: 172.16.101.13:51250->10.9.9.9:445(TCP),"
        " interface ethernet0/1, vr trust-vr, policy 16, user -@-, host -, mac 0000.0000.0000, policy deny",
        "<190>Nov 18 08:38:23 2812008195003847(root) 46083624 Traffic@FLOW: NAT: 180.96.16.254:19419->"
        "58.218.194.50:80(TCP), dnat to 172.17.196.129:80, vr trust-vr, user -@UNKNOWN, host -, rule 30",
        "<190>Nov 18 08:38:24 2812008195003847(root) 44243624 Traffic@FLOW: SESSION: 10.1.1.5:53000->"
        "10.1.1.53:53(UDP), application DNS, interface ethernet0/1, vr trust-vr, policy 2, user -@-, host -, "
        "send packets 1,send bytes 70,receive packets 1,receive bytes 130,start time 2018-11-18 08:38:24,"
        "close time 2018-11-18 08:38:54,session end,Ageout",
    ]
)
SANGFOR = "\n".join(
    [
        "<134>Nov 18 08:38:18 AF-CORE fwlog: 日志类型:服务控制或应用控制, 策略名称:内网互访, 用户:(null), "
        "源IP:172.16.101.13, 源端口:51234, 目的IP:192.168.16.78, 目的端口:445, 协议:tcp, 应用类型:文件传输, "
        "应用名称:SMB, 系统动作:拒绝",
        "<23>Nov 18 08:38:25 AF-CORE fwlog: 日志类型:IPS防护日志, 源IP:172.16.101.13, 源端口:51260, "
        "目的IP:192.168.16.80, 目的端口:445, 协议:tcp, 攻击类型:系统漏洞攻击, "
        "漏洞名称:Microsoft Windows SMB远程代码执行漏洞(MS17-010)永恒之蓝, 严重等级:高, 动作:允许",
        # WAF-style spelling: 严重级别 and 系统动作; a value with commas; no 漏洞名称 (attack type is the name).
        "<23>Nov 18 08:38:30 AF-CORE fwlog: 日志类型:WAF应用防护日志, 源IP:172.16.101.13, 源端口:51270, "
        "目的IP:192.168.16.81, 目的端口:80, 攻击类型:信息泄漏攻击, 严重级别:中, 系统动作:拒绝, URL:http://x/a,b",
        "<134>Nov 18 08:39:00 AF-CORE fwlog: 日志类型:服务控制或应用控制, 用户:(null), 源IP:10.1.1.5, "
        "源端口:50000, 目的IP:10.1.1.6, 目的端口:3389, 应用类型:远程登录, 应用名称:RDP, 上行流量(KB):3, "
        "下行流量(KB):5, 系统动作:允许",
    ]
)


def run(name: str, text: str, year: int | None = 2018) -> MemorySink:
    return parse_with(PARSERS[name], text, **({"default_year": year} if year else {}))


def sample(name: str) -> str:
    path = SAMPLES / "cn_firewalls" / name
    if not path.is_file():
        pytest.skip(f"reference samples not present at {path}")
    return path.read_text(encoding="utf-8")


# --- Huawei ---------------------------------------------------------------------------------------


def test_huawei_real_samples() -> None:
    sink = run("huawei", sample("huawei_usg_samples.log"))
    assert sink.skipped == 0
    (flow,) = sink.of("flows")
    assert flow["host"] == "FW-OUT-01" and flow["line"] == 1 and flow["vendor"] == "huawei"
    assert (flow["src_ip"], flow["src_port"], flow["dst_ip"], flow["dst_port"], flow["proto"]) == (
        "10.123.169.167",
        52451,
        "8.8.8.8",
        53,
        17,
    )
    # BeginTime=1599645876 (epoch, UTC), not the relay's or the device's printed clock.
    assert flow["ts"] == datetime(2020, 9, 9, 10, 4, 36) and flow["duration"] == 35
    assert (flow["bytes_out"], flow["bytes_in"], flow["pkts_in"]) == (74, 120, 1)
    assert flow["action"] == "close"  # aged out after an answer came back
    a, b = sink.of("net_alerts")
    assert a["host"] == "USG6585E_01" and a["ts"] == datetime(2024, 10, 14, 18, 56, 26)  # +08:00 -> UTC
    assert (a["signature"], a["signature_id"], a["severity"], a["action"]) == (
        "ISC BIND VERSION Request",
        "249760",
        "low",
        "deny",
    )
    assert a["proto"] == 17 and a["dst_port"] == 53
    assert b["host"] == "HUAWEI" and b["signature_id"] == "19740" and b["action"] == "allow" and b["proto"] == 6
    assert b["ts"] == datetime(2022, 6, 1, 2, 24, 16)
    assert sink.meta.get("local_time") is True  # the third line has no zone


def test_huawei_fixture_fields() -> None:
    sink = run("huawei", HUAWEI)
    assert sink.skipped == 0
    f1, f2, deny, permit = sink.of("flows")
    assert f1["host"] == "USG-CORE" and f1["ts"] == datetime(2018, 11, 18, 0, 38, 18)
    assert f1["action"] == "timeout" and f1["bytes_in"] == 0 and f1["duration"] == 30
    assert f2["action"] == "reset" and f2["line"] == 2
    assert deny["action"] == "deny" and deny["dst_ip"] == "10.9.9.9" and deny["dst_port"] == 445
    assert deny["proto"] == 6 and deny["src_port"] == 51250
    # POLICY `time=` has no zone; the header's +08:00 stamp is preferred for UTC.
    assert deny["ts"] == datetime(2018, 11, 18, 0, 38, 21)
    assert permit["proto"] == 9 and permit["action"] == "accept" and permit["ts"] == datetime(2023, 1, 19, 8, 53, 29)
    ips, trap = sink.of("net_alerts")
    assert ips["signature"].endswith("(MS17-010)") and ips["severity"] == "critical" and ips["action"] == "deny"
    assert ips["ts"] == datetime(2018, 11, 18, 0, 38, 25) and ips["dst_port"] == 445
    assert trap["signature_id"] == "1000612" and trap["ts"] == datetime(2023, 6, 6, 14, 53, 6)
    assert trap["host"] == "USG6630E-01" and trap["src_port"] == 4444
    assert signature_spec(ips["signature"], ips["signature_id"])["kind"] == "exploit"
    assert signature_spec(trap["signature"], trap["signature_id"])["kind"] == "implant"


def test_huawei_bad_lines_counted_with_line_numbers() -> None:
    lines = HUAWEI.split("\n")
    text = "\n".join(
        [
            lines[0],
            "random words",
            "<190>Nov 18 2018 08:38:21 USG-CORE %%01SHELL/5/CMDRECORD(s):Recorded command information.",
            lines[1][:120],  # truncated before the addresses
            "<190>Nov 18 2018 08:38:21 USG-CORE %%01SECLOG/6/SESSION_TEARDOWN(l):",
            "<188>Nov 18 2018 08:38:25 USG-CORE %%01IPS/4/DETECT(l):x (SrcIp=1.1.1.1, DstIp=2.2.2.2, Action=Block)",
            "%%01SECLOG/6/SESSION_TEARDOWN(l):SourceIP=1.1.1.1,DestinationIP=2.2.2.2,DestinationPort=445.",
            "",
            lines[2],
        ]
    )
    sink = run("huawei", text)
    assert [r["line"] for r in sink.of("flows")] == [1, 9]
    assert {s.line: s.reason for s in sink.skips} == {
        2: "not a Huawei log line",
        3: "other Huawei log type",
        4: "no source/destination address",
        5: "truncated or empty Huawei payload",
        6: "IPS line without signature name",
        7: "no readable date/time",
    }


# --- Hillstone ------------------------------------------------------------------------------------


def test_hillstone_real_samples() -> None:
    sink = run("hillstone", sample("hillstone_stoneos_samples.log"))
    assert sink.skipped == 0
    rows = sink.of("flows")
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 5]
    r1, r2, nat, deny, r5 = rows
    assert r1["host"] == "1404726150004842" and r1["vendor"] == "hillstone"
    assert (r1["src_ip"], r1["src_port"], r1["dst_ip"], r1["dst_port"], r1["proto"]) == (
        "10.6.2.43",
        49608,
        "192.168.20.160",
        11800,
        6,
    )
    assert r1["ts"] == datetime(2019, 11, 29, 17, 24, 50) and r1["duration"] == 2
    assert (r1["bytes_out"], r1["bytes_in"], r1["pkts_in"], r1["action"]) == (74, 110, 1, "reset")
    assert r1["service"] == "TCP-ANY"
    assert r2["action"] == "timeout" and r2["bytes_in"] == 0  # aged out with nothing received
    assert nat["action"] == "dnat" and nat["dst_ip"] == "58.218.194.50" and nat["ts"] == datetime(2018, 9, 29, 0, 6)
    assert deny["action"] == "deny" and deny["dst_port"] == 445 and deny["ts"] == datetime(2018, 8, 7, 18, 52, 22)
    assert r5["action"] == "reset" and r5["duration"] == 91 and r5["service"] == "Redis" and r5["bytes_in"] == 428
    assert sink.meta.get("local_time") is True and sink.meta.get("year_guessed") is True


def test_hillstone_fixture_and_nul_endings() -> None:
    text = HILLSTONE.replace("\n", "\n\x00\n") + "\n\x00"
    sink = run("hillstone", text)
    assert sink.skipped == 0
    ageout, rst, deny, nat, dns = sink.of("flows")
    assert (
        ageout["action"] == "timeout" and ageout["duration"] == 30 and ageout["ts"] == datetime(2018, 11, 18, 8, 38, 18)
    )
    assert rst["action"] == "reset" and rst["bytes_out"] == 1200 and rst["pkts_in"] == 3
    assert deny["action"] == "deny" and deny["ts"] == datetime(2018, 11, 18, 8, 38, 22) and deny["line"] == 5
    assert nat["action"] == "dnat" and nat["dst_port"] == 80
    assert dns["proto"] == 17 and dns["action"] == "close"  # aged out after an answer: not a failure


def test_hillstone_bad_lines_and_other_modules() -> None:
    lines = HILLSTONE.split("\n")
    text = "\n".join(
        [
            lines[0] + "\\n\\u0000",  # Logstash-escaped ending
            "<190>Nov 18 08:38:48 2812008195003847(root) 4426a301 Event@SYSTEM: admin logged in",
            lines[1][:95],  # truncated inside the destination
            "<190>Nov 18 08:38:48 2812008195003847(root) 44243624 Traffic@FLOW: SESSION: a:b->c:d(TCP)",
            "junk",
            "\x00",
        ]
    )
    sink = run("hillstone", text)
    assert [r["line"] for r in sink.of("flows")] == [1]
    assert sink.of("flows")[0]["action"] == "timeout"
    assert {s.line: s.reason for s in sink.skips} == {
        2: "other Hillstone log type (Event@SYSTEM)",
        3: "no source/destination address",
        4: "no source/destination address",
        5: "not a Hillstone log line",
    }


def test_hillstone_file_with_nul_endings_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "stoneos.log"
    path.write_bytes((HILLSTONE.replace("\n", "\n\x00") + "\n\x00").encode())
    det = detect_file(path)
    assert det.format is not None and det.format.name == "hillstone"
    sink = MemorySink()
    sink.meta["default_year"] = 2018
    det.format.parse_file(path, det.encoding, sink)
    assert len(sink.of("flows")) == 5 and sink.skipped == 0


# --- Sangfor --------------------------------------------------------------------------------------


def test_sangfor_real_samples() -> None:
    sink = run("sangfor", sample("sangfor_af_fwlog_samples.log"), year=2020)
    (flow,) = sink.of("flows")
    assert (flow["src_ip"], flow["src_port"], flow["dst_ip"], flow["dst_port"]) == (
        "113.231.38.30",
        58006,
        "10.1.0.11",
        80,
    )
    assert flow["action"] == "allow" and flow["service"] == "HTTP_GET" and flow["host"] == "localhost"
    assert flow["ts"] == datetime(2020, 10, 27, 4, 6, 27) and flow["vendor"] == "sangfor"
    ips, dos, waf = sink.of("net_alerts")
    assert ips["signature"] == "WebCalendar本地文件包含和PHP代码注入漏洞" and ips["severity"] == "high"
    assert ips["action"] == "deny" and ips["proto"] == 6 and ips["line"] == 3
    assert dos["signature"] == "SYN和FIN标志位同时为1" and dos["severity"] == "medium" and dos["dst_port"] is None
    assert waf["signature"] == "信息泄漏攻击" and waf["severity"] == "high" and waf["action"] == "deny"
    assert {s.line: s.reason for s in sink.skips} == {2: "no source/destination address"}  # 流量审计 by user only
    assert sink.meta.get("year_guessed") is True and sink.meta.get("local_time") is True


def test_sangfor_fixture_fields() -> None:
    sink = run("sangfor", SANGFOR)
    assert sink.skipped == 0
    deny, rdp = sink.of("flows")
    assert deny["action"] == "deny" and deny["proto"] == 6 and deny["host"] == "AF-CORE"
    assert deny["ts"] == datetime(2018, 11, 18, 8, 38, 18)
    assert rdp["bytes_out"] == 3 * 1024 and rdp["bytes_in"] == 5 * 1024 and rdp["service"] == "RDP"
    eb, waf = sink.of("net_alerts")
    assert eb["severity"] == "high" and eb["action"] == "allow"
    assert signature_spec(eb["signature"], eb["signature_id"])["kind"] == "exploit"
    assert waf["severity"] == "medium" and waf["action"] == "deny" and waf["signature"] == "信息泄漏攻击"


def test_sangfor_other_forms_counted() -> None:
    text = "\n".join(
        [
            SANGFOR.split("\n")[0],
            '<14>2019-07-03 14:32:34|!secevent|!192.3.222.68|!{"a": 1}',
            "日志类型=未知程序告警;平台ip=10.0.0.1;",
            "<134>Nov 18 08:38:18 AF-CORE fwlog: 源IP:1.1.1.1, 目的IP:2.2.2.2",
            "<134>Nov 18 08:38:18 AF-CORE fwlog: 日志类型:服务控制或应用控制, 源IP:1.1.1.1, 目的",
            "<134>garbage fwlog: 日志类型:服务控制或应用控制, 源IP:1.1.1.1, 目的IP:2.2.2.2",
        ]
    )
    sink = run("sangfor", text)
    assert len(sink.of("flows")) == 1
    assert {s.line: s.reason for s in sink.skips} == {
        2: "other Sangfor log form (key=value; or |! JSON)",
        3: "other Sangfor log form (key=value; or |! JSON)",
        4: "no 日志类型 (log type)",
        5: "no source/destination address",
        6: "no readable date/time",
    }


@pytest.mark.parametrize("codec", ["utf-8", "gb18030"])
def test_sangfor_file_in_utf8_and_gb18030(tmp_path: Path, codec: str) -> None:
    raw = (SANGFOR + "\n").encode(codec)
    path = tmp_path / "af.log"
    path.write_bytes(raw)
    det = detect_file(path)
    assert det.format is not None and det.format.name == "sangfor" and det.encoding.name == codec
    sink = MemorySink()
    sink.meta["default_year"] = 2018
    sangfor.parse_file(path, det.encoding, sink)
    assert sink.of("flows") == [
        {**r, "offset": raw.index(SANGFOR.split("\n")[r["line"] - 1].encode(codec))}
        for r in run("sangfor", SANGFOR).of("flows")
    ]
    assert [r["signature"] for r in sink.of("net_alerts")] == [
        r["signature"] for r in run("sangfor", SANGFOR).of("net_alerts")
    ]


@pytest.mark.parametrize(("name", "text"), [("huawei", HUAWEI), ("hillstone", HILLSTONE), ("sangfor", SANGFOR)])
def test_every_encoding_gives_the_same_rows(name: str, text: str) -> None:
    def parse(t: str, sink: MemorySink) -> None:
        sink.meta["default_year"] = 2018
        PARSERS[name](t, sink)

    assert_same_in_every_encoding(parse, text + "\n", "flows", name)


def test_offsets_point_at_the_line(tmp_path: Path) -> None:
    for name, text in (("huawei", HUAWEI), ("hillstone", HILLSTONE)):
        path = tmp_path / f"{name}.log"
        raw = (text + "\n").encode()
        path.write_bytes(raw)
        sink = MemorySink()
        sink.meta["default_year"] = 2018
        {"huawei": huawei, "hillstone": hillstone}[name].parse_file(path, sniff_encoding(raw), sink)
        for row in sink.of("flows") + sink.of("net_alerts"):
            start = row["offset"]
            assert raw[start : raw.index(b"\n", start)].decode() == text.split("\n")[row["line"] - 1]


# --- Sniffing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "text"), [("huawei", HUAWEI), ("hillstone", HILLSTONE), ("sangfor", SANGFOR)])
def test_fixtures_detected_as_their_vendor_only(name: str, text: str) -> None:
    det = detect_head(text.encode(), complete=True)
    assert det.format is not None and det.format.name == name
    assert all(sniff(text) == 0.0 for other, sniff in SNIFFERS.items() if other != name)


def test_real_samples_detected_and_others_not_claimed() -> None:
    if not SAMPLES.is_dir():
        pytest.skip("reference samples not present")
    for name, file in (
        ("huawei", "huawei_usg_samples.log"),
        ("hillstone", "hillstone_stoneos_samples.log"),
        ("sangfor", "sangfor_af_fwlog_samples.log"),
    ):
        det = detect_head((SAMPLES / "cn_firewalls" / file).read_bytes(), complete=True)
        assert det.format is not None and det.format.name == name
    for folder in ("fortigate", "paloalto", "cisco_asa", "iptables"):
        for path in sorted((SAMPLES / folder).glob("*.log")):
            text = decode(path.read_bytes()).text
            assert all(sniff(text) < 0.5 for sniff in SNIFFERS.values()), path.name


# --- Properties -----------------------------------------------------------------------------------

FAST = fast(60)
DOCS = {"huawei": HUAWEI, "hillstone": HILLSTONE, "sangfor": SANGFOR}


@FAST
@given(data=st.binary(max_size=3000), name=st.sampled_from(sorted(PARSERS)))
def test_random_bytes_never_raise_and_every_line_is_accounted_for(data: bytes, name: str) -> None:
    text = decode(data).text
    sink = run(name, text)
    assert sink.records + sink.skipped == non_blank(text)


@FAST
@given(data=st.data(), name=st.sampled_from(sorted(DOCS)))
def test_mutated_line_is_a_record_or_a_counted_skip(data: st.DataObject, name: str) -> None:
    lines = DOCS[name].split("\n")
    target = mutate_line(data, lines)
    text = "\n".join(lines)
    sink = run(name, text)
    # Every non-blank line is exactly one record or one skip, and the untouched lines keep their rows.
    assert sink.records + sink.skipped == non_blank(text)
    base = run(name, DOCS[name])
    for kind in ("flows", "net_alerts"):
        keep = [r for r in base.of(kind) if r["line"] != target + 1]
        assert [r for r in sink.of(kind) if r["line"] != target + 1] == keep


# --- Simulator round trip -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["huawei", "hillstone", "sangfor"])
def test_simulated_logs_round_trip(tmp_path: Path, fmt: str) -> None:
    truth, sink = simulate_and_parse(tmp_path, fmt, fmt, truth_year=True)
    assert sink.skipped == 0
    flows = sink.of("flows")
    assert len(flows) == truth["firewall_lines"]["traffic"]
    pz = truth["patient_zero"]["ip"]
    targets = {r["dst_ip"] for r in flows if r["src_ip"] == pz and r["dst_port"] == 445}
    assert len(targets) >= 20
    assert all(r["vendor"] == fmt and r["proto"] in (6, 17, 1) for r in flows)
    kinds = {signature_spec(a["signature"], a["signature_id"])["kind"] for a in sink.of("net_alerts")}
    if fmt == "hillstone":
        assert kinds == set()  # no StoneOS threat log form is implemented
    else:
        assert kinds == {"exploit", "implant"}
        assert len(sink.of("net_alerts")) == truth["firewall_lines"]["alerts"]
        assert all(
            a["src_ip"] == pz or a["src_ip"] in {e["src_ip"] for e in truth["edges"]} for a in sink.of("net_alerts")
        )
