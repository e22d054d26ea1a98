"""Google Agent Development Kit (scope ``gcp.vertex.agent``).

ADK's default telemetry schema (2.x: ``invoke_workflow`` > ``invoke_agent`` >
``generate_content <model>`` / ``execute_tool``) is GenAI semconv, read by
``genai``; the legacy schema (``ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN=1``, and
ADK 1.x: ``invocation`` > ``invoke_agent`` > ``call_llm``) has keys of its own.
This reader handles:

* ``call_llm`` spans (``gen_ai.system = gcp.vertex.agent``, which names the
  framework, not a provider): ``llm``; input ``gcp.vertex.agent.llm_request``,
  a Gemini request whose ``config.system_instruction`` becomes the first
  (``system``) message before ``contents`` (the rest of ``config`` and
  ``model`` stay beside the messages); output ``gcp.vertex.agent.llm_response``,
  a Gemini response (``content``: one choice, ``finish_reason`` in OpenAI's
  words: ``STOP`` -> ``stop``, ``MAX_TOKENS`` -> ``length``; its ``model_version``,
  the model that answered, is the ``model``); ``{}`` when
  content capture is off, which counts as empty; the provider comes from the
  model id (``gemini-*`` -> ``google_ai``, LiteLLM ``openai/gpt-4o`` -> ``openai``);
* the legacy schema's ``generate_content`` span inside ``call_llm`` (stable
  semconv: ``gen_ai.system``, no content) repeats its parent's call: its usage
  stays in metadata so Opik does not count the call twice;
* default schema, streaming: ``gen_ai.output.messages`` lists every partial
  response (no finish reason) and then the whole answer; when the partial
  texts add up to the answer, only the answer is kept (``metadata.adk.partial_responses``
  counts them), otherwise all are kept;
* tool spans: ``gcp.vertex.agent.tool_call_args``/``tool_response``;
* ``gcp.vertex.agent.session_id`` is the thread; the empty placeholders ADK
  puts on every span (``llm_request = "{}"`` on tool spans) are dropped.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from .._model import MappedSpan, is_empty
from . import _common as c
from ._family import Family
from ._providers import from_model_name

SCOPE = "gcp.vertex.agent"
REQUEST = "gcp.vertex.agent.llm_request"
RESPONSE = "gcp.vertex.agent.llm_response"
# (key, is input): "{}" placeholders count as empty and are dropped
_TOOL_IO = (
    ("gcp.vertex.agent.tool_call_args", True),
    ("gcp.vertex.agent.tool_response", False),
    ("gcp.vertex.agent.data", True),
)
# Gemini finish reasons in OpenAI's words (as ADK's own semconv mapping has them)
_FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "OTHER": "error", "FINISH_REASON_UNSPECIFIED": ""}


def read(out: MappedSpan) -> None:
    rec = out.record
    attrs = rec.attributes
    get = attrs.get
    system = get("gen_ai.system")
    if rec.scope_name != SCOPE and system != SCOPE and REQUEST not in attrs and "gcp.vertex.agent.event_id" not in attrs:
        return
    used = out.used
    if system == SCOPE:
        used.add("gen_ai.system")

    req = get(REQUEST)
    is_llm = rec.name == "call_llm" or (system == SCOPE and "gen_ai.request.model" in attrs)
    if is_llm or not is_empty(req):
        out.set_type("llm")
        out.is_genai = True
        if out.provider is None:
            out.set_provider(from_model_name(get("gen_ai.request.model")))
    if req is not None:
        used.add(REQUEST)
        out.set_input(_request(req))
    resp = get(RESPONSE)
    if resp is not None:
        used.add(RESPONSE)
        resp = _response(resp)
        if isinstance(resp, dict) and isinstance(resp.get("model_version"), str):
            out.set_model(resp["model_version"])  # the model that answered; the requested one stays in metadata
        out.set_output(resp)
    for key, is_input in _TOOL_IO:
        v = get(key)
        if v is not None:
            if is_input:
                out.set_input(v, key)
            else:
                out.set_output(v, key)

    if get("gen_ai.operation.name") == "generate_content":
        if system is not None and system != SCOPE and "gen_ai.provider.name" not in attrs and (
            "gen_ai.input.messages" not in attrs and "gen_ai.output.messages" not in attrs
        ):
            c.aggregate(out)  # the legacy schema's inner span: its call_llm parent has the usage
        else:
            _streamed_output(out, get("gen_ai.output.messages"))

    v = get("gcp.vertex.agent.session_id")
    if v is not None:
        c.thread_candidate(out, v)


def _system_message(instruction: Any) -> Optional[Dict[str, Any]]:
    """A Gemini ``system_instruction`` (text, a ``Content``, a part or a list of them) as a system message."""
    if is_empty(instruction):
        return None
    if isinstance(instruction, str):
        return {"role": "system", "content": instruction}
    if isinstance(instruction, dict):
        parts = instruction.get("parts")
        return {"role": "system", "parts": parts if isinstance(parts, list) else [instruction]}
    if isinstance(instruction, list):
        return {"role": "system", "parts": [p if isinstance(p, dict) else {"text": str(p)} for p in instruction]}
    return {"role": "system", "content": str(instruction)}


def _request(value: Any) -> Any:
    """A Gemini request: ``{"messages": [system, *contents], "model", "config": rest of the config}``."""
    req, ok = c.parse_json(value)
    if not ok or not isinstance(req, dict) or not isinstance(req.get("contents"), list):
        return value
    messages: List[Any] = list(req["contents"])
    rest = {k: v for k, v in req.items() if k != "contents"}
    config = req.get("config")
    if isinstance(config, dict) and "system_instruction" in config:
        system = _system_message(config["system_instruction"])
        if system is not None:
            messages.insert(0, system)
            rest["config"] = {k: v for k, v in config.items() if k != "system_instruction"}
    return {"messages": messages, **rest}


def _response(value: Any) -> Any:
    """A Gemini response with its finish reason in OpenAI's words (the normalizer makes it a choice)."""
    resp, ok = c.parse_json(value)
    if not ok or not isinstance(resp, dict):
        return value
    reason = resp.get("finish_reason")
    if isinstance(reason, str) and reason.isupper():
        resp = {**resp, "finish_reason": _FINISH.get(reason, reason.lower())}
    return resp


