"""``buster-jobs``: worker, scheduler, dev, migrate, trigger, runs, queues, tokens."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any


def _json_arg(value: str | None) -> Any:
    if value is None:
        return None
    if value.startswith("@"):
        try:
            value = Path(value[1:]).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise SystemExit(f"cannot read {value[1:]!r}: {exc}") from None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"invalid JSON: {exc}") from None


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _modules(args: argparse.Namespace) -> list[str]:
    from .settings import Settings

    return list(args.modules) or Settings().task_module_list()


def cmd_worker(args: argparse.Namespace) -> int:
    from .worker import run_worker

    queues = [q for part in (args.queues or ["default"]) for q in part.split(",") if q]
    return run_worker(queues, args.processes, args.threads, not args.no_timer, _modules(args))


def cmd_migrate(args: argparse.Namespace) -> int:
    from .bootstrap import configure

    configure(migrate=True)
    print("store is at the latest schema")
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    from .scheduler_process import run_scheduler

    return run_scheduler(_modules(args))


def _embedded_worker(modules: list[str], threads: int = 4, task_id: str | None = None) -> Any:
    from .bootstrap import configure
    from .task import all_tasks
    from .worker import WorkerProcess, import_task_modules

    rt = configure()
    import_task_modules(modules)
    if task_id is not None and task_id not in all_tasks():
        # Triggered, it would wait in PENDING_VERSION for a worker that is not coming.
        raise SystemExit(
            f"unknown task id {task_id!r}: no task module imported here defines it "
            f"(known: {', '.join(sorted(all_tasks())) or 'none'}; modules come from "
            "--modules or BUSTER_TASK_MODULES)"
        )
    wp = WorkerProcess(rt, _all_queues(rt), threads=threads, timer=True)
    wp.start()
    return rt, wp


def _all_queues(rt: Any) -> list[str]:
    from .task import all_tasks

    s = rt.settings
    return list(
        dict.fromkeys(
            [s.default_queue, s.large_queue, *(t.queue_name(s) for t in all_tasks().values())]
        )
    )


def cmd_dev(args: argparse.Namespace) -> int:
    from .logs import setup_logging

    setup_logging()
    rt, wp = _embedded_worker(_modules(args), args.threads)
    from .scheduler_process import start_dev_scheduler

    sched = start_dev_scheduler(rt)  # cron fires too, like `trigger dev`
    print(
        f"buster-jobs dev: worker + timer loop on {rt.settings.store_url().split('///')[-1]}; "
        "Ctrl-C to stop",
        file=sys.stderr,
    )
    stop = threading.Event()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    sched.stop()
    wp.stop(timeout=5)
    return 0


def _wait_with_status(run_id: str, timeout: float | None) -> Any:
    from .runs import retrieve

    last, deadline = None, None if timeout is None else time.monotonic() + timeout
    tty = sys.stderr.isatty()
    while True:
        run = retrieve(run_id)
        line = f"{run.id}  {run.status.value}  attempt {run.attempt_count}"
        progress = run.metadata.get("progress") if isinstance(run.metadata, dict) else None
        if isinstance(progress, int | float):
            line += f"  {progress:.0%}"
        if line != last:
            print(
                ("\r" + line.ljust(70)) if tty else line,
                end="" if tty else "\n",
                file=sys.stderr,
                flush=True,
            )
            last = line
        if run.is_completed:
            if tty:
                print(file=sys.stderr)
            return run
        if deadline is not None and time.monotonic() > deadline:
            raise SystemExit(f"\ngave up waiting after {timeout} s; run is {run.status.value}")
        time.sleep(0.2)


def _trigger_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for name in ("idempotency_key", "delay", "ttl", "queue", "machine"):
        if getattr(args, name, None):
            opts[name] = getattr(args, name)
    if args.tag:
        opts["tags"] = args.tag
    if args.max_attempts:
        opts["max_attempts"] = args.max_attempts
    return opts


def _run_summary(run: Any) -> dict[str, Any]:
    from .runs import logs

    d = run.to_dict()
    d["logs"] = [
        {"level": r["level"], "message": r["message"], "attributes": r["attributes"]}
        for r in logs(run.id)
    ]
    return d


def cmd_trigger(args: argparse.Namespace) -> int:
    from .statuses import RunStatus
    from .trigger import tasks

    handle = tasks.trigger(args.task_id, _json_arg(args.payload), **_trigger_options(args))
    print(json.dumps({"id": handle.id, "is_cached": handle.is_cached}))
    made = handle.retrieve()
    if made.status == RunStatus.PENDING_VERSION and made.pending_queue:
        print(f"no task, worker or queue() declares queue {made.pending_queue!r}: the run "
              "waits in PENDING_VERSION until one does (check the queue's name)",
              file=sys.stderr)
    elif made.status == RunStatus.PENDING_VERSION:
        print(f"no worker has registered task {args.task_id!r} yet: the run waits in "
              "PENDING_VERSION until one does (check the task id and the workers' task "
              "modules)", file=sys.stderr)
    if not args.wait:
        return 0
    run = _wait_with_status(handle.id, args.timeout)
    _print({"id": run.id, "status": run.status.value, "output": run.output, "error": run.error})
    return 0 if run.is_success else 1


def cmd_run(args: argparse.Namespace) -> int:
    """Trigger a task and run it in this process on the embedded default, then exit."""
    from .trigger import tasks

    rt, wp = _embedded_worker(_modules(args), threads=2, task_id=args.task_id)
    try:
        handle = tasks.trigger(args.task_id, _json_arg(args.payload), **_trigger_options(args))
        run = _wait_with_status(handle.id, args.timeout)
    finally:
        wp.stop(timeout=5)
    if args.json:
        _print(_run_summary(run))
    else:
        from .render import render_run

        print(render_run(_run_summary(run)))
    return 0 if run.is_success else 1


def cmd_runs(args: argparse.Namespace) -> int:
    from . import runs

    if args.action == "list":
        page = runs.list(
            status=args.status or None,
            task=args.task or None,
            tag=args.tag or None,
            period=args.period,
            concurrency_queue=args.concurrency_queue or None,
            limit=args.limit,
            cursor=args.cursor,
        )
        for r in page:
            print(
                f"{r.id}  {r.status.value:<15} {r.task_identifier:<24} "
                f"attempts={r.attempt_count}  {r.created_at:%Y-%m-%d %H:%M:%S}"
            )
        if page.next_cursor:
            print(f"next page: --cursor {page.next_cursor}", file=sys.stderr)
        return 0
    if args.action == "prune":
        return _prune_runs(args.older_than)
    if args.action in ("cancel", "replay") and not args.run_id:
        return _bulk_runs(args)
    if not args.run_id:
        raise SystemExit(f"runs {args.action} needs a run id")
    if args.action == "show":
        _print(_run_summary(runs.retrieve(args.run_id)))
    elif args.action == "cancel":
        _print({"canceled": runs.cancel(args.run_id)})
    elif args.action == "replay":
        h = runs.replay(args.run_id)
        _print({"id": h.id})
    return 0


def _bulk_runs(args: argparse.Namespace) -> int:
    """``runs cancel|replay`` with filters instead of a run id: how many match, and with
    ``--yes`` the action on all of them (runtime/bulk.py)."""
    from . import runs

    filters = {"status": args.status, "task": args.task, "tag": args.tag,
               "period": args.period, "concurrency_queue": args.concurrency_queue}
    if not any(filters.values()):
        raise SystemExit(f"runs {args.action} needs a run id, or filters (--status, --task, "
                         "--tag, --concurrency-queue, --period) for every run they match")
    if args.background:  # a bulk action the timer loops work through (runtime/bulk_actions)
        if not args.yes:
            raise SystemExit(f"runs {args.action} --background acts at once: add --yes")
        start = runs.bulk.cancel if args.action == "cancel" else runs.bulk.replay
        action = start(by=f"cli:{os.environ.get('USER', '?')}", **filters)
        _print(action.to_dict())
        print(f"follow it with: buster-jobs bulk show {action.id} [--wait]", file=sys.stderr)
        return 0
    act = runs.bulk_cancel if args.action == "cancel" else runs.bulk_replay
    result = act(max_runs=args.max_runs, dry_run=not args.yes, after=args.after, **filters)
    _print(result.to_dict())
    if not args.yes:
        more = "+" if result.truncated else ""
        print(f"{result.count}{more} runs match; add --yes to {args.action} them",
              file=sys.stderr)
    elif result.next:
        print(f"more runs match: add --after {result.next} to go on with the older ones",
              file=sys.stderr)
    return 0


def _prune_runs(older_than: str | None) -> int:
    """What the timer loop's retention does, at once and to the end."""
    from .bootstrap import configure
    from .durations import parse_duration
    from .store.retention import prune_pass

    rt = configure()
    try:
        seconds = (parse_duration(older_than) if older_than
                   else rt.settings.run_retention_days * 86400.0)
    except ValueError as exc:
        raise SystemExit(f"--older-than: {exc}") from None
    if not seconds or seconds <= 0:
        raise SystemExit("nothing to prune: give --older-than (e.g. 30d), or set "
                         "BUSTER_RUN_RETENTION_DAYS")
    deleted, others = prune_pass(rt.store, seconds, rt.settings.retention_batch_size)
    _print({"older_than_seconds": seconds, "runs": deleted, **(others or {})})
    return 0


