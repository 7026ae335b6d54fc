"""The task runtime end to end on both tiers: SQLite + in-process broker, and real
Postgres + RabbitMQ (the ``env`` fixture runs every test on each)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from runtime import RunStatus, runs, tasks
from runtime.errors import InvalidTriggerOptionsError, PayloadValidationError
from tests import tasks as t
from tests.helpers import wait_final, wait_for


def test_run_goes_queued_executing_completed_with_output_logs_metadata(env: Any, worker: Any):
    handle = tasks.trigger("t-logs", {"x": 1}, tags=["org:1", "user:2"])
    run = wait_final(handle.id)
    assert run.status == RunStatus.COMPLETED
    assert run.output["ok"] is True and run.output["progress"] == 0.5
    assert run.output["current"] == {"progress": 0.5, "n": 1, "items": ["a", "b"], "gone": []}
    assert run.attempt_count == 1 and len(run.attempts) == 1
    assert run.attempts[0].status == "COMPLETED"
    assert run.started_at is not None and run.finished_at >= run.started_at
    assert run.metadata == {"progress": 0.5, "n": 1, "items": ["a", "b"], "gone": []}
    assert run.tags == ["org:1", "user:2"]
    lines = runs.logs(run.id)
    messages = [(r["level"], r["message"]) for r in lines]
    assert ("info", "hello from the task") in messages
    assert ("warn", "careful") in messages
    assert ("warn", "python logging is captured too") in messages
    assert next(r for r in lines if r["message"] == "hello from the task")["attributes"] == {
        "answer": 42
    }


def test_retries_follow_backoff_then_complete_and_hooks_fire(env: Any, worker: Any, tmp_path: Path):
    trace = tmp_path / "trace"
    run = wait_final(t.flaky.trigger({"fail_times": 2, "trace": str(trace)}).id)
    assert run.status == RunStatus.COMPLETED and run.output == {"attempt": 3}
    lines = t.read_trace(trace)
    times = [float(x.split(":")[2]) for x in lines if x.startswith("attempt:")]
    assert len(times) == 3
    # min 200 ms × 2^(n-1), no jitter: ≥ 200 ms then ≥ 400 ms between attempts
    assert times[1] - times[0] >= 0.2 and times[2] - times[1] >= 0.4
    assert [a.status for a in run.attempts] == ["FAILED", "FAILED", "COMPLETED"]
    assert [a.number for a in run.attempts] == [1, 2, 3]
    for before, after in zip(run.attempts, run.attempts[1:], strict=False):
        assert before.finished_at is not None and before.finished_at <= after.started_at
    last = run.attempts[-1]
    assert last.worker and last.error is None and last.finished_at == run.finished_at
    assert run.attempts[0].error["message"] and last.execution_ms is not None
    assert lines.count("on_start:1") == 1 and not any(x.startswith("on_start:2") for x in lines)
    assert [x for x in lines if x.startswith("cleanup")] == ["cleanup:1", "cleanup:2", "cleanup:3"]
    assert "on_success:3" in lines and not any(x.startswith("on_failure") for x in lines)
    assert [x for x in lines if x.startswith("on_complete")] == ["on_complete:3"]


def test_retries_exhausted_fail_once_with_on_failure_after_last_attempt(
    env: Any, worker: Any, tmp_path: Path
):
    trace = tmp_path / "trace"
    run = wait_final(t.flaky.trigger({"fail_times": 9, "trace": str(trace)}).id)
    assert run.status == RunStatus.FAILED and run.attempt_count == 3
    assert "boom on attempt 3" in run.error["message"]
    lines = t.read_trace(trace)
    assert [x for x in lines if x.startswith("on_failure")] == ["on_failure:3"]
    assert [x for x in lines if x.startswith("on_complete")] == ["on_complete:3"]


def test_abort_stops_at_attempt_one(env: Any, worker: Any, tmp_path: Path):
    trace = tmp_path / "trace"
    run = wait_final(tasks.trigger("t-abort", {"trace": str(trace)}).id)
    assert run.status == RunStatus.FAILED and run.attempt_count == 1
    assert run.error["type"] == "AbortTaskRunError"
    assert t.read_trace(trace) == ["attempt:1", "on_failure:1", "on_complete:1"]


def test_schema_task_validates_at_trigger_and_before_the_run(env: Any, worker: Any):
    with pytest.raises(PayloadValidationError) as info:
        t.schema.trigger({"name": "x", "count": -1})
    assert "count" in str(info.value)
    # by id there is no trigger-time validation: the run fails with the field error, no retry
    run = wait_final(tasks.trigger("t-schema", {"name": "x", "count": "many"}).id)
    assert run.status == RunStatus.FAILED and run.attempt_count == 1
    assert run.error["code"] == "TASK_PAYLOAD_PARSED_ERROR"
    assert run.error["errors"][0]["loc"] == ["count"]
    ok = wait_final(t.schema.trigger({"name": "ada", "count": 2}).id)
    assert ok.output == {"greeting": "hello ada", "count": 2}


def test_secret_payload_field_never_stored_or_logged_in_plain_text(env: Any, worker: Any):
    from runtime import get_runtime

    payload = t.SchemaPayload(
        name="n",
        count=1,
        credentials=t.Credentials(user="bob", password=SecretStr("hunter2-very-secret")),
    )
    run = wait_final(t.schema.trigger(payload).id)
    assert run.status == RunStatus.COMPLETED
    assert run.payload["credentials"]["password"] == "**********"
    # by id, as plain JSON: the task's synced payload schema marks the field as a secret
    by_id = wait_final(
        tasks.trigger(
            "t-schema",
            {"name": "n", "count": 1, "credentials": {"user": "bob", "password": "hunter2-by-id"}},
        ).id
    )
    assert by_id.status == RunStatus.COMPLETED
    assert by_id.payload["credentials"]["password"] == "**********"
    logs = runs.logs(run.id)
    got = next(r for r in logs if r["message"] == "got credentials")["attributes"]
    assert got["password_length"] == len("hunter2-very-secret")  # the worker saw the secret
    engine = get_runtime().store.engine
    from sqlalchemy import text

    with engine.connect() as conn:
        for table in ("runs", "run_logs", "run_attempts"):
            dump = json.dumps(
                [list(r) for r in conn.execute(text(f"SELECT * FROM {table}"))], default=str
            )
            assert "hunter2" not in dump, table


def test_max_duration_times_out_without_retry(env: Any, worker: Any, tmp_path: Path):
    trace = tmp_path / "trace"
    run = wait_final(tasks.trigger("t-timeout", {"trace": str(trace)}).id)
    assert run.status == RunStatus.TIMED_OUT and run.attempt_count == 1
    assert run.error["code"] == "MAX_DURATION_EXCEEDED"
    assert t.read_trace(trace) == ["attempt:1", "on_complete:1"]


def test_unknown_task_waits_in_pending_version_until_a_worker_has_it(env: Any, worker: Any):
    from runtime.task import get_task, register

    handle = tasks.trigger("t-late", {"v": 1})
    time.sleep(0.3)
    assert runs.retrieve(handle.id).status == RunStatus.PENDING_VERSION
    register(type(get_task("t-echo"))(id="t-late", fn=lambda p: {"late": p["v"]}))
    try:
        from runtime import get_runtime
        from runtime.worker import sync_task_definitions

        sync_task_definitions(get_runtime())  # what a worker with the task does at boot
        run = wait_final(handle.id)
        assert run.status == RunStatus.COMPLETED and run.output == {"late": 1}
        # the released run took the task's queue and retry policy from its definition
        row = get_runtime().store.get_run(handle.id)
        assert row["queue"] == env.queue and row["max_attempts"] == 3
        assert row["retry"]["factor"] == 2.0
    finally:
        from runtime.task import unregister

        unregister("t-late")


def test_cancel_queued_run_never_starts(env: Any, tmp_path: Path):
    trace = tmp_path / "trace"
    handle = tasks.trigger("t-slow", {"seconds": 0.1, "trace": str(trace)}, delay="30s")
    assert runs.retrieve(handle.id).status == RunStatus.DELAYED
    assert runs.cancel(handle.id) == [handle.id]
    assert runs.retrieve(handle.id).status == RunStatus.CANCELED
    assert runs.cancel(handle.id) == []  # already final: nothing changes
    assert not trace.exists()


def test_cancel_executing_run_stops_it(env: Any, worker: Any, tmp_path: Path):
    trace = tmp_path / "trace"
    handle = tasks.trigger("t-slow", {"seconds": 30, "trace": str(trace)})
    wait_for(lambda: runs.retrieve(handle.id).status == RunStatus.EXECUTING)
    runs.cancel(handle.id)
    run = wait_for(lambda: (r := runs.retrieve(handle.id)).attempts and r, timeout=10)
    assert run.status == RunStatus.CANCELED
    assert run.attempts[0].status == "CANCELED"
    assert "done:1" not in t.read_trace(trace)
    assert "on_complete:1" in t.read_trace(trace)


def test_delay_starts_no_sooner_than_asked(env: Any, worker: Any):
    handle = tasks.trigger("t-echo", {"a": 1}, delay="2s")
    created = runs.retrieve(handle.id)
    assert created.status == RunStatus.DELAYED
    run = wait_final(handle.id)
    assert (run.started_at - created.created_at).total_seconds() >= 2.0


def test_ttl_expires_when_no_worker_runs(env: Any):
    from runtime import get_runtime
    from runtime.timer import TimerLoop

    handle = tasks.trigger("t-echo", {"a": 1}, ttl="1s")
    timer = TimerLoop(get_runtime())
    timer.start()
    try:
        run = wait_final(handle.id, timeout=10)
    finally:
        timer.stop()
    assert run.status == RunStatus.EXPIRED and run.started_at is None


def test_idempotency_key_returns_existing_run_and_is_released_on_failure(env: Any, worker: Any):
    a = tasks.trigger("t-echo", {"n": 1}, idempotency_key="k1")
    b = tasks.trigger("t-echo", {"n": 2}, idempotency_key="k1")
    assert b.id == a.id and b.is_cached
    wait_final(a.id)
    assert tasks.trigger("t-echo", {}, idempotency_key="k1").id == a.id  # COMPLETED keeps it
    f1 = tasks.trigger("t-abort", {}, idempotency_key="k2")
    assert wait_final(f1.id).status == RunStatus.FAILED
    f2 = tasks.trigger("t-abort", {}, idempotency_key="k2")
    assert f2.id != f1.id and not f2.is_cached
    # a key past its TTL makes a new run
    c1 = tasks.trigger("t-echo", {}, idempotency_key="k3", idempotency_key_ttl="1s")
    time.sleep(1.1)
    c2 = tasks.trigger("t-echo", {}, idempotency_key="k3", idempotency_key_ttl="1s")
    assert c2.id != c1.id


def test_batch_trigger_makes_runs_in_one_batch(env: Any, worker: Any):
    batch = tasks.batch_trigger("t-echo", [{"payload": {"i": i}} for i in range(50)])
    assert len(batch.runs) == 50
    done = [wait_final(h.id) for h in batch.runs]
    assert [r.output["echo"]["i"] for r in done] == list(range(50))
    assert {r.batch_id for r in done} == {batch.batch_id}
    page = runs.list(batch=batch.batch_id, limit=20)
    assert len(page) == 20 and page.next_cursor
    rest = runs.list(batch=batch.batch_id, limit=100, cursor=page.next_cursor)
    assert len(rest) == 30 and {r.id for r in page} | {r.id for r in rest} == {
        h.id for h in batch.runs
    }


def test_runs_list_filters(env: Any, worker: Any):
    a = tasks.trigger("t-echo", {}, tags=["team:a"])
    b = tasks.trigger("t-abort", {}, tags=["team:b"])
    wait_final(a.id), wait_final(b.id)
    assert [r.id for r in runs.list(tag="team:a")] == [a.id]
    assert [r.id for r in runs.list(status="FAILED", task="t-abort")] == [b.id]
    assert {r.id for r in runs.list(period="1h")} >= {a.id, b.id}


def test_trigger_options_are_validated(env: Any):
    with pytest.raises(InvalidTriggerOptionsError, match="at most 10 tags"):
        tasks.trigger("t-echo", {}, tags=[f"t{i}" for i in range(11)])
    with pytest.raises(InvalidTriggerOptionsError, match="invalid duration"):
        tasks.trigger("t-echo", {}, delay="soon")
    with pytest.raises(InvalidTriggerOptionsError, match="unknown trigger option"):
        tasks.trigger("t-echo", {}, retries=3)
    with pytest.raises(InvalidTriggerOptionsError, match="at most"):
        tasks.batch_trigger("t-echo", [{}] * 1001)


def test_trigger_options_not_enforced_are_said_once(
    env: Any, worker: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    # Trigger.dev code passes these; the run goes through, and the log says they do nothing.
    from runtime import trigger

    monkeypatch.setattr(trigger, "_warned_options", set())
    caplog.set_level("WARNING", logger="buster.trigger")
    handles = [tasks.trigger("t-echo", {"i": i}, concurrency_key="org-1", priority=10)
               for i in range(2)]
    tasks.batch_trigger("t-echo", [{"payload": {}, "options": {"priority": 5}}])
    assert all(wait_final(h.id).status == RunStatus.COMPLETED for h in handles)
    said = [r.getMessage() for r in caplog.records if r.name == "buster.trigger"]
    assert len(said) == 2, said
    assert any("'concurrency_key' is accepted but not enforced" in m for m in said)
    assert any("'priority' is accepted but not enforced" in m for m in said)
    tasks.trigger("t-echo", {}, version="20260101.1")
    said = [r.getMessage() for r in caplog.records if r.name == "buster.trigger"]
    assert len(said) == 3 and "'version'" in said[-1], said


def test_metadata_limit_gives_clear_error(env: Any, worker: Any):
    run = wait_final(tasks.trigger("t-big-metadata", {}).id)
    assert run.output["error"] == "MetadataTooLargeError"
    assert "262144" in run.output["message"]


def test_nul_characters_are_refused_where_made_or_escaped_and_never_strand_a_run(
    env: Any, worker: Any
):
    """Postgres holds no NUL in jsonb or text. Refused at the trigger and at the metadata
    call, failing the attempt when in the output, escaped in logs and error messages — and
    the run ends at once instead of executing until its lease lapses."""
    from runtime.errors import UnstorableValueError

    before = len(runs.list(limit=100).data)
    with pytest.raises(UnstorableValueError, match=r"payload\.a\[1\] contains a NUL"):
        tasks.trigger("t-echo", {"a": ["ok", "x\x00"]})
    with pytest.raises(UnstorableValueError, match=r"metadata\.m contains a NUL"):
        tasks.trigger("t-echo", {}, metadata={"m": "\x00"})
    with pytest.raises(InvalidTriggerOptionsError, match="NUL"):
        tasks.trigger("t-echo", {}, tags=["a\x00b"])
    assert len(runs.list(limit=100).data) == before  # nothing created

    out = wait_final(tasks.trigger("t-nul", {"mode": "output"}).id, timeout=20)
    assert out.status == RunStatus.FAILED and out.attempt_count == 1
    assert out.error["code"] == "UNSTORABLE_VALUE"
    assert "output.rows[1] contains a NUL" in out.error["message"]

    raised = wait_final(tasks.trigger("t-nul", {"mode": "raise"}).id, timeout=20)
    assert raised.status == RunStatus.FAILED
    assert raised.error["message"] == "bad\\u0000value"  # the text \u0000, not a NUL

    logged = wait_final(tasks.trigger("t-nul", {"mode": "log"}).id, timeout=20)
    assert logged.status == RunStatus.COMPLETED
    assert logged.output["error"] == "UnstorableValueError"
    assert "metadata.k.deep[0] contains a NUL" in logged.output["message"]
    assert logged.output["meta"] == {"ok": 1}  # the refused change is undone, whole
    assert logged.metadata == {"ok": 1}
    lines = {r["message"]: r["attributes"] for r in runs.logs(logged.id)}
    assert lines["line with a \\u0000 in it"] == {"note": "attr\\u0000value"}
    assert "python \\u0000 record" in lines


def test_an_output_over_the_limit_fails_the_run_at_once_before_on_success(
    env: Any, worker: Any, tmp_path: Path
):
    """10 MB, Trigger.dev's output limit: one byte over fails the run without a retry (the
    next attempt would make the same output) and without on_success; at the limit it is
    stored whole. A step's result over it is refused at the call, by name."""
    from runtime import get_runtime

    limit = get_runtime().settings.max_output_bytes
    assert limit == 10 * 1024 * 1024
    over_trace = tmp_path / "over"
    over = wait_final(t.big_output.trigger({"mode": "over", "trace": str(over_trace)}).id)
    assert over.status == RunStatus.FAILED and over.attempt_count == 1
    assert over.error["code"] == "OUTPUT_TOO_LARGE" and over.output is None
    assert over.error["message"] == (
        f"output is {limit + 1} bytes, larger than the {limit} byte limit"
    )
    assert t.read_trace(over_trace) == ["attempt", "on_failure:1"]

    at_trace = tmp_path / "at"
    at = wait_final(t.big_output.trigger({"mode": "at", "trace": str(at_trace)}).id)
    assert at.status == RunStatus.COMPLETED and len(at.output["blob"]) == limit - 11
    assert t.read_trace(at_trace) == ["attempt", "on_success:1"]

    step = wait_final(t.big_output.trigger({"mode": "step"}).id)
    assert step.status == RunStatus.COMPLETED
    assert step.output["error"] == "OutputTooLargeError"
    assert step.output["message"] == (
        f"step 'big' result is {limit + 2} bytes, larger than the {limit} byte limit"
    )


