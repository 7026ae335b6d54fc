"""Snowflake catalog SQL and error mapping, checked without a server."""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot
from snowflake.connector import errors as sf_errors

from connectors.errors import AuthenticationError, QueryError, QueryTimeoutError
from connectors.snowflake import (
    SnowflakeConnector,
    catalog_statements,
    key_statements,
    translate_snowflake_error,
)


def test_catalog_statements_parse_and_quote() -> None:
    stmts = catalog_statements('we"ird db', ["SALES", "O'Brien"])
    for sql, params in stmts.values():
        sqlglot.parse_one(sql.replace("%s", "'x'"), read="snowflake")
        assert '"we""ird db".INFORMATION_SCHEMA' in sql
        assert "O'Brien" not in sql and "O'Brien" in params
    assert key_statements("SHOP", "SA LES")["primary_keys"][0] == (
        'SHOW PRIMARY KEYS IN SCHEMA "SHOP"."SA LES"')


def test_foreign_keys_from_show_imported_keys() -> None:
    from connectors.catalog import Table

    conn = SnowflakeConnector.__new__(SnowflakeConnector)
    rows = {
        "SHOW PRIMARY KEYS IN SCHEMA \"SHOP\".\"SALES\"": [
            {"schema_name": "SALES", "table_name": "A", "column_name": "K2", "key_sequence": 2},
            {"schema_name": "SALES", "table_name": "A", "column_name": "K1", "key_sequence": 1},
        ],
        "SHOW IMPORTED KEYS IN SCHEMA \"SHOP\".\"SALES\"": [
            {"fk_schema_name": "SALES", "fk_table_name": "B", "fk_column_name": "A_K2",
             "pk_database_name": "SHOP", "pk_schema_name": "SALES", "pk_table_name": "A",
             "pk_column_name": "K2", "key_sequence": 2, "fk_name": "B_A"},
            {"fk_schema_name": "SALES", "fk_table_name": "B", "fk_column_name": "A_K1",
             "pk_database_name": "SHOP", "pk_schema_name": "SALES", "pk_table_name": "A",
             "pk_column_name": "K1", "key_sequence": 1, "fk_name": "B_A"},
        ],
    }
    conn._rows = lambda sql, params=(): rows[sql]  # type: ignore[method-assign]
    tables = {("SALES", n): Table(database="SHOP", schema="SALES", name=n) for n in "AB"}
    conn._keys(key_statements("SHOP", "SALES"), tables)
    assert tables[("SALES", "A")].primary_key == ["K1", "K2"]
    [fk] = tables[("SALES", "B")].foreign_keys
    assert (fk.columns, fk.referenced_table, fk.referenced_columns) == (
        ["A_K1", "A_K2"], "A", ["K1", "K2"])


@pytest.mark.parametrize(("exc", "expected"), [
    (sf_errors.DatabaseError(msg="Incorrect username or password", errno=390100,
                             sqlstate="28000"), AuthenticationError),
    (sf_errors.ProgrammingError(msg="SQL execution canceled", errno=604), QueryTimeoutError),
    (sf_errors.ProgrammingError(msg="Statement reached its statement or warehouse timeout",
                                errno=630), QueryTimeoutError),
    (sf_errors.ProgrammingError(msg="syntax error", errno=1003), QueryError),
])
def test_error_mapping(exc: Any, expected: type) -> None:
    assert isinstance(translate_snowflake_error(exc), expected)
    assert translate_snowflake_error(ValueError("x")) is None
