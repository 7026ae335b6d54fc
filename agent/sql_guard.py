"""Refuse anything but one read-only query before it reaches a warehouse.

The SQL is parsed with sqlglot in the source's dialect and fails closed: a statement the
parser cannot read is refused, not passed through. This is the first of two layers; the
connectors also open read-only sessions where the driver allows it.
"""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from agent.errors import SqlRefusedError

__all__ = ["DIALECTS", "check_query", "dialect_for"]

#: connector type -> sqlglot dialect
DIALECTS = {
    "postgres": "postgres",
    "redshift": "redshift",
    "mysql": "mysql",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "sqlserver": "tsql",
    "databricks": "databricks",
    "duckdb": "duckdb",
}


def _types(*names: str) -> tuple[type[exp.Expression], ...]:
    # Looked up by name: sqlglot renames or adds node classes between releases.
    return tuple(t for n in names if isinstance(t := getattr(exp, n, None), type))


_WRITES = _types(
    "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "AlterTable",
    "TruncateTable", "Copy", "Command", "Set", "SetItem", "Grant", "Revoke", "Use", "Pragma",
    "Transaction", "Commit", "Rollback", "LoadData", "Attach", "Detach", "Install",
    "Export", "Analyze", "Call",
)
# Functions that read or write the server's files, sleep, or change server state:
# harmless-looking inside a SELECT, so checked by name.
_DENIED_FUNCTIONS = frozenset({
    "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_sleep", "lo_import", "lo_export",
    "dblink", "dblink_exec", "set_config", "pg_terminate_backend", "pg_cancel_backend",
    "nextval", "setval", "read_csv", "read_csv_auto", "read_parquet", "read_json",
    "read_json_auto", "read_text", "read_blob", "glob", "sleep", "benchmark",
    "load_file", "xp_cmdshell", "openrowset", "opendatasource",
})


def dialect_for(warehouse_type: str) -> str:
    return DIALECTS.get(warehouse_type, warehouse_type)


def check_query(sql: str, dialect: str) -> str:
    """Return ``sql`` (stripped of a trailing ``;``) when it is exactly one read-only query;
    raise :class:`SqlRefusedError` with a reason the model can act on otherwise."""
    statements = _parse(sql, dialect)
    if len(statements) != 1:
        raise SqlRefusedError(
            f"Refused: {len(statements)} statements. Send exactly one SELECT query."
        )
    root = statements[0]
    if not isinstance(root, exp.Query):
        raise SqlRefusedError(
            f"Refused: {root.key.upper()} is not a query. Only read-only SELECT queries "
            "are allowed."
        )
    for node in root.walk():
        _check_node(node)
    return sql.strip().rstrip(";").strip()


def _parse(sql: str, dialect: str) -> list[Any]:
    if not sql or not sql.strip():
        raise SqlRefusedError("Refused: the SQL is empty.")
    try:
        parsed = sqlglot.parse(sql, read=dialect)
    except SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SqlRefusedError(f"Refused: the SQL could not be parsed ({first}).") from exc
    # ``SELECT 1;`` parses to [Select, None]: empty statements are not statements.
    return [s for s in parsed if s is not None]


def _check_node(node: Any) -> None:
    if isinstance(node, _WRITES):
        raise SqlRefusedError(
            f"Refused: {node.key.upper()} inside the query. Only read-only SELECT queries "
            "are allowed."
        )
    if isinstance(node, exp.Into):
        raise SqlRefusedError("Refused: SELECT INTO writes a table. Use a plain SELECT.")
    if isinstance(node, exp.Lock):
        raise SqlRefusedError("Refused: locking clauses (FOR UPDATE/SHARE) are not allowed.")
    if isinstance(node, exp.Func):
        name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
        if str(name).lower() in _DENIED_FUNCTIONS:
            raise SqlRefusedError(f"Refused: the function {name} is not allowed.")
