"""Strands Agents (scope ``strands.telemetry.tracer``, ``gen_ai.system`` or ``gen_ai.provider.name`` = ``strands-agents``).

Strands' spans are GenAI semconv (``invoke_agent``, ``execute_event_loop_cycle``,
``chat``, ``execute_tool``), read by ``genai``; this reader adds what is Strands' own:

* ``strands-agents`` names the framework, not a provider: the provider comes
  from the model id (``gpt-*`` -> ``openai``, Bedrock ids such as
  ``us.anthropic.claude-...`` -> ``bedrock``, ``claude-*`` -> ``anthropic``,
  ``gemini-*`` -> ``google_ai``, LiteLLM ``openai/...``) or ``server.address``;
  an id that names none leaves the provider unset rather than wrong;
* ttft from ``gen_ai.server.time_to_first_token`` (milliseconds), cache writes
  from the older ``gen_ai.usage.cache_write_input_tokens``;
* its default (pre-1.37) events, whose contents are JSON strings of Bedrock-style
  blocks (``'[{"text": "Hi"}]'``, ``toolUse``, ``toolResult``, ``image``):
  ``gen_ai.{system,user,assistant,tool}.message`` -> input messages,
  ``gen_ai.choice`` -> the LLM's choice (``message`` holds the blocks), the
  agent's answer (plain text) or an event loop cycle's assistant turn and
  ``tool.result``; on ``execute_tool`` spans ``gen_ai.tool.message`` holds the
  arguments and ``gen_ai.choice`` the result;
* with ``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`` the messages
  are on ``gen_ai.client.inference.operation.details`` events (read by ``genai``);
  on ``execute_tool`` spans those events only restate
  ``gen_ai.tool.call.arguments``/``result``, which are read here first;
* ``gen_ai.event.start_time``/``end_time`` restate the span's own times and are dropped.

The normalizer then turns the blocks into OpenAI chat content.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from .._model import MappedSpan, is_empty
from . import _common as c
from ._family import Family
from ._providers import from_model_name, normalize

SCOPE = "strands.telemetry.tracer"
FRAMEWORK = "strands-agents"

EV_CHOICE = "gen_ai.choice"
EV_DETAILS = "gen_ai.client.inference.operation.details"
_MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_LEGACY = frozenset((EV_CHOICE, *_MESSAGE_EVENTS))
_TIMES = ("gen_ai.event.start_time", "gen_ai.event.end_time")
# the pre-semconv spelling Strands still emits next to gen_ai.usage.cache_creation.input_tokens
_USAGE = (("gen_ai.usage.cache_write_input_tokens", c.CACHE_WRITE),)

# Bedrock model ids: "<vendor>.<model>" or "<region>.<vendor>.<model>" (cross-region inference profiles)
_BEDROCK_VENDORS = frozenset(
    ("anthropic", "amazon", "meta", "mistral", "cohere", "ai21", "deepseek", "writer", "qwen", "openai", "twelvelabs")
)
_BEDROCK_REGIONS = frozenset(("us", "eu", "apac", "us-gov", "global", "jp", "au", "ca"))


def provider_of(model: Any, server_address: Any = None) -> Optional[str]:
    """The provider a Strands model id (or the server it called) names; None when unsure."""
    if not is_empty(server_address):
        host = str(server_address).lower()
        for needle, name in (("openai.azure.com", "azure"), ("api.openai.com", "openai"), ("bedrock", "bedrock"),
                             ("anthropic.com", "anthropic"), ("generativelanguage.googleapis.com", "google_ai"),
                             ("aiplatform.googleapis.com", "google_vertexai")):
            if needle in host:
                return name
    if is_empty(model):
        return None
    hit = from_model_name(model)
    if hit is not None:
        return hit
    s = str(model).strip().lower()
    parts = s.split(".")
    if len(parts) >= 2 and (parts[0] in _BEDROCK_VENDORS or (parts[0] in _BEDROCK_REGIONS and parts[1] in _BEDROCK_VENDORS)):
        return "bedrock"
    if s.startswith(("arn:aws:bedrock", "arn:aws-us-gov:bedrock")):
        return "bedrock"
    if s.startswith(("gpt-", "chatgpt-", "o1", "o3", "o4")):
        return "openai"
    if s.startswith("claude-"):
        return "anthropic"
    if s.startswith(("mistral-", "mixtral-", "codestral", "magistral")):
        return "mistral"
    if s.startswith("grok-"):
        return "xai"
    return None


def read(out: MappedSpan) -> None:
    rec = out.record
    attrs = rec.attributes
    get = attrs.get
    system = get("gen_ai.system")
    provider_name = get("gen_ai.provider.name")
    if rec.scope_name != SCOPE and system != FRAMEWORK and provider_name != FRAMEWORK:
        return
    used = out.used
    if system == FRAMEWORK:
        used.add("gen_ai.system")
    if provider_name == FRAMEWORK:
        used.add("gen_ai.provider.name")
    used.update(k for k in _TIMES if k in attrs)
    op = str(get("gen_ai.operation.name") or "")

    if op == "chat":
        out.set_type("llm")
        out.is_genai = True
    model = get("gen_ai.response.model") or get("gen_ai.request.model")
    if out.provider is None:
        server = get("server.address")
        for key in ("gen_ai.provider.name", "gen_ai.system"):  # a real provider, should Strands ever name one
            v = get(key)
            if v is not None and v != FRAMEWORK:
                p = normalize(v, server)
                if p is not None:
                    out.set_provider(p)
                    used.add(key)
                    break
        else:
            out.set_provider(provider_of(model, server))
    c.set_ttft_ms_attr(out, "gen_ai.server.time_to_first_token")
    if op == "chat":  # agent spans only sum their model calls (genai keeps their usage out)
        c.read_usage(out, _USAGE)

    if op == "execute_tool":
        for key, is_input in (("gen_ai.tool.call.arguments", True), ("gen_ai.tool.call.result", False)):
            v = get(key)
            if v is not None and is_input:
                out.set_input(v, key)
            elif v is not None:
                out.set_output(v, key)
        evs = c.events(out)
        if EV_DETAILS in evs and "gen_ai.tool.call.arguments" in attrs and "gen_ai.tool.call.result" in attrs:
            used.add("event:" + EV_DETAILS)  # a tool_call part and a tool_call_response part of the same values
    evs = c.events(out)
    if evs and not _LEGACY.isdisjoint(evs):
        if op == "execute_tool":
            _legacy_tool(out, evs)
        else:
            _legacy_messages(out, op)


def _legacy_tool(out: MappedSpan, evs: Dict[str, Any]) -> None:
    """``gen_ai.tool.message`` = the arguments, ``gen_ai.choice`` = the result, both JSON strings."""
    ev = evs.get("gen_ai.tool.message")
    if ev is not None and _only(ev.attributes, ("content", "role", "id")):
        out.set_input(ev.attributes.get("content"))
        out.used.add("event:gen_ai.tool.message")
    ev = evs.get(EV_CHOICE)
    if ev is not None and _only(ev.attributes, ("message", "id")):
        out.set_output(ev.attributes.get("message"))
        out.used.add("event:" + EV_CHOICE)


def _only(attributes: Any, keys: Any) -> bool:
    """True when an event has no attribute but ``keys`` (nothing else would be lost by reading it)."""
    return all(k in keys for k in attributes)


def _legacy_messages(out: MappedSpan, op: str) -> None:
    messages: List[Dict[str, Any]] = []
    choices: List[Dict[str, Any]] = []
    names = set()
    for e in out.record.events:
        role = _MESSAGE_EVENTS.get(e.name)
        if role is not None:
            m: Dict[str, Any] = {k: v for k, v in e.attributes.items() if k != "gen_ai.system"}
            m.setdefault("role", role)
            messages.append(m)
            names.add(e.name)
        elif e.name == EV_CHOICE:
            choices.append(dict(e.attributes))
    if messages and out.set_input(messages):
        out.used.update("event:" + n for n in names)
    if not choices or out.output is not None:
        return
    if op == "chat":
        made = []
        for n, ch in enumerate(choices):
            msg: Dict[str, Any] = {"role": "assistant", "content": ch.pop("message", None)}
            choice: Dict[str, Any] = {"index": n, "message": msg}
            if "finish_reason" in ch:
                choice["finish_reason"] = ch.pop("finish_reason")
            choice.update(ch)
            made.append(choice)
        out.set_output({"choices": made})
    else:  # the agent's answer, or an event loop cycle's assistant turn and the tool results it got
        turn: List[Dict[str, Any]] = []
        rest: Dict[str, Any] = {}
        for ch in choices:
            if "message" in ch:
                turn.append({"role": "assistant", "content": ch.pop("message")})
            if "tool.result" in ch:
                turn.append({"role": "tool", "content": ch.pop("tool.result")})
            for k, v in ch.items():
                rest.setdefault(k, v)
        out.set_output({"messages": turn, **rest})
    out.used.add("event:" + EV_CHOICE)


FAMILY = Family(
    read,
    keys=(
        *_TIMES,
        *(k for k, _ in _USAGE),
        "gen_ai.system",
        "gen_ai.provider.name",
        "gen_ai.operation.name",
        "gen_ai.response.model",
        "gen_ai.request.model",
        "server.address",
        "gen_ai.server.time_to_first_token",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
    ),
    content_keys=("gen_ai.tool.call.arguments", "gen_ai.tool.call.result"),
    content_events=(*_LEGACY, EV_DETAILS),
    scopes=(SCOPE,),
    values=(("gen_ai.system", FRAMEWORK), ("gen_ai.provider.name", FRAMEWORK)),
)
