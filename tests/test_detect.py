"""Format detection: the per-run memo must never change what is detected."""

from __future__ import annotations

from pathlib import Path

from wormhunt.simulate import simulate
from wormhunt.sources.detect import Memo, detect_file

NETSTAT = (
    "\nActive Connections\n\n  Proto  Local Address          Foreign Address        State           PID\n"
    "  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       900\n"
    "  TCP    10.1.1.5:49200         10.1.1.9:445           SYN_SENT        3120\n"
)
TASKLIST = (
    "\nImage Name                     PID Session Name        Session#    Mem Usage\n"
    "========================= ======== ================ =========== ============\n"
    "System Idle Process              0 Services                   0          8 K\n"
    "svchost.exe                    900 Services                   0     12,000 K\n"
)


def test_memo_detects_what_a_fresh_detection_does(tmp_path: Path) -> None:
    for locale in ("en-US", "zh-CN"):
        simulate(tmp_path / locale, hosts=12, seed=3, days=1, lines=200, locale=locale)
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    memo = Memo()
    remembered = [detect_file(p, memo) for p in files]
    fresh = [detect_file(p) for p in files]
    assert memo.hits > len(files) // 2  # the memo is actually used across bundles
    for path, a, b in zip(files, remembered, fresh, strict=True):
        assert (a.format and a.format.name, a.encoding) == (b.format and b.format.name, b.encoding), path


def test_a_remembered_format_that_no_longer_fits_is_not_trusted(tmp_path: Path) -> None:
    # Same file name and same first line as a netstat, but a tasklist follows.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "out.txt").write_text("Active Connections\n" + NETSTAT)
    (tmp_path / "b" / "out.txt").write_text("Active Connections\n" + TASKLIST)
    memo = Memo()
    first = detect_file(tmp_path / "a" / "out.txt", memo)
    second = detect_file(tmp_path / "b" / "out.txt", memo)
    assert first.format is not None and first.format.name == "netstat"
    assert memo.hits == 0
    assert second.format is not None and second.format.name == "tasklist"