def test_long_log_lines_and_error_messages_are_cut_saying_how_much(env: Any, worker: Any):
    """Diagnostic text is cut at 131,072 characters (Trigger.dev's attribute value limit),
    with the number of characters left out; short values are untouched."""
    from runtime.engine_json import MAX_DIAGNOSTIC_CHARS as cap

    n = 200_000
    run = wait_final(tasks.trigger("t-long-text", {"n": n}).id)
    assert run.status == RunStatus.FAILED
    note = f"… [{n - cap:,} more characters]"
    assert note == "… [68,928 more characters]"
    assert run.error["message"] == "e" * cap + note
    assert len(run.error["stack"]) <= 8000
    lines = {r["message"][:3]: r for r in runs.logs(run.id)}
    assert lines["mmm"]["message"] == "m" * cap + note
    assert lines["mmm"]["attributes"] == {"blob": "a" * cap + note, "short": "kept"}
    assert lines["ppp"]["message"] == "p" * cap + note


def test_a_lone_surrogate_in_the_output_fails_the_attempt_by_name(env: Any, worker: Any):
    """A lone surrogate (a Python string can hold one; Postgres's jsonb refuses it) is
    caught with the NULs, before the hooks, on both backends."""
    run = wait_final(tasks.trigger("t-nul", {"mode": "surrogate"}).id, timeout=20)
    assert run.status == RunStatus.FAILED and run.attempt_count == 1
    assert run.error["code"] == "UNSTORABLE_VALUE"
    assert "output.s contains a lone surrogate" in run.error["message"]


