"""The status policy alone: ``classify(status, headers, body)`` status by status, and the retry waits. No sockets."""

from __future__ import annotations

import email.utils
import json
import random

import pytest

from opentelemetry.exporter.opik._delivery.policy import Action, classify, errors_by_index, retry_delay

NOW = 1_750_000_000.0


@pytest.mark.parametrize("status", [200, 201, 202, 204, 409])
def test_2xx_and_409_are_delivered(status: int) -> None:
    out = classify(status, {}, "", n_items=10)
    assert out.action is Action.DELIVERED and out.status == status


def test_no_answer_is_retried_without_a_hint() -> None:
    out = classify(None, {}, "")
    assert out.action is Action.RETRY and out.delay_hint is None and out.status is None


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status: int) -> None:
    assert classify(status, {}, "boom").action is Action.RETRY


def test_retry_after_becomes_the_hint() -> None:
    assert classify(429, {"Retry-After": "7"}, "").delay_hint == 7.0
    date = email.utils.formatdate(NOW + 12, usegmt=True)
    assert classify(503, {"Retry-After": date}, "", now=NOW).delay_hint == 12.0
    assert classify(503, {"RateLimit-Reset": "3"}, "").delay_hint == 3.0


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_pause(status: int) -> None:
    out = classify(status, {}, '{"message":"API key is invalid"}')
    assert out.action is Action.PAUSE and out.status == status and out.reason == ""


def test_413_splits_a_batch_and_shrinks_a_single_item() -> None:
    assert classify(413, {}, "", n_items=2).action is Action.SPLIT
    assert classify(413, {}, "", n_items=1).action is Action.SHRINK


@pytest.mark.parametrize("status", [400, 422])
def test_invalid_items_are_isolated_by_the_named_indexes(status: int) -> None:
    body = json.dumps({"errors": ["spans[3].name: must not be blank", "spans[7].id: invalid UUID", "spans[3].x: y"]})
    out = classify(status, {}, body, n_items=10, key="spans")
    assert out.action is Action.ISOLATE
    assert sorted(out.errors) == [3, 7]
    assert "must not be blank" in out.errors[3] and "spans[3].x" in out.errors[3]


def test_isolation_without_trustworthy_indexes_names_none() -> None:
    assert classify(422, {}, '{"errors":["bad request"]}', n_items=4).errors == {}
    # an index past the request (a stale or proxied error): none trusted
    assert classify(422, {}, '{"errors":["spans[9].name: x", "spans[1].name: y"]}', n_items=4).errors == {}
    # another body key: not this request's items
    assert classify(422, {}, '{"errors":["traces[0].name: x"]}', n_items=4, key="spans").errors == {}
    # not JSON: the text itself is searched
    assert errors_by_index("spans[2] is wrong", "spans", 4) == {2: "spans[2] is wrong"}


@pytest.mark.parametrize(
    "status, reason, hint",
    [
        (404, "http_404", "/api"),
        (405, "http_405", "/api"),
        (301, "http_301", "https://opik.example/api"),
        (418, "http_418", ""),
        (501, "http_501", ""),
    ],
)
def test_other_statuses_drop_with_a_reason(status: int, reason: str, hint: str) -> None:
    out = classify(status, {"location": "https://opik.example/api"}, "nope")
    assert out.action is Action.DROP and out.reason == reason
    assert hint in out.hint and (hint or out.hint == "")


def test_retry_waits() -> None:
    rng = random.Random(1)
    waits = [retry_delay(a, refused=False, base=0.5, cap=30, auth_base=1, auth_cap=60, rng=rng) for a in range(12)]
    assert all(0 <= w <= min(30, 0.5 * 2**a) for a, w in enumerate(waits))
    assert max(waits[6:]) > 4  # it grows
    auth = [retry_delay(a, refused=True, base=0.5, cap=30, auth_base=1, auth_cap=60) for a in range(8)]
    assert auth == [1, 2, 4, 8, 16, 32, 60, 60]
    assert retry_delay(0, refused=False, base=0.5, cap=30, auth_base=1, auth_cap=60, no_answer=True) == 0.0
    assert retry_delay(0, refused=False, base=0.5, cap=30, auth_base=1, auth_cap=60, hint=5.0, no_answer=True) == 5.0
    assert retry_delay(3, refused=True, base=0.5, cap=30, auth_base=1, auth_cap=60, hint=2.0) == 8.0
