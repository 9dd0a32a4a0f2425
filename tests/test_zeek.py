"""Zeek logs, TSV and JSON: header blocks, escapes, unset/empty, layouts, bad lines, real files."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ROOT
from tests.netlog_helpers import fast, parse_with
from wormhunt.sources import FORMATS, zeek
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_head
from wormhunt.sources.text import sniff_encoding

REFERENCE = Path(os.environ.get("WORMHUNT_SHARED_REFERENCE", ROOT.parent / "shared" / "reference"))

T = "\t"


def header(path: str, fields: str, types: str | None = None) -> str:
    names = fields.split()
    return "\n".join(
        [
            "#separator \\x09",
            "#set_separator\t,",
            "#empty_field\t(empty)",
            "#unset_field\t-",
            f"#path\t{path}",
            "#open\t2017-05-12-08-00-00",
            "#fields\t" + T.join(names),
            "#types\t" + T.join((types or " ".join("string" for _ in names)).split()),
        ]
    )


CONN_FIELDS = (
    "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration orig_bytes resp_bytes conn_state "
    "local_orig local_resp missed_bytes history orig_pkts orig_ip_bytes resp_pkts resp_ip_bytes tunnel_parents"
)
CONN_ROWS = [
    "1494576000.123456\tC1\t10.1.1.5\t49200\t10.1.1.9\t445\ttcp\t-\t3.000012\t0\t0\tS0\tT\tT\t0\tS\t3\t156\t0\t0\t-",
    "1494576001.5\tC2\t10.1.1.5\t49201\t10.1.1.10\t445\ttcp\tsmb,gssapi\t12.9\t4060\t1681\tSF\tT\tT\t0\tShADadFf"
    "\t12\t1307\t11\t2133\t(empty)",
    "1494576002.000001\tC3\t10.1.1.5\t53000\t8.8.8.8\t53\tudp\tdns\t-\t-\t-\tSHR\tT\tF\t0\t^d\t0\t0\t1\t62\t-",
    "1494576003\tC4\tfe80::1\t0\tff02::1\t0\ticmp\t-\t-\t-\t-\tOTH\tF\tF\t0\t-\t1\t40\t0\t0\t-",
    "1494576004.25\tC5\t10.1.1.5\t49202\t10.1.1.11\t445\ttcp\t-\t-\t0\t0\tREJ\tT\tT\t0\tSr\t1\t52\t1\t40\t-",
]
CONN = header("conn", CONN_FIELDS) + "\n" + "\n".join(CONN_ROWS) + "\n#close\t2017-05-12-09-00-00\n"

SMB_MAPPING_FIELDS = "ts uid id.orig_h id.orig_p id.resp_h id.resp_p path service native_file_system share_type"
SMB_MAPPING = (
    header("smb_mapping", SMB_MAPPING_FIELDS)
    + "\n1494576010.000000\tC6\t10.1.1.5\t49210\t10.1.1.9\t445\t\\\\\\\\10.1.1.9\\\\IPC$\t-\t-\tPIPE"
    + "\n1494576011.000000\tC6\t10.1.1.5\t49210\t10.1.1.9\t445\t\\\\\\\\10.1.1.9\\\\C$\t-\tNTFS\tDISK\n"
)
# Oldest layout (no prev_name) and newest (prev_name plus data_offset_req ...), moved columns.
SMB_FILES_OLD = (
    header(
        "smb_files",
        "ts uid id.orig_h id.orig_p id.resp_h id.resp_p fuid action path name size times.modified times.accessed "
        "times.created times.changed",
    )
    + "\n1494576020.0\tC6\t10.1.1.5\t49210\t10.1.1.9\t445\t-\tSMB::FILE_OPEN\t\\\\\\\\10.1.1.9\\\\C$\t(empty)\t0"
    "\t-\t-\t-\t-\n"
)
SMB_FILES_NEW = (
    header(
        "smb_files",
        "ts uid id.orig_h id.orig_p id.resp_h id.resp_p fuid action path name size prev_name times.modified "
        "times.accessed times.created times.changed data_offset_req data_len_req data_len_rsp",
    )
    + "\n1494576021.0\tC6\t10.1.1.5\t49210\t10.1.1.9\t445\tFa1\tSMB::FILE_WRITE\t\\\\\\\\10.1.1.9\\\\C$"
    "\tWindows\\\\Temp\\\\tasks\\x09x.exe\t69632\t-\t-\t-\t-\t-\t0\t69632\t0"
    + "\n1494576022.0\tC6\t10.1.1.5\t49210\t10.1.1.9\t445\tFa2\tSMB::FILE_RENAME\t\\\\\\\\10.1.1.9\\\\C$"
    "\tmssecsvc.exe\t0\tx.tmp\t-\t-\t-\t-\t-\t-\t-\n"
)
DCE_RPC = (
    header("dce_rpc", "ts uid id.orig_h id.orig_p id.resp_h id.resp_p rtt named_pipe endpoint operation")
    + "\n1494576030.5\tC7\t10.1.1.5\t49220\t10.1.1.9\t445\t0.001\t\\\\pipe\\\\svcctl\tsvcctl\tCreateServiceW"
    + "\n1494576031.5\tC8\t10.1.1.5\t49221\t10.1.1.9\t49667\t0.001\t49667\tatsvc\tSchRpcRegisterTask\n"
)
NOTICE_FIELDS = (
    "ts uid id.orig_h id.orig_p id.resp_h id.resp_p fuid file_mime_type file_desc proto note msg sub src dst p n "
    "peer_descr actions email_dest suppress_for remote_location.country_code remote_location.region "
    "remote_location.city remote_location.latitude remote_location.longitude"
)
NOTICE = (
    header("notice", NOTICE_FIELDS)
    + "\n1494576040.0\tC9\t10.1.1.5\t49230\t10.1.1.9\t445\t-\t-\t-\ttcp\tEternalSafety::EternalBlue"
    "\tSMBv1 proto violation, possible EternalBlue: 10.1.1.5:49230/tcp to 10.1.1.9:445/tcp\t-\t10.1.1.5\t10.1.1.9"
    "\t445\t-\t-\tNotice::ACTION_LOG\t(empty)\t3600.000000\t-\t-\t-\t-\t-"
    + "\n1494576050.0\t-\t-\t-\t-\t-\t-\t-\t-\t-\tScan::Address_Scan"
    "\t10.1.1.5 scanned at least 25 unique hosts on port 445/tcp in 0m4s\tlocal\t10.1.1.5\t-\t445\t25\t-"
    "\tNotice::ACTION_LOG\t(empty)\t3600.000000\t-\t-\t-\t-\t-\n"
)
DNS = header("dns", "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto query") + (
    "\n1494576060.0\tC10\t10.1.1.5\t5353\t10.1.1.2\t53\tudp\texample.com\n"
)

JSON_LINES = [
    # OTRF: type in @stream, `_` instead of `.` in the keys.
    '{"@stream":"conn","@system":"sensor1","ts":1588205198.90335,"uid":"Cb","id_orig_h":"10.0.1.4",'
    '"id_orig_p":60595,"id_resp_h":"10.0.0.4","id_resp_p":445,"proto":"tcp","service":"krb,smb,gssapi",'
    '"duration":10.706616878509521,"orig_bytes":4060,"resp_bytes":1681,"conn_state":"RSTO","resp_pkts":11}',
    # Plain LogAscii::use_json with ISO timestamps: type from the keys.
    '{"ts":"2020-04-30T00:12:01.659592Z","uid":"C6","id.orig_h":"10.0.1.4","id.orig_p":60624,'
    '"id.resp_h":"10.0.0.4","id.resp_p":445,"path":"\\\\\\\\NEWYORK\\\\IPC$","share_type":"PIPE"}',
    # Nested id object, _path.
    '{"_path":"dce_rpc","ts":1588205520.96246,"uid":"CD","id":{"orig_h":"10.0.1.4","orig_p":60620,'
    '"resp_h":"10.0.0.4","resp_p":135},"rtt":0.0009,"named_pipe":"135","endpoint":"epmapper","operation":"ept_map"}',
    '{"ts":1588205530.0,"note":"Scan::Address_Scan","msg":"10.0.1.4 scanned at least 25 unique hosts",'
    '"src":"10.0.1.4","p":445,"actions":["Notice::ACTION_LOG"],"suppress_for":3600.0}',
    '{"ts":1588205521.663758,"uid":"C6","id.orig_h":"10.0.1.4","id.orig_p":60624,"id.resp_h":"10.0.0.4",'
    '"id.resp_p":445,"action":"SMB::FILE_OPEN","path":"\\\\\\\\NEWYORK\\\\sysvol","name":"a\\\\gpt.ini","size":22,'
    '"times_modified":1588187906.664602}',
]
EVE = (
    '{"timestamp":"2017-04-07T22:24:37.251547+0100","flow_id":586497171462735,"event_type":"alert",'
    '"src_ip":"192.168.2.14","src_port":50096,"dest_ip":"209.53.113.5","dest_port":80,"proto":"TCP"}'
)


def parse(text: str) -> MemorySink:
    return parse_with(zeek.parse_text, text)


def parse_json(text: str) -> MemorySink:
    sink = MemorySink()
    zeek.parse_json_text(text, sink)
    return sink


def parse_path(path: Path) -> MemorySink:
    raw = path.read_bytes()
    det = detect_head(raw[:65536], complete=len(raw) <= 65536)
    assert det.format is not None, path
    sink = MemorySink()
    det.format.parse_file(path, det.encoding, sink)  # type: ignore[misc]
    return sink


# --- TSV ---------------------------------------------------------------------------------


def test_conn_fields_units_and_nulls() -> None:
    sink = parse(CONN)
    assert sink.skipped == 0
    rows = sink.of("flows")
    assert [r["line"] for r in rows] == [9, 10, 11, 12, 13]
    s0, sf, dns, icmp, rej = rows
    assert s0["ts"] == datetime(2017, 5, 12, 8, 0, 0, 123456)
    assert (s0["src_ip"], s0["src_port"], s0["dst_ip"], s0["dst_port"]) == ("10.1.1.5", 49200, "10.1.1.9", 445)
    assert s0["proto"] == 6 and s0["action"] == "S0" and s0["service"] is None and s0["duration"] == 3
    assert s0["bytes_out"] == 0 and s0["bytes_in"] == 0 and s0["pkts_in"] == 0
    assert s0["vendor"] == "zeek" and s0["host"] is None and s0["offset"] is None
    assert sf["ts"] == datetime(2017, 5, 12, 8, 0, 1, 500000) and sf["service"] == "smb,gssapi"
    assert (sf["bytes_out"], sf["bytes_in"], sf["pkts_in"], sf["duration"]) == (4060, 1681, 11, 12)
    assert dns["proto"] == 17 and dns["duration"] is None and dns["bytes_out"] is None and dns["action"] == "SHR"
    assert icmp["proto"] == 1 and icmp["src_ip"] == "fe80::1" and icmp["ts"] == datetime(2017, 5, 12, 8, 0, 3)
    assert rej["action"] == "REJ"


def test_small_logs_unescape_and_map_to_smb() -> None:
    sink = parse(SMB_MAPPING + SMB_FILES_OLD + SMB_FILES_NEW + DCE_RPC)
    assert sink.skipped == 0
    rows = sink.of("smb")
    assert [(r["activity"], r["path"], r["name"], r["action"]) for r in rows] == [
        ("tree_connect", "\\\\10.1.1.9\\IPC$", None, "PIPE"),
        ("tree_connect", "\\\\10.1.1.9\\C$", None, "DISK"),
        ("file", "\\\\10.1.1.9\\C$", None, "SMB::FILE_OPEN"),  # (empty) name
        ("file", "\\\\10.1.1.9\\C$", "Windows\\Temp\\tasks\tx.exe", "SMB::FILE_WRITE"),  # \x09 inside a name
        ("file", "\\\\10.1.1.9\\C$", "mssecsvc.exe", "SMB::FILE_RENAME"),
        ("rpc", "\\pipe\\svcctl", "CreateServiceW", "svcctl"),
        ("rpc", "49667", "SchRpcRegisterTask", "atsvc"),  # named_pipe holds a TCP port
    ]
    assert rows[-1]["dst_port"] == 49667 and rows[0]["ts"] == datetime(2017, 5, 12, 8, 0, 10)
    assert all(r["vendor"] == "zeek" and r["src_ip"] == "10.1.1.5" for r in rows)


def test_notices_become_alerts_that_the_knowledge_recognises() -> None:
    from wormhunt.analyze.network import signature_spec

    sink = parse(NOTICE)
    assert sink.skipped == 0
    eb, scan = sink.of("net_alerts")
    assert eb["signature"] == "EternalSafety::EternalBlue" and eb["signature_id"] is None and eb["severity"] is None
    assert (eb["src_ip"], eb["src_port"], eb["dst_ip"], eb["dst_port"], eb["proto"]) == (
        "10.1.1.5",
        49230,
        "10.1.1.9",
        445,
        6,
    )
    assert eb["action"] == "Notice::ACTION_LOG" and eb["ts"] == datetime(2017, 5, 12, 8, 0, 40)
    # A scan notice has no connection: the scanner is `src`, the port `p`.
    assert scan["signature"] == "Scan::Address_Scan"
    assert (scan["src_ip"], scan["dst_ip"], scan["dst_port"], scan["proto"]) == ("10.1.1.5", None, 445, None)
    assert signature_spec(eb["signature"], None)["kind"] == "exploit"
    assert signature_spec(scan["signature"], None) is not None


def test_several_header_blocks_in_one_file() -> None:
    text = CONN + SMB_MAPPING + NOTICE + CONN + DCE_RPC
    sink = parse(text)
    assert sink.skipped == 0
    assert len(sink.of("flows")) == 10 and len(sink.of("smb")) == 4 and len(sink.of("net_alerts")) == 2
    lines = text.split("\n")
    for kind in ("flows", "smb", "net_alerts"):
        for r in sink.of(kind):  # each row points at its own data line
            assert zeek._time(lines[r["line"] - 1].split("\t")[0]) == r["ts"]
    assert [r["line"] for r in sink.of("flows")] == [i + 1 for i, ln in enumerate(lines) if ln in CONN_ROWS]


def test_columns_follow_the_fields_header_not_positions() -> None:
    fields = "uid ts id.resp_h id.resp_p id.orig_h id.orig_p conn_state proto extra"
    text = header("conn", fields) + "\n" + "Cx\t1494576000.0\t10.0.0.2\t445\t10.0.0.1\t50000\tS0\ttcp\tzz\n"
    (row,) = parse(text).of("flows")
    assert (row["src_ip"], row["src_port"], row["dst_ip"], row["dst_port"]) == ("10.0.0.1", 50000, "10.0.0.2", 445)
    assert row["action"] == "S0" and row["proto"] == 6 and row["bytes_out"] is None and row["service"] is None


def test_other_separator_and_unset_markers() -> None:
    text = (
        "#separator \\x7c\n#empty_field|EMPTY\n#unset_field|NULL\n#path|conn\n"
        "#fields|ts|id.orig_h|id.orig_p|id.resp_h|id.resp_p|proto|service|conn_state\n"
        "1494576000.0|10.0.0.1|50000|10.0.0.2|445|tcp|NULL|S0\n"
        "1494576000.0|10.0.0.1|50001|10.0.0.3|445|tcp|EMPTY|-\n"
    )
    a, b = parse(text).of("flows")
    assert a["service"] is None and b["service"] is None and b["action"] == "-"  # `-` is data here


def test_bad_lines_are_counted_with_line_numbers() -> None:
    good = CONN_ROWS[1]
    text = "\n".join(
        [
            "1494576000.0\tC0\t10.0.0.1\t1\t10.0.0.2\t445",  # 1: before any header
            header("conn", CONN_FIELDS),  # 2-9
            good,  # 10
            good.replace("\tSF\t", "\t"),  # 11: a field missing
            "XXXXXXXXXX.XXXXXX" + good[good.index("\t") :],  # 12: masked ts (btest baselines)
            good.replace("10.1.1.5", "-", 1),  # 13: unset originator
            "",  # 14: blank
            "   ",  # 15: white space only
            header("dns", "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto query"),  # 16-23
            "1494576060.0\tC10\t10.1.1.5\t5353\t10.1.1.2\t53\tudp\texample.com",  # 24: a log we do not use
            header("smb_mapping", SMB_MAPPING_FIELDS),  # 25-32
            "1494576010.0\tC6\t10.1.1.5\t49210",  # 33: truncated
            "-\tC6\t10.1.1.5\t49210\t10.1.1.9\t445\t-\t-\t-\tPIPE",  # 34: unset ts
            header("notice", NOTICE_FIELDS),  # 35-42
            "1494576050.0" + "\t-" * 25,  # 43: notice without a note
            good[:30],  # 44: truncated last line of a conn row in a notice block
        ]
    )
    sink = parse(text)
    assert len(sink.of("flows")) == 1 and sink.of("smb") == [] and sink.of("net_alerts") == []
    assert {s.line: s.reason for s in sink.skips} == {
        1: zeek.R_NO_HEADER,
        11: zeek.R_FIELDS,
        12: zeek.R_TS,
        13: zeek.R_ADDR,
        24: zeek.unused("dns"),
        33: zeek.R_FIELDS,
        34: zeek.R_TS,
        43: zeek.R_NOTE,
        44: zeek.R_FIELDS,
    }
    data_lines = [ln for ln in text.split("\n") if ln.strip() and not ln.startswith("#")]
    assert sink.records + sink.skipped == len(data_lines)


def test_file_offsets_and_block_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small blocks split header blocks from their data: the header in force carries over."""
    from wormhunt.sources import stream

    text = (CONN + SMB_MAPPING + NOTICE + DCE_RPC) * 20
    path = tmp_path / "conn.log"
    path.write_bytes(text.encode())
    whole = MemorySink()
    zeek.parse_file(path, sniff_encoding(text.encode()), whole)
    orig = stream.iter_blocks
    monkeypatch.setattr(zeek, "iter_blocks", lambda p, e, tap=None: orig(p, e, block_bytes=700, tap=tap))
    small = MemorySink()
    zeek.parse_file(path, sniff_encoding(text.encode()), small)
    assert small.rows == whole.rows and small.skipped == whole.skipped == 0
    assert len(whole.of("flows")) == 100 and len(whole.of("smb")) == 80 and len(whole.of("net_alerts")) == 40
    raw = path.read_bytes()
    for kind in ("flows", "smb", "net_alerts"):
        for r in whole.of(kind):
            start = r["offset"]
            assert raw[start : raw.index(b"\n", start)].decode() == text.split("\n")[r["line"] - 1]
    # Same rows as the in-memory parser, offsets aside.
    mem = parse(text)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "offset"} for r in rows]  # noqa: E731
    assert all(strip(mem.of(k)) == strip(whole.of(k)) for k in ("flows", "smb", "net_alerts"))


