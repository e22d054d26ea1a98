"""OpenInference (Arize Phoenix; also smolagents, CrewAI, LlamaIndex, LangChain...).

Recognised by ``openinference.span.kind``, which the spec makes required.

* type: ``LLM``/``EMBEDDING`` -> ``llm``, ``TOOL`` -> ``tool``, ``GUARDRAIL``
  -> ``guardrail``, the rest ``general``; ``AGENT``/``CHAIN`` token counts sum
  their children's and stay in metadata;
* input/output: ``input.value``/``output.value`` when they are JSON OpenAI chat
  (the OpenAI instrumentation's whole request/response), else the reassembled
  ``llm.input_messages.N``/``llm.output_messages.N`` (numeric order, tool calls,
  multimodal contents; the rest of a JSON value, e.g. request arguments, in
  metadata), else the JSON value (LangChain's serialized constructors and
  ``LLMResult``, LlamaIndex's ``ChatMessage`` reprs read as messages: see
  ``_llama_index``), else ``llm.prompts``/``llm.choices``, else the plain text
  (a LlamaIndex agent's ``StopEvent`` repr read as its answer);
* LlamaIndex: ``predict()``'s prompt template is filled as the user message,
  ``_prepare_chat_with_tools`` (kind ``LLM``, no model call) is ``general``,
  retrievers show ``retrieval.documents`` rather than node reprs;
* model ``llm.model_name`` (response model when known), provider
  ``llm.provider`` then ``llm.system``, usage ``llm.token_count.*``, cost
  ``llm.cost.total`` (or prompt + completion), ttft from the
  ``First Token Stream Event`` event;
* ``metadata`` (a JSON string) is merged; ``session.id`` is the thread and
  ``tag.tags`` the tags (both read by ``core``); ``llm.tools.N`` and
  retrieval documents are reassembled so metadata does not show flattened keys.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional

from .._model import MappedSpan, is_empty
from ..messages._chat import is_message_like
from . import _common as c
from . import _llama_index as li
from . import _openai_agents as oa
from ._family import Family
from ._flatten import groups, unflatten
from ._providers import normalize

KIND = "openinference.span.kind"
FIRST_TOKEN_EVENT = "First Token Stream Event"

_TYPES = {"LLM": "llm", "EMBEDDING": "llm", "TOOL": "tool", "GUARDRAIL": "guardrail"}
_GENAI_KINDS = frozenset(("LLM", "EMBEDDING", "TOOL", "AGENT", "GUARDRAIL", "RERANKER", "RETRIEVER"))
_AGGREGATE_KINDS = frozenset(("AGENT", "CHAIN"))
_NODE_REPR = re.compile(r"<\w*(Node|Document)\w*\(")

USAGE = c.UsageKeys((
    ("llm.token_count.prompt", c.PROMPT),
    ("llm.token_count.completion", c.COMPLETION),
    ("llm.token_count.total", c.TOTAL),
    ("llm.token_count.prompt_details.cache_read", c.CACHE_READ),
    ("llm.token_count.prompt_details.cache_write", c.CACHE_WRITE),
    ("llm.token_count.completion_details.reasoning", c.REASONING),
))
_MODEL_KEYS = (
    "llm.response.model_name",
    "llm.model_name",
    "llm.request.model_name",
    "embedding.model_name",
    "reranker.model_name",
)


def read(out: MappedSpan) -> None:
    rec = out.record
    attrs = rec.attributes
    get = attrs.get
    kind_raw = get(KIND)
    if kind_raw is None:
        return
    kind = str(kind_raw).strip().upper()
    if kind == "LLM" and _llama_index_helper(rec.scope_name, out.name, attrs):
        kind = "CHAIN"
    out.set_type(_TYPES.get(kind, "general"))
    if kind in _GENAI_KINDS:
        out.is_genai = True
    if kind in _AGGREGATE_KINDS:
        c.aggregate(out)

    # model / provider
    k, v = c.first(attrs, _MODEL_KEYS)
    if k is not None and out.model is None:
        out.set_model(v)
        out.used.add(k)
    elif out.model is None and kind in ("LLM", "EMBEDDING"):
        # failed calls carry no response model; the request's is in the parameters
        for key in ("llm.invocation_parameters", "embedding.invocation_parameters"):
            params = c.parse_json(get(key))[0] if key in attrs else None
            if isinstance(params, dict) and not is_empty(params.get("model")):
                out.set_model(params["model"])
                break
    if out.provider is None:
        for key in ("llm.provider", "llm.system"):
            v = get(key)
            p = normalize(v, get("server.address")) if v is not None else None
            if p is not None:
                out.set_provider(p)
                out.used.add(key)
                break

    # usage, cost
    c.read_usage(out, USAGE)
    for key in ("llm.token_count.prompt_details.audio", "llm.token_count.completion_details.audio"):
        # zero audio counts say nothing; non-zero ones stay in metadata
        if c.to_float(get(key)) == 0:
            out.used.add(key)
    total = get("llm.cost.total")
    if total is not None:
        if c.set_cost(out, total):
            out.used.add("llm.cost.total")
    else:
        cp, cq = c.to_float(get("llm.cost.prompt")), c.to_float(get("llm.cost.completion"))
        if cp is not None and cq is not None:
            c.set_cost(out, cp + cq)

    # ttft
    if out.type == "llm":
        ev = c.events(out).get(FIRST_TOKEN_EVENT)
        if ev is not None:
            c.set_ttft_at(out, ev.time_ns)
        else:
            c.set_ttft_ms_attr(out, "time_to_first_token_ms")
    if FIRST_TOKEN_EVENT in c.events(out):
        out.used.add("event:" + FIRST_TOKEN_EVENT)

    # metadata JSON (a context attribute)
    v = get("metadata")
    if v is not None:
        out.used.add("metadata")
        out.merge_metadata(v)

    _read_io(out, attrs, kind)
    if oa.is_agents(out):
        oa.read(out, kind)


def _llama_index_helper(scope: str, name: str, attrs: Mapping[str, Any]) -> bool:
    """A private method of a LlamaIndex LLM class (``OpenAI._prepare_chat_with_tools``) that calls no model.

    OpenInference gives every span of a LlamaIndex LLM object the kind ``LLM``; a
    private helper that records no messages and no token counts only built a
    request, and reads as a step (``general``) rather than as a model call.
    """
    if not scope.startswith("openinference.instrumentation.llama_index"):
        return False
    if not name.rpartition(".")[2].startswith("_"):
        return False
    return not any(k.startswith(("llm.input_messages.", "llm.output_messages.", "llm.token_count.")) for k in attrs)


def _json_value(attrs: Mapping[str, Any], key: str) -> Any:
    """The parsed value of ``input.value``/``output.value``, or None when it is not JSON."""
    v = attrs.get(key)
    if v is None or is_empty(v):
        return None
    if not isinstance(v, str):
        return v
    parsed, ok = c.parse_json(v)
    return parsed if ok and isinstance(parsed, (dict, list)) else None


def _messages(attrs: Mapping[str, Any], keys: Optional[List[str]], prefix: str) -> List[Any]:
    if not keys:
        return []
    return [_openai_message(m) for m in unflatten(attrs, keys, prefix)]


def _openai_message(m: Any) -> Any:
    """OpenInference message -> OpenAI-style message (what Opik's message view renders)."""
    if not isinstance(m, dict):
        return m
    contents = m.pop("contents", None)
    if contents is not None and "content" not in m and isinstance(contents, list):
        parts: List[Dict[str, Any]] = []
        for p in contents:
            if not isinstance(p, dict):
                continue
            t = p.get("type")
            if t == "image" or "image" in p:
                img = p.get("image")
                url = img.get("image", img).get("url") if isinstance(img, dict) else None
                if isinstance(url, dict):  # pragma: no cover - defensive
                    url = url.get("url")
                parts.append({"type": "image_url", "image_url": {"url": url}})
            else:
                parts.append({"type": t or "text", "text": p.get("text")})
        m["content"] = parts
    calls = m.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            if isinstance(call, dict) and "function" in call:
                call.setdefault("type", "function")
    return m


def _texts(attrs: Mapping[str, Any], keys: Optional[List[str]], prefix: str) -> List[Any]:
    if not keys:
        return []
    return [p.get("text", p) if isinstance(p, dict) else p for p in unflatten(attrs, keys, prefix)]


def _says_something(m: Any) -> bool:
    """A rebuilt message with content or tool calls (a failed call leaves ``{"role": "assistant"}``)."""
    if not isinstance(m, dict):
        return not is_empty(m)
    content = m.get("content")
    if isinstance(content, list):
        content = [p for p in content if not (isinstance(p, dict) and p.get("type") == "text" and not p.get("text"))]
    return not is_empty(content) or bool(m.get("tool_calls")) or m.get("role") == "tool"


def _renders(value: Any, side: str) -> bool:
    """``value`` is already a chat Opik shows: OpenAI messages in, OpenAI choices out."""
    if side == "input":
        msgs = value.get("messages") if isinstance(value, dict) else value
        return isinstance(msgs, list) and bool(msgs) and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) for m in msgs
        )
    choices = value.get("choices") if isinstance(value, dict) else None
    return isinstance(choices, list) and bool(choices) and all(
        isinstance(ch, dict) and isinstance(ch.get("message"), dict) for ch in choices
    )