def cmd_queues(args: argparse.Namespace) -> int:
    """Ops' hold on a queue, a task's own or a shared one (runtime/queues.py)."""
    from . import queues
    from .queues import who

    if args.action == "list":
        for q in queues.list():
            limit = "∞" if q.concurrency_limit is None else str(q.concurrency_limit)
            if q.override is not None:
                limit += f" (override; code: {'∞' if q.base is None else q.base})"
            if q.total_concurrency_limit is not None:
                limit += f" per key, {q.total_concurrency_limit} in all"
                if q.total_override is not None:
                    limit += f" (override; code: {'∞' if q.total is None else q.total})"
            shared = f" shared by {', '.join(q.tasks) or 'no task yet'}" if q.shared else ""
            print(f"{q.name:<28} {'PAUSED' if q.paused else 'active':<7} "
                  f"running={q.running:<4} queued={q.queued:<6} limit={limit}{shared}")
        return 0
    if not args.task_id:
        raise SystemExit(f"queues {args.action} needs a queue: a task id or a shared queue's "
                         "name")
    by = who("cli")
    if args.action == "show":
        q = queues.retrieve(args.task_id)
    elif args.action == "pause":
        q = queues.pause(args.task_id, by=by)
    elif args.action == "resume":
        q = queues.resume(args.task_id, by=by)
    elif args.action in ("override", "override-total"):
        if args.limit is None:
            raise SystemExit(f"queues {args.action} needs a limit: "
                             f"queues {args.action} TASK_ID N")
        fn = (queues.override_concurrency_limit if args.action == "override"
              else queues.override_total_concurrency_limit)
        try:
            q = fn(args.task_id, args.limit, by=by)
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
    else:
        q = queues.reset_concurrency_limit(args.task_id)
    _print(q.to_dict())
    return 0


