"""Amazon Redshift through redshift-connector.

Redshift speaks the PostgreSQL 8.0 protocol but lacks much of modern pg_catalog
(``unnest ... WITH ORDINALITY``, ``pg_total_relation_size``, ``relispartition``), so the
catalog comes from information_schema plus the pg_catalog tables Redshift keeps
(pg_class, pg_attribute, pg_constraint, pg_description). Row counts and sizes come from
``svv_table_info`` when it exists (on Redshift), else from ``pg_class.reltuples``.

Each query runs in ``BEGIN READ ONLY`` with ``SET LOCAL statement_timeout``; SELECTs go
through ``DECLARE ... CURSOR`` + ``FETCH FORWARD n`` so at most ``max_rows + 1`` rows
leave the cluster.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import redshift_connector

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
from connectors.credentials import RedshiftCredentials
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

__all__ = ["RedshiftConnector", "catalog_sql", "redshift_sample_sql", "translate_redshift_error"]

INTROSPECT_TIMEOUT_S = 300.0
_CURSOR_SAFE = re.compile(r"^\s*(\(|select\b|with\b|values\b)", re.IGNORECASE)
_CURSOR = "buster_query"
_UNDEFINED_TABLE = "42P01"
# Type names for result columns, by PostgreSQL/Redshift type oid.
_TYPE_NAMES = {
    16: "bool", 17: "bytea", 18: "char", 19: "name", 20: "int8", 21: "int2", 23: "int4",
    25: "text", 26: "oid", 114: "json", 700: "float4", 701: "float8", 1042: "bpchar",
    1043: "varchar", 1082: "date", 1083: "time", 1114: "timestamp", 1184: "timestamptz",
    1186: "interval", 1266: "timetz", 1700: "numeric", 2950: "uuid", 3802: "jsonb",
    4000: "super", 3000: "geometry",
}


def catalog_sql(kind: str, n_schemas: int) -> str:
    """The catalog statement ``kind`` for ``n_schemas`` schema-name parameters."""
    marks = ", ".join(["%s"] * n_schemas)
    return _CATALOG[kind].format(schemas=marks)


_CATALOG = {
    "schemas": r"""
SELECT n.nspname, d.description
FROM pg_catalog.pg_namespace n
LEFT JOIN pg_catalog.pg_description d ON d.objoid = n.oid AND d.objsubid = 0
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'pg_internal',
                        'pg_automv', 'pg_auto_copy', 'pg_mv', 'pg_s3')
  AND n.nspname NOT LIKE 'pg\_temp\_%'
ORDER BY n.nspname
""",
    "tables": """
SELECT t.table_schema, t.table_name, t.table_type, c.reltuples, v.view_definition
FROM information_schema.tables t
JOIN pg_catalog.pg_namespace n ON n.nspname = t.table_schema
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.table_name
LEFT JOIN information_schema.views v
  ON v.table_schema = t.table_schema AND v.table_name = t.table_name
WHERE t.table_schema IN ({schemas})
ORDER BY t.table_schema, t.table_name
""",
    # size is in 1 MB blocks.
    "table_info": """
SELECT "schema", "table", tbl_rows, size
FROM svv_table_info
WHERE "schema" IN ({schemas})
""",
    "columns": """
SELECT table_schema, table_name, column_name, ordinal_position, data_type,
       is_nullable, column_default, character_maximum_length, numeric_precision,
       numeric_scale
FROM information_schema.columns
WHERE table_schema IN ({schemas})
ORDER BY table_schema, table_name, ordinal_position
""",
    "comments": """
SELECT n.nspname, c.relname, a.attname, d.description
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_class c ON c.oid = d.objoid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
WHERE n.nspname IN ({schemas})
""",
    # conkey/confkey are attnums; names come from the "attributes" statement.
    "constraints": """
SELECT n.nspname, c.relname, con.conname, con.contype, con.conkey, fn.nspname,
       fc.relname, con.confkey
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.contype IN ('p', 'f') AND n.nspname IN ({schemas})
""",
    "attributes": """
