"""Snowflake through snowflake-connector-python.

Timeouts: every statement runs with the driver's ``timeout=`` (when it fires the driver asks
the server to abort the query and raises errno 604), and the session carries
``STATEMENT_TIMEOUT_IN_SECONDS`` as a server-side ceiling for anything that escapes it.
Only ``max_rows + 1`` rows are fetched from the result stream.

Introspection reads ``<db>.INFORMATION_SCHEMA`` (schemata, tables joined with views,
columns: three statements per database) plus ``SHOW PRIMARY KEYS`` / ``SHOW IMPORTED KEYS``
(two per schema), whatever the number of tables. Names are upper-case unless quoted, as in
Snowflake; database names are quoted, filter values are bound, never pasted.
"""

from __future__ import annotations

import math
from typing import Any

import snowflake.connector
from snowflake.connector import errors as sf_errors

from connectors.base import Connector, Params, QueryColumn, RawResult, quote_identifier
from connectors.catalog import (
    Catalog,
    Column,
    Database,
    ForeignKey,
    IntrospectionFilters,
    Schema,
    Table,
    TableKind,
)
from connectors.credentials import SnowflakeCredentials
from connectors.errors import (
    AuthenticationError,
    ConnectorError,
    DatabaseNotFoundError,
    HostUnreachableError,
    PermissionDeniedError,
    QueryError,
    QueryTimeoutError,
)

__all__ = [
    "SnowflakeConnector", "catalog_statements", "key_statements", "translate_snowflake_error",
]

SESSION_STATEMENT_TIMEOUT_S = 3600
"""Server-side ceiling; the per-query ``timeout_s`` is enforced below it by the driver."""
INTROSPECT_TIMEOUT_S = 300.0

_KINDS: dict[str, TableKind] = {
    "BASE TABLE": "table", "TEMPORARY TABLE": "table", "DYNAMIC TABLE": "table",
    "VIEW": "view", "MATERIALIZED VIEW": "materialized_view", "EXTERNAL TABLE": "external",
}
# errno values from snowflake.connector.errorcode and the server's own codes.
_AUTH_ERRNOS = {390100, 390101, 390102, 390144, 390318, 390422, 251005, 251006}
_TIMEOUT_ERRNOS = {604, 630, 1015}
_UNREACHABLE_ERRNOS = {250001, 250003, 251011, 251012}


