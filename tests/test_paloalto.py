"""Palo Alto PAN-OS syslog CSV parser: fields by position, actions, zones, bad lines, round trip."""

from __future__ import annotations

import functools
import os
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ROOT, encodings
from tests.netlog_helpers import fast, mutate_line, non_blank, parse_with, simulate_and_parse
from wormhunt.sources import asa, fortigate, paloalto
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_head
from wormhunt.sources.text import decode, sniff_encoding

SAMPLES = Path(os.environ.get("WORMHUNT_FORMAT_SAMPLES", ROOT.parent / "shared" / "reference" / "format-samples"))

# Hand-written lines in the PAN-OS 9.1 field order (formats.md 9.2), one per behaviour.
T_TIMEOUT = (
    "<14>Nov 18 08:38:48 FW-CORE 1,2018/11/18 08:38:48,013201001141,TRAFFIC,end,2049,2018/11/18 08:38:48,"
    "192.168.16.23,172.16.101.5,0.0.0.0,0.0.0.0,lan-to-servers,corp\\wang,,incomplete,vsys1,users,servers,"
    "ethernet1/2,ethernet1/3,fwd,2018/11/18 08:38:48,4452,1,51234,445,0,0,0x400019,tcp,allow,104,104,0,2,"
    "2018/11/18 08:38:18,30,any,0,7001,0x0,10.0.0.0-10.255.255.255,192.168.0.0-192.168.255.255,0,2,0,"
    "aged-out,0,0,0,0,,FW-CORE,from-policy,,,0,,0,,N/A,0,0,0,0"
)
T_RST = (
    "<14>Nov 18 08:38:48 FW-CORE 1,2018/11/18 08:38:48,013201001141,TRAFFIC,end,2049,2018/11/18 08:38:48,"
    "192.168.16.23,172.16.101.6,0.0.0.0,0.0.0.0,lan-to-servers,corp\\wang,,ms-ds-smb,vsys1,users,servers,"
    "ethernet1/2,ethernet1/3,fwd,2018/11/18 08:38:48,4452,1,51240,445,0,0,0x400019,tcp,allow,1460,1400,"
    "60,4,2018/11/18 08:38:47,0,any,0,7001,0x0,10.0.0.0-10.255.255.255,192.168.0.0-192.168.255.255,0,3,1,"
    "tcp-rst-from-server,0,0,0,0,,FW-CORE,from-policy,,,0,,0,,N/A,0,0,0,0"
)
T_FIN = (
    "<14>Nov 18 08:38:48 FW-CORE 1,2018/11/18 08:38:48,013201001141,TRAFFIC,end,2049,2018/11/18 08:38:48,"
    "192.168.16.40,172.16.101.5,0.0.0.0,0.0.0.0,lan-to-servers,corp\\wang,,ms-ds-smb,vsys1,users,servers,"
    "ethernet1/2,ethernet1/3,fwd,2018/11/18 08:38:48,4452,1,50001,445,0,0,0x400019,tcp,allow,526336357,"
    "53657,526282700,375956,2018/11/18 08:26:47,721,any,0,7001,0x0,10.0.0.0-10.255.255.255,"
    "192.168.0.0-192.168.255.255,0,39,375917,tcp-fin,0,0,0,0,,FW-CORE,from-policy,,,0,,0,,N/A,0,0,0,0"
)
T_DENY = (
    "<14>Nov 18 08:38:48 FW-CORE 1,2018/11/18 08:38:48,013201001141,TRAFFIC,deny,2049,"
    "2018/11/18 08:38:48,192.168.16.23,172.16.101.7,0.0.0.0,0.0.0.0,lan-to-servers,corp\\wang,,"
    "not-applicable,vsys1,users,servers,ethernet1/2,ethernet1/3,fwd,2018/11/18 08:38:48,4452,1,51250,"
    "3389,0,0,0x400019,tcp,deny,74,74,0,1,2018/11/18 08:38:48,0,any,0,7001,0x0,10.0.0.0-10.255.255.255,"
    "192.168.0.0-192.168.255.255,0,1,0,policy-deny,0,0,0,0,,FW-CORE,from-policy,,,0,,0,,N/A,0,0,0,0"
)
T_RESET_BOTH = (
    "<14>Nov 18 08:38:48 FW-CORE 1,2018/11/18 08:38:48,013201001141,TRAFFIC,end,2049,2018/11/18 08:38:48,"
    "192.168.16.23,172.16.101.8,0.0.0.0,0.0.0.0,lan-to-servers,corp\\wang,,ms-ds-smb,vsys1,users,servers,"
    "ethernet1/2,ethernet1/3,fwd,2018/11/18 08:38:48,4452,1,51260,445,0,0,0x400019,tcp,reset-both,2600,"
    "2200,400,6,2018/11/18 08:38:40,1,any,0,7001,0x0,10.0.0.0-10.255.255.255,192.168.0.0-192.168.255.255,"
    "0,4,2,threat,0,0,0,0,,FW-CORE,from-policy,,,0,,0,,N/A,0,0,0,0"
)
T_ISO = (
    "1,2020-10-13T01:12:03.000000Z,013201001141,TRAFFIC,end,2049,2020-10-13T01:12:03.000000Z,10.1.1.5,"
    "10.1.1.53,0.0.0.0,0.0.0.0,lan-to-servers,corp\\wang,,dns,vsys1,users,servers,ethernet1/2,ethernet1/3,"
    "fwd,2020-10-13T01:12:03.000000Z,4452,1,53001,53,0,0,0x400019,udp,allow,200,70,130,2,"
    "2020-10-13T01:11:33.000000Z,30,any,0,7001,0x0,10.0.0.0-10.255.255.255,192.168.0.0-192.168.255.255,0,"
    "1,1,aged-out,0,0,0,0,,FW-CORE,from-policy,,,0,,0,,N/A,0,0,0,0"
)
T_START = (
    "<14>Nov 18 08:38:48 FW-CORE 1,2018/11/18 08:38:48,013201001141,TRAFFIC,start,2049,"
    "2018/11/18 08:38:48,192.168.16.40,172.16.101.5,0.0.0.0,0.0.0.0,lan-to-servers,corp\\wang,,ms-ds-smb,"
    "vsys1,users,servers,ethernet1/2,ethernet1/3,fwd,2018/11/18 08:38:48,4452,1,50001,445,0,0,0x400019,"
    "tcp,allow,1000,600,400,5,2018/11/18 08:26:47,0,any,0,7001,0x0,10.0.0.0-10.255.255.255,"
    "192.168.0.0-192.168.255.255,0,3,2,n/a,0,0,0,0,,FW-CORE,from-policy,,,0,,0,,N/A,0,0,0,0"
)
A_VULN = (
    "<12>Nov 18 08:40:02 FW-CORE 1,2018/11/18 08:40:02,013201001141,THREAT,vulnerability,2049,"
    "2018/11/18 08:40:02,192.168.16.23,172.16.101.5,0.0.0.0,0.0.0.0,lan-to-servers,,,ms-ds-smb,vsys1,"
    "users,servers,ethernet1/2,ethernet1/3,fwd,2018/11/18 08:40:02,4460,1,51300,445,0,0,0x2000,tcp,"
    'reset-both,"","Microsoft Windows SMB Remote Code Execution Vulnerability, MS17-010(32424)",any,'
    "critical,client-to-server,7100,0x8000000000000000,10.0.0.0-10.255.255.255,"
    "192.168.0.0-192.168.255.255,0,,0,,,0,,,,,,,,0,0,0,0,0,,FW-CORE,,,,,0,,0,,N/A,code-execution,"
    "AppThreat-8054-4933,0x0"
)
A_SPY = (
    "<12>Nov 18 08:40:02 FW-CORE 1,2018/11/18 08:40:09,013201001141,THREAT,spyware,2049,"
    "2018/11/18 08:40:09,192.168.16.23,172.16.101.5,0.0.0.0,0.0.0.0,lan-to-servers,,,ms-ds-smb,vsys1,"
    "users,servers,ethernet1/2,ethernet1/3,fwd,2018/11/18 08:40:09,4460,1,51301,445,0,0,0x2000,tcp,alert,"
    '"",DoublePulsar SMB Backdoor Command and Control Traffic(86123),any,critical,client-to-server,7100,'
    "0x8000000000000000,10.0.0.0-10.255.255.255,192.168.0.0-192.168.255.255,0,,0,,,0,,,,,,,,0,0,0,0,0,,"
    "FW-CORE,,,,,0,,0,,N/A,code-execution,AppThreat-8054-4933,0x0"
)
A_URL = (
    "<12>Nov 18 08:40:02 FW-CORE 1,2018/11/18 08:40:10,013201001141,THREAT,url,2049,2018/11/18 08:40:10,"
    "192.168.16.23,203.0.113.5,0.0.0.0,0.0.0.0,lan-to-servers,,,ms-ds-smb,vsys1,users,servers,"
    'ethernet1/2,ethernet1/3,fwd,2018/11/18 08:40:10,4460,1,51302,80,0,0,0x2000,tcp,alert,"",(9999),any,'
    "informational,client-to-server,7100,0x8000000000000000,10.0.0.0-10.255.255.255,"
    "192.168.0.0-192.168.255.255,0,,0,,,0,,,,,,,,0,0,0,0,0,,FW-CORE,,,,,0,,0,,N/A,code-execution,"
    "AppThreat-8054-4933,0x0"
)

