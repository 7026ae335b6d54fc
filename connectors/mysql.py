"""MySQL and MariaDB through PyMySQL.

Read-only at the server: ``SET SESSION TRANSACTION READ ONLY`` (DDL and DML fail with
1792). The server stops long statements itself: ``max_statement_time`` (seconds) on
MariaDB, ``max_execution_time`` (milliseconds, SELECT only) on MySQL. (MariaDB stops a
running ``BENCHMARK()`` silently, returning 0; ``SLEEP()`` and real work raise 1969.)

Rows are streamed (unbuffered cursor) and only ``max_rows + 1`` are read. When more remain,
the connection is dropped rather than drained: draining would transfer the whole result,
and PyMySQL refuses to send anything else until it is done. The next call reconnects.

Introspection reads information_schema in five or six statements for all selected
schemas, whatever their size: schemas, tables, keys, VIEWS only when there are views, and
the columns in two halves on connections of their own. On MariaDB 10.5+ the columns come as
one JSON array per table and tables and keys as one JSON document each (see
``connectors._mysql_catalog``). In MySQL a database *is* a schema, so
``Table.database == Table.schema``.
"""

from __future__ import annotations

import functools
import re
import ssl
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pymysql
import pymysql.cursors
from pymysql.constants import ER, FIELD_TYPE

from connectors._mysql_catalog import (
    COLUMNS_FLAT_JSON_SQL,
    COLUMNS_JSON_SQL,
    COLUMNS_SQL,
    KEYS_JSON_SQL,
    KEYS_SQL,
    SCHEMAS_SQL,
    TABLES_JSON_SQL,
    TABLES_SQL,
    VIEWS_SQL,
    ColumnShare,
    TableKey,
    attach_columns,
    build_catalog_tables,
    columns_from_flat_json,
    columns_from_json,
    columns_from_rows,
    json_rows,
)
from connectors.base import Connector, Params, QueryColumn, RawResult, quote_identifier
from connectors.catalog import Catalog, Column, Database, IntrospectionFilters, Schema, Table
from connectors.credentials import MySQLCredentials
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

__all__ = ["MySQLConnector", "mysql_sample_sql", "translate_pymysql_error"]

INTROSPECT_TIMEOUT_S = 300.0
_TYPE_NAMES = {
    code: name.lower() for name, code in vars(FIELD_TYPE).items() if name.isupper()
}
_MAX_STATEMENT_TIME_EXCEEDED = 1969  # MariaDB
_MAX_EXECUTION_TIME_EXCEEDED = 3024  # MySQL
_TIMEOUT_CODES = {_MAX_STATEMENT_TIME_EXCEEDED, _MAX_EXECUTION_TIME_EXCEEDED}
# The tables' columns in two halves, each on a connection of its own: the server builds
# them on two cores, and the client parses the first back while the other still comes.
# 1,000 x 20 columns on 2 cores, 25 alternating runs: median 80 ms; in one share 94 ms;
# a third and two thirds 84 ms (bench/README.md).
COLUMN_SHARES: list[ColumnShare] = [(2, [0]), (2, [1])]
_JSON_CATALOG_SINCE = (10, 5)  # MariaDB: JSON_ARRAYAGG(... ORDER BY ...)


@functools.cache
def _preferred_tls_context() -> ssl.SSLContext:
    # What PyMySQL builds for its "preferred" mode: no CA, so no verification.
    ctx = ssl.create_default_context()
    ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class _Connection(pymysql.connections.Connection):
    """PyMySQL's connection, building the TLS context of its "preferred" mode (no ``ssl_*``
    option: TLS if the server offers it, unverified) only when the server offers TLS, and
    once per process. PyMySQL builds it on every connect, and ``ssl.create_default_context``
    loads the system CA store: ~50 ms of CPU per connection, for nothing against a server
    without TLS. With ``ssl_*`` options PyMySQL's own context is used, unchanged."""

    _tls_ctx: ssl.SSLContext | None = None

    def _create_ssl_ctx(self, sslp: Any) -> Any:
        if isinstance(sslp, dict) and not sslp:
            return None  # built by the ctx property if the handshake needs it
        return super()._create_ssl_ctx(sslp)

    @property
    def ctx(self) -> ssl.SSLContext:
        if self._tls_ctx is None:
            self._tls_ctx = _preferred_tls_context()
        return self._tls_ctx

    @ctx.setter
    def ctx(self, value: ssl.SSLContext | None) -> None:
        self._tls_ctx = value


