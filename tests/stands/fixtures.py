"""Session fixtures that start each stand once and stop it by PID at the end.

Import the ones a test module needs explicitly::

    from tests.stands.fixtures import snowflake_stand  # noqa: F401

A stand that fails to install or start raises: its tests error, they never skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.stands import bigquery, databricks, snowflake, sqlserver
from tests.stands._common import Handle


def _run(stand: ModuleType) -> Iterator[Handle]:
    handle = stand.start()
    try:
        yield handle
    finally:
        stand.stop(handle)


@pytest.fixture(scope="session")
def snowflake_stand() -> Iterator[Handle]:
    yield from _run(snowflake)


@pytest.fixture(scope="session")
def bigquery_stand() -> Iterator[Handle]:
    yield from _run(bigquery)


@pytest.fixture(scope="session")
def sqlserver_stand() -> Iterator[Handle]:
    yield from _run(sqlserver)


@pytest.fixture(scope="session")
def databricks_stand() -> Iterator[Handle]:
    yield from _run(databricks)


def closed_port() -> int:
    """A local port with nothing listening (bound, then released)."""
    from tests.helpers import free_port

    return free_port()
