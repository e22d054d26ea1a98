"""OpenTelemetry GenAI semantic conventions, current and legacy.

Runs after the family readers: it fills whatever they left empty from the
standard ``gen_ai.*`` keys that every modern instrumentation emits (openai-v2,
Traceloop's new format, Pydantic AI, Vercel's ``@ai-sdk/otel``, ADK...).

* type from ``gen_ai.operation.name``: inference/embeddings -> ``llm``,
  ``execute_tool`` -> ``tool``, ``apply_guardrail`` -> ``guardrail``, agents,
  workflows, ``retrieval`` and memory operations -> ``general``; an in-process
  ``invoke_agent``/``invoke_workflow``/``plan``/``handle_conversation_turn``/``agent_step``
  span only sums its children's usage, so its ``gen_ai.usage.*`` stay in metadata
  (a remote agent, kind CLIENT, has no LLM children here and keeps its usage);
* retrieval: ``gen_ai.retrieval.query.text`` -> input ``{"query"}``,
  ``gen_ai.retrieval.documents`` -> output ``{"documents"}`` (memory:
  ``gen_ai.memory.query.text`` / ``gen_ai.memory.records``);
* messages from ``gen_ai.input.messages``/``gen_ai.output.messages`` (JSON
  strings or structured values), ``gen_ai.system_instructions`` prepended as a
  system message, tool arguments/result, the pre-1.28 span events
  ``gen_ai.content.prompt``/``gen_ai.content.completion`` and string
  ``gen_ai.prompt``/``gen_ai.completion``; structured values (tuples of
  mappings) made plain lists and dicts;
* the v1.28-1.36 events when they sit on the span:
  ``gen_ai.{system,user,assistant,tool}.message`` -> input messages (a tool
  message's ``id`` is its ``tool_call_id``), ``gen_ai.choice`` (``{"index",
  "finish_reason", "message"}``) -> output choices; nested values given as
  JSON strings or dotted keys (``message.content``) and JSON-encoded string
  contents are unwrapped. The normalizer makes all of these OpenAI chat shapes;
* usage in Opik's keys from every spelling (``input_tokens``/``prompt_tokens``,
  ``cache_read.input_tokens``/``cache_read_input_tokens``, ``cache_write.input_tokens``
  /``cache_creation.input_tokens``...); per-modality counts
  ``gen_ai.usage.{text,image,audio,video}.{input,output}_tokens`` as usage keys
  ``<modality>.<input|output>_tokens``; cost from ``gen_ai.usage.cost`` or the draft
  ``gen_ai.usage.cost.amount`` (USD unless ``.currency`` says otherwise);
* ttft from ``gen_ai.response.time_to_first_chunk`` (seconds) or the metric
  name Pydantic AI and Vercel put on the span;
* ``gen_ai.evaluation.*`` (span attributes or ``gen_ai.evaluation.result``
  events) -> Opik feedback scores on the span.
"""

from __future__ import annotations

from collections import abc
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .._model import MappedSpan, is_empty
from . import _common as c
from ._family import Family
from ._providers import normalize

LLM_OPS = frozenset(
    ("chat", "text_completion", "generate_content", "embeddings", "embedding", "completion", "generate", "text_generation")
)
AGENT_OPS = frozenset(("invoke_agent", "create_agent", "invoke_workflow", "plan", "handle_conversation_turn", "agent_step"))
_AGGREGATE_OPS = frozenset(("invoke_agent", "invoke_workflow", "plan", "handle_conversation_turn", "agent_step"))
GUARDRAIL_OPS = frozenset(("apply_guardrail",))
MEMORY_OPS = frozenset(("create_memory", "update_memory", "search_memory", "get_memory", "delete_memory"))

_MARKERS = (
    "gen_ai.provider.name",
    "gen_ai.system",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.tool.name",
    "gen_ai.agent.name",
    "gen_ai.evaluation.name",
    "gen_ai.prompt",
    "gen_ai.completion",
)

