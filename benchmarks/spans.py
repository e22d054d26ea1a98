"""Realistic GenAI spans, built with the real OpenTelemetry SDK and seeded.

Every benchmark exports the same objects an instrumented application hands to
its exporter: ``ReadableSpan`` instances ended by an SDK ``TracerProvider``.
Shapes follow the GenAI semantic conventions (latest experimental):

* ``agent``: an ``invoke_agent`` root, a ``chat`` LLM call (model, usage,
  a few hundred bytes of ``gen_ai.input.messages``/``gen_ai.output.messages``)
  and an ``execute_tool`` call: the issue's reference trace;
* ``sparse``: the same three spans with about 5 attributes each, as a
  minimal instrumentation writes them: an ``invoke_agent`` root (operation,
  agent, provider, model, conversation), a ``chat`` call (operation, model,
  usage, 300-600 bytes of messages) and an ``execute_tool`` call (operation,
  tool name, call id, arguments, result);
* ``llm``: traces made only of ``chat`` spans (the first is the root), so a
  trace of 1, 10 or 100 spans differs only in spans per trace.

``payload`` is the bytes of message content per LLM span (input + output):
an int, a ``[low, high]`` range drawn per span, or None for the realistic
300-600 bytes.
"""

from __future__ import annotations

import json
import random
from typing import Any, Dict, List, Sequence, Tuple, Union

from content import messages_in as _messages_in  # benchmarks/ is on sys.path
from content import messages_out as _messages_out
from content import text as _text
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from opentelemetry import trace as trace_api

Payload = Union[None, int, Sequence[int]]
BASE_NS = 1_795_000_000_000_000_000  # fixed epoch (2026-11-18), so runs are identical


