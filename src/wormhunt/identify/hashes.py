"""md5, sha1 and sha256 from one read of a file."""

from __future__ import annotations

import hashlib
from pathlib import Path

from wormhunt.identify.model import Hashes

CHUNK = 1 << 20


def hash_file(path: str | Path, keep: bool = False) -> tuple[Hashes, bytes | None]:
    """The three digests of `path` from a single read; with `keep`, also the content.

    Without `keep` the file is read in 1 MiB chunks, so memory stays flat whatever its size.
    With `keep` (the scanner: YARA, PE and ssdeep work on the same bytes) it is read in one
    call into one `bytes` object: joining chunks would cost a second copy, and yara-x only
    accepts `bytes`.
    """
    with open(path, "rb", buffering=0) as fh:
        if keep:
            data = fh.read()
            return hash_bytes(data), data
        md5, sha1, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha1(usedforsecurity=False), hashlib.sha256()
        while chunk := fh.read(CHUNK):
            md5.update(chunk)
            sha1.update(chunk)
            sha256.update(chunk)
    return Hashes(md5.hexdigest(), sha1.hexdigest(), sha256.hexdigest()), None


def hash_bytes(data: bytes) -> Hashes:
    return Hashes(
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
        hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )
