"""Concurrency slots: a queue's ``concurrency_limit`` caps its runs EXECUTING at once.

A queue is a task's own (named by its id) or a shared one several tasks are in
(``queue()``, runtime/shared_queues.py); a run's ``concurrency_queue`` names it, and every
group below is a (queue, key). The slots of a queue (one set per ``concurrency_key``) are
simply its runs in EXECUTING: a
run takes one when claimed and frees it by leaving EXECUTING for any reason (finished,
retrying, suspended on a wait, crashed, handed back). So nothing on the way out of a run
needs to know about slots, and a worker that dies frees its slot when its lease lapses.

- **Claim.** The ordinary claim skips limited runs, and every run of a task whose queue
  ops hold (paused, or its limit overridden: runtime/store/queue_controls.py);
  :func:`claim_limited` claims one only while the queue is not paused and fewer runs of
  its queue and key than its limit (the override, else the run's own) are EXECUTING — and,
  for a queue with a total limit, fewer than the total over all its keys. On Postgres the
  count and the claim run under a transaction-scoped advisory lock on (queue, key), or on
  the queue when it has a total, so two workers cannot both take the last slot; SQLite has
  one writer at a time.
  The claim stamps the run with the limit it started under, so a run of an unlimited task
  started under an override is counted (the slot index holds runs with a limit).
- **No slot.** The run stays QUEUED with ``waiting_for_slot`` set and its message is
  dropped: it holds no worker thread and no broker message while it waits.
- **Hand on.** A worker whose limited run leaves EXECUTING runs the wake for that queue at
  once (:func:`hand_on`), so a slot does not sit free until the next tick.
- **Wake.** The timer loop (:func:`wake_waiting`) counts each waiting group's free slots
  — the limit minus the runs EXECUTING and the runs already on their way to a claim, a
  task's total shared fairly over its keys (:func:`shares`) — and publishes that many of
  its oldest waiting runs (:func:`wake_groups`: on Postgres without a pass over a large
  waiting backlog). A run that still finds no slot waits again. A waiting run is found
  from this table, never from a message, so the lost-message recovery leaves it alone.

(The wake's Postgres statements below say "task" for the first half of a group: the queue,
which is the task's own unless it is in a shared queue.)
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    text,
    update,
)

from ..durations import utcnow
from ..statuses import RunStatus
from . import tables as t
from .repository import _CLAIM_LIMITED, Store

_LOCK_PG = text("SELECT pg_advisory_xact_lock(hashtextextended(:group, 7))")


def controls(conn: Connection) -> dict[str, Any]:
    """Ops' holds on task queues (runtime/store/queue_controls.py), by task: a few rows."""
    rows = conn.execute(select(t.queue_controls)).mappings()
    return {row["task_identifier"]: row for row in rows}


def totals(conn: Connection, queues: Iterable[str]) -> dict[str, int | None]:
    """Each queue's total over all its keys: ops' override, else its code's (its task's
    definition, or a shared queue's declaration)."""
    td, qd, c = t.task_definitions.c, t.queue_definitions.c, t.queue_controls.c
    ids = list(queues)
    out: dict[str, int | None] = {
        row[0]: row[1] for row in conn.execute(
            select(td.id, td.total_concurrency_limit).where(td.id.in_(ids)))
    }
    out.update({
        row[0]: row[1] for row in conn.execute(
            select(qd.name, qd.total_concurrency_limit).where(qd.name.in_(ids)))
    })
    out.update({
        row[0]: row[1] for row in conn.execute(
            select(c.task_identifier, c.total_concurrency_limit)
            .where(c.task_identifier.in_(ids), c.total_concurrency_limit.is_not(None)))
    })
    return out


def claim_limited(store: Store, run: Mapping[str, Any], owner: str, lease_seconds: float) -> Any:
    """Claim ``run`` (a row of a limited task, or of one whose queue ops hold) if one of its
    slots is free; otherwise mark it waiting for one. The claimed row, or None."""
    now = utcnow()
    r = t.runs.c
    params = {"rid": run["id"], "owner": owner, "now": now,
              "lease": now + timedelta(seconds=lease_seconds)}
    with store.engine.begin() as conn:
        if store.is_postgres:
            # a queue with a total limit shares it over its keys: its claims take turns per
            # queue, others per (queue, key)
            queue = run["concurrency_queue"] or run["task_identifier"]
            total = totals(conn, [queue]).get(queue)
            parts = [queue]
            if total is None:
                parts.append(run["concurrency_key"] or "")
            conn.execute(_LOCK_PG, {"group": json.dumps(parts)})
        claimed = conn.execute(_CLAIM_LIMITED, params).mappings().first()
        if claimed is None:
            # every slot taken (or the run is not claimable: then this matches nothing)
            conn.execute(
                update(t.runs)
                .where(
                    r.id == run["id"],
                    r.status == RunStatus.QUEUED,
                    or_(r.available_at.is_(None), r.available_at <= now),
                )
                # the queue and key as the slots count them ('' for no key), so the wake
                # step finds it
                .values(waiting_for_slot=True, published_at=now,
                        concurrency_queue=func.coalesce(r.concurrency_queue,
                                                        r.task_identifier),
                        concurrency_key=func.coalesce(r.concurrency_key, ""))
            )
        return claimed


def usage(now: datetime) -> Select[Any]:
    """Per group (queue, key) with limited runs QUEUED or EXECUTING, or runs waiting for a
    slot (a run of an unlimited task waits while ops hold its queue), in one pass over the
    two partial indexes that hold only those: its limit, runs ``executing``, runs ``coming``
    (woken or fresh, due, on their way to a claim: their slots are spoken for) and runs
    ``waiting``. The limit is the runs' own; :func:`effective_limit` applies ops' hold.
    """
    r = t.runs.c
    queued = r.status == RunStatus.QUEUED
    due = or_(r.available_at.is_(None), r.available_at <= now)

    def n(cond: Any) -> Any:
        return func.sum(case((cond, 1), else_=0))

    limited = r.concurrency_limit.is_not(None)
    return (
        select(
            r.concurrency_queue, r.concurrency_key,
            func.max(r.concurrency_limit).label("concurrency_limit"),
            n(limited & (r.status == RunStatus.EXECUTING)).label("executing"),
            n(limited & queued & ~r.waiting_for_slot & due).label("coming"),
            n(queued & r.waiting_for_slot).label("waiting"),
            func.min(case((queued & r.waiting_for_slot, r.id))).label("oldest"),
        )
        .where(
            or_(
                and_(limited, r.status.in_([RunStatus.EXECUTING, RunStatus.QUEUED])),
                and_(r.waiting_for_slot, queued),
            )
        )
        .group_by(r.concurrency_queue, r.concurrency_key)
    )


