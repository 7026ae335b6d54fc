"""``buster-jobs run-webhooks list|test|retry|add|remove``: ops' look at the endpoints POSTed
when runs end — those of ``BUSTER_RUN_WEBHOOKS`` and those added at runtime — never showing
their URLs' paths or secrets."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def _secret_arg(value: str | None, what: str) -> str | None:
    """A URL or secret from ``@file`` or ``env:VAR`` (kept out of shell history and ``ps``),
    or as given."""
    if value is None:
        return None
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_text().strip()
        except OSError as exc:
            raise SystemExit(f"cannot read the {what} from {value[1:]}: {exc.strerror}"
                             ) from None
    if value.startswith("env:"):
        found = os.environ.get(value[4:])
        if not found:
            raise SystemExit(f"the {what}'s variable {value[4:]} is not set")
        return found
    return value


def _add(args: argparse.Namespace) -> int:
    from . import run_webhook_endpoints as endpoints

    url = _secret_arg(args.url, "url")
    if url is None:
        raise SystemExit("run-webhooks add needs --url (a URL, @file or env:VAR)")
    try:
        shown = endpoints.add(
            args.name, url, format=args.format, secret=_secret_arg(args.secret, "secret"),
            statuses=args.status, tasks=args.task, tags=args.tag,
            timeout_seconds=args.timeout, max_attempts=args.max_attempts,
            replace=args.replace, by=f"cli:{os.environ.get('USER', '?')}")
    except endpoints.RunWebhookError as exc:
        raise SystemExit(str(exc)) from None
    print(json.dumps(shown))
    return 0


def cmd_run_webhooks(args: argparse.Namespace) -> int:
    from . import get_runtime
    from . import run_webhook_endpoints as stored
    from . import run_webhooks as rw

    rt = get_runtime()
    if args.action == "add":
        return _add(args)
    if args.action == "remove":
        if args.name is None:
            raise SystemExit("run-webhooks remove needs the endpoint's name")
        try:
            stored.remove(args.name, by=f"cli:{os.environ.get('USER', '?')}")
        except stored.RunWebhookNotFoundError as exc:
            raise SystemExit(str(exc)) from None
        print(json.dumps({"name": args.name, "removed": True}))
        return 0
    endpoints = stored.current(rt)
    if args.action == "list":
        for endpoint in stored.describe(rt):
            print(json.dumps(endpoint))
        if not endpoints:
            print("no run webhooks: set BUSTER_RUN_WEBHOOKS or buster-jobs run-webhooks add",
                  file=sys.stderr)
        return 0
    if args.action == "retry":
        if args.name is not None and args.name not in endpoints:
            raise SystemExit(f"no run webhook named {args.name!r} "
                             f"(configured: {', '.join(endpoints) or 'none'})")
        print(json.dumps({"requeued": rw.retry_failed(rt.store, args.name)}))
        return 0
    if args.name is None or args.name not in endpoints:
        raise SystemExit(f"run-webhooks test needs the name of a configured endpoint "
                         f"(configured: {', '.join(endpoints) or 'none'})")
    try:
        rw.send_test(endpoints[args.name], args.name, rt.settings.dashboard_public_url)
    except rw.DeliveryError as exc:
        raise SystemExit(f"run webhook {args.name} ({endpoints[args.name].host()}): "
                         f"{exc}") from None
    print(json.dumps({"name": args.name, "delivered": True}))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("run-webhooks", help="endpoints POSTed when runs end: list them with "
                       "their deliveries, send a test, retry the failed deliveries, or add "
                       "and remove endpoints at runtime")
    p.add_argument("action", choices=["list", "test", "retry", "add", "remove"])
    p.add_argument("name", nargs="?",
                   help="test, add, remove: the endpoint; retry: only this one")
    p.add_argument("--url", help="add: where to POST — the URL, @file or env:VAR")
    p.add_argument("--format", choices=["standard", "slack"], default="standard")
    p.add_argument("--secret", help="add: a whsec_ signing secret — @file or env:VAR")
    p.add_argument("--status", action="append",
                   help="add: a final status to post (repeat; default: the failed ones)")
    p.add_argument("--task", action="append", help="add: only runs of this task (repeat)")
    p.add_argument("--tag", action="append", help="add: only runs with this tag (repeat)")
    p.add_argument("--timeout", type=float, default=10.0, help="add: seconds per POST")
    p.add_argument("--max-attempts", type=int, default=8)
    p.add_argument("--replace", action="store_true", help="add: over a stored endpoint")
    p.set_defaults(fn=cmd_run_webhooks)
