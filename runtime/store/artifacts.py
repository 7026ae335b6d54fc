"""SQL for the agent's artifacts (``agent_artifacts``): upsert by id, list by run/session."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..durations import utcnow
from . import tables as t
from .repository import Store

__all__ = ["list_by_run", "list_by_session", "upsert_artifact"]


def upsert_artifact(store: Store, row: dict[str, Any]) -> None:
    """Insert, or replace title and content of the artifact with this id (a metric fixed
    after review keeps its id, so dashboards that name it stay valid)."""
    now = utcnow()
    stmt = store._insert(t.agent_artifacts).values({**row, "created_at": now, "updated_at": now})
    stmt = stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={
            "title": stmt.excluded.title,
            "content": stmt.excluded.content,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    with store.autocommit.connect() as conn:
        conn.execute(stmt)


def list_by_run(store: Store, run_id: str) -> list[dict[str, Any]]:
    return _list(store, t.agent_artifacts.c.run_id == run_id)


def list_by_session(store: Store, session_id: str) -> list[dict[str, Any]]:
    return _list(store, t.agent_artifacts.c.session_id == session_id)


def _list(store: Store, where: Any) -> list[dict[str, Any]]:
    query = (
        select(t.agent_artifacts)
        .where(where)
        .order_by(t.agent_artifacts.c.created_at, t.agent_artifacts.c.id)
    )
    with store.autocommit.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