def test_a_lone_surrogate_in_logs_and_error_messages_is_escaped(env: Any, worker: Any):
    """Like a NUL: diagnostic text keeps it as the text ``\\ud800``, and the run ends."""
    run = wait_final(tasks.trigger("t-nul", {"mode": "surrogate-text"}).id, timeout=20)
    assert run.status == RunStatus.FAILED and run.attempt_count == 1
    assert run.error["message"] == "bad \\ud800 value"
    lines = {r["message"]: r["attributes"] for r in runs.logs(run.id)}
    assert lines["a \\ud800 line"] == {"note": "\\udc00"}


def test_a_result_the_database_refuses_fails_the_run_at_once(pg_env: Any):
    """Whatever still gets past those checks to be refused by Postgres (here: an outcome
    handed to the middleware unchecked) fails the run at once with the database's one-line
    reason — not left executing until its lease lapses, then retried into the same
    refusal."""
    from types import SimpleNamespace

    from runtime.bootstrap import get_runtime
    from runtime.durations import utcnow
    from runtime.executor import Outcome
    from runtime.middleware import RunLifecycle

    rt = get_runtime()
    rid = tasks.trigger("t-echo", {"a": 1}).id
    (run,) = rt.store._claim_batch([(rid, "w:1", 30.0)])
    lifecycle = RunLifecycle(rt, SimpleNamespace(owner="w:1"))  # type: ignore[arg-type]
    lifecycle.finish(run, Outcome(RunStatus.COMPLETED, output={"s": "\ud800"}))
    done = runs.retrieve(rid)
    assert done.status == RunStatus.FAILED and done.output is None
    assert done.error["code"] == "UNSTORABLE_VALUE"
    assert done.error["message"].startswith("the attempt's result could not be stored: ")
    assert "ud800" not in done.error["message"]  # the reason, never the data

    # Text the driver cannot even encode (an unescaped lone surrogate in a log line).
    rid = tasks.trigger("t-echo", {"a": 1}).id
    (run,) = rt.store._claim_batch([(rid, "w:1", 30.0)])
    line = {"run_id": rid, "attempt": 1, "ts": utcnow(), "level": "INFO",
            "message": "a \udc00 line", "attributes": None}
    lifecycle.finish(run, Outcome(RunStatus.COMPLETED, output={"a": 1}, logs=[line]))
    done = runs.retrieve(rid)
    assert done.status == RunStatus.FAILED and done.output is None
    assert done.error["message"] == (
        "the attempt's result could not be stored: text the database cannot take "
        "(surrogates not allowed)")


