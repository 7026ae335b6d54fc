"""The analyst-agent end to end: the real anthropic SDK over recorded HTTP responses, the
bundled DuckDB sample warehouse, the run store on real Postgres, RabbitMQ."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import actors.analyst_agent  # noqa: F401 - registers the task for the in-process worker
from runtime import datasources, get_runtime, runs, tasks
from runtime.store.artifacts import list_by_run
from tests.agent import scenarios as sc
from tests.helpers import wait_final

pytestmark = pytest.mark.integration


def _trigger(query: str = "How are orders and revenue doing?", **options: Any) -> str:
    handle = tasks.trigger("analyst-agent", {
        "session_id": str(uuid.uuid4()), "query": query, "data_sources": ["sample"],
        "options": options})
    return str(handle.id)


def _count_orders() -> int:
    with datasources.get("sample").connect() as conn:
        return int(conn.query("SELECT count(*) FROM orders").rows[0][0])


def _tool_results(fake: Any) -> list[str]:
    return [r["status"] for r in fake.requests()]


def test_happy_path_search_plan_sql_two_metrics_dashboard_review_finish(
    pg_worker: Any, recorded: Any
) -> None:
    fake = recorded(sc.happy_path())
    run = wait_final(_trigger(), timeout=90)
    assert run.status == "COMPLETED", run.error
    out = run.output
    assert out["success"] is True and out["result"]["response"].startswith("Orders grew")
    kinds = [a["type"] for a in out["result"]["artifacts"]]
    assert kinds == ["metric", "metric", "dashboard"]
    metrics = [a for a in out["result"]["artifacts"] if a["type"] == "metric"]
    with datasources.get("sample").connect() as conn:
        for m in metrics:
            assert m["content"]["review"]["status"] == "passed"
            assert conn.query(m["content"]["spec"]["sql"]).row_count > 0
    dash = out["result"]["artifacts"][2]
    assert dash["content"]["spec"]["rows"][0]["items"] == [m["id"] for m in metrics]
    stored = list_by_run(get_runtime().store, run.id)
    assert sorted(a["id"] for a in stored) == sorted(a["id"] for a in out["result"]["artifacts"])
    assert {a["session_id"] for a in stored} == {out["session_id"]}
    meta = run.metadata
    assert meta["phase"] == "completed" and meta["step"] == 7 and meta["tool_calls"] == 7
    assert meta["usage"]["input_tokens"] == 7 * 1200
    assert len(fake.requests()) == 7  # one HTTP request per turn


def test_writes_are_refused_before_the_warehouse_and_the_model_continues(
    pg_worker: Any, recorded: Any
) -> None:
    fake = recorded(sc.write_attempts())
    before = _count_orders()
    run = wait_final(_trigger("Delete the orders, then count them"), timeout=90)
    assert run.status == "COMPLETED" and run.output["success"] is True, run.output
    assert _count_orders() == before == 4000
    assert len(fake.requests()) == 7
    steps = {s["name"]: s["result"] for s in get_runtime().store.steps(run.id)}
    (delete_result,) = steps["tools-turn-3"]["results"]
    (drop_result,) = steps["tools-turn-4"]["results"]
    assert delete_result["is_error"] and "DELETE is not a query" in delete_result["content"]
    assert drop_result["is_error"] and "2 statements" in drop_result["content"]
    assert '"n"' in steps["tools-turn-5"]["results"][0]["content"]


def test_step_budget_exhausted_fails_with_max_steps_and_partial_artifacts(
    pg_worker: Any, recorded: Any
) -> None:
    recorded(sc.budget_runs_out())
    run = wait_final(_trigger(max_steps=4), timeout=90)
    out = run.output
    assert out["success"] is False and out["error"]["code"] == "MAX_STEPS"
    assert [a["title"] for a in out["result"]["artifacts"]] == ["Monthly orders"]
    assert run.metadata["phase"] == "failed" and run.metadata["step"] == 4


def test_metric_failing_review_is_sent_back_and_its_fix_is_revalidated(
    pg_worker: Any, recorded: Any
) -> None:
    fake = recorded(sc.review_sends_back())
    run = wait_final(_trigger(), timeout=90)
    out = run.output
    assert out["success"] is True, out
    steps = {s["name"]: s["result"] for s in get_runtime().store.steps(run.id)}
    finding = steps["tools-turn-4"]["results"][0]
    assert finding["is_error"] and "returns no rows" in finding["content"]
    (metric,) = out["result"]["artifacts"]
    assert metric["title"] == "Products per category"
    assert metric["content"]["review"] == {"status": "passed", "row_count": 4, "problems": []}
    assert len(fake.requests()) == 6


def test_overloaded_is_retried_by_the_sdk_then_succeeds(pg_worker: Any, recorded: Any) -> None:
    fake = recorded(sc.overloaded_then_ok())
    run = wait_final(_trigger(), timeout=90)
    assert run.output["success"] is True, run.output
    assert _tool_results(fake)[:3] == [529, 529, 200]
    assert run.attempts == 1 if isinstance(run.attempts, int) else len(run.attempts) == 1


def test_a_rate_limit_holds_the_next_attempt_back_as_long_as_the_api_asked(
    pg_worker: Any, recorded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's retries are off here, so the 429 reaches the task: its catch_error starts
    the next attempt after the 4 s the API asked for, not the policy's 1-2 s."""
    monkeypatch.setenv("BUSTER_AGENT_SDK_MAX_RETRIES", "0")
    fake = recorded(sc.rate_limited_then_ok(retry_after_s=4))
    run = wait_final(_trigger(), timeout=90)
    assert run.output["success"] is True, run.output
    assert _tool_results(fake)[:2] == [429, 200]
    first, second = run.attempts[0], run.attempts[1]
    assert first.error["type"] == "ModelUnavailableError"
    assert (second.started_at - first.finished_at).total_seconds() >= 4


def test_unauthorized_fails_at_once_with_model_auth(pg_worker: Any, recorded: Any) -> None:
    fake = recorded(sc.unauthorized())
    run = wait_final(_trigger(), timeout=60)
    out = run.output
    assert out["success"] is False and out["error"]["code"] == "MODEL_AUTH"
    assert len(fake.requests()) == 1  # no retry of a 401
    assert run.metadata["phase"] == "failed"
    assert runs.retrieve(run.id).status == "COMPLETED"