# keys of a JSON input.value/output.value that hold the conversation (the rest is parameters)
_CONVERSATION_KEYS = frozenset(("messages", "generations", "chat_history", "user_msg"))


def _rest(value: Any) -> Optional[Dict[str, Any]]:
    """What a JSON ``<side>.value`` holds besides the conversation (request parameters, LLMResult fields)."""
    if not isinstance(value, dict):
        return None
    rest = {k: v for k, v in value.items() if k not in _CONVERSATION_KEYS and v is not None}
    if rest.get("type") == "LLMResult":
        del rest["type"]
    return rest or None


def _generations(value: Any) -> Optional[List[Dict[str, Any]]]:
    """LangChain's ``LLMResult`` (``{"generations": [[...]]}``) as output messages with their finish reasons."""
    gens = value.get("generations") if isinstance(value, dict) else None
    if not isinstance(gens, list) or not gens or not all(isinstance(g, list) for g in gens):
        return None
    out: List[Dict[str, Any]] = []
    for g in gens[0]:
        if not isinstance(g, dict):
            continue
        msg = g.get("message")
        item: Dict[str, Any] = dict(msg) if isinstance(msg, dict) else {"role": "assistant", "content": g.get("text")}
        kwargs = item.get("kwargs")
        said: Dict[str, Any] = kwargs if isinstance(kwargs, dict) else item
        extra = said.get("additional_kwargs")
        if is_empty(said.get("content")) and not said.get("tool_calls") and not (
            isinstance(extra, dict) and extra.get("tool_calls")
        ):
            continue  # a failed call's empty generation
        info = g.get("generation_info")
        if isinstance(info, dict) and info.get("finish_reason") is not None:
            item["finish_reason"] = info["finish_reason"]
        out.append(item)
    return out