def test_replay_makes_a_new_run_with_same_payload(env: Any, worker: Any):
    first = wait_final(tasks.trigger("t-abort", {"x": 1}).id)
    again = runs.replay(first.id)
    run = wait_final(again.id)
    assert run.id != first.id and run.payload == {"x": 1}
    assert runs.retrieve(run.id).replayed_from == first.id


def test_on_complete_runs_for_runs_that_end_outside_a_worker(env: Any, worker: Any, tmp_path: Path):
    trace = tmp_path / "trace"
    delayed = tasks.trigger("t-slow", {"seconds": 0.1, "trace": str(trace)}, delay="1h")
    runs.cancel(delayed.id)
    wait_for(lambda: "on_complete:0" in t.read_trace(trace), timeout=15)
    assert runs.retrieve(delayed.id).status == RunStatus.CANCELED
    time.sleep(0.5)  # sent once, not again
    assert t.read_trace(trace) == ["on_complete:0"]


def test_trigger_inside_a_task_makes_child_runs(env: Any, worker: Any):
    parent = runs.poll(tasks.trigger("t-fanout", {"n": 3}).id, poll_interval=0.05, timeout=30)
    assert parent.status == RunStatus.COMPLETED
    children = [wait_final(i) for i in parent.output["children"]]
    assert all(
        c.parent_id == parent.id and c.root_id == parent.id and c.depth == 1 for c in children
    )
    batch = runs.list(batch=parent.output["batch"]).data
    assert len(batch) == 2 and all(r.parent_id == parent.id for r in batch)


