"""``buster-jobs bulk list|show ID|abort ID``: bulk actions in the background
(runtime/bulk_actions.py), started with ``buster-jobs runs cancel|replay … --background``."""

from __future__ import annotations

import argparse
import json
from typing import Any


def cmd_bulk(args: argparse.Namespace) -> int:
    from . import bulk_actions

    if args.action == "list":
        for action in bulk_actions.list(args.limit):
            print(json.dumps(action.to_dict()))
        return 0
    if not args.id:
        raise SystemExit(f"bulk {args.action} needs the action's id (bulk_…)")
    try:
        if args.action == "abort":
            action = bulk_actions.abort(args.id)
        elif args.wait:
            action = bulk_actions.poll(args.id, poll_interval=0.5, timeout=args.timeout)
        else:
            action = bulk_actions.retrieve(args.id)
    except bulk_actions.BulkActionNotFoundError as exc:
        raise SystemExit(str(exc)) from None
    except TimeoutError as exc:
        raise SystemExit(str(exc)) from None
    print(json.dumps(action.to_dict()))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("bulk", help="bulk actions in the background (runs cancel|replay … "
                       "--background): list them, show one's progress, abort one")
    p.add_argument("action", choices=["list", "show", "abort"])
    p.add_argument("id", nargs="?")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--wait", action="store_true", help="show: until it is done")
    p.add_argument("--timeout", type=float, help="show --wait: give up after this long")
    p.set_defaults(fn=cmd_bulk)
