"""DuckDB files, chiefly the bundled sample warehouse.

Files are opened ``read_only=True``, so writes fail inside DuckDB. DuckDB runs in this
process, so "the server stops the query" means ``interrupt()`` from a timer thread: the
statement is aborted inside the engine and the call returns at once.
"""

from __future__ import annotations

import threading
from typing import Any

import duckdb

from connectors.base import Connector, Params, QueryColumn, RawResult, quote_identifier
from connectors.catalog import (
    Catalog,
    Column,
    Database,
    ForeignKey,
    IntrospectionFilters,
    Schema,
    Table,
)
from connectors.credentials import DuckDBCredentials
from connectors.errors import (
    ConnectorError,
    DatabaseNotFoundError,
    PermissionDeniedError,
    QueryError,
    QueryTimeoutError,
    ReadOnlyViolationError,
)
from connectors.sample_warehouse import ensure_sample_warehouse

__all__ = ["DuckDBConnector"]

_SYSTEM_DBS = ("system", "temp")

_TABLES_SQL = """
SELECT database_name, schema_name, table_name, 'table', estimated_size, comment, NULL
FROM duckdb_tables() WHERE NOT internal AND NOT temporary AND database_name NOT IN (?, ?)
UNION ALL
SELECT database_name, schema_name, view_name, 'view', NULL, comment, sql
FROM duckdb_views() WHERE NOT internal AND NOT temporary AND database_name NOT IN (?, ?)
ORDER BY 1, 2, 3
"""
_COLUMNS_SQL = """
SELECT database_name, schema_name, table_name, column_name, column_index, data_type,
       is_nullable, column_default, comment, character_maximum_length,
       numeric_precision, numeric_scale
FROM duckdb_columns() WHERE NOT internal AND database_name NOT IN (?, ?)
ORDER BY 1, 2, 3, column_index
"""
# duckdb_constraints() names the referenced table but not its schema: DuckDB only allows
# foreign keys within one schema.
_CONSTRAINTS_SQL = """
SELECT database_name, schema_name, table_name, constraint_type, constraint_name,
       constraint_column_names, referenced_table, referenced_column_names
FROM duckdb_constraints()
WHERE constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY') AND database_name NOT IN (?, ?)
ORDER BY 1, 2, 3, constraint_index
"""
# Every database's ``main`` schema is flagged internal, so internal is not a filter here.
_SCHEMAS_SQL = """
SELECT database_name, schema_name, comment FROM duckdb_schemas()
WHERE database_name NOT IN (?, ?)
  AND schema_name NOT IN ('information_schema', 'pg_catalog')
ORDER BY 1, 2
"""


