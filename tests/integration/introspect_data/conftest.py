"""Throwaway warehouses for the introspect-data tests: a PostgreSQL database and a MariaDB
database with the connector tests' shop schema (keys, comments, a view), a MariaDB user
with a password, and a flaky TCP proxy for transient network failures."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.connectors.conftest import (
    MYSQL_SCHEMA,
    PG_ADMIN_USER,
    PG_HOST,
    PG_PORT,
    PG_SCHEMA,
    mysql_admin,
    pg_admin,
    unique,
)
from tests.integration.introspect_data._support import FlakyProxy


@pytest.fixture(scope="module")
def pg_db() -> Iterator[str]:
    name = unique("bj_intro_pg")
    with pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with pg_admin(name) as conn:
            conn.execute(PG_SCHEMA)
        yield name
    finally:
        with pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_creds(pg_db: str) -> dict[str, Any]:
    # a unique application_name lets the test count this source's server sessions
    return {"type": "postgres", "host": PG_HOST, "port": PG_PORT, "database": pg_db,
            "user": PG_ADMIN_USER, "application_name": unique("bj_intro")}


@pytest.fixture(scope="module")
def mysql_db() -> Iterator[str]:
    name = unique("bj_intro_my")
    with mysql_admin() as admin, admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    try:
        with mysql_admin(name) as conn, conn.cursor() as cur:
            for statement in MYSQL_SCHEMA:
                cur.execute(statement)
        yield name
    finally:
        with mysql_admin() as admin, admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(scope="module")
def mysql_user(mysql_db: str) -> Iterator[tuple[str, str]]:
    """A MariaDB user with a real password (root has none here): (user, password)."""
    user, password = unique("bj_iu"), "Secret-" + uuid.uuid4().hex
    with mysql_admin() as admin, admin.cursor() as cur:
        cur.execute("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s", (user, password))
        cur.execute(f"GRANT SELECT ON `{mysql_db}`.* TO %s@'127.0.0.1'", (user,))
    try:
        yield user, password
    finally:
        with mysql_admin() as admin, admin.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'127.0.0.1'", (user,))


@pytest.fixture
def flaky_pg() -> Iterator[FlakyProxy]:
    proxy = FlakyProxy((PG_HOST, PG_PORT), drop=1).start()
    yield proxy
    proxy.stop()

