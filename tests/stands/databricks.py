"""Databricks stand: a fake SQL warehouse on the connector's own Thrift service classes.

See ``_databricks_server.py``. Connect with ``server_hostname="http://127.0.0.1"``, the
handle's port, ``http_path`` and ``access_token``.
"""

from __future__ import annotations

from tests.helpers import free_port
from tests.stands._common import (
    HERE,
    Handle,
    base_python,
    ensure_venv,
    start_process,
    stop,
)

NAME = "databricks"
REQUIREMENTS = ["databricks-sql-connector==4.9.0", "duckdb==2.0.1", "sqlglot==30.30.0"]
TOKEN = "dapi-fake-7d1b9e"
HTTP_PATH = "/sql/1.0/warehouses/fake"

__all__ = ["ensure_installed", "start", "stop"]


def ensure_installed() -> None:
    ensure_venv(NAME, base_python(), REQUIREMENTS)


def start(port: int | None = None) -> Handle:
    venv = ensure_venv(NAME, base_python(), REQUIREMENTS)
    port = port or free_port()
    argv = [str(venv / "bin" / "python"), "-P", str(HERE / "_databricks_server.py"),
            str(port), TOKEN]
    return start_process(NAME, argv, port, extra={"token": TOKEN, "http_path": HTTP_PATH})
