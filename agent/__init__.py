"""The analyst agent: a data question in, SQL, metrics and dashboards out.

    from agent import AgentRequest, run_analyst

``actors/analyst_agent`` wires it to the ``analyst-agent`` task. The agent reaches
warehouses only through ``connectors`` and the model only through ``agent.model``.
"""

from typing import Any

__all__ = ["AgentRequest", "run_analyst"]


def __getattr__(name: str) -> Any:
    # lazy: importing a submodule (or `agent` itself) must not load the Anthropic SDK
    if name in __all__:
        from agent import runner

        return getattr(runner, name)
    raise AttributeError(name)