_LC_DICT_TYPES = frozenset(("human", "ai", "system", "tool", "function", "chat"))


def _repr_messages(value: Any, kind: str) -> Any:
    """A JSON ``<side>.value`` whose messages are LlamaIndex ``ChatMessage`` reprs, with the messages read;
    one LangChain message in its ``message_to_dict`` form (``{"type": "ai", "data": {...}}``) as messages."""
    if not isinstance(value, dict):
        return value
    data = value.get("data")
    if (
        kind != "TOOL"  # a tool's result (a ToolMessage) stays as the tool returned it
        and len(value) == 2
        and value.get("type") in _LC_DICT_TYPES
        and isinstance(data, dict)
        and "content" in data
    ):
        return {"messages": [{**data, "type": value["type"]}]}
    for key in ("messages", "chat_history"):
        msgs = li.messages(value.get(key))
        if msgs is None:
            continue
        user = li.message(value.get("user_msg")) if key == "chat_history" else None
        if isinstance(value.get("user_msg"), str) and user is None and value["user_msg"]:
            user = {"role": "user", "content": value["user_msg"]}
        rest = {k: v for k, v in value.items() if k not in (key, "user_msg")}
        return {"messages": msgs + ([user] if user else []), **rest}
    return value


def _as_io_list(value: Any, side: str, kind: str) -> Any:
    """A JSON list that is not messages (documents, texts) under its own key instead of ``messages``."""
    if not isinstance(value, list) or not value or all(is_message_like(v) for v in value):
        return value
    reprs = all(isinstance(v, str) and _NODE_REPR.match(v) for v in value)
    return {"documents" if kind == "RETRIEVER" or reprs else side: value}


