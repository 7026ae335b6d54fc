"""PostgreSQL connector over the wire: psycopg 3 against the real server."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from connectors import (
    AuthenticationError,
    ConnectionFailedError,
    DatabaseNotFoundError,
    QueryError,
    QueryTimeoutError,
    ReadOnlyViolationError,
    connect,
)
from tests.integration.connectors.conftest import (
    PG_ADMIN_USER,
    PG_HOST,
    PG_PORT,
    closed_tcp_port,
    pg_admin,
    throwaway_pg_database,
)

pytestmark = pytest.mark.integration


def _sessions(application_name: str) -> list[tuple[str, str]]:
    with pg_admin() as admin:
        rows = admin.execute(
            "SELECT state, query FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        ).fetchall()
    return [(str(state), str(query)) for state, query in rows]


def test_test_connection_reports_version(pg_credentials: dict[str, Any]) -> None:
    with connect(pg_credentials) as conn:
        info = conn.test_connection()
    assert info.warehouse_type == "postgres"
    assert info.server_version and info.server_version[0].isdigit()


def test_introspect_tables_views_keys_comments(pg_credentials: dict[str, Any]) -> None:
    with connect(pg_credentials) as conn:
        catalog = conn.introspect({"schemas": ["shop"]})
    db = pg_credentials["database"]
    assert [d.name for d in catalog.databases] == [db]
    assert [(s.name, s.comment) for s in catalog.schemas] == [("shop", "The web shop")]
    kinds = {t.name: t.kind for t in catalog.tables}
    assert kinds == {"customers": "table", "orders": "table", "order_lines": "table",
                     "shipments": "table", "big_orders": "view",
                     "order_totals": "materialized_view"}

    customers = catalog.table("shop", "customers")
    assert customers.database == db
    assert customers.comment == "People who buy"
    assert customers.primary_key == ["id"]
    assert customers.row_count == 50  # ANALYZEd, so reltuples is exact here
    assert customers.size_bytes and customers.size_bytes > 0
    assert [c.name for c in customers.columns][:3] == ["id", "email", "country"]
    assert [c.position for c in customers.columns] == list(range(1, 11))
    email = customers.column("email")
    assert (email.data_type, email.max_length, email.nullable, email.comment) == (
        "character varying(120)", 120, False, "Login email")
    balance = customers.column("balance")
    assert (balance.data_type, balance.precision, balance.scale) == ("numeric(12,2)", 12, 2)
    assert customers.column("id").default == "nextval('shop.customers_id_seq'::regclass)"
    assert customers.column("country").default == "'US'::bpchar"
    assert customers.column("tags").data_type == "text[]"
    assert customers.column("last_seen").data_type == "timestamp with time zone"

    orders = catalog.table("shop", "orders")
    [fk] = orders.foreign_keys
    assert (fk.columns, fk.referenced_schema, fk.referenced_table, fk.referenced_columns) == (
        ["customer_id"], "shop", "customers", ["id"])
    lines = catalog.table("shop", "order_lines")
    assert lines.primary_key == ["order_id", "line_no"]
    [composite] = catalog.table("shop", "shipments").foreign_keys
    assert composite.columns == ["order_id", "line_no"]
    assert composite.referenced_columns == ["order_id", "line_no"]

    view = catalog.table("shop", "big_orders")
    assert view.comment == "Orders over 100"
    assert view.row_count is None
    assert view.view_definition and "total > " in view.view_definition
    assert catalog.counts() == {"databases": 1, "schemas": 1, "tables": 4, "views": 2,
                                "columns": 10 + 4 + 4 + 3 + 2 + 2}


def test_introspect_filters(pg_credentials: dict[str, Any]) -> None:
    with connect(pg_credentials) as conn:
        everything = conn.introspect()
        only = conn.introspect({"tables": ["order*"], "exclude_tables": ["order_totals"]})
        qualified = conn.introspect({"tables": ["scratch.*"]})
    assert {s.name for s in everything.schemas} >= {"public", "shop", "scratch"}
    assert sorted(t.name for t in only.tables) == ["order_lines", "orders"]
    assert [t.name for t in qualified.tables] == ["tmp_notes"]


def test_introspect_other_database_by_filter(pg_credentials: dict[str, Any]) -> None:
    creds = {**pg_credentials, "database": "postgres"}
    with connect(creds) as conn:
        catalog = conn.introspect({"databases": [pg_credentials["database"]],
                                   "schemas": ["shop"], "tables": ["orders"]})
    [table] = catalog.tables
    assert (table.database, table.schema, table.name) == (
        pg_credentials["database"], "shop", "orders")


def test_query_max_rows_and_normalised_values(pg_credentials: dict[str, Any]) -> None:
    sql = ("SELECT id, email, balance, signed_up, last_seen, tags, profile, avatar, vip "
           "FROM shop.customers WHERE id <= %s ORDER BY id")
    with connect(pg_credentials) as conn:
        page = conn.query(sql, [10], max_rows=3)
        exact = conn.query(sql, [3], max_rows=3)
    assert [c.name for c in page.columns][:3] == ["id", "email", "balance"]
    assert [c.type for c in page.columns] == ["int4", "varchar", "numeric", "date",
                                              "timestamptz", "text[]", "jsonb", "bytea",
                                              "bool"]
    assert page.row_count == 3 and page.has_more_rows is True
    assert exact.row_count == 3 and exact.has_more_rows is False
    assert page.rows[0] == [1, "user1@example.com", "1.25", "2024-01-02",
                            "2024-01-01T01:00:00+00:00", ["t1"], {"n": 1}, "AQI=", False]


def test_write_is_refused_by_the_server(pg_credentials: dict[str, Any]) -> None:
    with connect(pg_credentials) as conn:
        with pytest.raises(ReadOnlyViolationError):
            conn.query("INSERT INTO shop.orders VALUES (9999, 1, 1, NULL)")
        with pytest.raises(ReadOnlyViolationError):
            conn.query("CREATE TABLE shop.nope (a int)")
        # The session survives a refused statement.
        assert conn.query("SELECT count(*) FROM shop.orders").rows == [[120]]


def test_query_error_is_translated(pg_credentials: dict[str, Any]) -> None:
    with connect(pg_credentials) as conn, pytest.raises(QueryError) as err:
        conn.query("SELECT no_such_column FROM shop.orders")
    assert err.value.code == "QUERY_FAILED"
    assert "no_such_column" in str(err.value)
    assert err.value.__cause__ is not None


def test_timeout_is_enforced_by_the_server(pg_credentials: dict[str, Any]) -> None:
    app = pg_credentials["application_name"]
    with connect(pg_credentials) as conn:
        start = time.monotonic()
        with pytest.raises(QueryTimeoutError) as err:
            conn.query("SELECT pg_sleep(30)", timeout_s=0.5)
        assert time.monotonic() - start < 3
        assert err.value.retryable is True
        # The session is still open, and the server is no longer running the sleep.
        sessions = _sessions(app)
        assert len(sessions) == 1
        assert not [s for s in sessions if s[0] == "active" and "pg_sleep" in s[1]]
        assert conn.query("SELECT 1").rows == [[1]]


def test_close_ends_the_server_session(pg_credentials: dict[str, Any]) -> None:
    app = pg_credentials["application_name"]
    conn = connect(pg_credentials)
    assert _sessions(app) == []  # lazily connected
    conn.query("SELECT 1")
    assert len(_sessions(app)) == 1
    conn.close()
    assert _sessions(app) == []
    conn.close()  # twice is harmless

    with connect(pg_credentials) as ctx:
        ctx.query("SELECT 1")
        assert len(_sessions(app)) == 1
    assert _sessions(app) == []


def test_wrong_password(md5_cluster: tuple[int, str, str]) -> None:
    port, user, _ = md5_cluster
    secret = "Wr0ng-Secret-Value-123"
    creds = {"type": "postgres", "host": PG_HOST, "port": port, "database": "postgres",
             "user": user, "password": secret}
    with pytest.raises(AuthenticationError) as err:
        connect(creds).test_connection()
    assert err.value.code == "AUTH_FAILED" and err.value.retryable is False
    assert "password authentication failed" in str(err.value)
    assert secret not in str(err.value) and secret not in repr(err.value)
    assert err.value.__cause__ is not None


def test_right_password(md5_cluster: tuple[int, str, str]) -> None:
    port, user, password = md5_cluster
    creds = {"type": "postgres", "host": PG_HOST, "port": port, "database": "postgres",
             "user": user, "password": password}
    with connect(creds) as conn:
        assert conn.query("SELECT current_user").rows == [[user]]


def test_unreachable_host_fails_fast(pg_credentials: dict[str, Any]) -> None:
    creds = {**pg_credentials, "port": closed_tcp_port(), "password": "Hidden-Pass-42"}
    start = time.monotonic()
    with pytest.raises(ConnectionFailedError) as err:
        connect(creds).test_connection()
    assert time.monotonic() - start < 3
    assert err.value.code == "HOST_UNREACHABLE" and err.value.retryable is True
    assert "Hidden-Pass-42" not in str(err.value)


def test_missing_database(pg_credentials: dict[str, Any]) -> None:
    creds = {**pg_credentials, "database": "bj_no_such_db", "password": "Hidden-Pass-42"}
    with pytest.raises(DatabaseNotFoundError) as err:
        connect(creds).test_connection()
    assert "bj_no_such_db" in str(err.value)
    assert "Hidden-Pass-42" not in str(err.value)
    assert err.value.retryable is False


def test_profile_columns_over_a_bounded_sample(pg_credentials: dict[str, Any]) -> None:
    with connect(pg_credentials) as conn:
        catalog = conn.introspect({"schemas": ["shop"], "tables": ["customers", "orders"]},
                                  profile=True, profile_sample_rows=40)
    orders = catalog.table("shop", "orders")
    total = orders.column("total").profile
    assert total is not None
    # 120 rows, sampled down to at most 40 (TABLESAMPLE BERNOULLI + LIMIT)
    assert 0 < total.sample_size <= 40
    assert total.null_count == 0 and total.distinct_count == total.sample_size
    assert len(total.sample_values) == min(20, total.sample_size)
    country = catalog.table("shop", "customers").column("country").profile
    assert country is not None and country.sample_values == ["US"]
    assert country.min == country.max == "US"


def test_introspection_statements_do_not_grow_with_the_tables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Catalog queries are batched per database: 40 more tables (keys, comments) cost the
    # same statements.
    sent: list[str] = []
    lock = threading.Lock()
    execute = psycopg.Cursor.execute

    def counting(self: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            sent.append(" ".join(str(query).split()[:3]))
        return execute(self, query, *args, **kwargs)

    with throwaway_pg_database("bj_it_pgn") as db:
        creds = {"type": "postgres", "host": PG_HOST, "port": PG_PORT, "database": db,
                 "user": PG_ADMIN_USER}
        monkeypatch.setattr(psycopg.Cursor, "execute", counting)
        with connect(creds) as conn:
            before = conn.introspect()
        first = list(sent)
        with pg_admin(db) as admin:
            for i in range(40):
                admin.execute(f"CREATE TABLE shop.extra{i} (id int PRIMARY KEY, c varchar(5), "
                              f"o int REFERENCES shop.orders (id))")
                admin.execute(f"COMMENT ON TABLE shop.extra{i} IS 'extra {i}'")
                admin.execute(f"COMMENT ON COLUMN shop.extra{i}.c IS 'c{i}'")
        sent.clear()
        with connect(creds) as conn:
            after = conn.introspect()
        second = list(sent)
    assert len(after.tables) == len(before.tables) + 40
    extra = after.table("shop", "extra39")
    assert (extra.comment, extra.primary_key, [c.comment for c in extra.columns]) == (
        "extra 39", ["id"], [None, "c39", None])
    assert [(fk.columns, fk.referenced_table) for fk in extra.foreign_keys] == [
        (["o"], "orders")]
    # Databases, schemas, relations, columns, constraints: each with its statement timeout.
    assert second == first and len(first) == 10, first
