"""The families' declarations (``FAMILY = Family(...)``) and what is derived from them.

* capture off strips every family's declared content keys and events, whether
  the family's reader consumed them or they were left over in metadata (real
  exporter, real HTTP to the Opik stand-in);
* the key index runs only the readers whose signs a span carries, and that
  changes nothing: any mix of the families' keys maps exactly as running every
  reader does (Hypothesis);
* a span's keys are walked once, and an unrelated span runs no family reader;
* every key a reader consumes on the documented examples is declared by a family.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from conftest_conventions import T0, Recorder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.trace import SpanKind
from test_mapping_docs import EXAMPLES

from opentelemetry.exporter.opik._config import resolve_settings
from opentelemetry.exporter.opik._mapping import Mapper, core
from opentelemetry.exporter.opik._mapping import conventions as cv
from opentelemetry.exporter.opik._mapping._model import MappedSpan
from opentelemetry.exporter.opik._mapping.conventions import _flatten, genai
from opentelemetry.exporter.opik._privacy import _filter
from opentelemetry.exporter.opik._record import EventRecord, SpanRecord, from_readable_span

try:
    from tests.conftest_privacy import make_exporter, opik, provider_for, sent_text, spans_by_name  # noqa: F401
    from tests.opik_standin import OpikStandin
except ImportError:
    from conftest_privacy import make_exporter, opik, provider_for, sent_text, spans_by_name  # type: ignore[no-redef] # noqa: F401
    from opik_standin import OpikStandin  # type: ignore[no-redef]

FAMILY_IDS = [f.name for f in cv.FAMILIES]


def _signs(family: cv.Family) -> Tuple[str, str, Dict[str, Any]]:
    """(scope, span name, attributes) that make a span read as ``family``."""
    attrs: Dict[str, Any] = {k: "x" for k in family.markers}
    attrs.update(dict(family.values))
    scope = family.scopes[0] if family.scopes else "tests.families"
    name = family.span_names[0] + "generateText" if family.span_names else f"{family.name} span"
    return scope, name, attrs


def _secret(family: cv.Family, n: int) -> str:
    return f"SECRET-{family.name}-{n}-the quarterly figures"


def _event_attrs(event: str, secret: str) -> Dict[str, str]:
    """A content event's attributes as instrumentations write them (each holding ``secret``)."""
    if event == genai.EV_DETAILS:  # the span's own content keys, read like span attributes
        keys: Tuple[str, ...] = ("gen_ai.input.messages", "gen_ai.output.messages")
    else:
        keys = ("content", "message", "gen_ai.prompt", "gen_ai.completion")
    return {k: secret for k in keys}


def _value(secret: str) -> str:
    """A content value every reader keeps: one chat message (also a Pydantic AI v1 event)."""
    return json.dumps([{"role": "user", "content": secret, "event.name": "gen_ai.user.message"}])


def _content_span(tracer: Any, family: cv.Family, name: str, attrs: Dict[str, Any]) -> List[str]:
    """A span with each of the family's content keys (plain and flattened) and events; returns the secrets."""
    secrets: List[str] = []
    attrs = dict(attrs)
    for key in family.content_keys:
        for k in (key, key + ".0.content"):
            secrets.append(_secret(family, len(secrets)))
            attrs[k] = secrets[-1]
    with tracer.start_as_current_span(name, attributes=attrs) as span:
        for event in family.content_events:
            secrets.append(_secret(family, len(secrets)))
            span.add_event(event, _event_attrs(event, secrets[-1]))
    return secrets


@pytest.mark.parametrize("family", cv.FAMILIES, ids=FAMILY_IDS)
def test_capture_off_strips_every_declared_content_key(opik: OpikStandin, family: cv.Family) -> None:
    scope, name, attrs = _signs(family)
    exporter = make_exporter(opik, capture_content=False)
    tracer = provider_for(exporter).get_tracer(scope)
    # read by the family's reader (its signs present), and left over in metadata (no signs at all)
    with tracer.start_as_current_span("root"):
        secrets = _content_span(tracer, family, name, attrs)
        secrets += _content_span(tracer, family, "no signs", {})
    exporter.force_flush()
    spans = spans_by_name(opik)
    assert {name, "no signs", "root"} <= set(spans)
    sent = sent_text(opik)
    assert "SECRET" not in sent, [s for s in secrets if s in sent]
    exporter.shutdown()


