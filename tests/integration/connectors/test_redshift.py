"""Redshift connector over the wire: redshift-connector → our proxy → PostgreSQL.

PostgreSQL has no ``svv_table_info``; one test creates a stand-in view with Redshift's
column names so the branch that reads it runs over the wire too.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from connectors import (
    AuthenticationError,
    ConnectionFailedError,
    DatabaseNotFoundError,
    QueryTimeoutError,
    ReadOnlyViolationError,
    connect,
)
from tests.integration.connectors.conftest import PG_ADMIN_USER, closed_tcp_port, pg_admin
from tests.stands.redshift_proxy import RedshiftProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def rs_credentials(pg_database: str, redshift_proxy: RedshiftProxy) -> dict[str, Any]:
    return {"type": "redshift", "host": "127.0.0.1", "port": redshift_proxy.port,
            "database": pg_database, "user": PG_ADMIN_USER, "ssl": False}


def _backends(dbname: str) -> list[tuple[str, str]]:
    with pg_admin() as admin:
        rows = admin.execute(
            "SELECT state, query FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()", [dbname]).fetchall()
    return [(str(s), str(q)) for s, q in rows]


def test_test_connection_through_the_proxy(rs_credentials: dict[str, Any]) -> None:
    with connect(rs_credentials) as conn:
        info = conn.test_connection()
    assert info.warehouse_type == "redshift"
    assert info.server_version and info.server_version.startswith("PostgreSQL")


def test_introspect(rs_credentials: dict[str, Any]) -> None:
    with connect(rs_credentials) as conn:
        catalog = conn.introspect({"schemas": ["shop"]})
    kinds = {t.name: t.kind for t in catalog.tables}
    # information_schema.tables has no materialized views on PostgreSQL.
    assert kinds == {"customers": "table", "orders": "table", "order_lines": "table",
                     "shipments": "table", "big_orders": "view"}
    customers = catalog.table("shop", "customers")
    assert customers.comment == "People who buy"
    assert customers.primary_key == ["id"]
    assert customers.row_count == 50 and customers.size_bytes is None  # reltuples fallback
    email = customers.column("email")
    assert (email.data_type, email.max_length, email.comment, email.position) == (
        "character varying", 120, "Login email", 2)
    balance = customers.column("balance")
    assert (balance.precision, balance.scale) == (12, 2)
    [fk] = catalog.table("shop", "orders").foreign_keys
    assert (fk.columns, fk.referenced_table, fk.referenced_columns) == (
        ["customer_id"], "customers", ["id"])
    [composite] = catalog.table("shop", "shipments").foreign_keys
    assert composite.referenced_columns == ["order_id", "line_no"]
    assert catalog.table("shop", "order_lines").primary_key == ["order_id", "line_no"]
    view = catalog.table("shop", "big_orders")
    assert view.view_definition and "total" in view.view_definition
    assert view.comment == "Orders over 100"


def test_introspect_reads_svv_table_info_when_present(rs_credentials: dict[str, Any]) -> None:
    dbname = rs_credentials["database"]
    with pg_admin(dbname) as admin:
        admin.execute(
            'CREATE VIEW public.svv_table_info AS SELECT n.nspname::text AS "schema", '
            'c.relname::text AS "table", 1000::bigint AS tbl_rows, 3::bigint AS size '
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND c.relname = 'customers'")
    try:
        with connect(rs_credentials) as conn:
            catalog = conn.introspect({"schemas": ["shop"]})
    finally:
        with pg_admin(dbname) as admin:
            admin.execute("DROP VIEW public.svv_table_info")
    customers = catalog.table("shop", "customers")
    assert (customers.row_count, customers.size_bytes) == (1000, 3 * 1024 * 1024)
    # Tables svv_table_info does not list are empty on Redshift.
    assert (catalog.table("shop", "orders").row_count,
            catalog.table("shop", "orders").size_bytes) == (0, 0)


def test_query_max_rows(rs_credentials: dict[str, Any]) -> None:
    sql = "SELECT id, email, balance FROM shop.customers WHERE id <= %s ORDER BY id"
    with connect(rs_credentials) as conn:
        page = conn.query(sql, [10], max_rows=4)
        exact = conn.query(sql, [4], max_rows=4)
    assert [c.type for c in page.columns] == ["int4", "varchar", "numeric"]
    assert page.row_count == 4 and page.has_more_rows is True
    assert exact.row_count == 4 and exact.has_more_rows is False
    assert page.rows[0] == [1, "user1@example.com", "1.25"]


def test_write_is_refused(rs_credentials: dict[str, Any]) -> None:
    with connect(rs_credentials) as conn:
        with pytest.raises(ReadOnlyViolationError):
            conn.query("DELETE FROM shop.orders")
        assert conn.query("SELECT count(*) FROM shop.orders").rows == [[120]]


def test_timeout_is_enforced_by_the_server(rs_credentials: dict[str, Any]) -> None:
    with connect(rs_credentials) as conn:
        start = time.monotonic()
        with pytest.raises(QueryTimeoutError):
            conn.query("SELECT pg_sleep(30)", timeout_s=0.5)
        assert time.monotonic() - start < 3
        backends = _backends(rs_credentials["database"])
        assert not [b for b in backends if b[0] == "active" and "pg_sleep" in b[1]]
        assert conn.query("SELECT 1").rows == [[1]]


def test_close_ends_the_server_session(rs_credentials: dict[str, Any]) -> None:
    dbname = rs_credentials["database"]
    before = len(_backends(dbname))
    with connect(rs_credentials) as conn:
        conn.query("SELECT 1")
        assert len(_backends(dbname)) == before + 1
    deadline = time.monotonic() + 2
    while len(_backends(dbname)) > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(_backends(dbname)) == before


def test_wrong_password(md5_cluster: tuple[int, str, str]) -> None:
    port, user, password = md5_cluster
    proxy = RedshiftProxy(("127.0.0.1", port)).start()
    secret = "Wr0ng-Secret-Value-123"
    try:
        creds = {"type": "redshift", "host": "127.0.0.1", "port": proxy.port,
                 "database": "postgres", "user": user, "ssl": False}
        with pytest.raises(AuthenticationError) as err:
            connect({**creds, "password": secret}).test_connection()
        with connect({**creds, "password": password}) as ok:
            assert ok.query("SELECT current_user").rows == [[user]]
    finally:
        proxy.stop()
    assert secret not in str(err.value)
    assert err.value.retryable is False


def test_missing_database(rs_credentials: dict[str, Any]) -> None:
    with pytest.raises(DatabaseNotFoundError):
        connect({**rs_credentials, "database": "bj_no_such_db"}).test_connection()


def test_unreachable_host_fails_fast(rs_credentials: dict[str, Any]) -> None:
    start = time.monotonic()
    with pytest.raises(ConnectionFailedError) as err:
        connect({**rs_credentials, "port": closed_tcp_port(),
                 "password": "Hidden-Pass-42"}).test_connection()
    assert time.monotonic() - start < 3
    assert err.value.code == "HOST_UNREACHABLE"
    assert "Hidden-Pass-42" not in str(err.value)
