"""SQL Server connector over the wire: pyodbc + FreeTDS against pysqlbridge.

pysqlbridge serves CSV files read-only: no DDL, so no keys, views or comments, and no ``?``
parameters. Those parts are tested on the SQL text in tests/unit/connectors/test_sqlserver_sql.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors import connect
from connectors.errors import AuthenticationError, HostUnreachableError, QueryError
from tests.stands._common import Handle
from tests.stands.fixtures import closed_port, sqlserver_stand  # noqa: F401

pytestmark = pytest.mark.integration


def creds(stand: Handle, **over: Any) -> dict[str, Any]:
    return {"type": "sqlserver", "host": stand.host, "port": stand.port,
            "database": "master", "user": stand.extra["user"],
            "password": stand.extra["password"], "odbc_driver": stand.extra["driver"],
            "tds_version": "7.4", "encrypt": False, "connect_timeout_s": 5, **over}


@pytest.fixture
def mssql(sqlserver_stand: Handle) -> Iterator[Any]:  # noqa: F811
    with connect(creds(sqlserver_stand)) as conn:
        yield conn


def test_connection(mssql: Any) -> None:
    info = mssql.test_connection()
    assert info.server_version and "SQL Server" in info.server_version


def test_introspect(mssql: Any) -> None:
    catalog = mssql.introspect()
    assert [d.name for d in catalog.databases] == ["pysqlbridge"]
    assert [s.name for s in catalog.schemas] == ["dbo"]
    tables = {t.name: t for t in catalog.tables}
    assert set(tables) == {"customers", "orders"}
    customers = tables["customers"]
    assert customers.kind == "table" and customers.row_count is None  # no partition stats
    assert [(c.name, c.data_type, c.position) for c in customers.columns] == [
        ("id", "int", 1), ("name", "nvarchar(6)", 2), ("signup", "nvarchar(10)", 3),
        ("score", "float", 4), ("active", "nvarchar(5)", 5)]
    assert customers.column("name").max_length == 6
    assert customers.primary_key == [] and customers.foreign_keys == []


def test_introspect_filters(mssql: Any) -> None:
    assert [t.name for t in mssql.introspect({"tables": ["ord*"]}).tables] == ["orders"]
    assert mssql.introspect({"schemas": ["sales"]}).tables == []


def test_query_max_rows(mssql: Any) -> None:
    result = mssql.query("SELECT id, amount, note FROM orders ORDER BY id", max_rows=3)
    assert result.row_count == 3 and result.has_more_rows
    assert [c.name for c in result.columns] == ["id", "amount", "note"]
    assert result.rows[0] == [1, 10.5, "first"]
    exact = mssql.query("SELECT id FROM orders", max_rows=5)
    assert exact.row_count == 5 and not exact.has_more_rows


def test_query_error(mssql: Any) -> None:
    with pytest.raises(QueryError):
        mssql.query("SELECT * FROM no_such_table")


def test_wrong_password(sqlserver_stand: Handle) -> None:  # noqa: F811
    conn = connect(creds(sqlserver_stand, password="wrong-pass-777"))
    with conn, pytest.raises(AuthenticationError) as info:
        conn.test_connection()
    assert "wrong-pass-777" not in str(info.value)


def test_unreachable_port() -> None:
    bad = {"type": "sqlserver", "host": "127.0.0.1", "port": closed_port(), "database": "m",
           "user": "u", "password": "secret-x", "odbc_driver": "FreeTDS", "encrypt": False,
           "connect_timeout_s": 3}
    start = time.monotonic()
    with connect(bad) as conn, pytest.raises(HostUnreachableError):
        conn.test_connection()
    assert time.monotonic() - start < 15