@pytest.mark.parametrize("variant", ["utf-16le-bom", "crlf", "gbk"])
def test_encodings_and_line_endings(tmp_path: Path, variant: str) -> None:
    text = CONN + SMB_FILES_NEW.replace("mssecsvc.exe", "病毒.exe")
    raw = {
        "utf-16le-bom": b"\xff\xfe" + text.encode("utf-16-le"),
        "crlf": text.replace("\n", "\r\n").encode("utf-8"),
        "gbk": text.encode("gbk"),
    }[variant]
    path = tmp_path / "mixed.log"
    path.write_bytes(raw)
    det = detect_head(raw, complete=True)
    assert det.format is not None and det.format.name == "zeek"
    sink = MemorySink()
    zeek.parse_file(path, det.encoding, sink)
    assert sink.skipped == 0 and len(sink.of("flows")) == 5
    assert [r["name"] for r in sink.of("smb")][-1] == "病毒.exe"
    assert sink.of("flows")[1]["action"] == "SF"


def test_ingest_into_a_case(tmp_path: Path) -> None:
    from wormhunt.ingest import ingest
    from wormhunt.store import Case

    folder = tmp_path / "zeek"
    folder.mkdir()
    (folder / "conn.log").write_text(CONN)
    (folder / "notice.log").write_text(NOTICE)
    (folder / "smb.log").write_text(SMB_MAPPING + DCE_RPC)
    (folder / "conn.json").write_text("\n".join(JSON_LINES) + "\n")
    with Case(tmp_path / "case") as case:
        entries = ingest(case, [folder])
        assert sorted((e.format, e.records, e.skipped) for e in entries) == [
            ("zeek", 2, 0),
            ("zeek", 4, 0),
            ("zeek", 5, 0),
            ("zeek-json", 5, 0),
        ]
        assert case.count("flows") == 6 and case.count("net_alerts") == 3 and case.count("smb") == 7
        (row,) = case.query("SELECT host, line FROM flows WHERE action = 'RSTO'")
        assert row == {"host": "sensor1", "line": 1}