FIXTURES = [T_TIMEOUT, T_RST, T_FIN, T_DENY, T_RESET_BOTH, T_ISO, A_VULN, A_SPY]
FAST = fast(40)


def parse(text: str) -> MemorySink:
    return parse_with(paloalto.parse_text, text)


def sample(folder: str, name: str) -> str:
    path = SAMPLES / folder / name
    if not path.is_file():
        pytest.skip(f"format sample not present: {path}")
    return path.read_text(encoding="utf-8")


def test_traffic_fields_by_position_and_local_time() -> None:
    sink = parse(T_TIMEOUT)
    (row,) = sink.of("flows")
    assert row["src_ip"] == "192.168.16.23" and row["dst_ip"] == "172.16.101.5"
    assert row["src_port"] == 51234 and row["dst_port"] == 445 and row["proto"] == 6
    assert row["bytes_out"] == 104 and row["bytes_in"] == 0 and row["pkts_in"] == 0 and row["duration"] == 30
    assert row["service"] == "incomplete" and row["vendor"] == "paloalto" and row["host"] == "FW-CORE"
    # Start Time, device-local, and said so.
    assert row["ts"] == datetime(2018, 11, 18, 8, 38, 18) and sink.meta["local_time"] is True
    assert row["line"] == 1 and row["offset"] is None
    # aged-out with nothing received: the server never answered.
    assert row["action"] == "timeout" and sink.skipped == 0


