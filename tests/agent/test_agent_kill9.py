"""Kill -9 the worker mid-run: the run resumes on another worker from the last recorded
turn; earlier model turns are not requested again (counted in the fake's request log)."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from actors.analyst_agent import analyst_agent
from agent.testing import RecordedAnthropic
from connectors import connect
from runtime import datasources, runs
from tests.agent import scenarios as sc
from tests.conftest import ROOT
from tests.helpers import wait_final, wait_for

pytestmark = pytest.mark.integration


def _worker(env: Any, scenario: Path, log: Path) -> subprocess.Popen[bytes]:
    environ = env.environ(agent_transport=f"recorded:{scenario}")
    environ["BUSTER_TASK_MODULES"] = "actors"
    cmd = [sys.executable, "-m", "runtime.cli", "worker", "--queues", env.large_queue,
           "-p", "1", "-t", "2"]
    proc = subprocess.Popen(cmd, env=environ, cwd=ROOT, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)
    env.procs.append(proc)
    return proc


def test_kill_9_mid_run_resumes_without_requesting_earlier_turns(
    pg_env: Any, tmp_path: Path
) -> None:
    source = datasources.get("sample")
    with connect(source.credentials) as conn:  # catalog first: this test is about resuming
        datasources.save_catalog(source.id, conn.introspect())
    fake = RecordedAnthropic.write(tmp_path / "scenario.json", sc.happy_path(delay_s=0.4))
    w1 = _worker(pg_env, fake.path, tmp_path / "w1.log")
    # triggered through the task object: the run carries its retry policy (3 attempts)
    handle = analyst_agent.trigger({
        "session_id": str(uuid.uuid4()), "query": "How are orders doing?",
        "data_sources": ["sample"]})
    wait_for(lambda: any(r["turn"] >= 4 for r in fake.requests()), timeout=60, interval=0.02)
    w1.send_signal(signal.SIGKILL)
    w1.wait()
    killed_at = max(r["turn"] for r in fake.requests())
    _worker(pg_env, fake.path, tmp_path / "w2.log")
    run = wait_final(handle.id, timeout=90)
    assert run.status == "COMPLETED" and run.output["success"] is True, (run.error, run.output)
    assert len(run.output["result"]["artifacts"]) == 3
    per_turn = {t: sum(1 for r in fake.requests() if r["turn"] == t) for t in range(1, 8)}
    # turns finished before the kill were answered once; only the turn in flight repeats
    assert all(per_turn[t] == 1 for t in range(1, killed_at)), per_turn
    assert per_turn[killed_at] <= 2 and all(per_turn[t] == 1 for t in range(killed_at + 1, 8))
    assert len({r["pid"] for r in fake.requests()}) == 2
    assert runs.retrieve(handle.id).attempts is not None
