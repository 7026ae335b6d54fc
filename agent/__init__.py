"""The analyst agent: a data question in, SQL, metrics and dashboards out.

    from agent import AgentRequest, run_analyst

``actors/analyst_agent`` wires it to the ``analyst-agent`` task. The agent reaches
warehouses only through ``connectors`` and the model only through ``agent.model``.
"""

from agent.runner import AgentRequest, run_analyst

__all__ = ["AgentRequest", "run_analyst"]
