"""Databricks SQL warehouses through databricks-sql-connector (Thrift over HTTP).

Timeouts: before a statement the session's ``STATEMENT_TIMEOUT`` is set (only when it
changes), so the warehouse stops a statement that runs too long; a client-side timer also
cancels the operation (``CancelOperation``) shortly after, in case the setting is ignored.
Only ``max_rows + 1`` rows are fetched.

Introspection reads ``<catalog>.information_schema`` in four statements per catalog
(schemata; tables with view text; columns; key constraints joined to their referenced
keys). Databricks keeps no row counts there; they stay unknown rather than costing a
``DESCRIBE DETAIL`` per table. Identifiers are backtick-quoted; filter values are bound as
``:name`` parameters.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from databricks import sql as dbsql
from databricks.sql import exc as dbexc

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
from connectors.credentials import DatabricksCredentials
from connectors.errors import (
    AuthenticationError,
    ConnectorError,
    DatabaseNotFoundError,
    HostUnreachableError,
    PermissionDeniedError,
    QueryError,
    QueryTimeoutError,
)

__all__ = ["DatabricksConnector", "catalog_statements", "translate_databricks_error"]

INTROSPECT_TIMEOUT_S = 300.0
CANCEL_GRACE_S = 2.0
"""How long after ``timeout_s`` the client cancels if the warehouse has not stopped."""
_KINDS: dict[str, TableKind] = {
    "MANAGED": "table", "EXTERNAL": "external", "VIEW": "view",
    "MATERIALIZED_VIEW": "materialized_view", "STREAMING_TABLE": "table",
    "FOREIGN": "external",
}


def _bt(*parts: str) -> str:
    return ".".join(quote_identifier(p, "`") for p in parts)


class DatabricksConnector(Connector):
    warehouse_type = "databricks"
    paramstyle = "named"  # :name

    def __init__(self, credentials: DatabricksCredentials) -> None:
        super().__init__(credentials)
        self.credentials: DatabricksCredentials = credentials
        self._conn: Any = None
        self._statement_timeout: int | None = None

    # -- connection -------------------------------------------------------------------

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = dbsql.connect(**connect_kwargs(self.credentials))
            self._statement_timeout = None
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def _server_version(self, timeout_s: float) -> str | None:
        self._execute("SELECT 1", None, 1, timeout_s)
        return None

    # -- query --------------------------------------------------------------------------

    def _execute(self, sql: str, params: Params, fetch: int, timeout_s: float) -> RawResult:
        conn = self._connection()
        seconds = max(1, math.ceil(timeout_s))
        with conn.cursor() as cur:
            if seconds != self._statement_timeout:
                cur.execute(f"SET STATEMENT_TIMEOUT = {seconds}")
                self._statement_timeout = seconds
            timer = threading.Timer(seconds + CANCEL_GRACE_S, cur.cancel)
            timer.daemon = True
            timer.start()
            try:
                cur.execute(sql, _params(params))
                if cur.description is None:
                    return RawResult(columns=[], rows=[])
                columns = [QueryColumn(name=d[0], type=str(d[1])) for d in cur.description]
                rows = cur.fetchmany(fetch) if fetch > 0 else []
            finally:
                timer.cancel()
        return RawResult(columns=columns, rows=[tuple(r) for r in rows])

    def _translate_error(self, exc: Exception) -> ConnectorError | None:
        return translate_databricks_error(exc)

    def _sample_sql(self, table: Table, limit: int) -> str:
        return f"SELECT * FROM {_bt(table.database, table.schema, table.name)} LIMIT {int(limit)}"

    # -- introspection ------------------------------------------------------------------

    def _introspect(self, filters: IntrospectionFilters) -> Catalog:
        catalog = Catalog(warehouse_type=self.warehouse_type)
        if filters.databases is None and self.credentials.catalog:
            names = [(self.credentials.catalog, None)]
        else:
            rows = self._rows("SELECT catalog_name, comment FROM "
                              "system.information_schema.catalogs ORDER BY catalog_name")
            names = [(r["catalog_name"], r["comment"]) for r in rows
                     if filters.match_database(r["catalog_name"])]
        for name, comment in names:
            catalog.databases.append(Database(name=name, comment=comment))
            self._introspect_catalog(name, filters, catalog)
        return catalog

    def _introspect_catalog(self, cat: str, filters: IntrospectionFilters,
                            catalog: Catalog) -> None:
        stmts, params = catalog_statements(cat, filters.exact_names("schemas"))
        schemas = {r["schema_name"]: r["comment"] for r in self._rows(stmts["schemas"], params)
                   if filters.match_schema(r["schema_name"])}
        catalog.schemas += [Schema(database=cat, name=n, comment=c) for n, c in schemas.items()]
        tables: dict[tuple[str, str], Table] = {}
        for r in self._rows(stmts["tables"], params):
            if r["table_schema"] in schemas:
                tables[(r["table_schema"], r["table_name"])] = Table(
                    database=cat, schema=r["table_schema"], name=r["table_name"],
                    kind=_KINDS.get(str(r["table_type"]).upper(), "table"),
                    comment=r["comment"], view_definition=r["view_definition"],
                )
        for r in self._rows(stmts["columns"], params):
            if (table := tables.get((r["table_schema"], r["table_name"]))) is not None:
                table.columns.append(_column(r))
        _apply_keys(self._rows(stmts["keys"], params), tables, cat)
        catalog.tables += tables.values()

    def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        raw = self._execute(sql, params, 10**9, INTROSPECT_TIMEOUT_S)
        names = [c.name for c in raw.columns]
        return [dict(zip(names, row, strict=True)) for row in raw.rows]


def connect_kwargs(c: DatabricksCredentials) -> dict[str, Any]:
    host = c.server_hostname
    kw: dict[str, Any] = {
        "http_path": c.http_path, "access_token": c.access_token.get_secret_value(),
        "catalog": c.catalog, "schema": c.default_schema, "_port": c.port,
        "_socket_timeout": c.connect_timeout_s,
        "_retry_stop_after_attempts_duration": c.connect_timeout_s,
        "_retry_stop_after_attempts_count": 3,
        "enable_telemetry": False, "user_agent_entry": "buster-jobs",
    }
    if host.startswith(("http://", "https://")):
        # A plain-HTTP endpoint (a local fake or proxy): the connector takes the full URI.
        base = host.rstrip("/")
        kw["_connection_uri"] = f"{base}:{c.port}/{c.http_path.lstrip('/')}"
        host = host.split("://", 1)[1].rstrip("/")
    kw["server_hostname"] = host
    return {k: v for k, v in kw.items() if v is not None}


def _params(params: Params) -> Any:
    if params is None or isinstance(params, dict):
        return params
    return list(params)  # positional ``?`` markers


def catalog_statements(
    catalog: str, schemas: list[str] | None = None
) -> tuple[dict[str, str], dict[str, Any]]:
    """The four statements for one catalog and their ``:name`` parameters."""
    info = f"{_bt(catalog)}.information_schema"
    params: dict[str, Any] = {}
    cond = "{col} <> 'information_schema'"
    if schemas:
        params = {f"s{i}": s for i, s in enumerate(schemas)}
        cond += " AND {col} IN (" + ", ".join(f":{k}" for k in params) + ")"
    return {
        "schemas": (f"SELECT schema_name, comment FROM {info}.schemata "
                    f"WHERE {cond.format(col='schema_name')} ORDER BY schema_name"),
        "tables": (
            f"SELECT t.table_schema, t.table_name, t.table_type, t.comment, v.view_definition "
            f"FROM {info}.tables AS t LEFT JOIN {info}.views AS v "
            f"ON v.table_schema = t.table_schema AND v.table_name = t.table_name "
            f"WHERE {cond.format(col='t.table_schema')} ORDER BY t.table_schema, t.table_name"
        ),
        "columns": (
            f"SELECT table_schema, table_name, column_name, ordinal_position, is_nullable, "
            f"full_data_type, character_maximum_length, numeric_precision, numeric_scale, "
            f"column_default, comment FROM {info}.columns "
            f"WHERE {cond.format(col='table_schema')} "
            f"ORDER BY table_schema, table_name, ordinal_position"
        ),
        "keys": (
            f"SELECT tc.table_schema, tc.table_name, tc.constraint_name, tc.constraint_type, "
            f"k.column_name, k.ordinal_position, rk.table_catalog AS ref_catalog, "
            f"rk.table_schema AS ref_schema, rk.table_name AS ref_table, "
            f"rk.column_name AS ref_column "
            f"FROM {info}.table_constraints AS tc "
            f"JOIN {info}.key_column_usage AS k ON k.constraint_schema = tc.constraint_schema "
            f"AND k.constraint_name = tc.constraint_name "
            f"LEFT JOIN {info}.referential_constraints AS rc "
            f"ON rc.constraint_schema = tc.constraint_schema "
            f"AND rc.constraint_name = tc.constraint_name "
            f"LEFT JOIN {info}.key_column_usage AS rk "
            f"ON rk.constraint_schema = rc.unique_constraint_schema "
            f"AND rk.constraint_name = rc.unique_constraint_name "
            f"AND rk.ordinal_position = k.position_in_unique_constraint "
            f"WHERE tc.constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY') "
            f"AND {cond.format(col='tc.table_schema')} "
            f"ORDER BY tc.table_schema, tc.table_name, tc.constraint_name, k.ordinal_position"
        ),
    }, params


def _column(r: dict[str, Any]) -> Column:
    return Column(
        name=r["column_name"], data_type=str(r["full_data_type"]),
        nullable=r["is_nullable"] == "YES", default=r["column_default"],
        comment=r["comment"], position=int(r["ordinal_position"]) + 1,  # 0-based there
        max_length=r["character_maximum_length"], precision=r["numeric_precision"],
        scale=r["numeric_scale"],
    )


def _apply_keys(rows: list[dict[str, Any]], tables: dict[tuple[str, str], Table],
                catalog: str) -> None:
    fks: dict[tuple[str, str, str], ForeignKey] = {}
    for r in rows:
        table = tables.get((r["table_schema"], r["table_name"]))
        if table is None:
            continue
        if r["constraint_type"] == "PRIMARY KEY":
            table.primary_key.append(r["column_name"])
            continue
        key = (r["table_schema"], r["table_name"], r["constraint_name"])
        if key not in fks:
            fks[key] = ForeignKey(
                name=r["constraint_name"], columns=[],
                referenced_database=r["ref_catalog"] or catalog,
                referenced_schema=r["ref_schema"] or "", referenced_table=r["ref_table"] or "",
                referenced_columns=[],
            )
            table.foreign_keys.append(fks[key])
        fks[key].columns.append(r["column_name"])
        if r["ref_column"]:
            fks[key].referenced_columns.append(r["ref_column"])


def translate_databricks_error(exc: Exception) -> ConnectorError | None:
    """Map databricks-sql-connector exceptions to our tree."""
    if not isinstance(exc, dbexc.Error):
        return None
    msg = str(exc)
    context = getattr(exc, "context", None) or {}
    upper = msg.upper()
    if context.get("http-code") in (401, 403) or "INVALID ACCESS TOKEN" in upper:
        return AuthenticationError(f"Databricks rejected the access token: {msg}")
    if isinstance(exc, dbexc.RequestError):
        return HostUnreachableError(f"Could not reach Databricks: {msg}")
    if "TIMEOUT" in upper or "TIMED OUT" in upper or "CANCELED" in upper \
            or "CANCELLED" in upper:
        return QueryTimeoutError(f"Databricks stopped the statement: {msg}")
    if "PERMISSION_DENIED" in upper or "INSUFFICIENT_PERMISSIONS" in upper:
        return PermissionDeniedError(f"Databricks denied access: {msg}")
    if "NO_SUCH_CATALOG" in upper or "CATALOG_NOT_FOUND" in upper:
        return DatabaseNotFoundError(f"Databricks catalog not found: {msg}")
    return QueryError(f"Databricks error: {msg}")