def _prompt_text(attrs: Mapping[str, Any]) -> Optional[str]:
    """``llm.prompt_template.template`` filled with its variables (LlamaIndex ``predict``)."""
    template = attrs.get("llm.prompt_template.template")
    variables = c.parse_json(attrs.get("llm.prompt_template.variables"))[0]
    if not isinstance(template, str) or not template or not isinstance(variables, dict):
        return None
    try:
        return template.format(**{str(k): v for k, v in variables.items()})
    except (KeyError, IndexError, ValueError, AttributeError):
        return None


def _read_side(
    out: MappedSpan, attrs: Mapping[str, Any], side: str, keys: Optional[List[str]], prefix: str, kind: str
) -> None:
    """``input`` or ``output``, in this order of preference:

    * a JSON ``<side>.value`` that is already a chat Opik renders (OpenAI request/response);
    * the flattened ``llm.input_messages.N``/``llm.output_messages.N`` rebuilt (the rest of
      a JSON ``<side>.value``, e.g. request parameters, kept in metadata under its key);
    * a JSON ``<side>.value`` (LangChain ``LLMResult`` and LlamaIndex ``ChatMessage`` reprs read
      as messages; other lists under ``documents``/``<side>``, not ``messages``);
    * the flattened ``llm.prompts``/``llm.choices`` and then the plain ``<side>.value``.
    """
    setter = out.set_input if side == "input" else out.set_output
    value_key = side + ".value"
    as_json = _json_value(attrs, value_key)
    is_llm = out.type == "llm"
    rebuilt: List[Any] = []
    if keys and prefix.endswith("_messages."):
        rebuilt = [m for m in _messages(attrs, keys, prefix) if _says_something(m)]
        finish = attrs.get("llm.finish_reason") if side == "output" else None
        if finish is not None and len(rebuilt) == 1 and isinstance(rebuilt[0], dict):
            rebuilt[0].setdefault("finish_reason", finish)
            out.used.add("llm.finish_reason")
    renders = _renders(as_json, side) and not oa.flattened_first(out, as_json, rebuilt)
    if as_json is not None and (not rebuilt or renders):
        gens = _generations(as_json) if is_llm and side == "output" else None
        if gens is not None:
            setter(gens, value_key)
            # what LLMResult holds besides the generations; all of it when they said nothing (a failed call)
            rest = _rest(as_json) if gens else as_json
            if rest:
                out.metadata.setdefault(value_key, rest)
        else:
            setter(_as_io_list(_repr_messages(as_json, kind), side, kind), value_key)
    elif rebuilt:
        setter(rebuilt, value_key if value_key in attrs else None)
        rest = _rest(as_json)
        if rest:
            out.metadata.setdefault(value_key, rest)
    elif keys and not prefix.endswith("_messages."):
        # llm.prompts / llm.choices; a plain-text <side>.value is what they already hold
        setter(_texts(attrs, keys, prefix), value_key if value_key in attrs else None)
    elif value_key in attrs:
        text = attrs[value_key]
        reply = li.response_in(text) if side == "output" and not is_llm else None
        if reply is not None:  # a LlamaIndex agent's StopEvent/AgentOutput repr
            setter({"messages": [reply]}, value_key)
            out.metadata.setdefault(value_key, text)
        else:
            setter(text, value_key)
    else:
        return
    out.used.add(side + ".mime_type")


