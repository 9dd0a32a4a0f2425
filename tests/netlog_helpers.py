"""Test helpers the network-log parser tests share: parse text into a MemorySink, hypothesis
settings, and mutating one line of a sample log."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from wormhunt.sources.base import MemorySink, Sink
from wormhunt.sources.netlog import BLANK


def fast(examples: int) -> settings:
    """Hypothesis settings for parser property tests (no deadline: numba compiles on first use)."""
    return settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_with(parse_text: Callable[[str, Sink], None], text: str, **meta: object) -> MemorySink:
    """`text` parsed into a fresh MemorySink whose meta holds `meta` (e.g. default_year=2024)."""
    sink = MemorySink()
    sink.meta.update(meta)
    parse_text(text, sink)
    return sink


def non_blank(text: str, blank: str = BLANK) -> int:
    """Lines of `text` that are not only `blank` characters: each must be a record or a skip."""
    return sum(1 for line in text.split("\n") if line.strip(blank))


def mutate_line(data: st.DataObject, lines: list[str], first: int = 0, last: int | None = None, junk: int = 20) -> int:
    """Truncate one of lines[first..last], or insert or overwrite junk in it (kept on one line);
    returns its index."""
    target = data.draw(st.integers(first, len(lines) - 1 if last is None else last))
    original = lines[target]
    cut = data.draw(st.integers(0, len(original)))
    text = data.draw(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=junk))
    mode = data.draw(st.sampled_from(["truncate", "insert", "replace"]))
    mutated = {
        "truncate": original[:cut],
        "insert": original[:cut] + text + original[cut:],
        "replace": original[:cut] + text + original[cut + len(text) :],
    }[mode]
    lines[target] = mutated.replace("\n", " ").replace("\r", " ")
    return target


def simulate_and_parse(
    tmp_path: Path, net_format: str, format_name: str, truth_year: bool = False
) -> tuple[dict, MemorySink]:
    """Simulate an outbreak with network logs in `net_format`; every file it writes must be
    detected as `format_name`. Returns the ground truth and all files parsed into one sink
    (with the simulated period's year as the default year when `truth_year`)."""
    from wormhunt.simulate import simulate
    from wormhunt.sources.detect import detect_file

    simulate(tmp_path, hosts=30, days=1, lines=3000, net_format=net_format)
    truth = json.loads((tmp_path / "ground_truth.json").read_text(encoding="utf-8"))
    sink = MemorySink()
    if truth_year:
        sink.meta["default_year"] = int(truth["period"]["start"][:4])
    files = sorted((tmp_path / "network").iterdir())
    assert files
    for path in files:
        det = detect_file(path)
        assert det.format is not None and det.format.name == format_name, path.name
        assert det.format.parse_file is not None
        det.format.parse_file(path, det.encoding, sink)
    return truth, sink
