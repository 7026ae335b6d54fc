"""Payload encoding: JSON-safe values, with SecretStr fields encrypted at rest.

A ``SecretStr`` in a payload is stored as ``{"$secret": "<Fernet token>"}``: the run table,
logs and CLI never see the plain value; the worker decrypts it just before validation.
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import enum
import os
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

MASK = "**********"
_MARK = "$secret"


@lru_cache(maxsize=4)
def _fernet(key: str) -> Any:
    from cryptography.fernet import Fernet

    return Fernet(key.encode())


def load_or_create_key(settings: Any) -> str:
    """The configured key, or (embedded default only) one generated into ``data_dir``."""
    if settings.encryption_key is not None:
        return str(settings.encryption_key.get_secret_value())
    path = Path(settings.data_dir) / "secret.key"
    if path.exists():
        return path.read_text().strip()
    from cryptography.fernet import Fernet

    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def encrypt(key: str, plain: str) -> str:
    return str(_fernet(key).encrypt(plain.encode()).decode())


def decrypt(key: str, token: str) -> str:
    return str(_fernet(key).decrypt(token.encode()).decode())


def encode(value: Any, key: str) -> Any:
    """Turn a payload (models, dataclasses-free plain data) into JSON-safe data."""
    if isinstance(value, BaseModel):
        # python mode keeps SecretStr objects, so the branch below encrypts them
        return encode(value.model_dump(mode="python", by_alias=True), key)
    if isinstance(value, SecretStr):
        return {_MARK: encrypt(key, value.get_secret_value())}
    if isinstance(value, SecretBytes):
        return {_MARK: encrypt(key, value.get_secret_value().decode())}
    if isinstance(value, dict):
        return {str(k): encode(v, key) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [encode(v, key) for v in value]
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal | uuid.UUID | Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def decode(value: Any, key: str) -> Any:
    """Decrypt secret markers back to plain strings (for validation inside the worker)."""
    if isinstance(value, dict):
        if len(value) == 1 and _MARK in value:
            return decrypt(key, value[_MARK])
        return {k: decode(v, key) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, key) for v in value]
    return value


def mask(value: Any) -> Any:
    """For display: secret markers become ``**********``."""
    if isinstance(value, dict):
        if len(value) == 1 and _MARK in value:
            return MASK
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def safe_json(value: Any) -> Any:
    """JSON-safe data with secrets masked (outputs, log attributes, metadata)."""
    if isinstance(value, SecretStr | SecretBytes):
        return MASK
    if isinstance(value, BaseModel):
        return safe_json(value.model_dump(mode="python", by_alias=True))
    if isinstance(value, dict):
        return {str(k): safe_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [safe_json(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return encode(value, "")


def encrypt_by_schema(value: Any, schema: dict[str, Any] | None, key: str) -> Any:
    """Encrypt the string values a task's payload JSON Schema marks as secret
    (``format: password`` / ``writeOnly`` — how pydantic describes ``SecretStr``).

    A producer that triggers by id sends plain JSON, without the task's pydantic model; the
    schema synced to ``task_definitions`` still tells us which fields are secrets, so they
    are encrypted before the row is written, exactly as when the model is used.
    """
    if not schema:
        return value
    defs = schema.get("$defs", {})
    return _walk(value, schema, defs, key, depth=0)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return dict(defs.get(ref.split("/")[-1], {}))
    return node


def _walk(value: Any, node: Any, defs: dict[str, Any], key: str, depth: int) -> Any:
    if not isinstance(node, dict) or depth > 32:
        return value
    node = _resolve(node, defs)
    if isinstance(value, str) and (node.get("format") == "password" or node.get("writeOnly")):
        return {_MARK: encrypt(key, value)}
    for combo in ("anyOf", "oneOf", "allOf"):
        for option in node.get(combo, []):
            out = _walk(value, option, defs, key, depth + 1)
            if out is not value:
                return out
    if isinstance(value, dict) and not (len(value) == 1 and _MARK in value):
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        return {
            k: _walk(
                v, props.get(k, extra if isinstance(extra, dict) else None), defs, key, depth + 1
            )
            for k, v in value.items()
        }
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [_walk(v, node["items"], defs, key, depth + 1) for v in value]
    return value