def cmd_tokens(args: argparse.Namespace) -> int:
    from .waits import complete_token, create_token, retrieve_token

    if args.action == "complete":
        res = complete_token(args.token_id, _json_arg(args.data))
        _print(
            {
                "success": res.success,
                "already_completed": res.already_completed,
                "status": res.status,
            }
        )
        if res.already_completed:
            print("token was already completed; nothing changed", file=sys.stderr)
    elif args.action == "create":
        tok = create_token(timeout=args.timeout)
        _print({"id": tok.id, "timeout_at": tok.timeout_at})
    else:
        _print(retrieve_token(args.token_id))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="buster-jobs", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    w = sub.add_parser("worker", help="consume queues and run tasks")
    w.add_argument(
        "--queues",
        "-Q",
        action="append",
        default=None,
        help="queue to consume; repeat or comma-separate (default: default)",
    )
    w.add_argument(
        "-p",
        "--processes",
        type=int,
        default=1,
        help="worker processes (explicit: the pod's CPUs, not the node's)",
    )
    w.add_argument("-t", "--threads", type=int, default=8, help="threads per process")
    w.add_argument("--no-timer", action="store_true", help="do not run a timer-loop thread")
    w.add_argument("modules", nargs="*", help="task modules (default: BUSTER_TASK_MODULES)")
    w.set_defaults(fn=cmd_worker)

    s = sub.add_parser("scheduler", help="cron fires + the timer loop")
    s.add_argument("modules", nargs="*")
    s.set_defaults(fn=cmd_scheduler)

    m = sub.add_parser("migrate", help="bring the store to the latest schema")
    m.set_defaults(fn=cmd_migrate)

    d = sub.add_parser("dev", help="worker + timer loop in one process (embedded default)")
    d.add_argument("-t", "--threads", type=int, default=4)
    d.add_argument("modules", nargs="*")
    d.set_defaults(fn=cmd_dev)

    def trigger_opts(x: argparse.ArgumentParser) -> None:
        x.add_argument("task_id")
        x.add_argument("--payload", help="JSON, or @file")
        x.add_argument("--idempotency-key")
        x.add_argument("--delay")
        x.add_argument("--ttl")
        x.add_argument("--queue")
        x.add_argument("--machine")
        x.add_argument("--tag", action="append")
        x.add_argument("--max-attempts", type=int)
        x.add_argument("--timeout", type=float, help="seconds to wait before giving up")

    t = sub.add_parser("trigger", help="trigger a task by id")
    trigger_opts(t)
    t.add_argument("--wait", action="store_true", help="wait for the run, with a status line")
    t.set_defaults(fn=cmd_trigger)

    r = sub.add_parser("run", help="trigger a task and run it here on the embedded default")
    trigger_opts(r)
    r.add_argument("--json", action="store_true")
    r.add_argument("--modules", dest="modules", nargs="*", default=[])
    r.set_defaults(fn=cmd_run)

    rs = sub.add_parser("runs", help="list, show, cancel, replay (one, or every run filters "
                        "match) or prune runs")
    rs.add_argument("action", choices=["list", "show", "cancel", "replay", "prune"])
    rs.add_argument("run_id", nargs="?")
    rs.add_argument("--older-than", help="prune: runs finished this long ago (e.g. 30d); "
                    "default BUSTER_RUN_RETENTION_DAYS")
    rs.add_argument("--status", action="append")
    rs.add_argument("--task", action="append")
    rs.add_argument("--tag", action="append")
    rs.add_argument("--concurrency-queue", action="append",
                    help="runs in this concurrency queue's slots: a task's id or a shared "
                    "queue's name")
    rs.add_argument("--limit", type=int, default=25)
    rs.add_argument("--cursor")
    rs.add_argument("--period", help="only runs created within this long before now (e.g. 1h)")
    rs.add_argument("--yes", action="store_true",
                    help="cancel/replay with filters: act (without it, only count)")
    rs.add_argument("--max-runs", type=int, default=10_000,
                    help="cancel/replay with filters: at most this many runs")
    rs.add_argument("--after", help="cancel/replay with filters: go on below this run id "
                    "(the 'next' of a call that stopped at --max-runs)")
    rs.add_argument("--background", action="store_true",
                    help="cancel/replay with filters and --yes: as a bulk action the timer "
                    "loops work through, however many runs match (see buster-jobs bulk)")
    rs.set_defaults(fn=cmd_runs)

    qs = sub.add_parser(
        "queues", help="concurrency queues (each task's own, and shared ones): list; show, "
        "pause, resume, override or reset one"
    )
    qs.add_argument("action", choices=["list", "show", "pause", "resume", "override",
                                       "override-total", "reset"])
    qs.add_argument("task_id", nargs="?", metavar="queue",
                    help="a task id (its own queue) or a shared queue's name")
    qs.add_argument("limit", nargs="?", type=int,
                    help="override: the new limit per key; override-total: over all keys")
    qs.set_defaults(fn=cmd_queues)

    tk = sub.add_parser("tokens", help="wait tokens")
    tk.add_argument("action", choices=["complete", "create", "show"])
    tk.add_argument("token_id", nargs="?")
    tk.add_argument("--data", help="JSON, or @file")
    tk.add_argument("--timeout")
    tk.set_defaults(fn=cmd_tokens)
    _register_extensions(sub)
    return p


