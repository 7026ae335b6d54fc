"""Error tree, secret scrubbing, value normalisation, the package surface."""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from decimal import Decimal
from typing import Any

import pytest

import connectors
from connectors import errors
from connectors._values import normalize_value
from connectors.base import quote_identifier

TREE = {
    errors.ConnectionFailedError: ("CONNECTION_FAILED", True, errors.ConnectorError),
    errors.HostUnreachableError: ("HOST_UNREACHABLE", True, errors.ConnectionFailedError),
    errors.AuthenticationError: ("AUTH_FAILED", False, errors.ConnectorError),
    errors.PermissionDeniedError: ("PERMISSION_DENIED", False, errors.ConnectorError),
    errors.DatabaseNotFoundError: ("DATABASE_NOT_FOUND", False, errors.ConnectorError),
    errors.QueryTimeoutError: ("QUERY_TIMEOUT", True, errors.ConnectorError),
    errors.QueryError: ("QUERY_FAILED", False, errors.ConnectorError),
    errors.ReadOnlyViolationError: ("READ_ONLY_VIOLATION", False, errors.QueryError),
}


@pytest.mark.parametrize("cls", list(TREE))
def test_tree_codes_and_retryability(cls: type[errors.ConnectorError]) -> None:
    code, retryable, parent = TREE[cls]
    err = cls("boom")
    assert (err.code, err.retryable, cls.__bases__[0]) == (code, retryable, parent)
    assert err.to_dict() == {"code": code, "message": "boom", "retryable": retryable}


def test_tree_is_drawn_in_the_docstring() -> None:
    doc = errors.__doc__ or ""
    for cls, (code, _, _) in TREE.items():
        assert cls.__name__ in doc and code in doc


def test_scrub_removes_secrets_and_password_fragments() -> None:
    text = ("failed for password=hunter2secret; dsn postgresql://bob:pa55word@db/x "
            "token: 'abc def' and the raw value Zq-91-secret")
    out = errors.scrub(text, ["Zq-91-secret"])
    for leaked in ("hunter2secret", "pa55word", "abc def", "Zq-91-secret"):
        assert leaked not in out
    assert "postgresql://bob:***@db/x" in out


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes ``import pymysql`` raise ImportError, as if not installed.
    monkeypatch.setitem(sys.modules, "pymysql", None)
    with pytest.raises(errors.MissingDriverError) as err:
        connectors.connect({"type": "mysql", "host": "h", "port": 3306, "database": "d",
                            "user": "u", "password": "Secret-1234"})
    assert "pip install 'buster-jobs[mysql]'" in str(err.value)
    assert err.value.code == "MISSING_DRIVER" and "Secret-1234" not in str(err.value)
    assert isinstance(err.value.__cause__, ImportError)


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), (True, True), (7, 7), ("x", "x"), (1.5, 1.5),
    (float("nan"), "NaN"), (float("-inf"), "-Infinity"),
    (Decimal("1234.50"), "1234.50"), (Decimal("1E+3"), "1000"), (Decimal("NaN"), "NaN"),
    (dt.date(2024, 2, 29), "2024-02-29"),
    (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "2024-01-02T03:04:05+00:00"),
    (dt.time(12, 30), "12:30:00"), (dt.timedelta(minutes=2), 120.0),
    (b"\x01\x02", "AQI="), (memoryview(b"\x01\x02"), "AQI="),
    (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    ({"a": [Decimal("1.0"), dt.date(2024, 1, 1)]}, {"a": ["1.0", "2024-01-01"]}),
    ((1, b"\x00"), [1, "AA=="]),
])
def test_normalize_value(value: Any, expected: Any) -> None:
    assert normalize_value(value) == expected


def test_quote_identifier() -> None:
    assert quote_identifier('we"ird') == '"we""ird"'
    assert quote_identifier("a`b", "`") == "`a``b`"
    assert quote_identifier("a]b", "[", "]") == "[a]]b]"
    with pytest.raises(ValueError):
        quote_identifier("a\x00b")


def test_public_surface_is_exact() -> None:
    assert sorted(connectors.__all__) == sorted(set(connectors.__all__))
    assert {"connect", "Connector", "Catalog", "Table", "Column", "ForeignKey",
            "ColumnProfile", "IntrospectionFilters", "parse_credentials",
            "MissingDriverError", "InvalidCredentialsError"} <= set(connectors.__all__)
    for name in connectors.__all__:
        assert hasattr(connectors, name), name
    public = {n for n in vars(connectors) if not n.startswith("_")} - {
        "annotations", "importlib", "Any", "base", "catalog", "credentials", "errors",
        "_values"}
    assert public - set(connectors.__all__) <= {"postgres", "mysql", "redshift", "duckdb",
                                                "sample_warehouse", "snowflake", "bigquery",
                                                "sqlserver", "databricks"}