@pytest.mark.parametrize(
    ("line", "action"),
    [(T_RST, "server-rst"), (T_FIN, "allow"), (T_DENY, "deny"), (T_RESET_BOTH, "reset-both"), (T_ISO, "allow")],
)
def test_actions_from_action_and_end_reason(line: str, action: str) -> None:
    (row,) = parse(line).of("flows")
    assert row["action"] == action


def test_big_counters_and_deny_subtype() -> None:
    sink = parse(T_FIN + "\n" + T_DENY)
    fin, deny = sink.of("flows")
    assert fin["bytes_in"] == 526282700 and fin["pkts_in"] == 375917 and fin["duration"] == 721
    assert deny["dst_port"] == 3389 and deny["bytes_in"] == 0 and deny["service"] == "not-applicable"
    # A drop/deny subtype wins over an `allow` action: the session never completed.
    dropped = T_FIN.replace("TRAFFIC,end,", "TRAFFIC,drop,", 1)
    assert parse(dropped).of("flows")[0]["action"] == "drop"


def test_iso_times_with_zone_are_utc() -> None:
    sink = parse(T_ISO)
    (row,) = sink.of("flows")
    assert row["ts"] == datetime(2020, 10, 13, 1, 11, 33) and row["proto"] == 17
    assert "local_time" not in sink.meta
    # No syslog header and a device name: the Device Name field names the host.
    assert row["host"] == "FW-CORE"


def test_threat_name_id_severity_and_quoted_comma() -> None:
    sink = parse(A_VULN + "\n" + A_SPY)
    vuln, spy = sink.of("net_alerts")
    assert vuln["signature"] == "Microsoft Windows SMB Remote Code Execution Vulnerability, MS17-010"
    assert vuln["signature_id"] == "32424" and vuln["severity"] == "critical" and vuln["action"] == "reset-both"
    assert vuln["ts"] == datetime(2018, 11, 18, 8, 40, 2) and vuln["dst_port"] == 445 and vuln["proto"] == 6
    assert spy["signature"].startswith("DoublePulsar") and spy["signature_id"] == "86123" and spy["action"] == "alert"
    assert [r["line"] for r in (vuln, spy)] == [1, 2] and sink.of("flows") == []


