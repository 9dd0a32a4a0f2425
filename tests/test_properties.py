"""Property tests: random bytes and mutated real-format lines never make a parser raise,
rows of untouched lines survive, and a junk line after the header is counted as skipped."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_fortigate import IPS, TRAFFIC, TRAFFIC_OLD
from wormhunt.sources import FORMATS, fortigate
from wormhunt.sources.base import MemorySink
from wormhunt.sources.text import decode, sniff_encoding

NETSTAT = """
Active Connections

  Proto  Local Address          Foreign Address        State           PID
  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       688
  TCP    10.1.1.5:49200         10.1.1.9:445           SYN_SENT        3120
  TCP    [fe80::1%11]:49201     [fe80::2%11]:445       ESTABLISHED     3120
  UDP    0.0.0.0:500            *:*                                    1044
  TCP    10.1.1.5:49202         10.1.1.10:445          TIME_WAIT       0
"""
TASKLIST_CSV = """"映像名称","PID","会话名","会话#","内存使用","状态","用户名","CPU 时间","窗口标题"
"System","4","Services","0","1,200 K","Unknown","暂缺","2:31:07","暂缺"
"svchost.exe","688","Services","0","9,100 K","Unknown","NT AUTHORITY\\SYSTEM","0:01:02","暂缺"
"explorer.exe","3120","Console","1","45,000 K","Running","CORP\\wang","0:10:00","暂缺"
"""
TASKLIST_TABLE = """
Image Name                     PID Session Name        Session#    Mem Usage
========================= ======== ================ =========== ============
System Idle Process              0 Services                   0          8 K
System                           4 Services                   0        924 K
svchost.exe                    688 Services                   0      9,100 K
ollama app.exe               39268 Console                    1     18,204 K
"""
WMIC = """
Node,CommandLine,CreationDate,ExecutablePath,Name,ParentProcessId,ProcessId
H1,,,,System Idle Process,0,0
H1,svchost.exe -k netsvcs,20181118083818.000000+480,C:\\Windows\\system32\\svchost.exe,svchost.exe,500,688
H1,"C:\\a.exe" --x=1,2,3,20181118083818.000000-300,C:\\a.exe,a.exe,688,3120
"""
SYSTEMINFO = """
Host Name:                 FS01
OS Name:                   Microsoft Windows Server 2008 R2 Enterprise
OS Version:                6.1.7601 Service Pack 1 Build 7601
Time Zone:                 (UTC+08:00) Beijing, Chongqing, Hong Kong, Urumqi
Hotfix(s):                 2 Hotfix(s) Installed.
                           [01]: KB4012212
                           [02]: KB2999226
Network Card(s):           1 NIC(s) Installed.
                           [01]: Intel(R) PRO/1000 MT Network Connection
                                 IP address(es)
                                 [01]: 10.1.1.5
