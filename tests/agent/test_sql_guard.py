"""The SQL guard refuses anything but one read-only query, per dialect, failing closed."""

from __future__ import annotations

import pytest

from agent.errors import SqlRefusedError
from agent.sql_guard import check_query

REFUSED = [
    "DELETE FROM orders", "SELECT 1; DROP TABLE orders", "UPDATE orders SET status = 'x'",
    "INSERT INTO orders VALUES (1)", "CREATE TABLE x AS SELECT 1", "COPY orders TO '/tmp/x'",
    "CALL p()", "SET search_path = x", "SELECT * INTO t2 FROM orders",
    "SELECT * FROM orders FOR UPDATE", "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d",
    "TRUNCATE orders", "SELECT pg_sleep(10)", "select from where", "",
]


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "snowflake", "tsql", "mysql"])
@pytest.mark.parametrize("sql", REFUSED)
def test_refused(sql: str, dialect: str) -> None:
    with pytest.raises(SqlRefusedError):
        check_query(sql, dialect)


@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM orders;",
    "WITH a AS (SELECT 1 AS x) SELECT x FROM a UNION ALL SELECT 2",
])
def test_queries_pass(sql: str) -> None:
    assert check_query(sql, "duckdb") == sql.rstrip(";")