class SnowflakeConnector(Connector):
    warehouse_type = "snowflake"
    paramstyle = "pyformat"  # %s or %(name)s, bound by the driver

    def __init__(self, credentials: SnowflakeCredentials) -> None:
        super().__init__(credentials)
        self.credentials: SnowflakeCredentials = credentials
        self._conn: Any = None

    # -- connection -------------------------------------------------------------------

    def _connection(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            self._conn = snowflake.connector.connect(**connect_kwargs(self.credentials))
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def _server_version(self, timeout_s: float) -> str | None:
        raw = self._execute("SELECT CURRENT_VERSION()", None, 1, timeout_s)
        return str(raw.rows[0][0]) if raw.rows else None

    # -- query --------------------------------------------------------------------------

    def _execute(self, sql: str, params: Params, fetch: int, timeout_s: float) -> RawResult:
        cur = self._connection().cursor()
        try:
            cur.execute(sql, params, timeout=max(1, math.ceil(timeout_s)))
            if cur.description is None:
                return RawResult(columns=[], rows=[])
            columns = [QueryColumn(name=d.name, type=_type_name(d.type_code))
                       for d in cur.description]
            rows = cur.fetchmany(fetch) if fetch > 0 else []
            return RawResult(columns=columns, rows=list(rows))
        finally:
            cur.close()

    def _translate_error(self, exc: Exception) -> ConnectorError | None:
        return translate_snowflake_error(exc)

    def _sample_sql(self, table: Table, limit: int) -> str:
        name = ".".join(quote_identifier(p) for p in (table.database, table.schema, table.name))
        return f"SELECT * FROM {name} LIMIT {int(limit)}"

    # -- introspection ------------------------------------------------------------------

    def _introspect(self, filters: IntrospectionFilters) -> Catalog:
        catalog = Catalog(warehouse_type=self.warehouse_type)
        for db, comment in self._databases(filters):
            catalog.databases.append(Database(name=db, comment=comment))
            self._introspect_database(db, filters, catalog)
        return catalog

    def _databases(self, filters: IntrospectionFilters) -> list[tuple[str, str | None]]:
        default = self.credentials.database
        if filters.databases is None and default:
            return [(default.upper() if default.isidentifier() else default, None)]
        rows = self._rows("SHOW DATABASES")
        return [(r["name"], r.get("comment") or None) for r in rows
                if filters.match_database(r["name"])]

    def _introspect_database(
        self, db: str, filters: IntrospectionFilters, catalog: Catalog
    ) -> None:
        stmts = catalog_statements(db, filters.exact_names("schemas"))
        schemas = [r for r in self._rows(*stmts["schemas"])
                   if filters.match_schema(r["SCHEMA_NAME"])]
        wanted = {r["SCHEMA_NAME"] for r in schemas}
        catalog.schemas += [Schema(database=db, name=r["SCHEMA_NAME"], comment=r["COMMENT"])
                            for r in schemas]
        tables: dict[tuple[str, str], Table] = {}
        for r in self._rows(*stmts["tables"]):
            if r["TABLE_SCHEMA"] in wanted:
                tables[(r["TABLE_SCHEMA"], r["TABLE_NAME"])] = _table(db, r)
        for r in self._rows(*stmts["columns"]):
            table = tables.get((r["TABLE_SCHEMA"], r["TABLE_NAME"]))
            if table is not None:
                table.columns.append(_column(r))
        for t in tables.values():
            t.columns.sort(key=lambda c: c.position)
        for schema in sorted({t.schema for t in tables.values()}):
            self._keys(key_statements(db, schema), tables)
        catalog.tables += tables.values()

    def _keys(self, stmts: dict[str, tuple[str, tuple[Any, ...]]],
              tables: dict[tuple[str, str], Table]) -> None:
        pks = sorted(self._rows(*stmts["primary_keys"]), key=lambda r: int(r["key_sequence"]))
        for r in pks:
            table = tables.get((r["schema_name"], r["table_name"]))
            if table is not None:
                table.primary_key.append(r["column_name"])
        fks: dict[tuple[str, str, str], ForeignKey] = {}
        for r in sorted(self._rows(*stmts["foreign_keys"]), key=lambda r: int(r["key_sequence"])):
            table = tables.get((r["fk_schema_name"], r["fk_table_name"]))
            if table is None or not r["pk_table_name"]:
                continue
            key = (r["fk_schema_name"], r["fk_table_name"], r["fk_name"])
            if key not in fks:
                fks[key] = ForeignKey(
                    name=r["fk_name"], columns=[], referenced_database=r["pk_database_name"],
                    referenced_schema=r["pk_schema_name"], referenced_table=r["pk_table_name"],
                    referenced_columns=[],
                )
                table.foreign_keys.append(fks[key])
            fks[key].columns.append(r["fk_column_name"])
            fks[key].referenced_columns.append(r["pk_column_name"])

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cur = self._connection().cursor()
        try:
            cur.execute(sql, params or None, timeout=int(INTROSPECT_TIMEOUT_S))
            names = [d.name for d in cur.description]
            # SHOW output can repeat a column name; the first one wins.
            index = {n: names.index(n) for n in reversed(names)}
            return [{n: row[i] for n, i in index.items()} for row in cur.fetchall()]
        finally:
            cur.close()


def connect_kwargs(c: SnowflakeCredentials) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "account": c.account, "user": c.user, "host": c.resolved_host, "port": c.port,
        "protocol": c.protocol, "warehouse": c.warehouse, "role": c.role,
        "database": c.database, "schema": c.default_schema,
        "login_timeout": c.connect_timeout_s, "network_timeout": c.connect_timeout_s,
        "session_parameters": {"STATEMENT_TIMEOUT_IN_SECONDS": SESSION_STATEMENT_TIMEOUT_S,
                               "QUERY_TAG": "buster-jobs"},
        "application": "buster-jobs", "client_session_keep_alive": False,
    }
    if c.password is not None:
        kw["password"] = c.password.get_secret_value()
    if c.private_key is not None:
        kw["private_key"] = _private_key_der(c)
    return {k: v for k, v in kw.items() if v is not None}


