"""Bulk actions in the background (runtime/bulk_actions.py, ``runs.bulk.*``): worked through
by the timer loop two runs a tick here, on both tiers — each run acted on once even when a
page is done again after a crash, abortable, and refused without a filter."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from runtime import RunStatus, get_runtime, runs, tasks
from runtime import bulk_actions as ba
from runtime.durations import utcnow
from runtime.errors import InvalidTriggerOptionsError
from runtime.store import tables as t
from tests import tasks as _tasks  # noqa: F401 - registers the test tasks
from tests.helpers import wait_final


def _drain(action_id: str) -> ba.BulkAction:
    """Work pages, as timer ticks would, until the action is done."""
    for _ in range(20):
        ba.work(get_runtime().store, 2)
        action = runs.bulk.retrieve(action_id)
        if action.is_done:
            return action
    raise AssertionError(f"bulk action {action_id} not done after 20 pages")


def _replays_of(originals: list[str]) -> Counter[str]:
    made = runs.list(task="t-child", limit=100).data
    return Counter(r.replayed_from for r in made if r.replayed_from in originals)


def test_a_background_replay_replays_each_matching_run_once(env: Any, worker: Any):
    failed = [tasks.trigger("t-child", {"fail": True, "i": i}) for i in range(5)]
    assert {wait_final(h.id).status for h in failed} == {RunStatus.FAILED}
    ok = tasks.trigger("t-child", {"i": 9})
    assert wait_final(ok.id).status == RunStatus.COMPLETED
    action = runs.bulk.replay(task="t-child", status="FAILED", name="after the outage",
                              by="ops:test")
    assert (action.status, action.action, action.name, action.success) == (
        "PENDING", "replay", "after the outage", 0)
    assert action.id.startswith("bulk_") and "created_from" in action.filters  # last 7 days
    done = runs.bulk.poll(action.id, poll_interval=0.1, timeout=60)
    assert (done.status, done.success, done.failure) == ("COMPLETED", 5, 0)
    assert done.completed_at is not None
    ids = [h.id for h in failed]
    assert _replays_of(ids) == Counter({i: 1 for i in ids})  # each once, the completed none
    assert runs.bulk.list()[0].id == action.id


def test_a_page_done_again_after_a_crash_replays_nothing_twice(env: Any):
    failed = [tasks.trigger("t-not-deployed-yet", {"i": i}) for i in range(3)]
    for h in failed:
        runs.cancel(h.id)  # final, so there is something to replay
    store = get_runtime().store
    action = runs.bulk.replay(task="t-not-deployed-yet", status="CANCELED")
    assert ba.work(store, 2) == 2
    # the process died before it recorded the page: the action is as it was, its lease gone
    with store.engine.begin() as conn:
        conn.execute(update(t.bulk_actions).where(t.bulk_actions.c.id == action.id)
                     .values(cursor=None, success=0, lease_until=None))
    done = _drain(action.id)
    assert (done.status, done.success) == ("COMPLETED", 3)
    made = runs.list(task="t-not-deployed-yet", limit=100).data
    assert Counter(r.replayed_from for r in made if r.replayed_from) == Counter(
        {h.id: 1 for h in failed})


def test_a_background_cancel_by_ids_and_an_abort(env: Any):
    delayed = [tasks.trigger("t-echo", {"i": i}, delay="1h") for i in range(5)]
    ids = [h.id for h in delayed]
    store = get_runtime().store
    action = runs.bulk.cancel(ids + ["run_doesnotexist"])
    assert ba.work(store, 2) == 2
    assert runs.bulk.abort(action.id).status == "ABORTED"
    assert ba.work(store, 2) is None  # nothing more once aborted
    done = runs.bulk.retrieve(action.id)
    assert (done.status, done.success) == ("ABORTED", 2)
    statuses = [runs.retrieve(i).status for i in ids]
    assert statuses.count(RunStatus.CANCELED) == 2 and statuses.count(RunStatus.DELAYED) == 3
    # a second action finishes the job; the id no run has is a failure
    again = runs.bulk.cancel(ids + ["run_doesnotexist"])
    done = _drain(again.id)
    assert (done.status, done.success, done.failure) == ("COMPLETED", 3, 1)
    assert {runs.retrieve(i).status for i in ids} == {RunStatus.CANCELED}
    assert runs.bulk.abort(again.id).status == "COMPLETED"  # done: stays as it is


def test_bulk_actions_are_refused_without_a_filter_or_with_both(env: Any):
    with pytest.raises(InvalidTriggerOptionsError, match="needs a filter"):
        runs.bulk.cancel()
    with pytest.raises(InvalidTriggerOptionsError, match="not both"):
        runs.bulk.replay(["run_x"], status="FAILED")
    with pytest.raises(InvalidTriggerOptionsError, match="unknown status"):
        runs.bulk.cancel(status="STUCK")
    with pytest.raises(ba.BulkActionNotFoundError):
        runs.bulk.retrieve("bulk_nope")
    # a bound given is kept, not replaced by the default window
    since = utcnow() - timedelta(days=30)
    action = runs.bulk.cancel(task="t-echo", created_from=since)
    assert action.filters["created_from"] == since.isoformat()
    assert runs.bulk.list()[0].id == action.id


def test_bulk_actions_from_the_cli(pg_env: Any):
    import json

    delayed = [tasks.trigger("t-echo", {"i": i}, delay="1h", tags=["cli-bulk"])
               for i in range(3)]
    res = pg_env.cli("runs", "cancel", "--tag", "cli-bulk", "--background")
    assert res.returncode != 0 and "add --yes" in res.stderr
    res = pg_env.cli("runs", "cancel", "--tag", "cli-bulk", "--yes", "--background")
    assert res.returncode == 0, res.stderr
    started = json.loads(res.stdout)
    assert started["status"] == "PENDING" and f"bulk show {started['id']}" in res.stderr
    assert started["created_by"].startswith("cli:")
    done = _drain(started["id"])  # as the timer loops would
    assert (done.status, done.success) == ("COMPLETED", 3)
    res = pg_env.cli("bulk", "show", started["id"], "--wait", "--timeout", "10")
    assert res.returncode == 0 and json.loads(res.stdout)["success"] == 3, res.stderr
    assert {runs.retrieve(h.id).status for h in delayed} == {RunStatus.CANCELED}
    listed = [json.loads(x) for x in pg_env.cli("bulk", "list").stdout.splitlines()]
    assert [a["id"] for a in listed] == [started["id"]]
    res = pg_env.cli("bulk", "abort", "bulk_nope")
    assert res.returncode != 0 and "no bulk action with id 'bulk_nope'" in res.stderr


def test_retention_prunes_bulk_actions_done_long_ago_but_not_pending_ones(env: Any):
    from runtime.store.retention import prune_others

    store = get_runtime().store
    done = runs.bulk.cancel(["run_gone"])
    _drain(done.id)
    pending = runs.bulk.cancel(["run_gone_too"])
    now = utcnow()
    # finished just now: kept by a cutoff a day ago, pruned by one a day ahead
    assert prune_others(store, now - timedelta(days=1), now)["bulk_actions"] == 0
    assert prune_others(store, now + timedelta(days=1), now)["bulk_actions"] == 1
    assert [a.id for a in runs.bulk.list()] == [pending.id]
