"""OTLP protobuf and OTLP/JSON -> SpanRecord: the same records the SDK path makes, bad spans isolated."""

from __future__ import annotations

import base64
import copy
import json
import math
import random
from typing import Any, Dict, List

import pytest
from google.protobuf.message import DecodeError as PbDecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from sidecar_helpers import make_spans, otlp_json, protobuf_body

from opentelemetry import context, trace
from opentelemetry.exporter.opik import OpikSampler
from opentelemetry.exporter.opik._otlp import (
    NESTED_TOO_DEEP,
    DecodedBatch,
    DecodeError,
    DecodeLimits,
    TooManySpans,
    decode_json,
    decode_protobuf,
)
from opentelemetry.exporter.opik._record import SpanRecord, from_readable_span

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
SPAN_ID = 0xB7AD6B7169203331


def _comparable(r: SpanRecord) -> Dict[str, Any]:
    out = {f: getattr(r, f) for f in SpanRecord.__slots__}
    out["attributes"] = dict(r.attributes)
    out["resource"] = dict(r.resource)
    out["events"] = [(e.name, e.time_ns, dict(e.attributes)) for e in r.events]
    return out


def _rich_trace(tracer: Any) -> None:
    """Every kind of value and shape the SDK can produce, plus a remote parent."""
    with tracer.start_as_current_span(
        "agent",
        kind=SpanKind.SERVER,
        attributes={
            "s": "text ünïcode ✓",
            "i": -(2**62),
            "f": 1.5,
            "b": True,
            "raw": b"\x00\x01bytes",
            "strs": ("a", "b"),
            "ints": (1, 2, 3),
            "floats": (0.5, 2.0),
            "bools": (True, False),
            "empty": (),
            "gen_ai.request.model": "gpt-4o-mini",
        },
    ) as root:
        root.add_event("thinking", {"step": 1, "why": "because"}, timestamp=root.start_time + 5)
        with tracer.start_as_current_span("llm", kind=SpanKind.CLIENT) as llm:
            llm.set_status(Status(StatusCode.ERROR, "boom"))
            llm.record_exception(ValueError("bad value"))
        with tracer.start_as_current_span("tool", kind=SpanKind.PRODUCER) as tool:
            tool.set_status(Status(StatusCode.OK))
    remote = SpanContext(TRACE_ID, SPAN_ID, is_remote=True, trace_flags=TraceFlags(1))
    token = context.attach(trace.set_span_in_context(NonRecordingSpan(remote)))
    try:
        with tracer.start_as_current_span("downstream", kind=SpanKind.CONSUMER):
            pass
    finally:
        context.detach(token)


@pytest.fixture(scope="module")
def rich_spans() -> List[Any]:
    return make_spans(_rich_trace, resource={"service.name": "svc", "deployment.environment.name": "test"}, sampler=OpikSampler())


def test_protobuf_records_equal_the_sdk_records(rich_spans: List[Any]) -> None:
    batch = decode_protobuf(protobuf_body(rich_spans))
    assert batch.rejected == 0 and batch.span_count == len(rich_spans) == 4
    assert [_comparable(r) for r in batch.records] == [_comparable(from_readable_span(s)) for s in rich_spans]
    by_name = {r.name: r for r in batch.records}
    assert by_name["agent"].attributes["strs"] == ("a", "b")  # arrays are tuples, like SDK attributes
    assert by_name["agent"].attributes["raw"] == b"\x00\x01bytes"
    assert by_name["agent"].trace_start_hint_ms is not None  # the opik tracestate entry
    assert by_name["downstream"].parent_is_remote and by_name["downstream"].parent_span_id == SPAN_ID
    assert not by_name["llm"].parent_is_remote and by_name["llm"].status_code == 2
    assert by_name["tool"].kind == 4 and by_name["downstream"].kind == 5


def test_json_records_equal_the_sdk_records(rich_spans: List[Any]) -> None:
    body = json.dumps(otlp_json(rich_spans)).encode()
    assert b'"traceId": "' in body and b'"startTimeUnixNano": "' in body  # hex ids, int64 as strings
    batch = decode_json(body)
    assert batch.rejected == 0
    assert [_comparable(r) for r in batch.records] == [_comparable(from_readable_span(s)) for s in rich_spans]


