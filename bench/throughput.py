"""Throughput and latency of the buster-jobs runtime against bare Dramatiq, in one run.

    .venv/bin/python bench/throughput.py [--runs N] [--mode concurrent|prefill|both]

Measures, on the same RabbitMQ and Postgres, with one worker of ``--processes`` × ``--threads``:

1. bare Dramatiq: a no-op actor (``bench/bare_actors.py``), messages/s;
2. bare Dramatiq + the two conditional UPDATEs a run needs at minimum (claim, complete) on a
   plain table, psycopg 3 autocommit, one connection per thread: the *floor*, messages/s;
3. the runtime: a no-op task (``bench/tasks.py``) triggered with ``tasks.batch_trigger``
   (``--batch`` per call) from a producer process, run by ``buster-jobs worker``, runs/s;
4. the ratios runtime/bare and runtime/floor (target ≥ 0.8× the floor);
5. trigger→EXECUTING latency (``started_at − created_at`` of the run rows) at a steady
   ``--rate`` single ``tasks.trigger`` calls/s for ``--latency-seconds``; target p50 ≤ 10 ms.

Two ways to measure throughput (``--mode``):

* ``concurrent`` (what issue 2 asks): the worker is up, then the producer starts; the rate is
  N / (first enqueue → last message processed). Producer and worker share the 2 CPUs.
* ``prefill``: the producer enqueues everything first, then the worker starts; the rate is
  N / (first message processed → last). The worker's drain rate alone.

``--rounds N`` (prefill) adds N − 1 more floor/runtime pairs, each pair's two phases run back
to back (the order alternating), and reports the ratio of every pair and their median. Even
back-to-back pairs spread by ±0.15 on a shared 2-core VM (bench/README.md): the median over
several pairs is the figure to quote, not one pair's ratio.

Everything is dedicated and thrown away: a fresh database (``--db``, dropped at the end) and
RabbitMQ queues named ``--prefix``-* (deleted at the end). See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `bench.*` for this process and spawned producers

BIN = Path(sys.executable).parent
TASK_ID = "bench-noop"
#: what Dramatiq logs when the runtime's middleware drops a message whose claim matched nothing
SKIPPED = "was skipped"


# ---------------------------------------------------------------------------- config
def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@dataclass
class Config:
    runs: int
    bare_runs: int
    batch: int
    processes: int
    threads: int
    mode: str
    rate: float
    latency_seconds: float
    admin_url: str
    db: str
    amqp_url: str
    prefix: str
    log_level: str
    keep: bool
    profile: Path | None
    py_spy: str | None
    py_spy_gil: bool = False
    whatif: str = ""
    load_at_start: float = field(default_factory=lambda: os.getloadavg()[0])
    skip_latency: bool = False
    rounds: int = 1
    only: set[str] = field(default_factory=lambda: {"bare", "floor", "runtime"})
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="buster-bench-")))
    key: str = field(default_factory=lambda: _fernet_key())

    @property
    def db_url(self) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path="/" + self.db))

    @property
    def queues(self) -> dict[str, str]:
        return {k: f"{self.prefix}-{k}" for k in ("bare", "floor", "runtime")}

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        old = env.get("PYTHONPATH")
        env.update(
            PYTHONPATH=str(REPO) + (os.pathsep + old if old else ""),
            BUSTER_DATABASE_URL=self.db_url,
            BUSTER_BROKER_URL=self.amqp_url,
            BUSTER_TASK_MODULES="bench.tasks",
            BUSTER_DATA_DIR=str(self.workdir / "data"),
            BUSTER_ENCRYPTION_KEY=self.key,
            BUSTER_LOG_LEVEL=self.log_level,
            # small timings: a stopping worker returns fast, presence shows up at once
            BUSTER_SHUTDOWN_TIMEOUT_SECONDS="5",
            BUSTER_WORKER_PRESENCE_SECONDS="1",
            BENCH_AMQP_URL=self.amqp_url,
            BENCH_PG_URL=self.db_url,
            BENCH_NOOP_QUEUE=self.queues["bare"],
            BENCH_FLOOR_QUEUE=self.queues["floor"],
            BENCH_RUNTIME_QUEUE=self.queues["runtime"],
            BENCH_WHATIF=self.whatif,
        )
        env.update(extra)
        return env


# ---------------------------------------------------------------------------- services
def pg(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def create_database(cfg: Config) -> None:
    with pg(cfg.admin_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{cfg.db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{cfg.db}"')
    with pg(cfg.db_url) as conn:
        conn.execute(
            "CREATE TABLE bench_runs (id text PRIMARY KEY, status text NOT NULL, "
            "payload jsonb, created_at timestamptz NOT NULL DEFAULT now(), "
            "started_at timestamptz, finished_at timestamptz)"
        )


def drop_database(cfg: Config) -> None:
    with pg(cfg.admin_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{cfg.db}" WITH (FORCE)')


def delete_queues(cfg: Config) -> None:
    """Delete our queues and Dramatiq's delay (.DQ) and dead-letter (.XQ) companions."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(cfg.amqp_url))
    try:
        ch = conn.channel()
        for q in cfg.queues.values():
            for name in (q, f"{q}.DQ", f"{q}.XQ"):
                ch.queue_delete(name)
    finally:
        conn.close()