class _Collect(SpanProcessor):
    def __init__(self) -> None:
        self.spans: List[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def _payload_size(rng: random.Random, payload: Payload) -> int:
    """Bytes of message content for one LLM span (see the module docstring)."""
    if payload is None:
        return rng.randint(300, 600)
    if isinstance(payload, (list, tuple)):
        return rng.randint(payload[0], payload[1])
    return payload


#: the shapes ``SpanFactory.build`` makes
SHAPES = ("agent", "sparse", "llm")


class SpanFactory:
    """Builds finished SDK spans; one provider, seeded ids and contents."""

    def __init__(self, seed: int = 42, service: str = "bench-agent") -> None:
        self.rng = random.Random(seed)
        random.seed(seed)  # the SDK's RandomIdGenerator draws from the global generator
        self._collect = _Collect()
        self.provider = TracerProvider(
            resource=Resource.create(
                {"service.name": service, "service.version": "1.4.2", "deployment.environment.name": "bench"}
            ),
            sampler=ALWAYS_ON,
        )
        self.provider.add_span_processor(self._collect)
        self.tracer = self.provider.get_tracer("bench.agent", "0.3.1")
        self._t = BASE_NS

    def _take(self) -> List[ReadableSpan]:
        spans = self._collect.spans
        self._collect.spans = []
        return spans

    def _llm_attrs(self, payload: Payload, tool_call: bool, conv: str) -> Dict[str, Any]:
        rng = self.rng
        size = _payload_size(rng, payload)
        in_size = size * 2 // 3
        return {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(64):016x}",
            "gen_ai.response.finish_reasons": ("tool_calls",) if tool_call else ("stop",),
            "gen_ai.request.temperature": 0.2,
            "gen_ai.request.max_tokens": 512,
            "gen_ai.usage.input_tokens": rng.randint(50, 2000),
            "gen_ai.usage.output_tokens": rng.randint(10, 500),
            "gen_ai.conversation.id": conv,
            "server.address": "api.openai.com",
            "server.port": 443,
            "gen_ai.input.messages": _messages_in(rng, in_size),
            "gen_ai.output.messages": _messages_out(rng, size - in_size, tool_call),
        }

    def agent_trace(self, payload: Payload = None) -> List[ReadableSpan]:
        """invoke_agent root -> chat (LLM) + execute_tool: the reference trace."""
        rng = self.rng
        t = self._t
        conv = f"conv-{rng.getrandbits(32):08x}"
        question = _text(rng, rng.randint(60, 160))
        root = self.tracer.start_span(
            "invoke_agent travel_agent",
            kind=trace_api.SpanKind.INTERNAL,
            start_time=t,
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "travel_agent",
                "gen_ai.agent.id": "agent-7",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.conversation.id": conv,
                "gen_ai.input.messages": json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": question}]}]
                ),
            },
        )
        ctx = trace_api.set_span_in_context(root)
        llm = self.tracer.start_span(
            "chat gpt-4o-mini", context=ctx, kind=trace_api.SpanKind.CLIENT, start_time=t + 1_000_000
        )
        llm.set_attributes(self._llm_attrs(payload, True, conv))
        llm.end(end_time=t + 850_000_000)
        tool = self.tracer.start_span(
            "execute_tool get_weather",
            context=ctx,
            kind=trace_api.SpanKind.INTERNAL,
            start_time=t + 851_000_000,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "get_weather",
                "gen_ai.tool.type": "function",
                "gen_ai.tool.call.id": f"call_{rng.getrandbits(48):012x}",
                "gen_ai.tool.call.arguments": json.dumps({"city": "Paris", "unit": "celsius"}),
                "gen_ai.tool.call.result": json.dumps({"temperature": rng.randint(-5, 35), "conditions": "light rain"}),
            },
        )
        tool.end(end_time=t + 902_000_000)
        root.set_attribute("gen_ai.usage.input_tokens", rng.randint(100, 3000))
        root.set_attribute("gen_ai.usage.output_tokens", rng.randint(10, 600))
        root.set_attribute(
            "gen_ai.output.messages",
            json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [{"type": "text", "content": _text(rng, rng.randint(120, 260))}],
                        "finish_reason": "stop",
                    }
                ]
            ),
        )
        root.end(end_time=t + 910_000_000)
        self._t += 1_000_000_000 // 64  # ~64 traces per second of span time
        return self._take()

    def sparse_trace(self, payload: Payload = None) -> List[ReadableSpan]:
        """The reference trace with about 5 attributes per span (16 over 3 spans)."""
        rng = self.rng
        t = self._t
        model = "gpt-4o-mini"
        root = self.tracer.start_span(
            "invoke_agent travel_agent",
            kind=trace_api.SpanKind.INTERNAL,
            start_time=t,
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "travel_agent",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model,
                "gen_ai.conversation.id": f"conv-{rng.getrandbits(32):08x}",
            },
        )
        ctx = trace_api.set_span_in_context(root)
        size = _payload_size(rng, payload)
        in_size = size * 2 // 3
        llm = self.tracer.start_span(
            f"chat {model}",
            context=ctx,
            kind=trace_api.SpanKind.CLIENT,
            start_time=t + 1_000_000,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": rng.randint(50, 2000),
                "gen_ai.usage.output_tokens": rng.randint(10, 500),
                "gen_ai.input.messages": _messages_in(rng, in_size),
                "gen_ai.output.messages": _messages_out(rng, size - in_size, True),
            },
        )
        llm.end(end_time=t + 850_000_000)
        tool = self.tracer.start_span(
            "execute_tool get_weather",
            context=ctx,
            kind=trace_api.SpanKind.INTERNAL,
            start_time=t + 851_000_000,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "get_weather",
                "gen_ai.tool.call.id": f"call_{rng.getrandbits(48):012x}",
                "gen_ai.tool.call.arguments": json.dumps({"city": "Paris", "unit": "celsius"}),
                "gen_ai.tool.call.result": json.dumps({"temperature": rng.randint(-5, 35), "conditions": "light rain"}),
            },
        )
        tool.end(end_time=t + 902_000_000)
        root.end(end_time=t + 910_000_000)
        self._t += 1_000_000_000 // 64
        return self._take()

    def llm_trace(self, n_spans: int, payload: Payload = None) -> List[ReadableSpan]:
        """``n_spans`` chat spans: a root LLM call and ``n_spans - 1`` child calls."""
        rng = self.rng
        t = self._t
        conv = f"conv-{rng.getrandbits(32):08x}"
        root = self.tracer.start_span("chat gpt-4o-mini", kind=trace_api.SpanKind.CLIENT, start_time=t)
        root.set_attributes(self._llm_attrs(payload, False, conv))
        ctx = trace_api.set_span_in_context(root)
        for i in range(1, n_spans):
            child = self.tracer.start_span(
                "chat gpt-4o-mini", context=ctx, kind=trace_api.SpanKind.CLIENT, start_time=t + i * 1_000_000
            )
            child.set_attributes(self._llm_attrs(payload, False, conv))
            child.end(end_time=t + i * 1_000_000 + 800_000)
        root.end(end_time=t + n_spans * 1_000_000 + 1_000_000)
        self._t += 1_000_000_000 // 64
        return self._take()

    def build(self, shape: str, n_spans: int, spans_per_trace: int = 3, payload: Payload = None) -> List[ReadableSpan]:
        """At least ``n_spans`` spans of whole traces, in SDK end order."""
        if shape not in SHAPES:
            raise ValueError(f"unknown span shape {shape!r}; choose from {', '.join(SHAPES)}")
        out: List[ReadableSpan] = []
        while len(out) < n_spans:
            if shape == "agent":
                out.extend(self.agent_trace(payload))
            elif shape == "sparse":
                out.extend(self.sparse_trace(payload))
            else:
                out.extend(self.llm_trace(spans_per_trace, payload))
        return out


def batches(spans: Sequence[ReadableSpan], size: int = 512) -> List[Sequence[ReadableSpan]]:
    """Export batches as the SDK's BatchSpanProcessor cuts them (512 by default)."""
    return [spans[i : i + size] for i in range(0, len(spans), size)]


def describe(spans: Sequence[ReadableSpan]) -> Tuple[int, float]:
    """(number of traces, mean bytes of string attributes per span)."""
    traces = {s.context.trace_id for s in spans}
    total = 0
    for s in spans:
        for v in (s.attributes or {}).values():
            if isinstance(v, str):
                total += len(v)
    return len(traces), total / max(len(spans), 1)
