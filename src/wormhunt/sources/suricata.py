"""Suricata EVE JSON: `alert` -> net_alerts, `flow` -> flows, `smb` -> smb (formats.md section 9.9).

EVE is one JSON object a line (NDJSON), dispatched on `event_type`. Also read: the same
objects pretty-printed (`jq .` output, or a JSON array of them as in published sample
sets), a JSON array on one line (`jq -c -s`), and lines behind a syslog header
(`eve-log: type: syslog`). Every unusable line or object is counted with its reason.

Values written:
* times: the zone printed (`+0100`, no colon) is applied, so rows hold naive UTC; a flow's
  `timestamp` can be the epoch rendered in local time (pcap / timeout pseudo packets), so
  flows take `flow.start`, and other events fall back to it when their time is before 1980.
* flows: bytes_out = bytes_toserver, bytes_in = bytes_toclient, pkts_in = pkts_toclient,
  duration = flow.end - flow.start in whole seconds (else `age`), service = app_proto
  (`failed` -> null), action = flow.state (`new`, `established`, `closed`, `bypassed`),
  except `reset` when the server answered a TCP flow only with RST (no SYN-ACK): Suricata
  has no word for a refused connection, and a scanner meets many.
* alerts: signature, signature_id (text), severity 1/2/3 -> high/medium/low (4+ -> info,
  the words the other IPS parsers store), action as printed (`allowed` / `blocked`).
* smb: tree connects (path = share, action = share type with Suricata's FILE spelled DISK
  as Zeek does), file opens/reads/writes (name = file name, action = SMB::FILE_*),
  DCE-RPC over SMB (name = operation, e.g. CreateServiceW; action = endpoint, e.g.
  svcctl; path = the named pipe opened earlier on the same flow when seen).
* host = the sensor name (`host` key, else the syslog header's host), else null.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from wormhunt.model import FLOWS, NET_ALERTS, SMB
from wormhunt.sources.base import Format, Sink
from wormhunt.sources.netlog import file_lines, proto_number, record, short_ip, text_lines
from wormhunt.sources.syslog import split_header
from wormhunt.sources.text import Encoding, iter_lines
from wormhunt.timeparse import Stamp, parse_iso_stamp

VENDOR = "suricata"
SEVERITY = {1: "high", 2: "medium", 3: "low"}
INT64_MAX = 2**63 - 1
# Before this a time is the epoch rendered in local time (a pseudo packet), not a real one.
EPOCH_JUNK = datetime(1980, 1, 1)
# A pretty-printed object longer than this is not one EVE record: give up on it.
MAX_OBJECT_LINES = 20_000
MAX_OBJECT_CHARS = 4 * 1024 * 1024
# Flows whose SMB pipe names and RPC binds are remembered (named pipe -> later RPC calls).
MAX_TRACKED_FLOWS = 50_000

# DCE-RPC interfaces a worm or an operator uses over SMB: endpoint name and operations.
RPC_INTERFACES: dict[str, tuple[str, dict[int, str]]] = {
    "367abb81-9844-35f1-ad32-98f038001003": (
        "svcctl",
        {
            0: "CloseServiceHandle",
            1: "ControlService",
            2: "DeleteService",
            11: "ChangeServiceConfigW",
            12: "CreateServiceW",
            15: "OpenSCManagerW",
            16: "OpenServiceW",
            19: "StartServiceW",
            24: "CreateServiceA",
            27: "OpenSCManagerA",
            28: "OpenServiceA",
            31: "StartServiceA",
        },
    ),
    "1ff70682-0a51-30e8-076d-740be8cee98b": ("atsvc", {0: "NetrJobAdd", 1: "NetrJobDel", 2: "NetrJobEnum"}),
    "86d35949-83c9-4044-b424-db363231fd0c": (
        "ITaskSchedulerService",
        {1: "SchRpcRegisterTask", 12: "SchRpcRun", 14: "SchRpcGetTaskInfo"},
    ),
    "4b324fc8-1670-01d3-1278-5a47bf6ee188": ("srvsvc", {15: "NetrShareEnum", 16: "NetrShareGetInfo"}),
    "6bffd098-a112-3610-9833-46c3f87e345a": ("wkssvc", {}),
    "338cd001-2244-31f1-aaaa-900038001003": ("winreg", {}),
    "12345778-1234-abcd-ef00-0123456789ab": ("lsarpc", {}),
    "12345778-1234-abcd-ef00-0123456789ac": ("samr", {}),
    "e3514235-4b06-11d1-ab04-00c04fc2dcd2": ("drsuapi", {3: "DRSGetNCChanges"}),
    "12345678-1234-abcd-ef00-01234567cffb": ("netlogon", {}),
}
# Pipe names as Suricata prints them (`svcctl`, `\PIPE\svcctl`) -> endpoint.
PIPES = {name.lower(): name for name, _ in RPC_INTERFACES.values()}

_ZEEKISH = re.compile(r'"(?:@stream|id\.orig_h|id\.resp_h|_path)"\s*:')
_EVENT_KEY = re.compile(r'"event_type"\s*:\s*"[a-z_0-9]+"')
_EVE_KEYS = re.compile(r'"(?:timestamp|src_ip|dest_ip|flow_id|in_iface|pcap_cnt)"\s*:')
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def sniff(head: str) -> float:
    """EVE records carry `event_type` and the common keys; Zeek JSON (`@stream`, `id.orig_h`) does not."""
    sample = head[:65536]
    if _ZEEKISH.search(sample) or not _EVENT_KEY.search(sample) or not _EVE_KEYS.search(sample):
        return 0.0
    first = next((line.strip() for _, line in iter_lines(sample) if line.strip()), "")
    if first.startswith(("{", "[")):
        return 0.97
    if '{"timestamp"' in first or '{"event_type"' in first:
        return 0.9  # behind a syslog header
    return 0.3


def parse_file(path: Path, encoding: Encoding, sink: Sink) -> None:
    """Stream an EVE file (bounded memory: one line, or one pretty-printed object, at a time)."""
    _parse(file_lines(path, encoding, sink), sink)


def parse_text(text: str, sink: Sink) -> None:
    """Same parser over text already in memory (small files, tests)."""
    _parse(text_lines(text), sink)


def _depth(line: str) -> int:
    """Net `{`/`[` minus `}`/`]` on a line, outside strings (JSON strings never span lines)."""
    bare = _STRING.sub("", line) if '"' in line else line
    return bare.count("{") + bare.count("[") - bare.count("}") - bare.count("]")


def _objects(lines: Iterable[tuple[int, int, str]], sink: Sink) -> Iterator[tuple[int, int, Any, str]]:
    """(line, offset, decoded JSON value, raw text) of each record; bad ones go to sink.skip."""
    buf: list[str] = []
    start = (0, -1)
    size = depth = 0
    in_array = False
    for n, off, raw in lines:
        text = raw.strip()
        if buf:
            # A complete one-line object inside an unfinished pretty one: that one was cut short.
            if text.startswith('{"') and _depth(text) == 0 and text.rstrip(",").endswith("}"):
                sink.skip(start[0], "truncated JSON object", "\n".join(buf)[:300])
                buf, depth, size = [], 0, 0
            else:
                buf.append(text)
                size += len(text)
                depth += _depth(text)
                if depth <= 0:
                    joined = "\n".join(buf).rstrip().rstrip(",")
                    buf, size = [], 0
                    yield (*start, _loads(joined), joined)
                elif len(buf) > MAX_OBJECT_LINES or size > MAX_OBJECT_CHARS:
                    sink.skip(start[0], "JSON object too long", buf[0][:300])
                    buf, depth, size = [], 0, 0
                continue
        if not text:
            continue
        if text == "{":  # opens a pretty-printed object (`jq .`, json.dumps(indent=...))
            buf, start, depth, size = [text], (n, off), 1, 1
            continue
        if text.startswith("{"):  # NDJSON, the common case
            yield n, off, _loads(text.rstrip(",")), text
            continue
        if text == "[" and not in_array:
            in_array = True
            continue
        if text in ("]", "],") and in_array:
            in_array = False
            continue
        if text.startswith("["):  # a whole array on one line
            value = _loads(text.rstrip(","))
            if isinstance(value, list):
                for item in value:
                    yield n, off, item, text
            else:
                sink.skip(n, "truncated or malformed JSON", raw)
            continue
        # A syslog header in front of the JSON (eve-log type syslog).
        brace = text.find("{")
        if brace > 0:
            value = _loads(text[brace:])
            if isinstance(value, dict):
                if not isinstance(value.get("host"), str):
                    host = split_header(text[:brace], 2000).host
                    if host:
                        value["host"] = host.rstrip(":")
                yield n, off, value, text
                continue
        sink.skip(n, "not JSON", raw)
    if buf:
        sink.skip(start[0], "truncated JSON object", "\n".join(buf)[:300])


_BAD: Any = object()


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _BAD


def _int(value: Any, limit: int = INT64_MAX) -> int | None:
    """A non-negative integer (JSON number or digit string) up to `limit`, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= limit else None
    if isinstance(value, float) and value.is_integer():
        return _int(int(value), limit)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        return _int(int(value), limit)
    return None