def test_a_worker_without_the_task_parks_the_run_uncharged(env: Any, worker: Any):
    from runtime import get_runtime
    from runtime.durations import utcnow

    # a definition synced by some other worker (its code is not in this process)
    definition = {
        **t.echo.definition(get_runtime().settings),
        "id": "t-elsewhere",
        "updated_at": utcnow(),
    }
    get_runtime().store.upsert_task_definitions([definition])
    handle = tasks.trigger("t-elsewhere", {"x": 1})
    run = wait_for(
        lambda: (r := runs.retrieve(handle.id)).status == RunStatus.PENDING_VERSION and r
    )
    assert run.attempt_count == 0 and run.attempts == []


def test_final_attempt_lives_on_the_run_row_and_reads_back_whole(env: Any, worker: Any):
    """The finish that ends a run writes no attempt record (one statement fewer per run);
    the attempt is read back from the run row with its worker and timings."""
    from sqlalchemy import func, select

    from runtime.bootstrap import get_runtime
    from runtime.store import tables as tb

    run = wait_final(tasks.trigger("t-echo", {"a": 1}).id)
    assert run.status == RunStatus.COMPLETED
    (attempt,) = run.attempts
    assert attempt.number == 1 and attempt.status == "COMPLETED"
    assert attempt.worker and attempt.worker.count(":") >= 1  # host:pid:… of the worker
    assert attempt.started_at == run.started_at and attempt.finished_at == run.finished_at
    store = get_runtime().store
    with store.engine.connect() as conn:
        n = conn.execute(
            select(func.count()).select_from(tb.run_attempts).where(
                tb.run_attempts.c.run_id == run.id
            )
        ).scalar()
    # Postgres takes the one-statement finish; SQLite writes the record in its transaction
    assert n == (0 if store.is_postgres else 1)
    assert store.attempts(run.id) == store.attempts(run.id, store.get_run(run.id))


