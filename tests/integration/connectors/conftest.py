"""Throwaway databases on the real PostgreSQL and MariaDB servers, a private md5-auth
PostgreSQL cluster for wrong-password tests, and the Redshift proxy.

A server that is down makes these fixtures raise, so the tests fail instead of skipping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest

from tests.stands.redshift_proxy import RedshiftProxy

PG_HOST = os.environ.get("BUSTER_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BUSTER_TEST_PG_PORT", "5432"))
PG_ADMIN_USER = os.environ.get("BUSTER_TEST_PG_USER", "postgres")
MYSQL_HOST = os.environ.get("BUSTER_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("BUSTER_TEST_MYSQL_PORT", "3306"))
MYSQL_ADMIN_USER = os.environ.get("BUSTER_TEST_MYSQL_USER", "root")
PG_BIN = Path(os.environ.get("BUSTER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))

PG_SCHEMA = """
CREATE SCHEMA shop;
COMMENT ON SCHEMA shop IS 'The web shop';
CREATE TABLE shop.customers (
    id serial PRIMARY KEY,
    email varchar(120) NOT NULL,
    country char(2) DEFAULT 'US',
    balance numeric(12, 2),
    signed_up date,
    last_seen timestamptz,
    tags text[],
    profile jsonb,
    avatar bytea,
    vip boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE shop.customers IS 'People who buy';
COMMENT ON COLUMN shop.customers.email IS 'Login email';
CREATE TABLE shop.orders (
    id bigint PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES shop.customers (id),
    total numeric(10, 2),
    placed_on date
);
CREATE TABLE shop.order_lines (
    order_id bigint REFERENCES shop.orders (id),
    line_no integer,
    sku text NOT NULL,
    qty integer NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
CREATE TABLE shop.shipments (
    id serial PRIMARY KEY,
    order_id bigint NOT NULL,
    line_no integer NOT NULL,
    FOREIGN KEY (order_id, line_no) REFERENCES shop.order_lines (order_id, line_no)
);
CREATE VIEW shop.big_orders AS SELECT id, total FROM shop.orders WHERE total > 100;
COMMENT ON VIEW shop.big_orders IS 'Orders over 100';
CREATE MATERIALIZED VIEW shop.order_totals AS
    SELECT customer_id, sum(total) AS total FROM shop.orders GROUP BY customer_id;
CREATE SCHEMA scratch;
CREATE TABLE scratch.tmp_notes (id int PRIMARY KEY, body text);
INSERT INTO shop.customers (email, balance, signed_up, last_seen, tags, profile, avatar)
SELECT 'user' || g || '@example.com', g * 1.25, DATE '2024-01-01' + g,
       TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '1 hour',
       ARRAY['t' || (g % 3)], jsonb_build_object('n', g), '\\x0102'::bytea
FROM generate_series(1, 50) g;
INSERT INTO shop.orders SELECT g, 1 + g % 50, g * 3.5, DATE '2024-03-01' + g
FROM generate_series(1, 120) g;
ANALYZE;
"""

MYSQL_SCHEMA = [
    """CREATE TABLE customers (
        id int AUTO_INCREMENT PRIMARY KEY,
        email varchar(120) NOT NULL COMMENT 'Login email',
        country char(2) DEFAULT 'US',
        balance decimal(12, 2),
        signed_up date,
        last_seen datetime(3),
        profile json,
        avatar blob,
        vip tinyint(1) NOT NULL DEFAULT 0
    ) COMMENT 'People who buy'""",
    """CREATE TABLE orders (
        id bigint PRIMARY KEY,
        customer_id int NOT NULL,
        total decimal(10, 2),
        placed_on date,
        CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
    )""",
    """CREATE TABLE order_lines (
        order_id bigint,
        line_no int,
        sku varchar(40) NOT NULL,
        qty int NOT NULL,
        PRIMARY KEY (order_id, line_no),
        CONSTRAINT fk_lines_order FOREIGN KEY (order_id) REFERENCES orders (id)
    )""",
    """CREATE TABLE shipments (
        id int AUTO_INCREMENT PRIMARY KEY,
        order_id bigint NOT NULL,
        line_no int NOT NULL,
        CONSTRAINT fk_ship_line FOREIGN KEY (order_id, line_no)
            REFERENCES order_lines (order_id, line_no)
    )""",
    "CREATE VIEW big_orders AS SELECT id, total FROM orders WHERE total > 100",
    """INSERT INTO customers (email, balance, signed_up, last_seen, profile, avatar)
       SELECT CONCAT('user', seq, '@example.com'), seq * 1.25,
              DATE '2024-01-01' + INTERVAL seq DAY,
              TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq HOUR,
              JSON_OBJECT('n', seq), x'0102'
       FROM seq_1_to_50""",
    """INSERT INTO orders SELECT seq, 1 + seq % 50, seq * 3.5,
              DATE '2024-03-01' + INTERVAL seq DAY FROM seq_1_to_120""",
    "ANALYZE TABLE customers, orders",
]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def closed_tcp_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_admin(dbname: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_ADMIN_USER, dbname=dbname,
                           autocommit=True, connect_timeout=5)


def mysql_admin(database: str | None = None) -> pymysql.connections.Connection[Any]:
    return pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_ADMIN_USER,
                           database=database, autocommit=True, connect_timeout=5)


@contextlib.contextmanager
def throwaway_pg_database(prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL database holding the shop schema, dropped afterwards."""
    name = unique(prefix)
    with pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with pg_admin(name) as conn:
            conn.execute(PG_SCHEMA)
        yield name
    finally:
        with pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def throwaway_mysql_database(prefix: str) -> Iterator[str]:
    """A fresh MariaDB database holding the shop schema, dropped afterwards."""
    name = unique(prefix)
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


@contextlib.contextmanager
def mysql_user_with_password(database: str, prefix: str) -> Iterator[tuple[str, str]]:
    """A MariaDB user with a real password (root has none here) that may read
    ``database``: (user, password)."""
    user, password = unique(prefix), "Secret-" + uuid.uuid4().hex
    with mysql_admin() as admin, admin.cursor() as cur:
        cur.execute("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s", (user, password))
        cur.execute(f"GRANT SELECT ON `{database}`.* TO %s@'127.0.0.1'", (user,))
    try:
        yield user, password
    finally:
        with mysql_admin() as admin, admin.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'127.0.0.1'", (user,))


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    with throwaway_pg_database("bj_it_pg") as name:
        yield name


@pytest.fixture
def pg_credentials(pg_database: str) -> dict[str, Any]:
    return {"type": "postgres", "host": PG_HOST, "port": PG_PORT, "database": pg_database,
            "user": PG_ADMIN_USER, "application_name": unique("bj_app")}


@pytest.fixture(scope="module")
def mysql_database() -> Iterator[str]:
    with throwaway_mysql_database("bj_it_my") as name:
        yield name


@pytest.fixture
def mysql_credentials(mysql_database: str) -> dict[str, Any]:
    return {"type": "mysql", "host": MYSQL_HOST, "port": MYSQL_PORT,
            "database": mysql_database, "user": MYSQL_ADMIN_USER}


@pytest.fixture(scope="module")
def mysql_password_user(mysql_database: str) -> Iterator[tuple[str, str]]:
    with mysql_user_with_password(mysql_database, "bj_u") as user:
        yield user


@pytest.fixture(scope="session")
def md5_cluster() -> Iterator[tuple[int, str, str]]:
    """A private PostgreSQL cluster that checks passwords (md5, which redshift-connector
    also speaks); the shared server trusts everyone. Yields (port, user, password)."""
    user, password = "bj_auth", "Pg-" + uuid.uuid4().hex
    datadir = Path(tempfile.mkdtemp(prefix="bj-pg-md5-"))
    port = closed_tcp_port()
    pwfile = datadir.parent / f"{datadir.name}.pw"
    pwfile.write_text(password)
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(datadir, "postgres")
        shutil.chown(pwfile, "postgres")
    try:
        subprocess.run(
            [*as_postgres, str(PG_BIN / "initdb"), "-D", str(datadir), "-U", user,
             "--auth=md5", f"--pwfile={pwfile}"],
            check=True, capture_output=True, timeout=60,
        )
        subprocess.run(
            [*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-w", "-t", "30",
             "-o", f"-p {port} -k /tmp -c listen_addresses=127.0.0.1 "
             "-c password_encryption=md5", "-l",
             str(datadir / "log"), "start"],
            check=True, capture_output=True, timeout=60,
        )
        # initdb stored the password as SCRAM; store it again as md5.
        with psycopg.connect(host="127.0.0.1", port=port, user=user, password=password,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f"ALTER ROLE {user} PASSWORD '{password}'")
        yield port, user, password
    finally:
        subprocess.run(
            [*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-m", "immediate",
             "stop"], capture_output=True, timeout=60,
        )
        shutil.rmtree(datadir, ignore_errors=True)
        pwfile.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def redshift_proxy() -> Iterator[RedshiftProxy]:
    proxy = RedshiftProxy((PG_HOST, PG_PORT)).start()
    try:
        yield proxy
    finally:
        proxy.stop()
