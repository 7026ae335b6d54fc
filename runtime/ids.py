"""Time-sortable ids: ``<prefix>_`` + 26 Crockford base32 chars (48-bit ms time + 80 random bits).

Sorting run ids sorts runs by creation time, so keyset pagination can order by id alone.
"""

from __future__ import annotations

import base64
import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


_B32 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())


def _encode26(value: int) -> str:
    """``_encode(value, 26)`` for a 128-bit value in C speed: base32 of 20 bytes is 32
    chars of which the last 26 carry the low 130 bits (the id is made once per run)."""
    return base64.b32encode(value.to_bytes(20, "big"))[6:].translate(_B32).decode()


def ulid() -> str:
    """A monotonic ULID: ids made in the same millisecond still sort in creation order."""
    global _last_ms, _last_rand
    with _lock:
        now = int(time.time() * 1000)
        if now <= _last_ms:
            now = _last_ms
            _last_rand += 1
        else:
            _last_rand = int.from_bytes(os.urandom(10), "big") >> 1  # room to increment
        _last_ms = now
        rand = _last_rand
    return _encode26((now << 80) | rand)


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid()}"


def run_id() -> str:
    return new_id("run")


def timestamp_prefix(ms: int) -> str:
    """The first 10 chars of any id created at ``ms`` (for id-range scans by time)."""
    return _encode(ms, 10)
