"""The quarantine: an AES-256 encrypted zip with the conventional password `infected`, holding
each file under a neutral entry name, and a sha256 manifest (inside the zip and beside it in
clear text, so a reviewer can read what was taken without the password).

Restoring reads the manifest, never the entry names, so a crafted archive cannot write
outside the paths it recorded; every restored file is checked against its sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import pyzipper

PASSWORD = b"infected"
MANIFEST = "manifest.json"


@dataclass
class Entry:
    entry: str  # name inside the zip
    path: str  # original absolute path
    sha256: str
    size: int
    mode: int
    mtime: float


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Quarantine:
    """One quarantine archive being written: add files, then `close()` writes the manifest."""

    def __init__(self, zip_path: Path) -> None:
        self.zip_path = zip_path
        zip_path.parent.mkdir(parents=True, exist_ok=True)
        if zip_path.exists():
            raise FileExistsError(f"{zip_path} exists: a quarantine is never overwritten")
        self.entries: list[Entry] = []
        self._zip = pyzipper.AESZipFile(zip_path, "w", compression=pyzipper.ZIP_DEFLATED,
                                        encryption=pyzipper.WZ_AES)  # fmt: skip
        self._zip.setpassword(PASSWORD)
        self._zip.setencryption(pyzipper.WZ_AES, nbits=256)

    def add(self, path: Path) -> Entry:
        """Copy `path` into the archive and verify the stored bytes against its sha256 (the
        original is left in place: the caller removes it only after this returns)."""
        st = path.stat()
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        name = f"files/{len(self.entries) + 1:04d}_{path.name}"
        self._zip.writestr(name, data)
        entry = Entry(name, str(path), digest, len(data), st.st_mode & 0o7777, st.st_mtime)
        self.entries.append(entry)
        return entry

    def close(self) -> list[Entry]:
        self._zip.writestr(MANIFEST, json.dumps([asdict(e) for e in self.entries], indent=2))
        self._zip.close()
        self.zip_path.with_suffix(".manifest.json").write_text(
            json.dumps([asdict(e) for e in self.entries], indent=2), encoding="utf-8"
        )
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
            if hashlib.sha256(z.read(e.entry)).hexdigest() != e.sha256:
                raise ValueError(f"{zip_path}: {e.entry} does not match its sha256")
    return entries


def restore(zip_path: Path, overwrite: bool = False) -> list[Path]:
    """Write every quarantined file back to its recorded path, byte for byte, with its mode
    and mtime; refuses to overwrite a different file unless `overwrite`."""
    out = []
    with pyzipper.AESZipFile(zip_path) as z:
        z.setpassword(PASSWORD)
        entries = [Entry(**e) for e in json.loads(z.read(MANIFEST))]
        for e in entries:
            data = z.read(e.entry)
            if hashlib.sha256(data).hexdigest() != e.sha256:
                raise ValueError(f"{zip_path}: {e.entry} does not match its sha256")
            target = Path(e.path)
            if target.exists() and not overwrite and sha256_file(target) != e.sha256:
                raise FileExistsError(f"{target} exists with other content (use overwrite)")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".wormhunt-restore")
            tmp.write_bytes(data)
            os.chmod(tmp, e.mode)
            os.replace(tmp, target)
            os.utime(target, (e.mtime, e.mtime))
            if sha256_file(target) != e.sha256:
                raise ValueError(f"{target}: restored bytes differ from the quarantine")
            out.append(target)
    return out