USAGE = c.UsageKeys((
    ("gen_ai.usage.input_tokens", c.PROMPT),
    ("gen_ai.usage.prompt_tokens", c.PROMPT),
    ("gen_ai.usage.output_tokens", c.COMPLETION),
    ("gen_ai.usage.completion_tokens", c.COMPLETION),
    ("gen_ai.usage.total_tokens", c.TOTAL),
    ("gen_ai.usage.cache_read.input_tokens", c.CACHE_READ),
    ("gen_ai.usage.cache_read_input_tokens", c.CACHE_READ),
    ("gen_ai.usage.cache_creation.input_tokens", c.CACHE_WRITE),
    ("gen_ai.usage.cache_write.input_tokens", c.CACHE_WRITE),
    ("gen_ai.usage.cache_creation_input_tokens", c.CACHE_WRITE),
    ("gen_ai.usage.reasoning.output_tokens", c.REASONING),
    ("gen_ai.usage.reasoning_tokens", c.REASONING),
    # per-modality counts, kept under their semconv name (``audio.input_tokens``...): Opik sums them per trace
    *(
        (f"gen_ai.usage.{modality}.{kind}_tokens", f"{modality}.{kind}_tokens")
        for modality in ("text", "image", "audio", "video")
        for kind in ("input", "output")
    ),
))

EV_PROMPT = "gen_ai.content.prompt"
EV_COMPLETION = "gen_ai.content.completion"
EV_CHOICE = "gen_ai.choice"
EV_EVALUATION = "gen_ai.evaluation.result"
EV_DETAILS = "gen_ai.client.inference.operation.details"
MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_MESSAGE_EVENT_NAMES = frozenset(MESSAGE_EVENTS)
_EVENT_NAMES = frozenset((EV_PROMPT, EV_COMPLETION, EV_CHOICE, EV_EVALUATION, EV_DETAILS, *MESSAGE_EVENTS))

_EVENT_ENVELOPE = frozenset(("gen_ai.system", "gen_ai.provider.name", "event.name"))
_NESTED = frozenset(("message", "tool_calls"))

_EVAL_KEYS = (
    "gen_ai.evaluation.name",
    "gen_ai.evaluation.score.value",
    "gen_ai.evaluation.score.label",
    "gen_ai.evaluation.explanation",
)


def read(out: MappedSpan) -> None:
    attrs = out.record.attributes
    get = attrs.get
    evs = c.events(out)
    op_raw = get("gen_ai.operation.name")
    if op_raw is None:
        for k in _MARKERS:
            if k in attrs:
                break
        else:
            if not evs or _EVENT_NAMES.isdisjoint(evs):
                return
    op = str(op_raw).strip().lower() if op_raw is not None else ""
    _read_type(out, op, attrs)
    resp = get("gen_ai.response.model")
    req = get("gen_ai.request.model")
    if resp is not None or req is not None:
        _read_model(out, resp, req)
    if out.provider is None and ("gen_ai.provider.name" in attrs or "gen_ai.system" in attrs):
        _read_provider(out, attrs)

    # --- usage, cost, ttft (each probed only as far as the span can have it)
    c.read_usage(out, USAGE)
    if "gen_ai.usage.cost" in attrs or "gen_ai.usage.cost.amount" in attrs:
        _read_cost(out, attrs)
    if out.type == "llm" and (_TTFT in attrs or _TTFT_METRIC in attrs):
        if not c.set_ttft_seconds(out, _TTFT):
            c.set_ttft_seconds(out, _TTFT_METRIC)

    # --- input / output (span attributes, and the same keys on operation-details events)
    details = _operation_details(out) if evs and EV_DETAILS in evs else None
    src = {**details[0], **attrs} if details else attrs
    _read_input(out, src, evs)
    _read_output(out, src, evs)
    if details:
        _details_read(out, *details)

    # --- evaluations -> feedback scores
    if "gen_ai.evaluation.name" in attrs:
        score = _score(attrs)
        if score is not None:
            out.feedback_scores.append(score)
            out.used.update(k for k in _EVAL_KEYS if k in attrs)
    if EV_EVALUATION in evs:
        for ev in c.all_events(out, EV_EVALUATION):
            score = _score(ev.attributes)
            if score is not None:
                out.feedback_scores.append(score)
        out.used.add("event:" + EV_EVALUATION)


_TTFT = "gen_ai.response.time_to_first_chunk"
_TTFT_METRIC = "gen_ai.client.operation.time_to_first_chunk"


