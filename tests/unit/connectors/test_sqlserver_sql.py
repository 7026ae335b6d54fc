"""SQL Server catalog SQL (keys, comments, sizes: what pysqlbridge cannot serve), the ODBC
connection string and error mapping, checked without a server."""

from __future__ import annotations

from tests.stands.sqlserver import ensure_driver

# pyodbc loads libodbc (Debian's unixodbc) on import, at collection time: a fresh machine
# gets it here, before the import, rather than failing the whole session's collection
ensure_driver()

import pyodbc  # noqa: E402
import pytest  # noqa: E402
import sqlglot  # noqa: E402

from connectors.credentials import parse_credentials  # noqa: E402
from connectors.errors import (  # noqa: E402
    AuthenticationError,
    DatabaseNotFoundError,
    HostUnreachableError,
    QueryError,
    QueryTimeoutError,
)
from connectors.sqlserver import (  # noqa: E402
    SQLServerConnector,
    _column,
    catalog_statements,
    connection_string,
    translate_pyodbc_error,
)


def test_catalog_statements_parse_and_quote() -> None:
    stmts = catalog_statements("sh]op", ["dbo", "O'Brien"])
    assert set(stmts) == {"objects", "columns", "primary_keys", "foreign_keys", "sizes"}
    for sql in stmts.values():
        sqlglot.parse_one(sql, read="tsql")
        assert "[sh]]op].sys." in sql
        assert "N'O''Brien'" in sql


def test_keys_and_sizes_assembled_from_rows() -> None:
    from connectors.catalog import Table

    conn = SQLServerConnector.__new__(SQLServerConnector)
    tables = {1: Table(database="d", schema="dbo", name="a"),
              2: Table(database="d", schema="dbo", name="b")}
    conn._foreign_keys([
        {"fk_id": 9, "fk_name": "fk_b_a", "parent_object_id": 2, "column_name": "a1",
         "ref_schema": "dbo", "ref_table": "a", "ref_column": "k1"},
        {"fk_id": 9, "fk_name": "fk_b_a", "parent_object_id": 2, "column_name": "a2",
         "ref_schema": "dbo", "ref_table": "a", "ref_column": "k2"},
    ], tables)
    [fk] = tables[2].foreign_keys
    assert (fk.columns, fk.referenced_columns, fk.referenced_table) == (
        ["a1", "a2"], ["k1", "k2"], "a")
    conn._rows = lambda sql: [{"object_id": 1, "row_count": 5, "size_bytes": 8192}]  # type: ignore[method-assign]
    conn._sizes("sizes", tables)
    assert (tables[1].row_count, tables[1].size_bytes) == (5, 8192)


def test_column_types() -> None:
    base = {"name": "c", "column_id": 1, "is_nullable": 1, "default_value": "((0))",
            "comment": "note", "precision": 0, "scale": 0}
    assert _column({**base, "type_name": "nvarchar", "max_length": 200}).data_type == \
        "nvarchar(100)"
    assert _column({**base, "type_name": "varchar", "max_length": -1}).data_type == \
        "varchar(max)"
    dec = _column({**base, "type_name": "decimal", "max_length": 9, "precision": 12,
                   "scale": 2})
    assert (dec.data_type, dec.precision, dec.scale, dec.default) == (
        "decimal(12,2)", 12, 2, "((0))")


def test_connection_string() -> None:
    base = {"type": "sqlserver", "host": "db", "port": 1433, "database": "x;y",
            "user": "u", "password": "p}w;d"}
    ms = connection_string(parse_credentials(base))
    assert "DRIVER={ODBC Driver 18 for SQL Server}" in ms and "SERVER=tcp:db,1433" in ms
    assert "PWD={p}}w;d}" in ms and "DATABASE={x;y}" in ms and "Encrypt=yes" in ms
    tds = connection_string(parse_credentials({**base, "odbc_driver": "FreeTDS",
                                               "tds_version": "7.4", "encrypt": False}))
    assert "PORT=1433" in tds and "TDS_Version=7.4" in tds and "Encryption=off" in tds


@pytest.mark.parametrize(("exc", "expected"), [
    (pyodbc.ProgrammingError("28000", "Login failed for user 'u'. (18456)"),
     AuthenticationError),
    (pyodbc.ProgrammingError("42000", "Login failed for user 'u'. (18456)"),
     AuthenticationError),
    (pyodbc.ProgrammingError("42000", "Cannot open database \"x\" (4060)"),
     DatabaseNotFoundError),
    (pyodbc.OperationalError("HYT00", "[HYT00] Query timeout expired"), QueryTimeoutError),
    (pyodbc.OperationalError("08001", "Unable to connect to data source"),
     HostUnreachableError),
    (pyodbc.ProgrammingError("42S02", "Invalid object name 'x'"), QueryError),
])
def test_error_mapping(exc: Exception, expected: type) -> None:
    assert isinstance(translate_pyodbc_error(exc), expected)
