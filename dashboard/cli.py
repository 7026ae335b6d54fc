"""``buster-jobs dashboard`` and ``buster-jobs apikeys create|list|revoke``."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _dashboard(args: argparse.Namespace) -> int:
    import uvicorn

    from runtime.logs import setup_logging

    from .app import create_app
    from .config import DashboardSettings

    settings = DashboardSettings()
    setup_logging()
    common: dict[str, Any] = {
        "host": args.host or settings.host,
        "port": args.port or settings.port,
        "log_level": "warning",
        "access_log": False,  # access lines would carry query strings; our own logs suffice
        "timeout_graceful_shutdown": 5,
    }
    if args.workers > 1:  # several processes: uvicorn imports the factory in each
        uvicorn.run("dashboard.app:create_app", factory=True, workers=args.workers, **common)
    else:
        uvicorn.run(create_app(settings=settings), **common)
    return 0


def _keys(args: argparse.Namespace) -> int:
    from runtime import get_runtime
    from runtime.store import dashboard as sql

    from .auth import create_key

    store = get_runtime().store
    if args.keys_cmd == "create":
        key_id, plain = create_key(store, args.name)
        print(f"created API key {key_id} ({args.name})")
        print(plain)
        print("store it now: it is not shown again (only its hash is kept)")
        return 0
    if args.keys_cmd == "list":
        rows = [
            {
                "id": r["id"],
                "name": r["name"],
                "prefix": r["prefix"] + "…",
                "created_at": r["created_at"],
                "last_used_at": r["last_used_at"],
                "revoked": r["revoked_at"] is not None,
            }
            for r in sql.list_api_keys(store)
        ]
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if sql.revoke_api_key(store, args.id):
        print(f"revoked {args.id}")
        return 0
    print(f"no active API key {args.id}")
    return 1


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("dashboard", help="ops dashboard and Trigger.dev-compatible API")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.set_defaults(fn=_dashboard)
    k = subparsers.add_parser("apikeys", help="create, list and revoke API keys")
    ks = k.add_subparsers(dest="keys_cmd", required=True)
    c = ks.add_parser("create", help="create a key (printed once)")
    c.add_argument("name")
    ks.add_parser("list", help="list keys (never the keys themselves)")
    r = ks.add_parser("revoke", help="revoke a key")
    r.add_argument("id")
    k.set_defaults(fn=_keys)
