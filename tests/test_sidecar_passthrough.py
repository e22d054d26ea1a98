"""The sidecar and Opik's credentials (issue 19): a sidecar Opik refuses answers its senders with an
error they can see, never a 200 it would drop; with ``--pass-credentials`` each sender's
``Authorization`` / ``Comet-Workspace`` / ``projectName`` deliver its spans, one sink per key and
workspace, like Opik's own OTLP endpoint. Real sidecar processes, the official OTLP exporters, and the
Opik stand-in checking keys the way Opik does (each key belongs to one workspace)."""

from __future__ import annotations

import time
from dataclasses import replace as dataclass_replace
from typing import Any, Dict, Iterator, Optional

import grpc
import httpx
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opik_standin import OpikStandin, RecordedRequest, Reply, _error
from sidecar_helpers import SidecarProcess, clean_env, make_spans, protobuf_body, wait_until

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PB = {"Content-Type": "application/x-protobuf"}
KEYS = {"key-of-team-a-0123456789": "team-a", "key-of-team-b-9876543210": "team-b"}


class KeyedOpik(OpikStandin):
    """Opik with several API keys, each valid for its own workspace (401 for an unknown key, 403 elsewhere)."""

    def __init__(self, keys: Dict[str, str]) -> None:
        super().__init__()
        self.keys = keys

    def _auth(self, req: RecordedRequest) -> Optional[Reply]:
        key = req.headers.get("authorization")
        if key not in self.keys:
            return _error(401, "User not allowed to access workspace")
        if req.headers.get("comet-workspace") != self.keys[key]:
            return _error(403, "User has no permission to the workspace")
        return None


@pytest.fixture
def keyed() -> Iterator[KeyedOpik]:
    with KeyedOpik(KEYS) as standin:
        yield standin


def _send(exporter: SpanExporter, name: str, n: int) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("passthrough.tests")
    for i in range(n):
        with tracer.start_as_current_span(f"{name}-{i}"):
            tracer.start_span(f"{name}-{i}.child").end()
    provider.shutdown()


def test_two_senders_with_their_own_keys_each_get_their_spans_stored_with_their_key(keyed: KeyedOpik) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    (key_a, ws_a), (key_b, ws_b) = KEYS.items()
    with SidecarProcess(keyed.url, "--pass-credentials") as sidecar:  # the sidecar has no key of its own
        http_a = HttpExporter(
            endpoint=sidecar.traces_url, headers={"Authorization": key_a, "Comet-Workspace": ws_a, "projectName": "project-a"}
        )
        grpc_b = sidecar.otlp_grpc_exporter(
            headers={"authorization": key_b, "comet-workspace": ws_b, "projectname": "project-b"},
        )
        _send(http_a, "sender-a", 3)
        _send(grpc_b, "sender-b", 4)
        keyed.wait_for_counts(traces=7, spans=14, timeout=30)
        ready = httpx.get(sidecar.url + "/readyz")  # the sidecar's own (absent) key is refused; senders bring theirs
        assert ready.status_code == 200 and "--pass-credentials" in ready.text
        metrics = httpx.get(sidecar.url + "/metrics").text
        log = sidecar.stderr()
    where = {(ws, project) for ws, project, *_ in keyed.spans}
    assert where == {("team-a", "project-a"), ("team-b", "project-b")}
    for (ws, _project, *_), row in keyed.spans.items():
        assert row["name"].startswith("sender-a" if ws == "team-a" else "sender-b")
    batches = [r for r in keyed.requests if r.path.endswith("/batch") and r.status == 204]
    assert {(r.headers["authorization"], r.headers["comet-workspace"]) for r in batches} == {(key_a, ws_a), (key_b, ws_b)}
    assert "opik_otel_delivery_sinks 3" in metrics  # the sidecar's own and one per sender
    assert key_a not in log and key_b not in log and key_a[:12] not in metrics


def test_a_sender_whose_passed_key_opik_refuses_is_answered_401_and_nothing_is_stored(keyed: KeyedOpik) -> None:
    with SidecarProcess(keyed.url, "--pass-credentials") as sidecar:
        body = protobuf_body(make_spans(lambda t: t.start_span("refused").end()))
        r = httpx.post(sidecar.traces_url, content=body, headers={**PB, "Authorization": "not-a-key-000000", "Comet-Workspace": "team-a"})
        assert r.status_code == 401 and b"refused the credentials (HTTP 401)" in r.content
        assert b"Authorization" in r.content and b"not-a-key-000000" not in r.content
        with sidecar.grpc_channel() as channel:
            call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
            with pytest.raises(grpc.RpcError) as err:
                call(body, timeout=30, metadata=(("authorization", next(iter(KEYS))), ("comet-workspace", "team-b")))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED and "HTTP 403" in (err.value.details() or "")
        assert "not-a-key-000000" not in sidecar.stderr()
    assert not keyed.spans


