"""BigQuery catalog SQL, parameters and error mapping, checked without a server."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
from decimal import Decimal

import pytest
import sqlglot
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from connectors.bigquery import (
    _column,
    dataset_statements,
    query_parameters,
    schemas_statement,
    translate_bigquery_error,
)
from connectors.errors import (
    AuthenticationError,
    DatabaseNotFoundError,
    HostUnreachableError,
    PermissionDeniedError,
    QueryError,
    QueryTimeoutError,
)


def test_statements_parse_and_quote() -> None:
    for sql in dataset_statements("my-proj", "sa`les").values():
        sqlglot.parse_one(sql, read="bigquery")
        assert "`my-proj`.`sa``les`.INFORMATION_SCHEMA" in sql
    sql, params = schemas_statement("my-proj", "EU", ["a'b"])
    sqlglot.parse_one(sql, read="bigquery")
    assert "`region-eu`" in sql and "a'b" not in sql and params == {"schemas": ["a'b"]}


def test_parameter_types() -> None:
    params = query_parameters({"b": True, "i": 1, "f": 1.5, "d": Decimal("1.2"),
                               "day": dt.date(2024, 1, 1), "s": "x", "arr": [1, 2]})
    kinds = {p.name: getattr(p, "type_", None) or p.array_type for p in params}
    assert kinds == {"b": "BOOL", "i": "INT64", "f": "FLOAT64", "d": "NUMERIC",
                     "day": "DATE", "s": "STRING", "arr": "INT64"}
    assert [p.name for p in query_parameters([1, "a"])] == [None, None]


def test_column_modifiers() -> None:
    row = {"column_name": "c", "ordinal_position": 1, "is_nullable": "NO",
           "data_type": "NUMERIC(12, 2)", "description": None}
    col = _column(row)
    assert (col.precision, col.scale, col.nullable) == (12, 2, False)
    assert _column({**row, "data_type": "STRING(100)"}).max_length == 100


@pytest.mark.parametrize(("exc", "expected"), [
    (auth_exc.RefreshError("bad key"), AuthenticationError),
    (gexc.Forbidden("Access Denied"), PermissionDeniedError),
    (gexc.NotFound("Not found: Dataset p:d"), DatabaseNotFoundError),
    (gexc.NotFound("Not found: Table p:d.t"), QueryError),
    (gexc.BadRequest("Syntax error"), QueryError),
    (concurrent.futures.TimeoutError(), QueryTimeoutError),
    (gexc.RetryError("Deadline exceeded", cause=None), HostUnreachableError),
])
def test_error_mapping(exc: Exception, expected: type) -> None:
    assert isinstance(translate_bigquery_error(exc), expected)
