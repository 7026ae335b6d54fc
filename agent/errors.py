"""The agent's error tree. Retry decisions are made on these types, never on SDK types.

    AgentError                      AGENT_ERROR
    ├── ModelError                  MODEL_ERROR
    │   ├── ModelAuthError          MODEL_AUTH          fails the run at once
    │   ├── ModelRequestError       MODEL_BAD_REQUEST   our request is wrong: no retry helps
    │   └── ModelUnavailableError   MODEL_UNAVAILABLE   retryable (the SDK already retried)
    ├── MaxStepsError               MAX_STEPS
    ├── DataSourceError             DATA_SOURCE_NOT_FOUND / DATA_SOURCE_UNAVAILABLE
    └── ToolError                   (goes back to the model as a tool error, never ends a run)
        └── SqlRefusedError         SQL_REFUSED

``AgentError.retryable`` tells the task whether to raise (the runtime retries the attempt
and replays the recorded turns) or to end with an ``error`` output.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AgentError",
    "DataSourceError",
    "MaxStepsError",
    "ModelAuthError",
    "ModelError",
    "ModelRequestError",
    "ModelUnavailableError",
    "SqlRefusedError",
    "ToolError",
]


class AgentError(Exception):
    code = "AGENT_ERROR"
    retryable = False

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class ModelError(AgentError):
    code = "MODEL_ERROR"


class ModelAuthError(ModelError):
    """401/403 from the model API: a wrong or missing key. Retrying cannot help."""

    code = "MODEL_AUTH"


class ModelRequestError(ModelError):
    """400/404/413/422: the request itself is wrong (unknown model id, too long)."""

    code = "MODEL_BAD_REQUEST"


class ModelUnavailableError(ModelError):
    """Overloaded, rate-limited or unreachable after the SDK's own retries."""

    code = "MODEL_UNAVAILABLE"
    retryable = True


class MaxStepsError(AgentError):
    code = "MAX_STEPS"


class DataSourceError(AgentError):
    code = "DATA_SOURCE_NOT_FOUND"


class ToolError(AgentError):
    """A tool refused its input or failed; the message goes back to the model."""

    code = "TOOL_ERROR"


class SqlRefusedError(ToolError):
    """The SQL guard refused a statement before it reached the warehouse."""

    code = "SQL_REFUSED"
