"""Vercel AI SDK legacy ``ai.*`` telemetry (v4-v7), usually via the OTLP sidecar.

The new ``@ai-sdk/otel`` integration emits GenAI semconv spans (``invoke_agent``,
``chat``, ``execute_tool``) and is read by ``genai``. This reader covers the
``ai.*`` spans:

* ``ai.generateText``/``ai.streamText``/``ai.generateObject``/``ai.streamObject``/
  ``ai.embed*`` (outer): ``general``; their ``ai.usage.*`` repeat the ``do*``
  child's and stay in metadata, so Opik's trace total counts the call once;
* ``ai.*.doGenerate``/``ai.*.doStream``/``ai.*.doEmbed``: ``llm``, model
  ``ai.response.model`` else ``ai.model.id``, provider from ``ai.model.provider``
  (``openai.chat`` -> ``openai``), usage from the v4 (``promptTokens``) and v5+
  (``inputTokens``, ``cachedInputTokens``, ``reasoningTokens``) names, ttft from
  ``ai.response.msToFirstChunk`` (ms) or the ``ai.stream.firstChunk`` event;
* ``ai.toolCall``: ``tool``, ``ai.toolCall.args``/``result``;
* input ``ai.prompt.messages`` (else ``ai.prompt``), output ``ai.response.text``
  or ``ai.response.object``; with ``ai.response.toolCalls``, one assistant message
  whose content is the text and ``tool-call`` parts, as the SDK keeps it (the message
  normalizer turns the SDK's ``text``/``image``/``file``/``tool-call``/``tool-result``
  parts into OpenAI chat);
* ``ai.telemetry.metadata.*`` (v4/v5) and ``ai.settings.context.*`` (v7) merged
  into metadata; their ``sessionId`` is the thread and ``tags`` the tags.

OTLP/JSON carries numbers as strings at times: usage and ttft accept both.
"""

from __future__ import annotations

from typing import Any, Dict, List

from .._model import MappedSpan
from . import _common as c
from ._family import Family
from ._flatten import collect, groups
from ._providers import normalize

_OUTER = frozenset(
    ("ai.generateText", "ai.streamText", "ai.generateObject", "ai.streamObject", "ai.embed", "ai.embedMany")
)
_INNER_SUFFIXES = (".doGenerate", ".doStream", ".doEmbed")
FIRST_CHUNK_EVENT = "ai.stream.firstChunk"

USAGE = c.UsageKeys((
    ("ai.usage.inputTokens", c.PROMPT),
    ("ai.usage.promptTokens", c.PROMPT),
    ("ai.usage.tokens", c.PROMPT),
    ("ai.usage.outputTokens", c.COMPLETION),
    ("ai.usage.completionTokens", c.COMPLETION),
    ("ai.usage.totalTokens", c.TOTAL),
    ("ai.usage.cachedInputTokens", c.CACHE_READ),
    ("ai.usage.inputTokenDetails.cacheReadTokens", c.CACHE_READ),
    ("ai.usage.inputTokenDetails.cacheWriteTokens", c.CACHE_WRITE),
    ("ai.usage.reasoningTokens", c.REASONING),
    ("ai.usage.outputTokenDetails.reasoningTokens", c.REASONING),
))
_METADATA_PREFIXES = ("ai.telemetry.metadata.", "ai.settings.context.")


