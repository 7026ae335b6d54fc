"""Agent settings that shape the analyst-agent task itself."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(("value", "limit"), [("3", 3), (None, None)])
def test_agent_concurrency_limit_comes_from_the_environment(value: str | None, limit: int | None):
    # read when the task module is imported, so in a fresh interpreter
    env = {k: v for k, v in os.environ.items() if k != "BUSTER_AGENT_CONCURRENCY_LIMIT"}
    if value is not None:
        env["BUSTER_AGENT_CONCURRENCY_LIMIT"] = value
    out = subprocess.run(
        [sys.executable, "-c", "import actors.analyst_agent.actor as a; "
         "print(a.analyst_agent.concurrency_limit)"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )
    assert out.stdout.strip() == str(limit)
