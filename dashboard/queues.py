"""Queue depth per queue: ready count from a passive declare (no management plugin
needed); unacked from the management API when ``BUSTER_DASHBOARD_RABBITMQ_API_URL`` is
set; executing runs per queue from the store."""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit

from runtime.store import dashboard as sql

from .state import Dash

log = logging.getLogger("buster.dashboard.queues")


def queue_names(d: Dash) -> list[str]:
    s = d.rt.settings
    names = [s.default_queue, s.large_queue]
    names += [row["queue"] for row in d.store.task_definitions()]
    return list(dict.fromkeys(n for n in names if n))


def _passive(url: str, names: list[str]) -> dict[str, tuple[int, int]]:
    import pika
    import pika.exceptions

    out: dict[str, tuple[int, int]] = {}
    params = pika.URLParameters(url)
    params.socket_timeout = 2
    params.blocked_connection_timeout = 2
    conn = pika.BlockingConnection(params)
    try:
        for name in names:
            ch = conn.channel()
            try:
                ok = ch.queue_declare(queue=name, passive=True)
                out[name] = (ok.method.message_count, ok.method.consumer_count)
                ch.close()
            except pika.exceptions.ChannelClosedByBroker:
                continue  # not declared yet: no worker has consumed it
    finally:
        conn.close()
    return out


def _unacked(api: str, names: list[str]) -> dict[str, int]:
    parts = urlsplit(api)
    base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}"
    mgr = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    mgr.add_password(None, base, parts.username or "guest", parts.password or "guest")
    opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(mgr))
    out = {}
    for name in names:
        try:
            with opener.open(f"{base}/api/queues/%2F/{quote(name, safe='')}", timeout=2) as r:
                out[name] = int(json.load(r).get("messages_unacknowledged", 0))
        except OSError:
            continue
    return out


def queue_depths(d: Dash) -> list[dict[str, Any]]:
    names = queue_names(d)
    url = d.rt.settings.amqp_url()
    ready: dict[str, tuple[int, int]] = {}
    if url:
        try:
            ready = _passive(url, names)
        except Exception as exc:  # broker down: show the store's view, flag the broker
            log.warning("queue depth unavailable: %s", type(exc).__name__)
    unacked = _unacked(d.settings.rabbitmq_api_url, names) if d.settings.rabbitmq_api_url else {}
    executing = sql.executing_by_queue(d.store)
    return [
        {
            "name": n,
            "ready": ready[n][0] if n in ready else None,
            "consumers": ready[n][1] if n in ready else None,
            "unacked": unacked.get(n),
            "executing": executing.get(n, 0),
        }
        for n in names
    ]
