"""Snowflake stand: fakesnow (DuckDB) as an HTTP server, from its own venv.

Connect with ``account="fakesnow", host="127.0.0.1", port=PORT, protocol="http"`` and the
handle's user and password. All sessions share one in-memory database.
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

NAME = "snowflake"
REQUIREMENTS = ["fakesnow[server]==0.12.1", "snowflake-connector-python==4.8.1"]
USER, PASSWORD = "buster", "snow-pass-4e7c"

__all__ = ["ensure_installed", "start", "stop"]


def ensure_installed() -> None:
    ensure_venv(NAME, base_python(), REQUIREMENTS)


def start(port: int | None = None) -> Handle:
    venv = ensure_venv(NAME, base_python(), REQUIREMENTS)
    port = port or free_port()
    argv = [str(venv / "bin" / "python"), "-P", str(HERE / "_snowflake_server.py"), str(port),
            USER, PASSWORD]
    return start_process(NAME, argv, port, extra={"user": USER, "password": PASSWORD,
                                                  "account": "fakesnow"})