def read(out: MappedSpan) -> None:
    rec = out.record
    attrs = rec.attributes
    get = attrs.get
    op = get("ai.operationId")
    if op is None:
        if not rec.name.startswith("ai.") and "ai.model.id" not in attrs:
            return
        op = rec.name
    op = str(op)
    used = out.used

    if op in _OUTER:
        out.set_type("general")
        out.is_genai = True
        c.aggregate(out)
    elif op.endswith(_INNER_SUFFIXES):
        out.set_type("llm")
        out.is_genai = True
    elif op == "ai.toolCall":
        out.set_type("tool")
        out.is_genai = True

    if out.type == "llm":
        k, v = c.first(attrs, ("ai.response.model", "ai.model.id"))
        if k is not None and out.model is None:
            out.set_model(v)
            used.add(k)
            if k == "ai.response.model" and get("ai.model.id") == v:
                used.add("ai.model.id")
        v = get("ai.model.provider")
        if v is not None and out.provider is None:
            p = normalize(v)
            if p is not None:
                out.set_provider(p)
                used.add("ai.model.provider")
                if get("gen_ai.system") == v:
                    used.add("gen_ai.system")

    c.read_usage(out, USAGE)

    if out.type == "llm":
        ev = c.events(out).get(FIRST_CHUNK_EVENT)
        if not c.set_ttft_ms_attr(out, "ai.response.msToFirstChunk") and not c.set_ttft_ms_attr(
            out, "ai.stream.msToFirstChunk"
        ):
            if ev is not None:
                c.set_ttft_at(out, ev.time_ns)
    if FIRST_CHUNK_EVENT in c.events(out):
        used.add("event:" + FIRST_CHUNK_EVENT)

    # input
    v = get("ai.prompt.messages")
    if v is not None:
        out.set_input(v, "ai.prompt.messages")
    v = get("ai.prompt")
    if v is not None:
        out.set_input(v, "ai.prompt")
    v = get("ai.toolCall.args")
    if v is not None:
        out.set_input(v, "ai.toolCall.args")
    for key in ("ai.values", "ai.value"):
        v = get(key)
        if v is not None:
            out.set_input({"values": list(v)} if isinstance(v, (list, tuple)) else v, key)

    # output
    text = get("ai.response.text")
    calls = get("ai.response.toolCalls")
    if text is not None or calls is not None:
        if calls is not None:
            out.set_output(_assistant_turn(text, c.parse_json(calls)[0]))
        else:
            out.set_output(text)
        for key in ("ai.response.text", "ai.response.toolCalls"):
            if key in attrs:
                used.add(key)
    v = get("ai.response.object")
    if v is not None:
        out.set_output(v, "ai.response.object")
    v = get("ai.toolCall.result")
    if v is not None:
        out.set_output(v, "ai.toolCall.result")

    # metadata spread over prefixed keys
    g = groups(out)
    for prefix in _METADATA_PREFIXES:
        keys = g.get(prefix)
        if not keys:
            continue
        used.update(keys)
        md = collect(attrs, keys, prefix)
        sid = md.get("sessionId")
        if sid is not None:
            c.thread_candidate(out, sid)
        tags = md.pop("tags", None)
        if tags is not None:
            out.add_tags(tags)
        c.merge_prefixed(out, md)


def _assistant_turn(text: Any, calls: Any) -> Dict[str, Any]:
    """``ai.response.text`` + ``ai.response.toolCalls`` as the assistant message the SDK itself
    keeps (``{"role": "assistant", "content": [text and tool-call parts]}``), so the message
    normalizer reads the calls; calls that are not a list of objects stay as they came."""
    if not isinstance(calls, list) or not all(isinstance(x, dict) for x in calls):
        result: Dict[str, Any] = {"text": text} if text else {}
        result["tool_calls"] = calls
        return result
    parts: List[Dict[str, Any]] = [{"type": "text", "text": text}] if isinstance(text, str) and text else []
    parts.extend({**call, "type": "tool-call"} for call in calls)
    return {"messages": [{"role": "assistant", "content": parts}]}


FAMILY = Family(
    read,
    markers=("ai.operationId", "ai.model.id"),
    keys=(
        *(k for k, _ in USAGE),
        "ai.response.model",
        "ai.model.provider",
        "gen_ai.system",
        "ai.response.msToFirstChunk",
        "ai.stream.msToFirstChunk",
        "ai.prompt.messages",
        "ai.prompt",
        "ai.toolCall.args",
        "ai.values",
        "ai.value",
        "ai.response.text",
        "ai.response.toolCalls",
        "ai.response.object",
        "ai.toolCall.result",
    ),
    prefixes=_METADATA_PREFIXES,
    content_keys=(
        "ai.prompt",
        "ai.response.text",
        "ai.response.toolCalls",
        "ai.response.object",
        "ai.response.reasoning",
        "ai.toolCall.args",
        "ai.toolCall.result",
        "ai.value",
        "ai.values",
        "ai.embedding",
        "ai.embeddings",
    ),
    span_names=("ai.",),
)