def wake_groups(conn: Connection, postgres: bool, queue: str | None,
                cap: int) -> list[dict[str, Any]]:
    """:func:`usage`'s groups as the wake step needs them: the groups with runs waiting
    for a slot (all queues', or ``queue``'s), each with its ``waiting`` counted up to
    ``cap`` (a wake hands out no more), and every group of their queues holding a slot or
    on its way to one (a total limit is shared over them).

    On Postgres without one pass over every waiting run, which :func:`usage`'s GROUP BY
    makes (33 ms a tick, and on every hand-on, with 100,000 runs of a paused or backlogged
    task waiting): the busy runs have an index of their own (ix_runs_busy_slots), and a
    task with many runs waiting in few groups has its groups found by skipping from one to
    the next in ix_runs_slot_waiting, one index probe each (:func:`_waiting_groups_pg`).
    SQLite, the embedded default, keeps the one GROUP BY, its result made the same."""
    if not postgres:
        q = usage(utcnow())
        if queue is not None:
            q = q.where(t.runs.c.concurrency_queue == queue)
        every = [dict(g) for g in conn.execute(q).mappings()]
        waiting_queues = {g["concurrency_queue"] for g in every if g["waiting"]}
        return [{**g, "waiting": min(int(g["waiting"]), cap)} for g in every
                if g["concurrency_queue"] in waiting_queues]
    # The recursive statements' estimates pass jit_above_cost, and compiling them took
    # 5 ms of a 7 ms count: no JIT for the rest of this transaction (the wake's).
    conn.execute(_NO_JIT_PG)
    waiting = _waiting_groups_pg(conn, queue, cap)
    if not waiting:
        return []
    tasks = sorted({row[0] for row in waiting})
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for task, key, limit, executing, coming in conn.execute(
            _BUSY_GROUPS_PG, {"now": utcnow(), "tasks": tasks}):
        groups[(task, key)] = {
            "concurrency_queue": task, "concurrency_key": key, "concurrency_limit": limit,
            "executing": executing, "coming": coming, "waiting": 0, "oldest": None}
    for task, key, oldest, limit, n in waiting:
        g = groups.get((task, key))
        if g is None:
            groups[(task, key)] = {
                "concurrency_queue": task, "concurrency_key": key, "concurrency_limit": limit,
                "executing": 0, "coming": 0, "waiting": min(n, cap), "oldest": oldest}
            continue
        # the limit the next run to wake will claim against: its own or a busy run's
        if limit is not None and (g["concurrency_limit"] is None
                                  or limit > g["concurrency_limit"]):
            g["concurrency_limit"] = limit
        g["waiting"], g["oldest"] = min(n, cap), oldest
    return list(groups.values())


_NO_JIT_PG = text("SET LOCAL jit = off")

#: a task with more runs waiting than this has its groups probed one by one ...
PROBE_ABOVE = 1_000
#: ... if its first PROBE_ABOVE of them (in key order) span at most this many keys ...
PROBE_KEYS_SEEN_AT_MOST = 8
#: ... and it has no more groups than this: else one pass over its waiting runs is cheaper
PROBE_GROUPS_AT_MOST = 64


def _waiting_groups_pg(conn: Connection, queue: str | None,
                       cap: int) -> list[Any]:
    """Each group with runs waiting: (task, key, its oldest run, the limit, runs waiting
    (up to ``cap`` where probed)).

    Counting a group's runs costs ~0.25 us a run in the index, probing it ~25 us: a pass
    suits many small groups (tenants' keys), probes a few large ones (a paused queue). So
    each task's first PROBE_ABOVE waiting runs are counted, with their keys, first (~0.3 ms
    at most); a task with more, whose first ones span few keys, is probed group by group,
    and if it turns out to have more than PROBE_GROUPS_AT_MOST groups, counted in one pass
    after all (~2 ms of probes lost)."""
    params = {"above": PROBE_ABOVE + 1, "task": queue}
    tasks = [(str(row[0]), int(row[1]), int(row[2])) for row in conn.execute(
        _WAITING_TASKS_PG if queue is None else _WAITING_OF_TASK_PG, params)
        if row[1]]
    # a task whose first runs in the index already span many keys has many groups: one pass
    probe = {task for task, n, keys in tasks
             if n > PROBE_ABOVE and keys <= PROBE_KEYS_SEEN_AT_MOST}
    counted = [task for task, _, _ in tasks if task not in probe]
    out: list[Any] = []  # rows: (task, key, oldest, its limit, waiting)
    for task, _, _ in tasks:
        if task in probe:
            probed = conn.execute(_WAITING_GROUPS_OF_TASK_PG, {
                "task": task, "cap": cap, "groups": PROBE_GROUPS_AT_MOST + 1,
            }).all()
            if len(probed) <= PROBE_GROUPS_AT_MOST:
                out.extend(probed)
                continue
            counted.append(task)
    if counted:
        out.extend(conn.execute(_WAITING_COUNTED_PG, {"tasks": counted}))
    return out


