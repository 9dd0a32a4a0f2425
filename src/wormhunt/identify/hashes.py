"""md5, sha1 and sha256 in one chunked read of a file."""

from __future__ import annotations

import hashlib
from pathlib import Path

from wormhunt.identify.model import Hashes

CHUNK = 1 << 20


def hash_file(path: str | Path, keep: bool = False) -> tuple[Hashes, bytes | None]:
    """The three digests of `path`, read once in 1 MiB chunks; with `keep`, also the content.

    Keeping the content lets the YARA, PE and ssdeep engines work on the same single read.
    """
    md5, sha1, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha1(usedforsecurity=False), hashlib.sha256()
    parts: list[bytes] = []
    with open(path, "rb", buffering=0) as fh:
        while chunk := fh.read(CHUNK):
            md5.update(chunk)
            sha1.update(chunk)
            sha256.update(chunk)
            if keep:
                parts.append(chunk)
    data = b"".join(parts) if keep else None
    return Hashes(md5.hexdigest(), sha1.hexdigest(), sha256.hexdigest()), data


def hash_bytes(data: bytes) -> Hashes:
    return Hashes(
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
        hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )
