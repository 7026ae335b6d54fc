"""Run webhook endpoints added at runtime, beside those of ``BUSTER_RUN_WEBHOOKS``.

An endpoint in the setting needs a redeploy of every process that ends runs; ops adding a
Slack alert during an incident cannot wait for one. These are stored in the run store and
take effect in every process without a restart::

    from runtime import run_webhook_endpoints as endpoints

    endpoints.add("oncall", "https://hooks.slack.com/services/…", format="slack")
    endpoints.add("billing", "https://billing.internal/runs", secret="whsec_…",
                  statuses=["COMPLETED", "FAILED"], tasks=["send-invoice"])
    endpoints.remove("oncall")

(also ``buster-jobs run-webhooks add|remove`` and ``/api/v1/run-webhooks``). An endpoint is
validated as the setting's are (:class:`runtime.run_webhooks.RunWebhook`) and stored whole —
URL and secret included — as one Fernet token under the runtime's encryption key: the table
never holds them in clear, and nothing here returns them.

**When it takes effect.** The statement that ends a run flags it for the statuses some
endpoint wants (runtime/run_webhooks.py), from what its process knows. Each process reads the
stored endpoints again at most every ``BUSTER_RUN_WEBHOOK_REFRESH_SECONDS`` (5), so an endpoint
added covers the runs that end from then on in every process — in the adding process at once.
A run that ended before a process saw the endpoint is not posted to it; an endpoint removed
gets no new delivery once each process has seen the removal (one already recorded fails as
"endpoint no longer configured").
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select, update

from . import run_webhooks, secrets
from .bootstrap import get_runtime
from .durations import utcnow
from .errors import BusterError
from .run_webhooks import NAME_PATTERN, RunWebhook
from .store import tables as t

log = logging.getLogger("buster.run_webhooks")


class RunWebhookError(BusterError, ValueError):
    """An endpoint that cannot be added as asked (its message never holds the URL or the
    secret)."""


class RunWebhookExistsError(RunWebhookError):
    """The name is taken (by a stored endpoint, or one of ``BUSTER_RUN_WEBHOOKS``)."""


class RunWebhookNotFoundError(BusterError, LookupError):
    """No stored endpoint has that name."""


# what this process last read of each store: (read at, endpoints in force, their statuses)
_CACHE: dict[int, tuple[float, dict[str, RunWebhook], frozenset[str]]] = {}
_lock = threading.Lock()


def forget() -> None:
    with _lock:
        _CACHE.clear()


def _plain(endpoint: RunWebhook) -> str:
    doc = endpoint.model_dump(mode="json", exclude_none=True)
    doc["url"] = endpoint.url.get_secret_value()
    if endpoint.secret is not None:
        doc["secret"] = endpoint.secret.get_secret_value()
    return json.dumps(doc)


def stored(store: Any, key: str) -> dict[str, RunWebhook]:
    """The stored endpoints, decrypted (read now). One that no longer decrypts or validates
    (the encryption key changed) is left out and logged by name."""
    e = t.run_webhook_endpoints.c
    with store.autocommit.connect() as conn:
        rows = conn.execute(select(e.name, e.config).order_by(e.name)).all()
    out: dict[str, RunWebhook] = {}
    for name, config in rows:
        try:
            out[name] = RunWebhook.model_validate_json(
                secrets.decrypt(key, bytes(config).decode()))
        except Exception as exc:  # noqa: BLE001 - one bad row must not stop the others
            log.error("stored run webhook %s cannot be read (%s): skipped", name,
                      type(exc).__name__, extra={"action": "run_webhook_unreadable",
                                                 "endpoint": name})
    return out


def _in_force(rt: Any) -> tuple[float, dict[str, RunWebhook], frozenset[str]]:
    key = id(rt.store)
    hit = _CACHE.get(key)
    if hit is not None and time.monotonic() - hit[0] < rt.settings.run_webhook_refresh_seconds:
        return hit
    with _lock:
        hit = _CACHE.get(key)
        if hit is not None and (time.monotonic() - hit[0]
                                < rt.settings.run_webhook_refresh_seconds):
            return hit
        try:
            found = stored(rt.store, rt.encryption_key)
        except Exception:
            # a run ending meanwhile must not fail for it: the last read (or the setting's
            # alone) stays in force until the next refresh
            log.warning("cannot read the stored run webhooks: keeping the last read",
                        exc_info=True, extra={"action": "run_webhook_refresh_failed"})
            found = hit[1] if hit is not None else {}
        # the setting's names win: add() refuses them, but a setting may gain one later
        endpoints = {**found, **rt.settings.run_webhooks}
        hit = _CACHE[key] = (time.monotonic(), endpoints, run_webhooks.notify_statuses(endpoints))
        return hit


def current(rt: Any) -> dict[str, RunWebhook]:
    """Every endpoint this process posts to: ``BUSTER_RUN_WEBHOOKS`` and the stored ones,
    these read again at most every ``run_webhook_refresh_seconds``. If the store cannot be
    read, the last endpoints read stay in force."""
    return _in_force(rt)[1]


def notify_statuses(rt: Any) -> frozenset[str]:
    """The final statuses some endpoint in force here wants: a run ending in one is flagged
    by the statement that ends it (``Store.notify_source``)."""
    return _in_force(rt)[2]


def _fail(exc: ValidationError) -> RunWebhookError:
    # the field and what is wrong with it, never the value (pydantic's hide_input_in_errors)
    problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'endpoint'}: {err['msg']}"
                         for err in exc.errors())
    return RunWebhookError(f"invalid run webhook: {problems}")


def add(name: str, url: str, *, format: str = "standard",  # noqa: A002 - the setting's key
        secret: str | None = None, statuses: Sequence[str] | None = None,
        tasks: Sequence[str] | None = None, tags: Sequence[str] | None = None,
        timeout_seconds: float = 10.0, max_attempts: int = 8, replace: bool = False,
        by: str | None = None) -> dict[str, Any]:
    """Store an endpoint (``replace``: over a stored one of that name); returns it as
    :func:`describe_one` shows it — its URL's host, never the URL or the secret."""
    rt = get_runtime()
    if not isinstance(name, str) or not re.match(NAME_PATTERN, name):
        raise RunWebhookError(f"run webhook name {name!r}: letters, digits, '_', '.', '-' "
                              "(at most 64)")
    for label, value in (("statuses", statuses), ("tasks", tasks), ("tags", tags)):
        if value is not None and (isinstance(value, str)
                                  or not isinstance(value, list | tuple)):
            raise RunWebhookError(f"invalid run webhook: {label} must be a list")
    fields: dict[str, Any] = {"url": url, "format": format, "secret": secret,
                              "timeout_seconds": timeout_seconds, "max_attempts": max_attempts,
                              "tasks": list(tasks) if tasks is not None else None,
                              "tags": list(tags) if tags is not None else None}
    if statuses is not None:
        fields["statuses"] = list(statuses)
    try:
        endpoint = RunWebhook(**fields)
    except ValidationError as exc:
        raise _fail(exc) from None
    if name in rt.settings.run_webhooks:
        raise RunWebhookExistsError(
            f"run webhook {name!r} is configured in BUSTER_RUN_WEBHOOKS: change it there")
    token = secrets.encrypt(rt.encryption_key, _plain(endpoint)).encode()
    now = utcnow()
    e = t.run_webhook_endpoints.c
    with rt.store.engine.begin() as conn:
        taken = conn.execute(select(e.name).where(e.name == name)).first() is not None
        if taken and not replace:
            raise RunWebhookExistsError(
                f"run webhook {name!r} exists (remove it first, or replace it)")
        if taken:
            conn.execute(update(t.run_webhook_endpoints).where(e.name == name)
                         .values(config=token, created_by=by, updated_at=now))
        else:
            conn.execute(t.run_webhook_endpoints.insert().values(
                name=name, config=token, created_by=by, created_at=now, updated_at=now))
    forget()  # this process posts to it at once; the others within the refresh
    log.info("run webhook %s (%s) %s%s", name, endpoint.host(),
             "replaced" if taken else "added", f" by {by}" if by else "",
             extra={"action": "run_webhook_added", "endpoint": name})
    return describe_one(name, endpoint, "stored")


