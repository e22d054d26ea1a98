"""Pydantic AI (instrumentation versions 1-5) and Logfire's own keys.

Pydantic AI's model-request spans are GenAI semconv (read by ``genai``); this
reader handles the rest:

* agent run spans (``invoke_agent {agent}``, ``agent run`` in v2, recognised by
  ``agent_name``/``pydantic_ai.all_messages``): ``general``, input
  ``pydantic_ai.all_messages`` (v1: ``all_messages_events``), output
  ``final_result`` (a text answer as ``choices``, structured output as its object);
  ``gen_ai.aggregated_usage.*`` (and ``gen_ai.usage.*`` when the aggregated names are
  switched off) sum the children and stay in metadata;
* ``operation.cost`` (USD, computed by Pydantic AI with genai-prices) -> cost;
* v2 tool spans (``running tool``): ``tool_arguments``/``tool_response``;
* v1 model spans: the ``events`` JSON list (messages in, the ``gen_ai.choice`` as ``choices`` out);
* Logfire: ``logfire.tags`` -> tags, ``request_data``/``response_data`` (its
  v1 LLM integrations) -> input/output, ``logfire.json_schema`` and
  ``logfire.msg_template`` dropped (rendering hints, no data).

``gen_ai.client.operation.time_to_first_chunk`` (seconds) is read by ``genai``.
"""

from __future__ import annotations

from typing import Any, Dict, List

from .._model import MappedSpan
from . import _common as c
from ._family import Family

_MARKERS = (
    "pydantic_ai.all_messages",
    "agent_name",
    "final_result",
    "all_messages_events",
    "operation.cost",
    "tool_arguments",
    "tool_response",
    "model_request_parameters",
    "logfire.msg",
    "logfire.json_schema",
    "logfire.tags",
    "request_data",
    "events",
)
_DROP = ("logfire.json_schema", "logfire.msg_template")


def read(out: MappedSpan) -> None:
    attrs = out.record.attributes
    get = attrs.get
    for k in _MARKERS:
        if k in attrs:
            break
    else:
        return
    used = out.used

    for k in _DROP:
        if k in attrs:
            used.add(k)
    v = get("logfire.tags")
    if v is not None:
        used.add("logfire.tags")
        out.add_tags(v)

    agent = "agent_name" in attrs or "pydantic_ai.all_messages" in attrs or "all_messages_events" in attrs
    if agent:
        out.set_type("general")
        out.is_genai = True
        c.aggregate(out)
        v = get("pydantic_ai.all_messages")
        if v is not None:
            out.set_input(v, "pydantic_ai.all_messages")
        v = get("all_messages_events")
        if v is not None:
            ins, outs = _split_events(v)
            out.set_input(ins, "all_messages_events")
        v = get("final_result")
        if v is not None:
            out.set_output(_final_answer(v), "final_result")
        v = get("metadata")
        if v is not None:
            used.add("metadata")
            out.merge_metadata(v)

    v = get("operation.cost")
    if v is not None and c.set_cost(out, v):
        used.add("operation.cost")

    if "tool_arguments" in attrs or "tool_response" in attrs:
        out.set_type("tool")
        out.is_genai = True
        v = get("tool_arguments")
        if v is not None:
            out.set_input(v, "tool_arguments")
        v = get("tool_response")
        if v is not None:
            out.set_output(v, "tool_response")

    v = get("events")
    if v is not None and not agent:
        ins, outs = _split_events(v)
        if ins is not None or outs is not None:
            used.add("events")
            out.set_type("llm")
            out.is_genai = True
            out.set_input(ins)
            out.set_output(outs)

    v = get("request_data")
    if v is not None:
        out.set_input(v, "request_data")
    v = get("response_data")
    if v is not None:
        out.set_output(_response_data(v), "response_data")


def _split_events(value: Any) -> "tuple[Any, Any]":
    """Pydantic AI v1 ``events``: ``[{"event.name": "gen_ai.user.message", ...}]`` -> (inputs, output)."""
    parsed, ok = c.parse_json(value)
    if not ok or not isinstance(parsed, list):
        return None, None
    inputs: List[Dict[str, Any]] = []
    output: Any = None
    for e in parsed:
        if not isinstance(e, dict):
            continue
        name = e.get("event.name")
        if name == "gen_ai.choice":
            output = _choice(e)
        elif isinstance(name, str) and name.startswith("gen_ai."):
            m = {k: v for k, v in e.items() if k not in ("event.name", "gen_ai.system")}
            m.setdefault("role", name[len("gen_ai."):].split(".")[0])
            inputs.append(m)
    return (inputs or None), output


def _choice(event: Dict[str, Any]) -> Any:
    """A v1 ``gen_ai.choice`` event as OpenAI ``choices`` (the normalizer reads their messages)."""
    message = event.get("message")
    if not isinstance(message, dict):
        return event.get("message", event)
    message = {"role": "assistant", **message}
    choice: Dict[str, Any] = {"index": event.get("index", 0), "message": message}
    if event.get("finish_reason") is not None:
        choice["finish_reason"] = event["finish_reason"]
    return {"choices": [choice]}


def _response_data(value: Any) -> Any:
    """Logfire's ``response_data`` of a chat completion (``{"message": {...}, "usage": ...}``) as ``choices``."""
    parsed, ok = c.parse_json(value)
    if not ok or not isinstance(parsed, dict) or not isinstance(parsed.get("message"), dict) or "choices" in parsed:
        return value
    rest = {k: v for k, v in parsed.items() if k != "message"}
    return {"choices": [{"index": 0, "message": {"role": "assistant", **parsed["message"]}}], **rest}


def _final_answer(value: Any) -> Any:
    """A text ``final_result`` as the assistant's answer (``choices``: Opik's Messages view shows the run
    as a conversation); a structured one (JSON) stays the object it is."""
    parsed, ok = c.parse_json(value)
    if isinstance(parsed, str) and parsed.strip():
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": parsed}}]}
    return value


FAMILY = Family(
    read,
    markers=_MARKERS,
    keys=(*_DROP, "response_data", "metadata"),
    content_keys=(
        "pydantic_ai.all_messages",
        "all_messages_events",
        "events",
        "final_result",
        "tool_arguments",
        "tool_response",
        "request_data",
        "response_data",
    ),
)