# --- JSON --------------------------------------------------------------------------------


def test_json_variants() -> None:
    sink = parse_json("\n".join(JSON_LINES) + "\n")
    assert sink.skipped == 0
    (flow,) = sink.of("flows")
    assert flow["host"] == "sensor1" and flow["action"] == "RSTO" and flow["proto"] == 6
    assert flow["ts"] == datetime(2020, 4, 30, 0, 6, 38, 903350) and flow["duration"] == 10
    assert (flow["bytes_out"], flow["bytes_in"], flow["pkts_in"], flow["dst_port"]) == (4060, 1681, 11, 445)
    mapping, rpc, files = sink.of("smb")
    assert mapping["ts"] == datetime(2020, 4, 30, 0, 12, 1, 659592) and mapping["path"] == "\\\\NEWYORK\\IPC$"
    assert (rpc["src_ip"], rpc["dst_port"], rpc["path"], rpc["name"], rpc["action"]) == (
        "10.0.1.4",
        135,
        "135",
        "ept_map",
        "epmapper",
    )
    assert files["activity"] == "file" and files["name"] == "a\\gpt.ini"
    (scan,) = sink.of("net_alerts")
    assert scan["signature"] == "Scan::Address_Scan" and scan["src_ip"] == "10.0.1.4" and scan["dst_port"] == 445
    assert scan["action"] == "Notice::ACTION_LOG" and scan["line"] == 4


