"""BigQuery connector over the wire: google-cloud-bigquery against local-bigquery."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors import connect
from connectors.errors import HostUnreachableError, QueryError
from tests.stands._common import Handle
from tests.stands.fixtures import bigquery_stand, closed_port  # noqa: F401

pytestmark = pytest.mark.integration

SEED = [
    "CREATE SCHEMA sales OPTIONS(description='sales data')",
    "CREATE TABLE sales.customers (id INT64 NOT NULL OPTIONS(description='customer id'), "
    "name STRING(100), signup DATE, score NUMERIC(5, 2), PRIMARY KEY (id) NOT ENFORCED) "
    "OPTIONS(description='all customers')",
    "CREATE TABLE sales.orders (id INT64 NOT NULL, customer_id INT64, amount NUMERIC(12, 2), "
    "note STRING, paid BOOL, created TIMESTAMP, tags ARRAY<STRING>, "
    "PRIMARY KEY (id) NOT ENFORCED, "
    "FOREIGN KEY (customer_id) REFERENCES sales.customers(id) NOT ENFORCED)",
    "CREATE VIEW sales.big_orders OPTIONS(description='orders over 100') AS "
    "SELECT * FROM sales.orders WHERE amount > 100",
    "INSERT INTO sales.customers (id, name, signup, score) VALUES "
    "(1, 'Ada', DATE '2024-01-02', 99.5), (2, 'Grace', DATE '2024-02-03', 87.25), "
    "(3, 'Edsger', NULL, NULL)",
    "INSERT INTO sales.orders (id, customer_id, amount, note, paid) VALUES "
    "(1, 1, 10.5, 'first', TRUE), (2, 1, 200, NULL, FALSE), (3, 2, 5, 'x', TRUE), "
    "(4, 3, 150.25, 'y', NULL)",
]


def creds(stand: Handle, **over: Any) -> dict[str, Any]:
    return {"type": "bigquery", "project_id": stand.extra["project"],
            "api_endpoint": f"http://{stand.host}:{stand.port}", "connect_timeout_s": 5,
            **over}


@pytest.fixture(scope="module")
def seeded(bigquery_stand: Handle) -> Handle:  # noqa: F811
    from connectors.bigquery import make_client
    from connectors.credentials import parse_credentials

    client = make_client(parse_credentials(creds(bigquery_stand)))
    try:
        for stmt in SEED:
            client.query(stmt).result(timeout=30)
    finally:
        client.close()
    return bigquery_stand


@pytest.fixture
def bq(seeded: Handle) -> Iterator[Any]:
    with connect(creds(seeded)) as conn:
        yield conn


def test_connection(bq: Any) -> None:
    assert bq.test_connection().warehouse_type == "bigquery"


def test_introspect_dataset(bq: Any) -> None:
    catalog = bq.introspect({"schemas": ["sales"]})
    assert [d.name for d in catalog.databases] == ["test-project"]
    assert [(s.name, s.comment) for s in catalog.schemas] == [("sales", "sales data")]
    tables = {t.name: t for t in catalog.tables}
    assert set(tables) == {"customers", "orders", "big_orders"}

    customers = tables["customers"]
    assert (customers.kind, customers.comment, customers.row_count) == (
        "table", "all customers", 3)
    assert customers.primary_key == ["id"]
    assert [c.name for c in customers.columns] == ["id", "name", "signup", "score"]
    ident = customers.column("id")
    assert (ident.data_type, ident.nullable, ident.comment) == ("INT64", False, "customer id")
    assert customers.column("signup").data_type == "DATE"

    orders = tables["orders"]
    assert orders.primary_key == ["id"]
    assert orders.column("tags").data_type == "ARRAY<STRING>"
    assert [(fk.columns, fk.referenced_schema, fk.referenced_table, fk.referenced_columns)
            for fk in orders.foreign_keys] == [(["customer_id"], "sales", "customers", ["id"])]

    view = tables["big_orders"]
    assert (view.kind, view.comment, view.row_count) == ("view", "orders over 100", None)
    assert view.view_definition and "amount > 100" in view.view_definition


def test_introspect_filters(bq: Any) -> None:
    catalog = bq.introspect({"schemas": ["sales"], "exclude_tables": ["big_*"]})
    assert sorted(t.name for t in catalog.tables) == ["customers", "orders"]


def test_query_max_rows(bq: Any) -> None:
    result = bq.query("SELECT id, amount, note FROM sales.orders ORDER BY id", max_rows=3)
    assert result.row_count == 3 and result.has_more_rows
    assert [(c.name, c.type) for c in result.columns] == [
        ("id", "INTEGER"), ("amount", "NUMERIC"), ("note", "STRING")]
    assert result.rows[0] == [1, "10.5", "first"]
    exact = bq.query("SELECT id FROM sales.orders", max_rows=4)
    assert exact.row_count == 4 and not exact.has_more_rows


def test_query_params(bq: Any) -> None:
    named = bq.query("SELECT name FROM sales.customers WHERE id = @id", {"id": 2})
    assert named.rows == [["Grace"]]
    positional = bq.query("SELECT name FROM sales.customers WHERE id = ?", [3])
    assert positional.rows == [["Edsger"]]


def test_query_error(bq: Any) -> None:
    with pytest.raises(QueryError):
        bq.query("SELECT * FROM sales.no_such_table")


def test_unreachable_port() -> None:
    bad = {"type": "bigquery", "project_id": "p",
           "api_endpoint": f"http://127.0.0.1:{closed_port()}", "connect_timeout_s": 2}
    start = time.monotonic()
    with connect(bad) as conn, pytest.raises(HostUnreachableError):
        conn.test_connection()
    assert time.monotonic() - start < 15
