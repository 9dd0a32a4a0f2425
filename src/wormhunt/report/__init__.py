"""Outputs: the JSON summary, the console views, the HTML/Markdown/JSON report, exports."""

from __future__ import annotations

from pathlib import Path


def write_output(path: Path, text: str) -> Path:
    """Write an output file whole or not at all: a `.part` beside it, renamed into place, so an
    interrupted run never leaves a half report, CSV or export under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_text(text, encoding="utf-8")
    part.replace(path)
    return path
