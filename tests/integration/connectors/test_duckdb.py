"""DuckDB connector and the bundled sample warehouse."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from connectors import (
    DatabaseNotFoundError,
    QueryTimeoutError,
    ReadOnlyViolationError,
    connect,
)
from connectors.sample_warehouse import ensure_sample_warehouse, sample_credentials

pytestmark = pytest.mark.integration

FINGERPRINT = """
SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders),
       (SELECT count(*) FROM order_items), (SELECT sum(quantity) FROM order_items),
       (SELECT min(order_date) FROM orders), (SELECT max(order_date) FROM orders),
       (SELECT sum(revenue) FROM monthly_revenue)
"""


@pytest.fixture(scope="module")
def sample_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_sample_warehouse(tmp_path_factory.mktemp("sample") / "shop.duckdb")


def test_sample_is_built_quickly_and_deterministically(tmp_path: Path) -> None:
    fingerprints = []
    for name in ("a.duckdb", "b.duckdb"):
        start = time.monotonic()
        path = ensure_sample_warehouse(tmp_path / name)
        assert time.monotonic() - start < 2
        with connect({"type": "duckdb", "path": str(path)}) as conn:
            fingerprints.append(conn.query(FINGERPRINT).rows)
    assert fingerprints[0] == fingerprints[1]
    customers, orders, items, _, first, last, _ = fingerprints[0][0]
    assert (customers, orders) == (600, 4000) and items > orders
    assert first >= "2022-01-01" and last <= "2024-12-31"
    assert last[:4] == "2024" and first[:4] == "2022"  # about three years of data


def test_sample_credentials_build_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "lazy" / "shop.duckdb"
    with connect(sample_credentials(path)) as conn:
        assert conn.test_connection().server_version
    assert path.exists()
    assert not list(path.parent.glob(".sample-*"))  # no temporary file left behind


def test_introspect_sample(sample_path: Path) -> None:
    with connect({"type": "duckdb", "path": str(sample_path)}) as conn:
        catalog = conn.introspect()
    assert catalog.counts() == {"databases": 1, "schemas": 1, "tables": 4, "views": 1,
                                "columns": 6 + 5 + 5 + 6 + 3}
    items = catalog.table("main", "order_items")
    assert items.database == "shop" and items.kind == "table"
    assert items.primary_key == ["order_id", "line_number"]
    assert sorted((fk.columns[0], fk.referenced_table, fk.referenced_columns[0])
                  for fk in items.foreign_keys) == [("order_id", "orders", "order_id"),
                                                    ("product_id", "products", "product_id")]
    assert items.comment and items.row_count and items.row_count > 4000
    price = items.column("unit_price")
    assert (price.data_type, price.precision, price.scale, price.position) == (
        "DECIMAL(10,2)", 10, 2, 5)
    assert price.comment and all(c.comment for t in catalog.tables if t.kind == "table"
                                 for c in t.columns)
    assert items.column("discount").default is not None
    view = catalog.table("main", "monthly_revenue")
    assert view.kind == "view" and view.view_definition and view.comment


def test_query_and_profile(sample_path: Path) -> None:
    with connect({"type": "duckdb", "path": str(sample_path)}) as conn:
        page = conn.query("SELECT * FROM monthly_revenue ORDER BY month", max_rows=12)
        all_months = conn.query("SELECT * FROM monthly_revenue ORDER BY month", max_rows=36)
        catalog = conn.introspect({"tables": ["products"]}, profile=True, profile_sample_rows=25)
    assert [c.type for c in page.columns] == ["DATE", "BIGINT", "DECIMAL(14,2)"]
    assert page.row_count == 12 and page.has_more_rows
    assert all_months.row_count == 36 and not all_months.has_more_rows
    assert page.rows[0][0] == "2022-01-01" and isinstance(page.rows[0][2], str)
    category = catalog.table("main", "products").column("category").profile
    assert category is not None and category.sample_size == 25
    assert set(category.sample_values) <= {"Coffee", "Equipment", "Tea", "Merch"}


def test_read_only_and_timeout(sample_path: Path) -> None:
    with connect({"type": "duckdb", "path": str(sample_path)}) as conn:
        with pytest.raises(ReadOnlyViolationError):
            conn.query("DELETE FROM orders")
        start = time.monotonic()
        with pytest.raises(QueryTimeoutError):
            conn.query("SELECT count(*) FROM range(100000000000) a", timeout_s=0.3)
        assert time.monotonic() - start < 3
        assert conn.query("SELECT count(*) FROM orders").rows == [[4000]]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatabaseNotFoundError):
        connect({"type": "duckdb", "path": str(tmp_path / "nope.duckdb")}).test_connection()