def test_json_bad_lines() -> None:
    lines = [
        JSON_LINES[0],
        JSON_LINES[0][:70],  # truncated
        "[1, 2]",
        '{"@stream":"dns","ts":1588205198.1,"query":"x"}',
        '{"ts":1588205198.1,"foo":1}',
        JSON_LINES[0].replace("1588205198.90335", '"yesterday"'),
        JSON_LINES[0].replace('"id_orig_h":"10.0.1.4",', ""),
        JSON_LINES[0].replace("1588205198.90335", "NaN"),
        "[" * 100000,
        "",
    ]
    sink = parse_json("\n".join(lines))
    assert len(sink.of("flows")) == 1
    assert {s.line: s.reason for s in sink.skips} == {
        2: zeek.R_JSON,
        3: zeek.R_OBJECT,
        4: zeek.unused("dns"),
        5: zeek.R_UNKNOWN,
        6: zeek.R_TS,
        7: zeek.R_ADDR,
        8: zeek.R_TS,
        9: zeek.R_JSON,
    }


def test_json_file_keeps_offsets(tmp_path: Path) -> None:
    text = "\n".join(JSON_LINES) + "\n"
    path = tmp_path / "x.log"
    path.write_bytes(text.encode())
    sink = parse_path(path)
    raw = path.read_bytes()
    for kind in ("flows", "smb", "net_alerts"):
        for r in sink.of(kind):
            assert raw[r["offset"] : raw.index(b"\n", r["offset"])].decode() == JSON_LINES[r["line"] - 1]


