"""The run page's sentence on what an unfinished run waits for (pure function, no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dashboard.pages.why import run_state_note
from runtime.statuses import FINAL_STATUSES, RunStatus

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


def _run(status: RunStatus, **fields: Any) -> dict[str, Any]:
    return {"status": status.value, "task_identifier": "report", "queue": "default",
            "attempt_count": 0, **fields}


def test_pending_version_names_the_task_and_where_workers_find_it():
    note = run_state_note(_run(RunStatus.PENDING_VERSION), [], NOW)
    assert note is not None
    assert "“report”" in note and "BUSTER_TASK_MODULES" in note


def test_pending_version_on_an_undeclared_queue_names_the_queue_and_what_declares_one():
    note = run_state_note(_run(RunStatus.PENDING_VERSION, pending_queue="reprots"), [], NOW)
    assert note is not None
    assert "queue “reprots”" in note and "--queues reprots" in note
    assert 'queue("reprots")' in note and "BUSTER_TASK_MODULES" not in note


def test_queued_run_past_due_points_at_the_queue_and_its_worker():
    note = run_state_note(
        _run(RunStatus.QUEUED, queue="large", available_at=NOW - timedelta(minutes=5)), [], NOW
    )
    assert note is not None
    assert "since 2026-11-27 11:55:00 UTC" in note
    assert "buster-jobs worker --queues large" in note
    assert "expires" not in note


def test_queued_retry_says_which_attempt_is_due_and_when():
    # SQLite hands back naive datetimes (UTC): they compare and print the same
    run = _run(RunStatus.QUEUED, attempt_count=2, available_at=datetime(2026, 11, 27, 12, 0, 30),
               expires_at=NOW + timedelta(hours=1))
    note = run_state_note(run, [], NOW)
    assert note is not None
    assert note.startswith("Attempt 3 is due at 2026-11-27 12:00:30 UTC (retry backoff)")
    assert "expires at 2026-11-27 13:00:00 UTC" in note


def test_delayed_run_gives_its_delay():
    run = _run(RunStatus.DELAYED, delay_until=NOW + timedelta(minutes=30))
    assert run_state_note(run, [], NOW) == (
        "Delayed until 2026-11-27 12:30:00 UTC by its trigger; then it queues on “default”."
    )


def test_debounced_run_says_triggers_push_it():
    run = _run(RunStatus.DELAYED, delay_until=NOW + timedelta(seconds=5),
               debounce_key="doc-7", debounce_until=NOW + timedelta(minutes=1))
    assert run_state_note(run, [], NOW) == (
        "Debounced until 2026-11-27 12:00:05 UTC: each trigger of “report” with key “doc-7” "
        "pushes the start later, but not past 2026-11-27 12:01:00 UTC; then it queues on "
        "“default”."
    )


def test_waiting_run_names_its_pending_waitpoint():
    done = {"id": "wp_old", "kind": "DATETIME", "status": "COMPLETED", "due_at": NOW}
    batch = {"id": "wp_batch", "kind": "BATCH", "status": "PENDING", "total": 5, "done": 2,
             "due_at": None}
    note = run_state_note(_run(RunStatus.WAITING, waiting_on="wp_batch"), [done, batch], NOW)
    assert note is not None
    assert "batch of child runs" in note and "wp_batch" in note and "2 of 5" in note
    token = {"id": "wp_tok", "kind": "MANUAL", "status": "PENDING",
             "due_at": NOW + timedelta(hours=1)}
    note = run_state_note(_run(RunStatus.WAITING, waiting_on="wp_tok"), [token], NOW)
    assert note is not None and "wait token" in note
    assert "times out at 2026-11-27 13:00:00 UTC" in note


def test_executing_run_with_a_lapsed_lease_says_the_worker_stopped():
    run = _run(RunStatus.EXECUTING, attempt_count=1, lease_owner="host-1:42",
               lease_expires_at=NOW - timedelta(seconds=40))
    note = run_state_note(run, [], NOW)
    assert note is not None and "lease of host-1:42 lapsed" in note
    run["lease_expires_at"] = NOW + timedelta(seconds=20)
    note = run_state_note(run, [], NOW)
    assert note is not None and note.startswith("Attempt 1 running on host-1:42")


@pytest.mark.parametrize("status", sorted(FINAL_STATUSES, key=lambda s: s.value))
def test_final_runs_get_no_note(status: RunStatus):
    assert run_state_note(_run(status), [], NOW) is None


def test_run_waiting_for_a_concurrency_slot_says_so():
    run = _run(RunStatus.QUEUED, waiting_for_slot=True, concurrency_limit=2,
               concurrency_key="org-7", available_at=NOW - timedelta(seconds=3))
    note = run_state_note(run, [], NOW)
    assert note is not None
    assert note.startswith("Waiting for one of the 2 concurrency slot(s) of task “report” "
                           "with key “org-7”")


def test_a_run_of_a_paused_queue_says_who_paused_it_and_how_to_resume():
    hold = {"paused": True, "paused_by": "cli:ops", "paused_at": NOW - timedelta(minutes=3),
            "concurrency_limit": None}
    for run in (_run(RunStatus.QUEUED, waiting_for_slot=True, concurrency_key=""),
                _run(RunStatus.QUEUED, available_at=NOW)):  # not yet delivered: same answer
        note = run_state_note(run, [], NOW, hold)
        assert note is not None
        assert "paused by cli:ops since 2026-11-27 11:57:00 UTC" in note
        assert "buster-jobs queues resume report" in note


def test_a_run_in_a_shared_queue_names_the_queue_not_its_task():
    run = _run(RunStatus.QUEUED, waiting_for_slot=True, concurrency_limit=5,
               concurrency_key="", concurrency_queue="openai")
    note = run_state_note(run, [], NOW) or ""
    assert note.startswith("Waiting for one of the 5 concurrency slot(s) of shared queue "
                           "“openai”:"), note
    hold = {"paused": True, "paused_by": "cli:ops", "paused_at": NOW}
    note = run_state_note(run, [], NOW, hold) or ""
    assert note.startswith("The shared queue “openai” is paused by cli:ops"), note
    assert "buster-jobs queues resume openai" in note, note


def test_a_run_waiting_under_an_override_counts_the_overridden_slots():
    hold = {"paused": False, "concurrency_limit": 3, "overridden_by": "api:ops"}
    run = _run(RunStatus.QUEUED, waiting_for_slot=True, concurrency_key="",
               concurrency_limit=1)
    note = run_state_note(run, [], NOW, hold)
    assert note is not None
    assert "one of the 3 concurrency slot(s)" in note and "overridden by api:ops" in note
    # without a hold: the run's own limit
    assert "one of the 1 concurrency slot(s)" in (run_state_note(run, [], NOW) or "")


def test_a_run_of_a_task_with_a_total_names_both_limits():
    run = _run(RunStatus.QUEUED, waiting_for_slot=True, concurrency_key="org-7",
               concurrency_limit=1)
    note = run_state_note(run, [], NOW, None, total=10)
    assert note is not None
    assert "at most 1 run(s) per key and 10 over all its keys" in note and "“org-7”" in note
