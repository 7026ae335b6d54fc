"""The Dramatiq broker: RabbitMQ (publisher confirms on) or the in-process stub broker.

Messages carry only a run id; the run row is the truth and the message is a wake-up call.
All runs use one actor, ``buster_run``; the queue a message is published to decides which
worker Deployment consumes it. Dramatiq's own Retries, TimeLimit and AgeLimit middleware are
left out on purpose: retries, max_duration and TTL are the runtime's, kept in the run row.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware, ShutdownNotifications

log = logging.getLogger("buster.broker")

ACTOR_NAME = "buster_run"
#: runs that ended outside a worker get their on_complete hook through this actor
HOOK_ACTOR_NAME = "buster_hook"


class BrokerUnavailableError(Exception):
    code = "BROKER_UNAVAILABLE"


def build_broker(amqp_url: str | None, middleware: Sequence[Middleware] = ()) -> dramatiq.Broker:
    mw: list[Middleware] = [ShutdownNotifications(), *middleware]
    broker: dramatiq.Broker
    if amqp_url:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=amqp_url, confirm_delivery=True, middleware=mw)
    else:
        broker = StubBroker(middleware=mw)
        broker.emit_after("process_boot")
    # set ours before anything asks Dramatiq for its default (which would be a new RabbitMQ)
    dramatiq.set_broker(broker)
    return broker


def declare_run_actor(
    broker: dramatiq.Broker,
    fn: Callable[[str], None],
    queues: Sequence[str],
    hook_fn: Callable[[str], None] | None = None,
) -> None:
    """One actor serves every queue; each queue is declared so workers can consume it."""
    for name, func in ((ACTOR_NAME, fn), (HOOK_ACTOR_NAME, hook_fn)):
        if func is not None and name not in broker.actors:
            dramatiq.Actor(
                func,
                broker=broker,
                actor_name=name,
                queue_name=queues[0],
                priority=0,
                options={},
            )
    for q in queues:
        broker.declare_queue(q)


def make_message(run_id: str, queue: str, actor: str = ACTOR_NAME) -> dramatiq.Message[Any]:
    return dramatiq.Message(
        queue_name=queue, actor_name=actor, args=(run_id,), kwargs={}, options={}
    )


class Publisher:
    """Publishes run wake-ups; returns the ids whose publish the broker confirmed.

    One message goes through Dramatiq with a publisher confirm. A batch goes out as one
    burst: on RabbitMQ, all messages inside one AMQP transaction on a channel of our own,
    committed with a single round trip — all published or none (the timer loop retries).
    """

    def __init__(self, broker: dramatiq.Broker):
        self.broker = broker
        self._declared: set[str] = set(broker.get_declared_queues())
        self._local = threading.local()

    def publish_hooks(self, items: Sequence[tuple[str, str]]) -> list[str]:
        return self.publish(items, actor=HOOK_ACTOR_NAME)

    def publish(self, items: Sequence[tuple[str, str]], actor: str = ACTOR_NAME) -> list[str]:
        if len(items) > 1 and hasattr(self.broker, "parameters"):
            return self._burst(items, actor)
        sent: list[str] = []
        for run_id, queue in items:
            try:
                self._declare(queue)
                self.broker.enqueue(make_message(run_id, queue, actor))
                sent.append(run_id)
            except Exception as exc:
                # the run stays unpublished; the timer loop publishes it again
                log.warning(
                    "publish failed for %s on %s: %s",
                    run_id,
                    queue,
                    exc,
                    extra={"run_id": run_id, "action": "publish_failed"},
                )
                break
        return sent

    def _declare(self, queue: str) -> None:
        if queue not in self._declared:
            self.broker.declare_queue(queue)
            self._declared.add(queue)

    def _burst(self, items: Sequence[tuple[str, str]], actor: str) -> list[str]:
        import pika

        props = pika.BasicProperties(delivery_mode=2)
        for attempt in (1, 2):  # an idle cached connection may have been closed: retry once
            try:
                for queue in {q for _, q in items}:
                    self._declare(queue)
                    self.broker.declare_queue(queue, ensure=True)  # type: ignore[call-arg]
                channel = self._tx_channel()
                for run_id, queue in items:
                    body = make_message(run_id, queue, actor).encode()
                    channel.basic_publish(
                        exchange="", routing_key=queue, body=body, properties=props
                    )
                channel.tx_commit()
                return [run_id for run_id, _ in items]
            except Exception as exc:
                self._drop_tx_channel()
                if attempt == 2:
                    log.warning(
                        "burst publish of %d messages failed: %s",
                        len(items),
                        exc,
                        extra={"action": "publish_failed"},
                    )
        return []

    def _tx_channel(self) -> Any:
        channel = getattr(self._local, "channel", None)
        if channel is None or not channel.is_open:
            import pika

            conn = pika.BlockingConnection(self.broker.parameters)  # type: ignore[attr-defined]
            channel = conn.channel()
            channel.tx_select()
            self._local.conn, self._local.channel = conn, channel
        return channel

    def _drop_tx_channel(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = self._local.channel = None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken
                conn.close()

    def close(self) -> None:
        self._drop_tx_channel()
