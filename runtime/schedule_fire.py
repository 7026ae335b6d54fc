"""Turn cron ticks into runs, in batches, exactly once across scheduler replicas.

Every replica sees every tick (each runs the same cron jobs). A tick becomes a run only in
the replica whose INSERT of the ``(schedule_id, fire_time)`` row succeeds; that insert and
the run rows commit in ONE transaction, so a replica killed mid-write leaves either both or
neither (the other replica then claims the tick). The run also carries an idempotency key
made of schedule id + fire time, so a duplicate tick is harmless even without that table.

Ticks are queued by the scheduler thread and written by one writer thread in batches (one
transaction per ``schedule_fire_batch_size`` ticks): 10,000 schedules firing on the same
minute cost ~10 transactions. Run messages are published by a second thread after commit;
a publish lost to a crash is re-sent by the timer loop (``published_at`` stays empty).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .durations import utcnow
from .idempotency import create as idempotency_key
from .schedule_times import upcoming
from .store import schedules as sql
from .task import get_task
from .trigger import build_row

log = logging.getLogger("buster.scheduler")

_STOP = object()


@dataclass(frozen=True)
class Tick:
    schedule_id: str
    fire_time: datetime  # nominal, aware UTC
    catch_up: bool = False


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None


class FireWriter:
    """Queue of ticks → fire rows + runs (batched) → published messages."""

    def __init__(self, runtime: Any, clock: Callable[[], datetime] = utcnow):
        self.rt = runtime
        self.settings = runtime.settings
        self.clock = clock
        self._ticks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._publish: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self.counts = {"fired": 0, "skipped": 0, "missed": 0, "taken": 0, "gone": 0}

    # ----------------------------------------------------------------- threads
    def start(self) -> None:
        for name, target in (("writer", self._write_loop), ("publisher", self._publish_loop)):
            th = threading.Thread(target=target, name=f"buster-sched-{name}", daemon=True)
            th.start()
            self._threads.append(th)

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, publish it, then stop."""
        self._ticks.put(_STOP)
        if self._threads:
            self._threads[0].join(timeout)
        self._publish.put(_STOP)
        for th in self._threads[1:]:
            th.join(timeout)
        self._threads = []

    def submit(self, tick: Tick) -> None:
        self._ticks.put(tick)

    def _write_loop(self) -> None:
        size = self.settings.schedule_fire_batch_size
        linger = self.settings.schedule_fire_linger_seconds
        stopping = False
        while not stopping:
            item = self._ticks.get()
            if item is _STOP:
                return
            batch = [item]
            deadline = time.monotonic() + linger
            while len(batch) < size:
                try:
                    item = self._ticks.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            self._write_with_retry(batch)

    def _write_with_retry(self, batch: list[Tick]) -> None:
        delay = 0.1
        while batch:
            try:
                self.write(batch)
                return
            except Exception:
                # store down or a deadlock victim: try again while the ticks are in grace
                # (write() drops the ones that fell out of it)
                log.exception("writing %d schedule fires failed; retrying", len(batch))
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _publish_loop(self) -> None:
        while True:
            items = self._publish.get()
            if items is _STOP:
                return
            try:
                sent = self.rt.publisher.publish(items)
                self.rt.store.mark_published(sent)
            except Exception:
                # the runs stay unpublished; the timer loop publishes them
                log.exception("publishing %d scheduled runs failed", len(items))

    # ----------------------------------------------------------------- one batch
    def write(self, ticks: Sequence[Tick]) -> dict[str, int]:
        """Claim and fire ``ticks`` in one transaction. Returns what happened, by kind."""
        now = self.clock()
        grace = self.settings.schedule_misfire_grace_seconds
        fresh: dict[tuple[str, datetime], Tick] = {}
        out = {"fired": 0, "skipped": 0, "missed": 0, "taken": 0, "gone": 0}
        for tk in ticks:
            if (now - tk.fire_time).total_seconds() > grace:
                out["missed"] += 1
                log.warning(
                    "schedule %s missed its %s tick (more than %.0f s late): not fired",
                    tk.schedule_id,
                    tk.fire_time.isoformat(),
                    grace,
                    extra={"action": "schedule_missed", "schedule_id": tk.schedule_id},
                )
                continue
            fresh.setdefault((tk.schedule_id, tk.fire_time), tk)
        if fresh:
            self._write_fresh(sorted(fresh.values(), key=lambda x: x.fire_time), now, out)
        for k, v in out.items():
            self.counts[k] += v
        return out

    def _write_fresh(self, ticks: list[Tick], now: datetime, out: dict[str, int]) -> None:
        store = self.rt.store
        allow = self.settings.test_only_cron_seconds_field
        ids = list(dict.fromkeys(tk.schedule_id for tk in ticks))
        to_publish: list[tuple[str, str]] = []
        with store.engine.begin() as conn:
            scheds = {r["id"]: r for r in sql.for_firing(store, conn, ids, ticks[0].fire_time)}
            busy = sql.active_run_schedules(
                conn, [i for i in ids if i in scheds and scheds[i]["skip_if_active"]]
            )
            last: dict[str, datetime | None] = {i: r["last_fire"] for i, r in scheds.items()}
            fire_rows, run_rows = [], {}
            for tk in ticks:
                sch = scheds.get(tk.schedule_id)
                if sch is None:  # deleted or deactivated since this replica last reloaded
                    out["gone"] += 1
                    continue
                fire = {
                    "schedule_id": sch["id"],
                    "fire_time": tk.fire_time,
                    "created_at": now,
                    "run_id": None,
                    "skipped": False,
                    "reason": None,
                }
                if sch["id"] in busy:
                    prev_id, prev_status = busy[sch["id"]]
                    fire.update(
                        skipped=True, reason=f"skip_if_active: run {prev_id} is still {prev_status}"
                    )
                else:
                    row = self._run_row(sch, tk, last[sch["id"]], now, allow)
                    fire["run_id"] = row["id"]
                    run_rows[(sch["id"], tk.fire_time)] = row
                    last[sch["id"]] = tk.fire_time
                    if sch["skip_if_active"]:  # a later tick in this batch sees this run
                        busy[sch["id"]] = (row["id"], row["status"])
                fire_rows.append(fire)
            claimed = sql.claim_fires(store, conn, fire_rows)
            out["taken"] += len(fire_rows) - len(claimed)
            mine = [row for key, row in run_rows.items() if key in claimed]
            inserted = sql.insert_runs(store, conn, mine)
            for row in mine:
                if row["id"] not in inserted:  # same tick fired before (fire row purged)
                    self._link_existing(conn, row)
            out["fired"] += len(inserted)
            out["skipped"] += sum(
                1
                for fr in fire_rows
                if fr["skipped"] and (fr["schedule_id"], fr["fire_time"]) in claimed
            )
            to_publish = [
                (r["id"], r["queue"])
                for r in mine
                if r["id"] in inserted and r["status"] == "QUEUED"
            ]
        if to_publish and self.rt.can_publish:
            if self._threads:
                self._publish.put(to_publish)
            else:  # used synchronously (tests, one-off fires)
                self._publish_now(to_publish)

    def _publish_now(self, items: list[tuple[str, str]]) -> None:
        self.rt.store.mark_published(self.rt.publisher.publish(items))

    def _run_row(
        self, sch: Any, tk: Tick, last: datetime | None, now: datetime, allow: bool
    ) -> dict[str, Any]:
        payload = {
            "schedule_id": sch["id"],
            "type": sch["type"],
            "timestamp": tk.fire_time.isoformat(),
            "last_timestamp": _iso(last),
            "timezone": sch["timezone"],
            "external_id": sch["external_id"],
            "upcoming": [
                u.isoformat()
                for u in upcoming(sch["cron"], sch["timezone"], tk.fire_time, 5, allow)
            ],
        }
        key = idempotency_key(["schedule", sch["id"], tk.fire_time.isoformat()], scope="global")
        task_id = sch["task_identifier"]
        row = build_row(
            self.rt,
            task_id,
            payload,
            {"idempotency_key": key},
            get_task(task_id),
            trigger_function="schedule",
            now=now,
        )
        row["schedule_id"] = sch["id"]
        return row

    def _link_existing(self, conn: Any, row: dict[str, Any]) -> None:
        from sqlalchemy import select

        from .store import tables as t

        existing = conn.execute(
            select(t.runs.c.id).where(
                t.runs.c.task_identifier == row["task_identifier"],
                t.runs.c.idempotency_key == row["idempotency_key"],
            )
        ).scalar()
        if existing is not None:
            fire_time = datetime.fromisoformat(row["payload"]["timestamp"])
            sql.link_fire(conn, row["schedule_id"], fire_time, existing)