def test_lost_message_is_republished_after_stale_window(env: Any):
    """A QUEUED run published long ago and never claimed (its message was lost) is handed
    back to the timer's publisher; a recently published one is left alone."""
    import time

    from sqlalchemy import update

    from runtime.bootstrap import get_runtime
    from runtime.durations import utcnow
    from runtime.store import tables as tb

    store = get_runtime().store
    old = tasks.trigger("t-echo", {"a": 1})
    time.sleep(1.1)
    fresh = tasks.trigger("t-echo", {"a": 2})
    with store.engine.begin() as conn:  # as the producers' publish marks would stamp them
        for rid in (old.id, fresh.id):
            row = store.get_run(rid)
            stamp = row["created_at"] if rid == old.id else utcnow()
            conn.execute(update(tb.runs).where(tb.runs.c.id == rid).values(published_at=stamp))
    assert store.unpublish_stale(1.0, 100) == 1
    assert store.get_run(old.id)["published_at"] is None
    assert store.get_run(fresh.id)["published_at"] is not None
    assert store.unpublish_stale(1.0, 100) == 0


def test_one_claim_batch_with_a_run_twice_claims_it_once(pg_env: Any):
    """Two deliveries of one run can land in the same group-committed claim: exactly one
    message gets the run, the other nothing; other runs in the batch are claimed."""
    from runtime.bootstrap import get_runtime

    store = get_runtime().store
    a = tasks.trigger("t-echo", {"a": 1}).id
    b = tasks.trigger("t-echo", {"a": 2}).id
    got = store._claim_batch([(a, "w:1", 30.0), (b, "w:1", 30.0), (a, "w:1", 30.0)])
    assert [r["id"] if r else None for r in got] == [a, b, None]
    assert got[0]["status"] == RunStatus.EXECUTING and got[0]["attempt_count"] == 1
    assert store._claim_batch([(a, "w:2", 30.0)]) == [None]  # taken: no second claim
    assert store.finishes.submit(
        {"rid": b, "owner": "w:1", "attempt": 1, "ms": 5, "metadata": None,
         "status": "COMPLETED", "output": {"ok": True}, "error": None, "release": False}
    )
    done = runs.retrieve(b)
    assert done.status == RunStatus.COMPLETED and done.output == {"ok": True}
    assert [(x.number, x.worker, x.execution_ms) for x in done.attempts] == [(1, "w:1", 5)]


def test_a_finish_the_database_refuses_fails_alone_in_its_batch(pg_env: Any):
    """Group commit must not let one run's bad data (a NUL, which jsonb refuses) fail the
    other runs finishing in the same statement."""
    import psycopg

    from runtime.bootstrap import get_runtime

    store = get_runtime().store
    ids = [tasks.trigger("t-echo", {"a": i}).id for i in range(3)]
    assert all(store._claim_batch([(rid, "w:1", 30.0) for rid in ids]))

    def item(rid: str, output: Any) -> dict[str, Any]:
        return {"rid": rid, "owner": "w:1", "attempt": 1, "ms": 1, "metadata": None,
                "status": "COMPLETED", "output": output, "error": None, "release": False}

    got = store._finish_batch([item(ids[0], 1), item(ids[1], "bad\u0000"), item(ids[2], 3)])
    assert got[0] is True and got[2] is True and isinstance(got[1], psycopg.DataError)
    assert runs.retrieve(ids[0]).output == 1 and runs.retrieve(ids[2]).output == 3
    assert runs.retrieve(ids[1]).status == RunStatus.EXECUTING  # its worker sees the error


def test_a_hot_path_connection_the_server_dropped_is_replaced(pg_env: Any):
    """Claims and finishes run on one psycopg connection per thread. When the server ends
    that connection (a restart, a failover, an idle timeout), the next statement is sent
    once more on a new connection; an error that is not about the connection keeps it."""
    import psycopg

    from runtime.bootstrap import get_runtime

    raw = get_runtime().store._raw
    pid = raw.fetch_one("SELECT pg_backend_pid() AS pid", {})["pid"]
    with psycopg.connect(pg_env.settings["database_url"], autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    rid = tasks.trigger("t-echo", {"a": 1}).id
    (claimed,) = raw.fetch_all(
        "UPDATE runs SET status = 'EXECUTING' WHERE id = %(rid)s RETURNING id", {"rid": rid}
    )
    assert claimed == {"id": rid}
    new_pid = raw.fetch_one("SELECT pg_backend_pid() AS pid", {})["pid"]
    assert new_pid != pid
    with pytest.raises(psycopg.errors.DivisionByZero):
        raw.fetch_one("SELECT 1 / 0 AS x", {})
    assert raw.fetch_one("SELECT pg_backend_pid() AS pid", {})["pid"] == new_pid


def test_closing_the_store_closes_every_threads_hot_path_connection(pg_env: Any):
    """The hot path's connections are held outside the pool, so the pool's dispose() never
    closed them: each runtime a process made and closed left one per thread open (a test
    session ran Postgres out of connections)."""
    import threading

    import psycopg
    from sqlalchemy import create_engine

    from runtime.store.repository import Store

    store = Store(create_engine(pg_env.settings["database_url"].replace(
        "postgresql://", "postgresql+psycopg://")))
    pids: list[int] = []

    def use() -> None:
        pids.append(store._raw.fetch_one("SELECT pg_backend_pid() AS pid", {})["pid"])

    threads = [threading.Thread(target=use) for _ in range(2)]
    for th in threads:
        th.start()
    use()  # this thread's too, still alive
    for th in threads:
        th.join()
    with psycopg.connect(pg_env.settings["database_url"], autocommit=True) as admin:
        def open_pids() -> set[int]:
            rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)",
                                 [pids]).fetchall()
            return {row[0] for row in rows}

        assert open_pids() >= {pids[-1]}
        store.close()
        wait_for(lambda: not open_pids(), timeout=5)