def test_json_accepts_parsed_objects_snake_case_enum_names_and_ignores_unknown_fields() -> None:
    doc = {
        "resource_spans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}], "futureField": 1},
                "scope_spans": [
                    {
                        "scope": {"name": "lib", "version": "2"},
                        "spans": [
                            {
                                "trace_id": f"{TRACE_ID:032x}",
                                "span_id": f"{SPAN_ID:016x}",
                                "name": "x",
                                "kind": "SPAN_KIND_CLIENT",
                                "start_time_unix_nano": 1_700_000_000_000_000_000,
                                "end_time_unix_nano": "1700000000500000000",
                                "status": {"code": "STATUS_CODE_ERROR", "message": "m"},
                                "unknownThing": {"nested": [1, 2]},
                                "attributes": [
                                    {"key": "n", "value": {"intValue": "42"}},
                                    {"key": "d", "value": {"doubleValue": "NaN"}},
                                    {"key": "inf", "value": {"doubleValue": "-Infinity"}},
                                    {"key": "blob", "value": {"bytesValue": base64.b64encode(b"hi").decode()}},
                                    {"key": "arr", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": 1}]}}},
                                    {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": False}}]}}},
                                    {"key": "nothing", "value": {}},
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    batch = decode_json(doc)
    assert batch.rejected == 0
    (r,) = batch.records
    assert (r.trace_id, r.span_id, r.kind, r.status_code, r.status_message) == (TRACE_ID, SPAN_ID, 3, 2, "m")
    assert r.end_ns - r.start_ns == 500_000_000 and r.scope_name == "lib" and r.resource == {"service.name": "svc"}
    a = r.attributes
    assert a["n"] == 42 and math.isnan(a["d"]) and a["inf"] == -math.inf and a["blob"] == b"hi"
    assert a["arr"] == ("a", 1) and a["kv"] == {"k": False} and a["nothing"] is None


def _pb_span(name: str, **kw: Any) -> Span:
    base = dict(
        trace_id=TRACE_ID.to_bytes(16, "big"),
        span_id=random.getrandbits(64).to_bytes(8, "big"),
        name=name,
        start_time_unix_nano=1_700_000_000_000_000_000,
        end_time_unix_nano=1_700_000_001_000_000_000,
    )
    base.update(kw)
    return Span(**base)


def _request(*spans: Span) -> bytes:
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=list(spans))])]).SerializeToString()


def test_parent_equal_to_the_trace_id_is_a_root_and_remote_flags_are_read() -> None:
    tid = TRACE_ID.to_bytes(16, "big")
    body = _request(
        _pb_span("quirk", parent_span_id=tid),
        _pb_span("remote", parent_span_id=SPAN_ID.to_bytes(8, "big"), flags=0x300 | 1),
        _pb_span("local", parent_span_id=SPAN_ID.to_bytes(8, "big"), flags=0x100 | 1),
        _pb_span("unknown-remote", parent_span_id=SPAN_ID.to_bytes(8, "big"), flags=0x200),
    )
    by_name = {r.name: r for r in decode_protobuf(body).records}
    assert by_name["quirk"].parent_span_id is None and by_name["quirk"].is_local_root
    assert by_name["remote"].parent_is_remote
    assert not by_name["local"].parent_is_remote
    assert not by_name["unknown-remote"].parent_is_remote  # IS_REMOTE without HAS_IS_REMOTE means nothing
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": f"{TRACE_ID:032x}", "spanId": f"{SPAN_ID:016x}", "parentSpanId": f"{TRACE_ID:032x}", "name": "q", "startTimeUnixNano": "1"}
    ]}]}]}
    (r,) = decode_json(doc).records
    assert r.parent_span_id is None


def _good_and_bad_request() -> bytes:
    """Two good spans around four that must be rejected, each for another reason."""
    return _request(
        _pb_span("good-1"),
        _pb_span("short-trace-id", trace_id=b"\x01" * 8),
        _pb_span("zero-span-id", span_id=b"\x00" * 8),
        _pb_span("no-start", start_time_unix_nano=0),
        _pb_span("bad-parent", parent_span_id=b"\x01\x02\x03"),
        _pb_span("good-2"),
    )


def test_bad_spans_are_rejected_one_by_one_with_reasons() -> None:
    body = _good_and_bad_request()
    batch = decode_protobuf(body)
    assert [r.name for r in batch.records] == ["good-1", "good-2"]
    assert batch.span_count == 6 and batch.rejected == 4
    text = " | ".join(batch.reasons)
    for fragment in ("'short-trace-id'", "trace id must be 16 bytes", "span id is all zeros", "start time is missing", "parent span id must be 8 bytes"):
        assert fragment in text
    assert "4 of 6 spans could not be decoded" in batch.message()


