"""The unmodified npm ``@trigger.dev/sdk`` (v4) drives our API: a Node backend changes
nothing but ``TRIGGER_API_URL``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runtime import runs

from .conftest import Server, run_node

pytestmark = pytest.mark.integration
HERE = Path(__file__).parent


@pytest.mark.timeout(300)
def test_node_sdk_end_to_end(server: Server, node_sdk: Path) -> None:
    out: dict[str, Any] = run_node(
        node_sdk,
        HERE / "sdk_script.mjs",
        {"TRIGGER_API_URL": server.url, "TRIGGER_SECRET_KEY": server.key},
    )
    trig = out["trigger"]
    assert trig["status"] == "COMPLETED" and trig["isSuccess"] and trig["attemptCount"] == 1
    # SuperJSON decoded: the Date arrived as a date and came back as its ISO form
    assert trig["output"] == {
        "echo": {"hello": "world", "when": "2024-01-02T03:04:05+00:00", "n": 1}
    }
    assert trig["tags"] == ["sdk", "org:1"] and trig["token"] == "string"
    assert runs.retrieve(trig["id"]).metadata == {"source": "node"}

    b = out["batch"]
    assert b["runCount"] == 10 and b["runs"] == 10 and b["status"] == "COMPLETED"
    assert sorted(o["echo"]["i"] for o in b["outputs"]) == list(range(10))

    assert out["cancel"] == {"before": "DELAYED", "after": "CANCELED", "isCancelled": True}

    r = out["replay"]
    assert r["original"] == "FAILED" and r["isFailed"] and "stop right there" in r["error"]
    assert r["replayStatus"] == "FAILED" and r["replayTask"] == "t-abort"
    assert runs.retrieve(r["replayId"]).replayed_from is not None

    tok = out["token"]
    assert tok["waitingSeen"] == "WAITING" and tok["status"] == "COMPLETED"
    assert tok["output"] == {"ok": True, "data": {"approved": True, "by": "node"}}
    assert tok["tokenStatus"] == "COMPLETED" and tok["tokenOutput"] == {
        "approved": True,
        "by": "node",
    }
    assert f"/api/v1/waitpoints/tokens/{tok['id']}/callback/" in tok["url"]

    s = out["schedule"]
    assert s["sameId"] and s["cron"] == "0 10 * * *" and s["active"] is True
    assert s["nextRun"] and s["id"] in s["listed"] and s["deactivated"]

    assert out["list"]["n"] == 1 and out["list"]["first"] == trig["id"]
    assert out["unknownTask"]["status"] == 404 and "no-such-task" in out["unknownTask"]["message"]
    assert out["unknownRun"] == {"status": 404, "name": "NotFoundError"}
    assert out["badCron"]["status"] == 422
