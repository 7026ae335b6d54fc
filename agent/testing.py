"""``RecordedAnthropic``: a FAKE of the Anthropic HTTP API for tests, named as such.

It replaces only the HTTP transport; the real ``anthropic`` SDK builds the requests, parses
the recorded Messages API JSON (tool_use blocks, stop_reason, usage) and runs its own
retries. A scenario is a JSON file::

    {"turns": [[<response>, <response on retry>, ...], ...]}

where a response is ``{"status": 200, "headers": {...}, "body": {...}, "delay_s": 0}``.
The turn a request belongs to is read from the request itself (1 + the assistant messages
it carries), and the attempt within a turn from the request log, so the fake answers
correctly across processes and after a worker was killed. Every request is appended to
``<scenario>.requests.jsonl`` (``{"turn", "attempt", "status"}``), which tests count.

Workers in other processes use it with ``BUSTER_AGENT_TRANSPORT=recorded:<scenario file>``.
It never talks to Anthropic.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import anthropic._base_client as _sdk_http

__all__ = ["RecordedAnthropic", "assistant", "error_response", "text", "tool_use"]

# The SDK's own HTTP package: ``httpx2`` in anthropic >= 1.x, ``httpx`` before.
_httpx: Any = getattr(_sdk_http, "httpx2", None) or getattr(_sdk_http, "httpx")  # noqa: B009


def tool_use(name: str, input: dict[str, Any], id: str | None = None) -> dict[str, Any]:
    return {"type": "tool_use", "id": id or f"toolu_{uuid.uuid4().hex[:20]}", "name": name,
            "input": input}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def assistant(*blocks: dict[str, Any], stop_reason: str | None = None,
              input_tokens: int = 1200, output_tokens: int = 150,
              model: str = "claude-sonnet-5-5") -> dict[str, Any]:
    """A 200 response carrying one assistant message in the Messages API shape."""
    has_tool = any(b["type"] == "tool_use" for b in blocks)
    return {"status": 200, "body": {
        "id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant",
        "model": model, "content": list(blocks),
        "stop_reason": stop_reason or ("tool_use" if has_tool else "end_turn"),
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }}


def error_response(status: int, kind: str, message: str,
                   headers: dict[str, str] | None = None) -> dict[str, Any]:
    """An API error in the Messages API shape (``overloaded_error``, ``authentication_error``)."""
    return {"status": status, "headers": headers or {},
            "body": {"type": "error", "error": {"type": kind, "message": message}}}


class RecordedAnthropic:
    """Serves a scenario's recorded responses; see the module docstring."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.log_path = Path(str(self.path) + ".requests.jsonl")
        self._lock = threading.Lock()

    @classmethod
    def write(cls, path: str | os.PathLike[str], turns: list[Any]) -> RecordedAnthropic:
        """Write a scenario: each turn a response or a list of responses (retries)."""
        norm = [t if isinstance(t, list) else [t] for t in turns]
        Path(path).write_text(json.dumps({"turns": norm}))
        return cls(path)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> RecordedAnthropic:
        return cls(path)

    def http(self) -> Any:
        """An HTTP client of the SDK's own HTTP package, with this fake as its transport."""
        return _httpx.Client(transport=_httpx.MockTransport(self._handle))

    def client(self, max_retries: int = 4) -> Any:
        import anthropic

        return anthropic.Anthropic(api_key="recorded-fake-key", http_client=self.http(),
                                   max_retries=max_retries)

    def requests(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]

    def _handle(self, request: Any) -> Any:
        body = json.loads(request.content or b"{}")
        turn = 1 + sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
        turns = json.loads(self.path.read_text())["turns"]
        with self._lock:
            attempt = sum(1 for r in self.requests() if r["turn"] == turn)
            if turn > len(turns):
                response = error_response(400, "invalid_request_error",
                                          f"recorded scenario has no turn {turn}")
            else:
                options = turns[turn - 1]
                response = options[min(attempt, len(options) - 1)]
            with self.log_path.open("a") as fh:
                fh.write(json.dumps({"turn": turn, "attempt": attempt,
                                     "status": response.get("status", 200),
                                     "pid": os.getpid()}) + "\n")
        if response.get("delay_s"):
            time.sleep(float(response["delay_s"]))
        body_out = _resolve_refs(response["body"], _tool_results(body))
        headers = {"request-id": f"req_{uuid.uuid4().hex[:16]}", **response.get("headers", {})}
        return _httpx.Response(response.get("status", 200), json=body_out,
                               headers=headers)


def _tool_results(request_body: dict[str, Any]) -> dict[str, Any]:
    """tool_use_id -> parsed result JSON, from the tool_result blocks the request carries."""
    out: dict[str, Any] = {}
    for message in request_body.get("messages", []):
        content = message.get("content")
        if message.get("role") != "user" or not isinstance(content, list):
            continue
        for block in content:
            if block.get("type") == "tool_result" and not block.get("is_error"):
                try:
                    out[block["tool_use_id"]] = json.loads(block["content"])
                except (TypeError, ValueError):
                    out[block["tool_use_id"]] = block["content"]
    return out


def _resolve_refs(value: Any, results: dict[str, Any]) -> Any:
    """``"$result:<tool_use_id>.<key>"`` becomes that key of that tool's result: a recorded
    answer can name ids the agent made in this run (metric ids depend on the run id)."""
    if isinstance(value, str) and value.startswith("$result:"):
        tool_id, _, key = value[len("$result:"):].partition(".")
        return results.get(tool_id, {}).get(key, value)
    if isinstance(value, list):
        return [_resolve_refs(v, results) for v in value]
    if isinstance(value, dict):
        return {k: _resolve_refs(v, results) for k, v in value.items()}
    return value
