"""``buster-jobs datasources add|list|test|introspect|show|remove``.

No command prints a secret: credentials are shown only through ``safe_dict`` (masked) and
connector errors are scrubbed at the source.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from connectors import ConnectorError, safe_dict


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("datasources", help="warehouse connections and their catalogs")
    sub = p.add_subparsers(dest="ds_action", required=True)

    add = sub.add_parser("add", help="register a data source (credentials encrypted at rest)")
    add.add_argument("name")
    add.add_argument("--credentials", help="JSON object, @file, or - for stdin")
    add.add_argument("--type", dest="ds_type", help="postgres, mysql, snowflake, duckdb, …")
    for flag in ("host", "database", "user", "path"):
        add.add_argument(f"--{flag}")
    add.add_argument("--port", type=int)
    add.add_argument("--password-env", metavar="VAR",
                     help="read the password from this environment variable (never argv)")
    add.add_argument("--no-test", action="store_true", help="save without a connection test")
    add.set_defaults(fn=cmd_add)

    ls = sub.add_parser("list", help="registered data sources (no secrets)")
    ls.set_defaults(fn=cmd_list)

    test = sub.add_parser("test", help="connect and run a trivial query")
    test.add_argument("name")
    test.set_defaults(fn=cmd_test)

    intro = sub.add_parser("introspect", help="run introspect-data for a data source")
    intro.add_argument("name")
    intro.add_argument("--wait", action="store_true",
                       help="wait and print the catalog (on the embedded default the run "
                            "executes in this process)")
    intro.add_argument("--no-profile", action="store_true", help="skip column profiling")
    intro.add_argument("--schema", action="append", dest="schemas")
    intro.add_argument("--table", action="append", dest="tables")
    intro.add_argument("--exclude-table", action="append", dest="exclude_tables")
    intro.add_argument("--timeout", type=float, help="seconds to wait before giving up")
    intro.set_defaults(fn=cmd_introspect)

    show = sub.add_parser("show", help="summary of the stored catalog")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="the whole catalog as JSON")
    show.add_argument("--max-tables", type=int, default=50)
    show.set_defaults(fn=cmd_show)

    rm = sub.add_parser("remove", help="delete a data source and its catalogs")
    rm.add_argument("name")
    rm.set_defaults(fn=cmd_remove)


def _guard(fn: Any) -> Any:
    """Connector errors (bad credentials, unreachable host) as one clean line, exit 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(fn(args) or 0)
        except ConnectorError as exc:
            print(f"error: [{exc.code}] {exc.message}", file=sys.stderr)
            return 2

    return run


@_guard
def cmd_add(args: argparse.Namespace) -> int:
    from connectors import connect, parse_credentials
    from runtime import datasources as ds

    creds = parse_credentials(_credentials(args))
    if not args.no_test:
        with connect(creds) as conn:
            conn.test_connection()
    src = ds.add(args.name, creds)
    print(json.dumps({"id": src.id, "name": src.name, "type": src.type,
                      "credentials": safe_dict(creds)}, indent=2, default=str))
    return 0


def _credentials(args: argparse.Namespace) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if args.credentials:
        raw = args.credentials
        if raw == "-":
            raw = sys.stdin.read()
        elif raw.startswith("@"):
            raw = Path(raw[1:]).read_text()
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            # the position only: echoing the text could print a password
            raise SystemExit(
                f"error: --credentials is not valid JSON (at char {exc.pos})"
            ) from None
    flags = {"type": args.ds_type, "host": args.host, "port": args.port,
             "database": args.database, "user": args.user, "path": args.path}
    data.update({k: v for k, v in flags.items() if v is not None})
    if args.password_env:
        if args.password_env not in os.environ:
            raise SystemExit(f"error: environment variable {args.password_env} is not set")
        data["password"] = os.environ[args.password_env]
    return data


