"""STIX 2.1 and MISP exchange: round trips, hand-written inputs, malformed inputs."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wormhunt.intel.families import Indicator
from wormhunt.intel.misp import export_misp, load_intel, load_misp, parse_misp
from wormhunt.intel.stix import (
    IntelError,
    export_bundle,
    glob_to_like,
    like_to_glob,
    load_stix,
    parse_bundle,
    quote,
    unquote,
)

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MD5 = "0123456789abcdef0123456789abcdef"
SHA1 = "0123456789abcdef0123456789abcdef01234567"
SHA256 = "ab" * 32


def ind(kind: str, value: str, match: str = "exact", family: str = "wannamine3", iid: str | None = None) -> Indicator:
    return Indicator(
        family, iid or f"{kind}-{zlib.crc32((value + match).encode()):08x}", kind, value, match, 0.8, "C", "t"
    )


# Every type STIX can carry, with quotes, backslashes (Windows paths), globs and regexes.
STIX_CASES = [
    ind("md5", MD5),
    ind("sha1", SHA1),
    ind("sha256", SHA256),
    ind("file_name", "it's.exe"),
    ind("file_name", "svc*.exe", "glob"),
    ind("file_name", "a_b%*.exe", "glob"),  # LIKE cannot say a literal _ or %: exported as MATCHES
    ind("file_name", r"^\w+\.dll$", "regex"),
    ind("file_path", r"C:\Windows\AppDiagnostics\svchost.exe"),
    ind("file_path", r"C:\Users\*\AppData\Local\Temp\*.ps1", "glob"),
    ind("directory", r"C:\Windows\AppDiagnostics"),
    ind("directory", "C:\\Program Files\\O'Brien\\"),
    ind("process_path", r"C:\ProgramData\x.exe"),
    ind("process_name", "svchost.exe", family="other"),
    ind("cmdline", r"powershell -c 'IEX (New-Object Net.WebClient)' \\evil\s"),
    ind("cmdline", r"cmd\.exe /c .*\\temp\\", "regex"),
    ind("service_name", "snmpstorsrv"),
    ind("registry", r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run"),
    ind("mutex", r"Global\MsWinZonesCacheCounterMutexA"),
    ind("domain", "pool.example.com"),
    ind("domain", "*.example.net", "glob"),
    ind("ip", "203.0.113.7"),
    ind("ip", "2001:db8::1"),
    ind("url", "http://example.com/a.ps1?x='1'"),
    ind("port", "445"),
    ind("user", "k8h3d"),
]
UNMAPPABLE = [
    ind("task_name", "UPnPHostServices"),
    ind("wmi_name", "SCM Event Log Filter"),
    ind("service_image", r"C:\Windows\x.exe"),
    ind("md5", "not-a-digest"),
    ind("file_path", r"c:\\windows\\.*\\evil\.exe", "regex"),
]


def key(items: list[Indicator] | tuple[Indicator, ...]) -> set[tuple[str, str, str, str]]:
    return {(i.type, i.value, i.match, i.family) for i in items}


def write(tmp_path, name: str, data) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------- helpers


@pytest.mark.parametrize("text", ["", "a", "it's", "C:\\x\\", "\\'", "''\\\\"])
def test_quote_unquote(text: str) -> None:
    assert unquote(quote(text)) == text


def test_like_glob() -> None:
    assert like_to_glob("a%b_c*") == "a*b?c[*]"
    assert glob_to_like("a*b?c[*]") == "a%b_c*"
    assert glob_to_like("a_b*") is None and glob_to_like("[ab]x") is None


# ---------------------------------------------------------------- STIX


def test_stix_round_trip(tmp_path) -> None:
    skipped: list[str] = []
    bundle = export_bundle(STIX_CASES + UNMAPPABLE, {"wannamine3": "WannaMine 3.0"}, WHEN, skipped)
    assert len(skipped) == len(UNMAPPABLE) and all("not exported" in s for s in skipped)
    got, problems = load_stix(write(tmp_path, "b.json", bundle))
    assert problems == []
    assert key(got) == key(STIX_CASES)
    assert {i.id for i in got} == {i.id for i in STIX_CASES}
    assert all(i.confidence == "S" and i.source == bundle["id"] and i.weight == 0.8 for i in got)


def test_stix_export_is_deterministic() -> None:
    assert export_bundle(STIX_CASES, None, WHEN) == export_bundle(STIX_CASES, None, WHEN)
    a, b = export_bundle(STIX_CASES), export_bundle(list(STIX_CASES))
    assert [o["id"] for o in a["objects"]] == [o["id"] for o in b["objects"]]


def test_stix_export_shape() -> None:
    bundle = export_bundle(STIX_CASES, {"wannamine3": "WannaMine 3.0"}, WHEN)
    kinds = [o["type"] for o in bundle["objects"]]
    assert kinds.count("identity") == 1 and kinds.count("malware") == 2
    assert kinds.count("indicator") == kinds.count("relationship") == len(STIX_CASES)
    malware = {o["name"] for o in bundle["objects"] if o["type"] == "malware"}
    assert malware == {"WannaMine 3.0", "other"}
    patterns = {o["pattern"] for o in bundle["objects"] if o["type"] == "indicator"}
    assert "[directory:path = 'C:\\\\Program Files\\\\O\\'Brien\\\\']" in patterns
    assert "[network-traffic:dst_port = 445]" in patterns
    assert "[file:name LIKE 'svc%.exe']" in patterns


def test_stix_validates_with_stix2() -> None:
    stix2 = pytest.importorskip("stix2")
    bundle = export_bundle(STIX_CASES, {"wannamine3": "WannaMine 3.0"}, WHEN)
    parsed = stix2.parse(json.dumps(bundle), allow_custom=False)
    assert len(parsed.objects) == len(bundle["objects"])


printable = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=("Cs",)), min_size=1)


@settings(max_examples=60, deadline=None)
@given(value=printable, kind=st.sampled_from(["file_name", "cmdline", "mutex", "registry", "url", "directory"]))
def test_stix_round_trip_property(value: str, kind: str) -> None:
    items = [ind(kind, value, iid="p1"), ind(kind, value + "*", "glob", iid="p2")]
    got, problems = parse_bundle(export_bundle(items, None, WHEN))
    assert problems == []
    assert key(got) == key(items)


def test_stix_hand_written(tmp_path) -> None:
    bundle = {
        "type": "bundle",
        "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
        "objects": [
            {"type": "malware", "spec_version": "2.1", "id": "malware--1", "name": "WannaMine", "is_family": True},
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": "indicator--a",
                "confidence": 90,
                "pattern_type": "stix",
                "valid_from": "2024-01-01T00:00:00Z",
                "pattern": "[file:hashes.MD5 = '"
                + MD5
                + "' OR file:name LIKE '%.dat'] OR [ipv4-addr:value = '1.2.3.4']",
            },
            {
                "type": "relationship",
                "id": "relationship--1",
                "relationship_type": "indicates",
                "source_ref": "indicator--a",
                "target_ref": "malware--1",
            },
            {
                "type": "indicator",
                "id": "indicator--b",
                "name": "LemonDuck",
                "pattern_type": "stix",
                "pattern": "[process:command_line MATCHES 'powershell.*-enc'] "
                "OR [file:parent_directory_ref.path = 'C:\\\\Temp' AND file:name = 'x.exe']",
            },
            {
                "type": "indicator",
                "id": "indicator--c",
                "labels": ["miner"],
                "pattern_type": "stix",
                "pattern": "[windows-registry-key:key = 'HKLM\\\\Run'] OR [mutex:name = 'm' AND url:value = 'u']",
            },
            {"type": "indicator", "id": "indicator--d", "pattern_type": "sigma", "pattern": "x"},
            {
                "type": "indicator",
                "id": "indicator--e",
                "pattern_type": "stix",
                "pattern": "[user-account:user_id = 'k8h3d'] WITHIN 300 SECONDS",
            },
        ],
    }
    got, problems = load_stix(write(tmp_path, "h.json", bundle))
    by = {(i.type, i.value, i.match): i for i in got}
    assert by[("md5", MD5, "exact")].family == "WannaMine" and by[("md5", MD5, "exact")].weight == 0.9
    assert by[("file_name", "*.dat", "glob")].family == "WannaMine"
    assert ("ip", "1.2.3.4", "exact") in by
    assert by[("cmdline", "powershell.*-enc", "regex")].family == "lemonduck"  # a shipped family: its id
    assert by[("cmdline", "powershell.*-enc", "regex")].weight == 0.5
    assert by[("file_path", "C:\\Temp\\x.exe", "exact")].family == "lemonduck"
    assert by[("registry", "HKLM\\Run", "exact")].family == "miner"
    assert by[("user", "k8h3d", "exact")].family == "imported"
    assert len(got) == 7
    assert any("indicator--c" in p and "AND" in p for p in problems)
    assert any("indicator--d" in p and "sigma" in p for p in problems)


def test_stix_known_family_name_resolves_to_id() -> None:
    bundle = export_bundle([ind("mutex", "x")], {"wannamine3": "WannaMine 3.0"}, WHEN)
    for obj in bundle["objects"]:
        obj.pop("external_references", None)  # a foreign producer: only the name is left
    got, _ = parse_bundle(bundle)
    assert got[0].family == "wannamine3"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a STIX bundle"),
        ('{"type": "identity"}', "not a STIX bundle"),
        ('{"type": "bundle", "objects": {}}', "not a list"),
    ],
)
def test_stix_fatal(tmp_path, text: str, message: str) -> None:
    with pytest.raises(IntelError, match=message):
        load_stix(write(tmp_path, "bad.json", text))


def test_stix_object_problems_name_the_object() -> None:
    bundle = {
        "type": "bundle",
        "id": "bundle--x",
        "objects": [
            {"id": "indicator--notype", "pattern": "[mutex:name = 'a']"},
            {"type": "indicator"},
            {"type": "indicator", "id": "indicator--nopattern", "pattern_type": "stix"},
            {"type": "indicator", "id": "indicator--syntax", "pattern_type": "stix", "pattern": "[mutex:name = 'a'"},
            {
                "type": "indicator",
                "id": "indicator--and",
                "pattern_type": "stix",
                "pattern": "[mutex:name = 'a' AND domain-name:value = 'b']",
            },
            {
                "type": "indicator",
                "id": "indicator--obsand",
                "pattern_type": "stix",
                "pattern": "[mutex:name = 'a'] AND [domain-name:value = 'b']",
            },
            {"type": "indicator", "id": "indicator--neq", "pattern_type": "stix", "pattern": "[mutex:name != 'a']"},
            {
                "type": "indicator",
                "id": "indicator--path",
                "pattern_type": "stix",
                "pattern": "[email-addr:value = 'a']",
            },
            {
                "type": "indicator",
                "id": "indicator--regex",
                "pattern_type": "stix",
                "pattern": "[mutex:name MATCHES '(']",
            },
        ],
    }
    got, problems = parse_bundle(bundle)
    assert got == []
    text = "\n".join(problems)
    for name in (
        "indicator--notype",
        "objects[1]",
        "indicator--nopattern",
        "indicator--syntax",
        "indicator--and",
        "indicator--obsand",
        "indicator--neq",
        "indicator--path",
        "indicator--regex",
    ):
        assert name in text, name
    assert len(problems) == 9
    assert "bad STIX pattern" in next(p for p in problems if "indicator--syntax" in p)


# ---------------------------------------------------------------- MISP

MISP_CASES = [
    *STIX_CASES,
    *UNMAPPABLE,
    ind("wmi_query", "SELECT * FROM __InstanceModificationEvent"),
    ind("pool", "stratum+tcp://xmr.example.com:3333"),
]


def test_misp_round_trip(tmp_path) -> None:
    event = export_misp(MISP_CASES, {"wannamine3": "WannaMine 3.0"}, WHEN)
    assert event["Event"]["info"] == "wormhunt: WannaMine 3.0, other"
    got, problems = load_misp(write(tmp_path, "e.json", event))
    assert problems == []
    assert key(got) == key(MISP_CASES)
    assert {i.id for i in got} == {i.id for i in MISP_CASES}
    assert all(i.weight == 0.8 for i in got)
    assert export_misp(MISP_CASES, None, WHEN) == export_misp(MISP_CASES, None, WHEN)


@settings(max_examples=60, deadline=None)
@given(value=printable, kind=st.sampled_from(["file_name", "cmdline", "mutex", "registry", "url", "task_name"]))
def test_misp_round_trip_property(value: str, kind: str) -> None:
    items = [ind(kind, value, iid="p1"), ind(kind, value + "*", "glob", iid="p2")]
    got, problems = parse_misp(export_misp(items, None, WHEN))
    assert problems == []
    assert key(got) == key(items)


def _event(**extra):
    return {
        "uuid": "5f0c0000-0000-4000-8000-000000000001",
        "info": "WannaMine outbreak at ACME",
        "Tag": [{"name": "tlp:green"}],
        "Attribute": [
            {"type": "md5", "value": MD5, "to_ids": True, "uuid": "a1"},
            {"type": "filename|sha256", "value": "x.exe|" + SHA256, "to_ids": True},
            {"type": "ip-dst|port", "value": "198.51.100.2|3333", "to_ids": True},
            {"type": "hostname", "value": "c2.example.org", "to_ids": False},
            {"type": "regkey|value", "value": "HKLM\\Software\\Run|evil.exe", "to_ids": True},
            {"type": "windows-service-name", "value": "snmpstorsrv", "to_ids": True},
            {"type": "text", "value": "seen on 12 hosts"},
            {"type": "other", "value": "?"},
        ],
        "Object": [
            {
                "name": "file",
                "Attribute": [
                    {"type": "filename", "object_relation": "filename", "value": "svchost.exe", "to_ids": True},
                    {"type": "text", "object_relation": "fullpath", "value": "C:\\Windows\\Fonts\\svchost.exe"},
                    {"type": "sha1", "object_relation": "sha1", "value": SHA1, "to_ids": True},
                ],
            },
        ],
        **extra,
    }


def test_misp_hand_written_shapes(tmp_path) -> None:
    event = _event()
    for shape in (event, {"Event": event}, [{"Event": event}], {"response": [{"Event": event}]}):
        got, problems = load_misp(write(tmp_path, "m.json", shape))
        by = {(i.type, i.value): i for i in got}
        assert set(by) == {
            ("md5", MD5),
            ("file_name", "x.exe"),
            ("sha256", SHA256),
            ("ip", "198.51.100.2"),
            ("port", "3333"),
            ("domain", "c2.example.org"),
            ("registry", "HKLM\\Software\\Run"),
            ("service_name", "snmpstorsrv"),
            ("file_name", "svchost.exe"),
            ("file_path", "C:\\Windows\\Fonts\\svchost.exe"),
            ("sha1", SHA1),
        }
        assert by[("domain", "c2.example.org")].weight == 0.3 and by[("md5", MD5)].weight == 0.5
        assert {i.family for i in got} == {"WannaMine outbreak at ACME"}
        assert all(i.source == "misp:" + event["uuid"] and i.confidence == "S" for i in got)
        assert len(problems) == 1 and "skipped 2" in problems[0] and "text" in problems[0]
    got, _ = parse_misp(event, no_ids_weight=None)
    assert {i.weight for i in got} == {0.5}


def test_misp_galaxy_family() -> None:
    got, _ = parse_misp(_event(Tag=[{"name": 'misp-galaxy:malpedia="WannaMine"'}]))
    assert {i.family for i in got} == {"WannaMine"}
    got, _ = parse_misp(_event(Tag=[{"name": 'misp-galaxy:tool="WannaMine 3.0"'}]))
    assert {i.family for i in got} == {"wannamine3"}  # a built-in family's name resolves to its id


def test_misp_problems_name_the_attribute(tmp_path) -> None:
    event = _event(
        Attribute=[
            {"type": "x-unknown", "value": "v", "uuid": "u-1"},
            {"value": "no type"},
            {"type": "md5", "value": ""},
            {"type": "filename|md5", "value": "nopipe"},
        ]
    )
    _, problems = parse_misp({"Event": event})
    text = "\n".join(problems)
    assert "Attribute[0] u-1 has unknown MISP type 'x-unknown'" in text
    assert "Attribute[1] has no type" in text and "Attribute[2] (md5) has no value" in text
    assert "Attribute[3] (filename|md5)" in text
    with pytest.raises(IntelError, match="not a MISP event"):
        parse_misp({"foo": 1})
    with pytest.raises(IntelError, match=r"item \[1\]"):
        parse_misp([{"Event": event}, {"nope": 1}])
    with pytest.raises(IntelError, match="not JSON"):
        load_misp(write(tmp_path, "x.json", "<xml/>"))


def test_load_intel_dispatches(tmp_path) -> None:
    a = write(tmp_path, "a.json", export_bundle(STIX_CASES[:3], None, WHEN))
    b = write(tmp_path, "b.json", export_misp(MISP_CASES[3:6], None, WHEN))
    got, problems = load_intel([a, b])
    assert problems == []
    assert key(got) == key(STIX_CASES[:3]) | key(MISP_CASES[3:6])
    with pytest.raises(IntelError, match="not a MISP event"):
        load_intel([write(tmp_path, "c.json", {"type": "identity"})])