def test_invalid_utf8_is_replaced_not_rejected() -> None:
    body = _request(_pb_span("fine"), _pb_span("MARKER", attributes=[KeyValue(key="k", value=AnyValue(string_value="VALUE"))]))
    body = body.replace(b"MARKER", b"MA\xffKER").replace(b"VALUE", b"VA\xfe\xffE")
    batch = decode_protobuf(body)
    assert batch.rejected == 0 and len(batch.records) == 2
    bad = next(r for r in batch.records if r.name != "fine")
    assert bad.name == "MA\ufffdKER" and bad.attributes["k"] == "VA\ufffd\ufffdE"
    assert "invalid UTF-8" in batch.message()


def test_a_corrupt_span_inside_intact_framing_sinks_only_itself() -> None:
    good = _pb_span("good").SerializeToString()
    # A span whose attribute (field 9) claims a 5-byte key but holds 1 byte, inside valid length prefixes.
    corrupt = b"\x2a\x03abc" + b"\x4a\x03\x0a\x05a"
    scope = b"\x12" + bytes([len(good)]) + good + b"\x12" + bytes([len(corrupt)]) + corrupt
    rs = b"\x12" + bytes([len(scope)]) + scope
    body = b"\x0a" + bytes([len(rs)]) + rs
    with pytest.raises(PbDecodeError):  # the C parser refuses the whole request
        ExportTraceServiceRequest.FromString(body)
    batch = decode_protobuf(body)
    assert [r.name for r in batch.records] == ["good"]
    assert batch.rejected == 1 and "corrupt protobuf" in batch.reasons[0]


def test_broken_framing_and_random_bytes_are_undecodable(rich_spans: List[Any]) -> None:
    body = protobuf_body(rich_spans)
    with pytest.raises(DecodeError):
        decode_protobuf(body[: len(body) - 7])
    rng = random.Random(7)
    for _ in range(50):
        junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
        try:
            batch = decode_protobuf(junk)
        except DecodeError:
            continue
        assert isinstance(batch, DecodedBatch)  # some junk happens to be a valid (empty-ish) message
    assert decode_protobuf(b"").span_count == 0  # an empty request is valid protobuf


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'"text"', b'{"resourceSpans": {"not": "a list"}}', b'{"resourceSpans": [3]}',
     b'{"resourceSpans": [{"scopeSpans": "x"}]}', b'{"resourceSpans": [{"scopeSpans": [{"spans": 5}]}]}'],
)
def test_json_with_the_wrong_structure_is_undecodable(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_json(body)


def test_json_spans_with_wrong_types_are_rejected_alone() -> None:
    good = {"traceId": f"{TRACE_ID:032x}", "spanId": f"{SPAN_ID:016x}", "name": "good", "startTimeUnixNano": "1700000000000000000"}
    bad_variants = [
        dict(good, name=5),
        dict(good, traceId=123),
        dict(good, spanId="zz" * 8),
        dict(good, startTimeUnixNano="soon"),
        dict(good, kind=True),
        dict(good, attributes={"k": "v"}),
        dict(good, attributes=[{"key": "k", "value": {"intValue": "x"}}]),
        dict(good, attributes=[{"key": "k", "value": {"boolValue": "yes"}}]),
        dict(good, events="no"),
        dict(good, status=[]),
        "not a span",
    ]
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [good] + bad_variants + [dict(good, name="good-2")]}]}]}
    batch = decode_json(json.dumps(doc))
    assert [r.name for r in batch.records] == ["good", "good-2"]
    assert batch.rejected == len(bad_variants)
    bad_resource = {"resourceSpans": [{"resource": {"attributes": "x"}, "scopeSpans": [{"spans": [good, good]}]}, {"scopeSpans": [{"spans": [good]}]}]}
    batch = decode_json(bad_resource)
    assert batch.rejected == 2 and len(batch.records) == 1 and "resource" in batch.reasons[0]


def test_json_with_invalid_utf8_or_lone_surrogates_still_decodes() -> None:
    good = {"traceId": f"{TRACE_ID:032x}", "spanId": f"{SPAN_ID:016x}", "name": "NAME", "startTimeUnixNano": "1"}
    raw = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [good]}]}]}).encode()
    (r,) = decode_json(raw.replace(b"NAME", b"N\xffME")).records
    assert r.name == "N\ufffdME"
    (r,) = decode_json(raw.replace(b"NAME", b"N\\ud800ME")).records
    assert r.name.startswith("N")