def _read_type(out: MappedSpan, op: str, attrs: Mapping[str, Any]) -> None:
    """The span type from the operation name (or, without one, from the keys it carries)."""
    if op in LLM_OPS:
        out.set_type("llm")
    elif op == "execute_tool":
        out.set_type("tool")
    elif op in GUARDRAIL_OPS:
        out.set_type("guardrail")
        out.is_genai = True
    elif op in MEMORY_OPS or op == "retrieval":
        out.set_type("general")
    elif op in AGENT_OPS:
        out.set_type("general")
        if op in _AGGREGATE_OPS and out.record.kind != 3:  # 3 = CLIENT: a remote agent
            c.aggregate(out)
    elif not op:
        if "gen_ai.tool.name" in attrs and ("gen_ai.tool.call.arguments" in attrs or "gen_ai.tool.call.id" in attrs):
            out.set_type("tool")
        elif ("gen_ai.request.model" in attrs or "gen_ai.response.model" in attrs) and "gen_ai.agent.name" not in attrs:
            out.set_type("llm")
    if out.type in ("llm", "tool") or op in AGENT_OPS:
        out.is_genai = True


def _read_model(out: MappedSpan, resp: Any, req: Any) -> None:
    used = out.used
    if out.model is None:  # what ``set_model`` checks, checked once
        if not is_empty(resp):
            out.model = str(resp)
            used.add("gen_ai.response.model")
            if req == resp:
                used.add("gen_ai.request.model")
        elif not is_empty(req):
            out.model = str(req)
            used.add("gen_ai.request.model")
    else:  # a family reader chose the model: drop exact repeats only
        if resp is not None and resp == out.model:
            used.add("gen_ai.response.model")
        if req is not None and req == out.model:
            used.add("gen_ai.request.model")


def _read_provider(out: MappedSpan, attrs: Mapping[str, Any]) -> None:
    server = attrs.get("server.address")
    chosen: Optional[str] = None
    for key in ("gen_ai.provider.name", "gen_ai.system"):
        v = attrs.get(key)
        if v is None:
            continue
        p = normalize(v, server)
        if p is None:
            continue
        if chosen is None:
            chosen = p
            out.set_provider(p)
            out.used.add(key)
        elif p == chosen:
            out.used.add(key)


def _read_cost(out: MappedSpan, attrs: Mapping[str, Any]) -> None:
    for key in ("gen_ai.usage.cost", "gen_ai.usage.cost.amount"):
        v = attrs.get(key)
        if v is not None and _usd(attrs.get("gen_ai.usage.cost.currency") if key.endswith(".amount") else None) \
                and c.set_cost(out, v):
            out.used.add(key)


def _plain(value: Any) -> Any:
    """Structured attribute values (tuples of mappings, SDK >= 1.45) as JSON lists and dicts."""
    if isinstance(value, str):  # most values: JSON strings
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, abc.Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _event_body(attributes: Mapping[str, Any]) -> Dict[str, Any]:
    """A legacy event's body from its attributes: nested values may be JSON strings or dotted keys.

    ``{"message": '{"content": "Hi"}'}`` and ``{"message.content": "Hi"}`` both
    give ``{"message": {"content": "Hi"}}`` (``tool_calls.0.function.name``
    likewise gives a list); ``gen_ai.system`` and ``event.name`` are the
    event's envelope, not its body.
    """
    body: Dict[str, Any] = {}
    for key, value in attributes.items():
        if key in _EVENT_ENVELOPE:
            continue
        value = _plain(value)
        if isinstance(value, str) and key in _NESTED:
            parsed, ok = c.parse_json(value)
            if ok and isinstance(parsed, (dict, list)):
                value = parsed
        path = key.split(".")
        if len(path) > 1 and path[0] in _NESTED:
            node: Dict[str, Any] = body
            for seg in path[:-1]:
                nxt = node.setdefault(seg, {})
                if not isinstance(nxt, dict):  # a leaf where a branch is expected: keep the key
                    break
                node = nxt
            else:
                node.setdefault(path[-1], value)
                continue
        body.setdefault(key, value)
    return {k: _lists(v) for k, v in body.items()}


def _lists(node: Any) -> Any:
    """Dicts whose keys are all indexes (``{"0": ..., "1": ...}``) as lists, in numeric order."""
    if isinstance(node, dict):
        if node and all(isinstance(k, str) and k.isdigit() for k in node):
            return [_lists(node[k]) for k in sorted(node, key=int)]
        return {k: _lists(v) for k, v in node.items()}
    return node


def _json_string_content(m: Dict[str, Any]) -> Dict[str, Any]:
    """``content`` given as a JSON-encoded string (``'"Hello"'``) unwrapped once."""
    content = m.get("content")
    if isinstance(content, str) and content[:1] == '"':
        parsed, ok = c.parse_json(content)
        if ok and isinstance(parsed, str):
            return {**m, "content": parsed}
    return m