#: modules that add their own subcommands with ``register(subparsers)`` (skipped if absent)
EXTENSIONS = (
    "runtime.schedules_cli",  # buster-jobs schedules …
    "runtime.run_webhooks_cli",  # buster-jobs run-webhooks …
    "runtime.bulk_cli",  # buster-jobs bulk …
    "actors.introspect_data.cli",  # buster-jobs datasources …
    "dashboard.cli",  # buster-jobs dashboard, apikeys …
    "runtime.health",  # buster-jobs healthcheck worker|scheduler (Kubernetes probes)
)


def _register_extensions(sub: Any) -> None:
    import importlib

    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # that area is not installed / not built yet
            raise
        module.register(sub)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command not in ("worker", "dev", "scheduler"):
        import logging

        logging.basicConfig(level=os.environ.get("BUSTER_LOG_LEVEL", "WARNING"))
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from .errors import BusterError

    try:
        return int(args.fn(args) or 0)
    except BusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (SettingsError, ValidationError) as exc:
        if isinstance(exc, ValidationError) and exc.title != "Settings":
            raise  # not the environment's fault
        # a BUSTER_* variable that does not parse: say which, never its value (settings
        # hide their input in errors)
        cause = exc.__cause__ if isinstance(exc, SettingsError) else None
        detail = f" ({type(cause).__name__}: not valid JSON?)" if cause is not None else ""
        print(f"error: invalid setting: {exc}{detail}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
