"""LangSmith's OpenTelemetry export (``langsmith`` with ``OTEL_ENABLED=true``).

* ``langsmith.span.kind`` is the run type: ``llm``/``embedding`` -> ``llm``,
  ``tool`` -> ``tool``, others ``general``; ``chain`` runs sum their children;
* ``gen_ai.prompt``/``gen_ai.completion`` hold the run's whole inputs/outputs
  dicts as JSON (read here so they are not mistaken for message lists);
* ``langsmith.metadata.*`` is merged into metadata; ``ls_provider`` and
  ``ls_model_name`` give provider and model (``gen_ai.system`` is only
  LangSmith's guess from the model name, ``langchain`` when it has none);
  ``thread_id``/``session_id``/``conversation_id`` give the thread;
* ``langsmith.span.tags`` is one comma-joined string;
* ``gen_ai.usage.{input,output}_token_details`` are Python ``str(dict)`` reprs:
  their cache/reasoning counts are read.

A LangSmith "session" is a project there; it is left in metadata and never
overrides the Opik project the exporter is configured with.
"""

from __future__ import annotations

import ast
from typing import Any, Dict, Optional

from .._model import MappedSpan
from . import _common as c
from ._family import Family
from ._flatten import collect, groups
from ._providers import normalize

METADATA = "langsmith.metadata."
_TYPES = {"llm": "llm", "embedding": "llm", "tool": "tool"}
_THREAD_KEYS = ("thread_id", "session_id", "conversation_id")


def read(out: MappedSpan) -> None:
    rec = out.record
    attrs = rec.attributes
    get = attrs.get
    kind = get("langsmith.span.kind")
    if kind is None and "langsmith.trace.name" not in attrs and rec.scope_name != "langsmith":
        return
    used = out.used
    kind = str(kind or "").strip().lower()
    out.set_type(_TYPES.get(kind, "general"))
    if kind in ("llm", "embedding", "tool"):
        out.is_genai = True
    elif kind == "chain":
        c.aggregate(out)

    g = groups(out)
    keys = g.get(METADATA)
    md: Dict[str, Any] = {}
    if keys:
        used.update(keys)
        md = collect(attrs, keys, METADATA)
        for name in _THREAD_KEYS:
            v = md.get(name)
            if v is not None:
                c.thread_candidate(out, v)
        c.merge_prefixed(out, md)

    if out.provider is None:
        ls_provider = normalize(md.get("ls_provider")) if md.get("ls_provider") is not None else None
        v = get("gen_ai.system")
        guessed = normalize(v) if v is not None else None
        p = ls_provider or guessed
        if p is not None and guessed == p:
            used.add("gen_ai.system")
        out.set_provider(p)
    if out.model is None and out.type == "llm":
        k, v = c.first(attrs, ("gen_ai.response.model", "gen_ai.request.model"))
        if k is not None:
            out.set_model(v)
            used.add(k)
        else:
            out.set_model(md.get("ls_model_name"))

    v = get("langsmith.span.tags")
    if v is not None:
        used.add("langsmith.span.tags")
        out.add_tags(v)

    v = get("gen_ai.prompt")
    if v is not None:
        out.set_input(v, "gen_ai.prompt")
    v = get("gen_ai.completion")
    if v is not None:
        out.set_output(v, "gen_ai.completion")

    if not out.usage_is_aggregate:
        details = _repr_dict(get("gen_ai.usage.input_token_details"))
        if details is not None:
            used.add("gen_ai.usage.input_token_details")
            for src, key in (("cache_read", c.CACHE_READ), ("cache_creation", c.CACHE_WRITE)):
                n = details.get(src)
                if n:
                    out.set_usage(key, n)
        details = _repr_dict(get("gen_ai.usage.output_token_details"))
        if details is not None:
            used.add("gen_ai.usage.output_token_details")
            n = details.get("reasoning")
            if n:
                out.set_usage(c.REASONING, n)


def _repr_dict(value: Any) -> Optional[Dict[str, Any]]:
    """``"{'cache_read': 3}"`` (Python repr) or JSON -> dict; None when it is neither."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or not value.startswith("{") or len(value) > 4096:
        return None
    parsed, ok = c.parse_json(value)
    if ok and isinstance(parsed, dict):
        return parsed
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


FAMILY = Family(
    read,
    markers=("langsmith.span.kind", "langsmith.trace.name"),
    keys=(
        "gen_ai.system",
        "gen_ai.response.model",
        "gen_ai.request.model",
        "langsmith.span.tags",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.usage.input_token_details",
        "gen_ai.usage.output_token_details",
    ),
    prefixes=(METADATA,),
    # the run's whole inputs and outputs, as JSON
    content_keys=("gen_ai.prompt", "gen_ai.completion"),
    scopes=("langsmith",),
)
