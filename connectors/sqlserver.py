"""SQL Server through pyodbc; the ODBC driver name is a credential (``odbc_driver``).

Timeouts: the connection's query timeout (``SQL_ATTR_QUERY_TIMEOUT``) is set per statement,
so the driver cancels a statement that runs too long (SQLSTATE HYT00). The session asks
for ``READ_ONLY`` application intent and only ``max_rows + 1`` rows are fetched.

Introspection reads ``[db].sys.*`` in four statements per database (objects with
MS_Description, columns with types/defaults/descriptions, primary keys, foreign keys) and
one optional fifth for row counts and sizes (``sys.dm_db_partition_stats``; servers that
lack it, such as the pysqlbridge test stand, simply report no counts). Identifiers are
bracket-quoted; schema filters are N'' literals with quotes doubled.
"""

from __future__ import annotations

import math
from typing import Any

import pyodbc

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
from connectors.credentials import SQLServerCredentials
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
    "SQLServerConnector", "catalog_statements", "connection_string", "translate_pyodbc_error",
]

INTROSPECT_TIMEOUT_S = 300
SYSTEM_DATABASES = ("master", "tempdb", "model", "msdb")
_SYSTEM_SCHEMAS = (
    "sys", "INFORMATION_SCHEMA", "guest", "db_owner", "db_accessadmin", "db_securityadmin",
    "db_ddladmin", "db_backupoperator", "db_datareader", "db_datawriter", "db_denydatareader",
    "db_denydatawriter",
)


def _q(name: str) -> str:
    return quote_identifier(name, "[", "]")


def _literal(value: str) -> str:
    return "N'" + value.replace("'", "''") + "'"