# --- Detection ---------------------------------------------------------------------------


def test_sniffers_claim_their_own_and_nothing_else() -> None:
    assert zeek.sniff(CONN) == 0.99 and zeek.sniff_json(CONN) == 0.0
    assert zeek.sniff_json("\n".join(JSON_LINES)) >= 0.95 and zeek.sniff("\n".join(JSON_LINES)) == 0.0
    assert zeek.sniff_json(EVE + "\n" + EVE) == 0.0  # Suricata eve.json
    pfirewall = "#Version: 1.5\n#Software: Microsoft Windows Firewall\n#Time Format: Local\n#Fields: date time action\n"
    assert zeek.sniff(pfirewall) == 0.0
    # The header without #separator (hand-cut files) is still Zeek.
    assert zeek.sniff("#path\tconn\n#fields\tts\tuid\n1.0\tC\n") == 0.9
    for name, text in (("zeek", CONN + NOTICE), ("zeek-json", "\n".join(JSON_LINES))):
        det = detect_head(text.encode(), complete=True)
        assert det.format is not None and det.format.name == name
    # Other formats' sniffers do not take Zeek files.
    for fmt in FORMATS.values():
        if fmt.name not in ("zeek", "zeek-json"):
            assert fmt.sniff(CONN) < 0.5 and fmt.sniff("\n".join(JSON_LINES)) < 0.5, fmt.name


