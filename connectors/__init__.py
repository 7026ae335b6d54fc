"""Warehouse connectors behind one interface.

    from connectors import connect
    with connect({"type": "postgres", "host": ..., "port": 5432, ...}) as conn:
        conn.test_connection()
        catalog = conn.introspect()
        result = conn.query("select 1", max_rows=100, timeout_s=10)

Each warehouse module imports only its own driver, and only when ``connect`` picks it, so
a missing driver surfaces as :class:`MissingDriverError` naming the extra to install.
"""

from __future__ import annotations

import importlib
from typing import Any

from connectors.base import ConnectionInfo, Connector, QueryColumn, QueryResult
from connectors.catalog import (
    Catalog,
    Column,
    ColumnProfile,
    Database,
    ForeignKey,
    IntrospectionFilters,
    Schema,
    Table,
)
from connectors.credentials import (
    BigQueryCredentials,
    Credentials,
    DatabricksCredentials,
    DuckDBCredentials,
    MySQLCredentials,
    PostgresCredentials,
    RedshiftCredentials,
    SnowflakeCredentials,
    SQLServerCredentials,
    parse_credentials,
    safe_dict,
)
from connectors.errors import (
    AuthenticationError,
    ConnectionFailedError,
    ConnectorError,
    DatabaseNotFoundError,
    HostUnreachableError,
    InvalidCredentialsError,
    MissingDriverError,
    PermissionDeniedError,
    QueryError,
    QueryTimeoutError,
    ReadOnlyViolationError,
)

__all__ = [
    "AuthenticationError",
    "BigQueryCredentials",
    "Catalog",
    "Column",
    "ColumnProfile",
    "ConnectionFailedError",
    "ConnectionInfo",
    "Connector",
    "ConnectorError",
    "Credentials",
    "Database",
    "DatabaseNotFoundError",
    "DatabricksCredentials",
    "DuckDBCredentials",
    "ForeignKey",
    "HostUnreachableError",
    "IntrospectionFilters",
    "InvalidCredentialsError",
    "MissingDriverError",
    "MySQLCredentials",
    "PermissionDeniedError",
    "PostgresCredentials",
    "QueryColumn",
    "QueryError",
    "QueryResult",
    "QueryTimeoutError",
    "ReadOnlyViolationError",
    "RedshiftCredentials",
    "SQLServerCredentials",
    "Schema",
    "SnowflakeCredentials",
    "Table",
    "connect",
    "parse_credentials",
    "safe_dict",
]

# type -> (module, connector class, driver import name, extra). The driver is imported
# first so a missing package is told apart from a bug inside our module.
_REGISTRY: dict[str, tuple[str, str, str, str]] = {
    "postgres": ("connectors.postgres", "PostgresConnector", "psycopg", "postgres"),
    "mysql": ("connectors.mysql", "MySQLConnector", "pymysql", "mysql"),
    "redshift": ("connectors.redshift", "RedshiftConnector", "redshift_connector", "redshift"),
    "snowflake": ("connectors.snowflake", "SnowflakeConnector", "snowflake.connector",
                  "snowflake"),
    "bigquery": ("connectors.bigquery", "BigQueryConnector", "google.cloud.bigquery",
                 "bigquery"),
    "sqlserver": ("connectors.sqlserver", "SQLServerConnector", "pyodbc", "sqlserver"),
    "databricks": ("connectors.databricks", "DatabricksConnector", "databricks.sql",
                   "databricks"),
    "duckdb": ("connectors.duckdb", "DuckDBConnector", "duckdb", "duckdb"),
}


def connect(credentials: dict[str, Any] | Any) -> Connector:
    """Return the connector for ``credentials`` (a dict or a credentials model).

    The connection itself opens on first use (``test_connection``, ``query``,
    ``introspect``), so this call fails only on invalid credentials or a missing driver.
    """
    creds = parse_credentials(credentials)
    module_name, class_name, driver, extra = _REGISTRY[creds.type]
    try:
        importlib.import_module(driver)
    except ImportError as exc:
        raise MissingDriverError(creds.type, extra, driver) from exc
    module = importlib.import_module(module_name)
    connector: Connector = getattr(module, class_name)(creds)
    return connector