class MySQLConnector(Connector):
    warehouse_type = "mysql"
    paramstyle = "pyformat"  # %s or %(name)s

    def __init__(self, credentials: MySQLCredentials) -> None:
        super().__init__(credentials)
        self.credentials: MySQLCredentials = credentials
        self._conn: pymysql.connections.Connection[Any] | None = None
        self._mariadb = False
        self._version: tuple[int, ...] = ()
        self._timeout_set: float | None = None

    # -- connection -------------------------------------------------------------------

    def _connection(self) -> pymysql.connections.Connection[Any]:
        if self._conn is None or not self._conn.open:
            self._conn = self._open()
        return self._conn

    def _open(self) -> pymysql.connections.Connection[Any]:
        conn = self._new_connection()
        self._timeout_set = None
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            row = cur.fetchone()
        version = str(row[0] if row else "")
        self._mariadb = "mariadb" in version.lower()
        self._version = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
        return conn

    def _new_connection(self) -> pymysql.connections.Connection[Any]:
        c = self.credentials
        ssl: dict[str, Any] = {}
        if c.ssl:
            ssl = {"ssl_ca": c.ssl_ca, "ssl_verify_cert": c.ssl_ca is not None,
                   "ssl_verify_identity": c.ssl_verify_identity}
        return _Connection(
            host=c.host,
            port=c.port,
            user=c.user,
            password=c.password.get_secret_value() if c.password else "",
            database=c.database,
            charset=c.charset,
            connect_timeout=c.connect_timeout_s,
            autocommit=True,
            init_command="SET SESSION TRANSACTION READ ONLY",
            **ssl,
        )

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            if conn.open:
                conn.close()

    def _server_version(self, timeout_s: float) -> str | None:
        return str(self._execute("SELECT VERSION()", None, 1, timeout_s).rows[0][0])

    # -- query --------------------------------------------------------------------------

    def _set_timeout(self, conn: pymysql.connections.Connection[Any], timeout_s: float) -> None:
        if self._timeout_set == timeout_s:
            return  # session variable already holds it: save a round trip
        with conn.cursor() as cur:
            self._set_session_timeout(cur, timeout_s)
        self._timeout_set = timeout_s

    def _set_session_timeout(self, cur: pymysql.cursors.Cursor, timeout_s: float) -> None:
        if self._mariadb:
            cur.execute("SET SESSION max_statement_time = %s", [timeout_s])
        else:
            cur.execute("SET SESSION max_execution_time = %s", [max(1, int(timeout_s * 1000))])

    def _execute(self, sql: str, params: Params, fetch: int, timeout_s: float) -> RawResult:
        conn = self._connection()
        self._set_timeout(conn, timeout_s)
        cur = conn.cursor(pymysql.cursors.SSCursor)
        cur.execute(sql, params)
        if cur.description is None:
            cur.close()
            return RawResult(columns=[], rows=[])
        columns = [
            QueryColumn(name=d[0], type=_TYPE_NAMES.get(d[1], str(d[1])))
            for d in cur.description
        ]
        rows = list(cur.fetchmany(fetch)) if fetch > 0 else []
        if len(rows) >= fetch:
            self._abandon(cur)
            return RawResult(columns=columns, rows=rows)
        cur.close()
        return RawResult(columns=columns, rows=rows)

    def _abandon(self, cur: pymysql.cursors.SSCursor) -> None:
        """More rows may follow: drop the connection instead of draining the result.

        The server stops sending when the socket closes. PyMySQL would otherwise try to
        drain the result when the cursor is garbage-collected, on a closed socket.
        """
        result = getattr(cur, "_result", None)
        if result is not None:
            result.unbuffered_active = False
        self._close()

    def _translate_error(self, exc: Exception) -> ConnectorError | None:
        return translate_pymysql_error(exc)

    # -- introspection ------------------------------------------------------------------

    def _introspect(self, filters: IntrospectionFilters) -> Catalog:
        conn = self._connection()
        self._set_timeout(conn, INTROSPECT_TIMEOUT_S)
        schemas = [r[0] for r in _rows(conn, SCHEMAS_SQL)]
        if filters.databases is None and filters.schemas is None:
            wanted = [s for s in schemas if s == self.credentials.database]
        else:
            wanted = [s for s in schemas if filters.match_database(s) and filters.match_schema(s)]
        catalog = Catalog(
            warehouse_type=self.warehouse_type,
            databases=[Database(name=s) for s in wanted],
            schemas=[Schema(database=s, name=s) for s in wanted],
        )
        if not wanted:
            return catalog
        # The columns (the bulk: server time, then parsing) are read in shares on connections
        # of their own while this one reads tables and keys and builds the tables; a share
        # whose connection could not be opened (e.g. a connection limit) is read here,
        # afterwards.
        with ThreadPoolExecutor(len(COLUMN_SHARES), thread_name_prefix="mysql-introspect") as pool:
            sides = [pool.submit(self._side_columns, wanted, share) for share in COLUMN_SHARES]
            tables = [r for r in self._catalog_rows(conn, TABLES_JSON_SQL, TABLES_SQL, wanted)
                      if filters.match_table(r[0], r[1])]
            keys = self._catalog_rows(conn, KEYS_JSON_SQL, KEYS_SQL, wanted)
            has_views = any(r[2] in ("VIEW", "SYSTEM VIEW") for r in tables)
            views = _rows(conn, VIEWS_SQL, [wanted]) if has_views else []
            catalog.tables = build_catalog_tables(tables, keys, views)
            shares = [side.result() for side in sides]
        columns: dict[TableKey, list[Column]] = {}
        for share, read in zip(COLUMN_SHARES, shares, strict=True):
            columns.update(read if read is not None else self._read_columns(conn, wanted, share))
        attach_columns(catalog.tables, columns)
        return catalog

    def _catalog_rows(
        self, conn: pymysql.connections.Connection[Any], json_sql: str, rows_sql: str,
        wanted: list[str],
    ) -> Sequence[Sequence[Any]]:
        if self._json_catalog():
            rows = json_rows(_rows(conn, json_sql, [wanted]))
            if rows is not None:
                return rows
        return _rows(conn, rows_sql, [wanted])

    def _json_catalog(self) -> bool:
        return self._mariadb and self._version >= _JSON_CATALOG_SINCE

    def _side_columns(
        self, wanted: list[str], share: ColumnShare
    ) -> dict[TableKey, list[Column]] | None:
        try:
            conn = self._new_connection()
        except pymysql.Error:
            return None
        try:
            with conn.cursor() as cur:
                self._set_session_timeout(cur, INTROSPECT_TIMEOUT_S)
            return self._read_columns(conn, wanted, share)
        finally:
            conn.close()

    def _read_columns(
        self, conn: pymysql.connections.Connection[Any], wanted: list[str], share: ColumnShare
    ) -> dict[TableKey, list[Column]]:
        params = [wanted, *share]
        if self._json_catalog():
            columns = columns_from_flat_json(_rows(conn, COLUMNS_FLAT_JSON_SQL, params))
            if columns is None:
                columns = columns_from_json(_rows(conn, COLUMNS_JSON_SQL, params))
            if columns is not None:
                return columns
        return columns_from_rows(_rows(conn, COLUMNS_SQL, params), mariadb=self._mariadb)

    def _sample_sql(self, table: Table, limit: int) -> str:
        return mysql_sample_sql(table, limit)


