"""One bootstrap builds settings, store and broker for a process; nothing is built at import.

``get_runtime()`` builds the process's runtime on first use from ``BUSTER_*`` variables;
entry points and tests call ``configure(...)`` first to choose explicitly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import dramatiq

from . import secrets
from .broker import Publisher, build_broker
from .publish_marks import PublishMarks
from .settings import Settings
from .store.engine import build_engine
from .store.repository import Store


@dataclass
class Runtime:
    settings: Settings
    store: Store
    broker: dramatiq.Broker
    publisher: Publisher
    encryption_key: str
    #: True when this process consumes its own broker (dev, embedded worker): only then is
    #: publishing to the in-process broker useful; otherwise the timer loop publishes.
    local_consumer: bool = False
    extras: dict[str, Any] = field(default_factory=dict)
    marks: PublishMarks | None = None

    def __post_init__(self) -> None:
        self.marks = PublishMarks(self.store)

    @property
    def can_publish(self) -> bool:
        return not self.settings.is_embedded_broker or self.local_consumer

    def close(self) -> None:
        try:
            if self.marks is not None:
                self.marks.close()
            self.publisher.close()
            self.broker.close()
        finally:
            self.store.close()


_lock = threading.RLock()
_runtime: Runtime | None = None


def configure(
    settings: Settings | None = None,
    *,
    middleware: Any = (),
    migrate: bool | None = None,
    **overrides: Any,
) -> Runtime:
    """Build (or rebuild) this process's runtime. ``overrides`` are Settings fields."""
    global _runtime
    with _lock:
        if _runtime is not None:
            _runtime.close()
            _runtime = None
        if settings is None:
            settings = Settings(**overrides)
        elif overrides:
            settings = Settings(**{**settings.model_dump(), **overrides})
        engine = build_engine(settings.store_url())
        if settings.auto_migrate if migrate is None else migrate:
            from .migrate import upgrade

            upgrade(engine)
        broker = build_broker(settings.amqp_url(), middleware)
        from . import run_webhook_endpoints
        from .trigger import forget_definitions

        forget_definitions()  # cached task definitions belonged to the previous store
        run_webhook_endpoints.forget()
        rt = _runtime = Runtime(
            settings=settings,
            store=Store(engine),
            broker=broker,
            publisher=Publisher(broker),
            encryption_key=secrets.load_or_create_key(settings),
        )
        # a run ends flagged for the endpoints in force: BUSTER_RUN_WEBHOOKS and those
        # added at runtime (read again every few seconds)
        rt.store.notify_source = lambda: run_webhook_endpoints.notify_statuses(rt)
        return _runtime


def get_runtime() -> Runtime:
    with _lock:
        return _runtime if _runtime is not None else configure()


def reset() -> None:
    """Close and forget the runtime (tests)."""
    global _runtime
    with _lock:
        if _runtime is not None:
            _runtime.close()
        _runtime = None