class SQLServerConnector(Connector):
    warehouse_type = "sqlserver"
    paramstyle = "qmark"

    def __init__(self, credentials: SQLServerCredentials) -> None:
        super().__init__(credentials)
        self.credentials: SQLServerCredentials = credentials
        self._conn: Any = None

    # -- connection -------------------------------------------------------------------

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = pyodbc.connect(
                connection_string(self.credentials), autocommit=True,
                timeout=max(1, math.ceil(self.credentials.connect_timeout_s)),
            )
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def _server_version(self, timeout_s: float) -> str | None:
        raw = self._execute("SELECT @@VERSION", None, 1, timeout_s)
        return str(raw.rows[0][0]).splitlines()[0] if raw.rows else None

    # -- query --------------------------------------------------------------------------

    def _execute(self, sql: str, params: Params, fetch: int, timeout_s: float) -> RawResult:
        conn = self._connection()
        conn.timeout = max(1, math.ceil(timeout_s))
        cur = conn.cursor()
        try:
            if params:
                cur.execute(sql, *params) if isinstance(params, list | tuple) else \
                    cur.execute(sql, params)
            else:
                cur.execute(sql)
            while cur.description is None and cur.nextset():
                pass  # skip row counts of SET / DECLARE before the result set
            if cur.description is None:
                return RawResult(columns=[], rows=[])
            columns = [QueryColumn(name=d[0], type=_type_name(d)) for d in cur.description]
            rows = cur.fetchmany(fetch) if fetch > 0 else []
            return RawResult(columns=columns, rows=[tuple(r) for r in rows])
        finally:
            cur.close()

    def _translate_error(self, exc: Exception) -> ConnectorError | None:
        return translate_pyodbc_error(exc)

    def _sample_sql(self, table: Table, limit: int) -> str:
        name = ".".join(_q(p) for p in (table.database, table.schema, table.name))
        return f"SELECT TOP ({int(limit)}) * FROM {name}"

    # -- introspection ------------------------------------------------------------------

    def _introspect(self, filters: IntrospectionFilters) -> Catalog:
        catalog = Catalog(warehouse_type=self.warehouse_type)
        if filters.databases is None:
            databases = [self._rows("SELECT DB_NAME() AS name")[0]["name"]]
        else:
            rows = self._rows(
                "SELECT name FROM sys.databases WHERE HAS_DBACCESS(name) = 1 AND name NOT IN ("
                + ", ".join(_literal(d) for d in SYSTEM_DATABASES) + ") ORDER BY name"
            )
            databases = [r["name"] for r in rows if filters.match_database(r["name"])]
        for db in databases:
            catalog.databases.append(Database(name=db))
            self._introspect_database(db, filters, catalog)
        return catalog

    def _introspect_database(
        self, db: str, filters: IntrospectionFilters, catalog: Catalog
    ) -> None:
        stmts = catalog_statements(db, filters.exact_names("schemas"))
        tables: dict[int, Table] = {}
        schemas: set[str] = set()
        for r in self._rows(stmts["objects"]):
            if not filters.match_schema(r["schema_name"]):
                continue
            schemas.add(r["schema_name"])
            tables[r["object_id"]] = Table(
                database=db, schema=r["schema_name"], name=r["name"],
                kind="view" if r["type"].strip() == "V" else "table",
                comment=r["comment"], view_definition=r["definition"],
            )
        catalog.schemas += [Schema(database=db, name=s) for s in sorted(schemas)]
        for r in self._rows(stmts["columns"]):
            if (table := tables.get(r["object_id"])) is not None:
                table.columns.append(_column(r))
        for r in self._rows(stmts["primary_keys"]):
            if (table := tables.get(r["object_id"])) is not None:
                table.primary_key.append(r["column_name"])
        self._foreign_keys(self._rows(stmts["foreign_keys"]), tables)
        self._sizes(stmts["sizes"], tables)
        catalog.tables += tables.values()

    def _foreign_keys(self, rows: list[dict[str, Any]], tables: dict[int, Table]) -> None:
        fks: dict[int, ForeignKey] = {}
        for r in rows:
            table = tables.get(r["parent_object_id"])
            if table is None:
                continue
            if r["fk_id"] not in fks:
                fks[r["fk_id"]] = ForeignKey(
                    name=r["fk_name"], columns=[], referenced_database=table.database,
                    referenced_schema=r["ref_schema"], referenced_table=r["ref_table"],
                    referenced_columns=[],
                )
                table.foreign_keys.append(fks[r["fk_id"]])
            fks[r["fk_id"]].columns.append(r["column_name"])
            fks[r["fk_id"]].referenced_columns.append(r["ref_column"])

    def _sizes(self, sql: str, tables: dict[int, Table]) -> None:
        try:
            rows = self._rows(sql)
        except pyodbc.ProgrammingError as exc:
            if exc.args and exc.args[0] == "42S02":  # no such view: counts stay unknown
                return
            raise
        for r in rows:
            if (table := tables.get(r["object_id"])) is not None and table.kind == "table":
                table.row_count = int(r["row_count"])
                table.size_bytes = int(r["size_bytes"])

    def _rows(self, sql: str) -> list[dict[str, Any]]:
        raw = self._execute(sql, None, 10**9, INTROSPECT_TIMEOUT_S)
        names = [c.name for c in raw.columns]
        return [dict(zip(names, row, strict=True)) for row in raw.rows]


def connection_string(c: SQLServerCredentials) -> str:
    def braced(value: str) -> str:  # ODBC values in {} with } doubled
        return "{" + value.replace("}", "}}") + "}"

    server = c.host + (f"\\{c.instance}" if c.instance else "")
    parts = {"DRIVER": braced(c.odbc_driver), "SERVER": server, "DATABASE": braced(c.database),
             "UID": braced(c.user), "APP": "buster-jobs"}
    if c.password is not None:
        parts["PWD"] = braced(c.password.get_secret_value())
    if "freetds" in c.odbc_driver.lower():
        parts["SERVER"] = c.host
        if c.port:
            parts["PORT"] = str(c.port)
        if c.tds_version:
            parts["TDS_Version"] = c.tds_version
        parts["Encryption"] = "require" if c.encrypt else "off"
    else:
        if c.port:
            parts["SERVER"] = f"tcp:{c.host},{c.port}"
        parts["Encrypt"] = "yes" if c.encrypt else "no"
        parts["TrustServerCertificate"] = "yes" if c.trust_server_certificate else "no"
        parts["ApplicationIntent"] = "ReadOnly"
    return ";".join(f"{k}={v}" for k, v in parts.items())


