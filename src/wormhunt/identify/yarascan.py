"""YARA with yara-x: project and user rules compiled once, scanned with per-file externals.

The externals are the ones signature-base rules (written for LOKI/THOR) use: `filename`
(base name), `filepath` (full path), `extension` (lower case with the dot, ".exe"),
`filetype` (a short magic-based type such as "EXE", "ZIP"; "" when unknown) and `owner`.
They are declared as empty strings at compile time and set for every file at scan time.

A rule file that does not compile is skipped with a warning naming it; the others still run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import yara_x

from wormhunt.identify.model import RuleWarning, YaraMatch

EXTERNALS = ("filename", "filepath", "extension", "filetype", "owner")
META_KEYS = ("author", "description", "family", "confidence", "reference", "score", "date")
RULE_SUFFIXES = (".yar", ".yara")
SCAN_TIMEOUT_S = 60
# Processes that have scanned with a timeout: yara-x then runs its timeout thread, which a
# process forked from them does not get (a timeout would never fire there), see `may_fork`.
_SCANNED_IN: set[int] = set()


def may_fork() -> bool:
    """Whether scanning workers may be forked from this process."""
    return os.getpid() not in _SCANNED_IN


def project_rule_files() -> list[Path]:
    folder = Path(str(files("wormhunt.knowledge").joinpath("rules")))
    return sorted(folder.glob("*.yar"))


def user_rule_files(dirs: list[Path]) -> list[tuple[Path, Path]]:
    """(root, file) for every *.yar / *.yara under the user folders (a file may also be given directly)."""
    out: list[tuple[Path, Path]] = []
    for root in dirs:
        if root.is_file():
            out.append((root.parent, root))
            continue
        out.extend((root, p) for p in sorted(root.rglob("*")) if p.suffix.lower() in RULE_SUFFIXES and p.is_file())
    return out


def _read(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


@dataclass
class CompiledRules:
    rules: yara_x.Rules | None
    warnings: list[RuleWarning] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # rule files compiled, by source

    def serialize(self) -> bytes | None:
        if self.rules is None:
            return None
        import io

        buf = io.BytesIO()
        self.rules.serialize_into(buf)
        return buf.getvalue()


def _compiler() -> yara_x.Compiler:
    # relaxed_re_syntax: accept the regular expressions libyara accepts (signature-base, Yara-Rules).
    compiler = yara_x.Compiler(relaxed_re_syntax=True)
    for name in EXTERNALS:
        compiler.define_global(name, "")
    return compiler


def compile_rules(user_dirs: list[Path] | None = None, project: bool = True) -> CompiledRules:
    """Compile the project rules and every user rule file into one rule set, once."""
    entries: list[tuple[str, str, Path]] = []  # (source, namespace, file)
    if project:
        entries += [("project", f"project.{p.stem}", p) for p in project_rule_files()]
    for index, root in enumerate(user_dirs or []):
        for base, path in user_rule_files([root]):
            rel = path.relative_to(base).as_posix()
            # The --rules index keeps two folders of the same name (a/rules, b/rules) apart.
            entries.append(("user", f"user{index}.{base.name}/{rel}", path))

    warnings: list[RuleWarning] = []
    texts: dict[Path, str] = {}
    for _source, _ns, path in entries:
        try:
            texts[path] = _read(path)
        except OSError as exc:
            warnings.append(RuleWarning(str(path), f"unreadable: {exc.strerror or exc}"))

    def build(usable: list[tuple[str, str, Path]]) -> tuple[yara_x.Compiler, list[Path]]:
        compiler = _compiler()
        failed: list[Path] = []
        for _source, namespace, path in usable:
            compiler.new_namespace(namespace)
            try:
                compiler.add_source(texts[path], origin=str(path))
            except yara_x.CompileError as exc:
                failed.append(path)
                first = str(exc).strip().splitlines()
                warnings.append(RuleWarning(str(path), " ".join(x.strip() for x in first[:2])[:400]))
        return compiler, failed

    usable = [e for e in entries if e[2] in texts]
    compiler, failed = build(usable)
    if failed:
        # yara-x keeps the rules of a failing file that were added before the error: rebuild
        # without the failing files so a broken file contributes nothing.
        usable = [e for e in usable if e[2] not in failed]
        compiler, _ = build(usable)
    counts = {"project": 0, "user": 0}
    for source, _ns, _path in usable:
        counts[source] += 1
    rules = compiler.build() if usable else None
    return CompiledRules(rules, warnings, counts)


def deserialize(blob: bytes | None) -> yara_x.Rules | None:
    if blob is None:
        return None
    import io

    return yara_x.Rules.deserialize_from(io.BytesIO(blob))


def _meta(pairs) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in META_KEYS and key not in out:
            out[key] = value
    return out


class YaraEngine:
    """One scanner over compiled rules. Not thread-safe: one per thread or process."""

    def __init__(self, rules: yara_x.Rules) -> None:
        self.scanner = yara_x.Scanner(rules)
        self.scanner.set_timeout(SCAN_TIMEOUT_S)

    def scan(self, data: bytes, path: Path, filetype: str, owner: str) -> list[YaraMatch]:
        _SCANNED_IN.add(os.getpid())
        s = self.scanner
        s.set_global("filename", path.name)
        s.set_global("filepath", str(path))
        s.set_global("extension", path.suffix.lower())
        s.set_global("filetype", filetype)
        s.set_global("owner", owner)
        results = s.scan(data)
        return [
            YaraMatch(
                rule=r.identifier,
                namespace=r.namespace,
                source="project" if r.namespace.startswith("project.") else "user",
                tags=list(r.tags),
                meta=_meta(r.metadata),
            )
            for r in results.matching_rules
        ]