def _event_message(attributes: Mapping[str, Any], role: str) -> Dict[str, Any]:
    """One ``gen_ai.{system,user,assistant,tool}.message`` event as a chat message."""
    m = _json_string_content(_event_body(attributes))
    m.setdefault("role", role)
    if role == "tool" and "tool_call_id" not in m and "id" in m:
        m["tool_call_id"] = m.pop("id")
    return m


def _event_choice(attributes: Mapping[str, Any], n: int) -> Dict[str, Any]:
    """One ``gen_ai.choice`` event (``{"index", "finish_reason", "message": {...}}``) as an OpenAI choice."""
    body = _event_body(attributes)
    message = body.pop("message", None)
    if isinstance(message, str):  # plain text, not JSON
        message = {"content": message}
    if not isinstance(message, dict):
        message = {}
    message = _json_string_content(dict(message))
    message.setdefault("role", "assistant")
    if "tool_calls" in body and "tool_calls" not in message:
        message["tool_calls"] = body.pop("tool_calls")
    index = c.to_float(body.pop("index", n))
    choice: Dict[str, Any] = {"index": int(index) if index is not None else n, "message": message}
    if "finish_reason" in body:
        choice["finish_reason"] = body.pop("finish_reason")
    choice.update(body)
    return choice


_DETAIL_MESSAGES = frozenset(("gen_ai.input.messages", "gen_ai.output.messages"))


def _operation_details(out: MappedSpan) -> Tuple[Dict[str, Any], bool]:
    """The attributes of a span's ``gen_ai.client.inference.operation.details`` events, and whether all can be read.

    Instrumentations that keep content off span attributes (Strands with the
    latest conventions) put ``gen_ai.input.messages``, ``gen_ai.output.messages``,
    ``gen_ai.system_instructions`` and ``gen_ai.tool.definitions`` on this event;
    they are read exactly like the same span attributes. Several such events on
    one span are joined, their message lists concatenated in order. A key the span
    also has with another value, or a second differing value, cannot be read so:
    the events then also stay in ``metadata.otel.events``.
    """
    attrs = out.record.attributes
    details: Dict[str, Any] = {}
    complete = True
    for ev in c.all_events(out, EV_DETAILS):
        for k, v in ev.attributes.items():
            if k in attrs:
                complete = complete and attrs[k] == v
            elif k not in details:
                details[k] = v
            elif k in _DETAIL_MESSAGES:
                before, ok = c.parse_json(details[k])
                more, ok2 = c.parse_json(v)
                if ok and ok2 and isinstance(before, (list, tuple)) and isinstance(more, (list, tuple)):
                    details[k] = [*before, *more]
                else:
                    complete = False
            else:
                complete = complete and details[k] == v
    return details, complete


def _details_read(out: MappedSpan, details: Mapping[str, Any], complete: bool) -> None:
    """Event keys the readers left unused go to metadata, as the same attributes would; the events are marked read."""
    md = out.metadata
    for k, v in details.items():
        if k in out.used:
            continue
        if k in md:
            complete = False
            continue
        md[k] = c.parse_json(v)[0] if isinstance(v, str) and v[:1] in ("{", "[") else v
    if complete:
        out.used.add("event:" + EV_DETAILS)


def _system_message(value: Any) -> Dict[str, Any]:
    parsed, _ = c.parse_json(_plain(value))
    if isinstance(parsed, (list, tuple)):
        return {"role": "system", "parts": list(parsed)}
    return {"role": "system", "parts": [{"type": "text", "content": parsed}]}


