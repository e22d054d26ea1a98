"""LiteLLM's own OpenTelemetry logger (``litellm.callbacks = ["otel"]``, scope ``litellm``).

Its LLM span (``litellm_request``, or ``chat <model>`` under
``gen_ai_latest_experimental``) is GenAI semconv, read by ``genai``, with a few
keys of LiteLLM's own that this reader handles first:

* ``gen_ai.output.messages`` drops the tool calls of a message (``parts: []``,
  ``finish_reason: tool_calls``); they are on the span as
  ``gen_ai.completion.<n>.function_call.{name,arguments}`` (no id), and are put
  back on the output message, which keeps its finish reason;
* ``gen_ai.cost.total_cost`` (LiteLLM's price of the call) -> ``total_estimated_cost``;
* ``metadata.<key>``: LiteLLM's logging metadata, mostly proxy fields that are
  empty placeholders (``""``, ``[]``) outside its proxy; those are dropped, the
  others stay in metadata (Python-repr values such as ``metadata.usage_object``
  parsed);
* the ``raw_gen_ai_request`` child carries the provider's raw request and
  response as ``llm.<provider>.<field>`` (Python reprs of dicts and lists): the
  request fields (``messages``, ``tools``...) become its input, the response
  fields (``choices``, ``usage``, ``id``...) its output. It stays a ``general``
  span: its usage is the LLM span's.
"""

from __future__ import annotations

import ast
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .._model import MappedSpan, is_empty
from . import _common as c
from ._family import Family
from ._flatten import groups

SCOPE = "litellm"
RAW_SPAN = "raw_gen_ai_request"
_COMPLETION_CALL = "gen_ai.completion."
# fields of a provider's raw response (OpenAI chat/Responses, Anthropic, Gemini); the rest is the request
_RESPONSE_FIELDS = frozenset((
    "id", "choices", "created", "model", "object", "service_tier", "system_fingerprint", "usage",
    "content", "stop_reason", "stop_sequence", "role", "type", "candidates", "usageMetadata", "modelVersion",
    "responseId", "output", "status", "created_at", "stringified_raw_response",
))
# LLM-span keys of Traceloop's vocabulary that are not a raw provider field
_OWN_LLM_KEYS = frozenset(("request", "is_streaming", "usage", "completions", "prompts"))


def _literal(value: Any) -> Any:
    """A JSON string or a Python repr of a dict/list (LiteLLM's ``str(value)``) as the value; else as it is."""
    if not isinstance(value, str):
        return value
    s = value.strip()
    if s[:1] not in ("{", "["):
        return value
    parsed, ok = c.parse_json(s)
    if ok:
        return parsed
    try:
        return ast.literal_eval(s)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return value


def read(out: MappedSpan) -> None:
    rec = out.record
    attrs = rec.attributes
    if rec.scope_name != SCOPE and "litellm.call_id" not in attrs:
        return
    if "gen_ai.operation.name" in attrs or "litellm.call_id" in attrs:
        _read_llm(out, attrs)
    elif rec.name == RAW_SPAN or any(k.startswith("llm.") for k in attrs):
        _read_raw(out, attrs)


def _read_llm(out: MappedSpan, attrs: Mapping[str, Any]) -> None:
    used = out.used
    for key, value in attrs.items():
        if key.startswith("metadata."):
            used.add(key)
            if not is_empty(value):
                out.metadata.setdefault(key, _literal(value))
    v = attrs.get("gen_ai.cost.total_cost")
    if v is not None and c.set_cost(out, v):
        used.add("gen_ai.cost.total_cost")

    keys = groups(out).get(_COMPLETION_CALL)
    calls = _completion_calls(attrs, keys) if keys else []
    if not calls:
        return
    used.update(k for k in keys or () if ".function_call." in k)
    msgs, ok = c.parse_json(attrs.get("gen_ai.output.messages"))
    if not ok or not isinstance(msgs, list) or not msgs or not all(isinstance(m, dict) for m in msgs):
        msgs = [{"role": "assistant", "parts": [], "finish_reason": "tool_calls"}]
    target = next((m for m in msgs if not m.get("tool_calls")), None)
    if target is not None:
        msgs = [dict(m) for m in msgs]
        target = next(m for m in msgs if not m.get("tool_calls"))
        target["tool_calls"] = calls
    used.add("gen_ai.output.messages")
    out.set_output(msgs)


def _completion_calls(attrs: Mapping[str, Any], keys: Sequence[str]) -> List[Dict[str, Any]]:
    """``gen_ai.completion.<n>.function_call.{name,arguments}`` (among ``keys``) as OpenAI tool calls without ids."""
    found: Dict[int, Dict[str, Any]] = {}
    for key in keys:
        value = attrs[key]
        n, _, rest = key[len(_COMPLETION_CALL):].partition(".")
        if not n.isdigit() or not rest.startswith("function_call."):
            continue
        found.setdefault(int(n), {})[rest[len("function_call."):]] = value
    return [
        {"type": "function", "function": {"name": f.get("name"), "arguments": f.get("arguments", "{}")}}
        for _, f in sorted(found.items())
        if f.get("name")
    ]


def _read_raw(out: MappedSpan, attrs: Mapping[str, Any]) -> None:
    request: Dict[str, Any] = {}
    response: Dict[str, Any] = {}
    provider: Optional[str] = None
    for key, value in attrs.items():
        parts = key.split(".", 2)
        if len(parts) != 3 or parts[0] != "llm" or parts[1] in _OWN_LLM_KEYS:
            continue
        provider = provider or parts[1]
        out.used.add(key)
        field = parts[2]
        (response if field in _RESPONSE_FIELDS else request)[field] = _literal(value)
    if provider is None:
        return
    out.set_type("general")
    out.metadata.setdefault("litellm.provider", provider)
    out.set_input({k: v for k, v in request.items() if not is_empty(v)} or None)
    out.set_output(response or None)


FAMILY = Family(
    read,
    markers=("litellm.call_id",),
    # also ``metadata.<key>`` and the raw span's ``llm.<provider>.<field>``, found by their own scan of a LiteLLM span
    keys=("gen_ai.operation.name", "gen_ai.cost.total_cost", "gen_ai.output.messages"),
    prefixes=(_COMPLETION_CALL,),
    content_keys=("gen_ai.output.messages", "gen_ai.completion"),
    scopes=(SCOPE,),
)