SELECT n.nspname, c.relname, a.attnum, a.attname
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE a.attnum > 0 AND a.attrelid IN (
    SELECT con.conrelid FROM pg_catalog.pg_constraint con
    JOIN pg_catalog.pg_class c2 ON c2.oid = con.conrelid
    JOIN pg_catalog.pg_namespace n2 ON n2.oid = c2.relnamespace
    WHERE con.contype IN ('p', 'f') AND n2.nspname IN ({schemas})
    UNION
    SELECT con.confrelid FROM pg_catalog.pg_constraint con
    JOIN pg_catalog.pg_class c2 ON c2.oid = con.conrelid
    JOIN pg_catalog.pg_namespace n2 ON n2.oid = c2.relnamespace
    WHERE con.contype = 'f' AND n2.nspname IN ({schemas}))
""",
}


class RedshiftConnector(Connector):
    warehouse_type = "redshift"
    paramstyle = "format"  # %s

    def __init__(self, credentials: RedshiftCredentials) -> None:
        super().__init__(credentials)
        self.credentials: RedshiftCredentials = credentials
        self._conn: Any = None

    # -- connection -------------------------------------------------------------------

    def _connection(self) -> Any:
        if self._conn is None:
            c = self.credentials
            conn = redshift_connector.connect(
                host=c.host, port=c.port, database=c.database, user=c.user,
                password=c.password.get_secret_value() if c.password else "",
                ssl=c.ssl, sslmode=c.sslmode, timeout=max(1, round(c.connect_timeout_s)),
                application_name="buster-jobs",
            )
            conn.autocommit = True  # transactions are explicit (BEGIN READ ONLY)
            if c.default_schema:
                with _cursor(conn) as cur:
                    cur.execute(f"SET search_path TO {quote_identifier(c.default_schema)}")
            self._conn = conn
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def _server_version(self, timeout_s: float) -> str | None:
        return str(self._execute("SELECT version()", None, 1, timeout_s).rows[0][0])

    # -- query --------------------------------------------------------------------------

    def _execute(self, sql: str, params: Params, fetch: int, timeout_s: float) -> RawResult:
        conn = self._connection()
        with _cursor(conn) as cur:
            cur.execute("BEGIN READ ONLY")
            try:
                cur.execute(f"SET LOCAL statement_timeout TO {max(1, int(timeout_s * 1000))}")
                if _CURSOR_SAFE.match(sql):
                    cur.execute(f"DECLARE {_CURSOR} NO SCROLL CURSOR FOR {sql}", params)
                    cur.execute(f"FETCH FORWARD {int(fetch)} FROM {_CURSOR}")
                else:
                    cur.execute(sql, params)
                rows = _fetch(cur, fetch)
                columns = [
                    QueryColumn(name=d[0], type=_TYPE_NAMES.get(d[1], f"oid:{d[1]}"))
                    for d in cur.description or []
                ]
            except Exception:
                self._rollback_or_drop(cur)
                raise
            cur.execute("ROLLBACK")  # read-only: nothing to keep; also closes the cursor
        return RawResult(columns=columns, rows=rows)

    def _rollback_or_drop(self, cur: Any) -> None:
        # After a lost connection ROLLBACK fails too; forget the connection so the next
        # call reconnects, and let the original error propagate.
        try:
            cur.execute("ROLLBACK")
        except Exception:  # noqa: BLE001
            self._conn = None

    def _translate_error(self, exc: Exception) -> ConnectorError | None:
        return translate_redshift_error(exc)

    # -- introspection ------------------------------------------------------------------

    def _introspect(self, filters: IntrospectionFilters) -> Catalog:
        dbname = self.credentials.database
        catalog = Catalog(warehouse_type=self.warehouse_type)
        # One database per Redshift connection; others need their own credentials.
        if not filters.match_database(dbname):
            return catalog
        catalog.databases.append(Database(name=dbname))
        conn = self._connection()
        with _cursor(conn) as cur:
            cur.execute(f"SET statement_timeout TO {int(INTROSPECT_TIMEOUT_S * 1000)}")
            try:
                self._read_catalog(cur, dbname, filters, catalog)
            finally:
                cur.execute("SET statement_timeout TO 0")
        return catalog

    def _read_catalog(
        self, cur: Any, dbname: str, filters: IntrospectionFilters, catalog: Catalog
    ) -> None:
        schemas = [r for r in _run(cur, catalog_sql("schemas", 0)) if filters.match_schema(r[0])]
        catalog.schemas = [Schema(database=dbname, name=n, comment=c) for n, c in schemas]
        names = [n for n, _ in schemas]
        if not names:
            return
        tables = _run(cur, catalog_sql("tables", len(names)), names)
        stats = _table_info(cur, names)
        columns = _run(cur, catalog_sql("columns", len(names)), names)
        comments = _run(cur, catalog_sql("comments", len(names)), names)
        constraints = _run(cur, catalog_sql("constraints", len(names)), names)
        attributes = _run(cur, catalog_sql("attributes", len(names)), names * 2)
        catalog.tables = build_tables(
            dbname, tables, stats, columns, comments, constraints, attributes
        )

    def _sample_sql(self, table: Table, limit: int) -> str:
        return redshift_sample_sql(table, limit)


def redshift_sample_sql(table: Table, limit: int) -> str:
    """Redshift has no TABLESAMPLE: a RANDOM() filter on big tables, then LIMIT."""
    target = f"{quote_identifier(table.schema)}.{quote_identifier(table.name)}"
    rows = table.row_count or 0
    where = ""
    if table.kind == "table" and rows > limit:
        where = f" WHERE RANDOM() < {min(1.0, 1.5 * limit / rows):.6f}"
    return f"SELECT * FROM {target}{where} LIMIT {int(limit)}"


class _cursor:  # noqa: N801 - used like contextlib.closing
    """redshift-connector cursors are not context managers."""

    def __init__(self, conn: Any) -> None:
        self.cur = conn.cursor()

    def __enter__(self) -> Any:
        return self.cur

    def __exit__(self, *exc: object) -> None:
        self.cur.close()


def _fetch(cur: Any, n: int) -> list[Sequence[Any]]:
    if cur.description is None or n <= 0:
        return []
    return [list(r) for r in cur.fetchmany(n)]


def _run(cur: Any, sql: str, params: list[Any] | None = None) -> list[Sequence[Any]]:
    cur.execute(sql, params or None)
    return [list(r) for r in cur.fetchall() or []]


def _table_info(cur: Any, schemas: list[str]) -> dict[tuple[str, str], tuple[int, int]] | None:
    """(rows, bytes) per table from svv_table_info, or None where it does not exist."""
    try:
        rows = _run(cur, catalog_sql("table_info", len(schemas)), schemas)
    except redshift_connector.ProgrammingError as exc:
        if _sqlstate(exc) == _UNDEFINED_TABLE:
            return None
        raise
    return {(s, t): (int(n or 0), int(size or 0) * 1024 * 1024) for s, t, n, size in rows}


_KINDS: dict[str, TableKind] = {
    "BASE TABLE": "table", "VIEW": "view", "EXTERNAL TABLE": "external",
    "MATERIALIZED VIEW": "materialized_view",
}
_TEXT_TYPES = {"character varying", "character", "varchar", "char", "text", "bpchar"}


def build_tables(
    dbname: str,
    tables: list[Sequence[Any]],
    stats: dict[tuple[str, str], tuple[int, int]] | None,
    columns: list[Sequence[Any]],
    comments: list[Sequence[Any]],
    constraints: list[Sequence[Any]],
    attributes: list[Sequence[Any]],
) -> list[Table]:
    table_comments: dict[tuple[str, str], str] = {}
    col_comments: dict[tuple[str, str, str], str] = {}
    for schema, table, col, text in comments:
        if col is None:
            table_comments[(schema, table)] = text
        else:
            col_comments[(schema, table, col)] = text
    cols: dict[tuple[str, str], list[Column]] = defaultdict(list)
    for schema, table, name, pos, dtype, nullable, default, max_len, prec, scale in columns:
        cols[(schema, table)].append(
            Column(
                name=name, data_type=dtype, nullable=nullable == "YES", default=default,
                comment=col_comments.get((schema, table, name)), position=int(pos),
                max_length=int(max_len) if max_len is not None and dtype in _TEXT_TYPES
                else None,
                precision=int(prec) if prec is not None and dtype == "numeric" else None,
                scale=int(scale) if scale is not None and dtype == "numeric" else None,
            )
        )
    pks, fks = _keys(dbname, constraints, attributes)
    out = []
    for schema, name, ttype, reltuples, viewdef in tables:
        key = (schema, name)
        kind = _KINDS.get(ttype, "table")
        rows, size = _estimate(stats, key, reltuples, kind)
        out.append(
            Table(
                database=dbname, schema=schema, name=name, kind=kind, row_count=rows,
                size_bytes=size, comment=table_comments.get(key), columns=cols.get(key, []),
                primary_key=pks.get(key, []), foreign_keys=fks.get(key, []),
                view_definition=viewdef.strip() if viewdef else None,
            )
        )
    return out


def _estimate(
    stats: dict[tuple[str, str], tuple[int, int]] | None,
    key: tuple[str, str],
    reltuples: Any,
    kind: TableKind,
) -> tuple[int | None, int | None]:
    if kind != "table":
        return None, None
    if stats is not None:
        # svv_table_info lists only tables with data; missing means empty.
        return stats.get(key, (0, 0))
    # Without svv_table_info (not Redshift, or not visible): the planner's estimate.
    return (int(reltuples) if reltuples is not None and reltuples >= 0 else None), None


def _keys(
    dbname: str, constraints: list[Sequence[Any]], attributes: list[Sequence[Any]]
) -> tuple[dict[tuple[str, str], list[str]], dict[tuple[str, str], list[ForeignKey]]]:
    names = {(s, t, int(num)): a for s, t, num, a in attributes}
    pks: dict[tuple[str, str], list[str]] = {}
    fks: dict[tuple[str, str], list[ForeignKey]] = defaultdict(list)
    for schema, table, conname, contype, conkey, ref_schema, ref_table, confkey in sorted(
        constraints, key=lambda r: (r[0], r[1], r[2])
    ):
        cols = [names[(schema, table, int(n))] for n in _int_array(conkey)]
        if contype == "p":
            pks[(schema, table)] = cols
            continue
        fks[(schema, table)].append(
            ForeignKey(
                name=conname, columns=cols, referenced_database=dbname,
                referenced_schema=ref_schema, referenced_table=ref_table,
                referenced_columns=[
                    names[(ref_schema, ref_table, int(n))] for n in _int_array(confkey)
                ],
            )
        )
    return pks, fks


def _int_array(value: Any) -> list[int]:
    """int2[] arrives as a list, or as its text form ``{1,2}`` from older clusters."""
    if isinstance(value, list | tuple):
        return [int(v) for v in value]
    return [int(v) for v in str(value).strip("{}").split(",") if v]


# -- error translation ----------------------------------------------------------------


def _sqlstate(exc: Exception) -> str | None:
    arg = exc.args[0] if exc.args else None
    return arg.get("C") if isinstance(arg, dict) else None


def _message(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else None
    if isinstance(arg, dict):
        return str(arg.get("M", ""))
    parts = [str(a) for a in exc.args] or [type(exc).__name__]
    if exc.__cause__ is not None:
        parts.append(str(exc.__cause__))
    return " ".join(" ".join(parts).split())


def translate_redshift_error(exc: Exception) -> ConnectorError | None:
    if not isinstance(exc, redshift_connector.Error):
        return None
    state, text = _sqlstate(exc), _message(exc)
    low = text.lower()
    if state == "57014":
        return QueryTimeoutError(f"Query cancelled by the server after its timeout: {text}")
    if state == "25006":
        return ReadOnlyViolationError(f"This connection is read-only: {text}")
    if state == "42501":
        return PermissionDeniedError(f"Permission denied: {text}")
    if state in ("28P01", "28000"):
        return AuthenticationError(f"Authentication failed: {text}")
    if state == "3D000":
        return DatabaseNotFoundError(f"Database not found: {text}")
    if state is None and isinstance(exc, redshift_connector.InterfaceError):
        if any(m in low for m in ("refused", "name or service", "resolve", "timed out",
                                  "unreachable", "no route")):
            return HostUnreachableError(f"Cannot reach the server: {text}")
        return ConnectionFailedError(f"Connection to the server failed: {text}")
    if state and state.startswith(("08", "57P")):
        return ConnectionFailedError(f"Connection to the server failed: {text}")
    return QueryError(f"Query failed: {text}")