# ---------------------------------------------------------------------------- processes
class Service:
    """A worker subprocess in its own session; stopped by its pid (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cfg: Config):
        self.name = name
        self.log_path = cfg.workdir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def count_in_log(self, needle: str) -> int:
        self._log.flush()
        return self.log_path.read_text(errors="replace").count(needle)

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:
            return []

    def check(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)  # the group we created
                self.proc.wait(5)
        self._log.close()


def wait_for(what: str, cond: Any, timeout: float, service: Service | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if service is not None:
            service.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def spawn(target: Any, *args: Any) -> tuple[Any, Any]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, out), name=target.__name__, daemon=True)
    p.start()
    return p, out


def collect(proc: Any, out: Any, timeout: float) -> dict[str, Any]:
    try:
        result = out.get(timeout=timeout)
    except Exception as exc:
        proc.terminate()
        raise RuntimeError(
            f"producer {proc.name} produced no result (exit {proc.exitcode})"
        ) from exc
    proc.join(10)
    if "error" in result:
        raise RuntimeError(f"producer {proc.name} failed:\n{result['error']}")
    return result


class Profiler:
    """py-spy record on every worker child process while a phase runs (``--profile``)."""

    def __init__(self, cfg: Config, service: Service, label: str):
        self.procs: list[subprocess.Popen[bytes]] = []
        if cfg.profile is None or cfg.py_spy is None:
            return
        cfg.profile.mkdir(parents=True, exist_ok=True)
        for pid in service.children() or [service.proc.pid]:
            self.procs.append(
                subprocess.Popen(
                    [
                        cfg.py_spy,
                        "record",
                        "--pid",
                        str(pid),
                        "--rate",
                        "200",
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--output",
                        str(cfg.profile / f"{label}-{pid}.txt"),
                        *(["--gil"] if cfg.py_spy_gil else []),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(1.0)  # let py-spy attach before the clock starts

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGINT)
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(20)


# ---------------------------------------------------------------------------- CPU
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def _broker_pids() -> list[int]:
    """RabbitMQ's Erlang VM on this host (none when the broker runs elsewhere)."""
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):
            if comm.read_text().strip() == "beam.smp":
                pids.append(int(comm.parent.name))
    return pids


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


@dataclass
class Cpu:
    """CPU seconds the worker's process tree and the bench database's Postgres backends
    used while ``done`` messages/runs were processed."""

    worker_s: float
    postgres_s: float
    done: int
    broker_s: float = 0.0  # RabbitMQ's Erlang VM (the whole node: other queues count too)
    pg_background_s: float = 0.0  # WAL writer, checkpointer, background writer

    def per(self, seconds: float) -> float:
        return 1e6 * seconds / max(1, self.done)  # µs per message