class DuckDBConnector(Connector):
    warehouse_type = "duckdb"
    paramstyle = "qmark"  # ? or $1

    def __init__(self, credentials: DuckDBCredentials) -> None:
        super().__init__(credentials)
        self.credentials: DuckDBCredentials = credentials
        self._conn: duckdb.DuckDBPyConnection | None = None

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._conn is None:
            path = self.credentials.path
            if path == ":memory:":
                self._conn = duckdb.connect(":memory:")
            else:
                if self.credentials.sample:
                    ensure_sample_warehouse(path)
                self._conn = duckdb.connect(path, read_only=True)
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def _server_version(self, timeout_s: float) -> str | None:
        return str(self._execute("SELECT version()", None, 1, timeout_s).rows[0][0])

    def _execute(self, sql: str, params: Params, fetch: int, timeout_s: float) -> RawResult:
        conn = self._connection()
        timer = threading.Timer(timeout_s, conn.interrupt)
        timer.daemon = True
        timer.start()
        try:
            cur = conn.execute(sql, params)
            rows = cur.fetchmany(fetch) if cur.description and fetch > 0 else []
            columns = [QueryColumn(name=d[0], type=str(d[1])) for d in cur.description or []]
        except duckdb.InterruptException as exc:
            raise QueryTimeoutError(
                f"Query interrupted after its timeout of {timeout_s:g} s"
            ) from exc
        finally:
            timer.cancel()
        return RawResult(columns=columns, rows=rows)

    def _translate_error(self, exc: Exception) -> ConnectorError | None:
        if not isinstance(exc, duckdb.Error):
            return None
        text = " ".join(str(exc).split())
        low = text.lower()
        if isinstance(exc, duckdb.IOException) and ("no such file" in low or "not exist" in low):
            return DatabaseNotFoundError(f"Database file not found: {text}")
        if "read-only" in low or "read only" in low:
            return ReadOnlyViolationError(f"This connection is read-only: {text}")
        if isinstance(exc, duckdb.IOException | duckdb.PermissionException):
            return PermissionDeniedError(f"Cannot open the database file: {text}")
        return QueryError(f"Query failed: {text}")

    def _introspect(self, filters: IntrospectionFilters) -> Catalog:
        conn = self._connection()
        skip = [*_SYSTEM_DBS]
        schemas = [r for r in conn.execute(_SCHEMAS_SQL, skip).fetchall()
                   if filters.match_database(r[0]) and filters.match_schema(r[1])]
        wanted = {(db, s) for db, s, _ in schemas}
        tables = [r for r in conn.execute(_TABLES_SQL, skip * 2).fetchall()
                  if (r[0], r[1]) in wanted]
        columns = conn.execute(_COLUMNS_SQL, skip).fetchall()
        constraints = conn.execute(_CONSTRAINTS_SQL, skip).fetchall()
        return Catalog(
            warehouse_type=self.warehouse_type,
            databases=[Database(name=db) for db in sorted({db for db, _, _ in schemas})],
            schemas=[Schema(database=db, name=s, comment=c or None) for db, s, c in schemas],
            tables=_build_tables(tables, columns, constraints),
        )

    def _sample_sql(self, table: Table, limit: int) -> str:
        target = ".".join(quote_identifier(p) for p in (table.database, table.schema, table.name))
        rows = table.row_count or 0
        if table.kind == "table" and rows > limit:
            # reservoir sampling gives exactly ``limit`` rows from the whole table
            return f"SELECT * FROM {target} USING SAMPLE reservoir({int(limit)} ROWS)"
        return f"SELECT * FROM {target} LIMIT {int(limit)}"


def _build_tables(
    tables: list[tuple[Any, ...]],
    columns: list[tuple[Any, ...]],
    constraints: list[tuple[Any, ...]],
) -> list[Table]:
    cols: dict[tuple[str, str, str], list[Column]] = {}
    for db, schema, table, name, index, dtype, nullable, default, comment, length, prec, scale \
            in columns:
        is_decimal = dtype.startswith("DECIMAL")
        cols.setdefault((db, schema, table), []).append(
            Column(
                name=name, data_type=dtype, nullable=bool(nullable), default=default,
                comment=comment or None, position=int(index),  # column_index is 1-based
                max_length=length,
                precision=prec if is_decimal else None, scale=scale if is_decimal else None,
            )
        )
    pks: dict[tuple[str, str, str], list[str]] = {}
    fks: dict[tuple[str, str, str], list[ForeignKey]] = {}
    for db, schema, table, ctype, cname, cols_, ref_table, ref_cols in constraints:
        key = (db, schema, table)
        if ctype == "PRIMARY KEY":
            pks[key] = list(cols_)
        else:
            fks.setdefault(key, []).append(
                ForeignKey(name=cname, columns=list(cols_), referenced_database=db,
                           referenced_schema=schema, referenced_table=ref_table,
                           referenced_columns=list(ref_cols))
            )
    return [
        Table(
            database=db, schema=schema, name=name, kind=kind, row_count=rows,
            comment=comment or None, columns=cols.get((db, schema, name), []),
            primary_key=pks.get((db, schema, name), []),
            foreign_keys=fks.get((db, schema, name), []), view_definition=viewdef,
        )
        for db, schema, name, kind, rows, comment, viewdef in tables
    ]
