"""Suricata EVE JSON: alerts, flows, SMB, pretty-printed arrays, bad records, real samples, the simulator."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import assert_same_in_every_encoding
from tests.netlog_helpers import fast, parse_with, simulate_and_parse
from wormhunt.analyze.network import signature_spec
from wormhunt.sources import FORMATS, suricata
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_head
from wormhunt.sources.text import sniff_encoding

# Suricata docs example (formats.md 9.9), zone +0100 without colon.
ALERT = (
    '{"timestamp":"2017-04-07T22:24:37.251547+0100","flow_id":586497171462735,"pcap_cnt":53381,"event_type":"alert",'
    '"src_ip":"192.168.2.14","src_port":50096,"dest_ip":"209.53.113.5","dest_port":80,"proto":"TCP",'
    '"metadata":{"flowbits":["http.dottedquadhost"]},"tx_id":4,"alert":{"action":"allowed","gid":1,'
    '"signature_id":2018358,"rev":10,"signature":"ET HUNTING GENERIC SUSPICIOUS POST to Dotted Quad with Fake '
    'Browser 1","category":"Potentially Bad Traffic","severity":2},"app_proto":"http"}'
)
# Rust suricata crate test: `timestamp` is the epoch in local time; flow.start/end are real.
FLOW_EPOCH = (
    '{"timestamp":"1969-12-31T17:00:00.000000-0700","flow_id":1042873772049837,"event_type":"flow",'
    '"src_ip":"10.10.10.30","src_port":57656,"dest_ip":"10.10.10.10","dest_port":102,"proto":"TCP",'
    '"flow":{"pkts_toserver":3,"pkts_toclient":8,"bytes_toserver":186,"bytes_toclient":480,'
    '"start":"2015-10-20T11:24:10.230829-0600","end":"2015-10-20T11:24:46.195059-0600","age":36,"state":"closed",'
    '"reason":"shutdown","alerted":false},"tcp":{"tcp_flags":"16","tcp_flags_ts":"16","tcp_flags_tc":"16",'
    '"syn":true,"rst":true,"ack":true,"state":"closed"}}'
)
DNS = (
    '{"timestamp":"2024-11-13T12:22:00.381225+1100","flow_id":229978107844536,"event_type":"dns",'
    '"src_ip":"172.18.0.2","src_port":41195,"dest_ip":"92.42.1.83","dest_port":53,"proto":"UDP",'
    '"dns":{"type":"query","id":4908,"rrname":"bQo=.msndhfie.com","rrtype":"TXT"}}'
)
# A scan attempt nobody answered, and one the server refused with RST.
FLOW_NO_ANSWER = (
    '{"timestamp":"2018-11-18T08:39:00.000000+0800","flow_id":7,"event_type":"flow","src_ip":"172.16.101.13",'
    '"src_port":51234,"dest_ip":"192.168.16.78","dest_port":445,"proto":"TCP","flow":{"pkts_toserver":2,'
    '"pkts_toclient":0,"bytes_toserver":132,"bytes_toclient":0,"start":"2018-11-18T08:38:18.500000+0800",'
    '"end":"2018-11-18T08:38:21.400000+0800","age":3,"state":"new","reason":"timeout","alerted":false},'
    '"tcp":{"tcp_flags":"02","tcp_flags_ts":"02","tcp_flags_tc":"00","syn":true,"state":"syn_sent"}}'
)
FLOW_RST = FLOW_NO_ANSWER.replace('"tcp_flags_tc":"00"', '"tcp_flags_tc":"14"').replace(
    '"pkts_toclient":0,', '"pkts_toclient":1,'
)
SMB_LINES = [
    # tree connect to IPC$, open the svcctl pipe, bind, CreateServiceW, then a file written to ADMIN$.
    '{"timestamp":"2017-04-25T20:21:00.384916+0000","flow_id":5294346048441,"event_type":"smb","src_ip":"192.168.1.161",'
    '"src_port":60244,"dest_ip":"192.168.1.195","dest_port":445,"proto":"TCP","smb":{"id":61,"dialect":"2.10",'
    '"command":"SMB2_COMMAND_TREE_CONNECT","status":"STATUS_SUCCESS","status_code":"0x0","session_id":1,'
    '"tree_id":53,"share":"\\\\\\\\192.168.1.195\\\\IPC$","share_type":"PIPE"}}',
    '{"timestamp":"2017-04-25T20:21:00.400000+0000","flow_id":5294346048441,"event_type":"smb","src_ip":"192.168.1.161",'
    '"src_port":60244,"dest_ip":"192.168.1.195","dest_port":445,"proto":"TCP","smb":{"id":62,"dialect":"2.10",'
    '"command":"SMB2_COMMAND_CREATE","status":"STATUS_SUCCESS","session_id":1,"tree_id":53,"filename":"svcctl",'
    '"disposition":"FILE_OPEN","access":"normal","size":0,"fuid":"0000004d-0000-0000-0005-0000ffffffff"}}',
    '{"timestamp":"2017-04-25T20:21:00.410000+0000","flow_id":5294346048441,"event_type":"smb","src_ip":"192.168.1.161",'
    '"src_port":60244,"dest_ip":"192.168.1.195","dest_port":445,"proto":"TCP","smb":{"id":63,"dialect":"2.10",'
    '"command":"SMB2_COMMAND_WRITE","status":"STATUS_SUCCESS","session_id":1,"tree_id":53,"dcerpc":{"request":"BIND",'
    '"response":"BINDACK","interfaces":[{"uuid":"367abb81-9844-35f1-ad32-98f038001003","version":"2.0",'
    '"ack_result":0,"ack_reason":0}],"call_id":2}}}',
    '{"timestamp":"2017-04-25T20:21:00.420000+0000","flow_id":5294346048441,"event_type":"smb","src_ip":"192.168.1.161",'
    '"src_port":60244,"dest_ip":"192.168.1.195","dest_port":445,"proto":"TCP","smb":{"id":64,"dialect":"2.10",'
    '"command":"SMB2_COMMAND_IOCTL","status":"STATUS_SUCCESS","session_id":1,"tree_id":53,"dcerpc":{"request":'
    '"REQUEST","response":"RESPONSE","opnum":12,"req":{"frag_cnt":1,"stub_data_size":136},"call_id":3}}}',
    '{"timestamp":"2017-04-25T20:21:01.000000+0000","flow_id":99,"event_type":"smb","src_ip":"192.168.1.161",'
    '"src_port":60250,"dest_ip":"192.168.1.195","dest_port":445,"proto":"TCP","smb":{"id":3,"dialect":"2.10",'
    '"command":"SMB2_COMMAND_CREATE","status":"STATUS_SUCCESS","session_id":1,"tree_id":5,'
    '"filename":"Windows\\\\wmiex.exe","disposition":"FILE_OVERWRITE_IF","access":"normal"}}',
    '{"timestamp":"2017-04-25T20:21:01.100000+0000","flow_id":99,"event_type":"smb","src_ip":"192.168.1.161",'
    '"src_port":60250,"dest_ip":"192.168.1.195","dest_port":445,"proto":"TCP","smb":{"id":1,"dialect":"2.??",'
    '"command":"SMB1_COMMAND_NEGOTIATE_PROTOCOL","status":"STATUS_SUCCESS","session_id":0,"tree_id":0}}',
]
PRETTY_ARRAY = """[
  {
    "timestamp": "2017-03-25T16:49:58.856335-0600",
    "flow_id": 1127398650588751,
    "event_type": "alert",
    "src_ip": "10.192.5.200",
    "src_port": 50000,
    "dest_ip": "10.192.0.10",
    "dest_port": 445,
    "proto": "TCP",
    "alert": {
      "action": "allowed",
      "gid": 1,
      "signature_id": 2001569,
      "rev": 15,
      "signature": "ET SCAN Behavioral Unusual Port 445 traffic Potential Scan or Infection {braces} [in] a string",
      "category": "Misc activity",
      "severity": 3
    },
    "flow": {
      "pkts_toserver": 1,
      "start": "2017-03-25T16:49:58.044623-0600"
    }
  },
  {
    "timestamp": "2017-03-25T16:50:00.000000-0600",
    "event_type": "stats",
    "stats": {"uptime": 5}
  }
]
"""


def parse(text: str) -> MemorySink:
    return parse_with(suricata.parse_text, text)


def test_alert_fields_and_utc_time() -> None:
    sink = parse(ALERT + "\n")
    (row,) = sink.of("net_alerts")
    assert row["ts"] == datetime(2017, 4, 7, 21, 24, 37, 251547)  # +0100 -> UTC
    assert (row["src_ip"], row["src_port"], row["dst_ip"], row["dst_port"], row["proto"]) == (
        "192.168.2.14",
        50096,
        "209.53.113.5",
        80,
        6,
    )
    assert row["signature"] == "ET HUNTING GENERIC SUSPICIOUS POST to Dotted Quad with Fake Browser 1"
    assert row["signature_id"] == "2018358" and row["severity"] == "medium" and row["action"] == "allowed"
    assert row["vendor"] == "suricata" and row["host"] is None and row["line"] == 1 and row["offset"] is None
    assert sink.skipped == 0 and "local_time" not in sink.meta


def test_flow_uses_flow_start_not_the_epoch_timestamp() -> None:
    (row,) = parse(FLOW_EPOCH).of("flows")
    assert row["ts"] == datetime(2015, 10, 20, 17, 24, 10, 230829)
    assert row["duration"] == 35  # end - start, whole seconds
    assert (row["bytes_out"], row["bytes_in"], row["pkts_in"]) == (186, 480, 8)
    assert row["action"] == "closed" and row["proto"] == 6 and row["service"] is None
    assert (row["src_ip"], row["src_port"], row["dst_ip"], row["dst_port"]) == (
        "10.10.10.30",
        57656,
        "10.10.10.10",
        102,
    )


def test_unanswered_and_refused_445_attempts() -> None:
    sink = parse(FLOW_NO_ANSWER + "\n" + FLOW_RST + "\n")
    quiet, refused = sink.of("flows")
    assert quiet["action"] == "new" and quiet["bytes_in"] == 0 and quiet["pkts_in"] == 0
    assert quiet["ts"] == datetime(2018, 11, 18, 0, 38, 18, 500000) and quiet["duration"] == 2
    assert refused["action"] == "reset" and refused["pkts_in"] == 1


def test_other_event_types_are_counted() -> None:
    sink = parse("\n".join([DNS, FLOW_EPOCH, DNS]))
    assert len(sink.of("flows")) == 1
    assert sink.skip_counts == Counter({"other event type": 2})
    assert [s.line for s in sink.skips] == [1, 3]


def test_smb_tree_connect_pipe_rpc_and_file_write() -> None:
    sink = parse("\n".join(SMB_LINES))
    rows = sink.of("smb")
    assert [r["activity"] for r in rows] == ["tree_connect", "file", "rpc", "rpc", "file"]
    tree, pipe, bind, call, exe = rows
    assert tree["path"] == "\\\\192.168.1.195\\IPC$" and tree["action"] == "PIPE"
    assert pipe["name"] == "svcctl" and pipe["action"] == "SMB::FILE_OPEN"
    assert bind["name"] == "bind" and bind["action"] == "svcctl"
    assert call["name"] == "CreateServiceW" and call["action"] == "svcctl" and call["path"] == "svcctl"
    assert exe["name"] == "Windows\\wmiex.exe" and exe["action"] == "SMB::FILE_WRITE"
    assert call["ts"] == datetime(2017, 4, 25, 20, 21, 0, 420000) and call["dst_port"] == 445
    assert sink.skip_counts == Counter({"SMB command without share, file or RPC": 1})
    assert sink.skips[0].line == 6


def test_rpc_request_with_interface_and_pipe_name_only() -> None:
    line = SMB_LINES[3].replace(
        '"call_id":3', '"call_id":3,"interface":{"uuid":"1FF70682-0A51-30E8-076D-740BE8CEE98B"}'
    )
    line = line.replace('"opnum":12', '"opnum":0')
    (row,) = parse(line).of("smb")
    assert row["action"] == "atsvc" and row["name"] == "NetrJobAdd"
    # No bind and no interface: the pipe opened on the same tree names the endpoint.
    (*_, row) = parse("\n".join([SMB_LINES[1], SMB_LINES[3]])).of("smb")
    assert row["action"] == "svcctl" and row["name"] == "CreateServiceW"


def test_pretty_printed_array_and_braces_inside_strings() -> None:
    sink = parse(PRETTY_ARRAY)
    (row,) = sink.of("net_alerts")
    assert row["line"] == 2 and row["ts"] == datetime(2017, 3, 25, 22, 49, 58, 856335)
    assert row["signature_id"] == "2001569" and row["severity"] == "low" and row["dst_port"] == 445
    assert sink.skip_counts == Counter({"other event type": 1})
    # The same objects as `jq -c -s` (one line) and as `jq .` (no array).
    compact = json.dumps(json.loads(PRETTY_ARRAY))
    assert parse(compact).of("net_alerts")[0]["signature"] == row["signature"]
    objects = "\n".join(json.dumps(o, indent=2) for o in json.loads(PRETTY_ARRAY))
    assert parse(objects).of("net_alerts")[0]["ts"] == row["ts"]


def test_truncated_pretty_object_is_counted_and_the_rest_kept() -> None:
    lines = PRETTY_ARRAY.splitlines()
    cut = "\n".join(lines[:8])  # an object cut short by the end of the file
    sink = parse(cut)
    assert sink.records == 0 and sink.skip_counts == Counter({"truncated JSON object": 1})
    assert sink.skips[0].line == 2
    # An object cut short, then NDJSON records: the records survive.
    sink = parse("\n".join([*lines[1:8], ALERT, FLOW_EPOCH]))
    assert len(sink.of("net_alerts")) == 1 and len(sink.of("flows")) == 1
    assert sink.skip_counts == Counter({"truncated JSON object": 1}) and sink.skips[0].line == 1


def test_bad_records_are_counted_with_line_numbers_and_never_raise() -> None:
    bad = [
        ALERT[:120],  # 1 truncated line
        '{"event_type":"alert","src_ip":"1.2.3.4","dest_ip":"5.6.7.8","alert":{"signature":"x"}}',  # 2 no time
        '{"timestamp":"2017-13-45T99:00:00+0000","event_type":"flow","src_ip":"1.2.3.4","dest_ip":"5.6.7.8",'
        '"flow":{"start":"garbage"}}',  # 3 bad times
        '{"timestamp":"2017-04-07T22:24:37+0100","event_type":"alert","dest_ip":"5.6.7.8","alert":{}}',  # 4 no src
        '{"timestamp":"2017-04-07T22:24:37+0100","event_type":"alert","src_ip":"1.2.3.4","dest_ip":"5.6.7.8",'
        '"alert":{"severity":1}}',  # 5 no signature
        '{"timestamp":"2017-04-07T22:24:37+0100","event_type":"flow","src_ip":"1.2.3.4","dest_ip":"5.6.7.8"}',  # 6
        '{"timestamp":"2017-04-07T22:24:37+0100","src_ip":"1.2.3.4"}',  # 7 no event_type
        "[1, 2]",  # 8 two values that are not objects
        "not json at all",  # 9
        "[" * 100_000,  # 10 nesting deeper than the JSON decoder's recursion limit
        '{"timestamp":"2017-04-07T22:24:37+0100","event_type":"flow","src_ip":"1.2.3.4","dest_ip":"5.6.7.8",'
        '"src_port":99999999,"dest_port":-1,"proto":"BOGUS","flow":{"bytes_toserver":1e400,"state":"new"}}',  # 11
        ALERT,  # 12
    ]
    sink = parse("\n".join(bad))
    assert sink.skip_counts == Counter(
        {
            "truncated or malformed JSON": 2,
            "no readable timestamp": 2,
            "no src_ip/dest_ip": 1,
            "alert without signature": 1,
            "flow without flow object": 1,
            "no event_type": 1,
            "JSON value is not an object": 2,
            "not JSON": 1,
        }
    )
    assert sorted({s.line for s in sink.skips}) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    (odd,) = sink.of("flows")  # out-of-range values become nulls, the row stays
    assert odd["line"] == 11 and odd["src_port"] is None and odd["dst_port"] is None and odd["proto"] is None
    assert odd["bytes_out"] is None and odd["action"] == "new"
    assert sink.of("net_alerts")[0]["line"] == 12


def test_no_zone_is_local_time_and_said_so() -> None:
    line = ALERT.replace("+0100", "")
    sink = parse(line)
    assert sink.of("net_alerts")[0]["ts"] == datetime(2017, 4, 7, 22, 24, 37, 251547)
    assert sink.meta["local_time"] is True


def test_sensor_name_ipv6_and_proto_numbers() -> None:
    line = (
        '{"timestamp":"2020-05-19T18:00:39.016985+0200","event_type":"alert","host":"ids-core-1",'
        '"src_ip":"fe80:0000:0000:0000:0000:0000:0000:0001","src_port":445,"dest_ip":"2001:0db8::0001",'
        '"dest_port":50000,"proto":"006","alert":{"signature":"x","signature_id":1,"severity":4,"action":"blocked"}}'
    )
    (row,) = parse(line).of("net_alerts")
    assert row["host"] == "ids-core-1" and row["src_ip"] == "fe80::1" and row["dst_ip"] == "2001:db8::1"
    assert row["proto"] == 6 and row["severity"] == "info" and row["action"] == "blocked"
    assert row["ts"] == datetime(2020, 5, 19, 16, 0, 39, 16985)


def test_syslog_wrapped_eve_takes_the_sensor_from_the_header() -> None:
    sink = parse("<14>Apr  7 22:24:37 sensor01 suricata[1234]: " + ALERT)
    (row,) = sink.of("net_alerts")
    assert row["host"] == "sensor01" and row["signature_id"] == "2018358"


def test_sniff_claims_eve_and_not_zeek_json() -> None:
    assert suricata.sniff(ALERT + "\n" + FLOW_EPOCH) >= 0.9
    assert suricata.sniff(PRETTY_ARRAY) >= 0.9
    zeek = '{"@stream":"conn","ts":"2020-04-30T20:00:00Z","id.orig_h":"10.0.1.4","id.resp_h":"10.0.1.5","x":1}'
    assert suricata.sniff(zeek) == 0.0
    assert suricata.sniff('{"a": 1}\n') == 0.0
    assert suricata.sniff("#Fields: date time action protocol src-ip dst-ip\n") == 0.0
    for text in (ALERT + "\n" + FLOW_EPOCH + "\n", PRETTY_ARRAY):
        found = detect_head(text.encode(), complete=True)
        assert found.format is not None and found.format.name == "suricata"
    assert FORMATS["suricata"].host_evidence is False


def test_same_rows_in_every_encoding() -> None:
    text = "\n".join([ALERT, FLOW_EPOCH, *SMB_LINES]) + "\n"
    assert_same_in_every_encoding(suricata.parse_text, text, "net_alerts", "suricata")


def test_parse_file_matches_parse_text_and_offsets_point_at_lines(tmp_path: Path) -> None:
    text = "\n".join([ALERT, "", FLOW_EPOCH, "garbage", *SMB_LINES]) + "\n"
    path = tmp_path / "eve.json"
    path.write_bytes(text.encode())
    sink = MemorySink()
    suricata.parse_file(path, sniff_encoding(text.encode()), sink)
    mem = parse(text)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "offset"} for r in rows]  # noqa: E731
    for kind in ("net_alerts", "flows", "smb"):
        assert strip(sink.of(kind)) == strip(mem.of(kind))
    assert sink.skip_counts == mem.skip_counts
    raw = path.read_bytes()
    for rows in sink.rows.values():
        for r in rows:
            assert raw[r["offset"] :].split(b"\n", 1)[0] == text.split("\n")[r["line"] - 1].encode()


# Real public samples: FrankHassanabad/suricata-sample-data (MIT), a pretty-printed array per file.
CANONICAL = {
    "ETERNALBLUE": "exploit",
    "DOUBLEPULSAR": "implant",
    "Unusual Port 445 traffic": "scan",
    "Unusual Port 139 traffic": "scan",
}
UNRELATED = re.compile(r"Unusual Port (135|1433) traffic|IRC")


def _real(shared_data: Path) -> dict[str, MemorySink]:
    out = {}
    for path in sorted((shared_data / "suricata").glob("*/alerts-only.json")):
        sink = MemorySink()
        raw = path.read_bytes()
        found = detect_head(raw[:65536], complete=len(raw) <= 65536)
        assert found.format is not None and found.format.name == "suricata", path
        suricata.parse_file(path, found.encoding, sink)
        out[path.parent.name] = sink
    return out


def test_real_samples_parse_completely(shared_data: Path) -> None:
    sinks = _real(shared_data)
    assert set(sinks) == {"wrccdc-2017", "first-org-conf-2015"}
    for name, sink in sinks.items():
        expected = len(json.loads((shared_data / "suricata" / name / "alerts-only.json").read_text()))
        assert len(sink.of("net_alerts")) == expected and sink.skipped == 0, name
    first = sinks["wrccdc-2017"].of("net_alerts")[0]
    assert first["ts"] == datetime(2017, 3, 25, 22, 49, 58, 856335)  # -0600 -> UTC
    assert (first["src_ip"], first["src_port"], first["dst_ip"], first["dst_port"]) == (
        "84.92.227.177",
        6668,
        "10.192.19.6",
        57966,
    )
    assert first["signature_id"] == "2000355" and first["severity"] == "low" and first["proto"] == 6


def test_real_worm_signatures_map_to_their_kind_and_others_to_nothing(shared_data: Path) -> None:
    seen_worm = seen_other = 0
    for sink in _real(shared_data).values():
        for row in sink.of("net_alerts"):
            spec = signature_spec(row["signature"], row["signature_id"])
            for needle, kind in CANONICAL.items():
                if needle in row["signature"]:
                    seen_worm += 1
                    assert spec is not None and spec["kind"] == kind, row["signature"]
            if UNRELATED.search(row["signature"]):
                seen_other += 1
                assert spec is None, row["signature"]
    assert seen_worm >= 2 and seen_other >= 3


def test_simulated_outbreak_round_trip(tmp_path: Path) -> None:
    truth, sink = simulate_and_parse(tmp_path, "suricata", "suricata")
    assert [p.name for p in (tmp_path / "network").iterdir()] == ["eve.json"]
    assert sink.skipped == 0 and sink.records == sum(truth["firewall_lines"]["files"].values())
    pz = truth["patient_zero"]["ip"]
    targets: dict[str, set[str]] = {}
    for r in sink.of("flows"):
        if r["dst_port"] == 445:
            targets.setdefault(r["src_ip"], set()).add(r["dst_ip"])
    assert len(targets[pz]) >= 25
    kinds = Counter()
    for r in sink.of("net_alerts"):
        spec = signature_spec(r["signature"], r["signature_id"])
        assert spec is not None
        kinds[spec["kind"]] += 1
        if spec["kind"] == "exploit":
            assert r["dst_port"] == 445
        else:  # the DOUBLEPULSAR beacon response comes back from the victim's 445
            assert r["src_port"] == 445
    assert kinds["exploit"] >= 1 and kinds["implant"] == kinds["exploit"]
    exploiters = {r["src_ip"] for r in sink.of("net_alerts") if r["dst_port"] == 445}
    assert pz in exploiters
    assert all(r["host"] and r["ts"].year == 2018 for r in sink.of("flows")[:100])
    failed = [r for r in sink.of("flows") if r["dst_port"] == 445 and r["src_ip"] == pz and r["bytes_in"] == 0]
    assert failed and all(r["action"] == "new" for r in failed)


# Properties: whatever the lines hold, nothing raises and every non-blank line is a record or a skip.
GOOD = [ALERT, FLOW_EPOCH, DNS, FLOW_NO_ANSWER, FLOW_RST, *SMB_LINES]
STRUCTURAL = {"{", "[", "]", "],"}
FAST = fast(80)


def _line(draw: st.DrawFn) -> str:
    base = draw(st.sampled_from(GOOD))
    mode = draw(st.sampled_from(["keep", "cut", "junk", "splice"]))
    if mode == "keep":
        return base
    if mode == "cut":
        return base[: draw(st.integers(1, len(base) - 1))]
    text = draw(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=60))
    if mode == "junk":
        return text
    at = draw(st.integers(0, len(base)))
    return base[:at] + text + base[at:]


@st.composite
def eve_lines(draw: st.DrawFn) -> list[str]:
    lines = draw(st.lists(st.composite(lambda d: _line(d))(), max_size=12))
    # A lone `{` or `[` opens a pretty-printed object or array: a different (multi-line) reading.
    return [x for x in lines if x.strip() not in STRUCTURAL and not x.strip().startswith("[")]


@FAST
@given(lines=eve_lines())
def test_every_line_is_a_record_or_a_skip(lines: list[str]) -> None:
    sink = parse("\n".join(lines))
    assert sink.records + sink.skipped == sum(1 for x in lines if x.strip())
    assert all(1 <= s.line <= len(lines) for s in sink.skips)


@FAST
@given(data=st.binary(max_size=2000))
def test_random_bytes_never_raise(data: bytes) -> None:
    from wormhunt.sources.text import decode

    text = decode(data).text
    sink = parse(text)
    assert sink.skipped <= text.count("\n") + 1


@pytest.mark.parametrize("cut", [1, 10, 50, 200])
def test_pretty_array_cut_anywhere_never_raises(cut: int) -> None:
    sink = parse(PRETTY_ARRAY[:-cut])
    assert sink.records + sink.skipped >= 1