class CpuMeter:
    def __init__(self, cfg: Config, service: Service, exclude_backend: int | None = None):
        self.cfg, self.service, self.exclude = cfg, service, exclude_backend
        self.admin = pg(cfg.admin_url)

    def snapshot(self) -> tuple[dict[int, float], ...]:
        worker = {p: c for p in _tree(self.service.proc.pid) if (c := _cpu_seconds(p)) is not None}
        rows = self.admin.execute(
            "SELECT pid, datname IS NULL FROM pg_stat_activity "
            "WHERE datname = %s OR (datname IS NULL AND backend_type <> 'client backend')",
            (self.cfg.db,),
        ).fetchall()
        backends = {
            p: c
            for p, bg in rows
            if not bg and p != self.exclude and (c := _cpu_seconds(p)) is not None
        }
        background = {p: c for p, bg in rows if bg and (c := _cpu_seconds(p)) is not None}
        broker = {p: c for p in _broker_pids() if (c := _cpu_seconds(p)) is not None}
        return worker, backends, broker, background

    @staticmethod
    def used(start: dict[int, float], end: dict[int, float]) -> float:
        return sum(c - start.get(p, 0.0) for p, c in end.items())

    def close(self) -> None:
        self.admin.close()


def drain(
    what: str,
    progress: Any,
    n: int,
    service: Service,
    meter: CpuMeter | None,
    timeout: float = 600,
    on_stall: Any = None,
    baseline: Any = None,
) -> Cpu | None:
    """Poll ``progress()`` (messages or runs done) until ``n``. CPU is metered from
    ``baseline`` (a snapshot taken before the producer started) or else from the first poll
    that sees progress (prefill: so worker start-up does not count) to the end."""
    deadline, last, last_change = time.monotonic() + timeout, -1, time.monotonic()
    start: Any = baseline
    start_count = 0
    while True:
        count = progress()
        if meter is not None and start is None and count > 0:
            start, start_count = meter.snapshot(), count
        if count >= n:
            break
        if count != last:
            last, last_change = count, time.monotonic()
        service.check()
        if time.monotonic() - last_change > 30 or time.monotonic() > deadline:
            detail = on_stall() if on_stall else ""
            raise RuntimeError(
                f"{what}: stalled at {count}/{n}{detail}; worker log: {service.log_path}"
            )
        time.sleep(0.05)
    if meter is None or start is None:
        return None
    end = meter.snapshot()
    return Cpu(
        meter.used(start[0], end[0]),
        meter.used(start[1], end[1]),
        count - start_count,
        meter.used(start[2], end[2]),
        meter.used(start[3], end[3]),
    )


# ---------------------------------------------------------------------------- producers
def _guard(out: Any, fn: Any) -> None:
    import traceback

    try:
        out.put(fn())
    except BaseException:  # noqa: BLE001 - report any failure to the parent
        out.put({"error": traceback.format_exc()})


def produce_bare(kind: str, n: int, batch: int, env: dict[str, str], out: Any) -> None:
    """Enqueue ``n`` messages (floor: insert their rows first, ``batch`` per statement)."""
    os.environ.update(env)

    def body() -> dict[str, Any]:
        from bench import bare_actors as ba

        actor = ba.bench_noop if kind == "bare" else ba.bench_two_updates
        conn = pg(ba.PG_URL) if kind == "floor" else None
        ba.broker.declare_queue(actor.queue_name)
        first = time.time()
        for start in range(0, n, batch):
            ids = [f"run_{i:026d}" for i in range(start, min(n, start + batch))]
            if conn is not None:
                conn.execute(
                    f"INSERT INTO {ba.TABLE} (id, status, payload) "
                    "SELECT i, 'QUEUED', jsonb_build_object('i', i) FROM unnest(%s::text[]) i",
                    (ids,),
                )
            for run_id in ids:
                actor.send(run_id)
        last = time.time()
        ba.broker.close()
        return {"first": first, "last": last}

    _guard(out, body)


def produce_runtime(n: int, batch: int, env: dict[str, str], out: Any) -> None:
    """``tasks.batch_trigger`` the no-op task by id, ``batch`` runs per call."""
    os.environ.update(env)

    def body() -> dict[str, Any]:
        from runtime import get_runtime, tasks

        rt = get_runtime()  # connect and check the schema before the clock starts
        first = time.time()
        for start in range(0, n, batch):
            tasks.batch_trigger(
                TASK_ID, [{"payload": {"i": i}} for i in range(start, min(n, start + batch))]
            )
        last = time.time()
        rt.close()
        return {"first": first, "last": last}

    _guard(out, body)