def _text(message: Any) -> Optional[str]:
    parts = message.get("parts") if isinstance(message, dict) else None
    if not isinstance(parts, list):
        return None
    texts = [p["content"] for p in parts if isinstance(p, dict) and p.get("type") == "text"
             and isinstance(p.get("content"), str)]
    return "".join(texts) if len(texts) == len(parts) else None


def _streamed_output(out: MappedSpan, value: Any) -> None:
    """Partial responses that only repeat the final answer's text are left out of the output."""
    if value is None or out.output is not None:
        return
    msgs, ok = c.parse_json(value)
    if not ok or not isinstance(msgs, list) or len(msgs) < 2:
        return
    *partials, final = msgs
    if not isinstance(final, dict) or not final.get("finish_reason"):
        return
    if any(not isinstance(m, dict) or m.get("finish_reason") for m in partials):
        return
    texts = [_text(m) for m in partials]
    whole = _text(final)
    if whole is None or any(t is None for t in texts) or "".join(t or "" for t in texts) != whole:
        return
    out.used.add("gen_ai.output.messages")
    out.metadata["adk.partial_responses"] = len(partials)
    out.set_output([final])


FAMILY = Family(
    read,
    markers=(REQUEST, "gcp.vertex.agent.event_id"),
    keys=(
        RESPONSE,
        *(k for k, _ in _TOOL_IO),
        "gen_ai.system",
        "gen_ai.request.model",
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gcp.vertex.agent.session_id",
    ),
    content_keys=(REQUEST, RESPONSE, *(k for k, _ in _TOOL_IO)),
    scopes=(SCOPE,),
    values=(("gen_ai.system", SCOPE),),
)
