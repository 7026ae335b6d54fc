"""Local warehouse emulators for the connector integration tests (see README.md).

Each stand module offers ``ensure_installed()``, ``start() -> Handle`` and ``stop(handle)``.
"""

from __future__ import annotations

from types import ModuleType

from tests.stands import bigquery, databricks, snowflake, sqlserver

STANDS: dict[str, ModuleType] = {
    "snowflake": snowflake, "bigquery": bigquery, "sqlserver": sqlserver,
    "databricks": databricks,
}
