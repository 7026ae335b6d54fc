"""The scheduler against real Postgres + RabbitMQ (and SQLite for the polling reload).

Scheduler replicas are real subprocesses (``python -m runtime.cli scheduler``). To see many
ticks in seconds, schedules use a leading seconds field, enabled by the test-only setting
``test_only_cron_seconds_field``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select, update

import runtime
from runtime import RunStatus, runs, schedules
from runtime.schedule_fire import FireWriter, Tick
from runtime.schedules import declarative_id, sync_declarative_schedules
from runtime.store import schedules as sql
from runtime.store import tables as t
from tests import tasks as _plain_tasks  # noqa: F401 - t-echo, a task that is not scheduled
from tests.conftest import ROOT
from tests.helpers import wait_for
from tests.integration import schedule_tasks  # noqa: F401 - registers the scheduled tasks

pytestmark = pytest.mark.integration
MODULE = "tests.integration.schedule_tasks"
SCHED_SETTINGS = {"test_only_cron_seconds_field": True, "schedule_poll_seconds": 0.5}


def _configure(env: Any, **extra: Any) -> Any:
    env.settings.update(SCHED_SETTINGS, **extra)
    return runtime.configure(**env.settings)


@pytest.fixture
def sched_env(pg_env: Any) -> Any:
    _configure(pg_env)
    return pg_env


def start_scheduler(env: Any, name: str, **extra: Any) -> subprocess.Popen[bytes]:
    log = open(env.tmp / f"{name}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "scheduler", MODULE],
        env=env.environ(**extra), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    env.procs.append(proc)
    wait_for(lambda: "scheduler ready" in (env.tmp / f"{name}.log").read_text(), timeout=30)
    return proc


def fires(schedule_id: str) -> list[Any]:
    return sql.fires(runtime.get_runtime().store, schedule_id)


def sched_runs(schedule_id: str) -> list[Any]:
    return sorted(runtime.get_runtime().store.list_runs(schedule_id=schedule_id, limit=10_000),
                  key=lambda r: r["id"])


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


# ---------------------------------------------------------------------------- replicas
def test_two_replicas_fire_each_tick_exactly_once_and_survive_kill9(sched_env: Any):
    s = schedules.create(task="t-sched", cron="*/2 * * * * *")
    a = start_scheduler(sched_env, "a")
    start_scheduler(sched_env, "b")
    wait_for(lambda: len(fires(s.id)) >= 3, timeout=15)
    time.sleep(3)
    a.send_signal(signal.SIGKILL)  # mid-window, possibly mid-transaction
    a.wait()
    killed_at = datetime.now(UTC)
    wait_for(lambda: any(f["fire_time"] > killed_at + timedelta(seconds=5)
                         for f in fires(s.id)), timeout=15)
    sched_env.stop_all()

    rows = fires(s.id)
    times = [f["fire_time"] for f in rows]
    assert len(times) >= 8
    # no tick lost: consecutive 2-second ticks from the first to the last
    assert times == [times[0] + timedelta(seconds=2 * i) for i in range(len(times))]
    # none doubled: one run per tick, each carrying its own tick
    got = sched_runs(s.id)
    assert len(got) == len(rows)
    assert sorted(r["id"] for r in got) == sorted(f["run_id"] for f in rows)
    assert sorted(_ts(r["payload"]["timestamp"]) for r in got) == times
    assert all(r["status"] == RunStatus.QUEUED and r["published_at"] for r in got)
    # the key derived from schedule + tick is on every run
    assert len({r["idempotency_key"] for r in got}) == len(got)


# ---------------------------------------------------------------------------- payload
def test_payload_fields_last_timestamp_and_upcoming_in_schedule_timezone(sched_env: Any):
    s = schedules.create(task="t-sched", cron="* * * * * *", timezone="Asia/Kolkata",
                         external_id="user_42")
    start_scheduler(sched_env, "p")
    wait_for(lambda: len(sched_runs(s.id)) >= 3, timeout=20)
    sched_env.stop_all()
    first, second = sched_runs(s.id)[:2]
    p1, p2 = first["payload"], second["payload"]
    assert second["schedule_id"] == s.id and second["task_identifier"] == "t-sched"
    assert p2["schedule_id"] == s.id and p2["type"] == "IMPERATIVE"
    assert p2["timezone"] == "Asia/Kolkata" and p2["external_id"] == "user_42"
    t2 = _ts(p2["timestamp"])
    assert t2.utcoffset() == timedelta(0) and t2.microsecond == 0
    assert _ts(p2["last_timestamp"]) == _ts(p1["timestamp"]) == t2 - timedelta(seconds=1)
    ist = ZoneInfo("Asia/Kolkata")
    assert p2["upcoming"] == [(t2 + timedelta(seconds=i)).astimezone(ist).isoformat()
                              for i in range(1, 6)]
    assert all(u.endswith("+05:30") for u in p2["upcoming"])
    fire_times = [f["fire_time"] for f in fires(s.id)]
    assert _ts(p1["timestamp"]) == fire_times[0]


def test_payload_of_a_daily_schedule_across_dst_and_a_declarative_one(sched_env: Any):
    rt = runtime.get_runtime()
    sync_declarative_schedules(rt)
    s = schedules.create(task="t-sched", cron="30 2 * * *", timezone="America/New_York")
    nominal = datetime(2026, 3, 7, 7, 30, tzinfo=UTC)  # Sat 02:30 EST
    with rt.store.engine.begin() as conn:  # an earlier fire, so last_timestamp is set
        conn.execute(update(t.schedules).where(t.schedules.c.id.in_([s.id, declarative_id(
            "t-sched-decl")])).values(created_at=nominal - timedelta(days=30)))
        conn.execute(insert(t.schedule_fires).values(
            schedule_id=s.id, fire_time=nominal - timedelta(days=1), created_at=nominal))
    writer = FireWriter(rt, clock=lambda: nominal + timedelta(seconds=1))
    decl_tick = datetime(2026, 3, 9, 8, tzinfo=UTC)  # Mon 09:00 Paris
    writer.clock = lambda: decl_tick + timedelta(seconds=1)
    assert writer.write([Tick(declarative_id("t-sched-decl"), decl_tick)])["fired"] == 1
    writer.clock = lambda: nominal + timedelta(seconds=1)
    assert writer.write([Tick(s.id, nominal)])["fired"] == 1
    p = sched_runs(s.id)[0]["payload"]
    assert _ts(p["last_timestamp"]) == nominal - timedelta(days=1)
    assert p["upcoming"][:2] == ["2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"]
    d = sched_runs(declarative_id("t-sched-decl"))[0]["payload"]
    assert d["type"] == "DECLARATIVE" and d["timezone"] == "Europe/Paris"
    assert d["last_timestamp"] is None  # first run
    assert d["upcoming"][0] == "2026-03-10T09:00:00+01:00"


# ---------------------------------------------------------------------------- CRUD + reload
def _cli(env: Any, *args: str) -> Any:
    res = env.cli("schedules", *args, **SCHED_SETTINGS)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout) if res.stdout.strip().startswith("{") else res.stdout


def _new_fires_after(sid: str, since: datetime) -> list[datetime]:
    return [f["fire_time"] for f in fires(sid) if f["created_at"] > since]


@pytest.mark.timeout(300)  # six CLI processes: ~7 s each to start on a loaded 2-core box
def test_crud_from_another_process_is_picked_up_within_5s(env: Any):
    from runtime.worker import sync_task_definitions

    sync_task_definitions(_configure(env))  # as a worker's boot does: the CLI knows t-sched
    start_scheduler(env, "crud")
    # create (from a CLI process) → fires within 5 s
    out = _cli(env, "create", "--task", "t-sched", "--cron", "* * * * * *",
               "--external-id", "cli")
    sid, t0 = out["id"], time.monotonic()
    wait_for(lambda: fires(sid), timeout=5)
    created_lag = time.monotonic() - t0
    # update to every 3rd second → within 5 s only multiples of 3 fire
    _cli(env, "update", sid, "--cron", "*/3 * * * * *")
    changed = datetime.now(UTC)
    wait_for(lambda: [x for x in _new_fires_after(sid, changed + timedelta(seconds=5))], 10)
    assert all(x.second % 3 == 0
               for x in _new_fires_after(sid, changed + timedelta(seconds=5)))
    # deactivate → no fires after 5 s
    _cli(env, "deactivate", sid)
    off = datetime.now(UTC)
    time.sleep(7)
    assert _new_fires_after(sid, off + timedelta(seconds=5)) == []
    # activate → fires again within 5 s (+ one 3-second period)
    _cli(env, "activate", sid)
    on = datetime.now(UTC)
    wait_for(lambda: _new_fires_after(sid, on), timeout=8)
    # delete → nothing more: no new runs after 5 s
    _cli(env, "delete", sid)
    gone = datetime.now(UTC)
    time.sleep(7)
    assert [r for r in sched_runs(sid) if r["created_at"] > gone + timedelta(seconds=5)] == []
    assert created_lag < 5
    listing = _cli(env, "list")
    assert sid not in listing


# ---------------------------------------------------------------------------- skip_if_active
def test_skip_if_active_skips_while_previous_run_executes_then_fires_again(
    sched_env: Any, pg_worker: Any
):
    s = schedules.create(task="t-sched-slow", cron="* * * * * *", external_id="2.5",
                         skip_if_active=True)
    start_scheduler(sched_env, "skip")
    wait_for(lambda: sum(r["status"] == "COMPLETED" for r in sched_runs(s.id)) >= 2, 30)
    sched_env.stop_all()
    done = [r for r in sched_runs(s.id) if r["status"] == "COMPLETED"]
    first, second = done[0], done[1]
    assert second["started_at"] >= first["finished_at"]  # never overlapping
    rows = fires(s.id)
    by_run = {f["run_id"]: f for f in rows if f["run_id"]}
    f1, f2 = by_run[first["id"]]["fire_time"], by_run[second["id"]]["fire_time"]
    skipped = [f for f in rows if f["skipped"] and f1 < f["fire_time"] < f2]
    assert len(skipped) >= 2  # ~2.5 s of every-second ticks while run 1 executed
    assert all(first["id"] in f["reason"] and f["run_id"] is None for f in skipped)
    # the first tick after run 1 finished fired again
    assert f2 - first["finished_at"] < timedelta(seconds=1.5)
    assert not [f for f in rows if f1 < f["fire_time"] < f2 and not f["skipped"]]


# ---------------------------------------------------------------------------- downtime
def test_scheduler_down_for_10_minutes_fires_one_catch_up_then_resumes(sched_env: Any):
    rt = runtime.get_runtime()
    s = schedules.create(task="t-sched", cron="*/5 * * * * *")
    now = datetime.now(UTC).replace(microsecond=0)
    down_since = now - timedelta(minutes=10)
    down_since -= timedelta(seconds=down_since.second % 5)
    # the state a scheduler left behind 10 minutes ago: created 15 min ago, ticks every
    # 5 s until it went down
    seeded = [down_since - timedelta(seconds=5 * i) for i in range(60)]
    with rt.store.engine.begin() as conn:
        conn.execute(update(t.schedules).where(t.schedules.c.id == s.id)
                     .values(created_at=now - timedelta(minutes=15)))
        conn.execute(insert(t.schedule_fires), [
            {"schedule_id": s.id, "fire_time": ft, "created_at": ft} for ft in seeded])
    booted = datetime.now(UTC)
    start_scheduler(sched_env, "late", schedule_misfire_grace_seconds=30)
    wait_for(lambda: len(_new_fires_after(s.id, booted)) >= 4, timeout=30)
    sched_env.stop_all()
    new = [f["fire_time"] for f in fires(s.id) if f["fire_time"] > down_since]
    catch_up = new[0]
    # one catch-up: the latest tick before boot, none of the ~120 missed before it
    assert booted - timedelta(seconds=5) <= catch_up <= booted + timedelta(seconds=5)
    assert not [x for x in new if down_since < x < catch_up]
    # then the cadence: every 5 s, no gap, no double
    assert new == [catch_up + timedelta(seconds=5 * i) for i in range(len(new))]
    got = sched_runs(s.id)
    assert len(got) == len(new)
    first = min(got, key=lambda r: _ts(r["payload"]["timestamp"]))
    assert _ts(first["payload"]["timestamp"]) == catch_up
    assert _ts(first["payload"]["last_timestamp"]) == down_since


# ---------------------------------------------------------------------------- API errors
def test_api_errors_are_clear(sched_env: Any):
    with pytest.raises(schedules.InvalidScheduleError, match="invalid cron.*minute must be"):
        schedules.create(task="t-sched", cron="61 * * * *")
    with pytest.raises(schedules.InvalidScheduleError, match="invalid timezone.*Mars"):
        schedules.create(task="t-sched", cron="0 9 * * *", timezone="Mars/Base")
    with pytest.raises(schedules.InvalidScheduleError, match="not a scheduled task"):
        schedules.create(task="t-echo", cron="0 9 * * *")
    sync_declarative_schedules(runtime.get_runtime())
    decl = schedules.retrieve(declarative_id("t-sched-decl"))
    assert decl.type == "DECLARATIVE" and decl.cron == "0 9 * * 1-5"
    assert decl.next_run is not None and decl.next_run.weekday() < 5
    for fn in (lambda: schedules.update(decl.id, cron="0 10 * * *"),
               lambda: schedules.delete(decl.id)):
        with pytest.raises(schedules.InvalidScheduleError, match="declarative"):
            fn()
    with pytest.raises(schedules.ScheduleNotFoundError):
        schedules.retrieve("sched_nope")


def test_deduplication_key_updates_and_list_paginates(sched_env: Any):
    a = schedules.create(task="t-sched", cron="0 9 * * *", deduplication_key="tenant-1",
                         external_id="u1")
    b = schedules.create(task="t-sched", cron="0 10 * * *", timezone="Europe/Berlin",
                         deduplication_key="tenant-1", external_id="u1")
    assert a.id == b.id and b.cron == "0 10 * * *" and b.timezone == "Europe/Berlin"
    schedules.deactivate(a.id)
    c = schedules.create(task="t-sched", cron="0 11 * * *", deduplication_key="tenant-1")
    assert c.id == a.id and c.active is False  # dedup updates, does not re-activate
    others = [schedules.create(task="t-sched", cron=f"{i} 9 * * *").id for i in range(3)]
    page = schedules.list(task="t-sched", limit=2)
    assert len(page.data) == 2 and page.next_cursor
    rest = schedules.list(task="t-sched", limit=2, cursor=page.next_cursor)
    seen = [x.id for x in page.data + rest.data]
    assert sorted(seen) == sorted([a.id, *others])
    assert [x.id for x in schedules.list(active=False).data] == [a.id]
    upd = schedules.update(others[0], skip_if_active=True, external_id="ext")
    assert upd.skip_if_active and upd.external_id == "ext" and upd.cron == "0 9 * * *"


def test_runs_of_a_schedule_carry_its_id(sched_env: Any):
    rt = runtime.get_runtime()
    s = schedules.create(task="t-sched", cron="0 0 * * *")
    tick = datetime.now(UTC).replace(microsecond=0)
    w = FireWriter(rt)
    assert w.write([Tick(s.id, tick), Tick(s.id, tick)])["fired"] == 1
    assert w.write([Tick(s.id, tick)]) == {"fired": 0, "skipped": 0, "missed": 0,
                                            "taken": 1, "gone": 0}
    run = runs.retrieve(sched_runs(s.id)[0]["id"])
    assert run.status == RunStatus.QUEUED and run.payload["schedule_id"] == s.id
    assert schedules.retrieve(s.id).last_run == tick
    with rt.store.autocommit.connect() as conn:
        assert conn.execute(select(t.runs.c.schedule_id).where(
            t.runs.c.id == run.id)).scalar() == s.id