# The tasks with runs waiting (one probe each, skipping from task to task in
# ix_runs_slot_waiting), each with its waiting runs counted up to :above. Every count
# stopped by a LIMIT is ordered as the index is: without, Postgres took a task's runs to
# be spread evenly and read the table from the start until it had :above (9 ms a task).
_WAITING_TASKS_PG = text("""
WITH RECURSIVE tk(t) AS (
  (SELECT concurrency_queue FROM runs WHERE waiting_for_slot AND status = 'QUEUED'
   ORDER BY concurrency_queue LIMIT 1)
  UNION ALL
  SELECT (SELECT r.concurrency_queue FROM runs AS r
          WHERE r.waiting_for_slot AND r.status = 'QUEUED' AND r.concurrency_queue > tk.t
          ORDER BY r.concurrency_queue LIMIT 1)
  FROM tk WHERE tk.t IS NOT NULL
)
SELECT tk.t, c.n, c.keys FROM tk CROSS JOIN LATERAL (
  SELECT count(*) AS n, count(DISTINCT w.concurrency_key) AS keys FROM (
    SELECT concurrency_key FROM runs
    WHERE waiting_for_slot AND status = 'QUEUED' AND concurrency_queue = tk.t
    ORDER BY concurrency_queue, concurrency_key, id LIMIT :above) AS w) AS c
WHERE tk.t IS NOT NULL
""")
_WAITING_OF_TASK_PG = text("""
SELECT :task, count(*), count(DISTINCT w.concurrency_key) FROM (
  SELECT concurrency_key FROM runs
  WHERE waiting_for_slot AND status = 'QUEUED' AND concurrency_queue = :task
  ORDER BY concurrency_queue, concurrency_key, id LIMIT :above) AS w
""")

# One task's groups with runs waiting, at most :groups of them, skipping from one key to
# the next in ix_runs_slot_waiting: the first entry after the previous key is the next
# group's oldest waiting run; each group's count stops at :cap. (The task's equality and
# the key's bound both start each index scan: a row comparison (task, key) > (...) beside
# the equality makes Postgres start at the task's first entry and filter, 9 ms through
# 100,000 waiting runs instead of one probe.) Keys are never NULL there (a waiting run's
# key is '' for none), but a NULL would end the skipping early, so it is left out.
_WAITING_GROUPS_OF_TASK_PG = text("""
WITH RECURSIVE g(t, k, id, n) AS (
  (SELECT concurrency_queue, concurrency_key, id, 1 FROM runs
   WHERE waiting_for_slot AND status = 'QUEUED' AND concurrency_key IS NOT NULL
     AND concurrency_queue = :task
   ORDER BY concurrency_queue, concurrency_key, id LIMIT 1)
  UNION ALL
  SELECT nx.concurrency_queue, nx.concurrency_key, nx.id, g.n + 1 FROM g CROSS JOIN LATERAL (
    SELECT concurrency_queue, concurrency_key, id FROM runs
    WHERE waiting_for_slot AND status = 'QUEUED' AND concurrency_key IS NOT NULL
      AND concurrency_queue = :task AND concurrency_key > g.k
    ORDER BY concurrency_queue, concurrency_key, id LIMIT 1
  ) AS nx
  WHERE g.n < :groups
)
SELECT g.t AS concurrency_queue, g.k AS concurrency_key, g.id AS oldest,
       (SELECT o.concurrency_limit FROM runs AS o WHERE o.id = g.id) AS concurrency_limit,
       (SELECT count(*) FROM (
          SELECT 1 FROM runs AS w
          WHERE w.concurrency_queue = g.t AND w.concurrency_key = g.k
            AND w.waiting_for_slot AND w.status = 'QUEUED'
          ORDER BY w.concurrency_queue, w.concurrency_key, w.id LIMIT :cap) AS c) AS waiting
FROM g
""")