def test_a_sidecar_opik_refuses_answers_503_and_unavailable_with_the_setting_to_fix() -> None:
    """Issue 19: with no key against an Opik that needs one it answered 200 and dropped every span."""
    with OpikStandin(api_key="the-right-key-123456") as opik:
        with SidecarProcess(opik.url, env=clean_env()) as sidecar:
            body = protobuf_body(make_spans(lambda t: t.start_span("unsent").end()))
            r = httpx.post(sidecar.traces_url, content=body, headers=PB)
            assert r.status_code == 503 and r.headers["retry-after"]
            assert b"OPIK_API_KEY" in r.content and b"refused the credentials (HTTP 401)" in r.content
            with sidecar.grpc_channel() as channel:
                call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
                with pytest.raises(grpc.RpcError) as err:
                    call(body, timeout=30)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "OPIK_API_KEY" in (err.value.details() or "")
            metrics = httpx.get(sidecar.url + "/metrics").text
            assert "opik_otel_receiver_spans_refused_total 2" in metrics and "opik_otel_receiver_spans_accepted_total 0" in metrics
        assert not opik.spans
        # the same sidecar with the key: accepted and stored
        with SidecarProcess(opik.url, env=clean_env(OPIK_API_KEY="the-right-key-123456"), grpc=False) as sidecar:
            assert httpx.post(sidecar.traces_url, content=body, headers=PB).status_code == 200
            opik.wait_for_counts(traces=1, spans=1)
            assert "the-right-key-123456" not in sidecar.stderr()


