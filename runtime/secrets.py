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
