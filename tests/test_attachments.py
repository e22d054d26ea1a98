"""Issue 16: large images, audio and files become Opik attachments of their span, not placeholders.

Real exporter, real pipeline, the stand-in's attachment endpoints (validated against Opik's spec:
``tests/schema/opik_attachment_schemas.json``), real OpenInference OpenAI instrumentation against
the fake OpenAI server, and semconv ``blob`` parts recorded as span attributes.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any, Dict, Iterator, List, Optional

import openai
import opik_ui
import pytest
from conftest_privacy import make_exporter, provider_for
from fake_openai import FakeOpenAIServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opik_standin import Fault, OpikStandin

from opentelemetry.exporter.opik import _attachments
from opentelemetry.exporter.opik._attachments import FILE_NAME_RE, Extractor, file_name


def png(width: int, height: int, seed: int = 1) -> bytes:
    """A valid, incompressible RGB PNG (stored zlib blocks of pseudo-random pixels)."""
    import random

    rng = random.Random(seed)
    raw = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b"")


BIG = png(300, 300)  # ~270 KB: over Opik's 256,000-character threshold once base64
SMALL = png(140, 140, seed=2)  # ~60 KB: stays inline
BIG_URL = "data:image/png;base64," + base64.b64encode(BIG).decode()
SMALL_URL = "data:image/png;base64," + base64.b64encode(SMALL).decode()


@pytest.fixture()
def opik() -> Iterator[OpikStandin]:
    with OpikStandin() as s:
        yield s


def _semconv_span(tp: Any, name: str, data: bytes, question: str = "what is in this picture?") -> None:
    with tp.get_tracer("t").start_as_current_span(name) as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.request.model", "gpt-4o")
        span.set_attribute(
            "gen_ai.input.messages",
            json.dumps([{"role": "user", "parts": [
                {"type": "text", "content": question},
                {"type": "blob", "modality": "image", "mime_type": "image/png",
                 "content": base64.b64encode(data).decode()},
            ]}]),
        )
        span.set_attribute("gen_ai.output.messages", json.dumps([{"role": "assistant", "parts": [
            {"type": "text", "content": "a picture of noise"}], "finish_reason": "stop"}]))


def _image_parts(span: Dict[str, Any]) -> List[str]:
    urls = []
    for m in span["input"]["messages"]:
        if isinstance(m.get("content"), list):
            urls += [p["image_url"]["url"] for p in m["content"] if p.get("type") == "image_url"]
    return urls


def _wait_attachments(opik: OpikStandin, n: int, timeout: float = 15.0) -> None:
    opik.wait_for(lambda: len(opik.attachments) >= n, timeout=timeout)


def test_semconv_blob_part_becomes_an_attachment_of_its_span(opik: OpikStandin) -> None:
    exporter = make_exporter(opik)
    tp = provider_for(exporter)
    _semconv_span(tp, "vision", BIG)
    assert exporter.force_flush(20_000)
    opik.wait_for_counts(traces=1, spans=1)
    _wait_attachments(opik, 1)
    _wait_attachments(opik, 2)
    span = next(iter(opik.spans.values()))
    [(key, att)] = [(k, v) for k, v in opik.attachments.items() if k[0] == "span"]
    assert key[0] == "span" and key[1] == span["id"]
    assert att["data"] == BIG and att["mime_type"] == "image/png" and att["via"] == "local"
    assert att["project_name"] == "privacy-tests"
    [url] = _image_parts(span)
    assert url == f"data:image/png;base64,[{key[2]}]"
    assert FILE_NAME_RE.fullmatch(key[2]) and key[2].startswith("input-attachment-") and key[2].endswith(".png")
    assert span["metadata"]["opik_attachments"][0]["file_name"] == key[2]
    assert opik_ui.problems(span, "what is in this picture?", "a picture of noise") == []
    # the trace row (its root span's input) is an attachment of the trace, uploaded on its own
    trace = next(iter(opik.traces.values()))
    assert BIG_URL[30:2000] not in json.dumps(trace)
    assert opik.attachments[("trace", trace["id"], key[2])]["data"] == BIG
    sent = "".join(json.dumps(r.json) for r in opik.requests if r.json is not None)
    assert BIG_URL[30:2000] not in sent  # the bytes went only to the attachment endpoint
    stats = exporter.stats()
    assert stats["attachments_uploaded"] >= 1 and not any(k.startswith("attachment_") for k in stats["dropped"])
    tp.shutdown()


def test_openinference_openai_image_is_stored_as_an_attachment_of_the_llm_span(opik: OpikStandin) -> None:
    from openinference.instrumentation import TraceConfig
    from openinference.instrumentation.openai import OpenAIInstrumentor

    exporter = make_exporter(opik)
    tp = provider_for(exporter)
    inst = OpenAIInstrumentor()
    # OpenInference redacts base64 images over 32,000 characters unless told otherwise
    # (OPENINFERENCE_BASE64_IMAGE_MAX_LENGTH); to keep the image, the app raises that limit
    inst.instrument(tracer_provider=tp, config=TraceConfig(base64_image_max_length=10_000_000))
    try:
        with FakeOpenAIServer() as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0, timeout=10)
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": [
                {"type": "text", "text": "describe this image"},
                {"type": "image_url", "image_url": {"url": BIG_URL}},
            ]}])
    finally:
        inst.uninstrument()
    assert exporter.force_flush(20_000)
    opik.wait_for_counts(spans=1)
    _wait_attachments(opik, 1)
    [llm] = [s for s in opik.spans.values() if s.get("type") == "llm"]
    span_atts = {k: v for k, v in opik.attachments.items() if k[0] == "span"}
    [(key, att)] = span_atts.items()
    assert key[1] == llm["id"] and att["data"] == BIG
    assert _image_parts(llm) == [f"data:image/png;base64,[{key[2]}]"]
    assert opik_ui.problems(llm, "describe this image", None) == []
    tp.shutdown()


def test_small_image_stays_inline_and_renders(opik: OpikStandin) -> None:
    assert 50_000 < len(SMALL) < 70_000
    exporter = make_exporter(opik)
    tp = provider_for(exporter)
    _semconv_span(tp, "small vision", SMALL)
    assert exporter.force_flush(20_000)
    opik.wait_for_counts(traces=1, spans=1)
    span = next(iter(opik.spans.values()))
    assert _image_parts(span) == [SMALL_URL]
    assert opik_ui.problems(span, "what is in this picture?", "a picture of noise") == []
    assert opik.attachments == {} and not [r for r in opik.requests if "/attachment/" in r.path]
    tp.shutdown()


def test_exporting_the_same_span_twice_uploads_once(opik: OpikStandin) -> None:
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from opentelemetry.exporter.opik import OpikSpanExporter  # noqa: F401 - the real one is make_exporter's

    memory = InMemorySpanExporter()
    tp = provider_for(memory)
    _semconv_span(tp, "vision twice", BIG)
    [ended] = memory.get_finished_spans()
    exporter = make_exporter(opik)
    assert exporter.export([ended]) == SpanExportResult.SUCCESS
    assert exporter.force_flush(20_000)
    assert exporter.export([ended]) == SpanExportResult.SUCCESS
    assert exporter.force_flush(20_000)
    spans_uploads = [w for w in opik.attachment_writes if w[0] == "span"]
    assert len(spans_uploads) == 1
    assert exporter.stats()["attachments_deduplicated"] >= 1
    # a fresh process (a spool re-send, a re-run import) names the same file: one attachment, not two
    again = make_exporter(opik)
    again.export([ended])
    assert again.force_flush(20_000)
    assert len({w for w in opik.attachment_writes if w[0] == "span"}) == 1
    exporter.shutdown()
    again.shutdown()


def test_upload_fails_with_503_then_arrives(opik: OpikStandin) -> None:
    fault = opik.faults.add(Fault.respond(503, times=3, path="/v1/private/attachment/upload-start",
                                          headers={"Retry-After": "0.2"}))
    exporter = make_exporter(opik, retry_deadline=20.0)
    tp = provider_for(exporter)
    _semconv_span(tp, "vision 503", BIG)
    assert exporter.force_flush(30_000)
    _wait_attachments(opik, 1)
    assert fault.fired == 3
    assert any(v["data"] == BIG for v in opik.attachments.values())
    stats = exporter.stats()
    assert stats["attachment_retries"] >= 3 and not any(k.startswith("attachment_") for k in stats["dropped"])
    tp.shutdown()


def test_upload_refused_permanently_the_span_keeps_its_reference_and_the_drop_is_counted(opik: OpikStandin) -> None:
    opik.faults.add(Fault.respond(400, times=None, path="/v1/private/attachment/upload-start"))
    exporter = make_exporter(opik)
    tp = provider_for(exporter)
    _semconv_span(tp, "vision refused", BIG)
    assert exporter.force_flush(20_000)
    opik.wait_for_counts(traces=1, spans=1)
    span = next(iter(opik.spans.values()))
    [url] = _image_parts(span)
    assert FILE_NAME_RE.search(url)
    assert span["metadata"]["opik_attachments"][0]["size"] == len(BIG)
    assert opik.attachments == {}
    dropped = exporter.stats()["dropped"]
    assert dropped.get("attachment_rejected", 0) >= 1
    tp.shutdown()


def test_capture_off_uploads_nothing(opik: OpikStandin) -> None:
    exporter = make_exporter(opik, capture_content=False)
    tp = provider_for(exporter)
    _semconv_span(tp, "vision private", BIG)
    assert exporter.force_flush(20_000)
    opik.wait_for_counts(traces=1, spans=1)
    assert not [r for r in opik.requests if "/attachment/" in r.path]
    assert BIG_URL[30:2000] not in json.dumps(next(iter(opik.spans.values())))
    tp.shutdown()


def test_s3_flow_part_urls_then_complete(opik: OpikStandin) -> None:
    opik.attachment_mode = "s3"
    exporter = make_exporter(opik)
    tp = provider_for(exporter)
    _semconv_span(tp, "vision s3", BIG)
    assert exporter.force_flush(20_000)
    _wait_attachments(opik, 1)
    att = next(v for k, v in opik.attachments.items() if k[0] == "span")
    assert att["data"] == BIG and att["via"] == "s3"
    paths = [r.path for r in opik.requests if r.status is not None and r.status < 300]
    assert any(p.startswith("/s3-parts/") for p in paths)
    assert "/api/v1/private/attachment/upload-complete" in paths
    tp.shutdown()


def test_local_mode_is_detected_once(opik: OpikStandin) -> None:
    exporter = make_exporter(opik)
    tp = provider_for(exporter)
    _semconv_span(tp, "one", BIG)
    _semconv_span(tp, "two", png(300, 300, seed=9))
    assert exporter.force_flush(20_000)
    _wait_attachments(opik, 4)  # two spans and their two trace rows
    starts = [r for r in opik.requests if r.path.endswith("/upload-start")]
    puts = [r for r in opik.requests if r.path.endswith("/attachment/upload")]
    assert len(starts) == 1 and len(puts) == 4
    tp.shutdown()


def test_mask_hook_sees_the_reference(opik: OpikStandin) -> None:
    seen: List[str] = []

    def mask(item: Dict[str, Any], kind: str) -> Optional[Dict[str, Any]]:
        if kind == "span":
            seen.append(json.dumps(item["input"]))
        return item

    exporter = make_exporter(opik, mask=mask)
    tp = provider_for(exporter)
    _semconv_span(tp, "vision masked", BIG)
    assert exporter.force_flush(20_000)
    assert seen and FILE_NAME_RE.search(seen[0]) and BIG_URL[30:2000] not in seen[0]
    tp.shutdown()


def test_mask_hook_dropping_the_item_uploads_nothing(opik: OpikStandin) -> None:
    exporter = make_exporter(opik, mask=lambda item, kind: None)
    tp = provider_for(exporter)
    _semconv_span(tp, "vision masked away", BIG)
    assert exporter.force_flush(20_000)
    tp.shutdown()
    assert exporter.stats()["dropped"]["masked"] == 2
    assert not [r for r in opik.requests if "/attachment/" in r.path]


def test_extractor_finds_runs_in_any_string_and_names_by_content() -> None:
    ex = Extractor(256_000)
    b64 = base64.b64encode(BIG).decode()
    found: List[Any] = []
    out = ex.walk({"text": "before " + b64 + " after", "small": base64.b64encode(SMALL).decode(),
                   "vercel": [{"type": "file", "mediaType": "image/png", "data": b64}],
                   "uri": {"type": "uri", "uri": "https://example.com/a.png"}}, "input", found)
    name = file_name("input", BIG, "image/png")
    assert out["text"] == f"before [{name}] after"
    assert out["vercel"][0]["data"] == f"[{name}]"
    assert out["small"] == base64.b64encode(SMALL).decode() and out["uri"]["uri"] == "https://example.com/a.png"
    assert [f[0] for f in found] == [name, name]
    noise = base64.b64encode(b"\x01\x02\x03" * 100_000).decode()  # base64 of no recognised type: left alone
    assert ex.walk(noise, "input", []) == noise
    assert _attachments.extension("image/jpeg") == "jpg" and _attachments.extension("audio/wav") == "wav"


def _build_vision(tracer: Any) -> None:
    _semconv_span(type("TP", (), {"get_tracer": staticmethod(lambda name: tracer)})(), "vision otlp", BIG)


def test_import_uploads_the_attachment(tmp_path: Any) -> None:
    from sidecar_helpers import make_spans, otlp_json

    from opentelemetry.exporter.opik._import import run_import

    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps(otlp_json(make_spans(_build_vision))) + "\n")
    with OpikStandin() as opik:
        assert run_import([str(path)], {"url": opik.url}, progress="none") == 0
        [span] = opik.spans.values()
        [(key, att)] = [(k, v) for k, v in opik.attachments.items() if k[0] == "span"]
        assert key[1] == span["id"] and att["data"] == BIG
        assert _image_parts(span) == [f"data:image/png;base64,[{key[2]}]"]


def test_sidecar_uploads_the_attachment() -> None:
    import httpx
    from sidecar_helpers import SidecarProcess, make_spans, protobuf_body

    with OpikStandin() as opik, SidecarProcess(opik.url, grpc=False) as sidecar:
        r = httpx.post(sidecar.traces_url, content=protobuf_body(make_spans(_build_vision)),
                       headers={"Content-Type": "application/x-protobuf"}, timeout=20)
        assert r.status_code == 200
        opik.wait_for_counts(spans=1, timeout=20)
        _wait_attachments(opik, 2, timeout=20)
        [span] = opik.spans.values()
        assert opik.attachments[("span", span["id"], FILE_NAME_RE.search(json.dumps(span["input"])).group())]["data"] == BIG


def test_span_filter_drops_before_extraction(opik: OpikStandin) -> None:
    exporter = make_exporter(opik, span_filter="genai")
    tp = provider_for(exporter)
    with tp.get_tracer("t").start_as_current_span("GET /upload") as span:
        span.set_attribute("http.request.body", BIG_URL)
    assert exporter.force_flush(10_000)
    tp.shutdown()
    assert exporter.stats()["dropped"].get("filtered", 0) >= 1
    assert not [r for r in opik.requests if "/attachment/" in r.path]
    # the same span without the filter: its attribute (metadata) leaves as a metadata attachment
    unfiltered = make_exporter(opik)
    tp = provider_for(unfiltered)
    with tp.get_tracer("t").start_as_current_span("GET /upload") as span:
        span.set_attribute("http.request.body", BIG_URL)
    assert unfiltered.force_flush(20_000)
    tp.shutdown()
    names = {k[2] for k in opik.attachments}
    assert names and all(n.startswith("metadata-attachment-") for n in names)


def test_with_a_spool_an_upload_given_up_is_sent_by_the_next_exporter(opik: OpikStandin, tmp_path: Any) -> None:
    import os

    spool = tmp_path / "spool"
    fault = opik.faults.add(Fault.respond(503, times=None, path="/v1/private/attachment/upload-start"))
    first = make_exporter(opik, spool_dir=str(spool), retry_deadline=1.0)
    tp = provider_for(first)
    _semconv_span(tp, "vision spooled", BIG)
    first.force_flush(5_000)
    opik.wait_for_counts(traces=1, spans=1)
    tp.shutdown()
    stats = first.stats()
    assert stats["attachments_spooled"] == 2 and not any(k.startswith("attachment_") for k in stats["dropped"])
    files = os.listdir(spool / "attachments")
    assert len([f for f in files if f.endswith(".opikatt")]) == 2
    assert opik.attachments == {}
    opik.faults.remove(fault)
    second = make_exporter(opik, spool_dir=str(spool))  # a restarted process: adopts the files
    assert second.force_flush(20_000)
    _wait_attachments(opik, 2)
    span = next(iter(opik.spans.values()))
    assert [v["data"] for k, v in opik.attachments.items() if k[:2] == ("span", span["id"])] == [BIG]
    assert second.stats()["attachments_unspooled"] == 2
    assert not [f for f in os.listdir(spool / "attachments") if f.endswith(".opikatt")]
    second.shutdown()


def test_a_forked_child_uploads_its_own_attachment(opik: OpikStandin) -> None:
    import os

    exporter = make_exporter(opik)
    tp = provider_for(exporter)
    _semconv_span(tp, "parent vision", BIG)
    assert exporter.force_flush(20_000)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        ok = False
        try:
            _semconv_span(tp, "child vision", png(300, 300, seed=5))
            ok = exporter.force_flush(20_000)
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    tp.shutdown()
    by_name = {s["name"]: s for s in opik.spans.values()}
    for name in ("parent vision", "child vision"):
        assert [k for k in opik.attachments if k[:2] == ("span", by_name[name]["id"])], name
    assert len([w for w in opik.attachment_writes if w[0] == "span"]) == 2


@pytest.mark.parametrize("tail", ["", "=", "A", "AB", "ABC=", "AB==", "A=", " text", "ABC==="])
def test_runs_are_the_ones_opiks_sdk_pattern_finds(tail: str) -> None:
    import re

    min_chars = 1000
    groups = min_chars // 4
    opik_pattern = re.compile(r"(?:[A-Za-z0-9+/]{4}){" + str(groups) + r",}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
    for n in (3000, 3001, 3002):
        b64 = base64.b64encode(BIG[:n]).decode().rstrip("=")
        text = "look: " + b64 + tail
        expected = [m.group() for m in opik_pattern.finditer(text)]
        found: List[Any] = []
        out = Extractor(min_chars).walk(text, "input", found)
        name = found[0][0]
        assert out == text.replace(expected[0], f"[{name}]", 1), (n, tail)


def test_vercel_ai_file_part_becomes_an_attachment(opik: OpikStandin) -> None:
    exporter = make_exporter(opik)
    tp = provider_for(exporter)
    b64 = base64.b64encode(BIG).decode()
    with tp.get_tracer("ai").start_as_current_span("ai.generateText.doGenerate") as span:
        span.set_attribute("operation.name", "ai.generateText.doGenerate")
        span.set_attribute("ai.operationId", "ai.generateText.doGenerate")
        span.set_attribute("ai.model.id", "gpt-4o")
        span.set_attribute("ai.model.provider", "openai.chat")
        span.set_attribute("ai.prompt.messages", json.dumps([{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "file", "mediaType": "image/png", "data": b64},
        ]}]))
        span.set_attribute("ai.response.text", "noise")
    assert exporter.force_flush(20_000)
    tp.shutdown()
    [llm] = opik.spans.values()
    [(key, att)] = [(k, v) for k, v in opik.attachments.items() if k[0] == "span"]
    assert key[1] == llm["id"] and att["data"] == BIG and att["mime_type"] == "image/png"
    text = json.dumps(llm["input"])
    assert f"[{key[2]}]" in text and b64[:1000] not in text
    assert opik_ui.problems(llm, "what is this?", "noise") == []


def _stage(min_chars: int) -> Any:
    from opentelemetry.exporter.opik._config import resolve_settings

    return _attachments.AttachmentStage(resolve_settings({"attachment_min_chars": min_chars}, env={}), None)  # type: ignore[arg-type]


def _span(**fields: Any) -> Any:
    from opentelemetry.exporter.opik._mapping import Mapped

    return Mapped("span", {"id": "0193c6a2-0000-7000-8000-000000000001", "name": "n", **fields}, "label", None)  # type: ignore[arg-type]


def test_an_item_whose_json_is_shorter_than_the_threshold_passes_as_it_is() -> None:
    """The encoded item's length bounds its longest string: under ``min_chars`` nothing is walked,
    and the very item comes back; at the threshold the walk decides, wherever the run sits (a
    string the mapper built, not only a span attribute)."""
    from opentelemetry.exporter.opik._json import dumps

    stage = _stage(1000)
    b64 = base64.b64encode(BIG[:3000]).decode()
    short = _span(input={"text": b64[:900]})
    assert stage.judge(short, dumps(short.data)) is short
    long_ = _span(output={"joined": "parts: " + b64}, metadata={"k": 1})
    out = stage.judge(long_, dumps(long_.data))
    name = file_name("output", base64.b64decode(b64[: len(b64) // 4 * 4]), "image/png")
    assert out is not long_ and out.data["output"]["joined"] == f"parts: [{name}]"
    assert out.data["metadata"]["k"] == 1 and [n["file_name"] for n in out.data["metadata"]["opik_attachments"]] == [name]
    assert long_.data["output"]["joined"] == "parts: " + b64  # nothing changed in place


_TEXT = st.text(alphabet="ab+/=\"\\\n\u00e9\U0001f600 ", max_size=40)


@st.composite
def _item_with_runs(draw: Any) -> Any:
    """An item with base64 runs of a recognised type, around the threshold in length, at any depth."""
    b64 = base64.b64encode(BIG[:900]).decode()

    def leaf() -> Any:
        n = draw(st.sampled_from([0, 10, 396, 399, 400, 401, 404, 600]))
        return draw(_TEXT) + b64[:n] + draw(_TEXT) if n else draw(st.one_of(_TEXT, st.integers(), st.none()))

    def nest(depth: int) -> Any:
        if depth > 3 or draw(st.booleans()):
            return leaf()
        if draw(st.booleans()):
            return [nest(depth + 1) for _ in range(draw(st.integers(0, 3)))]
        return {draw(_TEXT): nest(depth + 1) for _ in range(draw(st.integers(0, 3)))}

    return _span(**{f: nest(0) for f in ("input", "output", "metadata") if draw(st.booleans())})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=_item_with_runs())
def test_the_length_gate_gives_exactly_what_the_walk_gives(m: Any) -> None:
    from opentelemetry.exporter.opik._json import dumps

    walked, gated = _stage(400), _stage(400)
    expected = walked(m)  # no body: every item is walked
    out = gated.judge(m, dumps(m.data))
    assert out.data == expected.data and (out is m) == (expected is m)
    assert gated._found.keys() == walked._found.keys()
