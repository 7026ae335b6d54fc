"""The phase machine: initializing → searching → planning → analyzing → reviewing →
completed | failed. Which tools a phase allows, which moves are legal, and the run
metadata the dashboard reads (phase, step, tool calls, token usage) as it changes."""

from __future__ import annotations

from enum import StrEnum

from agent.errors import ToolError
from agent.state import AgentState
from runtime import metadata

__all__ = ["Phase", "check_tool_allowed", "move", "publish"]


class Phase(StrEnum):
    INITIALIZING = "initializing"
    SEARCHING = "searching"
    PLANNING = "planning"
    ANALYZING = "analyzing"
    REVIEWING = "reviewing"
    COMPLETED = "completed"
    FAILED = "failed"


_EXPLORE = {"search_catalog", "execute_sql", "submit_plan"}
_ANALYZE = _EXPLORE | {"create_metric", "create_dashboard", "finish"}
ALLOWED: dict[Phase, set[str]] = {
    Phase.SEARCHING: _EXPLORE,
    Phase.PLANNING: _EXPLORE,
    Phase.ANALYZING: _ANALYZE,
    Phase.REVIEWING: _ANALYZE,
}
_MOVES: dict[Phase, set[Phase]] = {
    Phase.INITIALIZING: {Phase.SEARCHING, Phase.FAILED},
    Phase.SEARCHING: {Phase.PLANNING, Phase.ANALYZING, Phase.FAILED},
    Phase.PLANNING: {Phase.ANALYZING, Phase.FAILED},
    Phase.ANALYZING: {Phase.REVIEWING, Phase.FAILED},
    Phase.REVIEWING: {Phase.ANALYZING, Phase.COMPLETED, Phase.FAILED},
}


def move(state: AgentState, to: Phase) -> None:
    current = Phase(state.phase)
    if current == to:
        return
    if to not in _MOVES.get(current, set()):
        raise RuntimeError(f"illegal phase move {current} -> {to}")
    state.phase = to.value
    publish(state, flush=True)


def check_tool_allowed(state: AgentState, tool: str) -> None:
    allowed = ALLOWED.get(Phase(state.phase), set())
    if tool in allowed:
        return
    if tool in ("create_metric", "create_dashboard", "finish"):
        raise ToolError(f"{tool} is not available yet: commit to a plan with submit_plan "
                        "first (search the catalog before that).")
    raise ToolError(f"Unknown or unavailable tool {tool!r} in phase {state.phase}.")


def publish(state: AgentState, *, flush: bool = False, max_steps: int | None = None) -> None:
    """Mirror the state into run metadata (a no-op outside a run)."""
    metadata.set("phase", state.phase)
    metadata.set("step", state.step)
    if max_steps is not None:
        metadata.set("max_steps", max_steps)
    metadata.set("tool_calls", state.tool_calls)
    metadata.set("usage", {"input_tokens": state.input_tokens,
                           "output_tokens": state.output_tokens})
    metadata.set("artifacts", len(state.metrics) + len(state.dashboards))
    if flush:
        metadata.flush()
