"""Agent test fixtures: the recorded model transport, the runtime on Postgres + RabbitMQ,
the bundled sample warehouse registered as data source ``sample``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.testing import RecordedAnthropic


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``recorded(turns)`` writes a scenario and points the agent's client at it."""

    def use(turns: list[Any]) -> RecordedAnthropic:
        fake = RecordedAnthropic.write(tmp_path / "scenario.json", turns)
        monkeypatch.setenv("BUSTER_AGENT_TRANSPORT", f"recorded:{fake.path}")
        return fake

    yield use