# The same in one pass over the tasks' waiting runs, every group counted (the limit: the
# largest of the group's runs', as usage() has it; a small group's runs were triggered
# under one limit or close to it).
_WAITING_COUNTED_PG = text("""
SELECT concurrency_queue, concurrency_key, min(id) AS oldest,
       max(concurrency_limit) AS concurrency_limit, count(*) AS waiting
FROM runs
WHERE waiting_for_slot AND status = 'QUEUED' AND concurrency_key IS NOT NULL
  AND concurrency_queue = ANY(:tasks)
GROUP BY concurrency_queue, concurrency_key
""")

# the same counts as usage()'s, from ix_runs_busy_slots (no waiting run in it)
_BUSY_GROUPS_PG = text("""
SELECT concurrency_queue, concurrency_key, max(concurrency_limit) AS concurrency_limit,
       count(*) FILTER (WHERE status = 'EXECUTING') AS executing,
       count(*) FILTER (WHERE status = 'QUEUED'
                        AND (available_at IS NULL OR available_at <= :now)) AS coming
FROM runs
WHERE concurrency_limit IS NOT NULL
  AND (status = 'EXECUTING' OR (status = 'QUEUED' AND NOT waiting_for_slot))
  AND concurrency_queue = ANY(:tasks)
GROUP BY concurrency_queue, concurrency_key
""").bindparams(bindparam("now", type_=t.UTCDateTime()))


def effective_limit(group: Mapping[Any, Any], control: Mapping[Any, Any] | None) -> int | None:
    """The limit a group's runs claim against: 0 while its queue is paused, else the
    override, else the runs' own (None: unlimited)."""
    if control is not None:
        if control["paused"]:
            return 0
        if control["concurrency_limit"] is not None:
            return int(control["concurrency_limit"])
    own = group["concurrency_limit"]
    return None if own is None else int(own)


def wake_waiting(store: Store, limit: int, publish: Callable[[list[tuple[str, str]]], Any]) -> int:
    """Publish as many waiting runs of each group as it has free slots (oldest first)."""
    return _wake(store, None, limit, publish)


def hand_on(store: Store, queue: str,
            publish: Callable[[list[tuple[str, str]]], Any]) -> int:
    """The slot a run in ``queue`` just freed goes to a waiting run at once, not at the
    timer's next tick: a limited queue with short runs would otherwise run at most one per
    tick per slot. All the queue's keys are looked at, as a total limit is shared by them.
    The timer's wake step stays the safety net."""
    return _wake(store, queue, 1_000, publish)


def shares(groups: Sequence[Mapping[Any, Any]], held: Mapping[str, Any],
           totals: Mapping[str, int | None], limit: int) -> dict[tuple[str, str], int]:
    """How many waiting runs to wake per group (task, key), at most ``limit`` in all, the
    groups waiting longest first. Each group gets what its own limit leaves free; a task
    with a total limit shares what the total leaves free over its keys one slot at a time,
    fewest executing first, then the longest waiting — so a key with a large backlog cannot
    take every freed slot from the others."""
    room: dict[tuple[str, str], int] = {}
    load: dict[tuple[str, str], int] = {}
    oldest: dict[tuple[str, str], str] = {}
    by_queue: dict[str, list[tuple[str, str]]] = {}
    for g in groups:
        k = (g["concurrency_queue"], g["concurrency_key"] or "")
        cap = effective_limit(g, held.get(k[0]))
        busy = int(g["executing"]) + int(g["coming"])
        room[k] = min(int(g["waiting"]), int(g["waiting"]) if cap is None else cap - busy)
        load[k], oldest[k] = busy, str(g["oldest"] or "")
        by_queue.setdefault(k[0], []).append(k)
    out: dict[tuple[str, str], int] = {}
    for queue, keys in by_queue.items():
        total = totals.get(queue)
        if total is None:
            out.update({k: room[k] for k in keys if room[k] > 0})
            continue
        # at most the batch's worth of slots handed out here, one at a time from a heap of
        # the keys with room: O(slots × log keys), whatever the number of keys or the total
        left = min(total - sum(load[k] for k in keys), limit)
        heap = [(load[k], oldest[k], k) for k in keys if room[k] > 0]
        heapq.heapify(heap)
        while left > 0 and heap:
            busy, since, k = heapq.heappop(heap)
            out[k] = out.get(k, 0) + 1
            left -= 1
            if out[k] < room[k]:
                heapq.heappush(heap, (busy + 1, since, k))
    capped: dict[tuple[str, str], int] = {}
    budget = limit
    for k in sorted(out, key=lambda k: oldest[k]):
        if budget <= 0:
            break
        capped[k] = min(out[k], budget)
        budget -= capped[k]
    return capped