def remove(name: str, *, by: str | None = None) -> None:
    """Remove a stored endpoint (one of ``BUSTER_RUN_WEBHOOKS`` is removed from there)."""
    rt = get_runtime()
    e = t.run_webhook_endpoints.c
    with rt.store.engine.begin() as conn:
        gone = conn.execute(delete(t.run_webhook_endpoints).where(e.name == name)).rowcount
    if not gone:
        where = (" (it is configured in BUSTER_RUN_WEBHOOKS: remove it there)"
                 if name in rt.settings.run_webhooks else "")
        raise RunWebhookNotFoundError(f"no stored run webhook named {name!r}{where}")
    forget()
    log.info("run webhook %s removed%s", name, f" by {by}" if by else "",
             extra={"action": "run_webhook_removed", "endpoint": name})


def describe_one(name: str, endpoint: RunWebhook, source: str) -> dict[str, Any]:
    """An endpoint as ops may see it (its URL's host, never the URL or the secret), and
    where it is configured: ``source`` "settings" or "stored"."""
    return {**endpoint.public(name), "source": source}


def list_all() -> list[dict[str, Any]]:
    """Every endpoint in force here, from the setting or stored."""
    rt = get_runtime()
    forget()
    return [describe_one(name, endpoint, source_of(rt, name))
            for name, endpoint in sorted(current(rt).items())]


def describe(rt: Any) -> list[dict[str, Any]]:
    """:func:`runtime.run_webhooks.describe` of the endpoints in force, each with its
    ``source``: the CLI's ``run-webhooks list`` and the Tasks page."""
    out = run_webhooks.describe(rt.store, current(rt))
    for e in out:
        if e["configured"]:
            e["source"] = source_of(rt, e["name"])
    return out


def source_of(rt: Any, name: str) -> str:
    return "settings" if name in rt.settings.run_webhooks else "stored"


__all__ = ["RunWebhookError", "RunWebhookExistsError", "RunWebhookNotFoundError", "add",
           "current", "list_all", "remove", "stored"]
