"""Bulk cancel and replay (runtime/bulk.py): every run a filter matches, newest first, page by
page; on both tiers, and from the CLI against Postgres."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from runtime import RunStatus, bulk, runs, tasks
from runtime.errors import InvalidTriggerOptionsError, RunNotFoundError
from tests.helpers import wait_final


def _delayed(tag: str, n: int) -> list[str]:
    """``n`` runs of t-echo waiting an hour (DELAYED: cancelable, never started here)."""
    return [tasks.trigger("t-echo", {"i": i}, delay="1h", tags=[tag]).id for i in range(n)]


def test_bulk_cancel_and_replay_walk_every_match_page_by_page(
    env: Any, worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "_PAGE", 2)  # five runs span three pages
    tag, other = f"bulk:{uuid.uuid4().hex[:8]}", f"bulk:{uuid.uuid4().hex[:8]}"
    done = tasks.trigger("t-echo", {"i": "done"}, tags=[tag])
    assert wait_final(done.id).status == RunStatus.COMPLETED
    waiting = _delayed(tag, 5)
    untouched = _delayed(other, 2)

    counted = runs.bulk_cancel(tag=tag, dry_run=True)
    # the completed run has nothing to cancel; a dry run changes nothing
    assert (counted.count, counted.run_ids, counted.truncated) == (5, [], False)
    assert {runs.retrieve(r).status for r in waiting} == {RunStatus.DELAYED}

    first = runs.bulk_cancel(tag=tag, max_runs=2)
    assert (first.count, first.truncated, first.next) == (2, True, waiting[3])
    assert first.run_ids == waiting[:-3:-1]  # newest first
    rest = runs.bulk_cancel(tag=tag)
    assert (rest.count, rest.truncated, rest.next) == (3, False, None)
    assert rest.run_ids == waiting[2::-1]
    assert {runs.retrieve(r).status for r in waiting} == {RunStatus.CANCELED}
    assert {runs.retrieve(r).status for r in untouched} == {RunStatus.DELAYED}
    assert runs.bulk_cancel(tag=tag).count == 0
    assert runs.bulk_cancel(tag=tag, status="COMPLETED").count == 0  # final: nothing to do

    # Replay every run of the tag (no status filter): the five canceled and the completed
    # one, each once. The replays carry the tag too, but are newer than the walk.
    replayed = runs.bulk_replay(tag=tag)
    assert replayed.count == 6 and len(set(replayed.run_ids)) == 6
    originals = {runs.retrieve(r).replayed_from for r in replayed.run_ids}
    assert originals == {*waiting, done.id}
    finals = [wait_final(r) for r in replayed.run_ids]
    assert [r.status for r in finals] == [RunStatus.COMPLETED] * 6
    assert sorted(r.output["echo"]["i"] for r in finals if r.output["echo"]["i"] != "done") == [
        0, 1, 2, 3, 4]
    assert all(tag in r.tags for r in finals)
    assert runs.bulk_replay(tag=tag, status="CANCELED", dry_run=True).count == 5
    # `next` as `after` goes on below where a call stopped; the done run is oldest
    part = runs.bulk_replay(tag=tag, status="CANCELED", dry_run=True, max_runs=3)
    assert (part.count, part.truncated, part.next) == (3, True, waiting[2])
    assert runs.bulk_replay(tag=tag, dry_run=True, after=part.next).count == 3
    with pytest.raises(InvalidTriggerOptionsError, match="after must be a run id"):
        runs.bulk_replay(tag=tag, after="2026-01-01")

    # a run deleted between reading its page and replaying it is skipped, not an error
    real_replay = runs.replay

    def replay_or_gone(run_id: str, **kw: Any) -> Any:
        if run_id == waiting[0]:
            raise RunNotFoundError(f"no run with id {run_id!r}")
        return real_replay(run_id, **kw)

    monkeypatch.setattr(runs, "replay", replay_or_gone)
    skipped = runs.bulk_replay(tag=tag, status="CANCELED", max_runs=5)
    assert skipped.count == 4 and len(skipped.run_ids) == 4
    runs.bulk_cancel(tag=tag)
    runs.bulk_cancel(tag=other)
    with pytest.raises(InvalidTriggerOptionsError, match="unknown status"):
        runs.bulk_cancel(status="STUCK")
    with pytest.raises(InvalidTriggerOptionsError, match="max_runs"):
        runs.bulk_replay(tag=tag, max_runs=0)
    with pytest.raises(InvalidTriggerOptionsError, match="unknown bulk action"):
        bulk.apply(None, "delete", {})  # type: ignore[arg-type]


def test_cli_counts_first_and_acts_with_yes(pg_env: Any) -> None:
    tag = f"bulk:{uuid.uuid4().hex[:8]}"
    waiting = _delayed(tag, 3)
    res = pg_env.cli("runs", "cancel", "--tag", tag, "--status", "DELAYED")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["count"] == 3
    assert "3 runs match; add --yes to cancel them" in res.stderr
    assert {runs.retrieve(r).status for r in waiting} == {RunStatus.DELAYED}

    res = pg_env.cli("runs", "cancel", "--tag", tag, "--yes", "--max-runs", "2")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert (out["count"], out["truncated"], out["dry_run"]) == (2, True, False)
    assert [runs.retrieve(r).status for r in waiting] == [
        RunStatus.DELAYED, RunStatus.CANCELED, RunStatus.CANCELED]

    # replayed one call at a time, each going on below the last: each run once
    res = pg_env.cli("runs", "replay", "--tag", tag, "--status", "CANCELED", "--yes",
                     "--max-runs", "1")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert (out["count"], out["next"]) == (1, waiting[2])
    assert f"add --after {waiting[2]} to go on" in res.stderr
    res = pg_env.cli("runs", "replay", "--tag", tag, "--status", "CANCELED", "--yes",
                     "--after", out["next"])
    assert res.returncode == 0, res.stderr
    new = out["run_ids"] + json.loads(res.stdout)["run_ids"]
    assert len(new) == 2
    assert {runs.retrieve(r).replayed_from for r in new} == set(waiting[1:])

    res = pg_env.cli("runs", "cancel")  # neither a run id nor a filter: refused
    assert res.returncode != 0 and "needs a run id, or filters" in res.stderr
    runs.bulk_cancel(tag=tag)


def test_bulk_actions_on_runs_named_by_id(env: Any, worker: Any) -> None:
    tag = f"bulk:{uuid.uuid4().hex[:8]}"
    waiting = _delayed(tag, 3)
    done = tasks.trigger("t-echo", {"i": "done"}, tags=[tag])
    assert wait_final(done.id).status == RunStatus.COMPLETED
    missing = "run_" + "0" * 26

    # each id once, in the order given; a final run has nothing to cancel
    counted = runs.bulk_cancel([waiting[0], waiting[0], done.id, missing], dry_run=True)
    assert (counted.count, counted.run_ids, counted.not_found) == (1, [], [missing])
    canceled = runs.bulk_cancel([waiting[1], done.id, missing, waiting[0]])
    assert (canceled.count, canceled.run_ids, canceled.not_found) == (
        2, [waiting[1], waiting[0]], [missing])
    assert runs.retrieve(waiting[2]).status == RunStatus.DELAYED

    replayed = runs.bulk_replay([waiting[1], done.id, waiting[1]])
    assert replayed.count == 2 and replayed.not_found == []
    assert [runs.retrieve(r).replayed_from for r in replayed.run_ids] == [waiting[1], done.id]

    with pytest.raises(InvalidTriggerOptionsError, match="not both"):
        runs.bulk_cancel([waiting[2]], tag=tag)
    with pytest.raises(InvalidTriggerOptionsError, match="at most max_runs"):
        runs.bulk_cancel(waiting, max_runs=2)
    with pytest.raises(InvalidTriggerOptionsError, match="a list of run ids"):
        runs.bulk_cancel(waiting[2])  # type: ignore[arg-type]
    assert runs.retrieve(waiting[2]).status == RunStatus.DELAYED
    runs.bulk_cancel(tag=tag)
