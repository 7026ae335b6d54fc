"""Group commit for ``POST /api/v1/tasks/{id}/trigger``.

Each trigger costs an INSERT (a commit) and a broker publish (an AMQP transaction) plus a
thread hop; under load those, not the HTTP work, set the rate. Requests that arrive while the
writes in flight (at most ``MAX_IN_FLIGHT``) are busy wait for one and then go together:
one INSERT of all their runs, one
publish burst, one thread hop. A request that finds nothing in flight is written at once,
so an idle server adds no latency; under load batches grow with the arrival rate.

A batch that fails as a whole (say, one row the database refuses) is retried row by row, so
each request gets its own answer and one bad run never fails the others.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.concurrency import run_in_threadpool

from runtime.trigger import RunHandle, insert_and_publish

#: runs per INSERT at most (a request's own run is never split)
MAX_BATCH = 256
#: writes in flight at once per process: while one waits on Postgres and the broker, the
#: next can already go (bench/api.py on 2 cores: 1 → ~865 req/s, 2 → ~1,010, 3 → 943,
#: 4 → 798: more in flight means smaller batches, and the CPU per run grows)
MAX_IN_FLIGHT = 2


class TriggerBatcher:
    def __init__(self, rt: Any):
        self.rt = rt
        self._pending: list[tuple[dict[str, Any], asyncio.Future[RunHandle]]] = []
        self._in_flight = 0
        self._drainers: set[asyncio.Future[None]] = set()  # held: a bare task may be collected
        #: batches written and runs in them (for the benchmark's report)
        self.batches = 0
        self.runs = 0

    async def submit(self, row: dict[str, Any]) -> RunHandle:
        future: asyncio.Future[RunHandle] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        if self._in_flight < MAX_IN_FLIGHT:
            self._in_flight += 1
            drainer = asyncio.ensure_future(self._drain())
            self._drainers.add(drainer)
            drainer.add_done_callback(self._drainers.discard)
        return await future

    async def _drain(self) -> None:
        try:
            # one turn of the event loop first: requests whose bytes already arrived are
            # parsed in it and join this batch instead of paying for a write of their own
            await asyncio.sleep(0)
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                await self._write(batch)
        finally:
            self._in_flight -= 1

    async def _write(self, batch: list[tuple[dict[str, Any], asyncio.Future[RunHandle]]]) -> None:
        rows = [row for row, _ in batch]
        try:
            handles = await run_in_threadpool(_insert, self.rt, rows)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], error=exc)
                return
            for one in batch:  # find the culprit: every other request still succeeds
                await self._write([one])
            return
        self.batches += 1
        self.runs += len(rows)
        for (_, future), handle in zip(batch, handles, strict=True):
            _settle(future, result=handle)


def _insert(rt: Any, rows: list[dict[str, Any]]) -> list[RunHandle]:
    # published marks are deferred (one UPDATE per flush for all requests), as for one trigger
    return insert_and_publish(rt, rows, defer_marks=True)


def _settle(
    future: asyncio.Future[RunHandle],
    *,
    result: RunHandle | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():  # the client went away and its request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]