def _str(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a `\\ud800` escape
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _ip(value: Any) -> str | None:
    text = _str(value)
    return short_ip(text) if text else text  # Suricata prints IPv6 fully expanded


def _stamp(value: Any) -> Stamp | None:
    return parse_iso_stamp(value) if isinstance(value, str) else None


class _State:
    """What one file's parse remembers across records: flows' pipes and RPC binds, local-time use."""

    def __init__(self) -> None:
        self.pipes: dict[Any, str] = {}  # (flow_id, tree_id) -> pipe file name
        self.binds: dict[Any, str] = {}  # flow_id -> interface uuid of the last accepted bind
        self.local_time = False

    def remember(self, table: dict[Any, str], key: Any, value: str) -> None:
        if len(table) >= MAX_TRACKED_FLOWS:
            table.clear()  # bounded memory; only a long-lived flow loses its pipe name
        table[key] = value


def _parse(lines: Iterable[tuple[int, int, str]], sink: Sink) -> None:
    state = _State()
    for n, off, value, raw in _objects(lines, sink):
        if value is _BAD:
            sink.skip(n, "truncated or malformed JSON", raw)
            continue
        if not isinstance(value, dict):
            sink.skip(n, "JSON value is not an object", raw)
            continue
        reason = _record(value, n, off, state, sink)
        if reason:
            sink.skip(n, reason, raw)
    if state.local_time:
        sink.meta["local_time"] = True


def _record(d: dict[str, Any], n: int, off: int, state: _State, sink: Sink) -> str | None:
    """Write one EVE record; returns why it was not used, or None."""
    event = d.get("event_type")
    if not isinstance(event, str):
        return "no event_type"
    if event not in ("alert", "flow", "smb"):
        return "other event type"
    src, dst = _ip(d.get("src_ip")), _ip(d.get("dest_ip"))
    if not src or not dst:
        return "no src_ip/dest_ip"
    flow = d.get("flow") if isinstance(d.get("flow"), dict) else {}
    start = None
    if event == "flow":
        start = _stamp(flow.get("start"))
        stamp = start or _stamp(d.get("timestamp"))
    else:
        stamp = _stamp(d.get("timestamp"))
        if flow and (stamp is None or stamp.value < EPOCH_JUNK):
            stamp = _stamp(flow.get("start")) or stamp
    if stamp is None:
        return "no readable timestamp"
    if not stamp.zoned:
        state.local_time = True
    base = record(
        n,
        off,
        _str(d.get("host")),
        stamp.value,
        src_ip=src,
        src_port=_int(d.get("src_port"), 65535),
        dst_ip=dst,
        dst_port=_int(d.get("dest_port"), 65535),
    )
    if event == "alert":
        return _alert(d, base, sink)
    if event == "flow":
        return _flow(d, flow, start, base, sink)
    return _smb(d, base, state, sink)


def _alert(d: dict[str, Any], base: dict[str, Any], sink: Sink) -> str | None:
    alert = d.get("alert")
    if not isinstance(alert, dict):
        return "alert without alert object"
    signature = _str(alert.get("signature"))
    sid = _int(alert.get("signature_id"))
    if not signature and sid is None:
        return "alert without signature"
    sev = _int(alert.get("severity"), 255)
    sink.row(
        NET_ALERTS,
        {
            **base,
            "proto": proto_number(d.get("proto")),
            "signature": signature,
            "signature_id": str(sid) if sid is not None else None,
            "severity": None if sev is None else SEVERITY.get(sev, "info"),
            "action": _str(alert.get("action")),
            "vendor": VENDOR,
        },
    )
    return None


def _flow(d: dict[str, Any], flow: dict[str, Any], start: Stamp | None, base: dict[str, Any], sink: Sink) -> str | None:
    if not flow:
        return "flow without flow object"
    end = _stamp(flow.get("end"))
    if start and end and end.zoned == start.zoned and end.value >= start.value:
        duration: int | None = int((end.value - start.value).total_seconds())
    else:
        duration = _int(flow.get("age"))
    action = _str(flow.get("state"))
    tcp = d.get("tcp") if isinstance(d.get("tcp"), dict) else {}
    tc = tcp.get("tcp_flags_tc")
    if isinstance(tc, str) and len(tc) <= 2:
        try:
            bits = int(tc, 16)
        except ValueError:
            bits = 0
        if bits & 0x04 and not bits & 0x02:  # the server sent RST and never SYN-ACK: refused
            action = "reset"
    service = _str(d.get("app_proto"))
    sink.row(
        FLOWS,
        {
            **base,
            "proto": proto_number(d.get("proto")),
            "action": action,
            "service": None if service == "failed" else service,
            "bytes_out": _int(flow.get("bytes_toserver")),
            "bytes_in": _int(flow.get("bytes_toclient")),
            "pkts_in": _int(flow.get("pkts_toclient")),
            "duration": duration,
            "vendor": VENDOR,
        },
    )
    return None


def _file_action(command: str, smb: dict[str, Any]) -> str:
    if "CREATE" in command:
        if smb.get("access") == "delete on close":
            return "SMB::FILE_DELETE"
        disposition = smb.get("disposition")
        if disposition in ("FILE_CREATE", "FILE_OVERWRITE", "FILE_OVERWRITE_IF", "FILE_SUPERSEDE"):
            return "SMB::FILE_WRITE"
        return "SMB::FILE_OPEN"
    for word, action in (("WRITE", "SMB::FILE_WRITE"), ("READ", "SMB::FILE_READ"), ("CLOSE", "SMB::FILE_CLOSE")):
        if word in command:
            return action
    if "RENAME" in command or isinstance(smb.get("rename"), dict):
        return "SMB::FILE_RENAME"
    return command or "SMB::FILE_OPEN"


def _smb(d: dict[str, Any], base: dict[str, Any], state: _State, sink: Sink) -> str | None:
    smb = d.get("smb")
    if not isinstance(smb, dict):
        return "smb without smb object"
    command = _str(smb.get("command")) or ""
    flow_id = d.get("flow_id") if isinstance(d.get("flow_id"), int) else None
    tree = (flow_id, smb.get("tree_id")) if flow_id is not None else None
    row = {**base, "vendor": VENDOR, "path": None, "name": None}
    rpc = smb.get("dcerpc")
    share = _str(smb.get("share"))
    filename = _str(smb.get("filename"))
    if isinstance(rpc, dict):
        uuid = _rpc_uuid(rpc)
        if uuid is None and flow_id is not None:
            uuid = state.binds.get(flow_id)
        elif uuid is not None and flow_id is not None:
            state.remember(state.binds, flow_id, uuid)
        pipe = state.pipes.get(tree) if tree else None
        endpoint, ops = RPC_INTERFACES.get(uuid or "", (None, {}))
        if endpoint is None and pipe:
            endpoint = PIPES.get(pipe.lower().rsplit("\\", 1)[-1])
            ops = next((o for name, o in RPC_INTERFACES.values() if name == endpoint), {})
        request = _str(rpc.get("request")) or ""
        opnum = _int(rpc.get("opnum"), 65535)
        if request.upper() in ("BIND", "ALTER_CONTEXT"):
            name = request.lower()
        elif opnum is not None:
            name = ops.get(opnum, f"opnum {opnum}")
        else:
            name = request or None
        row.update(activity="rpc", path=pipe, name=name, action=endpoint or uuid)
    elif share and "TREE_CONNECT" in command:
        share_type = _str(smb.get("share_type"))
        row.update(activity="tree_connect", path=share, action="DISK" if share_type == "FILE" else share_type)
    elif filename:
        if tree and "CREATE" in command:
            state.remember(state.pipes, tree, filename)
        row.update(activity="file", name=filename, action=_file_action(command, smb))
    else:
        return "SMB command without share, file or RPC"
    sink.row(SMB, row)
    return None


def _rpc_uuid(rpc: dict[str, Any]) -> str | None:
    """The interface of a DCE-RPC record: `interface.uuid` (request) or the accepted bind in `interfaces`."""
    one = rpc.get("interface")
    if isinstance(one, dict) and isinstance(one.get("uuid"), str):
        return one["uuid"].lower()
    many = rpc.get("interfaces")
    if isinstance(many, list):
        items = [i for i in many if isinstance(i, dict) and isinstance(i.get("uuid"), str)]
        accepted = [i for i in items if i.get("ack_result") == 0] or items
        if accepted:
            return accepted[0]["uuid"].lower()
    return None


FORMATS: tuple[Format, ...] = (
    Format(
        "suricata",
        "Suricata EVE JSON (alert, flow, smb)",
        sniff,
        parse_text=parse_text,
        parse_file=parse_file,
        host_evidence=False,
    ),
)