def produce_paced(rate: float, seconds: float, env: dict[str, str], out: Any) -> None:
    """Single ``tasks.trigger`` calls at a steady ``rate`` per second (after a warm-up)."""
    os.environ.update(env)

    def body() -> dict[str, Any]:
        from runtime import get_runtime, tasks

        rt = get_runtime()
        for _ in range(20):  # warm the connection pool and the definition cache
            tasks.trigger(TASK_ID, {"warmup": True})
        time.sleep(1.0)
        interval, total = 1.0 / rate, int(rate * seconds)
        calls: list[float] = []
        begin = next_at = time.perf_counter()
        for i in range(total):
            now = time.perf_counter()
            if now < next_at:
                time.sleep(next_at - now)
            t0 = time.perf_counter()
            tasks.trigger(TASK_ID, {"i": i})
            calls.append(time.perf_counter() - t0)
            next_at += interval
        elapsed = time.perf_counter() - begin
        rt.close()
        return {"calls": calls, "sent": total, "elapsed": elapsed}

    _guard(out, body)


# ---------------------------------------------------------------------------- phases
@dataclass
class Rate:
    n: int
    first_enqueue: float
    last_enqueue: float
    first_done: float
    last_done: float
    cpu: Cpu | None = None
    skipped: int | None = None  # runtime: messages whose claim matched nothing (duplicates)

    @property
    def end_to_end(self) -> float:
        return self.n / max(1e-9, self.last_done - self.first_enqueue)

    @property
    def drain(self) -> float:
        return self.n / max(1e-9, self.last_done - self.first_done)

    @property
    def producer(self) -> float:
        return self.n / max(1e-9, self.last_enqueue - self.first_enqueue)


def _bare_stats(directory: Path) -> tuple[int, float, float]:
    count, first, last = 0, float("inf"), 0.0
    for f in directory.glob("*.json"):
        with contextlib.suppress(ValueError, OSError):
            s = json.loads(f.read_text())
            count += s["count"]
            if s["count"]:
                first, last = min(first, s["first"]), max(last, s["last"])
    return count, first, last


def bare_phase(cfg: Config, kind: str, n: int, prefill: bool, tag: str = "") -> Rate:
    """``kind`` "bare" (no-op actor) or "floor" (two UPDATEs)."""
    stats = cfg.workdir / f"{kind}-{'prefill' if prefill else 'concurrent'}{tag}"
    stats.mkdir()
    env = cfg.env(BENCH_STATS_DIR=str(stats))
    if kind == "floor":
        with pg(cfg.db_url) as conn:
            conn.execute("TRUNCATE bench_runs")
            conn.execute("VACUUM ANALYZE bench_runs")
    argv = [
        str(BIN / "dramatiq"),
        "bench.bare_actors",
        "--path",
        str(REPO),
        "-p",
        str(cfg.processes),
        "-t",
        str(cfg.threads),
        "-Q",
        cfg.queues[kind],
    ]
    producer_result: dict[str, Any] = {}
    if prefill:
        producer_result = collect(*spawn(produce_bare, kind, n, cfg.batch, env), timeout=600)
    service = Service(f"dramatiq-{kind}", argv, env, cfg)
    try:
        baseline, producer = None, None
        if not prefill:
            wait_for(
                "dramatiq workers",
                lambda: len(list(stats.glob("*.ready"))) >= cfg.processes,
                60,
                service,
            )
        meter = CpuMeter(cfg, service)
        try:
            if not prefill:
                baseline = meter.snapshot()
                producer = spawn(produce_bare, kind, n, cfg.batch, env)
            cpu = drain(
                f"{kind} messages processed",
                lambda: _bare_stats(stats)[0],
                n,
                service,
                meter,
                baseline=baseline,
            )
        finally:
            meter.close()
        if producer is not None:
            producer_result = collect(*producer, timeout=600)
        time.sleep(0.05)
        count, first, last = _bare_stats(stats)
    finally:
        service.stop()
    if kind == "floor":
        with pg(cfg.db_url) as conn:
            done = conn.execute(
                "SELECT count(*) FROM bench_runs WHERE status = 'COMPLETED'"
            ).fetchone()[0]
        if done != n:
            raise RuntimeError(f"floor: {done} of {n} rows COMPLETED")
    return Rate(n, producer_result["first"], producer_result["last"], first, last, cpu)


