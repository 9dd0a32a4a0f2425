"""ssdeep with the pure-Python ppdeep (about 5 MiB/s per core), for PE files up to a size cap."""

from __future__ import annotations

SSDEEP_MAX = 32 << 20


def ssdeep(data: bytes, cap: int = SSDEEP_MAX) -> str | None:
    if not data or len(data) > cap:
        return None
    import ppdeep

    return ppdeep.hash(data)