def catalog_statements(database: str, schemas: list[str] | None = None) -> dict[str, str]:
    """The catalog statements for one database, each batched over all its tables."""
    sys_ = f"{_q(database)}.sys"
    schema_filter = "s.name NOT IN (" + ", ".join(_literal(s) for s in _SYSTEM_SCHEMAS) + ")"
    if schemas:
        schema_filter += " AND s.name IN (" + ", ".join(_literal(s) for s in schemas) + ")"
    objects = (
        f"FROM {sys_}.objects AS o JOIN {sys_}.schemas AS s ON s.schema_id = o.schema_id "
        f"WHERE o.type IN ('U', 'V') AND o.is_ms_shipped = 0 AND {schema_filter}"
    )
    return {
        "objects": (
            f"SELECT o.object_id, s.name AS schema_name, o.name, o.type, "
            f"CAST(ep.value AS nvarchar(4000)) AS comment, m.definition "
            f"FROM {sys_}.objects AS o JOIN {sys_}.schemas AS s ON s.schema_id = o.schema_id "
            f"LEFT JOIN {sys_}.extended_properties AS ep ON ep.class = 1 "
            f"AND ep.major_id = o.object_id AND ep.minor_id = 0 "
            f"AND ep.name = N'MS_Description' "
            f"LEFT JOIN {sys_}.sql_modules AS m ON m.object_id = o.object_id "
            f"WHERE o.type IN ('U', 'V') AND o.is_ms_shipped = 0 AND {schema_filter} "
            f"ORDER BY s.name, o.name"
        ),
        "columns": (
            f"SELECT c.object_id, c.column_id, c.name, t.name AS type_name, c.max_length, "
            f"c.precision, c.scale, c.is_nullable, dc.definition AS default_value, "
            f"CAST(ep.value AS nvarchar(4000)) AS comment "
            f"FROM {sys_}.columns AS c "
            f"JOIN {sys_}.types AS t ON t.user_type_id = c.user_type_id "
            f"LEFT JOIN {sys_}.default_constraints AS dc ON dc.object_id = c.default_object_id "
            f"LEFT JOIN {sys_}.extended_properties AS ep ON ep.class = 1 "
            f"AND ep.major_id = c.object_id AND ep.minor_id = c.column_id "
            f"AND ep.name = N'MS_Description' "
            f"WHERE c.object_id IN (SELECT o.object_id {objects}) "
            f"ORDER BY c.object_id, c.column_id"
        ),
        "primary_keys": (
            f"SELECT i.object_id, col.name AS column_name "
            f"FROM {sys_}.indexes AS i "
            f"JOIN {sys_}.index_columns AS ic ON ic.object_id = i.object_id "
            f"AND ic.index_id = i.index_id "
            f"JOIN {sys_}.columns AS col ON col.object_id = ic.object_id "
            f"AND col.column_id = ic.column_id "
            f"WHERE i.is_primary_key = 1 AND i.object_id IN (SELECT o.object_id {objects}) "
            f"ORDER BY i.object_id, ic.key_ordinal"
        ),
        "foreign_keys": (
            f"SELECT fk.object_id AS fk_id, fk.name AS fk_name, fk.parent_object_id, "
            f"pc.name AS column_name, rs.name AS ref_schema, ro.name AS ref_table, "
            f"rc.name AS ref_column "
            f"FROM {sys_}.foreign_keys AS fk "
            f"JOIN {sys_}.foreign_key_columns AS fkc ON fkc.constraint_object_id = fk.object_id "
            f"JOIN {sys_}.columns AS pc ON pc.object_id = fkc.parent_object_id "
            f"AND pc.column_id = fkc.parent_column_id "
            f"JOIN {sys_}.objects AS ro ON ro.object_id = fkc.referenced_object_id "
            f"JOIN {sys_}.schemas AS rs ON rs.schema_id = ro.schema_id "
            f"JOIN {sys_}.columns AS rc ON rc.object_id = fkc.referenced_object_id "
            f"AND rc.column_id = fkc.referenced_column_id "
            f"WHERE fk.parent_object_id IN (SELECT o.object_id {objects}) "
            f"ORDER BY fk.object_id, fkc.constraint_column_id"
        ),
        "sizes": (
            f"SELECT ps.object_id, SUM(CASE WHEN ps.index_id IN (0, 1) THEN ps.row_count "
            f"ELSE 0 END) AS row_count, SUM(ps.reserved_page_count) * 8192 AS size_bytes "
            f"FROM {sys_}.dm_db_partition_stats AS ps "
            f"WHERE ps.object_id IN (SELECT o.object_id {objects}) GROUP BY ps.object_id"
        ),
    }