def _oldest_waiting(conn: Connection, want: Mapping[tuple[str, str], int],
                    postgres: bool) -> list[tuple[str, str]]:
    """(id, queue) of each group's ``want`` oldest waiting runs, locked (skipping runs
    another waker holds). On Postgres one statement whatever the number of groups (a
    LATERAL index scan per group: 1,000 groups took ~1 s as 1,000 statements); SQLite, the
    embedded default, asks group by group."""
    if not want:
        return []
    if postgres:
        groups = json.dumps([{"t": queue, "k": key, "n": n}
                             for (queue, key), n in want.items()])
        return [tuple(row) for row in conn.execute(_OLDEST_WAITING_PG, {"groups": groups})]
    r = t.runs.c
    picked: list[tuple[str, str]] = []
    for (queue, key), n in want.items():
        picked += [tuple(row) for row in conn.execute(
            select(r.id, r.queue)
            .where(
                r.concurrency_queue == queue,
                r.concurrency_key == key,
                r.waiting_for_slot,
                r.status == RunStatus.QUEUED,
            )
            .order_by(r.id)
            .limit(n)
            .with_for_update(skip_locked=True)
        ).all()]
    return picked


_OLDEST_WAITING_PG = text("""
SELECT l.id, l.queue
FROM jsonb_to_recordset(CAST(:groups AS jsonb)) AS g(t text, k text, n int)
CROSS JOIN LATERAL (
  SELECT r.id, r.queue FROM runs AS r
  WHERE r.concurrency_queue = g.t AND r.concurrency_key = g.k
    AND r.waiting_for_slot AND r.status = 'QUEUED'
  ORDER BY r.id LIMIT g.n
  FOR UPDATE OF r SKIP LOCKED
) AS l
""")


def _wake(store: Store, queue: str | None, limit: int,
          publish: Callable[[list[tuple[str, str]]], Any]) -> int:
    r = t.runs.c
    now = utcnow()
    with store.engine.begin() as conn:
        groups = wake_groups(conn, store.is_postgres, queue, limit)
        if not any(g["waiting"] for g in groups):
            return 0
        held = controls(conn)
        want = shares(groups, held, totals(conn, {g["concurrency_queue"] for g in groups}),
                      limit)
        picked = _oldest_waiting(conn, want, store.is_postgres)
        if not picked:
            return 0
        ids = [run_id for run_id, _ in picked]
        # marked woken before the messages go out, so a worker that takes one at once
        # finds the row as this step left it (its claim waits for this commit)
        conn.execute(
            update(t.runs)
            .where(r.id.in_(ids), r.status == RunStatus.QUEUED, r.waiting_for_slot)
            .values(
                waiting_for_slot=False, available_at=now, updated_at=now,
                # a run whose publish fails is left to publish_due (published_at NULL)
                published_at=None,
            )
        )
        sent = set(publish(picked) or ())
        if sent:
            conn.execute(
                update(t.runs)
                .where(r.id.in_(sent), r.status == RunStatus.QUEUED)
                .values(published_at=now)
            )
        woken = len(ids)
    return woken