# --- Real files --------------------------------------------------------------------------

# Records each real file holds (each of its data lines is one record).
REAL = {
    "apt29-day1-json/SCRANTON_conn.log": ("zeek-json", "flows", 134),
    "apt29-day1-json/SCRANTON_dce_rpc.log": ("zeek-json", "smb", 66),
    "apt29-day1-json/SCRANTON_smb_files.log": ("zeek-json", "smb", 6),
    "apt29-day1-json/SCRANTON_smb_mapping.log": ("zeek-json", "smb", 6),
    "lsass-campaign-01-tsv/conn.log": ("zeek", "flows", 112),
    "lsass-campaign-01-tsv/smb_mapping.log": ("zeek", "smb", 1),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_files_every_line_is_a_record(shared_data: Path, name: str) -> None:
    fmt, kind, expected = REAL[name]
    path = shared_data / "zeek" / name
    raw = path.read_bytes()
    assert detect_head(raw[:65536], complete=len(raw) <= 65536).format.name == fmt  # type: ignore[union-attr]
    data_lines = [ln for ln in raw.decode().split("\n") if ln.strip() and not ln.startswith("#")]
    assert len(data_lines) == expected
    sink = parse_path(path)
    assert sink.skipped == 0 and sink.records == len(sink.of(kind)) == expected
    rows = sink.of(kind)
    assert all(r["ts"] is not None and r["src_ip"] and r["dst_ip"] and r["vendor"] == "zeek" for r in rows)
    assert len({r["line"] for r in rows}) == expected


def test_real_apt29_lateral_movement(shared_data: Path) -> None:
    folder = shared_data / "zeek" / "apt29-day1-json"
    smb = parse_path(folder / "SCRANTON_smb_mapping.log").of("smb")
    assert {r["path"] for r in smb} >= {"\\\\NEWYORK\\IPC$", "\\\\NEWYORK.dmevals.local\\sysvol"}
    assert {r["action"] for r in smb} == {"PIPE", "DISK"}
    rpc = parse_path(folder / "SCRANTON_dce_rpc.log").of("smb")
    assert {"drsuapi", "epmapper"} <= {r["action"] for r in rpc}
    assert all(r["activity"] == "rpc" and r["host"] == "simplerockbuild.simplerock.lan" for r in rpc)
    flows = parse_path(folder / "SCRANTON_conn.log").of("flows")
    assert flows[1]["action"] == "RSTO" and flows[1]["dst_port"] == 445 and flows[1]["duration"] == 10


def test_real_negative_control_has_no_445_fanout(shared_data: Path) -> None:
    flows = parse_path(shared_data / "zeek" / "lsass-campaign-01-tsv" / "conn.log").of("flows")
    targets: dict[str, set[str]] = collections.defaultdict(set)
    for r in flows:
        if r["dst_port"] == 445:
            targets[r["src_ip"]].add(r["dst_ip"])
    assert targets and max(len(t) for t in targets.values()) < 25


@pytest.fixture
def samples() -> Path:
    folder = REFERENCE / "format-samples" / "zeek"
    if not folder.is_dir():
        pytest.skip(f"format samples not present at {folder}")
    return folder


def test_reference_samples(samples: Path) -> None:
    conn = parse_path(samples / "conn.log")
    assert [(r["action"], r["proto"], r["duration"], r["bytes_out"]) for r in conn.of("flows")] == [
        ("SF", 17, 0, 880),
        ("S0", 17, 2, 10416),
    ]
    rpc = parse_path(samples / "dce_rpc_petitpotam.log").of("smb")
    assert [(r["path"], r["name"]) for r in rpc] == [
        ("49677", "DRSUnbind"),
        ("\\pipe\\lsass", "EfsRpcOpenFileRaw"),
        ("49677", "DRSGetNCChanges"),
    ]
    old = parse_path(samples / "smb_files_smb1_zeek-baseline.log").of("smb")
    assert [(r["name"], r["action"], r["path"]) for r in old] == [
        (None, "SMB::UNKNOWN_OPEN", None),
        ("Test", "SMB::UNKNOWN_OPEN", None),
    ]
    # btest masks the times (XXXXXXXXXX.XXXXXX): those lines are unusable, and say so.
    for name in ("smb_files_smb2_zeek-baseline.log", "smb_mapping_zeek-baseline.log"):
        sink = parse_path(samples / name)
        assert sink.records == 0 and sink.skip_counts == {zeek.R_TS: 2}


def test_reference_samples_with_times_filled_in(samples: Path) -> None:
    text = (samples / "smb_files_smb2_zeek-baseline.log").read_text() + (
        samples / "smb_mapping_zeek-baseline.log"
    ).read_text()
    sink = parse(text.replace("XXXXXXXXXX.XXXXXX", "1494576000.000000"))
    assert sink.skipped == 0
    assert [(r["activity"], r["path"], r["name"], r["action"]) for r in sink.of("smb")] == [
        ("file", "\\\\10.0.0.12\\smb2", "<share_root>", "SMB::FILE_OPEN"),
        ("file", "\\\\10.0.0.12\\smb2", "WP_SMBPlugin.pdf", "SMB::FILE_OPEN"),
        ("tree_connect", "\\\\10.0.0.12\\smb2", None, "DISK"),
        ("tree_connect", "\\\\10.0.0.12\\IPC$", None, "PIPE"),
    ]


# --- Simulator ---------------------------------------------------------------------------


def test_simulated_zeek_logs_round_trip(tmp_path: Path) -> None:
    from wormhunt.analyze.network import signature_spec
    from wormhunt.simulate import simulate

    truth = simulate(tmp_path / "s", hosts=30, days=1, lines=3000, net_format="zeek")
    net = tmp_path / "s" / "network"
    conn = parse_path(net / "conn.log")
    notice = parse_path(net / "notice.log")
    assert conn.skipped == 0 and notice.skipped == 0
    flows = conn.of("flows")
    assert len(flows) == truth["firewall_lines"]["traffic"]
    assert len(notice.of("net_alerts")) == truth["firewall_lines"]["alerts"] > 0
    p0 = truth["patient_zero"]["ip"]
    targets: dict[str, set[str]] = collections.defaultdict(set)
    for r in flows:
        if r["dst_port"] == 445:
            targets[r["src_ip"]].add(r["dst_ip"])
    assert len(targets[p0]) >= 25
    states = collections.Counter(r["action"] for r in flows)
    assert states["SF"] and states["S0"] and set(states) <= {"SF", "S0", "REJ", "RSTR"}
    kinds = collections.Counter(signature_spec(a["signature"], None)["kind"] for a in notice.of("net_alerts"))
    assert set(kinds) == {"exploit", "implant"} and kinds["exploit"] == kinds["implant"]
    infected_ips = {h["ip"] for h in truth["hosts"] if h["infected"]}
    assert {a["dst_ip"] for a in notice.of("net_alerts")} <= infected_ips
    assert {a["src_ip"] for a in notice.of("net_alerts")} <= infected_ips


# --- Properties --------------------------------------------------------------------------

FAST = fast(80)
DOC = CONN + SMB_FILES_NEW + NOTICE + DCE_RPC


def data_line_count(text: str) -> int:
    return sum(1 for ln in text.split("\n") if ln.strip(" \t\r") and not ln.startswith("#"))


@FAST
@given(data=st.data())
def test_mutated_tsv_never_raises_and_every_line_is_accounted_for(data: st.DataObject) -> None:
    lines = DOC.split("\n")
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        cut = data.draw(st.integers(0, len(line)))
        junk = data.draw(st.text(alphabet="\t\\x09-#(empty). abc:\r", max_size=8))
        lines[i] = data.draw(st.sampled_from([line[:cut], line[:cut] + junk + line[cut:], junk + line[cut:]]))
    text = "\n".join(lines)
    sink = parse(text)
    assert sink.records + sink.skipped == data_line_count(text)
    assert all(s.line >= 1 for s in sink.skips)


@FAST
@given(raw=st.binary(max_size=2000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    from wormhunt.sources.text import decode

    text = decode(raw).text
    for prefix in ("", header("conn", CONN_FIELDS) + "\n", header("smb_files", "ts id.orig_h id.resp_h name") + "\n"):
        sink = parse(prefix + text)
        assert sink.records + sink.skipped == data_line_count(prefix + text)
        sink = parse_json(text)  # lines are read as the decoder gives them: NUL padding stripped
        assert sink.records + sink.skipped == sum(1 for ln in text.split("\n") if ln.rstrip("\x00\u3000").strip())


@FAST
@given(data=st.data())
def test_mutated_json_never_raises(data: st.DataObject) -> None:
    lines = list(JSON_LINES)
    i = data.draw(st.integers(0, len(lines) - 1))
    cut = data.draw(st.integers(0, len(lines[i])))
    junk = data.draw(st.text(alphabet='{}[]":,\\ 0123456789.-eE', max_size=10))
    lines[i] = lines[i][:cut] + junk + lines[i][cut:]
    sink = parse_json("\n".join(lines))
    assert sink.records + sink.skipped == sum(1 for ln in lines if ln.strip())
    assert sink.records >= len(lines) - 1


def test_compiled_kernels_stay_in_bounds(tmp_path: Path) -> None:
    """Fuzz the TSV path with numba bounds checking compiled in (an out-of-bounds read raises)."""
    script = textwrap.dedent(
        f"""
        import random
        from wormhunt.sources import zeek
        from wormhunt.sources.base import MemorySink
        rng = random.Random(11)
        base = {json.dumps(CONN + NOTICE)}
        alphabet = '\\t\\r\\n#-.0123456789abc\\\\'
        for i in range(150):
            s = list(base)
            for _ in range(rng.randint(1, 40)):
                pos = rng.randrange(len(s))
                op = rng.random()
                if op < 0.4:
                    s[pos] = rng.choice(alphabet)
                elif op < 0.7:
                    del s[pos]
                else:
                    s.insert(pos, rng.choice(alphabet))
            zeek.parse_text(''.join(s)[: rng.randint(0, len(s))], MemorySink())
        print('ok')
        """
    )
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"