def cmd_list(args: argparse.Namespace) -> int:
    from runtime import datasources as ds

    sources = ds.list_all()
    if not sources:
        print("no data sources yet: `buster-jobs datasources add NAME --type … `, "
              "or introspect the bundled `sample`", file=sys.stderr)
    for s in sources:
        info = ds.catalog_info(s.id)
        cat = (f"catalog {info.introspected_at:%Y-%m-%d %H:%M} "
               f"({info.counts.get('tables', 0)} tables, {info.counts.get('views', 0)} views)"
               if info else "not introspected")
        print(f"{s.id}  {s.name:<24} {s.type:<10} {cat}")
    return 0


@_guard
def cmd_test(args: argparse.Namespace) -> int:
    from runtime import datasources as ds

    src = ds.get(args.name)
    with src.connect() as conn:
        info = conn.test_connection()
    print(f"ok: {src.name} ({info.warehouse_type}"
          f"{', ' + info.server_version if info.server_version else ''}) "
          f"in {info.latency_ms:.0f} ms")
    return 0


def cmd_introspect(args: argparse.Namespace) -> int:
    from runtime import datasources as ds
    from runtime import get_runtime

    src = ds.get(args.name)  # fail fast on an unknown name (and register `sample`)
    filters = {k: v for k in ("schemas", "tables", "exclude_tables")
               if (v := getattr(args, k))}
    payload = {"data_source": src.id, "profile": not args.no_profile,
               "filters": filters or None}
    embedded = get_runtime().settings.is_embedded_broker
    if embedded and args.wait:
        return _run_here(payload, args.timeout)
    from .actor import introspect_data

    handle = introspect_data.trigger(payload)
    print(json.dumps({"id": handle.id}))
    if not args.wait:
        if embedded:
            print("queued: a `buster-jobs dev` process runs it (or use --wait)", file=sys.stderr)
        return 0
    from runtime.cli import _wait_with_status

    return _report(_wait_with_status(handle.id, args.timeout))


def _run_here(payload: dict[str, Any], timeout: float | None) -> int:
    """Embedded default: the in-process broker only reaches this process, so run a worker
    here for as long as the run takes (what ``buster-jobs run`` does)."""
    from runtime.cli import _embedded_worker, _wait_with_status
    from runtime.settings import Settings

    _rt, wp = _embedded_worker(Settings().task_module_list(), threads=2)
    try:
        from .actor import introspect_data

        handle = introspect_data.trigger(payload)
        run = _wait_with_status(handle.id, timeout)
    finally:
        wp.stop(timeout=5)
    return _report(run)


def _report(run: Any) -> int:
    out = run.output if isinstance(run.output, dict) else {}
    if not run.is_success or not out.get("success"):
        err = out.get("error") or run.error or {}
        print(f"introspection failed ({run.id}, {run.status.value}): "
              f"[{err.get('code')}] {err.get('message')}", file=sys.stderr)
        return 1
    print(f"run {run.id}: {out.get('tables')} tables, {out.get('views')} views, "
          f"{out.get('columns')} columns, {out.get('profiled_tables')} profiled "
          f"in {out.get('duration_ms')} ms\n")
    return _show(out["data_source_id"], as_json=False, max_tables=50)


def cmd_show(args: argparse.Namespace) -> int:
    return _show(args.name, as_json=args.json, max_tables=args.max_tables)


def _show(name: str, *, as_json: bool, max_tables: int) -> int:
    from runtime import datasources as ds

    from .summary import render_catalog

    src = ds.get(name)
    info = ds.catalog_info(src.id)
    catalog = ds.load_catalog(src.id)
    if info is None or catalog is None:
        print(f"{src.name} has no catalog yet: buster-jobs datasources introspect {src.name}",
              file=sys.stderr)
        return 1
    if as_json:
        print(catalog.model_dump_json(indent=2))
    else:
        print(render_catalog(src.info(), info, catalog, max_tables))
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from runtime import datasources as ds

    ds.remove(args.name)
    print(f"removed {args.name}")
    return 0