"""
FORTIGATE = "\n".join([TRAFFIC, IPS, TRAFFIC_OLD, TRAFFIC]) + "\n"

DOCS = {
    "netstat": NETSTAT,
    "tasklist": TASKLIST_CSV,
    "tasklist-table": TASKLIST_TABLE,
    "wmic-process": WMIC,
    "systeminfo": SYSTEMINFO,
    "fortigate": FORTIGATE,
}
PARSERS = {
    "netstat": FORMATS["netstat"].parse_text,
    "tasklist": FORMATS["tasklist"].parse_text,
    "tasklist-table": FORMATS["tasklist"].parse_text,
    "wmic-process": FORMATS["wmic-process"].parse_text,
    "systeminfo": FORMATS["systeminfo"].parse_text,
    "fortigate": fortigate.parse_text,
    "assets": FORMATS["assets"].parse_text,
}
# Line-oriented formats: a junk line after the header must be counted as skipped.
JUNK_COUNTED = ("netstat", "tasklist", "tasklist-table", "wmic-process", "fortigate")
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(name: str, text: str) -> MemorySink:
    sink = MemorySink()
    PARSERS[name](text, sink)
    return sink


def rows_by_line(sink: MemorySink) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for rows in sink.rows.values():
        for r in rows:
            # Fields that aggregate other lines: continuation lines and systeminfo's item count.
            clean = {k: v for k, v in r.items() if k not in ("image", "component", "services", "hotfixes_listed")}
            out.setdefault(r["line"], []).append(clean)
    return out


def test_documents_parse_cleanly() -> None:
    for name, doc in DOCS.items():
        sink = run(name, doc)
        assert sink.records > 0 and sink.skipped == 0, name


@FAST
@given(data=st.binary(max_size=3000), name=st.sampled_from(sorted(PARSERS)))
def test_random_bytes_never_raise(data: bytes, name: str) -> None:
    text = decode(data).text
    sink = run(name, text)
    lines = text.count("\n") + 1
    assert sink.records <= 2 * lines + 1
    assert sink.skipped <= lines


@FAST
@given(data=st.data(), name=st.sampled_from(sorted(DOCS)))
def test_mutated_line_keeps_the_rest(data: st.DataObject, name: str) -> None:
    lines = DOCS[name].split("\n")
    base = rows_by_line(run(name, DOCS[name]))
    candidates = sorted(base)
    target = data.draw(st.sampled_from(candidates))
    original = lines[target - 1]
    cut = data.draw(st.integers(0, len(original)))
    junk = data.draw(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20))
    mode = data.draw(st.sampled_from(["truncate", "insert", "replace"]))
    if mode == "truncate":
        mutated = original[:cut]
    elif mode == "insert":
        mutated = original[:cut] + junk + original[cut:]
    else:
        mutated = original[:cut] + junk + original[cut + len(junk) :]
    lines[target - 1] = mutated.replace("\n", " ")
    sink = run(name, "\n".join(lines))
    after = rows_by_line(sink)
    # Lines other than the mutated one (and, for continuation-based formats, its neighbours) keep their rows.
    for line, rows in base.items():
        if (abs(line - target) > 1 or name == "fortigate") and line != target:
            assert after.get(line) == rows, (name, line)
    assert all(s.line >= 1 for s in sink.skips)


@FAST
@given(
    junk=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789!#%&*+-=~", min_size=3, max_size=40),
    name=st.sampled_from(JUNK_COUNTED),
)
def test_junk_line_after_header_is_counted(junk: str, name: str) -> None:
    lines = DOCS[name].split("\n")
    data_lines = sorted(rows_by_line(run(name, DOCS[name])))
    at = data_lines[1]  # before the second data row, well after any header
    lines.insert(at - 1, "X" + junk)
    sink = run(name, "\n".join(lines))
    assert any(s.line == at for s in sink.skips), (name, sink.skips)
    assert sink.records == run(name, DOCS[name]).records


def test_compiled_scanner_stays_in_bounds(tmp_path: Path) -> None:
    """Run the FortiGate scanner on fuzzed input with numba bounds checking compiled in:
    an out-of-bounds read would raise IndexError there instead of reading stray memory."""
    script = textwrap.dedent(
        f"""
        import random
        from pathlib import Path
        from wormhunt.sources import fortigate
        from wormhunt.sources.base import MemorySink
        from wormhunt.sources.text import sniff_encoding
        rng = random.Random(7)
        base = {FORTIGATE!r}
        alphabet = '="<> \\\\\\t\\r\\nabc0123456789:-.'
        for i in range(400):
            s = list(base)
            for _ in range(rng.randint(1, 30)):
                pos = rng.randrange(len(s))
                op = rng.random()
                if op < 0.4:
                    s[pos] = rng.choice(alphabet)
                elif op < 0.7:
                    del s[pos]
                else:
                    s.insert(pos, rng.choice(alphabet))
            text = ''.join(s)[: rng.randint(0, len(s))]
            sink = MemorySink()
            fortigate.parse_text(text, sink)
            raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 600)))
            p = Path({str(tmp_path)!r}) / 'f.log'
            p.write_bytes(raw)
            fortigate.parse_file(p, sniff_encoding(raw), MemorySink())
        print('ok')
        """
    )
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"


def test_parse_file_matches_parse_text(tmp_path: Path) -> None:
    path = tmp_path / "f.log"
    path.write_text(FORTIGATE, encoding="utf-8")
    a, b = MemorySink(), MemorySink()
    fortigate.parse_text(FORTIGATE, a)
    fortigate.parse_file(path, sniff_encoding(FORTIGATE.encode()), b)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "offset"} for r in rows]  # noqa: E731
    assert strip(a.of("flows")) == strip(b.of("flows")) and strip(a.of("net_alerts")) == strip(b.of("net_alerts"))