def test_the_claims_asynchronous_commit_ends_with_its_own_transaction(pg_env: Any):
    """The claim turns synchronous_commit off for its own transaction only: the finish that
    follows on the same connection must still wait for its WAL flush (a completed run that
    Postgres could lose in a crash would come back as executing)."""
    from runtime.bootstrap import get_runtime

    store = get_runtime().store
    rid = tasks.trigger("t-echo", {"a": 1}).id
    assert store._claim_batch([(rid, "w:1", 30.0)])[0]["id"] == rid
    setting = store._raw.fetch_one("SELECT current_setting('synchronous_commit') AS v", {})
    assert setting == {"v": "on"}
    plans = store._raw.fetch_one("SELECT current_setting('plan_cache_mode') AS v", {})
    assert plans == {"v": "force_generic_plan"}  # one plan for every hot-path call


def _count(table: Any, column: Any, ids: list[str]) -> int:
    from sqlalchemy import func, select

    from runtime import get_runtime

    with get_runtime().store.engine.connect() as conn:
        q = select(func.count()).select_from(table).where(column.in_(ids))
        return int(conn.execute(q).scalar_one())


def test_retention_deletes_old_finished_runs_with_what_hangs_off_them(env: Any, worker: Any):
    from datetime import timedelta

    from sqlalchemy import update

    from runtime import get_runtime
    from runtime.durations import utcnow
    from runtime.errors import RunNotFoundError
    from runtime.store import tables as tb
    from runtime.store.retention import prune_runs

    store = get_runtime().store
    # runs with logs, a failed attempt, a child and a RUN waitpoint with its replay steps
    old = [tasks.trigger("t-logs", {}).id, tasks.trigger("t-flaky", {"fail_times": 1}).id,
           tasks.trigger("t-parent", {}).id]
    kept_by_key = tasks.trigger("t-echo", {}, idempotency_key="still-valid").id
    kept_child = tasks.trigger("t-echo", {"child": 1}).id
    recent = tasks.trigger("t-echo", {"recent": 1}).id
    for run_id in [*old, kept_by_key, kept_child, recent]:
        assert wait_final(run_id, timeout=60).is_completed
    child = [r.id for r in runs.list(task="t-child")]
    assert len(child) == 1
    old += child
    waiting_parent = tasks.trigger("t-no-worker-has-this", {}).id  # PENDING_VERSION: not final
    now = utcnow()
    cutoff = now + timedelta(minutes=1)  # every run so far was created and finished before it
    r = tb.runs.c
    with store.engine.begin() as conn:
        conn.execute(update(tb.runs).where(r.id == recent).values(
            finished_at=now + timedelta(minutes=2)))
        conn.execute(update(tb.runs).where(r.id == kept_child).values(parent_id=waiting_parent))
    assert _count(tb.run_logs, tb.run_logs.c.run_id, old) > 0
    assert _count(tb.run_attempts, tb.run_attempts.c.run_id, old) >= 2  # failed, suspended
    assert _count(tb.run_steps, tb.run_steps.c.run_id, old) == 1
    assert _count(tb.waitpoints, tb.waitpoints.c.run_id, old) == 1

    # batches of 3: the four old runs take two, the third finds nothing left
    assert [prune_runs(store, cutoff, now, 3) for _ in range(3)] == [3, 1, 0]
    for run_id in old:
        with pytest.raises(RunNotFoundError):
            runs.retrieve(run_id)
    for table in (tb.run_logs, tb.run_attempts, tb.run_steps, tb.waitpoints):
        assert _count(table, table.c.run_id, old) == 0, table.name
    for run_id in (kept_by_key, kept_child, recent, waiting_parent):
        runs.retrieve(run_id)
    # once its key has expired, a keyed run goes too
    assert prune_runs(store, cutoff, now + timedelta(days=31), 10) == 1
    with pytest.raises(RunNotFoundError):
        runs.retrieve(kept_by_key)


