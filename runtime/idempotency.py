"""``idempotency_keys.create`` with Trigger.dev v4 scopes.

Scope ``run`` (default) hashes the key with the parent run id, ``attempt`` also with the
parent's attempt number, ``global`` the key alone. Outside a run every scope is global.
A plain string passed as ``idempotency_key=`` is treated as ``create(key)`` (run scope), as
in Trigger.dev 4.3.1+.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .context import current

SCOPES = ("run", "attempt", "global")


class IdempotencyKey(str):
    """A key already hashed by ``create`` (so trigger does not hash it again)."""

    scope: str = "run"
    user_key: str = ""


def create(key: str | Sequence[str], *, scope: str = "run") -> IdempotencyKey:
    if scope not in SCOPES:
        raise ValueError(f"unknown idempotency scope {scope!r}; use one of {SCOPES}")
    parts = [key] if isinstance(key, str) else [str(p) for p in key]
    if isinstance(key, IdempotencyKey):
        return key
    user_key = "-".join(parts)
    if len(user_key) > 2048:
        raise ValueError("idempotency key is longer than 2048 characters")
    rc = current()
    material = list(parts)
    if rc is not None and scope in ("run", "attempt"):
        material.append(rc.run_id)
        if scope == "attempt":
            material.append(str(rc.attempt))
    out = IdempotencyKey(hashlib.sha256("\x1f".join(material).encode()).hexdigest())
    out.scope = scope if rc is not None else "global"
    out.user_key = user_key
    return out


def reset(task_id: str, key: str | Sequence[str], *, scope: str = "run") -> int:
    """Clear the key on matching runs so the next trigger creates a new run."""
    from .bootstrap import get_runtime

    hashed = key if isinstance(key, IdempotencyKey) else create(key, scope=scope)
    return get_runtime().store.reset_idempotency_key(task_id, str(hashed))


class _Namespace:
    create = staticmethod(create)
    reset = staticmethod(reset)


idempotency_keys = _Namespace()