_LENGTH_TYPES = {"char", "varchar", "binary", "varbinary", "nchar", "nvarchar"}
_SCALED_TYPES = {"decimal", "numeric"}


def _column(r: dict[str, Any]) -> Column:
    type_name = str(r["type_name"])
    max_length = precision = scale = None
    data_type = type_name
    if type_name in _LENGTH_TYPES:
        chars = r["max_length"] // 2 if type_name.startswith("n") else r["max_length"]
        max_length = None if r["max_length"] == -1 else chars
        data_type = f"{type_name}({'max' if max_length is None else max_length})"
    elif type_name in _SCALED_TYPES:
        precision, scale = r["precision"], r["scale"]
        data_type = f"{type_name}({precision},{scale})"
    elif r["precision"]:
        precision = r["precision"]
    return Column(
        name=r["name"], data_type=data_type, nullable=bool(r["is_nullable"]),
        default=r["default_value"], comment=r["comment"], position=int(r["column_id"]),
        max_length=max_length, precision=precision, scale=scale,
    )


def _type_name(description: tuple[Any, ...]) -> str:
    py_type = description[1]
    return getattr(py_type, "__name__", str(py_type))


# Native SQL Server error numbers, as pyodbc reports them in the message: "(18456)".
_AUTH_NUMBERS = ("(18456)", "(18452)", "(18486)", "(18487)", "(18488)")
_DB_NUMBERS = ("(4060)", "(911)")
_PERMISSION_NUMBERS = ("(229)", "(230)", "(262)", "(300)")


def translate_pyodbc_error(exc: Exception) -> ConnectorError | None:
    """Map a pyodbc exception (SQLSTATE in ``args[0]``) to our tree."""
    if not isinstance(exc, pyodbc.Error):
        return None
    sqlstate = str(exc.args[0]) if exc.args else ""
    msg = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    if sqlstate == "28000" or any(n in msg for n in _AUTH_NUMBERS):
        return AuthenticationError(f"SQL Server rejected the login: {msg}")
    if any(n in msg for n in _DB_NUMBERS):
        return DatabaseNotFoundError(f"SQL Server database not found: {msg}")
    if sqlstate in ("HYT00", "HYT01"):
        if "login" in msg.lower() or isinstance(exc, pyodbc.OperationalError) and \
                "connect" in msg.lower():
            return HostUnreachableError(f"Could not reach SQL Server: {msg}")
        return QueryTimeoutError(f"SQL Server stopped the statement: {msg}")
    if sqlstate.startswith("08"):
        return HostUnreachableError(f"Could not reach SQL Server: {msg}")
    if sqlstate == "42000" and any(n in msg for n in _PERMISSION_NUMBERS):
        return PermissionDeniedError(f"SQL Server denied access: {msg}")
    return QueryError(f"SQL Server error {sqlstate}: {msg}")