@pytest.mark.parametrize("family", cv.FAMILIES, ids=FAMILY_IDS)
def test_declared_content_keys_carry_content_when_capture_is_on(opik: OpikStandin, family: cv.Family) -> None:
    """The control for the test above: with capture on, each of those values alone on a span reaches Opik."""
    exporter = make_exporter(opik)
    tracer = provider_for(exporter).get_tracer("tests.families")
    secrets: Dict[str, str] = {}
    for n, key in enumerate(family.content_keys):
        secrets[key] = _secret(family, n)
        with tracer.start_as_current_span(f"content key {n}", attributes={key: _value(secrets[key])}):
            pass
    for n, event in enumerate(family.content_events):
        secrets[event] = _secret(family, 100 + n)
        with tracer.start_as_current_span(f"content event {n}") as span:
            span.add_event(event, _event_attrs(event, secrets[event]))
    exporter.force_flush()
    sent = sent_text(opik)
    assert [k for k, s in secrets.items() if s not in sent] == []
    exporter.shutdown()


def test_derived_lists_cover_every_declaration() -> None:
    assert [f.read for f in cv.FAMILIES] + [cv.finish] == cv.READERS
    assert len({f.name for f in cv.FAMILIES}) == len(cv.FAMILIES)
    for f in cv.FAMILIES:
        assert set(f.content_keys) <= set(cv.CONTENT_KEYS), f.name
        assert set(f.content_events) <= set(cv.CONTENT_EVENTS), f.name
        assert set(f.prefixes) <= set(_flatten.PREFIXES), f.name
        assert set(f.genai_keys) <= set(cv.GENAI_KEYS), f.name
    assert len(set(_flatten.PREFIXES)) == len(_flatten.PREFIXES)
    assert _filter._GENAI_KEYS == cv.GENAI_KEYS == genai.FAMILY.genai_keys
    with pytest.raises(ValueError, match="two dots"):
        cv.Family(genai.read, prefixes=("flat.",))


# -- the index -----------------------------------------------------------------


class CountingAttrs(dict):  # type: ignore[type-arg]
    """A span's attributes that count how often their keys are walked."""

    walks = 0

    def __iter__(self) -> Iterator[str]:
        CountingAttrs.walks += 1
        return super().__iter__()

    def keys(self) -> Any:  # type: ignore[override]
        CountingAttrs.walks += 1
        return super().keys()

    def items(self) -> Any:  # type: ignore[override]
        CountingAttrs.walks += 1
        return super().items()


def _record(attrs: Dict[str, Any], name: str = "s", scope: str = "tests", events: Any = ()) -> SpanRecord:
    return SpanRecord(trace_id=1, span_id=2, parent_span_id=None, name=name, start_ns=T0, end_ns=T0 + 10_000,
                      attributes=attrs, events=events, scope_name=scope)


def _fields(out: MappedSpan) -> str:
    fields = {s: getattr(out, s) for s in MappedSpan.__slots__ if s not in ("record", "present", "groups", "scratch")}
    fields["used"] = sorted(out.used)
    fields["metadata"] = list(out.metadata.items())
    fields["borrow"] = (out.scratch or {}).get("conversation_from_llm_calls")
    return json.dumps(fields, default=repr, sort_keys=True)


def _indexed(rec: SpanRecord) -> MappedSpan:
    out = MappedSpan(rec)
    cv.read(out)
    core.read(out)
    return out


def _every_reader(rec: SpanRecord) -> MappedSpan:
    out = MappedSpan(rec)
    for reader in cv.READERS:
        reader(out)
    core.read(out)
    return out


def test_unrelated_span_walks_its_keys_once_and_runs_no_family() -> None:
    attrs = CountingAttrs({f"http.request.header.{i}": "v" for i in range(30)})
    attrs.update({"http.method": "GET", "url.full": "https://example.com", "db.system": "postgresql"})
    CountingAttrs.walks = 0
    out = MappedSpan(_record(attrs, events=[EventRecord("log", T0, {})]))
    assert cv.INDEX.readers(out) == ()
    assert CountingAttrs.walks == 1
    assert out.groups == {}


def test_genai_span_runs_only_genai() -> None:
    attrs = CountingAttrs({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                           "gen_ai.usage.input_tokens": 3, "gen_ai.input.messages": "[]"})
    CountingAttrs.walks = 0
    out = MappedSpan(_record(attrs))
    assert cv.INDEX.readers(out) == (genai.read,)
    cv.finish(out)
    core.read(out)
    assert CountingAttrs.walks == 1


