"""Traceloop OpenLLMetry: the traceloop-sdk decorators and its instrumentations.

The new format (``gen_ai.input.messages`` JSON, ``gen_ai.usage.input_tokens``)
is plain GenAI semconv and read by ``genai``; this reader adds what is
Traceloop's own:

* ``traceloop.span.kind``: ``tool`` -> ``tool``; ``workflow``/``task``/``agent``
  -> ``general``, whose usage (if any) sums their children's;
* ``traceloop.entity.input``/``output``: ``json.dumps`` of the call, cut blindly
  at the attribute length limit; a cut value is kept raw and flagged
  ``metadata.truncated``;
* the old flattened format: ``gen_ai.prompt.N.*``/``gen_ai.completion.N.*``
  reassembled into messages (role-less items given ``user``/``assistant``,
  legacy ``function_call`` as a tool call; the normalizer then makes them
  OpenAI ``messages``/``choices``), ``llm.request.type`` -> ``llm``,
  ``llm.usage.total_tokens``;
* ``traceloop.association.properties.*`` merged into metadata (``session_id``,
  ``conversation_id``, ``chat_id``, ``thread_id`` give the thread);
* ttft from the first ``gen_ai.content.completion.chunk`` (or old
  ``llm.content.completion.chunk``) event, only when the span dropped no events:
  the SDK drops the oldest events first, so after a drop the first chunk left is
  not the first chunk. The chunk events themselves never reach metadata.
"""

from __future__ import annotations

from typing import Any, List

from .._model import MappedSpan
from . import _common as c
from ._family import Family
from ._flatten import collect, groups, unflatten

CHUNK_EVENTS = ("gen_ai.content.completion.chunk", "llm.content.completion.chunk")
ASSOCIATION = "traceloop.association.properties."
_THREAD_PROPS = ("session_id", "conversation_id", "chat_id", "thread_id")

_MARKERS = (
    "traceloop.span.kind",
    "traceloop.entity.name",
    "traceloop.workflow.name",
    "traceloop.entity.path",
    "llm.request.type",
    "gen_ai.prompt.0.role",
    "gen_ai.prompt.0.content",
    "gen_ai.prompt.0.user",
    "gen_ai.completion.0.role",
    "gen_ai.completion.0.content",
    "gen_ai.is_streaming",
    "llm.is_streaming",
    "llm.usage.total_tokens",
    # the thread alone (a span of the app's own, under traceloop's association properties)
    *(ASSOCIATION + name for name in _THREAD_PROPS),
)
_AGGREGATE_KINDS = frozenset(("workflow", "task", "agent"))
_LLM_REQUEST_TYPES = frozenset(("chat", "completion", "embedding", "rerank"))


def read(out: MappedSpan) -> None:
    rec = out.record
    attrs = rec.attributes
    get = attrs.get
    evs = c.events(out)
    for k in _MARKERS:
        if k in attrs:
            break
    else:
        if not evs or (CHUNK_EVENTS[0] not in evs and CHUNK_EVENTS[1] not in evs):
            return

    kind = get("traceloop.span.kind")
    if kind is not None:
        kind = str(kind).strip().lower()
        if kind == "tool":
            out.set_type("tool")
            out.is_genai = True
        elif kind in _AGGREGATE_KINDS:
            out.set_type("general")
            c.aggregate(out)
            if kind == "agent":
                out.is_genai = True
    rtype = get("llm.request.type")
    if rtype is not None and str(rtype).lower() in _LLM_REQUEST_TYPES:
        out.set_type("llm")
        out.is_genai = True

    c.set_io_flagging_truncation(out, "traceloop.entity.input", "input")
    c.set_io_flagging_truncation(out, "traceloop.entity.output", "output")

    g = groups(out)
    # gen_ai.prompt.<n>.* only: gen_ai.prompt.name/version name a prompt template (read by ``finish``)
    prompt_keys = [k for k in g.get("gen_ai.prompt.") or () if k[14:15].isdigit()]
    if prompt_keys:
        out.used.update(prompt_keys)
        out.set_input(_messages(unflatten(attrs, prompt_keys, "gen_ai.prompt."), "user"))
        out.set_type("llm")
        out.is_genai = True
    completion_keys = g.get("gen_ai.completion.")
    if completion_keys:
        out.used.update(completion_keys)
        out.set_output(_messages(unflatten(attrs, completion_keys, "gen_ai.completion."), "assistant"))

    c.read_usage(out, (("llm.usage.total_tokens", c.TOTAL),))

    assoc = g.get(ASSOCIATION)
    if assoc:
        out.used.update(assoc)
        props = collect(attrs, assoc, ASSOCIATION)
        for name in _THREAD_PROPS:
            v = props.get(name)
            if v is not None:
                c.thread_candidate(out, v)
        c.merge_prefixed(out, props)

    if evs:
        for name in CHUNK_EVENTS:
            if name in evs:
                out.used.add("event:" + name)
                if rec.dropped_events == 0:
                    c.set_ttft_at(out, evs[name].time_ns)


def _messages(items: List[Any], role: str) -> List[Any]:
    """Old-format items -> chat messages.

    JSON contents are parsed (a list of content blocks, Anthropic's included);
    the completions API's ``{"user": text}`` prompt becomes a user message; an
    item without a role (completions, embeddings) gets ``role`` (``user`` in a
    prompt, ``assistant`` in a completion); a legacy ``function_call`` becomes a
    tool call.
    """
    result = []
    for m in items:
        if isinstance(m, dict):
            content = m.get("content")
            if isinstance(content, str) and content[:1] in ("[", "{"):
                parsed, ok = c.parse_json(content)
                if ok:
                    m["content"] = parsed
            if "role" not in m and "user" in m and "content" not in m:
                m = {"role": "user", "content": m.pop("user"), **m}
            m.setdefault("role", role)
            fn = m.get("function_call")
            if isinstance(fn, dict) and "tool_calls" not in m:
                m["tool_calls"] = [m.pop("function_call")]
        result.append(m)
    return result


FAMILY = Family(
    read,
    markers=_MARKERS,
    keys=("traceloop.entity.input", "traceloop.entity.output"),
    prefixes=("gen_ai.prompt.", "gen_ai.completion.", ASSOCIATION),
    content_keys=("traceloop.entity.input", "traceloop.entity.output", "gen_ai.prompt", "gen_ai.completion"),
    events=CHUNK_EVENTS,
)
