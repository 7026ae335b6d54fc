"""Databricks connector over the wire: databricks-sql-connector (Thrift over HTTP) against
the fake warehouse in tests/stands/_databricks_server.py (the connector's own TCLIService
served over DuckDB)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors import connect
from connectors.errors import (
    AuthenticationError,
    HostUnreachableError,
    QueryError,
    QueryTimeoutError,
)
from tests.stands._common import Handle
from tests.stands.fixtures import closed_port, databricks_stand  # noqa: F401

pytestmark = pytest.mark.integration

SEED = [
    "CREATE CATALOG shop",
    "CREATE SCHEMA shop.sales",
    "CREATE TABLE shop.sales.customers (id INT NOT NULL, name STRING, signup DATE, "
    "score DECIMAL(5,2), CONSTRAINT customers_pk PRIMARY KEY (id))",
    "CREATE TABLE shop.sales.orders (id BIGINT NOT NULL, customer_id INT, "
    "amount DECIMAL(12,2), note STRING DEFAULT 'none', paid BOOLEAN, created TIMESTAMP, "
    "CONSTRAINT orders_pk PRIMARY KEY (id), CONSTRAINT orders_customer_fk "
    "FOREIGN KEY (customer_id) REFERENCES shop.sales.customers (id))",
    "COMMENT ON TABLE shop.sales.customers IS 'all customers'",
    "COMMENT ON COLUMN shop.sales.customers.name IS 'full name'",
    "CREATE VIEW shop.sales.big_orders AS SELECT * FROM shop.sales.orders WHERE amount > 100",
    "INSERT INTO shop.sales.customers VALUES (1, 'Ada', DATE '2024-01-02', 99.5), "
    "(2, 'Grace', DATE '2024-02-03', 87.25), (3, 'Edsger', NULL, NULL)",
    "INSERT INTO shop.sales.orders VALUES (1, 1, 10.5, 'first', true, "
    "TIMESTAMP '2024-01-03 10:00:00'), (2, 1, 200, NULL, false, NULL), "
    "(3, 2, 5, 'x', true, NULL), (4, 3, 150.25, 'y', NULL, NULL)",
]


def creds(stand: Handle, **over: Any) -> dict[str, Any]:
    return {"type": "databricks", "server_hostname": f"http://{stand.host}",
            "port": stand.port, "http_path": stand.extra["http_path"],
            "access_token": stand.extra["token"], "catalog": "shop", "connect_timeout_s": 5,
            **over}


@pytest.fixture(scope="module")
def seeded(databricks_stand: Handle) -> Handle:  # noqa: F811
    from databricks import sql

    from connectors.credentials import parse_credentials
    from connectors.databricks import connect_kwargs

    kwargs = connect_kwargs(parse_credentials(creds(databricks_stand, catalog=None)))
    with sql.connect(**kwargs) as conn, conn.cursor() as cur:
        for stmt in SEED:
            cur.execute(stmt)
    return databricks_stand


@pytest.fixture
def dbx(seeded: Handle) -> Iterator[Any]:
    with connect(creds(seeded)) as conn:
        yield conn


def test_connection(dbx: Any) -> None:
    assert dbx.test_connection().warehouse_type == "databricks"


def test_introspect_schema(dbx: Any) -> None:
    catalog = dbx.introspect({"schemas": ["sales"]})
    assert [d.name for d in catalog.databases] == ["shop"]
    assert [s.name for s in catalog.schemas] == ["sales"]
    tables = {t.name: t for t in catalog.tables}
    assert set(tables) == {"customers", "orders", "big_orders"}

    customers = tables["customers"]
    assert (customers.kind, customers.comment) == ("table", "all customers")
    assert customers.primary_key == ["id"]
    assert [(c.name, c.data_type, c.position) for c in customers.columns] == [
        ("id", "INT", 1), ("name", "STRING", 2), ("signup", "DATE", 3),
        ("score", "DECIMAL(5,2)", 4)]
    assert customers.column("id").nullable is False
    assert customers.column("name").comment == "full name"
    assert (customers.column("score").precision, customers.column("score").scale) == (5, 2)

    orders = tables["orders"]
    assert orders.primary_key == ["id"]
    assert orders.column("note").default is not None
    assert [(fk.columns, fk.referenced_schema, fk.referenced_table, fk.referenced_columns)
            for fk in orders.foreign_keys] == [(["customer_id"], "sales", "customers", ["id"])]

    view = tables["big_orders"]
    assert view.kind == "view" and view.view_definition
    assert [c.name for c in view.columns][:2] == ["id", "customer_id"]


def test_introspect_all_catalogs(seeded: Handle) -> None:
    with connect(creds(seeded, catalog=None)) as conn:
        catalog = conn.introspect({"tables": ["sales.orders"]})
    assert [d.name for d in catalog.databases] == ["shop"]
    assert [t.qualified_name for t in catalog.tables] == ["shop.sales.orders"]


def test_query_max_rows(dbx: Any) -> None:
    result = dbx.query("SELECT id, amount, created FROM shop.sales.orders ORDER BY id",
                       max_rows=2)
    assert result.row_count == 2 and result.has_more_rows
    assert [(c.name, c.type) for c in result.columns] == [
        ("id", "bigint"), ("amount", "decimal"), ("created", "timestamp")]
    assert result.rows[0][:2] == [1, "10.50"]
    exact = dbx.query("SELECT id FROM shop.sales.orders", max_rows=4)
    assert exact.row_count == 4 and not exact.has_more_rows


def test_query_params(dbx: Any) -> None:
    result = dbx.query("SELECT name FROM shop.sales.customers WHERE id = :id", {"id": 2})
    assert result.rows == [["Grace"]]


def test_query_error(dbx: Any) -> None:
    with pytest.raises(QueryError):
        dbx.query("SELECT * FROM shop.sales.no_such_table")


def test_query_timeout_is_enforced(dbx: Any) -> None:
    start = time.monotonic()
    with pytest.raises(QueryTimeoutError):
        dbx.query("SELECT count(*) FROM range(100000000000)", timeout_s=1)
    assert time.monotonic() - start < 10
    assert dbx.query("SELECT 1 AS one").rows == [[1]]  # the session is still usable


def test_wrong_token(seeded: Handle) -> None:
    conn = connect(creds(seeded, access_token="dapi-wrong-0000"))
    with conn, pytest.raises(AuthenticationError) as info:
        conn.test_connection()
    assert "dapi-wrong-0000" not in str(info.value)


def test_unreachable_port() -> None:
    bad = {"type": "databricks", "server_hostname": "http://127.0.0.1", "port": closed_port(),
           "http_path": "/sql/1.0/warehouses/x", "access_token": "dapi-secret",
           "connect_timeout_s": 2}
    start = time.monotonic()
    with connect(bad) as conn, pytest.raises(HostUnreachableError):
        conn.test_connection()
    assert time.monotonic() - start < 20