def test_flattened_family_span_walks_its_keys_once() -> None:
    attrs = CountingAttrs({"openinference.span.kind": "LLM", "llm.model_name": "m", "session.id": "s",
                           "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "hi",
                           "traceloop.association.properties.chat_id": "c", "gen_ai.prompt.0.role": "user",
                           "langsmith.span.kind": "llm", "langsmith.metadata.k": "v"})
    CountingAttrs.walks = 0
    out = _indexed(_record(attrs))
    assert CountingAttrs.walks == 1
    assert out.input == {"messages": [{"role": "user", "content": "hi"}]}
    assert out.metadata["chat_id"] == "c" and out.metadata["k"] == "v"
    assert out.groups is not None and out.groups["gen_ai.prompt."] == ["gen_ai.prompt.0.role"]


def test_every_example_maps_the_same_with_and_without_the_index() -> None:
    rec = Recorder()
    for _, before, _ in EXAMPLES:
        events = [(name, 10, attrs) for name, attrs in before.get("events", [])]
        rec.span(before["name"], before["attributes"], 0, 100, events=events,
                 kind=getattr(SpanKind, before.get("kind", "INTERNAL")), scope=before.get("scope"))
    records = [from_readable_span(s) for s in rec.finished()]
    assert len(records) == len(EXAMPLES)
    for r in records:
        assert _fields(_indexed(r)) == _fields(_every_reader(r)), r.name


# every key any family or core declares, a flattened key under each prefix, and the values that
# make readers act (kinds, operations, framework names, JSON messages)
_KEYS = sorted(
    {k for f in cv.FAMILIES for k in (*f.markers, *f.keys, *f.content_keys, *(v[0] for v in f.values))}
    | {p + "0.content" for p in _flatten.PREFIXES}
    | {p + "0.role" for p in _flatten.PREFIXES}
    | set(core.OPIK_KEYS) | set(core.THREAD_KEYS) | set(core.CONTENT_KEYS) | {"tag.tags", "gen_ai.prompt.name"}
    | {"http.method", "metadata.user", "llm.openai.messages"}
)
_VALUES = st.sampled_from([
    "x", "", "LLM", "AGENT", "TOOL", "chat", "invoke_agent", "execute_tool", "generation", "llm", "tool",
    "gcp.vertex.agent", "strands-agents", "openai", "gpt-4o", "ai.streamText.doStream", "workflow",
    '[{"role": "user", "content": "hi"}]', '{"input": 3, "output": 1}', "{}", 3, 0.5, True,
])
_SCOPES = sorted({s for f in cv.FAMILIES for s in f.scopes} | {"tests", "openinference.instrumentation.openai_agents"})
_EVENTS = sorted({e for f in cv.FAMILIES for e in (*f.events, *f.content_events)} | {"exception", "log"})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    attrs=st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=12),
    scope=st.sampled_from(_SCOPES),
    name=st.sampled_from(["span", "call_llm", "ai.generateText", "ai.toolCall", "raw_gen_ai_request"]),
    events=st.lists(st.tuples(st.sampled_from(_EVENTS), st.sampled_from(["content", "message", "gen_ai.prompt"]),
                              st.sampled_from(["hi", '{"content": "hi"}'])), max_size=3),
)
def test_the_index_only_leaves_out_readers_that_would_do_nothing(
    attrs: Dict[str, Any], scope: str, name: str, events: List[Tuple[str, str, str]]
) -> None:
    evs = [EventRecord(n, T0 + 5 + i, {k: v}) for i, (n, k, v) in enumerate(events)]
    rec = _record(attrs, name=name, scope=scope, events=evs)
    assert _fields(_indexed(rec)) == _fields(_every_reader(rec))


def test_every_consumed_key_of_the_examples_is_declared() -> None:
    declared = set(core.OPIK_KEYS) | set(core.THREAD_KEYS) | set(core.ENV_KEYS) | set(core.CONTENT_KEYS)
    declared |= {"tag.tags", *(k for k, _ in cv._PROMPT_KEYS)}
    for f in cv.FAMILIES:
        declared |= {*f.markers, *f.keys, *(k for k, _ in f.values)}
    # LiteLLM finds its metadata.<key> and llm.<provider>.<field> keys by its own scan of a LiteLLM span
    prefixes = (*_flatten.PREFIXES, "metadata.", "llm.")
    mapper = Mapper(resolve_settings({}, env={}))
    rec = Recorder()
    for _, before, _ in EXAMPLES:
        events = [(name, 10, attrs) for name, attrs in before.get("events", [])]
        rec.span(before["name"], before["attributes"], 0, 100, events=events, scope=before.get("scope"))
    undeclared = set()
    for span in rec.finished():
        out = mapper.read(from_readable_span(span))
        assert out.used
        undeclared |= {k for k in out.used if not k.startswith(("event:", *prefixes)) and k not in declared}
    assert undeclared == set()
