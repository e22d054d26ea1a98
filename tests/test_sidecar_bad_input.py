"""Hostile and broken input to ``opik-otel serve``: each gets its documented status, and the sidecar keeps serving.

| input                                   | HTTP | gRPC             |
|-----------------------------------------|------|------------------|
| missing / wrong bearer token            | 401  | UNAUTHENTICATED  |
| undecodable protobuf / JSON / gzip      | 400  | INVALID_ARGUMENT |
| method other than POST                  | 405  | -                |
| body (or decompressed body) over limit  | 413  | RESOURCE_EXHAUSTED (grpcio's own limit) |
| more spans than the per-request limit   | 413  | INVALID_ARGUMENT |
| other Content-Type / Content-Encoding   | 415  | -                |
"""

from __future__ import annotations

import gzip
import json
import random
import zlib
from typing import Any, Dict, Iterator, List

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opik_standin import OpikStandin
from sidecar_helpers import SidecarProcess, TransportClient, clean_env, make_spans, otlp_json, protobuf_body, wait_until

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PB = {"Content-Type": "application/x-protobuf", **AUTH}
JSON = {"Content-Type": "application/json", **AUTH}
MAX_BODY = 12_000_000
MAX_SPANS = 50
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
HTTP = TransportClient(timeout=30)  # one keep-alive client: a new one per request costs ~50 ms


@pytest.fixture(scope="module")
def opik() -> Iterator[OpikStandin]:
    with OpikStandin() as standin:
        yield standin


@pytest.fixture(scope="module")
def sidecar(opik: OpikStandin) -> Iterator[SidecarProcess]:
    env = clean_env(OPIK_OTEL_AUTH_TOKEN=TOKEN)
    with SidecarProcess(opik.url, "--max-body-bytes", str(MAX_BODY), "--max-spans-per-request", str(MAX_SPANS), env=env) as proc:
        assert "bearer token required" in proc.start_line and TOKEN not in proc.start_line
        yield proc


class Good:
    """Sends one valid span per call and remembers its name, so every good request can be checked at the end."""

    def __init__(self, sidecar: SidecarProcess) -> None:
        self.sidecar = sidecar
        self.names: List[str] = []

    def __call__(self) -> None:
        name = f"good-{len(self.names)}"
        spans = make_spans(lambda t: t.start_span(name).end())
        r = HTTP.post(self.sidecar.traces_url, content=protobuf_body(spans), headers=PB, timeout=10)
        assert r.status_code == 200, (r.status_code, r.text)
        assert r.content == b""  # an empty ExportTraceServiceResponse: full success
        self.names.append(name)


@pytest.fixture(scope="module")
def good(sidecar: SidecarProcess) -> Good:
    return Good(sidecar)


def _status(r: httpx.Response) -> Dict[str, Any]:
    """The google.rpc.Status body, decoded from JSON or (by hand) protobuf."""
    if r.headers["content-type"].startswith("application/json"):
        return r.json()
    data, pos, out = r.content, 0, {}
    while pos < len(data):
        key = data[pos]
        pos += 1
        if key == 0x08:
            out["code"] = data[pos]
            pos += 1
        elif key == 0x12:
            size = data[pos]
            pos += 1
            if size & 0x80:
                size = (size & 0x7F) | (data[pos] << 7)
                pos += 1
            out["message"] = data[pos : pos + size].decode()
            pos += size
        else:
            break
    return out


def _post(sidecar: SidecarProcess, body: Any, headers: Dict[str, str]) -> httpx.Response:
    return HTTP.post(sidecar.traces_url, content=body, headers=headers, timeout=30)


@pytest.mark.parametrize(
    "headers",
    [{"Content-Type": "application/x-protobuf"}, {"Content-Type": "application/x-protobuf", "Authorization": "Bearer wrong"},
     {"Content-Type": "application/x-protobuf", "Authorization": TOKEN}, {"Content-Type": "application/x-protobuf", "Authorization": f"Basic {TOKEN}"}],
    ids=["missing", "wrong", "no-scheme", "basic"],
)
def test_auth_token_required(sidecar: SidecarProcess, good: Good, headers: Dict[str, str]) -> None:
    spans = make_spans(lambda t: t.start_span("sneaky").end())
    r = _post(sidecar, protobuf_body(spans), headers)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert "bearer token" in _status(r)["message"]
    good()


