"""Trigger options on the wire (camelCase, as the SDK sends them) → the runtime's
``tasks.trigger`` options. Options the runtime has no equivalent for (region, named
concurrency limits, deployment pinning) are accepted and ignored, as unknown headers are: a
backend's existing calls keep working. ``debounce`` is taken by the single trigger and, as
before, ignored on batch items (the runtime debounces ``trigger()`` only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from runtime.durations import utcnow
from runtime.idempotency import IdempotencyKey

from ..superjson import PacketError, decode_packet
from .errors import ApiError

#: request-idempotency keys become run idempotency keys with this short life (the SDK
#: retries for ~10 s; a day leaves room for slow clients)
REQUEST_KEY_TTL = timedelta(days=1)


class _KeyOptions(BaseModel):
    key: str
    scope: str = "run"


class _Queue(BaseModel):
    name: str


class _Debounce(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    delay: str | int | float
    mode: str = "leading"
    maxDelay: str | int | float | None = None  # noqa: N815


class WireOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    payloadType: str | None = None  # noqa: N815 - wire names
    queue: _Queue | str | None = None
    concurrencyKey: str | None = None  # noqa: N815
    idempotencyKey: str | None = None  # noqa: N815
    idempotencyKeyTTL: str | int | None = None  # noqa: N815
    idempotencyKeyOptions: _KeyOptions | None = None  # noqa: N815
    delay: str | int | None = None
    ttl: str | int | None = None
    tags: str | list[str] | None = None
    maxAttempts: int | None = None  # noqa: N815
    metadata: dict[str, Any] | None = None
    maxDuration: float | None = None  # noqa: N815
    machine: str | None = None
    priority: float | None = None
    lockToVersion: str | None = None  # noqa: N815
    debounce: _Debounce | None = None


def parse_options(raw: Any) -> WireOptions:
    try:
        return WireOptions.model_validate(raw or {})
    except ValidationError as exc:
        raise ApiError(400, f"Invalid request body: {_first(exc)}") from None


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"options.{where}: {err.get('msg')}" if where else str(err.get("msg"))


def runtime_options(o: WireOptions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if o.queue is not None:
        out["queue"] = o.queue if isinstance(o.queue, str) else o.queue.name
    for wire, ours in (
        ("concurrencyKey", "concurrency_key"),
        ("idempotencyKeyTTL", "idempotency_key_ttl"),
        ("delay", "delay"),
        ("ttl", "ttl"),
        ("tags", "tags"),
        ("maxAttempts", "max_attempts"),
        ("metadata", "metadata"),
        ("maxDuration", "max_duration"),
        ("machine", "machine"),
        ("priority", "priority"),
        ("lockToVersion", "version"),
    ):
        value = getattr(o, wire)
        if value is not None:
            out[ours] = value
    if o.idempotencyKey:
        out["idempotency_key"] = wire_key(o.idempotencyKey, o.idempotencyKeyOptions)
    return out


def runtime_debounce(o: WireOptions) -> dict[str, Any] | None:
    """The single trigger's ``debounce`` in the runtime's shape (checked by it)."""
    if o.debounce is None:
        return None
    out: dict[str, Any] = {"key": o.debounce.key, "delay": o.debounce.delay,
                           "mode": o.debounce.mode}
    if o.debounce.maxDelay is not None:
        out["max_delay"] = o.debounce.maxDelay
    return out


def wire_key(hashed: str, opts: _KeyOptions | None) -> IdempotencyKey:
    """The SDK hashes keys client-side (sha256 of the parts joined by "-"); keep its hash
    as the key so ``idempotencyKeys.reset`` with the same hash finds the run."""
    key = IdempotencyKey(hashed)
    key.user_key = opts.key if opts is not None else hashed
    key.scope = opts.scope if opts is not None else "global"
    return key


def decode_payload(body: dict[str, Any], payload_type: str | None) -> Any:
    try:
        return decode_packet(body.get("payload"), payload_type)
    except PacketError as exc:
        raise ApiError(400 if "not supported" not in str(exc) else 413, str(exc)) from None


def apply_request_key(row: dict[str, Any], request_key: str | None) -> bool:
    """With no user idempotency key, the request key becomes the run's key, so a retried
    request collapses into the first run by the same unique index that guards user keys —
    no extra round trip on the trigger hot path. Returns True when applied."""
    if not request_key or row["idempotency_key"] is not None:
        return False
    row["idempotency_key"] = "req:" + request_key[:128]
    row["idempotency_key_scope"] = "request"
    row["idempotency_key_expires_at"] = utcnow() + REQUEST_KEY_TTL
    return True
