"""``analyst-agent``: a data question in, SQL, metrics and dashboards out (see README.md).

Thin on purpose: the agent lives in ``agent/``. Retries cover worker crashes and a model
API still unavailable after the SDK's own retries; each retry replays the model turns
already recorded instead of paying for them again.
"""

from __future__ import annotations

from typing import Any

from agent.settings import AgentSettings
from runtime import AbortTaskRunError, RetryOptions, schema_task

from .schemas import AnalystAgentInput, AnalystAgentOutput

#: The longest a rate limit's retry-after may hold the next attempt back: beyond it the
#: run's own backoff applies (a run should not sleep past its users' patience).
MAX_RETRY_AFTER_S = 300.0


def retry_when_the_model_api_allows(error: BaseException) -> dict[str, Any] | None:
    """``catch_error``: when the model API was still rate-limited or overloaded after the
    SDK's retries and said how long to wait, the next attempt starts no sooner (the
    policy's 1-2 s backoff would meet the same 429). Otherwise the policy decides."""
    details = getattr(error, "details", None)
    if getattr(error, "code", None) != "MODEL_UNAVAILABLE" or not isinstance(details, dict):
        return None
    wait_s = details.get("retry_after_s")
    if not isinstance(wait_s, int | float) or wait_s <= 0:
        return None
    return {"retry_delay_ms": min(float(wait_s), MAX_RETRY_AFTER_S) * 1000}


@schema_task(
    id="analyst-agent",
    schema=AnalystAgentInput,
    output_schema=AnalystAgentOutput,
    machine="large-1x",
    max_duration=1800,
    concurrency_limit=AgentSettings().concurrency_limit,
    retry=RetryOptions(max_attempts=3, factor=2, min_timeout_ms=1000, max_timeout_ms=30_000),
    catch_error=retry_when_the_model_api_allows,
)
def analyst_agent(payload: AnalystAgentInput, ctx: Any) -> dict[str, Any]:
    # imported here so a worker without the [agent] extra still boots and serves other tasks
    try:
        from agent import AgentRequest, run_analyst
    except ModuleNotFoundError as exc:
        raise AbortTaskRunError(
            f"analyst-agent needs the agent extra ({exc.name} is missing): "
            "pip install 'buster-jobs[agent]'"
        ) from None
    request = AgentRequest(
        session_id=str(payload.session_id),
        query=payload.query,
        data_sources=payload.data_sources,
        max_steps=payload.options.max_steps,
        model=payload.options.model,
        enable_streaming=payload.options.enable_streaming,
    )
    return run_analyst(request, run_id=ctx.run.id)
