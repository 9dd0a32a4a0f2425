"""Triage bundles: a folder or zip holding `manifest.json` plus one file per artifact.

The manifest says which host the outputs came from, when and how they were collected
(docs/bundle.md). Zips come from compromised machines, so extraction trusts nothing in
them: absolute paths, `..`, drive letters, symbolic links and members that inflate beyond
their declared size or a sane ratio are refused with a message, before anything is written
outside the destination.
"""

from __future__ import annotations

import json
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

MANIFEST = "manifest.json"
MAX_MEMBERS = 20_000
MAX_MEMBER_BYTES = 1 << 30  # 1 GiB: no single command output is that large
MAX_TOTAL_BYTES = 4 << 30
MAX_RATIO = 200  # text compresses ~10x; 1 GB of zeros compresses ~1000x
_CHUNK = 1 << 20


class BundleError(ValueError):
    """A bundle that cannot be used safely; the message says why."""


@dataclass
class Manifest:
    host: str | None
    ips: list[str] = field(default_factory=list)
    collected_at: str | None = None
    time_zone: str | None = None
    locale: str | None = None
    collector: dict[str, Any] = field(default_factory=dict)
    commands: list[dict[str, Any]] = field(default_factory=list)


def read_manifest(folder: Path) -> Manifest | None:
    """The bundle manifest of `folder`, or None when there is none (or it is not one)."""
    path = folder / MANIFEST
    if not path.is_file() or path.is_symlink() or path.stat().st_size > 16 << 20:
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("host"), str) or not doc["host"].strip():
        return None
    commands = [c for c in doc.get("commands") or [] if isinstance(c, dict)]
    return Manifest(
        host=doc["host"].strip(),
        ips=[str(ip) for ip in doc.get("ips") or [] if isinstance(ip, str)],
        collected_at=doc.get("collected_at") if isinstance(doc.get("collected_at"), str) else None,
        time_zone=doc.get("time_zone") if isinstance(doc.get("time_zone"), str) else None,
        locale=doc.get("locale") if isinstance(doc.get("locale"), str) else None,
        collector=doc.get("collector") if isinstance(doc.get("collector"), dict) else {},
        commands=commands,
    )


def is_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    except OSError:
        return False


def _member_path(info: zipfile.ZipInfo) -> PurePosixPath:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise BundleError(f"absolute path in the zip: {info.filename!r}")
    parts = PurePosixPath(name).parts
    if any(p == ".." for p in parts):
        raise BundleError(f"path escapes the bundle: {info.filename!r}")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise BundleError(f"symbolic link in the zip: {info.filename!r}")
    kept = [p for p in parts if p not in ("", ".")]
    if not kept:
        raise BundleError(f"empty member name: {info.filename!r}")
    return PurePosixPath(*kept)


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract `archive` into the new folder `dest`; raises BundleError for anything unsafe.

    Sizes are checked as declared and again while inflating (a zip can lie about them)."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"not a readable zip: {exc}") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise BundleError(f"too many members ({len(infos)} > {MAX_MEMBERS})")
        members = [(info, _member_path(info)) for info in infos]  # every name checked before writing
        total = 0
        for info, _ in members:
            total += info.file_size
            if info.file_size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES:
                raise BundleError(f"too large when inflated: {info.filename!r} ({info.file_size} bytes)")
            if info.file_size > _CHUNK and info.file_size > MAX_RATIO * max(1, info.compress_size):
                raise BundleError(f"compression ratio of a zip bomb: {info.filename!r}")
        dest.mkdir(parents=True, exist_ok=False)
        root = dest.resolve()
        for info, rel in members:
            target = root.joinpath(*rel.parts)
            if root not in target.resolve().parents and target.resolve() != root:
                raise BundleError(f"path escapes the bundle: {info.filename!r}")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            try:
                with zf.open(info) as src, open(target, "xb") as out:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        if written > info.file_size or written > MAX_RATIO * max(1, info.compress_size) + _CHUNK:
                            raise BundleError(f"member inflates beyond its declared size: {info.filename!r}")
                        out.write(chunk)
            except FileExistsError:
                raise BundleError(f"duplicate member: {info.filename!r}") from None
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
                raise BundleError(f"damaged member {info.filename!r}: {exc}") from None
    return dest