def _truncate_runs(cfg: Config) -> None:
    with pg(cfg.db_url) as conn:
        conn.execute("TRUNCATE runs, run_attempts, run_logs, run_tags, run_steps CASCADE")
        conn.execute("VACUUM ANALYZE runs")


def _count_completed(conn: Any) -> int:
    return int(conn.execute("SELECT count(*) FROM runs WHERE status = 'COMPLETED'").fetchone()[0])


def _wait_runs(
    cfg: Config, conn: Any, n: int, service: Service, meter: bool = False, producer: Any = None
) -> Cpu | None:
    """Poll one count query until ``n`` runs are COMPLETED; fail loudly if progress stops."""

    def by_status() -> str:
        rows = conn.execute("SELECT status, count(*) FROM runs GROUP BY 1").fetchall()
        return f"; runs by status: {dict(rows)}"

    m = CpuMeter(cfg, service, exclude_backend=conn.info.backend_pid) if meter else None
    baseline = m.snapshot() if m is not None and producer is not None else None
    if producer is not None:
        producer()
    try:
        return drain(
            "runtime runs COMPLETED",
            lambda: _count_completed(conn),
            n,
            service,
            m,
            on_stall=by_status,
            baseline=baseline,
        )
    finally:
        if m is not None:
            m.close()


def start_runtime_worker(cfg: Config, env: dict[str, str]) -> Service:
    argv = [
        str(BIN / "buster-jobs"),
        "worker",
        "--queues",
        cfg.queues["runtime"],
        "-p",
        str(cfg.processes),
        "-t",
        str(cfg.threads),
    ]
    service = Service("runtime-worker", argv, env, cfg)
    with pg(cfg.db_url) as conn:
        wait_for(
            "buster-jobs worker processes",
            lambda: conn.execute("SELECT count(*) FROM workers").fetchone()[0] >= cfg.processes,
            90,
            service,
        )
    time.sleep(0.5)  # consumers attach right after presence is written
    return service


def runtime_throughput(
    cfg: Config, service: Service | None, prefill: bool, tag: str = ""
) -> Rate:
    env = cfg.env()
    _truncate_runs(cfg)
    producer_result: dict[str, Any] = {}
    if prefill:
        assert service is None
        producer_result = collect(*spawn(produce_runtime, cfg.runs, cfg.batch, env), 600)
        service = start_runtime_worker(cfg, env)
    assert service is not None
    profiler = Profiler(cfg, service, f"runtime-{'prefill' if prefill else 'concurrent'}{tag}")
    skipped_before = service.count_in_log(SKIPPED)
    try:
        with pg(cfg.db_url) as conn:
            started: list[Any] = []

            def start_producer() -> None:
                started.extend(spawn(produce_runtime, cfg.runs, cfg.batch, env))

            cpu = _wait_runs(
                cfg,
                conn,
                cfg.runs,
                service,
                meter=True,
                producer=None if prefill else start_producer,
            )
            if not prefill:
                producer_result = collect(*started, 60)
            first_done, last_done = conn.execute(
                "SELECT extract(epoch FROM min(started_at)), extract(epoch FROM max(finished_at))"
                " FROM runs WHERE status = 'COMPLETED'"
            ).fetchone()
        time.sleep(0.5)  # duplicates published late still arrive
        skipped = service.count_in_log(SKIPPED) - skipped_before
    finally:
        profiler.stop()
        if prefill:
            service.stop()
    return Rate(
        cfg.runs,
        producer_result["first"],
        producer_result["last"],
        float(first_done),
        float(last_done),
        cpu,
        skipped,
    )


@dataclass
class Latency:
    sent: int
    elapsed: float
    latencies_ms: list[float]
    calls_ms: list[float]


