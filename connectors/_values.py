"""Turn driver values into JSON-friendly Python values, the same way for every warehouse.

| driver value                 | becomes                                                    |
|------------------------------|------------------------------------------------------------|
| None, bool, int, str         | unchanged                                                  |
| float                        | unchanged; NaN / ±Infinity become the strings "NaN" etc.   |
| Decimal                      | str, exact (``"1234.50"``): floats would lose cents         |
| datetime / date / time       | ISO 8601 string (``isoformat()``), offset kept if aware    |
| timedelta                    | float seconds                                              |
| bytes / bytearray / memoryview | base64 string                                            |
| UUID, IP address, other      | ``str(value)``                                             |
| dict / list / tuple / set    | normalised recursively (dict keys become str)              |
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

__all__ = ["normalize_row", "normalize_value"]


def normalize_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _non_finite(value)
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): normalize_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [normalize_value(v) for v in value]
    return str(value)


def normalize_row(row: Sequence[Any]) -> list[Any]:
    return [normalize_value(v) for v in row]


def _non_finite(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _decimal(value: Decimal) -> str:
    if value.is_nan():
        return "NaN"
    if value.is_infinite():
        return "Infinity" if value > 0 else "-Infinity"
    # Fixed-point notation: str(Decimal("1E+3")) would give "1E+3", which looks like text.
    return format(value, "f")