def test_signatures_map_to_exploit_and_implant() -> None:
    from wormhunt.analyze.network import signature_spec

    vuln, spy = parse(A_VULN + "\n" + A_SPY).of("net_alerts")
    assert signature_spec(vuln["signature"], vuln["signature_id"])["kind"] == "exploit"
    assert signature_spec(spy["signature"], spy["signature_id"])["kind"] == "implant"


def test_host_falls_back_to_syslog_host_then_serial() -> None:
    no_device = T_FIN.replace(",FW-CORE,from-policy", ",,from-policy")
    assert parse(no_device.replace("FW-CORE 1,", "edge-fw-02 1,")).of("flows")[0]["host"] == "edge-fw-02"
    bare = no_device[no_device.index("1,2018") :]
    assert parse(bare).of("flows")[0]["host"] == "013201001141"


def test_bad_lines_are_counted_with_line_numbers() -> None:
    system = "1,2018/11/18 08:00:00,013201001141,SYSTEM,general,0,2018/11/18 08:00:00,,general,,0,0,general,info"
    text = "\n".join(
        [
            T_FIN,
            "hello world, this is not PAN-OS",
            system,
            A_URL,
            T_START,
            T_FIN[: T_FIN.index(",allow,") + 7],  # cut right after the Action field
            T_FIN.replace("192.168.16.40", "pc-wang"),
            T_FIN.replace("2018/11/18", "2018/13/45"),
            "",
            "   ",
            A_VULN,
        ]
    )
    sink = parse(text)
    assert [r["line"] for r in sink.of("flows")] == [1] and [r["line"] for r in sink.of("net_alerts")] == [11]
    assert {s.line: s.reason for s in sink.skips} == {
        2: "not a PAN-OS log line",
        3: "other PAN-OS log type",
        4: "other THREAT subtype (url, file, data, wildfire)",
        5: "TRAFFIC session start log (the end log carries the session)",
        6: "truncated line (too few fields)",
        7: "no source/destination address",
        8: "no readable date/time",
    }
    assert sink.skipped == 7


def test_old_short_threat_line_and_field_growth() -> None:
    # PAN-OS 3.x stopped at Direction; newer versions append fields after Device Name.
    short = A_VULN[: A_VULN.index(",client-to-server") + len(",client-to-server")]
    longer = A_SPY + ",x" * 60
    sink = parse(short + "\n" + longer)
    assert [r["signature_id"] for r in sink.of("net_alerts")] == ["32424", "86123"] and sink.skipped == 0


def test_real_samples() -> None:
    sink = parse(sample("paloalto", "panos_traffic_elastic-integrations.log"))
    rows = sink.of("flows")
    assert len(rows) == 3 and sink.skipped == 0
    first, ping, drop = rows
    assert first["src_ip"] == "192.168.15.207" and first["dst_ip"] == "175.16.199.1" and first["dst_port"] == 443
    assert first["bytes_out"] == 1758 and first["bytes_in"] == 5976 and first["pkts_in"] == 20
    assert first["duration"] == 586 and first["ts"] == datetime(2018, 11, 30, 15, 59, 4) and first["host"] == "PA-220"
    assert ping["proto"] == 1 and ping["service"] == "ping" and ping["src_port"] == 0
    assert drop["action"] == "drop" and drop["bytes_in"] == 0

    sink = parse(sample("paloalto", "panos_threat_samples.log"))
    alerts = sink.of("net_alerts")
    assert sink.skip_counts == {"other THREAT subtype (url, file, data, wildfire)": 1}
    assert [(a["signature_id"], a["host"]) for a in alerts] == [
        ("30845", "pa5220-hq-mdf-1"),  # Device Name field
        ("39595", "kc2dmz-fw-01"),  # no Device Name on that version: the syslog host
        ("32880", "0004C100832"),  # PAN-OS 3.x line without a header: the serial number
    ]
    assert alerts[0]["signature"] == "Microsoft RPC Endpoint Mapper Detection" and alerts[0]["dst_port"] == 135
    assert alerts[1]["severity"] == "medium" and alerts[1]["ts"] == datetime(2017, 6, 2, 1, 59, 6)


