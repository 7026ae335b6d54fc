"""The ``analyst-agent`` task."""

from .actor import analyst_agent

__all__ = ["analyst_agent"]
