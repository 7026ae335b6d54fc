"""Human-readable rendering of a run for the CLI."""

from __future__ import annotations

import json
from typing import Any


def render_run(d: dict[str, Any]) -> str:
    lines = [
        f"run       {d['id']}",
        f"task      {d['task_identifier']}",
        f"status    {d['status']}",
        f"attempts  {d['attempt_count']}",
        f"execution {d['execution_ms']} ms   wall {d.get('wall_time_ms')} ms",
    ]
    if d.get("output") is not None:
        lines.append(
            "output    "
            + json.dumps(d["output"], indent=2, default=str).replace("\n", "\n          ")
        )
    if d.get("error"):
        lines.append(f"error     {d['error'].get('message')}")
    if d.get("metadata"):
        lines.append("metadata  " + json.dumps(d["metadata"], default=str))
    for log in d.get("logs", []):
        attrs = f"  {json.dumps(log['attributes'], default=str)}" if log.get("attributes") else ""
        lines.append(f"  [{log['level']:<5}] {log['message']}{attrs}")
    return "\n".join(lines)