def test_sniff_claims_pan_and_nothing_else() -> None:
    text = "\n".join(FIXTURES) + "\n"
    assert paloalto.sniff(text) > 0.9
    found = detect_head(text.encode(), complete=True)
    assert found.format is not None and found.format.name == "paloalto"
    assert asa.sniff(text) == 0.0 and fortigate.sniff(text) == 0.0
    for folder in ("fortigate", "cisco_asa", "cn_firewalls", "iptables", "zeek", "suricata", "nfdump", "netstat"):
        for path in sorted((SAMPLES / folder).glob("*")) if (SAMPLES / folder).is_dir() else []:
            assert paloalto.sniff(path.read_text(encoding="utf-8", errors="replace")) == 0.0, path


@pytest.mark.parametrize("variant", ["utf-8", "utf-8-bom", "utf-16le-bom", "crcrlf"])
def test_file_encodings_give_the_same_rows(tmp_path: Path, variant: str) -> None:
    text = "\n".join(FIXTURES) + "\n"
    raw = encodings(text)[variant]
    path = tmp_path / "pan.log"
    path.write_bytes(raw)
    found = detect_head(raw, complete=True)
    assert found.format is not None and found.format.name == "paloalto"
    sink = MemorySink()
    paloalto.parse_file(path, sniff_encoding(raw), sink)
    assert [r["line"] for r in sink.of("flows")] == [1, 2, 3, 4, 5, 6]
    assert [r["line"] for r in sink.of("net_alerts")] == [7, 8] and sink.skipped == 0
    expected = parse(text)
    assert [r["ts"] for r in sink.of("flows")] == [r["ts"] for r in expected.of("flows")]


def test_offsets_and_lines_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wormhunt.sources import stream

    lines = [T_FIN.replace(",50001,", f",{1000 + i},") for i in range(300)]
    path = tmp_path / "big.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    orig = stream.iter_blocks
    monkeypatch.setattr(paloalto, "iter_blocks", lambda p, e, tap=None: orig(p, e, block_bytes=4096, tap=tap))
    sink = MemorySink()
    paloalto.parse_file(path, sniff_encoding(path.read_bytes()[:4096]), sink)
    rows = sink.of("flows")
    raw = path.read_bytes()
    assert len(rows) == 300 and all(r["src_port"] == 1000 + r["line"] - 1 for r in rows)
    for r in rows[::37]:
        assert raw[r["offset"] : raw.index(b"\n", r["offset"])].decode() == lines[r["line"] - 1]


@functools.cache
def base() -> MemorySink:
    return parse("\n".join(FIXTURES))


@FAST
@given(data=st.binary(max_size=3000))
def test_random_bytes_never_raise(data: bytes) -> None:
    text = decode(data).text
    sink = parse(text)
    assert sink.records + sink.skipped == non_blank(text, " \t\r\x00")


@FAST
@given(data=st.data())
def test_mutated_line_is_a_record_or_a_skip_and_the_rest_survive(data: st.DataObject) -> None:
    lines = list(FIXTURES)
    target = mutate_line(data, lines)
    text = "\n".join(lines)
    sink = parse(text)
    assert sink.records + sink.skipped == non_blank(text, " \t\r\x00")
    for kind in ("flows", "net_alerts"):
        keep = [r for r in base().of(kind) if r["line"] != target + 1]
        assert [r for r in sink.of(kind) if r["line"] != target + 1] == keep


def test_simulated_outbreak_round_trip(tmp_path: Path) -> None:
    from wormhunt.analyze.network import signature_spec

    truth, sink = simulate_and_parse(tmp_path, "paloalto", "paloalto")
    assert sink.skipped == 0
    pz = truth["patient_zero"]["ip"]
    from_pz = [r for r in sink.of("flows") if r["src_ip"] == pz and r["dst_port"] == 445]
    assert len({r["dst_ip"] for r in from_pz}) >= 10
    assert any(r["action"] in ("timeout", "server-rst") for r in from_pz)
    kinds = {signature_spec(a["signature"], a["signature_id"])["kind"] for a in sink.of("net_alerts")}
    assert kinds == {"exploit", "implant"}
    assert any(a["src_ip"] == pz for a in sink.of("net_alerts"))
