"""Databricks catalog SQL, connect arguments and error mapping, checked without a server."""

from __future__ import annotations

import pytest
import sqlglot
from databricks.sql import exc as dbexc

from connectors.credentials import parse_credentials
from connectors.databricks import catalog_statements, connect_kwargs, translate_databricks_error
from connectors.errors import (
    AuthenticationError,
    DatabaseNotFoundError,
    HostUnreachableError,
    QueryError,
    QueryTimeoutError,
)


def test_catalog_statements_parse_and_bind() -> None:
    stmts, params = catalog_statements("sh`op", ["sales", "o'brien"])
    assert params == {"s0": "sales", "s1": "o'brien"}
    for sql in stmts.values():
        sqlglot.parse_one(sql, read="databricks")
        assert "`sh``op`.information_schema" in sql and "o'brien" not in sql


def test_connect_kwargs() -> None:
    base = {"type": "databricks", "server_hostname": "adb-1.azuredatabricks.net",
            "http_path": "/sql/1.0/warehouses/abc", "access_token": "dapi-x"}
    kw = connect_kwargs(parse_credentials(base))
    assert kw["server_hostname"] == "adb-1.azuredatabricks.net" and "_connection_uri" not in kw
    local = connect_kwargs(parse_credentials({**base, "server_hostname": "http://127.0.0.1",
                                              "port": 8080}))
    assert local["_connection_uri"] == "http://127.0.0.1:8080/sql/1.0/warehouses/abc"
    assert local["server_hostname"] == "127.0.0.1"


@pytest.mark.parametrize(("exc", "expected"), [
    (dbexc.RequestError("Error during request", {"http-code": 403}), AuthenticationError),
    (dbexc.RequestError("Error during request", {"http-code": None}), HostUnreachableError),
    (dbexc.ServerOperationError("[STATEMENT_TIMEOUT] timed out", {}), QueryTimeoutError),
    (dbexc.ServerOperationError("[NO_SUCH_CATALOG_EXCEPTION] x", {}), DatabaseNotFoundError),
    (dbexc.ServerOperationError("[TABLE_OR_VIEW_NOT_FOUND] t", {}), QueryError),
])
def test_error_mapping(exc: Exception, expected: type) -> None:
    assert isinstance(translate_databricks_error(exc), expected)