def _private_key_der(c: SnowflakeCredentials) -> bytes:
    from cryptography.hazmat.primitives import serialization

    assert c.private_key is not None
    passphrase = c.private_key_passphrase
    key = serialization.load_pem_private_key(
        c.private_key.get_secret_value().encode(),
        password=passphrase.get_secret_value().encode() if passphrase else None,
    )
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def catalog_statements(
    database: str, schemas: list[str] | None = None
) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """The three information_schema statements for one database, as ``(sql, params)``."""
    db = quote_identifier(database)
    info = f"{db}.INFORMATION_SCHEMA"
    where = "TABLE_SCHEMA <> 'INFORMATION_SCHEMA'"
    params: tuple[Any, ...] = ()
    if schemas:
        where += f" AND TABLE_SCHEMA IN ({', '.join(['%s'] * len(schemas))})"
        params = tuple(schemas)
    return {
        "schemas": (
            f"SELECT SCHEMA_NAME, COMMENT FROM {info}.SCHEMATA "
            f"WHERE {where.replace('TABLE_SCHEMA', 'SCHEMA_NAME')} ORDER BY SCHEMA_NAME",
            params,
        ),
        "tables": (
            # Snowflake lists views in TABLES too; the second branch adds those it does not
            # (fakesnow keeps them in VIEWS only), so one statement is right on both.
            f"SELECT t.TABLE_SCHEMA, t.TABLE_NAME, t.TABLE_TYPE, t.ROW_COUNT, t.BYTES, "
            f"t.COMMENT, v.VIEW_DEFINITION FROM {info}.TABLES t "
            f"LEFT JOIN {info}.VIEWS v ON v.TABLE_SCHEMA = t.TABLE_SCHEMA "
            f"AND v.TABLE_NAME = t.TABLE_NAME "
            f"WHERE {where.replace('TABLE_SCHEMA', 't.TABLE_SCHEMA')} "
            f"UNION ALL SELECT v.TABLE_SCHEMA, v.TABLE_NAME, 'VIEW', NULL, NULL, v.COMMENT, "
            f"v.VIEW_DEFINITION FROM {info}.VIEWS v "
            f"WHERE {where.replace('TABLE_SCHEMA', 'v.TABLE_SCHEMA')} AND NOT EXISTS "
            f"(SELECT 1 FROM {info}.TABLES t WHERE t.TABLE_SCHEMA = v.TABLE_SCHEMA "
            f"AND t.TABLE_NAME = v.TABLE_NAME) ORDER BY 1, 2",
            params + params,
        ),
        "columns": (
            f"SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, DATA_TYPE, "
            f"IS_NULLABLE, COLUMN_DEFAULT, COMMENT, CHARACTER_MAXIMUM_LENGTH, "
            f"NUMERIC_PRECISION, NUMERIC_SCALE FROM {info}.COLUMNS WHERE {where} "
            f"ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
            params,
        ),
    }


def key_statements(database: str, schema: str) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """SHOW PRIMARY KEYS / IMPORTED KEYS for one schema (``IN DATABASE`` would do one
    round trip less, but fakesnow, our test stand, only answers ``IN SCHEMA``)."""
    target = f"{quote_identifier(database)}.{quote_identifier(schema)}"
    return {
        "primary_keys": (f"SHOW PRIMARY KEYS IN SCHEMA {target}", ()),
        "foreign_keys": (f"SHOW IMPORTED KEYS IN SCHEMA {target}", ()),
    }


def _table(db: str, r: dict[str, Any]) -> Table:
    kind = _KINDS.get(str(r["TABLE_TYPE"]).upper(), "table")
    return Table(
        database=db, schema=r["TABLE_SCHEMA"], name=r["TABLE_NAME"], kind=kind,
        row_count=None if kind == "view" or r["ROW_COUNT"] is None else int(r["ROW_COUNT"]),
        size_bytes=None if kind == "view" or r["BYTES"] is None else int(r["BYTES"]),
        comment=r["COMMENT"] or None, view_definition=r["VIEW_DEFINITION"],
    )


def _column(r: dict[str, Any]) -> Column:
    base = str(r["DATA_TYPE"]).upper()
    length, precision, scale = (r["CHARACTER_MAXIMUM_LENGTH"], r["NUMERIC_PRECISION"],
                                r["NUMERIC_SCALE"])
    data_type = base
    if base == "NUMBER" and precision is not None:
        data_type = f"NUMBER({precision},{scale or 0})"
    elif base == "TEXT" and length is not None:
        data_type = f"VARCHAR({length})"
    return Column(
        name=r["COLUMN_NAME"], data_type=data_type, nullable=r["IS_NULLABLE"] == "YES",
        default=r["COLUMN_DEFAULT"], comment=r["COMMENT"] or None,
        position=int(r["ORDINAL_POSITION"]), max_length=length,
        precision=precision, scale=scale,
    )


def _type_name(type_code: int) -> str:
    from snowflake.connector.constants import FIELD_ID_TO_NAME

    return str(FIELD_ID_TO_NAME.get(type_code, type_code))


def translate_snowflake_error(exc: Exception) -> ConnectorError | None:
    """Map a snowflake-connector exception to our tree (None: not a driver error)."""
    if not isinstance(exc, sf_errors.Error):
        return None
    errno = exc.errno or 0
    msg = exc.raw_msg or str(exc)
    text = msg.lower()
    forbidden = isinstance(exc, sf_errors.ForbiddenError)
    if errno in _AUTH_ERRNOS or exc.sqlstate == "28000" or forbidden:
        return AuthenticationError(f"Snowflake rejected the login: {msg}")
    if errno in _TIMEOUT_ERRNOS or ("timeout" in text and "statement" in text):
        return QueryTimeoutError(f"Snowflake stopped the statement: {msg}")
    if errno in _UNREACHABLE_ERRNOS or isinstance(exc, sf_errors.OperationalError):
        return HostUnreachableError(f"Could not reach Snowflake: {msg}")
    if errno == 3001 or "insufficient privileges" in text:
        return PermissionDeniedError(f"Snowflake denied access: {msg}")
    if errno == 2043 or (errno == 2003 and "database" in text and "does not exist" in text):
        return DatabaseNotFoundError(f"Snowflake database not found: {msg}")
    return QueryError(f"Snowflake error {errno}: {msg}")
