"""PostgreSQL through psycopg 3.

Read-only at the server: the session starts with ``default_transaction_read_only=on``.
Every query runs in its own transaction with ``SET LOCAL statement_timeout``, so the server
cancels a statement that runs too long even if this process is blocked. SELECTs go through
a server-side cursor, so only ``max_rows + 1`` rows ever cross the wire.

Introspection reads pg_catalog in four statements per database (schemas, relations,
columns, constraints) whatever the number of tables; information_schema would be slower
because it checks privileges row by row.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql as pgsql

from connectors._pg_catalog import (
    DATABASES_SQL,
    RELATIONS_SQL,
    SCHEMAS_SQL,
    build_catalog_tables,
    columns_sql,
    constraints_sql,
)
from connectors.base import Connector, Params, QueryColumn, RawResult
from connectors.catalog import Catalog, Database, IntrospectionFilters, Schema, Table
from connectors.credentials import PostgresCredentials
from connectors.errors import (
    AuthenticationError,
    ConnectionFailedError,
    ConnectorError,
    DatabaseNotFoundError,
    HostUnreachableError,
    PermissionDeniedError,
    QueryError,
    QueryTimeoutError,
    ReadOnlyViolationError,
)

__all__ = ["PostgresConnector", "postgres_sample_sql", "translate_psycopg_error"]

INTROSPECT_TIMEOUT_S = 300.0
# DECLARE ... CURSOR only accepts a query; anything else runs on a client-side cursor.
_CURSOR_SAFE = re.compile(r"^\s*(\(|select\b|with\b|values\b|table\b)", re.IGNORECASE)


class PostgresConnector(Connector):
    warehouse_type = "postgres"
    paramstyle = "format"  # %s or %(name)s

    def __init__(self, credentials: PostgresCredentials) -> None:
        super().__init__(credentials)
        self.credentials: PostgresCredentials = credentials
        self._conn: psycopg.Connection[Any] | None = None

    # -- connection -------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = self._open(self.credentials.database)
        return self._conn

    def _open(self, dbname: str) -> psycopg.Connection[Any]:
        c = self.credentials
        options = "-c default_transaction_read_only=on"
        if c.default_schema:
            options += f" -c search_path={_libpq_option_value(c.default_schema)}"
        conn = psycopg.connect(
            host=c.host,
            port=c.port,
            dbname=dbname,
            user=c.user,
            password=c.password.get_secret_value() if c.password else None,
            # libpq rounds below 2 s up to 2 s; an unreachable host fails within this.
            connect_timeout=max(2, round(c.connect_timeout_s)),
            sslmode=c.sslmode,
            sslrootcert=c.sslrootcert,
            application_name=c.application_name,
            options=options,
            autocommit=True,  # transactions are explicit, one per query
        )
        conn.read_only = True  # belt and braces: also sent as SET TRANSACTION READ ONLY
        return conn

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def _server_version(self, timeout_s: float) -> str | None:
        raw = self._execute("SELECT current_setting('server_version')", None, 1, timeout_s)
        return str(raw.rows[0][0])

    # -- query --------------------------------------------------------------------------

    def _execute(self, sql: str, params: Params, fetch: int, timeout_s: float) -> RawResult:
        conn = self._connection()
        with conn.transaction():
            _set_local_timeout(conn, timeout_s)
            if _CURSOR_SAFE.match(sql):
                cur: psycopg.Cursor[Any] = conn.cursor(name="buster_query")
            else:
                cur = conn.cursor()
            with cur:
                cur.execute(sql, params)
                if cur.description is None:  # a statement without a result set
                    return RawResult(columns=[], rows=[])
                rows = cur.fetchmany(fetch) if fetch > 0 else []
                columns = [
                    QueryColumn(name=d.name, type=_type_name(conn, d.type_code))
                    for d in cur.description
                ]
        return RawResult(columns=columns, rows=rows)

    def _translate_error(self, exc: Exception) -> ConnectorError | None:
        return translate_psycopg_error(exc)

    # -- introspection ------------------------------------------------------------------

    def _introspect(self, filters: IntrospectionFilters) -> Catalog:
        conn = self._connection()
        all_dbs = dict(_catalog_rows(conn, DATABASES_SQL))
        if filters.databases is None:
            wanted = [self.credentials.database]
        else:
            wanted = [d for d in all_dbs if filters.match_database(d)]
        catalog = Catalog(warehouse_type=self.warehouse_type)
        for dbname in wanted:
            catalog.databases.append(Database(name=dbname, comment=all_dbs.get(dbname)))
            if dbname == self.credentials.database:
                self._introspect_database(conn, dbname, filters, catalog)
                continue
            # A PostgreSQL session sees one database; others need their own connection.
            with self._open(dbname) as other:
                self._introspect_database(other, dbname, filters, catalog)
        return catalog

    def _introspect_database(
        self,
        conn: psycopg.Connection[Any],
        dbname: str,
        filters: IntrospectionFilters,
        catalog: Catalog,
    ) -> None:
        schemas = [
            (name, comment)
            for name, comment in _catalog_rows(conn, SCHEMAS_SQL)
            if filters.match_schema(name)
        ]
        catalog.schemas += [Schema(database=dbname, name=n, comment=c) for n, c in schemas]
        names = [n for n, _ in schemas]
        if not names:
            return
        relations = _catalog_rows(conn, RELATIONS_SQL, [names])
        relations = [r for r in relations if filters.match_table(r[1], r[2])]
        oids = [r[0] for r in relations]
        columns = _catalog_rows(conn, columns_sql(), [oids])
        constraints = _catalog_rows(conn, constraints_sql(), [oids])
        catalog.tables += build_catalog_tables(dbname, relations, columns, constraints)

    def _sample_sql(self, table: Table, limit: int) -> str:
        return postgres_sample_sql(table, limit)


def postgres_sample_sql(table: Table, limit: int) -> str:
    """Bounded sample: TABLESAMPLE on big tables (SYSTEM above 10M rows: it reads only the
    sampled pages), a plain LIMIT on views and small tables."""
    target = pgsql.SQL("{}.{}").format(pgsql.Identifier(table.schema),
                                       pgsql.Identifier(table.name))
    rows = table.row_count or 0
    sample: pgsql.Composable = pgsql.SQL("")
    if table.kind in ("table", "materialized_view") and rows > limit:
        method = "SYSTEM" if rows > 10_000_000 else "BERNOULLI"
        # 1.5x oversampling so LIMIT is usually reached in one pass.
        pct = min(100.0, max(0.0001, 150.0 * limit / rows))
        sample = pgsql.SQL(" TABLESAMPLE {} ({})").format(
            pgsql.SQL(method), pgsql.Literal(round(pct, 4))
        )
    query = pgsql.SQL("SELECT * FROM {}{} LIMIT {}").format(
        target, sample, pgsql.Literal(int(limit))
    )
    return query.as_string(None)


def _set_local_timeout(conn: psycopg.Connection[Any], timeout_s: float) -> None:
    ms = max(1, int(timeout_s * 1000))
    # set_config(..., true) is SET LOCAL: it ends with the transaction.
    conn.execute("SELECT set_config('statement_timeout', %s, true)", [str(ms)])


def _catalog_rows(
    conn: psycopg.Connection[Any], query: str, params: list[Any] | None = None
) -> list[tuple[Any, ...]]:
    with conn.transaction():
        _set_local_timeout(conn, INTROSPECT_TIMEOUT_S)
        return conn.execute(query, params).fetchall()


def _type_name(conn: psycopg.Connection[Any], oid: int) -> str:
    info = conn.adapters.types.get(oid)
    if info is None:
        return f"oid:{oid}"
    # The registry answers an array oid with its element type's info.
    return f"{info.name}[]" if oid == info.array_oid else info.name


def _libpq_option_value(value: str) -> str:
    # In libpq ``options`` a space separates arguments and backslash escapes.
    return value.replace("\\", "\\\\").replace(" ", "\\ ")


# -- error translation ----------------------------------------------------------------

_UNREACHABLE = (
    "connection refused",
    "could not translate host name",
    "name or service not known",
    "temporary failure in name resolution",
    "no route to host",
    "network is unreachable",
    "timeout expired",
    "could not connect to server",
)


def translate_psycopg_error(exc: Exception) -> ConnectorError | None:
    """Map a psycopg exception to our tree (shared with anything speaking libpq)."""
    if not isinstance(exc, psycopg.Error):
        return None
    text = " ".join(str(exc).split())
    if isinstance(exc, pg_errors.QueryCanceled):
        return QueryTimeoutError(f"Query cancelled by the server after its timeout: {text}")
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        return ReadOnlyViolationError(f"This connection is read-only: {text}")
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return PermissionDeniedError(f"Permission denied: {text}")
    if isinstance(exc, pg_errors.InvalidPassword | pg_errors.InvalidAuthorizationSpecification):
        return AuthenticationError(f"Authentication failed: {text}")
    if isinstance(exc, pg_errors.InvalidCatalogName):
        return DatabaseNotFoundError(f"Database not found: {text}")
    if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
        return _connect_error(text)
    if exc.sqlstate and exc.sqlstate.startswith(("08", "57P")):  # connection lost, shutdown
        return ConnectionFailedError(f"Connection to the server failed: {text}")
    return QueryError(f"Query failed: {text}")


def _connect_error(text: str) -> ConnectorError:
    # libpq reports login failures before a session exists, so there is no SQLSTATE:
    # the server's FATAL message is all there is to go on.
    low = text.lower()
    if "password authentication failed" in low or "authentication failed" in low:
        return AuthenticationError(f"Authentication failed: {text}")
    if "no password supplied" in low or "no pg_hba.conf entry" in low:
        return AuthenticationError(f"Authentication failed: {text}")
    if re.search(r'database ".*" does not exist', low):
        return DatabaseNotFoundError(f"Database not found: {text}")
    if any(marker in low for marker in _UNREACHABLE):
        return HostUnreachableError(f"Cannot reach the server: {text}")
    return ConnectionFailedError(f"Connection to the server failed: {text}")
