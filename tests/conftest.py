"""Fixtures: a real Postgres database and RabbitMQ queues per test session, or SQLite and
the in-process broker for the fast tier. A service that is down fails the tests (never
skips): `.ci/run` starts them first."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("BUSTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
AMQP = os.environ.get("BUSTER_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")

#: small timings: tests wait for milliseconds, not seconds
FAST = {
    "lease_seconds": 2.0,
    "heartbeat_seconds": 0.3,
    "timer_interval_seconds": 0.05,
    "unpublished_grace_seconds": 0.3,
    "log_flush_seconds": 0.2,
    "shutdown_timeout_seconds": 2.0,
    "worker_presence_seconds": 0.5,
    "pending_queue_check_seconds": 0.2,
    "run_webhook_refresh_seconds": 0.3,
    "bulk_action_page_size": 2,
    "default_retry_min_timeout_ms": 50,
    "default_retry_randomize": False,
}


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh Postgres database for this session, dropped at the end."""
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
    name = f"buster_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="session")
def amqp_url() -> str:
    if not _port_open("127.0.0.1", 5672):
        pytest.fail("RabbitMQ is not reachable at 127.0.0.1:5672")
    return AMQP


def _delete_queues(url: str, names: list[str]) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    for q in names:
        for suffix in ("", ".DQ", ".XQ"):
            ch.queue_delete(q + suffix)
    conn.close()


def _truncate(engine: Any) -> None:
    from sqlalchemy import text

    from runtime.store.tables import metadata

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} CASCADE"))
        else:
            for t in reversed(metadata.sorted_tables):
                conn.execute(t.delete())


class Env:
    """What a test needs to start workers in other processes against the same store."""

    def __init__(self, backend: str, settings: dict[str, Any], tmp: Path):
        self.backend = backend
        self.settings = settings
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def queue(self) -> str:
        return str(self.settings["default_queue"])

    @property
    def large_queue(self) -> str:
        return str(self.settings["large_queue"])

    def environ(self, **extra: Any) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BUSTER_")}
        for k, v in {**self.settings, **extra}.items():
            if v is not None:
                env[f"BUSTER_{k.upper()}"] = str(v)
        env["PYTHONPATH"] = str(ROOT)
        env["BUSTER_TASK_MODULES"] = "tests.tasks"
        return env

    def start_worker(
        self,
        queues: list[str] | None = None,
        threads: int = 4,
        processes: int = 1,
        timer: bool = True,
        **extra: Any,
    ) -> subprocess.Popen[bytes]:
        cmd = [
            sys.executable,
            "-m",
            "runtime.cli",
            "worker",
            "--queues",
            *(queues or [self.queue]),
            "-p",
            str(processes),
            "-t",
            str(threads),
        ]
        if not timer:
            cmd.append("--no-timer")
        log = open(self.tmp / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            cmd, env=self.environ(**extra), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        self.procs.append(proc)
        return proc

    def cli(
        self, *args: str, timeout: float = 60, **extra: Any
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runtime.cli", *args],
            env=self.environ(**extra),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def _settings(backend: str, tmp: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    s: dict[str, Any] = {
        **FAST,
        "default_queue": f"t{tag}-default",
        "large_queue": f"t{tag}-large",
        "data_dir": str(tmp / "data"),
        "encryption_key": "kCCJ9k0vAO3dFeMj6nCS0jzLCYyoXVmK8o0dyRu1Pzc=",
    }
    if backend == "postgres":
        s["database_url"] = request.getfixturevalue("pg_url")
        s["broker_url"] = request.getfixturevalue("amqp_url")
    else:
        s["database_url"] = f"sqlite:///{tmp / 'store.db'}"
    return s


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    """The configured runtime of this process, on each backend."""
    yield from _env(request.param, request, tmp_path)


@pytest.fixture
def pg_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    """Real Postgres and RabbitMQ only (multi-process tests)."""
    yield from _env("postgres", request, tmp_path)


def _env(backend: str, request: pytest.FixtureRequest, tmp: Path) -> Iterator[Env]:
    import runtime
    from runtime import bootstrap

    settings = _settings(backend, tmp, request)
    rt = runtime.configure(**settings)
    e = Env(backend, settings, tmp)
    yield e
    e.stop_all()
    _truncate(rt.store.engine)
    bootstrap.reset()
    if backend == "postgres":
        _delete_queues(settings["broker_url"], [settings["default_queue"], settings["large_queue"]])


@pytest.fixture
def worker(env: Env) -> Iterator[Any]:
    """An in-process worker on this test's queues (4 threads, timer loop on)."""
    yield from _worker(env)


@pytest.fixture
def pg_worker(pg_env: Env) -> Iterator[Any]:
    yield from _worker(pg_env)


def _worker(e: Env) -> Iterator[Any]:
    import tests.tasks  # noqa: F401 - registers the test tasks
    from runtime import get_runtime
    from runtime.worker import WorkerProcess

    wp = WorkerProcess(get_runtime(), [e.queue, e.large_queue], threads=4)
    wp.start()
    yield wp
    wp.stop(timeout=2)
