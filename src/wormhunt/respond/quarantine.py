"""The quarantine: an AES-256 encrypted zip with the conventional password `infected`, holding
each file under a neutral entry name, and a sha256 manifest (inside the zip and beside it in
clear text, so a reviewer can read what was taken without the password).

Files are streamed in chunks (never read whole into memory) and opened without following a
symbolic link. An archive is closed, synced and verified before the caller removes any
original it holds, so a crash (even SIGKILL) never loses a file.

Restoring reads the manifest, never the entry names, so a crafted archive cannot write
outside the paths it recorded; the caller can restrict it further to the paths a plan names
(`allowed`). A restore never follows a symbolic link: the target must be absolute, without
`..`, without a symlinked folder on its way, and not itself a link; the bytes go to a fresh
temporary file created with O_EXCL|O_NOFOLLOW in the target's folder (mode set with fchmod),
checked against their sha256 and renamed over the target.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pyzipper

PASSWORD = b"infected"
MANIFEST = "manifest.json"
CHUNK = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


@dataclass
class Entry:
    entry: str  # name inside the zip
    path: str  # original absolute path
    sha256: str
    size: int
    mode: int
    mtime: float


def sha256_file(path: Path) -> str:
    """sha256 of a regular file, opened without following a symbolic link."""
    return _sha256_at(None, path)


def _entry_sha256(z: pyzipper.AESZipFile, name: str) -> str:
    h = hashlib.sha256()
    with z.open(name) as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Quarantine:
    """One quarantine archive being written: add files, then `close()` writes the manifest,
    syncs and verifies the archive. Nothing is removed here: the caller removes the originals
    only after `close()` returned."""

    def __init__(self, zip_path: Path) -> None:
        self.zip_path = zip_path
        zip_path.parent.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: a quarantine is never overwritten, and a planted file or link is not followed
            fd = os.open(zip_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        except FileExistsError:
            raise FileExistsError(f"{zip_path} exists: a quarantine is never overwritten") from None
        self._file = os.fdopen(fd, "w+b")
        self.entries: list[Entry] = []
        self.stats: dict[str, os.stat_result] = {}  # entry name -> stat of the original when it was read
        self._zip = pyzipper.AESZipFile(self._file, "w", compression=pyzipper.ZIP_DEFLATED,
                                        encryption=pyzipper.WZ_AES)  # fmt: skip
        self._zip.setpassword(PASSWORD)
        self._zip.setencryption(pyzipper.WZ_AES, nbits=256)

    def add(self, path: Path) -> Entry:
        """Stream `path` into the archive, hashing as it goes (the original is left in place).
        Refuses a symbolic link or anything but a regular file."""
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ValueError(f"{path} is not a regular file")
            name = f"files/{len(self.entries) + 1:04d}_{path.name}"
            h = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "rb", closefd=False) as src, self._zip.open(name, "w", force_zip64=True) as dst:
                for chunk in iter(lambda: src.read(CHUNK), b""):
                    h.update(chunk)
                    dst.write(chunk)
                    size += len(chunk)
        finally:
            os.close(fd)
        entry = Entry(name, str(path), h.hexdigest(), size, st.st_mode & 0o7777, st.st_mtime)
        self.entries.append(entry)
        self.stats[name] = st
        return entry

    def close(self) -> list[Entry]:
        doc = json.dumps([asdict(e) for e in self.entries], indent=2)
        self._zip.writestr(MANIFEST, doc)
        self._zip.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        side = self.zip_path.with_suffix(".manifest.json")
        fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(doc)
            f.flush()
            os.fsync(f.fileno())
        _fsync_path(self.zip_path.parent)
        verify(self.zip_path)
        return self.entries


def read_manifest(zip_path: Path) -> list[Entry]:
    with pyzipper.AESZipFile(zip_path) as z:
        z.setpassword(PASSWORD)
        return [Entry(**e) for e in json.loads(z.read(MANIFEST))]


def verify(zip_path: Path) -> list[Entry]:
    """Every manifest entry is in the archive with the recorded sha256 (raises otherwise)."""
    with pyzipper.AESZipFile(zip_path) as z:
        z.setpassword(PASSWORD)
        entries = [Entry(**e) for e in json.loads(z.read(MANIFEST))]
        for e in entries:
            if _entry_sha256(z, e.entry) != e.sha256:
                raise ValueError(f"{zip_path}: {e.entry} does not match its sha256")
    return entries


def _safe_target(raw: str) -> Path:
    """The recorded path as an absolute, normalised path whose folders are not symbolic links."""
    if not os.path.isabs(raw) or os.path.normpath(raw) != raw or "\x00" in raw:
        raise ValueError(f"refusing to restore to {raw!r}: not a plain absolute path")
    target = Path(raw)
    parent = target.parent
    if os.path.realpath(parent) != str(parent):
        raise ValueError(f"refusing to restore to {raw!r}: a folder on its path is a symbolic link")
    return target


def restore(zip_path: Path, overwrite: bool = False, allowed: Callable[[str], bool] | None = None) -> list[Path]:
    """Write every quarantined file back to its recorded path, byte for byte, with its mode
    and mtime; refuses to overwrite a different file unless `overwrite`, refuses a path that
    `allowed` rejects, a symbolic link and a symlinked folder (see the module docstring)."""
    entries = verify(zip_path)
    targets = []
    for e in entries:  # every path is checked before anything is written
        if allowed is not None and not allowed(e.path):
            raise ValueError(f"{zip_path}: {e.path} is not a path the plan quarantined")
        targets.append(_safe_target(e.path))
    out = []
    with pyzipper.AESZipFile(zip_path) as z:
        z.setpassword(PASSWORD)
        for e, target in zip(entries, targets, strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            _safe_target(e.path)  # again, now that the folders exist
            dfd = os.open(target.parent, os.O_RDONLY | _DIRECTORY | _NOFOLLOW)
            try:
                _restore_one(z, e, target, dfd, overwrite, zip_path)
            finally:
                os.close(dfd)
            out.append(target)
    return out


def _restore_one(z: pyzipper.AESZipFile, e: Entry, target: Path, dfd: int, overwrite: bool, zip_path: Path) -> None:
    name = target.name
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
            raise FileExistsError(f"{target} exists and is not a regular file (a link?): not restored")
        if not overwrite and _sha256_at(dfd, name) != e.sha256:
            raise FileExistsError(f"{target} exists with other content (use overwrite)")
    tmp = f".{name[:64]}.wormhunt-restore-{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=dfd)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb", closefd=False) as dst, z.open(e.entry) as src:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                h.update(chunk)
                dst.write(chunk)
        if h.hexdigest() != e.sha256:
            raise ValueError(f"{zip_path}: {e.entry} does not match its sha256")
        os.fchmod(fd, e.mode & 0o7777)
        os.utime(fd, (e.mtime, e.mtime))
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp, dir_fd=dfd)
        raise
    os.close(fd)
    os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    if _sha256_at(dfd, name) != e.sha256:
        raise ValueError(f"{target}: restored bytes differ from the quarantine")


def _sha256_at(dfd: int | None, name: str | Path) -> str:
    """sha256 of a regular file `name` (relative to the folder handle `dfd`, if given), never
    through a symbolic link."""
    fd = os.open(name, os.O_RDONLY | _NOFOLLOW, dir_fd=dfd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{name} is not a regular file")
        h = hashlib.sha256()
        with os.fdopen(fd, "rb", closefd=False) as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                h.update(chunk)
        return h.hexdigest()
    finally:
        os.close(fd)
