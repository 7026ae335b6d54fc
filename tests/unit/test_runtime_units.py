"""Pure-function pieces of the runtime (no servers)."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from pydantic import BaseModel, SecretStr

import runtime
from runtime import ids, secrets
from runtime.durations import parse_duration, resolve_time
from runtime.executor import call_hook
from runtime.machines import PRESETS, queue_for
from runtime.retry import RetryOptions, backoff_ms
from runtime.settings import Settings
from runtime.statuses import FINAL_STATUSES, KEY_RELEASING_STATUSES, RunStatus


def test_public_api_is_exactly_what_design_names():
    # plus Trigger.dev v4's `queues` API (and its Queue object), its `locals` (here
    # `run_locals`, and its LocalKey), `tags` and `queue()` for a shared queue (and its
    # SharedQueue), which DESIGN.md predates
    assert set(runtime.__all__) == {"Queue", "queues", "run_locals", "LocalKey", "tags",
                                    "queue", "SharedQueue", "batch"} | {
        "AbortTaskRunError",
        "Result",
        "RetryOptions",
        "Run",
        "RunStatus",
        "Task",
        "configure",
        "get_runtime",
        "idempotency_keys",
        "logger",
        "metadata",
        "runs",
        "schedules",
        "schema_task",
        "task",
        "tasks",
        "wait",
    }
    for name in runtime.__all__:
        assert getattr(runtime, name) is not None


def test_statuses_are_trigger_dev_v4s():
    assert {s.value for s in RunStatus} == {
        "PENDING_VERSION",
        "DELAYED",
        "QUEUED",
        "DEQUEUED",
        "EXECUTING",
        "WAITING",
        "COMPLETED",
        "FAILED",
        "CRASHED",
        "SYSTEM_FAILURE",
        "CANCELED",
        "EXPIRED",
        "TIMED_OUT",
    }
    assert RunStatus.COMPLETED in FINAL_STATUSES and RunStatus.WAITING not in FINAL_STATUSES
    # COMPLETED and CANCELED keep their idempotency key; failures release it (v4)
    assert RunStatus.COMPLETED not in KEY_RELEASING_STATUSES
    assert RunStatus.CANCELED not in KEY_RELEASING_STATUSES
    assert RunStatus.EXPIRED in KEY_RELEASING_STATUSES


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("1h52m18s", 6738),
        ("2d", 172800),
        ("500ms", 0.5),
        ("1w", 604800),
        (15, 15.0),
        (timedelta(minutes=2), 120.0),
        ("1.5h", 5400),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["soon", "10x", "", "1h 2", "-3s"])
def test_parse_duration_rejects_with_the_input(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_resolve_time_accepts_datetimes_isostrings_and_durations():
    dt = datetime(2030, 1, 1, tzinfo=UTC)
    assert resolve_time(dt) == dt
    assert resolve_time("2030-01-01T00:00:00+00:00") == dt
    assert resolve_time("2030-01-01T00:00:00") == dt  # naive means UTC
    soon = resolve_time("10s")
    assert soon is not None
    assert 9 < (soon - datetime.now(UTC)).total_seconds() <= 10


def test_backoff_follows_trigger_dev_formula():
    policy = {"min_timeout_ms": 500, "factor": 1.8, "max_timeout_ms": 30_000, "randomize": False}
    assert [backoff_ms(policy, n) for n in (1, 2, 3)] == pytest.approx([500, 900, 1620])
    assert backoff_ms(policy, 20) == 30_000  # capped
    jitter = {**policy, "randomize": True}
    rng = random.Random(1)
    values = [backoff_ms(jitter, 2, rng) for _ in range(200)]
    assert min(values) >= 900 and max(values) < 1800 and len(set(values)) > 100


def test_retry_defaults_come_from_settings():
    s = Settings()
    assert RetryOptions().resolved(s) == {
        "max_attempts": 3,
        "factor": 2.0,
        "min_timeout_ms": 1000,
        "max_timeout_ms": 60_000,
        "randomize": True,
    }
    assert RetryOptions(max_attempts=1).resolved(s)["max_attempts"] == 1


def test_ids_are_prefixed_and_sort_by_creation():
    made = [ids.run_id() for _ in range(2000)]
    assert made == sorted(made) and len(set(made)) == 2000
    assert all(i.startswith("run_") and len(i) == 30 for i in made)


def test_fast_id_encoding_matches_the_time_prefix_encoding():
    """ids are encoded in one base64 call; the prefix used for time-range scans must still
    be the first 10 characters of every id made in that millisecond."""
    import random

    rng = random.Random(7)
    for bits in [(0, 0), ((1 << 48) - 1, (1 << 80) - 1)] + [
        (rng.getrandbits(48), rng.getrandbits(80)) for _ in range(2000)
    ]:
        now, rand = bits
        assert ids._encode26((now << 80) | rand) == ids._encode(now, 10) + ids._encode(rand, 16)
    made = ids.run_id()
    ms = int(time.time() * 1000)
    assert ids.timestamp_prefix(ms - 5000) < made[4:14] <= ids.timestamp_prefix(ms)


def test_machine_presets_map_to_queues():
    assert set(PRESETS) == {
        "micro",
        "small-1x",
        "small-2x",
        "medium-1x",
        "medium-2x",
        "large-1x",
        "large-2x",
    }
    assert queue_for("large-1x", "default", "large") == "large"
    assert queue_for("medium-2x", "default", "large") == "default"
    with pytest.raises(ValueError, match="unknown machine preset"):
        queue_for("huge", "default", "large")


class Creds(BaseModel):
    user: str
    password: SecretStr


class Payload(BaseModel):
    creds: Creds
    when: datetime
    items: list[int]


def test_secret_fields_are_encrypted_and_masked():
    key = Fernet.generate_key().decode()
    p = Payload(
        creds=Creds(user="u", password=SecretStr("pa55")), when=datetime(2030, 1, 1), items=[1, 2]
    )
    stored = secrets.encode(p, key)
    assert "pa55" not in str(stored)
    assert secrets.mask(stored)["creds"]["password"] == secrets.MASK
    back = Payload.model_validate(secrets.decode(stored, key))
    assert back.creds.password.get_secret_value() == "pa55" and back.when == p.when
    assert secrets.safe_json({"p": SecretStr("x")}) == {"p": secrets.MASK}


def test_hooks_get_the_arguments_they_name():
    seen = []
    call_hook(lambda payload, error: seen.append((payload, error)), payload=1, ctx="c", error="e")
    call_hook(lambda p, c: seen.append((p, c)), payload=2, ctx="c")
    call_hook(lambda p: seen.append(p), payload=3, ctx="c")
    call_hook(lambda **kw: seen.append(sorted(kw)), payload=4, ctx="c", output=5)
    assert seen == [(1, "e"), (2, "c"), 3, ["ctx", "output", "payload"]]


def test_idempotency_keys_outside_a_run_are_global_and_stable():
    a = runtime.idempotency_keys.create(["user", "42"])
    b = runtime.idempotency_keys.create(["user", "42"])
    c = runtime.idempotency_keys.create("user-42", scope="global")
    assert a == b and len(a) == 64 and a.scope == "global"
    assert c != a  # parts are hashed with a separator, not joined
    with pytest.raises(ValueError, match="scope"):
        runtime.idempotency_keys.create("k", scope="planet")


def test_task_rejects_bad_definitions():
    with pytest.raises(ValueError, match="machine preset"):
        runtime.task(id="bad-machine", machine="xxl")(lambda p: p)
    with pytest.raises(ValueError, match="max_duration"):
        runtime.task(id="bad-duration", max_duration=0.5)(lambda p: p)


def test_secrets_named_by_a_payload_schema_are_encrypted_without_the_model():
    class Inner(BaseModel):
        password: SecretStr
        tokens: list[SecretStr] = []

    class Outer(BaseModel):
        inner: Inner | None = None
        by_name: dict[str, SecretStr] = {}
        plain: str = ""

    key = Fernet.generate_key().decode()
    raw = {
        "inner": {"password": "first-secret-value", "tokens": ["second-secret-value"]},
        "by_name": {"a": "third-secret-value"},
        "plain": "visible",
    }
    stored = secrets.encrypt_by_schema(raw, Outer.model_json_schema(), key)
    text = str(stored)
    assert "secret-value" not in text and "visible" in text
    back = Outer.model_validate(secrets.decode(stored, key))
    assert back.inner.password.get_secret_value() == "first-secret-value"
    assert back.by_name["a"].get_secret_value() == "third-secret-value"
