"""The agent loop: load sources and catalogs, then model turn → tool calls, until the
model's ``finish`` passes review or the step budget runs out.

Resumable by construction: each model turn is ``wait.step("model-turn-N")`` and each
turn's tool calls ``wait.step("tools-turn-N")`` (results plus the state after them). A
worker killed mid-run replays: recorded turns come back from the store without an HTTP
request or a warehouse query, and the loop continues from the first unrecorded turn.
Everything before a step is a read, so replays make the same durable calls in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent import durable, prompt
from agent.errors import AgentError, DataSourceError, MaxStepsError
from agent.model import ModelClient
from agent.phases import Phase, move, publish
from agent.settings import AgentSettings
from agent.sources import INTROSPECT_TASK, Source, SourceSessions, load_catalog, resolve
from agent.state import AgentState
from agent.tools import ToolContext, call_tool, tool_specs
from connectors import Catalog, connect
from runtime import get_runtime, logger, tasks
from runtime.store.artifacts import upsert_artifact

__all__ = ["AgentRequest", "run_analyst"]

_NUDGE = "Use the tools to work on the question; call finish when you are done."


@dataclass
class AgentRequest:
    session_id: str
    query: str
    data_sources: list[str] | None = None
    max_steps: int = 15
    model: str | None = None
    enable_streaming: bool = False


def run_analyst(
    req: AgentRequest, *, run_id: str, settings: AgentSettings | None = None,
    model: ModelClient | None = None,
) -> dict[str, Any]:
    """Run the agent; return the task output. Retryable failures (model unavailable after
    the SDK's retries) are raised so the runtime retries the attempt."""
    settings = settings or AgentSettings()
    model = model or ModelClient(settings)
    state = AgentState()
    publish(state, flush=True, max_steps=req.max_steps)
    sessions: SourceSessions | None = None
    try:
        sources = resolve(req.data_sources)
        catalogs = _catalogs(sources)
        sessions = SourceSessions(sources)
        ctx = ToolContext(state, settings, sources, catalogs, sessions, run_id, req.session_id,
                          persist=_persister(run_id, req.session_id))
        _loop(ctx, req, model)
        return _success(req, ctx.state)
    except AgentError as exc:
        if exc.retryable:
            raise
        logger.error("analyst agent failed", code=exc.code, error=exc.message)
        final = ctx.state if sessions is not None else state
        if final.phase != Phase.FAILED:
            move(final, Phase.FAILED)
        return _failure(req, final, exc)
    finally:
        if sessions is not None:
            sessions.close()


def _loop(ctx: ToolContext, req: AgentRequest, model: ModelClient) -> None:
    model_id = ctx.settings.resolve_model(req.model)
    counts = {s.id: len(ctx.catalogs[s.id].tables) for s in ctx.sources}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": prompt.user_message(req.query, ctx.sources, counts)}
    ]
    specs = tool_specs()
    move(ctx.state, Phase.SEARCHING)
    for turn in range(1, req.max_steps + 1):
        ctx.state.step = turn
        answer = durable.step(f"model-turn-{turn}", lambda: model.create(
            model=model_id, system=prompt.SYSTEM, messages=messages, tools=specs))
        content = [_clean(b) for b in answer.get("content", [])]
        messages.append({"role": "assistant", "content": content})
        usage = answer.get("usage") or {}
        ctx.state.input_tokens += int(usage.get("input_tokens") or 0)
        ctx.state.output_tokens += int(usage.get("output_tokens") or 0)
        recorded = durable.step(f"tools-turn-{turn}",
                                lambda c=content: _run_tools(ctx, c))  # type: ignore[misc]
        ctx.state = AgentState.from_json(recorded["state"])
        messages.append({"role": "user", "content": recorded["results"]})
        publish(ctx.state)
        if ctx.state.phase == Phase.COMPLETED:
            return
    raise MaxStepsError(
        f"The step budget of {req.max_steps} model turns ran out before the analysis "
        "finished.", details={"max_steps": req.max_steps})


def _run_tools(ctx: ToolContext, content: list[dict[str, Any]]) -> dict[str, Any]:
    uses = [b for b in content if b.get("type") == "tool_use"]
    results: list[dict[str, Any]] = [call_tool(ctx, b) for b in uses]
    if not results:
        results = [{"type": "text", "text": _NUDGE}]
    for b, r in zip(uses, results, strict=False):
        logger.info("tool call", tool=b["name"], ok=not r.get("is_error"), step=ctx.state.step)
    return {"results": results, "state": ctx.state.to_json()}


def _clean(block: dict[str, Any]) -> dict[str, Any]:
    """Keep the fields the API accepts back as input (responses carry more)."""
    if block.get("type") == "tool_use":
        return {k: block[k] for k in ("type", "id", "name", "input")}
    if block.get("type") == "text":
        return {"type": "text", "text": block.get("text", "")}
    return block


def _catalogs(sources: list[Source]) -> dict[str, Catalog]:
    """Each source's stored catalog; a source never introspected is introspected first by
    the ``introspect-data`` task. Which sources lacked one is recorded, so a replay (when
    the catalogs exist by then) makes the same child-run calls."""
    missing = durable.step("catalogs-missing",
                           lambda: [s.id for s in sources if load_catalog(s) is None])
    catalogs: dict[str, Catalog] = {}
    for source in sources:
        if source.id in missing:
            _introspect(source)
        catalog = load_catalog(source)
        if catalog is None:
            raise DataSourceError(f"Data source {source.name!r} has no catalog after "
                                  "introspection.", details={"data_source": source.name})
        catalogs[source.id] = catalog
    return catalogs


def _introspect(source: Source) -> None:
    if not durable.in_run():
        # Benchmarks and unit tests: no task runtime to wait on; read and store directly.
        from runtime import datasources

        with connect(source.credentials) as conn:
            datasources.save_catalog(source.id, conn.introspect())
        return
    result = tasks.trigger_and_wait(INTROSPECT_TASK, {"data_source": source.id})
    output = result.output
    succeeded = output.get("success", True) if isinstance(output, dict) else getattr(
        output, "success", True)
    if not result.ok or not succeeded:
        err = DataSourceError(f"Introspecting {source.name!r} failed.",
                              details={"data_source": source.name, "error": result.error})
        err.code = "DATA_SOURCE_UNAVAILABLE"
        raise err


def _persister(run_id: str, session_id: str) -> Any:
    if not durable.in_run():
        return None
    store = get_runtime().store

    def persist(row: dict[str, Any]) -> None:
        upsert_artifact(store, {**row, "run_id": run_id, "session_id": session_id})

    return persist


def _success(req: AgentRequest, state: AgentState) -> dict[str, Any]:
    return {"success": True, "session_id": req.session_id,
            "result": {"response": state.response or "",
                       "artifacts": state.artifacts(state.returned)}}


def _failure(req: AgentRequest, state: AgentState, exc: AgentError) -> dict[str, Any]:
    # Partial artifacts are reported: a run that ran out of steps still made real metrics.
    artifacts = state.artifacts()
    return {"success": False, "session_id": req.session_id,
            "result": {"response": "", "artifacts": artifacts},
            "error": {"code": exc.code, "message": exc.message,
                      "details": {**exc.details, "phase_reached": state.step and state.phase,
                                  "steps": state.step, "tool_calls": state.tool_calls}}}
