"""ssdeep (spamsum) fuzzy hashes, for PE files up to a size cap.

`ppdeep` (pure Python, the dependency the project names) is the reference, but it runs at
about 5 MiB/s per core, which made ssdeep most of the cost of a scan. `_spamsum_pass` is the
same algorithm (the spamsum rolling hash and the 6-bit table hash of ppdeep/ssdeep) compiled
with numba, at several hundred MiB/s; tests/test_identify.py checks that it gives exactly
ppdeep's output on many inputs. If numba cannot run, ppdeep is used.
"""

from __future__ import annotations

import numpy as np

SSDEEP_MAX = 32 << 20
BLOCKSIZE_MIN = 3
SPAMSUM_LENGTH = 64
HASH_INIT = 0x27
ROLL_WINDOW = 7
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# The 6-bit FNV step of spamsum: hash' = F[hash] ^ (byte & 63), where F multiplies by the low
# six bits (0x13) of the FNV prime 0x01000193, modulo 64.
_F = ((np.arange(64) * 0x13) & 63).astype(np.uint8)

try:
    from numba import njit
except ImportError:  # pragma: no cover
    njit = None


def _spamsum_pass_py(data, bs, table):  # compiled by numba below; plain Python is never used (too slow)
    out1 = np.zeros(SPAMSUM_LENGTH, dtype=np.uint8)
    out2 = np.zeros(SPAMSUM_LENGTH // 2, dtype=np.uint8)
    n1 = 0
    n2 = 0
    last1 = -1
    last2 = -1
    h1 = np.int64(0)
    h2 = np.int64(0)
    h3 = np.int64(0)
    win = np.zeros(ROLL_WINDOW, dtype=np.int64)
    b1 = HASH_INIT
    b2 = HASH_INIT
    rh = np.int64(0)
    mask = np.int64(0xFFFFFFFF)
    bs2 = bs * 2
    # bs is 3 * 2**n: `rh % bs == bs - 1` needs the low n bits of rh + 1 clear, a mask test that
    # fails for all but one byte in 2**n, so the division runs only then.
    low = bs & -bs
    low -= 1
    k = 0
    for i in range(data.shape[0]):
        c = np.int64(data[i])
        b1 = table[b1] ^ (c & 63)
        b2 = table[b2] ^ (c & 63)
        h2 = (h2 - h1 + ROLL_WINDOW * c) & mask
        h1 = (h1 + c - win[k]) & mask
        win[k] = c
        k += 1
        if k == ROLL_WINDOW:
            k = 0
        h3 = ((h3 << 5) & mask) ^ c
        rh = (h1 + h2 + h3) & mask
        if (rh + 1) & low == 0 and rh % bs == bs - 1:
            last1 = b1
            if n1 < SPAMSUM_LENGTH - 1:
                out1[n1] = b1
                n1 += 1
                b1 = HASH_INIT
                last1 = -1
            if rh % bs2 == bs2 - 1:
                last2 = b2
                if n2 < SPAMSUM_LENGTH // 2 - 1:
                    out2[n2] = b2
                    n2 += 1
                    b2 = HASH_INIT
                    last2 = -1
    return out1, n1, out2, n2, last1, last2, b1, b2, rh


_spamsum_pass = njit(cache=True, nogil=True)(_spamsum_pass_py) if njit else None


def _spamsum(data: bytes) -> str:
    arr = np.frombuffer(data, dtype=np.uint8)
    bs = BLOCKSIZE_MIN
    while bs * SPAMSUM_LENGTH < len(data):
        bs *= 2
    while True:
        out1, n1, out2, n2, last1, last2, b1, b2, rh = _spamsum_pass(arr, bs, _F)
        if bs > BLOCKSIZE_MIN and n1 < SPAMSUM_LENGTH // 2:
            bs //= 2
            continue
        s1 = "".join(B64[x] for x in out1[:n1])
        s2 = "".join(B64[x] for x in out2[:n2])
        if rh != 0:
            s1 += B64[b1]
            s2 += B64[b2]
        else:
            s1 += B64[last1] if last1 >= 0 else ""
            s2 += B64[last2] if last2 >= 0 else ""
        return f"{bs}:{s1}:{s2}"


def ssdeep(data: bytes, cap: int = SSDEEP_MAX) -> str | None:
    """The ssdeep hash of `data`, or None when empty or over `cap` bytes."""
    if not data or len(data) > cap:
        return None
    if _spamsum_pass is not None:
        try:
            return _spamsum(data)
        except Exception:  # numba unavailable at run time (no compiler cache, odd platform): use the reference
            pass
    import ppdeep

    return ppdeep.hash(data)
