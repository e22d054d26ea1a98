"""OpenInference (Arize Phoenix; also smolagents, CrewAI, LlamaIndex, LangChain...).

Recognised by ``openinference.span.kind``, which the spec makes required.

* type: ``LLM``/``EMBEDDING`` -> ``llm``, ``TOOL`` -> ``tool``, ``GUARDRAIL``
  -> ``guardrail``, the rest ``general``; ``AGENT``/``CHAIN`` token counts sum
  their children's and stay in metadata;
* input/output: ``input.value``/``output.value`` when they are JSON (on LLM
  spans that is the whole request/response, messages included), else the
  reassembled ``llm.input_messages.N``/``llm.output_messages.N`` (numeric
  order, tool calls, multimodal contents), else ``llm.prompts``/``llm.choices``,
  else the plain text;
* model ``llm.model_name`` (response model when known), provider
  ``llm.provider`` then ``llm.system``, usage ``llm.token_count.*``, cost
  ``llm.cost.total`` (or prompt + completion), ttft from the
  ``First Token Stream Event`` event;
* ``metadata`` (a JSON string) is merged; ``session.id`` is the thread and
  ``tag.tags`` the tags (both read by ``core``); ``llm.tools.N`` and
  retrieval documents are reassembled so metadata does not show flattened keys.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from .._model import MappedSpan, is_empty
from . import _common as c
from ._flatten import groups, unflatten
from ._providers import normalize

KIND = "openinference.span.kind"
FIRST_TOKEN_EVENT = "First Token Stream Event"

_TYPES = {"LLM": "llm", "EMBEDDING": "llm", "TOOL": "tool", "GUARDRAIL": "guardrail"}
_GENAI_KINDS = frozenset(("LLM", "EMBEDDING", "TOOL", "AGENT", "GUARDRAIL", "RERANKER", "RETRIEVER"))
_AGGREGATE_KINDS = frozenset(("AGENT", "CHAIN"))

USAGE = (
    ("llm.token_count.prompt", c.PROMPT),
    ("llm.token_count.completion", c.COMPLETION),
    ("llm.token_count.total", c.TOTAL),
    ("llm.token_count.prompt_details.cache_read", c.CACHE_READ),
    ("llm.token_count.prompt_details.cache_write", c.CACHE_WRITE),
    ("llm.token_count.completion_details.reasoning", c.REASONING),
)
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

    _read_io(out, attrs)


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


def _read_side(out: MappedSpan, attrs: Mapping[str, Any], side: str, keys: Optional[List[str]], prefix: str) -> None:
    """``input`` or ``output``: the JSON ``<side>.value``, else the flattened messages (or
    prompts/choices) under ``prefix`` rebuilt, else the plain ``<side>.value``; its mime
    type is then consumed."""
    setter = out.set_input if side == "input" else out.set_output
    value_key = side + ".value"
    as_json = _json_value(attrs, value_key)
    if as_json is not None:
        setter(as_json, value_key)
    elif keys:
        rebuild = _messages if prefix.endswith("_messages.") else _texts
        # a plain-text <side>.value is what the messages already hold
        setter(rebuild(attrs, keys, prefix), value_key if value_key in attrs else None)
    elif value_key in attrs:
        setter(attrs[value_key], value_key)
    else:
        return
    out.used.add(side + ".mime_type")


def _read_io(out: MappedSpan, attrs: Mapping[str, Any]) -> None:
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

    if out.input is None:
        _read_side(out, attrs, "input", in_keys, in_prefix)
    emb = g.get("embedding.embeddings.")
    if emb:
        used.update(emb)  # vectors would only bloat metadata
        if out.input is None:
            texts = [e.get("text") for e in unflatten(attrs, emb, "embedding.embeddings.") if isinstance(e, dict)]
            out.set_input({"texts": [t for t in texts if t is not None]})

    if out.output is None:
        _read_side(out, attrs, "output", out_keys, out_prefix)

    docs = g.get("retrieval.documents.")
    if docs:
        used.update(docs)
        documents = unflatten(attrs, docs, "retrieval.documents.")
        if out.output is None:
            out.set_output({"documents": documents})
        else:
            out.metadata.setdefault("retrieval.documents", documents)
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
