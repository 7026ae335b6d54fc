"""``buster-jobs schedules create|list|show|update|delete|activate|deactivate``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _flag(args: argparse.Namespace, name: str) -> Any:
    from .schedules_api import _UNSET

    value = getattr(args, name, None)
    return _UNSET if value is None else value


def cmd_schedules(args: argparse.Namespace) -> int:
    from . import schedules_api as api

    action = args.action
    if action == "create":
        if not args.task or not args.cron:
            raise SystemExit("schedules create needs --task and --cron")
        s = api.create(
            task=args.task,
            cron=args.cron,
            timezone=args.timezone or "UTC",
            external_id=args.external_id,
            deduplication_key=args.deduplication_key,
            skip_if_active=bool(args.skip_if_active),
        )
        _print(s.to_dict())
        return 0
    if action == "list":
        page = api.list_schedules(
            task=args.task, active=args.active, cursor=args.cursor, limit=args.limit
        )
        for s in page.data:
            state = "active" if s.active else "inactive"
            nxt = f"{s.next_run:%Y-%m-%d %H:%M:%S}Z" if s.next_run else "-"
            print(
                f"{s.id}  {s.type:<11} {state:<8} {s.task:<24} {s.cron!r:<18} "
                f"{s.timezone:<20} next={nxt}"
            )
        if page.next_cursor:
            print(f"next page: --cursor {page.next_cursor}", file=sys.stderr)
        return 0
    if not args.schedule_id:
        raise SystemExit(f"schedules {action} needs a schedule id")
    sid = args.schedule_id
    if action == "show":
        result = api.retrieve(sid)
    elif action == "update":
        result = api.update(
            sid,
            cron=_flag(args, "cron"),
            timezone=_flag(args, "timezone"),
            external_id=_flag(args, "external_id"),
            skip_if_active=_flag(args, "skip_if_active"),
        )
    elif action == "delete":
        result = api.delete(sid)
    elif action == "activate":
        result = api.activate(sid)
    else:
        result = api.deactivate(sid)
    _print(result.to_dict())
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "schedules", help="cron schedules: create, list, show, update, delete, (de)activate"
    )
    p.add_argument(
        "action",
        choices=["create", "list", "show", "update", "delete", "activate", "deactivate"],
    )
    p.add_argument("schedule_id", nargs="?")
    p.add_argument("--task", help="scheduled task id (create; list filter)")
    p.add_argument("--cron", help='crontab(5) expression, e.g. "0 9 * * 1-5"')
    p.add_argument("--timezone", help="IANA timezone (default UTC)")
    p.add_argument("--external-id")
    p.add_argument("--deduplication-key", help="create: update the schedule with this key")
    skip = p.add_mutually_exclusive_group()
    skip.add_argument(
        "--skip-if-active",
        dest="skip_if_active",
        action="store_true",
        default=None,
        help="skip a tick while the previous run is not final",
    )
    skip.add_argument("--no-skip-if-active", dest="skip_if_active", action="store_false")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--active", dest="active", action="store_true", default=None)
    act.add_argument("--inactive", dest="active", action="store_false")
    p.add_argument("--cursor")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(fn=cmd_schedules)
