"""The pieces of the delivery policy that are plain functions: server hints, shrinking."""

from __future__ import annotations

import email.utils
import json
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator

from opentelemetry.exporter.opik._items import Item
from opentelemetry.exporter.opik._transport import parse_server_delay, safe_url

NOW = 1_750_000_000.0
SCHEMAS = json.loads((Path(__file__).parent / "schema" / "opik_write_schemas.json").read_text())


def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": SCHEMAS["components"]})


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": email.utils.formatdate(NOW + 7, usegmt=True)}, 7.0),
        ({"Retry-After": email.utils.formatdate(NOW - 7, usegmt=True)}, 0.0),  # in the past: now
        ({"RateLimit-Reset": "2"}, 2.0),
        ({"X-RateLimit-Reset": str(int(NOW) + 5)}, 5.0),  # an epoch timestamp, GitHub style
        ({"RateLimit": '"default";r=0;t=4'}, 4.0),  # the structured-field draft
        ({"Retry-After": "1", "RateLimit-Reset": "6"}, 6.0),  # the larger hint wins
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-3"}, None),
        ({}, None),
    ],
)
def test_server_delay_hints(headers: dict, expected: float) -> None:
    assert parse_server_delay(httpx.Headers(headers), now=NOW) == expected


def test_safe_url_hides_userinfo() -> None:
    assert safe_url("https://user:pw@opik.example/api") == "https://***@opik.example/api"
    assert safe_url("http://localhost:5173/api") == "http://localhost:5173/api"


def _span(**fields: object) -> Item:
    data = {
        "id": "01a2b3c4-0000-7000-8000-000000000001",
        "trace_id": "01a2b3c4-0000-7000-8000-000000000002",
        "project_name": "p",
        "name": "llm call",
        "type": "llm",
        "start_time": "2025-01-01T00:00:00Z",
        **fields,
    }
    return Item("span", data["id"], json.dumps(data).encode(), "span 'llm call'")




def test_request_body_is_the_items_bytes_joined() -> None:
    from opentelemetry.exporter.opik._items import request_body

    for kind, key in (("trace", "traces"), ("span", "spans"), ("span_score", "scores")):
        for n in (0, 1, 3):
            items = [Item(kind, str(i), json.dumps({"id": i, "x": "é"}).encode(), "l") for i in range(n)]
            before = [i.body for i in items]
            assert json.loads(request_body(kind, items)) == {key: [{"id": i, "x": "é"} for i in range(n)]}
            assert [i.body for i in items] == before  # bodies are never changed (re-sends stay identical)