def test_random_bytes_and_truncated_protobuf_are_400(sidecar: SidecarProcess, good: Good) -> None:
    rng = random.Random(5)
    junk = bytes(rng.getrandbits(8) for _ in range(2000))
    r = _post(sidecar, b"\xff\xff\xff\xff" + junk, PB)
    assert r.status_code == 400 and r.headers["content-type"] == "application/x-protobuf"
    st = _status(r)
    assert st["code"] == 3 and "not a valid OTLP protobuf" in st["message"]
    good()
    body = protobuf_body(make_spans(lambda t: [t.start_span(f"s{i}").end() for i in range(5)]))
    r = _post(sidecar, body[:-9], PB)
    assert r.status_code == 400 and "truncated" in _status(r)["message"]
    good()


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"resourceSpans": "many"}', b'{"resourceSpans": [{"scopeSpans": [{"spans": {}}]}]}'])
def test_undecodable_json_is_400(sidecar: SidecarProcess, good: Good, body: bytes) -> None:
    r = _post(sidecar, body, JSON)
    assert r.status_code == 400 and r.headers["content-type"] == "application/json"
    assert r.json()["code"] == 3 and "OTLP/JSON" in r.json()["message"]
    good()


def test_json_span_with_wrong_types_is_a_partial_success(sidecar: SidecarProcess, good: Good) -> None:
    doc = otlp_json(make_spans(lambda t: [t.start_span("ok-span").end(), t.start_span("typed-wrong").end()]))
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[1]["startTimeUnixNano"] = {"not": "a number"}
    spans[1]["kind"] = "sideways"
    r = _post(sidecar, json.dumps(doc), JSON)
    assert r.status_code == 200
    assert r.json()["partialSuccess"]["rejectedSpans"] == "1"
    good()


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "", "multipart/form-data"])
def test_unknown_content_type_is_415(sidecar: SidecarProcess, good: Good, ctype: str) -> None:
    headers = dict(AUTH)
    if ctype:
        headers["Content-Type"] = ctype
    r = _post(sidecar, b"hello", headers)
    assert r.status_code == 415 and "application/x-protobuf" in r.json()["message"]
    good()


