"""The typed results of `wormhunt identify`: one FileResult per file, one Summary per run.

Every string that comes from a file (names, version info, rule metadata of user rules) is
attacker-controlled: renderers must escape it (see identify/render.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Hashes:
    md5: str
    sha1: str
    sha256: str


@dataclass
class Note:
    """A finding about one file: a stable code, its parameters, and a severity (info, warn, alert)."""

    code: str
    severity: str = "warn"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class PeFacts:
    is_pe: bool
    error: str | None = None  # why a file that starts like a PE could not be parsed fully
    machine: str | None = None
    compile_time: str | None = None  # UTC ISO 8601 from the COFF header (may be forged)
    imphash: str | None = None
    version_info: dict[str, str] = field(default_factory=dict)
    signed: bool = False
    signature_status: str | None = None  # lief verify_signature flags, e.g. OK, BAD_DIGEST, NO_SIGNATURE
    notes: list[Note] = field(default_factory=list)


@dataclass
class YaraMatch:
    rule: str
    namespace: str
    source: str  # "project" or "user"
    tags: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ClamResult:
    status: str  # "clean", "infected", "error", "not_available"
    signature: str | None = None
    engine: str | None = None  # clamd, clamdscan, clamscan


@dataclass
class FileResult:
    path: str
    size: int | None = None
    skipped: str | None = None  # reason code, see walk.SKIP_REASONS
    skip_detail: str | None = None
    hashes: Hashes | None = None
    filetype: str = ""
    pe: PeFacts | None = None
    yara: list[YaraMatch] = field(default_factory=list)
    yara_error: str | None = None
    ssdeep: str | None = None
    clamav: ClamResult | None = None
    notes: list[Note] = field(default_factory=list)
    families: list[dict[str, Any]] = field(default_factory=list)  # family knowledge base matches

    def detections(self) -> list[str]:
        """The engines that flagged this file (the multi-scanner view)."""
        out = []
        if any(m.source == "project" for m in self.yara):
            out.append("yara_project")
        if any(m.source == "user" for m in self.yara):
            out.append("yara_user")
        if self.clamav and self.clamav.status == "infected":
            out.append("clamav")
        if self.pe and any(n.severity == "alert" for n in self.pe.notes):
            out.append("pe_heuristics")
        if self.families:
            out.append("family_kb")
        return out

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["detections"] = self.detections()
        return doc


ENGINES = ("yara_project", "yara_user", "clamav", "pe_heuristics", "family_kb")


@dataclass
class EngineSummary:
    available: bool
    detail: str = ""
    scanned: int = 0
    detected: int = 0


@dataclass
class Summary:
    files: int = 0
    scanned: int = 0
    skipped: int = 0
    bytes_scanned: int = 0
    seconds: float = 0.0
    detected_files: int = 0
    engines: dict[str, EngineSummary] = field(default_factory=dict)
    skip_reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class RuleWarning:
    file: str
    message: str


@dataclass
class IdentifyResult:
    files: list[FileResult]
    summary: Summary
    rule_warnings: list[RuleWarning] = field(default_factory=list)
    rule_files: dict[str, int] = field(default_factory=dict)  # {"project": n, "user": n}

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": asdict(self.summary),
            "rule_files": self.rule_files,
            "rule_warnings": [asdict(w) for w in self.rule_warnings],
            "files": [f.to_json() for f in self.files],
        }
