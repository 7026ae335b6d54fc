"""What a run webhook posts (runtime/run_webhooks.py), without a network."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from runtime.run_webhooks import RunWebhook, render

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _run(**over: Any) -> dict[str, Any]:
    return {"id": "run_x", "task_identifier": "load-<orders>", "status": "FAILED",
            "attempt_count": 3, "tags": ["org:1"], "created_at": NOW, "started_at": NOW,
            "finished_at": NOW, "execution_ms": 1500, "replayed_from": None,
            "parent_id": None, "root_id": None, "batch_id": None, "schedule_id": None,
            "idempotency_key_user": "k1",
            "error": {"type": "ValueError", "message": "<!here> & the rest", "stack": "…"},
            **over}


def test_slack_text_escapes_what_slack_would_read_as_markup() -> None:
    hook = RunWebhook(url="https://hooks.slack.com/services/T/B/x", format="slack")
    text = json.loads(render(hook, "oncall", _run(), "https://jobs.example.com/"))["text"]
    assert text == (":red_circle: Run `run_x` of task `load-&lt;orders&gt;` ended *FAILED* "
                    "after 3 attempts: ValueError: &lt;!here&gt; &amp; the rest "
                    "<https://jobs.example.com/runs/run_x|open>")


def test_the_standard_body_carries_the_run_but_no_stack_payload_or_output() -> None:
    hook = RunWebhook(url="https://example.com/hook")
    doc = json.loads(render(hook, "ops", _run(error="plain text"), ""))
    run = doc["data"]["run"]
    assert (doc["type"], doc["endpoint"]) == ("run.finished", "ops")
    assert run["error"] == {"type": None, "message": "plain text"}
    assert (run["durationMs"], run["idempotencyKey"], run["isSuccess"]) == (1500, "k1", False)
    assert "url" not in run and not {"payload", "output", "metadata"} & set(run)
    full = json.loads(render(hook, "ops", _run(), ""))["data"]["run"]
    assert full["error"] == {"type": "ValueError", "message": "<!here> & the rest"}  # no stack