def test_retention_keeps_a_run_whose_on_complete_hook_is_not_sent(env: Any):
    """No worker and no timer here: a run whose ``on_complete`` is still to be sent keeps
    its flag (a running timer would send the hook and clear it within a tick)."""
    from datetime import timedelta

    from sqlalchemy import update

    from runtime import get_runtime
    from runtime.durations import utcnow
    from runtime.errors import RunNotFoundError
    from runtime.store import tables as tb
    from runtime.store.retention import prune_runs

    store = get_runtime().store
    hooked, plain = (tasks.trigger("t-echo", {"i": i}).id for i in range(2))
    now = utcnow()
    # the cutoff also bounds run ids by their creation time: a minute on, so runs made
    # within this millisecond are in
    cutoff = now + timedelta(minutes=1)
    r = tb.runs.c
    with store.engine.begin() as conn:  # both ended an hour ago; one hook not yet sent
        conn.execute(update(tb.runs).where(r.id.in_([hooked, plain])).values(
            status=RunStatus.CANCELED, finished_at=now - timedelta(hours=1)))
        conn.execute(update(tb.runs).where(r.id == hooked).values(on_complete_pending=True))
    assert prune_runs(store, cutoff, now, 10) == 1
    with pytest.raises(RunNotFoundError):
        runs.retrieve(plain)
    assert runs.retrieve(hooked).status == RunStatus.CANCELED
    with store.engine.begin() as conn:  # the hook went out
        conn.execute(update(tb.runs).where(r.id == hooked).values(on_complete_pending=False))
    assert prune_runs(store, cutoff, now, 10) == 1
    with pytest.raises(RunNotFoundError):
        runs.retrieve(hooked)


def test_retention_runs_in_the_timer_loop_and_from_the_cli(env: Any, worker: Any):
    from runtime import get_runtime
    from runtime.errors import RunNotFoundError
    from runtime.timer import TimerLoop

    done = [tasks.trigger("t-echo", {"i": i}).id for i in range(3)]
    for run_id in done:
        wait_final(run_id)
    rt = get_runtime()
    # a retention of 0.5 s: the runs are older than that a moment after they finished
    settings = rt.settings.model_copy(update={"run_retention_days": 0.5 / 86400,
                                              "retention_batch_size": 2})
    loop = TimerLoop(rt)
    loop.settings = settings
    time.sleep(1.0)
    assert loop._retention() == 2  # a full batch: the next tick takes the rest
    assert loop._retention() == 1
    assert loop._retention() == 0  # a short batch ended the pass: next one after the interval
    for run_id in done:
        with pytest.raises(RunNotFoundError):
            runs.retrieve(run_id)
    # the CLI does a whole pass at once
    more = [tasks.trigger("t-echo", {"i": i}).id for i in range(2)]
    for run_id in more:
        wait_final(run_id)
    time.sleep(1.0)
    res = env.cli("runs", "prune", "--older-than", "0.5s")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["runs"] == 2
    res = env.cli("runs", "prune", "--older-than", "soon")
    assert res.returncode != 0 and "--older-than" in res.stderr


def _most_at_once(lines: list[str], key: str | None = None) -> int:
    """The most runs between their start and end lines at the same moment."""
    events = []
    for line in lines:
        kind, run_key, at = line.split(" ")
        if key is None or run_key == key:
            events.append((float(at), 0 if kind == "end" else 1))
    most = now = 0
    for _, starts in sorted(events):
        now += 1 if starts else -1
        most = max(most, now)
    return most


def test_concurrency_limit_caps_runs_executing_at_once(env: Any, worker: Any, tmp_path: Path):
    trace = tmp_path / "trace"
    handles = [tasks.trigger("t-limited", {"i": i, "trace": str(trace)}) for i in range(6)]
    done = [wait_final(h.id, timeout=60) for h in handles]
    assert [r.status for r in done] == [RunStatus.COMPLETED] * 6
    lines = t.read_trace(trace)
    assert len(lines) == 12
    # the worker has 4 threads: without the limit 4 would run at once
    assert _most_at_once(lines) == 2, lines
    assert all(r.attempt_count == 1 for r in done)  # waiting for a slot costs no attempt


def check_one_slot_per_key(task_id: str, trace: Path) -> list[Any]:
    """Three runs each of keys a and b, on a task with one slot per key: a's and b's run
    side by side, never two of one key."""
    handles = [
        tasks.trigger(task_id, {"key": key, "trace": str(trace), "seconds": 0.4},
                      concurrency_key=key)
        for key in ("a", "b") for _ in range(3)
    ]
    for h in handles:
        assert wait_final(h.id, timeout=60).status == RunStatus.COMPLETED
    lines = t.read_trace(trace)
    assert _most_at_once(lines, "a") == 1 and _most_at_once(lines, "b") == 1, lines
    assert _most_at_once(lines) == 2, lines
    return handles


def test_concurrency_key_gives_each_key_its_own_slots(env: Any, worker: Any, tmp_path: Path):
    handles = check_one_slot_per_key("t-limited-one", tmp_path / "trace")
    assert runs.retrieve(handles[0].id).concurrency_key == "a"


def test_a_waiting_run_frees_its_slot(env: Any, worker: Any, tmp_path: Path):
    from runtime import wait

    trace = tmp_path / "trace"
    waiting = tasks.trigger("t-limited-wait", {"trace": str(trace)})
    wait_for(lambda: runs.retrieve(waiting.id).status == RunStatus.WAITING, timeout=30)
    # the limit is 1 and the waiting run is not executing: another run takes the slot
    quick = wait_final(tasks.trigger("t-limited-wait", {"quick": True}).id, timeout=30)
    assert quick.status == RunStatus.COMPLETED
    token_id = t.read_trace(trace)[0].split(":", 1)[1]
    wait.complete_token(token_id, {"go": True})
    assert wait_final(waiting.id, timeout=30).output == {"ok": True}
