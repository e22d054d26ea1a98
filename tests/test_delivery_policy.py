"""The pieces of the delivery policy that are plain functions: server hints, shrinking."""

from __future__ import annotations

import email.utils
import json
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator

from opentelemetry.exporter.opik._items import Item
from opentelemetry.exporter.opik._shrink import NOTE_KEY, shrink_item
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


def test_shrink_cuts_the_largest_values_visibly_and_keeps_ids() -> None:
    prompt = "Tell me a story about a fox. " * 3000
    item = _span(
        input={"messages": [{"role": "user", "content": prompt}], "small": "kept"},
        output={"text": "short answer"},
        metadata={"model": "gpt", "blob": list(range(20000))},
    )
    out = shrink_item(item, 20_000)
    assert out is not None and out.size <= 20_000 and out.id == item.id
    data = json.loads(out.body)
    assert _validator("Span_Write").is_valid(data)
    assert data["input"]["small"] == "kept" and data["output"] == {"text": "short answer"}
    content = data["input"]["messages"][0]["content"]
    assert content.startswith("Tell me a story") and "truncated by the Opik exporter" in content
    assert data["metadata"]["model"] == "gpt"
    note = data["metadata"][NOTE_KEY]
    assert note["original_size_bytes"] == item.size and "input.messages[0].content" in note["paths"]
    # Shrinking again keeps the first original size.
    again = shrink_item(out, 10_000)
    assert again is not None and json.loads(again.body)["metadata"][NOTE_KEY]["original_size_bytes"] == item.size


def test_shrink_gives_up_rather_than_break_the_row() -> None:
    item = _span(name="n" * 50_000)  # the name is not a field shrink may cut
    assert shrink_item(item, 10_000) is None
    assert shrink_item(_span(), 100) is None
