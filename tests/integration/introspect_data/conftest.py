"""Throwaway warehouses for the introspect-data tests: a PostgreSQL database and a MariaDB
database with the connector tests' shop schema (keys, comments, a view), a MariaDB user
with a password, and a flaky TCP proxy for transient network failures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.connectors.conftest import (
    PG_ADMIN_USER,
    PG_HOST,
    PG_PORT,
    mysql_user_with_password,
    throwaway_mysql_database,
    throwaway_pg_database,
    unique,
)
from tests.integration.introspect_data._support import FlakyProxy


@pytest.fixture(scope="module")
def pg_db() -> Iterator[str]:
    with throwaway_pg_database("bj_intro_pg") as name:
        yield name


@pytest.fixture
def pg_creds(pg_db: str) -> dict[str, Any]:
    # a unique application_name lets the test count this source's server sessions
    return {"type": "postgres", "host": PG_HOST, "port": PG_PORT, "database": pg_db,
            "user": PG_ADMIN_USER, "application_name": unique("bj_intro")}


@pytest.fixture(scope="module")
def mysql_db() -> Iterator[str]:
    with throwaway_mysql_database("bj_intro_my") as name:
        yield name


@pytest.fixture(scope="module")
def mysql_user(mysql_db: str) -> Iterator[tuple[str, str]]:
    """A MariaDB user with a real password (root has none here): (user, password)."""
    with mysql_user_with_password(mysql_db, "bj_iu") as user:
        yield user


@pytest.fixture
def flaky_pg() -> Iterator[FlakyProxy]:
    proxy = FlakyProxy((PG_HOST, PG_PORT), drop=1).start()
    yield proxy
    proxy.stop()