def runtime_latency(cfg: Config, service: Service) -> Latency:
    env = cfg.env()
    _truncate_runs(cfg)
    proc, out = spawn(produce_paced, cfg.rate, cfg.latency_seconds, env)
    result = collect(proc, out, cfg.latency_seconds * 3 + 60)
    with pg(cfg.db_url) as conn:
        _wait_runs(cfg, conn, result["sent"] + 20, service)
        rows = conn.execute(
            "SELECT extract(epoch FROM started_at - created_at) * 1000 FROM runs "
            "WHERE status = 'COMPLETED' AND payload ? 'i'"
        ).fetchall()
    return Latency(
        result["sent"],
        result["elapsed"],
        [float(r[0]) for r in rows],
        [c * 1000 for c in result["calls"]],
    )


# ---------------------------------------------------------------------------- report
def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def report(
    cfg: Config,
    results: dict[str, dict[str, Rate]],
    latency: Latency | None,
    pairs: list[tuple[Rate, Rate]] | None = None,
) -> None:
    modes = [m for m in ("concurrent", "prefill") if any(m in r for r in results.values())]
    print()
    print(
        f"buster-jobs throughput — runtime {cfg.runs} runs (batch_trigger × {cfg.batch}), "
        f"bare {cfg.bare_runs} messages; one worker {cfg.processes} proc × {cfg.threads} "
        f"threads; {os.cpu_count()} CPUs"
    )
    head = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%h %cd", "--date=format:%H:%M"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "runtime"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"runtime at commit {head}{' + uncommitted changes' if dirty else ''}")
    if cfg.whatif:
        print(f"WHAT-IF prototypes active in the runtime worker: {cfg.whatif} (bench/whatif.py)")
    labels = {
        "bare": "1 bare Dramatiq, no-op actor",
        "floor": "2 bare Dramatiq + 2 UPDATEs (floor)",
        "runtime": "3 buster-jobs runtime, no-op task",
    }
    for mode in modes:
        what = (
            "first enqueue → last done; producer running alongside"
            if mode == "concurrent"
            else "queue filled first; first done → last done"
        )
        print(f"\n[{mode}] {what}")
        print(
            f"  {'':38}{'msgs|runs/s':>12}{'drain/s':>10}{'producer/s':>12}"
            f"{'worker CPU':>12}{'PG CPU':>10}{'PG bg':>9}{'broker':>9}"
        )
        for key, label in labels.items():
            r = results.get(key, {}).get(mode)
            if r is None:
                continue
            main = r.end_to_end if mode == "concurrent" else r.drain
            cpu = (
                f"{r.cpu.per(r.cpu.worker_s):>9,.0f} µs{r.cpu.per(r.cpu.postgres_s):>7,.0f} µs"
                f"{r.cpu.per(r.cpu.pg_background_s):>6,.0f} µs{r.cpu.per(r.cpu.broker_s):>6,.0f} µs"
                if r.cpu
                else ""
            )
            print(f"  {label:38}{main:>12,.0f}{r.drain:>10,.0f}{r.producer:>12,.0f}{cpu}")
        rt, bare, floor = (results.get(k, {}).get(mode) for k in ("runtime", "bare", "floor"))
        if rt is not None:

            def val(r: Rate, mode: str = mode) -> float:
                return r.end_to_end if mode == "concurrent" else r.drain

            ratio_b = f"{val(rt) / val(bare):.2f}×" if bare else "n/a"
            ratio_f = f"{val(rt) / val(floor):.2f}×" if floor else "n/a"
            verdict = ""
            if floor:
                verdict = " (target ≥ 0.80×: " + (
                    "met)" if val(rt) / val(floor) >= 0.8 else "NOT met)"
                )
            print(f"  4 ratios: runtime/bare {ratio_b}   runtime/floor {ratio_f}{verdict}")
            if rt.skipped:
                print(
                    f"  ! the runtime worker dropped {rt.skipped} unclaimable messages (duplicate "
                    "publishes) in this phase"
                )
    if pairs:
        ratios = [rt.drain / floor.drain for floor, rt in pairs]
        print(f"\n[prefill, {len(pairs)} floor/runtime pairs, each pair back to back]")
        for i, ((floor, rt), ratio) in enumerate(zip(pairs, ratios, strict=True), 1):
            print(f"  pair {i}: floor {floor.drain:>8,.0f}/s  runtime {rt.drain:>8,.0f}/s  "
                  f"ratio {ratio:.2f}×")
        med = statistics.median(ratios)
        print(f"  runtime/floor: median {med:.2f}× (min {min(ratios):.2f}×, max "
              f"{max(ratios):.2f}×); target ≥ 0.80×: {'met' if med >= 0.8 else 'NOT met'}")
    if latency is not None:
        lat, calls = latency.latencies_ms, latency.calls_ms
        print(
            f"\n5 trigger→EXECUTING latency, {latency.sent} single tasks.trigger calls at "
            f"{latency.sent / latency.elapsed:.0f}/s for {latency.elapsed:.1f} s "
            "(run.started_at − run.created_at, from the run rows)"
        )
        print(f"  {'':38}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
        print(
            f"  {'trigger → EXECUTING (ms)':38}"
            + "".join(f"{pct(lat, p):>9.1f}" for p in (50, 90, 99, 100))
        )
        print(
            f"  {'tasks.trigger call duration (ms)':38}"
            + "".join(f"{pct(calls, p):>9.1f}" for p in (50, 90, 99, 100))
        )
        achieved = latency.sent / latency.elapsed
        if achieved < 0.9 * cfg.rate:
            print(
                f"  ! the producer held only {achieved:.0f} of {cfg.rate:.0f} triggers/s: the "
                "machine is too busy for this number to mean much"
            )
        p50 = statistics.median(lat) if lat else float("nan")
        print(f"  target p50 ≤ 10 ms: {'met' if p50 <= 10 else 'NOT met'} (p50 {p50:.1f} ms)")
    print(
        "\n  CPU columns: CPU time per message/run of the worker's process tree, of the "
        "bench database's Postgres backends\n  (in concurrent mode the producer's backends "
        "count too), of Postgres's background processes (WAL writer, checkpointer, ...)\n  and of "
        "RabbitMQ's Erlang VM (the whole node, so in concurrent mode the producer's publishes "
        f"count too); load average now {os.getloadavg()[0]:.1f}"
    )
    if cfg.load_at_start > (os.cpu_count() or 1):
        print(
            f"  ! load average was {cfg.load_at_start:.1f} at the start on {os.cpu_count()} CPUs: "
            "other work shares the machine; compare the CPU columns rather than the rates"
        )
    print(f"\nlogs and stats: {cfg.workdir}")


# ---------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> Config:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5000, help="runs for the runtime phase")
    ap.add_argument(
        "--bare-runs", type=int, default=None, help="messages for phases 1–2 (default: --runs)"
    )
    ap.add_argument("--batch", type=int, default=1000, help="runs per batch_trigger call")
    ap.add_argument("-p", "--processes", type=int, default=2)
    ap.add_argument("-t", "--threads", type=int, default=8)
    ap.add_argument("--mode", choices=["concurrent", "prefill", "both"], default="both")
    ap.add_argument("--rate", type=float, default=100.0, help="latency phase triggers/s")
    ap.add_argument("--latency-seconds", type=float, default=10.0)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="prefill: floor/runtime pairs, each back to back; the median ratio is reported",
    )
    ap.add_argument(
        "--only",
        choices=["bare", "floor", "runtime"],
        action="append",
        help="run only these throughput phases (repeatable)",
    )
    ap.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="admin connection; the bench database is created next to it",
    )
    ap.add_argument("--db", default="buster_bench")
    ap.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    ap.add_argument("--prefix", default="bench", help="RabbitMQ queue name prefix")
    ap.add_argument("--log-level", default="INFO", help="BUSTER_LOG_LEVEL of the worker")
    ap.add_argument("--keep", action="store_true", help="keep the database and queues")
    ap.add_argument(
        "--whatif",
        default="",
        help="benchmark-only prototypes of proposed runtime changes in the worker, comma "
        "separated: noping,claim,finish,quiet (see bench/whatif.py)",
    )
    ap.add_argument("--profile", type=Path, help="py-spy raw profiles of runtime workers here")
    ap.add_argument("--py-spy", default=shutil.which("py-spy"), help="path to py-spy")
    ap.add_argument("--py-spy-gil", action="store_true", help="sample only threads holding the GIL")
    a = ap.parse_args(argv)
    cfg = Config(
        runs=a.runs,
        bare_runs=a.bare_runs or a.runs,
        batch=a.batch,
        processes=a.processes,
        threads=a.threads,
        mode=a.mode,
        rate=a.rate,
        latency_seconds=a.latency_seconds,
        admin_url=a.pg_url,
        db=a.db,
        amqp_url=a.amqp_url,
        prefix=a.prefix,
        log_level=a.log_level,
        keep=a.keep,
        profile=a.profile,
        py_spy=a.py_spy,
        py_spy_gil=a.py_spy_gil,
        whatif=a.whatif,
        skip_latency=a.skip_latency,
        rounds=max(1, a.rounds),
        only=set(a.only or ["bare", "floor", "runtime"]),
    )
    if cfg.rounds > 1 and (a.mode == "concurrent" or {"floor", "runtime"} - cfg.only):
        ap.error("--rounds needs the prefill mode and the floor and runtime phases")
    if cfg.profile is not None and cfg.py_spy is None:
        ap.error("--profile needs py-spy (pip install py-spy, or pass --py-spy PATH)")
    return cfg


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    only = cfg.only
    modes = ["concurrent", "prefill"] if cfg.mode == "both" else [cfg.mode]
    results: dict[str, dict[str, Rate]] = {}
    latency: Latency | None = None
    pairs: list[tuple[Rate, Rate]] = []
    started = time.monotonic()

    def step(msg: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    step(f"fresh database {cfg.db}, queues {cfg.prefix}-*; work dir {cfg.workdir}")
    create_database(cfg)
    delete_queues(cfg)
    try:
        for kind in ("bare", "floor"):
            if kind not in only:
                continue
            for mode in modes:
                step(f"{kind} Dramatiq, {mode}: {cfg.bare_runs} messages")
                r = bare_phase(cfg, kind, cfg.bare_runs, prefill=mode == "prefill")
                results.setdefault(kind, {})[mode] = r
                step(f"  {r.end_to_end:,.0f}/s end to end, {r.drain:,.0f}/s drain")
        if "runtime" in only or not cfg.skip_latency:
            step("migrate the store")
            subprocess.run(
                [str(BIN / "buster-jobs"), "migrate"],
                env=cfg.env(),
                cwd=REPO,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            step("start buster-jobs worker")
            service = start_runtime_worker(cfg, cfg.env())
            try:
                if "runtime" in only and "concurrent" in modes:
                    step(f"runtime, concurrent: {cfg.runs} runs")
                    r = runtime_throughput(cfg, service, prefill=False)
                    results.setdefault("runtime", {})["concurrent"] = r
                    step(f"  {r.end_to_end:,.0f}/s end to end, {r.drain:,.0f}/s drain")
                if not cfg.skip_latency:
                    step(f"latency: {cfg.rate:.0f} triggers/s for {cfg.latency_seconds:.0f} s")
                    latency = runtime_latency(cfg, service)
            finally:
                service.stop()
            if "runtime" in only and "prefill" in modes:
                step(f"runtime, prefill: {cfg.runs} runs")
                r = runtime_throughput(cfg, None, prefill=True)
                results.setdefault("runtime", {})["prefill"] = r
                step(f"  {r.drain:,.0f}/s drain")
        if cfg.rounds > 1:
            pairs.append((results["floor"]["prefill"], results["runtime"]["prefill"]))
            for i in range(2, cfg.rounds + 1):
                # Alternate which phase goes first, so a steady drift favours neither.
                order = ["runtime", "floor"] if i % 2 == 0 else ["floor", "runtime"]
                pair: dict[str, Rate] = {}
                for kind in order:
                    step(f"pair {i}: {kind}, prefill")
                    if kind == "floor":
                        pair[kind] = bare_phase(cfg, "floor", cfg.bare_runs, True, f"-{i}")
                    else:
                        pair[kind] = runtime_throughput(cfg, None, prefill=True, tag=f"-{i}")
                    step(f"  {pair[kind].drain:,.0f}/s drain")
                pairs.append((pair["floor"], pair["runtime"]))
    finally:
        if not cfg.keep:
            step("drop database and queues")
            with contextlib.suppress(Exception):
                delete_queues(cfg)
            with contextlib.suppress(Exception):
                drop_database(cfg)
    report(cfg, results, latency, pairs)
    step("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
