"""Reading the model API's retry-after, and the analyst agent's catch_error built on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from actors.analyst_agent.actor import MAX_RETRY_AFTER_S, retry_when_the_model_api_allows
from agent.errors import ModelAuthError, ModelUnavailableError
from agent.model import retry_after_s


def test_retry_after_headers():
    assert retry_after_s(httpx.Headers({"retry-after-ms": "1500"})) == 1.5
    assert retry_after_s(httpx.Headers({"retry-after": "7"})) == 7.0
    assert retry_after_s(httpx.Headers({"retry-after": "-3"})) == 0.0
    when = datetime.now(UTC) + timedelta(seconds=30)
    from_date = retry_after_s(httpx.Headers({"retry-after": format_datetime(when, usegmt=True)}))
    assert from_date is not None and 27 <= from_date <= 30
    assert retry_after_s(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_after_s(httpx.Headers({})) is None


@pytest.mark.parametrize(
    "error, expected",
    [
        (ModelUnavailableError("429", details={"retry_after_s": 12}), 12_000),
        (ModelUnavailableError("429", details={"retry_after_s": 9999}), MAX_RETRY_AFTER_S * 1000),
        (ModelUnavailableError("529", details={}), None),
        (ModelUnavailableError("529", details={"retry_after_s": 0}), None),
        (ModelAuthError("401", details={"retry_after_s": 12}), None),
        (ValueError("anything else"), None),
    ],
)
def test_the_agent_waits_as_asked_and_no_longer_than_its_cap(error, expected):
    answer = retry_when_the_model_api_allows(error)
    assert (answer and answer["retry_delay_ms"]) == expected
