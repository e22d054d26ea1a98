"""Tests of the Opik stand-in fixture itself (tests/opik_standin.py)."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from typing import Any, Dict, Iterator, Optional

import httpx
import pytest

try:
    from tests.opik_standin import (
        DEFAULT_PROJECT,
        SCHEMA_PATH,
        Fault,
        OpikStandin,
        http_date,
        is_uuid7,
        new_uuid7,
        uuid7_timestamp_ms,
    )
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from opik_standin import (  # type: ignore[no-redef]
        DEFAULT_PROJECT,
        SCHEMA_PATH,
        Fault,
        OpikStandin,
        http_date,
        is_uuid7,
        new_uuid7,
        uuid7_timestamp_ms,
    )

TRACES = "/v1/private/traces/batch"
SPANS = "/v1/private/spans/batch"


@pytest.fixture
def opik() -> Iterator[OpikStandin]:
    with OpikStandin() as standin:
        yield standin


@pytest.fixture
def client(opik: OpikStandin) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=opik.url, timeout=5) as c:
        yield c


def trace(**kw: Any) -> Dict[str, Any]:
    base = {"id": new_uuid7(), "name": "t", "start_time": "2024-05-01T10:00:00.123456Z",
            "end_time": "2024-05-01T10:00:01Z", "input": {"q": "hi"}, "project_name": "proj"}
    base.update(kw)
    return base


def span(trace_id: str, parent: Optional[str] = None, **kw: Any) -> Dict[str, Any]:
    base = {"id": new_uuid7(), "trace_id": trace_id, "name": "s", "type": "llm",
            "start_time": "2024-05-01T10:00:00Z", "project_name": "proj",
            "usage": {"prompt_tokens": 3}, "model": "gpt"}
    if parent:
        base["parent_span_id"] = parent
    base.update(kw)
    return base


def test_schema_file_is_self_contained() -> None:
    doc = json.loads(SCHEMA_PATH.read_text())
    schemas = doc["components"]["schemas"]
    for name in ("TraceBatch_Write", "SpanBatch_Write", "Trace_Write", "Span_Write",
                 "ErrorInfo_Write", "FeedbackScoreBatch_Write"):
        assert name in schemas
    refs = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.add(node["$ref"].rsplit("/", 1)[-1])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schemas)
    assert refs <= set(schemas)
    assert len(doc["x-derived-from"]["sha256"]) == 64


def test_uuid7_helpers() -> None:
    ms = 1_700_000_000_123
    u = new_uuid7(ms)
    assert is_uuid7(u) and uuid7_timestamp_ms(u) == ms
    assert not is_uuid7(str(uuid.uuid4()))
    assert not is_uuid7("nope")


def test_valid_trace_and_span_batches(opik: OpikStandin, client: httpx.Client) -> None:
    t = trace(error_info={"exception_type": "E", "traceback": "tb", "message": "m"})
    root = span(t["id"])
    child = span(t["id"], parent=root["id"], type="tool", input="plain string input")
    assert client.post(TRACES, json={"traces": [t]}).status_code == 204
    assert client.post(SPANS, json={"spans": [root, child]}).status_code == 204
    opik.wait_for_counts(traces=1, spans=2)
    stored = opik.traces_by_id()[t["id"]]
    assert stored["name"] == "t" and stored["workspace"] == "default" and stored["project_name"] == "proj"
    assert opik.spans_by_id()[child["id"]]["parent_span_id"] == root["id"]
    assert opik.duplicates() == {}
    assert opik.count(TRACES, 204) == 1 and opik.count(SPANS, 204) == 1
    last = opik.requests[-1]
    assert last.method == "POST" and last.path == "/api" + SPANS and last.status == 204
    assert last.json["spans"][0]["id"] == root["id"] and last.body_size > 0


def test_default_project_and_generated_id(opik: OpikStandin, client: httpx.Client) -> None:
    t = trace()
    del t["project_name"], t["id"]
    assert client.post(TRACES, json={"traces": [t]}).status_code == 204
    (key, row), = opik.traces.items()
    assert key[1] == DEFAULT_PROJECT and is_uuid7(row["id"])


def test_feedback_scores_and_probes(opik: OpikStandin, client: httpx.Client) -> None:
    score = {"id": new_uuid7(), "name": "acc", "value": 0.5, "source": "sdk"}
    r = client.put("/v1/private/traces/feedback-scores", json={"scores": [score]})
    assert r.status_code == 204
    assert client.put("/v1/private/spans/feedback-scores", json={"scores": [score]}).status_code == 204
    assert len(opik.feedback_scores) == 2
    bad = client.put("/v1/private/spans/feedback-scores", json={"scores": [dict(score, source="x")]})
    assert bad.status_code == 422
    assert client.get("/is-alive/ping").json() == {}
    r = client.get("/v1/private/projects", params={"size": 1})
    assert r.status_code == 200
    assert r.json() == {"content": [], "page": 1, "size": 1, "total": 0}
    r = client.get("/v1/private/nothing")
    assert r.status_code == 404 and r.json() == {"code": 404, "message": "HTTP 404 Not Found"}
    assert client.get(TRACES).status_code == 405


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"spans": [span(new_uuid7(), type="agent")]}, "spans[0].type"),
        ({"traces": [trace(environment="e" * 151)]},
         "traces[0].environment: size must be between 0 and 150"),
        ({"traces": [trace() for _ in range(1001)]}, "traces: size must be between 1 and 1000"),
        ({"traces": []}, "traces: size must be between 1 and 1000"),
        ({"traces": [trace(error_info={"exception_type": "E"})]},
         "traces[0].error_info.traceback: must not be null"),
        ({"traces": [trace(start_time="yesterday")]}, "traces[0].start_time: must be a valid date-time"),
        ({"traces": [trace(start_time="2024-13-01T00:00:00Z")]}, "traces[0].start_time"),
        ({"traces": [trace(id="not-a-uuid")]}, "traces[0].id: must be a valid uuid"),
        ({"traces": [trace(project_name="   ")]}, "traces[0].project_name"),
        ({"spans": [span(new_uuid7(), usage={"tokens": "many"})]}, "spans[0].usage.tokens"),
        ({"spans": [{"id": new_uuid7(), "start_time": "2024-05-01T10:00:00Z"}]},
         "spans[0].trace_id: must not be null"),
        ({"trace": []}, "traces: must not be null"),
    ],
)
def test_schema_violations_are_422(client: httpx.Client, opik: OpikStandin, body: Dict[str, Any],
                                   fragment: str) -> None:
    path = SPANS if "spans" in body else TRACES
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert any(fragment in e for e in errors), errors
    assert len(r.text) < 5000
    assert not opik.traces and not opik.spans


def test_invalid_json_is_400(client: httpx.Client) -> None:
    r = client.post(TRACES, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["message"].startswith("Unable to process JSON")


@pytest.mark.parametrize("field, resource", [("id", "Span"), ("trace_id", "Span trace"),
                                             ("parent_span_id", "Span parent")])
def test_non_v7_uuid_rejects_whole_batch(client: httpx.Client, opik: OpikStandin, field: str,
                                         resource: str) -> None:
    good = span(new_uuid7())
    bad = dict(span(new_uuid7()), **{field: str(uuid.uuid4())})
    r = client.post(SPANS, json={"spans": [good, bad]})
    assert r.status_code == 400
    assert r.json() == {"code": 400, "message": "Invalid UUID for id",
                        "details": f"{resource} id must be a version 7 UUID"}
    assert not opik.spans


def test_v4_trace_id_is_400(client: httpx.Client) -> None:
    r = client.post(TRACES, json={"traces": [trace(id=str(uuid.uuid4()))]})
    assert r.status_code == 400 and r.json()["details"] == "Trace id must be a version 7 UUID"


def test_uuid7_timestamp_window(client: httpx.Client) -> None:
    future = new_uuid7(int(time.time() * 1000) + 5 * 60_000)
    r = client.post(TRACES, json={"traces": [trace(id=future)]})
    assert r.status_code == 400 and "too_far_future" in r.json()["details"]
    ancient = new_uuid7(900_000_000_000)  # 1998
    r = client.post(TRACES, json={"traces": [trace(id=ancient)]})
    assert r.status_code == 400 and "too_old" in r.json()["details"]
    recent = new_uuid7(int(time.time() * 1000) + 30_000)  # within the 1-minute tolerance
    assert client.post(TRACES, json={"traces": [trace(id=recent)]}).status_code == 204


def test_gzip_and_chunked_bodies(client: httpx.Client, opik: OpikStandin) -> None:
    body = json.dumps({"traces": [trace()]}).encode()
    packed = gzip.compress(body)
    r = client.post(TRACES, content=packed,
                    headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert r.status_code == 204
    assert opik.requests[-1].body_size == len(packed) and opik.requests[-1].decoded_size == len(body)

    def chunks() -> Iterator[bytes]:
        data = json.dumps({"traces": [trace()]}).encode()
        for i in range(0, len(data), 7):
            yield data[i:i + 7]

    r = client.post(TRACES, content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 204
    assert opik.requests[-1].headers.get("transfer-encoding") == "chunked"
    assert len(opik.traces) == 2
    r = client.post(TRACES, content=b"\x1f\x8bnot gzip", headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400


def test_upsert_keeps_newest_and_reports_duplicates(client: httpx.Client, opik: OpikStandin) -> None:
    t = trace(name="v1", last_updated_at="2024-05-01T10:00:00Z")
    for name, updated in [("v1", "2024-05-01T10:00:00Z"), ("v2", "2024-05-01T10:00:05Z"),
                          ("old", "2024-05-01T09:00:00Z"), ("same", "2024-05-01T12:00:05+02:00")]:
        row = dict(t, name=name, last_updated_at=updated)
        assert client.post(TRACES, json={"traces": [row]}).status_code == 204
    assert len(opik.traces) == 1 and opik.traces_by_id()[t["id"]]["name"] == "same"

    parent_a, parent_b = new_uuid7(), new_uuid7()
    s = span(t["id"], parent=parent_a)
    assert client.post(SPANS, json={"spans": [s]}).status_code == 204
    assert opik.duplicates() == {}
    assert client.post(SPANS, json={"spans": [dict(s, parent_span_id=parent_b)]}).status_code == 204
    dups = opik.duplicates()
    assert list(dups) == ["spans"]
    assert {r["parent_span_id"] for r in dups["spans"][s["id"]]} == {parent_a, parent_b}
    assert client.post(TRACES, json={"traces": [dict(t, project_name="other")]}).status_code == 204
    assert set(opik.duplicates()) == {"traces", "spans"}
    with pytest.raises(AssertionError):
        opik.wait_for_counts(traces=1, timeout=0.2)


def test_auth() -> None:
    with OpikStandin(api_key="k3y", workspace="ws") as opik, httpx.Client(base_url=opik.url) as c:
        body = {"traces": [trace()]}
        r = c.post(TRACES, json=body)
        assert r.status_code == 401
        assert r.json() == {"code": 401, "message": "User not allowed to access workspace"}
        for key, ws, status in [("Bearer k3y", "ws", 401), ("k3y", "other", 403), ("k3y", None, 403),
                                ("k3y", "ws", 204)]:
            headers = {"Authorization": key, **({"Comet-Workspace": ws} if ws else {})}
            assert c.post(TRACES, json=body, headers=headers).status_code == status
        assert c.get("/is-alive/ping").status_code == 200
        assert c.get("/v1/private/projects?size=1").status_code == 401
        (key, row), = opik.traces.items()
        assert key[0] == "ws" and row["workspace"] == "ws"


def test_fault_status_then_success(client: httpx.Client, opik: OpikStandin) -> None:
    opik.faults.add(Fault.respond(503, times=2, path=TRACES))
    opik.faults.add(Fault.respond(429, times=1, path=SPANS, headers={"RateLimit-Reset": "2"}))
    body = {"traces": [trace()]}
    assert [client.post(TRACES, json=body).status_code for _ in range(3)] == [503, 503, 204]
    r = client.post(SPANS, json={"spans": [span(body["traces"][0]["id"])]})
    assert r.status_code == 429 and r.headers["RateLimit-Reset"] == "2"
    assert opik.count(TRACES, 503) == 2 and opik.count(TRACES, 204) == 1
    assert len(opik.traces) == 1 and not opik.spans


def test_fault_retry_after_http_date(client: httpx.Client, opik: OpikStandin) -> None:
    opik.faults.add(Fault.respond(429, headers={"Retry-After": http_date(3)}))
    r = client.post(TRACES, json={"traces": [trace()]})
    assert r.status_code == 429 and r.headers["Retry-After"].endswith("GMT")


def test_fault_stall_after_store_times_out_client(opik: OpikStandin) -> None:
    opik.faults.add(Fault.stall(2.0, after_store=True))
    t = trace()
    with httpx.Client(base_url=opik.url, timeout=0.3) as c, pytest.raises(httpx.TimeoutException):
        c.post(TRACES, json={"traces": [t]})
    assert t["id"] in opik.traces_by_id()  # stored although the client gave up


def test_fault_stall_before_store(opik: OpikStandin) -> None:
    opik.faults.add(Fault.stall(5.0))
    with httpx.Client(base_url=opik.url, timeout=0.3) as c, pytest.raises(httpx.TimeoutException):
        c.post(TRACES, json={"traces": [trace()]})
    opik.stop()  # wakes the stalled handler, which must drop the request, not store it
    time.sleep(0.2)
    assert not opik.traces and opik.requests[-1].status is None


def test_fault_poison_body_limit_drop_and_custom(client: httpx.Client, opik: OpikStandin) -> None:
    opik.faults.add(Fault.poison(lambda item: item.get("name") == "poison"))
    r = client.post(TRACES, json={"traces": [trace(), trace(name="poison")]})
    assert r.status_code == 422 and r.json() == {"errors": ["traces[1]: rejected (injected fault)"]}
    assert not opik.traces
    assert client.post(TRACES, json={"traces": [trace()]}).status_code == 204

    limit = opik.faults.add(Fault.body_limit(2000))
    assert client.post(TRACES, json={"traces": [trace(input={"x": "y" * 3000})]}).status_code == 413
    opik.faults.remove(limit)

    opik.faults.add(Fault.drop_connection())
    with pytest.raises(httpx.TransportError):
        client.post(TRACES, json={"traces": [trace()]})

    opik.faults.add(Fault.custom(lambda req: 500 if req.method == "PUT" else None, times=1))
    assert client.get("/is-alive/ping").status_code == 200
    score = {"id": new_uuid7(), "name": "acc", "value": 1, "source": "sdk"}
    assert client.put("/v1/private/traces/feedback-scores", json={"scores": [score]}).status_code == 500
    assert client.put("/v1/private/traces/feedback-scores", json={"scores": [score]}).status_code == 204


def test_stop_refuses_then_restart_on_same_port(opik: OpikStandin) -> None:
    url = opik.url
    with httpx.Client(base_url=url, timeout=2) as c:
        assert c.get("/is-alive/ping").status_code == 200  # keep-alive connection is open
        opik.stop()
        with pytest.raises(httpx.ConnectError):
            c.get("/is-alive/ping")
        opik.start()
        assert opik.url == url
        assert c.post(TRACES, json={"traces": [trace()]}).status_code == 204
    opik.wait_for(lambda: len(opik.traces) == 1, timeout=1)


def test_clear(client: httpx.Client, opik: OpikStandin) -> None:
    opik.faults.add(Fault.respond(500, times=None, path="/v1/other"))
    assert client.post(TRACES, json={"traces": [trace()]}).status_code == 204
    opik.clear()
    assert not opik.traces and not opik.requests and not opik.counts and len(opik.faults) == 0