def _read_input(out: MappedSpan, attrs: Mapping[str, Any], evs: Mapping[str, Any]) -> None:
    get = attrs.get
    sys_instr = get("gen_ai.system_instructions")
    v = get("gen_ai.input.messages")
    if v is not None:
        v = _plain(v)
        if sys_instr is not None and out.input is None:
            msgs, ok = c.parse_json(v)
            if ok and isinstance(msgs, (list, tuple)):
                out.used.add("gen_ai.system_instructions")
                v = [_system_message(sys_instr), *msgs]
        out.set_input(v, "gen_ai.input.messages")
    elif sys_instr is not None and out.input is None:
        out.set_input({"messages": [_system_message(sys_instr)]}, "gen_ai.system_instructions")
    v = get("gen_ai.tool.call.arguments")
    if v is not None:
        out.set_input(v, "gen_ai.tool.call.arguments")
    for key in ("gen_ai.retrieval.query.text", "gen_ai.memory.query.text"):
        v = get(key)
        if v is not None:
            out.set_input({"query": _plain(v)}, key)
    v = get("gen_ai.prompt")
    if v is not None and not isinstance(v, (int, float)):
        out.set_input(v, "gen_ai.prompt")
    if not evs:
        return
    ev = evs.get(EV_PROMPT)
    if ev is not None:
        out.used.add("event:" + EV_PROMPT)
        out.set_input(ev.attributes.get("gen_ai.prompt"))
    if out.input is None and not _MESSAGE_EVENT_NAMES.isdisjoint(evs):
        messages: List[Dict[str, Any]] = []
        for e in out.record.events:
            role = MESSAGE_EVENTS.get(e.name)
            if role is not None:
                messages.append(_event_message(e.attributes, role))
        out.set_input(messages)
        out.used.update("event:" + n for n in MESSAGE_EVENTS if n in evs)


def _read_output(out: MappedSpan, attrs: Mapping[str, Any], evs: Mapping[str, Any]) -> None:
    get = attrs.get
    v = get("gen_ai.output.messages")
    if v is not None:
        out.set_output(_plain(v), "gen_ai.output.messages")
    v = get("gen_ai.tool.call.result")
    if v is not None:
        out.set_output(v, "gen_ai.tool.call.result")
    for key in ("gen_ai.retrieval.documents", "gen_ai.memory.records"):
        v = get(key)
        if v is not None:
            docs, _ = c.parse_json(_plain(v))
            out.set_output({"documents" if key.endswith("documents") else "records": docs}, key)
    v = get("gen_ai.completion")
    if v is not None and not isinstance(v, (int, float)):
        out.set_output(v, "gen_ai.completion")
    if not evs:
        return
    ev = evs.get(EV_COMPLETION)
    if ev is not None:
        out.used.add("event:" + EV_COMPLETION)
        out.set_output(ev.attributes.get("gen_ai.completion"))
    if EV_CHOICE in evs and out.output is None:
        choices = [_event_choice(e.attributes, n) for n, e in enumerate(c.all_events(out, EV_CHOICE))]
        out.set_output({"choices": choices})
        out.used.add("event:" + EV_CHOICE)


def _usd(currency: Any) -> bool:
    """A stated cost is Opik's (USD) unless its currency says otherwise."""
    return currency is None or str(currency).strip().upper() in ("", "USD")


def _score(a: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """One Opik feedback score; None without a name or a finite numeric value."""
    name = a.get("gen_ai.evaluation.name")
    value = c.to_float(a.get("gen_ai.evaluation.score.value"))
    if is_empty(name) or value is None or not -1e9 <= value <= 1e9:
        return None
    score: Dict[str, Any] = {"name": str(name), "value": value}
    label = a.get("gen_ai.evaluation.score.label")
    if not is_empty(label):
        score["category_name"] = str(label)
    reason = a.get("gen_ai.evaluation.explanation")
    if not is_empty(reason):
        score["reason"] = str(reason)
    return score


FAMILY = Family(
    read,
    markers=("gen_ai.operation.name", *_MARKERS),
    keys=(
        *(k for k, _ in USAGE),
        "server.address",
        "gen_ai.usage.cost",
        "gen_ai.usage.cost.amount",
        "gen_ai.usage.cost.currency",
        "gen_ai.response.time_to_first_chunk",
        "gen_ai.client.operation.time_to_first_chunk",
        "gen_ai.system_instructions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.retrieval.query.text",
        "gen_ai.retrieval.documents",
        "gen_ai.memory.query.text",
        "gen_ai.memory.records",
        *_EVAL_KEYS,
    ),
    content_keys=(
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.retrieval.documents",
        "gen_ai.retrieval.query.text",
        "gen_ai.memory.query.text",
        "gen_ai.memory.records",
    ),
    content_events=(EV_PROMPT, EV_COMPLETION, *MESSAGE_EVENTS, EV_CHOICE, EV_DETAILS),
    events=tuple(sorted(_EVENT_NAMES)),
    # an agent/workflow span is typed ``general``, and not every reader marks it GenAI: these keys do
    genai_keys=("gen_ai.operation.name", "gen_ai.agent.name", "gen_ai.tool.name"),
)