def test_limits_spans_attributes_and_depth() -> None:
    many = [_pb_span(f"s{i}") for i in range(11)]
    with pytest.raises(TooManySpans) as err:
        decode_protobuf(_request(*many), DecodeLimits(max_spans=10))
    assert err.value.count == 11 and "limit is 10" in str(err.value)
    with pytest.raises(TooManySpans):
        decode_json(otlp_like(many), DecodeLimits(max_spans=10))

    attrs = [KeyValue(key=f"k{i}", value=AnyValue(int_value=i)) for i in range(30)]
    deep = AnyValue(string_value="bottom")
    for _ in range(10):
        deep = AnyValue(array_value={"values": [deep]})
    span = _pb_span("wide", attributes=attrs + [KeyValue(key="deep", value=deep)], dropped_attributes_count=2)
    batch = decode_protobuf(_request(span), DecodeLimits(max_attributes=31, max_depth=4))
    (r,) = batch.records
    assert len(r.attributes) == 31 and r.dropped_attributes == 2  # all 31 fit
    value = r.attributes["deep"]
    for _ in range(4):
        (value,) = value
    assert value == NESTED_TOO_DEEP
    batch = decode_protobuf(_request(span), DecodeLimits(max_attributes=10))
    (r,) = batch.records
    assert len(r.attributes) == 10 and r.dropped_attributes == 2 + 21
    assert "attribute limit" in batch.message()


def otlp_like(spans: List[Span]) -> Dict[str, Any]:
    return {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": s.trace_id.hex(), "spanId": s.span_id.hex(), "name": s.name, "startTimeUnixNano": str(s.start_time_unix_nano)} for s in spans
    ]}]}]}


# -- property tests: any input gives records, counted rejections or DecodeError -------------------

_json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
_json_values = st.recursive(_json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=20)


def _mutations(doc: Dict[str, Any]) -> st.SearchStrategy:
    paths = []

    def walk(node: Any, path: tuple) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + (i,))

    walk(doc, ())
    return st.tuples(st.sampled_from(paths), _json_values)


_SAMPLE = otlp_like([Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="n", start_time_unix_nano=5)])
_SAMPLE["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"] = [
    {"key": "a", "value": {"arrayValue": {"values": [{"kvlistValue": {"values": [{"key": "x", "value": {"intValue": "1"}}]}}]}}}
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations(_SAMPLE))
def test_any_json_mutation_decodes_or_fails_cleanly(mutation: Any) -> None:
    path, value = mutation
    doc = copy.deepcopy(_SAMPLE)
    if path:
        node = doc
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = value
    else:
        doc = value
    try:
        batch = decode_json(json.dumps(doc))
    except DecodeError:
        return
    assert batch.rejected + len(batch.records) == batch.span_count


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=0, max_value=400))
def test_any_protobuf_corruption_decodes_or_fails_cleanly(junk: bytes, at: int) -> None:
    body = _request(_pb_span("a"), _pb_span("b", attributes=[KeyValue(key="k", value=AnyValue(string_value="v"))]))
    at = min(at, len(body))
    corrupted = body[:at] + junk + body[at + len(junk):]
    try:
        batch = decode_protobuf(corrupted)
    except DecodeError:
        return
    assert batch.rejected + len(batch.records) <= max(batch.span_count, 1)


# -- lazy decoding (the sidecar answers after parsing and validating) ---------------------------


def test_lazy_decoding_rejects_the_same_spans_and_converts_to_the_same_records(rich_spans: List[Any]) -> None:
    body = _good_and_bad_request()
    eager, lazy = decode_protobuf(body), decode_protobuf(body, lazy=True)
    # before conversion: the answer's facts are final
    assert lazy.records == [] and lazy.accepted == 2 and lazy.span_count == 6
    assert lazy.rejected == eager.rejected == 4 and lazy.reasons == eager.reasons and lazy.message() == eager.message()
    assert [_comparable(r) for r in lazy.materialize()] == [_comparable(r) for r in eager.records]
    assert lazy.accepted == 2 and lazy.rejected == 4  # converting rejects nothing twice
    assert lazy.materialize() is lazy.records  # once
    rich = protobuf_body(rich_spans)
    assert [_comparable(r) for r in decode_protobuf(rich, lazy=True).materialize()] == [_comparable(r) for r in decode_protobuf(rich).records]


def test_lazy_decoding_counts_limits_when_it_converts() -> None:
    attrs = [KeyValue(key=f"k{i}", value=AnyValue(int_value=i)) for i in range(30)]
    body = _request(_pb_span("wide", attributes=attrs))
    lazy = decode_protobuf(body, DecodeLimits(max_attributes=10), lazy=True)
    assert lazy.attributes_cut == 0 and "attribute limit" not in lazy.message()
    (r,) = lazy.materialize()
    assert len(r.attributes) == 10 and lazy.attributes_cut == 1 and "attribute limit" in lazy.message()
