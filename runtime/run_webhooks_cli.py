"""``buster-jobs run-webhooks list|test|retry``: ops' look at the endpoints of
``BUSTER_RUN_WEBHOOKS`` (never their URLs' paths or secrets)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def cmd_run_webhooks(args: argparse.Namespace) -> int:
    from . import get_runtime
    from . import run_webhooks as rw

    rt = get_runtime()
    endpoints = rt.settings.run_webhooks
    if args.action == "list":
        for endpoint in rw.describe(rt.store, endpoints):
            print(json.dumps(endpoint))
        if not endpoints:
            print("no run webhooks: set BUSTER_RUN_WEBHOOKS", file=sys.stderr)
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
                       "their deliveries, send a test, or retry the failed deliveries")
    p.add_argument("action", choices=["list", "test", "retry"])
    p.add_argument("name", nargs="?", help="test: the endpoint; retry: only this one")
    p.set_defaults(fn=cmd_run_webhooks)
