"""Decode the SDK's payload packets (SuperJSON strings) into Python values.

The SDK sends ``payload`` as a string plus ``payloadType``. For ``application/super+json``
the string is ``{"json": <plain JSON>, "meta": {"values": <annotations>}}``; annotations
restore what JSON loses: a ``Date`` becomes a ``datetime``, a ``bigint`` an ``int``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any


class PacketError(ValueError):
    """The payload cannot be decoded as its declared type."""


def _parse_date(value: Any) -> Any:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return value


_UNDEFINED = object()


def _convert(value: Any, annotation: Any) -> Any:
    kind = annotation[0] if isinstance(annotation, list) and annotation else annotation
    if kind == "Date":
        return _parse_date(value)
    if kind == "bigint":
        try:
            return int(value)
        except (TypeError, ValueError):
            return value
    if kind == "undefined":
        return _UNDEFINED
    if kind == "map" and isinstance(value, list):
        return {str(k): v for k, v in value}
    return value  # set → list, regexp/URL → str, custom types stay as sent


def _split(path: str) -> list[str]:
    # superjson escapes a literal dot in a key as "\."
    return [p.replace("\\.", ".") for p in re.split(r"(?<!\\)\.", path)]


def _apply(root: Any, path: list[str], annotation: Any) -> Any:
    if not path:
        return _convert(root, annotation)
    head, rest = path[0], path[1:]
    if isinstance(root, list):
        i = int(head)
        new = _apply(root[i], rest, annotation)
        root[i] = None if new is _UNDEFINED else new
    elif isinstance(root, dict):
        if head not in root:
            return root
        new = _apply(root[head], rest, annotation)
        if new is _UNDEFINED:
            del root[head]
        else:
            root[head] = new
    return root


def decode(text: str) -> Any:
    try:
        doc = json.loads(text)
    except (TypeError, json.JSONDecodeError) as exc:
        raise PacketError(f"payload is not valid SuperJSON: {exc}") from None
    if not isinstance(doc, dict) or "json" not in doc:
        raise PacketError("payload is not valid SuperJSON: missing top-level 'json'")
    value = doc["json"]
    values = (doc.get("meta") or {}).get("values")
    if isinstance(values, list):  # the whole value is annotated
        out = _convert(value, values)
        return None if out is _UNDEFINED else out
    if isinstance(values, dict):
        for path, annotation in values.items():
            # a key that itself contains a dot is taken literally
            literal = isinstance(value, dict) and path in value
            parts = [path] if literal else _split(path)
            try:
                value = _apply(value, parts, annotation)
            except (IndexError, ValueError, KeyError):
                continue  # an annotation that does not fit changes nothing
    return value


def decode_packet(payload: Any, payload_type: str | None) -> Any:
    """The Python value of a trigger packet, by its ``payloadType``."""
    if payload is None:
        return None
    if payload_type in (None, "application/json"):
        if isinstance(payload, str):
            try:
                return json.loads(payload)
            except json.JSONDecodeError:
                return payload
        return payload
    if payload_type == "application/super+json":
        if not isinstance(payload, str):
            raise PacketError("application/super+json payload must be a string")
        return decode(payload)
    if payload_type == "text/plain":
        return payload
    if payload_type == "application/store":
        raise PacketError(
            "payloads of 128 KiB or more (packet offload) are not supported; send a smaller "
            "payload or pass a reference to your own storage"
        )
    raise PacketError(f"unsupported payloadType {payload_type!r}")