def test_pass_credentials_with_an_auth_token_is_a_usage_error() -> None:
    import subprocess

    from sidecar_helpers import opik_otel_command

    proc = subprocess.run(
        opik_otel_command() + ["serve", "--pass-credentials", "--no-grpc", "--port", "0"],
        env=clean_env(OPIK_OTEL_AUTH_TOKEN="a-sidecar-token-123"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "OPIK_OTEL_PASS_CREDENTIALS" in proc.stderr and "OPIK_OTEL_AUTH_TOKEN" in proc.stderr
    assert "a-sidecar-token-123" not in proc.stderr


def test_at_most_max_sinks_and_the_least_recently_used_is_closed_after_delivering(keyed: KeyedOpik) -> None:
    """In process, with a bound of 1 sender sink: the second key closes the first one's sink through close_sink."""
    from opentelemetry.exporter.opik._config import resolve_settings
    from opentelemetry.exporter.opik._pipeline import Pipeline
    from opentelemetry.exporter.opik._stats import Stats
    from opentelemetry.exporter.opik._writer import Writer
    from opentelemetry.exporter.opik.sidecar._receiver import Receiver
    from opentelemetry.exporter.opik.sidecar._sinks import Credentials

    settings = resolve_settings({"url": keyed.url})
    stats = Stats()
    rx = Receiver(settings, Pipeline(settings, stats=stats), Writer(settings, stats=stats), stats, pass_credentials=True, max_sinks=1)
    try:
        outcomes: Any = []
        for key, ws in KEYS.items():
            body = protobuf_body(make_spans(lambda t, ws=ws: t.start_span(f"from-{ws}").end()))
            outcomes.append(rx.handle(body, "", "application/x-protobuf", None, credentials=Credentials(key, ws)).code)
        assert outcomes == ["ok", "ok"]
        keyed.wait_for_counts(traces=2, spans=2, timeout=20)  # the evicted sink delivered what it held
        assert len(rx.sinks.targets()) == 2  # the sidecar's own and the most recent sender's
        assert {ws for ws, *_ in keyed.spans} == {"team-a", "team-b"}
        # the closed sink's counts are kept in /metrics
        wait_until(lambda: "opik_otel_spans_exported_total 2" in rx.metrics_text(), 10, "both sinks' spans counted")
    finally:
        assert rx.close(10)


def test_a_sink_that_cannot_be_opened_is_a_503_for_that_sender_only(keyed: KeyedOpik, tmp_path: Any) -> None:
    """A sender's spool directory that cannot be made (the spool path is a file): that sender hears why, others go on."""
    from opentelemetry.exporter.opik._config import resolve_settings
    from opentelemetry.exporter.opik._pipeline import Pipeline
    from opentelemetry.exporter.opik._stats import Stats
    from opentelemetry.exporter.opik._writer import Writer
    from opentelemetry.exporter.opik.sidecar._receiver import Receiver
    from opentelemetry.exporter.opik.sidecar._sinks import Credentials

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    (key_a, ws_a), (key_b, ws_b) = KEYS.items()
    settings = resolve_settings({"url": keyed.url, "spool_dir": str(blocker), "api_key": key_b, "workspace": ws_b})
    stats = Stats()
    own = Writer(dataclass_replace(settings, spool_dir=None), stats=stats)
    rx = Receiver(settings, Pipeline(settings, stats=stats), own, stats, pass_credentials=True)
    try:
        body = protobuf_body(make_spans(lambda t: t.start_span("needs-a-sink").end()))
        out = rx.handle(body, "", "application/x-protobuf", None, credentials=Credentials(key_a, ws_a))
        assert out.code == "unavailable" and "could not open a delivery sink" in out.message and out.retry_after > 0
        assert key_a not in out.message
        assert rx.handle(body, "", "application/x-protobuf", None).code == "ok"  # the sidecar's own sink goes on
        keyed.wait_for_counts(traces=1, spans=1)
    finally:
        rx.close(5)


def test_an_llm_span_the_log_join_held_goes_out_with_its_senders_credentials(keyed: KeyedOpik) -> None:
    """Once OTLP logs are seen, an LLM span without content waits for its log records; when the join
    releases it (the window ran out), it is delivered through the sink of the sender that sent it."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor as Simple
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from opentelemetry.exporter.opik._config import resolve_settings
    from opentelemetry.exporter.opik._pipeline import Pipeline
    from opentelemetry.exporter.opik._stats import Stats
    from opentelemetry.exporter.opik._writer import Writer
    from opentelemetry.exporter.opik.sidecar._receiver import Receiver
    from opentelemetry.exporter.opik.sidecar._sinks import Credentials

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(Simple(memory))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    tracer.start_span("chat gpt-4o", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}).end()
    provider.shutdown()
    body = protobuf_body(memory.get_finished_spans())

    key_a, ws_a = next(iter(KEYS.items()))
    settings = resolve_settings({"url": keyed.url, "log_join_window": 0.3})
    stats = Stats()
    rx = Receiver(settings, Pipeline(settings, stats=stats), Writer(settings, stats=stats), stats, pass_credentials=True)
    creds = Credentials(key_a, ws_a)
    try:
        assert rx.handle(b"", "", "application/x-protobuf", None, signal="logs", credentials=creds).code == "ok"
        assert rx.handle(body, "", "application/x-protobuf", None, credentials=creds).code == "ok"
        keyed.wait_for_counts(spans=1, timeout=20)
        assert [ws for ws, *_ in keyed.spans] == [ws_a]
    finally:
        rx.close(5)


def test_what_a_pipeline_holds_back_is_released_only_into_its_own_senders_sink(keyed: KeyedOpik) -> None:
    """With the genai span filter a trace's early spans are held until an LLM span of the trace comes. One
    trace's spans from two senders with different keys: B's LLM span releases nothing of A's into B's workspace."""
    from opentelemetry.exporter.opik._config import resolve_settings
    from opentelemetry.exporter.opik._pipeline import Pipeline
    from opentelemetry.exporter.opik._stats import Stats
    from opentelemetry.exporter.opik._writer import Writer
    from opentelemetry.exporter.opik.sidecar._receiver import Receiver
    from opentelemetry.exporter.opik.sidecar._sinks import Credentials

    def build(tracer: Any) -> None:
        with tracer.start_as_current_span("agent-run"):
            tracer.start_span("db-lookup-of-a").end()
            tracer.start_span("chat", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}).end()

    spans = make_spans(build)
    of_a = protobuf_body([s for s in spans if s.name == "db-lookup-of-a"])
    of_b = protobuf_body([s for s in spans if s.name == "chat"])
    (key_a, ws_a), (key_b, ws_b) = KEYS.items()
    settings = resolve_settings({"url": keyed.url, "span_filter": "genai"})
    stats = Stats()
    rx = Receiver(settings, Pipeline(settings, stats=stats), Writer(settings, stats=stats), stats, pass_credentials=True)
    try:
        assert rx.handle(of_a, "", "application/x-protobuf", None, credentials=Credentials(key_a, ws_a)).code == "ok"
        assert rx.handle(of_b, "", "application/x-protobuf", None, credentials=Credentials(key_b, ws_b)).code == "ok"
        keyed.wait_for_counts(spans=1, timeout=20)  # B's LLM span
    finally:
        rx.close(5)
    stored = {(ws, row["name"]) for (ws, *_), row in keyed.spans.items()}
    assert ("team-b", "chat") in stored
    assert not any(name == "db-lookup-of-a" and ws != "team-a" for ws, name in stored), stored


def _content_logs(trace_id: str, span_id: str, answer: str) -> bytes:
    """OTLP/JSON logs: the assistant answer of one LLM span, as an instrumentation sends it."""
    import json

    record = {
        "timeUnixNano": str(time.time_ns()),
        "traceId": trace_id,
        "spanId": span_id,
        "attributes": [{"key": "event.name", "value": {"stringValue": "gen_ai.choice"}}],
        "body": {"kvlistValue": {"values": [
            {"key": "index", "value": {"intValue": "0"}},
            {"key": "message", "value": {"kvlistValue": {"values": [
                {"key": "role", "value": {"stringValue": "assistant"}},
                {"key": "content", "value": {"stringValue": answer}},
            ]}}},
        ]}},
    }
    return json.dumps({"resourceLogs": [{"resource": {}, "scopeLogs": [{"scope": {"name": "app"}, "logRecords": [record]}]}]}).encode()


def test_a_log_record_joins_only_spans_of_its_own_senders_credentials(keyed: KeyedOpik) -> None:
    """Sender A's log record naming sender B's span (same ids) brings no content to B's span in B's workspace;
    B's own record does."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor as Simple
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from opentelemetry.exporter.opik._config import resolve_settings
    from opentelemetry.exporter.opik._pipeline import Pipeline
    from opentelemetry.exporter.opik._stats import Stats
    from opentelemetry.exporter.opik._writer import Writer
    from opentelemetry.exporter.opik.sidecar._receiver import Receiver
    from opentelemetry.exporter.opik.sidecar._sinks import Credentials

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(Simple(memory))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    tracer.start_span("chat gpt-4o", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}).end()
    provider.shutdown()
    (span,) = memory.get_finished_spans()
    tid, sid = f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"
    (key_a, ws_a), (key_b, ws_b) = KEYS.items()
    a, b = Credentials(key_a, ws_a), Credentials(key_b, ws_b)
    settings = resolve_settings({"url": keyed.url, "log_join_window": 0.3})
    stats = Stats()
    rx = Receiver(settings, Pipeline(settings, stats=stats), Writer(settings, stats=stats), stats, pass_credentials=True)

    def stored_output() -> str:
        return " ".join(str(row.get("output")) for (ws, *_), row in keyed.spans.items() if ws == ws_b)

    try:
        assert rx.handle(protobuf_body([span]), "", "application/x-protobuf", None, credentials=b).code == "ok"
        keyed.wait_for_counts(spans=1, timeout=20)
        assert rx.handle(_content_logs(tid, sid, "answer sent by A"), "", "application/json", None, signal="logs", credentials=a).code == "ok"
        assert rx.handle(_content_logs(tid, sid, "answer sent by B"), "", "application/json", None, signal="logs", credentials=b).code == "ok"
        wait_until(lambda: "answer sent by B" in stored_output(), 20, "B's own answer joined to B's span")
        assert "answer sent by A" not in stored_output()
        assert all(ws == ws_b for ws, *_ in keyed.spans)
    finally:
        rx.close(5)


def test_refused_keys_open_no_sink_and_evict_no_good_one(keyed: KeyedOpik) -> None:
    """Keys Opik refuses are checked before a sink is opened: 401, no sink, and a good sender's sink stays."""
    from opentelemetry.exporter.opik._config import resolve_settings
    from opentelemetry.exporter.opik._pipeline import Pipeline
    from opentelemetry.exporter.opik._stats import Stats
    from opentelemetry.exporter.opik._writer import Writer
    from opentelemetry.exporter.opik.sidecar._receiver import Receiver
    from opentelemetry.exporter.opik.sidecar._sinks import Credentials

    key_a, ws_a = next(iter(KEYS.items()))
    settings = resolve_settings({"url": keyed.url})
    stats = Stats()
    rx = Receiver(settings, Pipeline(settings, stats=stats), Writer(settings, stats=stats), stats, pass_credentials=True, max_sinks=1)
    body = protobuf_body(make_spans(lambda t: t.start_span("kept-sink").end()))
    try:
        assert rx.handle(body, "", "application/x-protobuf", None, credentials=Credentials(key_a, ws_a)).code == "ok"
        good = rx.sinks.targets()[1]
        for i in range(3):
            out = rx.handle(body, "", "application/x-protobuf", None, credentials=Credentials(f"guessed-key-{i:04d}", ws_a))
            assert out.code == "unauthenticated" and "HTTP 401" in out.message and f"guessed-key-{i:04d}" not in out.message
        assert rx.sinks.targets() == [rx.sinks.default, good]  # still open, never evicted
        assert rx.counters.spans_refused == 3
        keyed.wait_for_counts(traces=1, spans=1)
    finally:
        rx.close(5)