def mysql_sample_sql(table: Table, limit: int) -> str:
    """Bounded sample: a RAND() filter on big tables so rows come from all of the table,
    then LIMIT; a plain LIMIT on views and small tables."""
    target = f"{quote_identifier(table.schema, '`')}.{quote_identifier(table.name, '`')}"
    rows = table.row_count or 0
    where = ""
    if table.kind == "table" and rows > limit:
        where = f" WHERE RAND() < {min(1.0, 1.5 * limit / rows):.6f}"
    return f"SELECT * FROM {target}{where} LIMIT {int(limit)}"


def _rows(
    conn: pymysql.connections.Connection[Any], sql: str, params: list[Any] | None = None
) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


# -- error translation ----------------------------------------------------------------

_AUTH = {ER.ACCESS_DENIED_ERROR, 1698, 1862}  # 1698 no password for socket auth, 1862 expired
_PERMISSION = {ER.DBACCESS_DENIED_ERROR, ER.TABLEACCESS_DENIED_ERROR,
               ER.COLUMNACCESS_DENIED_ERROR, ER.SPECIFIC_ACCESS_DENIED_ERROR, 1370}
_READ_ONLY = {1792, ER.OPTION_PREVENTS_STATEMENT}  # read-only transaction, --read-only
_UNREACHABLE = {2003, 2005}  # can't connect (refused, timeout), unknown host
_LOST = {2006, 2013, 2055}  # gone away, lost during query, lost at handshake


def translate_pymysql_error(exc: Exception) -> ConnectorError | None:
    if not isinstance(exc, pymysql.Error):
        return None
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    text = " ".join(text.split())
    if code in _TIMEOUT_CODES or code == ER.QUERY_INTERRUPTED:
        return QueryTimeoutError(f"Query interrupted by the server after its timeout: {text}")
    if code in _AUTH:
        return AuthenticationError(f"Authentication failed: {text}")
    if code == ER.BAD_DB_ERROR:
        return DatabaseNotFoundError(f"Database not found: {text}")
    if code in _PERMISSION:
        return PermissionDeniedError(f"Permission denied: {text}")
    if code in _READ_ONLY:
        return ReadOnlyViolationError(f"This connection is read-only: {text}")
    if code in _UNREACHABLE:
        return HostUnreachableError(f"Cannot reach the server: {text}")
    if code in _LOST or isinstance(exc, pymysql.InterfaceError):
        return ConnectionFailedError(f"Connection to the server failed: {text}")
    return QueryError(f"Query failed: {text}")
