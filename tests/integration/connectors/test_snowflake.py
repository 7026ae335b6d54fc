"""Snowflake connector over the wire: snowflake-connector-python against fakesnow's server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors import connect
from connectors.errors import AuthenticationError, HostUnreachableError, QueryError
from tests.stands._common import Handle
from tests.stands.fixtures import closed_port, snowflake_stand  # noqa: F401

pytestmark = pytest.mark.integration

SEED = [
    "CREATE DATABASE SHOP",
    "CREATE SCHEMA SHOP.SALES COMMENT = 'sales data'",
    "CREATE TABLE SHOP.SALES.CUSTOMERS (ID INT PRIMARY KEY, NAME VARCHAR(100) NOT NULL "
    "COMMENT 'full name', SIGNUP DATE, SCORE NUMBER(5,2)) COMMENT = 'all customers'",
    "CREATE TABLE SHOP.SALES.ORDERS (ID NUMBER(10,0) PRIMARY KEY, CUSTOMER_ID INT "
    "REFERENCES SHOP.SALES.CUSTOMERS (ID), AMOUNT NUMBER(12,2), NOTE TEXT DEFAULT 'none', "
    "PAID BOOLEAN, CREATED TIMESTAMP_NTZ)",
    "CREATE VIEW SHOP.SALES.BIG_ORDERS COMMENT = 'orders over 100' AS "
    "SELECT * FROM SHOP.SALES.ORDERS WHERE AMOUNT > 100",
    "INSERT INTO SHOP.SALES.CUSTOMERS VALUES (1, 'Ada', '2024-01-02', 99.5), "
    "(2, 'Grace', '2024-02-03', 87.25), (3, 'Edsger', NULL, NULL)",
    "INSERT INTO SHOP.SALES.ORDERS VALUES (1, 1, 10.50, 'first', TRUE, '2024-01-03 10:00:00'), "
    "(2, 1, 200, NULL, FALSE, NULL), (3, 2, 5, 'x', TRUE, NULL), (4, 3, 150.25, 'y', NULL, NULL)",
]


def creds(stand: Handle, **over: Any) -> dict[str, Any]:
    return {
        "type": "snowflake", "account": stand.extra["account"], "user": stand.extra["user"],
        "password": stand.extra["password"], "host": stand.host, "port": stand.port,
        "protocol": "http", "database": "SHOP", "connect_timeout_s": 5, **over,
    }


@pytest.fixture(scope="module")
def seeded(snowflake_stand: Handle) -> Handle:  # noqa: F811
    import snowflake.connector

    conn = snowflake.connector.connect(
        user=snowflake_stand.extra["user"], password=snowflake_stand.extra["password"],
        account="fakesnow", host=snowflake_stand.host, port=snowflake_stand.port,
        protocol="http",
    )
    with conn:
        for stmt in SEED:
            conn.cursor().execute(stmt)
        # fakesnow keeps neither inline column comments nor quietly COMMENT ON COLUMN: it
        # applies the comment, then raises. Real Snowflake accepts both.
        with pytest.raises(snowflake.connector.errors.Error):
            conn.cursor().execute("COMMENT ON COLUMN SHOP.SALES.CUSTOMERS.NAME IS 'full name'")
    return snowflake_stand


@pytest.fixture
def sf(seeded: Handle) -> Iterator[Any]:
    with connect(creds(seeded)) as conn:
        yield conn


def test_connection(sf: Any) -> None:
    info = sf.test_connection()
    assert info.warehouse_type == "snowflake"
    assert info.server_version


def test_introspect_schema(sf: Any) -> None:
    catalog = sf.introspect({"schemas": ["SALES"]})
    assert [d.name for d in catalog.databases] == ["SHOP"]
    assert [s.name for s in catalog.schemas] == ["SALES"]
    tables = {t.name: t for t in catalog.tables}
    assert set(tables) == {"CUSTOMERS", "ORDERS", "BIG_ORDERS"}

    customers = tables["CUSTOMERS"]
    assert customers.kind == "table" and customers.comment == "all customers"
    assert customers.row_count == 3
    assert customers.primary_key == ["ID"]
    assert [c.name for c in customers.columns] == ["ID", "NAME", "SIGNUP", "SCORE"]
    name = customers.column("NAME")
    assert (name.data_type, name.nullable, name.max_length) == ("VARCHAR(100)", False, 100)
    assert name.comment == "full name"
    score = customers.column("SCORE")
    assert (score.data_type, score.precision, score.scale) == ("NUMBER(5,2)", 5, 2)
    assert customers.column("SIGNUP").data_type == "DATE"

    orders = tables["ORDERS"]
    assert orders.primary_key == ["ID"]
    assert orders.column("AMOUNT").data_type == "NUMBER(12,2)"
    assert orders.column("PAID").data_type == "BOOLEAN"
    assert orders.column("NOTE").default is not None and "none" in orders.column("NOTE").default

    view = tables["BIG_ORDERS"]
    assert view.kind == "view" and view.row_count is None
    assert view.view_definition and "AMOUNT > 100" in view.view_definition.upper()
    assert [c.position for c in view.columns] == list(range(1, 7))


def test_introspect_filters(sf: Any) -> None:
    catalog = sf.introspect({"tables": ["ORD*"]})
    assert [t.name for t in catalog.tables] == ["ORDERS"]
    catalog = sf.introspect({"schemas": ["NOPE"]})
    assert catalog.tables == [] and catalog.schemas == []


def test_query_max_rows(sf: Any) -> None:
    result = sf.query("SELECT ID, AMOUNT, CREATED FROM SHOP.SALES.ORDERS ORDER BY ID", max_rows=2)
    assert result.row_count == 2 and result.has_more_rows
    assert [c.name for c in result.columns] == ["ID", "AMOUNT", "CREATED"]
    assert result.rows[0] == [1, "10.50", "2024-01-03T10:00:00"]
    exact = sf.query("SELECT ID FROM SHOP.SALES.ORDERS", max_rows=4)
    assert exact.row_count == 4 and not exact.has_more_rows


def test_query_params(sf: Any) -> None:
    result = sf.query("SELECT NAME FROM SHOP.SALES.CUSTOMERS WHERE ID = %s", [2])
    assert result.rows == [["Grace"]]
    named = sf.query("SELECT NAME FROM SHOP.SALES.CUSTOMERS WHERE ID = %(id)s", {"id": 3})
    assert named.rows == [["Edsger"]]


def test_query_error(sf: Any) -> None:
    with pytest.raises(QueryError):
        sf.query("SELECT * FROM SHOP.SALES.NO_SUCH_TABLE")


def test_wrong_password(seeded: Handle) -> None:
    conn = connect(creds(seeded, password="wrong-password-123"))
    with conn, pytest.raises(AuthenticationError) as info:
        conn.test_connection()
    assert "wrong-password-123" not in str(info.value)
    assert info.value.__cause__ is not None


def test_unreachable_port() -> None:
    bad = {"type": "snowflake", "account": "fakesnow", "user": "u", "password": "p-secret",
           "host": "127.0.0.1", "port": closed_port(), "protocol": "http",
           "connect_timeout_s": 3}
    start = time.monotonic()
    with connect(bad) as conn, pytest.raises(HostUnreachableError):
        conn.test_connection()
    assert time.monotonic() - start < 20