def _read_io(out: MappedSpan, attrs: Mapping[str, Any], kind: str) -> None:
    used = out.used
    g = groups(out)
    # the flattened lists repeat input.value/output.value: consumed either way, rebuilt only when used
    in_keys = g.get("llm.input_messages.") or g.get("llm.prompts.")
    in_prefix = "llm.input_messages." if "llm.input_messages." in g else "llm.prompts."
    out_keys = g.get("llm.output_messages.") or g.get("llm.choices.")
    out_prefix = "llm.output_messages." if "llm.output_messages." in g else "llm.choices."
    for keys in (in_keys, out_keys):
        if keys:
            used.update(keys)

    if out.input is None and out.type == "llm" and not in_keys and _json_value(attrs, "input.value") is not None:
        prompt = _prompt_text(attrs)  # LlamaIndex predict(): the prompt template, filled
        if prompt is not None:
            # input.value's "prompt" is the template object's repr: llm.prompt_template.* stay in metadata
            out.set_input({"messages": [{"role": "user", "content": prompt}]}, "input.value")
            used.add("input.mime_type")
    if out.input is None:
        _read_side(out, attrs, "input", in_keys, in_prefix, kind)
    emb = g.get("embedding.embeddings.")
    if emb:
        used.update(emb)  # vectors would only bloat metadata
        if out.input is None:
            texts = [e.get("text") for e in unflatten(attrs, emb, "embedding.embeddings.") if isinstance(e, dict)]
            out.set_input({"texts": [t for t in texts if t is not None]})

    docs = g.get("retrieval.documents.")
    if docs:
        used.update(docs)
        documents = unflatten(attrs, docs, "retrieval.documents.")
        if out.output is None:
            # the documents, not output.value's ["<NodeWithScore(...)>"] reprs (kept in metadata)
            out.set_output({"documents": documents})
            if "output.value" in attrs:
                used.update(("output.value", "output.mime_type"))
                out.metadata.setdefault("output.value", _json_value(attrs, "output.value") or attrs["output.value"])
        else:
            out.metadata.setdefault("retrieval.documents", documents)

    if out.output is None:
        _read_side(out, attrs, "output", out_keys, out_prefix, kind)

    for prefix in ("reranker.input_documents.", "reranker.output_documents."):
        keys = g.get(prefix)
        if keys:
            used.update(keys)
            out.metadata.setdefault(prefix[:-1], unflatten(attrs, keys, prefix))
    tools = g.get("llm.tools.")
    if tools:
        used.update(tools)
        items = unflatten(attrs, tools, "llm.tools.")
        parsed = []
        for t in items:
            schema = t.get("json_schema", t) if isinstance(t, dict) else t
            parsed.append(c.parse_json(schema)[0])
        out.metadata.setdefault("llm.tools", parsed)


# ``_llama_index`` and ``_openai_agents`` read within this family (LlamaIndex reprs, the Agents SDK's
# spans): they own no attribute keys of their own
FAMILY = Family(
    read,
    markers=(KIND,),
    keys=(
        *(k for k, _ in USAGE),
        *_MODEL_KEYS,
        "llm.invocation_parameters",
        "embedding.invocation_parameters",
        "llm.provider",
        "llm.system",
        "server.address",
        "llm.token_count.prompt_details.audio",
        "llm.token_count.completion_details.audio",
        "llm.cost.total",
        "llm.cost.prompt",
        "llm.cost.completion",
        "time_to_first_token_ms",
        "metadata",
        "input.value",
        "output.value",
        "input.mime_type",
        "output.mime_type",
        "llm.finish_reason",
        "llm.prompt_template.template",
        "llm.prompt_template.variables",
    ),
    prefixes=(
        "llm.input_messages.",
        "llm.output_messages.",
        "llm.prompts.",
        "llm.choices.",
        "llm.tools.",
        "retrieval.documents.",
        "embedding.embeddings.",
        "reranker.input_documents.",
        "reranker.output_documents.",
    ),
    content_keys=(
        "llm.input_messages",
        "llm.output_messages",
        "llm.prompts",
        "llm.choices",
        "llm.prompt_template.variables",
        "llm.function_call",
        "input.value",
        "output.value",
        "retrieval.documents",
        "reranker.input_documents",
        "reranker.output_documents",
        "reranker.query",
        "embedding.embeddings",
    ),
)