def test_unknown_content_encoding_is_415_and_corrupt_gzip_is_400(sidecar: SidecarProcess, good: Good) -> None:
    r = _post(sidecar, b"xx", {**PB, "Content-Encoding": "br"})
    assert r.status_code == 415 and "Content-Encoding" in _status(r)["message"]
    good()
    r = _post(sidecar, b"\x1f\x8b\x08\x00garbage-not-gzip", {**PB, "Content-Encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in _status(r)["message"]
    good()
    body = protobuf_body(make_spans(lambda t: t.start_span("deflated").end()))
    for raw in (zlib.compress(body), zlib.compress(body)[2:-4]):  # zlib-wrapped and raw deflate
        assert _post(sidecar, raw, {**PB, "Content-Encoding": "deflate"}).status_code == 200
    assert _post(sidecar, gzip.compress(body)[:-10], {**PB, "Content-Encoding": "gzip"}).status_code == 400


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_method_is_405(sidecar: SidecarProcess, good: Good, method: str) -> None:
    r = HTTP.request(method, sidecar.traces_url, headers=PB)
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert HTTP.post(sidecar.url + "/v1/profiles", headers=PB).status_code == 404  # /v1/metrics is accepted (issue 14)
    good()


def _gzip_bomb(compressed_mb: int = 10) -> bytes:
    """~``compressed_mb`` MB of gzip that expands about a thousandfold (members of zeros)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1024 * 1024)
    member = b"".join(c.compress(zeros) for _ in range(64)) + c.flush()  # 64 MiB of zeros in ~64 KB
    return member * (compressed_mb * 1024 * 1024 // len(member) + 1)


def test_gzip_bomb_is_413_without_exhausting_memory(sidecar: SidecarProcess, good: Good) -> None:
    bomb = _gzip_bomb(10)
    assert 10_000_000 <= len(bomb) < MAX_BODY  # under the wire limit: only decompression can catch it
    before = sidecar.rss_mb()
    r = _post(sidecar, bomb, {**PB, "Content-Encoding": "gzip"})
    assert r.status_code == 413 and "after decompression" in _status(r)["message"]
    assert sidecar.rss_mb() < before + 120  # the body (10 MB) plus at most the cap, never the 10 GB
    good()


def test_body_over_the_limit_is_413(sidecar: SidecarProcess, good: Good) -> None:
    big = b"\x0a" + b"\x00" * (MAX_BODY + 10)
    r = _post(sidecar, big, PB)  # Content-Length says it all: drained, then answered
    assert r.status_code == 413 and f"larger than {MAX_BODY} bytes" in _status(r)["message"]
    good()
    r = _post(sidecar, iter([big[i : i + 1_000_000] for i in range(0, len(big), 1_000_000)]), PB)  # chunked, no length
    assert r.status_code == 413
    good()


def test_too_many_spans_is_413(sidecar: SidecarProcess, good: Good) -> None:
    spans = make_spans(lambda t: [t.start_span(f"s{i}").end() for i in range(MAX_SPANS + 1)])
    r = _post(sidecar, protobuf_body(spans), PB)
    assert r.status_code == 413 and f"limit is {MAX_SPANS}" in _status(r)["message"]
    r = _post(sidecar, json.dumps(otlp_json(spans)), JSON)
    assert r.status_code == 413 and "smaller batches" in r.json()["message"]
    good()


def test_random_bodies_never_get_a_5xx(sidecar: SidecarProcess, good: Good) -> None:
    rng = random.Random(11)
    valid = protobuf_body(make_spans(lambda t: [t.start_span(f"r{i}", attributes={"k": "v" * i}).end() for i in range(8)]))
    doc = json.dumps(otlp_json(make_spans(lambda t: t.start_span("j", attributes={"a": (1, 2)}).end())))
    for i in range(60):
        if i % 2:
            b = bytearray(valid)
            for _ in range(rng.randint(1, 20)):
                b[rng.randrange(len(b))] = rng.getrandbits(8)
            r = _post(sidecar, bytes(b), PB)
        else:
            s = list(doc)
            for _ in range(rng.randint(1, 5)):
                s[rng.randrange(len(s))] = rng.choice('{}[]",:0a\\')
            r = _post(sidecar, "".join(s).encode(), JSON)
        assert r.status_code in (200, 400, 413), (r.status_code, r.text)
    good()


def _grpc_call(sidecar: SidecarProcess, body: bytes, metadata: Any = None) -> Any:
    with sidecar.grpc_channel() as channel:
        export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        return export(body, metadata=metadata, timeout=10)


def test_grpc_bad_input_and_auth(sidecar: SidecarProcess, good: Good, opik: OpikStandin) -> None:
    auth = (("authorization", f"Bearer {TOKEN}"),)
    spans = make_spans(lambda t: t.start_span("grpc-span").end())
    with pytest.raises(grpc.RpcError) as err:
        _grpc_call(sidecar, protobuf_body(spans))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as err:
        _grpc_call(sidecar, protobuf_body(spans), (("authorization", "Bearer nope"),))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as err:
        _grpc_call(sidecar, b"\xff\xff\xff\xff\xff", auth)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "not a valid OTLP protobuf" in err.value.details()
    many = make_spans(lambda t: [t.start_span(f"g{i}").end() for i in range(MAX_SPANS + 1)])
    with pytest.raises(grpc.RpcError) as err:
        _grpc_call(sidecar, protobuf_body(many), auth)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and f"limit is {MAX_SPANS}" in err.value.details()
    reply = _grpc_call(sidecar, protobuf_body(spans), auth)
    assert ExportTraceServiceResponse.FromString(reply).partial_success.rejected_spans == 0
    wait_until(lambda: any(s["name"] == "grpc-span" for s in opik.spans.values()), 10, "the gRPC span")
    good()


def test_health_ready_metrics_need_no_token(sidecar: SidecarProcess, good: Good) -> None:
    assert HTTP.get(sidecar.url + "/healthz").text == "ok\n"
    r = HTTP.get(sidecar.url + "/readyz")
    assert r.status_code == 200 and r.text.startswith("ready:")
    metrics = HTTP.get(sidecar.url + "/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = metrics.text
    for sample in ('opik_otel_receiver_requests_total{protocol="http",status="200"}', "opik_otel_spans_exported_total", "opik_otel_queue_items"):
        assert sample in text
    assert HTTP.post(sidecar.url + "/healthz").status_code == 405
    good()


def test_every_good_request_was_delivered(sidecar: SidecarProcess, good: Good, opik: OpikStandin) -> None:
    """Runs last in this module: nothing sent between the bad requests was lost."""
    assert len(good.names) > 20
    wait_until(lambda: set(good.names) <= {t["name"] for t in opik.traces.values()}, 15, "every good span in Opik")
    assert sidecar.alive()
    metrics = HTTP.get(sidecar.url + "/metrics").text
    for status in ("400", "401", "405", "413", "415"):
        assert f'opik_otel_receiver_requests_total{{protocol="http",status="{status}"}}' in metrics
    assert TOKEN not in sidecar.stderr()


def test_readiness_reports_wrong_credentials_and_unreachable_opik() -> None:
    with OpikStandin(api_key="right-key") as opik:
        env = clean_env(OPIK_API_KEY="wrong-key")
        with SidecarProcess(opik.url, env=env, grpc=False) as proc:
            r = HTTP.get(proc.url + "/readyz")
            assert r.status_code == 503 and "refused the credentials (HTTP 401)" in r.text
            assert "wrong-key" not in r.text and "wrong-key" not in proc.start_line
    with SidecarProcess("http://127.0.0.1:9/api", grpc=False) as proc:
        r = HTTP.get(proc.url + "/readyz", timeout=20)
        assert r.status_code == 503 and "unreachable" in r.text
        assert HTTP.get(proc.url + "/healthz").status_code == 200
