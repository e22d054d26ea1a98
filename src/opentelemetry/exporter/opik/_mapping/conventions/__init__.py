"""Convention readers, one module per instrumentation family, in priority order.

Each family module declares what it owns (``FAMILY = Family(...)``: its reader,
the keys that mark it, the keys and flattened prefixes it reads, its content
keys and events); everything here is derived from :data:`FAMILIES`:

* the reader order: each field keeps the first value it is given, so the order
  is the priority: explicit Langfuse observation fields, then the families
  with their own keys, then plain GenAI semconv (which most of them also emit);
* the key index: one pass over a span's keys picks the families it carries a
  sign of, so it runs only their readers (a span of an unrelated library, HTTP
  or DB, runs none), and groups its flattened keys on the way;
* the flattened prefixes (``_flatten.PREFIXES``), the keys and events stripped
  when content capture is off (:data:`CONTENT_KEYS`, :data:`CONTENT_EVENTS`) and
  the keys the ``genai`` span filter looks for (:data:`GENAI_KEYS`).

:func:`finish` then applies the cross-family rules, and ``core.read`` runs after
all of them (Opik's own keys, errors, defaults). Adding a family is its module
and one entry in :data:`FAMILIES`.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from .. import _prompts, core
from .._model import SIGN_ENV, SIGN_IO, SIGN_OPIK, SIGN_PROMPT, SIGN_TAGS, SIGN_THREAD, SIGN_USAGE, MappedSpan, is_empty
from . import _common as c
from . import (
    _flatten,
    adk,
    genai,
    langfuse,
    langsmith,
    litellm,
    openinference,
    pydantic_ai,
    strands,
    traceloop,
    vercel_ai,
)
from ._family import Family, Reader
from ._index import FamilyIndex
from ._providers import KNOWN, normalize, refine, resolve

#: every family, in priority order (a field keeps the first value a reader gives it)
FAMILIES: Tuple[Family, ...] = (
    langfuse.FAMILY,
    openinference.FAMILY,
    vercel_ai.FAMILY,
    pydantic_ai.FAMILY,
    langsmith.FAMILY,
    adk.FAMILY,
    litellm.FAMILY,
    traceloop.FAMILY,
    strands.FAMILY,
    genai.FAMILY,
)

_CACHE_EXCLUSIVE_PROVIDERS = {
    # Opik prices these with input tokens that EXCLUDE cache reads/writes
    "anthropic": "original_usage.input_tokens",
    "bedrock": "original_usage.inputTokens",
}


#: ``metadata`` key of the prompt template a span used: ``{"name", "version"}`` (see docs/mapping.md)
PROMPT_INFO = _prompts.PROMPT_INFO
_PROMPT_KEYS = (
    ("gen_ai.prompt.name", "name"),
    ("gen_ai.prompt.version", "version"),
    ("langfuse.observation.prompt.name", "name"),
    ("langfuse.observation.prompt.version", "version"),
    ("llm.prompt_template.name", "name"),
    ("llm.prompt_template.version", "version"),
)


#: Opik's own key, then the standard ones
_THREAD_KEYS = ("opik.thread_id", *core.THREAD_KEYS)

#: (model, server address) strings -> ``resolve``'s provider: an app's LLM spans repeat them (cleared when full)
_RESOLVED: Dict[Tuple[str, Optional[str]], Optional[str]] = {}
_MAX_RESOLVED = 1024


def _resolve(model: Any, server: Any) -> Optional[str]:
    """``resolve(model, server)``, remembered when both are strings (or no server): it is pure."""
    if type(model) is not str or not (server is None or type(server) is str):
        return resolve(model, server)
    key = (model, server)
    hit = _RESOLVED.get(key)
    if hit is None and key not in _RESOLVED:
        if len(_RESOLVED) >= _MAX_RESOLVED:
            _RESOLVED.clear()
        hit = _RESOLVED[key] = resolve(model, server)
    return hit


def _prompt_info(out: MappedSpan) -> None:
    """The prompt's name and version (GenAI, Langfuse, OpenInference spellings) under one metadata key."""
    attrs = out.record.attributes
    info: Dict[str, Any] = {}
    for key, field in _PROMPT_KEYS:
        v = attrs.get(key)
        if v is None:
            continue
        out.used.add(key)
        if field not in info and not is_empty(v):
            info[field] = v if isinstance(v, int) and not isinstance(v, bool) else str(v)
    if info:
        out.metadata.setdefault(PROMPT_INFO, info)


def finish(out: MappedSpan) -> None:
    """Cross-family rules: thread priority, LLM providers, total tokens, cache-exclusive input counts."""
    attrs = out.record.attributes
    if out.thread_id is None:
        # Opik's own key, then the standard keys, outrank the family-specific ones the readers collected
        if out.present & SIGN_THREAD:
            for key in _THREAD_KEYS:
                v = attrs.get(key)
                if v is not None:
                    out.used.add(key)
                    out.set_thread(v)
            # consumed: core.read's pass over the same keys would change nothing now
            out.present &= ~SIGN_THREAD
        scratch = out.scratch
        if scratch is not None and out.thread_id is None:
            for v in scratch.get("threads", ()):
                out.set_thread(v)

    if out.type == "llm":
        # no reader found a provider (none named, or a framework named): the model id, its prefix, the host
        if out.provider is None:
            out.set_provider(_resolve(out.model or attrs.get("gen_ai.request.model"), attrs.get("server.address")))
        out.provider = refine(out.provider, out.model)
        model = out.model
        if model and model.count("/") == 1 and out.provider is not None and out.provider in KNOWN \
                and normalize(model.split("/", 1)[0]) == out.provider:
            # LiteLLM-style openai/gpt-4o: Opik prices the model's own name under its provider
            out.metadata.setdefault("model_id", model)
            out.model = model.split("/", 1)[1] or model

    if out.present & SIGN_PROMPT and any(key in attrs for key, _ in _PROMPT_KEYS):
        _prompt_info(out)

    usage = out.usage
    if out.usage_is_aggregate:
        # a reader consumed counters before another one recognised an aggregate span:
        # keep them visible, but out of the fields Opik sums per trace
        if usage:
            out.metadata.setdefault("aggregated_usage", dict(usage))
        if out.cost is not None:
            out.metadata.setdefault("aggregated_cost", out.cost)
            out.cost = None
    elif usage:
        if c.TOTAL not in usage and (c.PROMPT in usage or c.COMPLETION in usage):
            usage[c.TOTAL] = usage.get(c.PROMPT, 0) + usage.get(c.COMPLETION, 0)
        uncached_key = _CACHE_EXCLUSIVE_PROVIDERS.get(out.provider or "")
        if uncached_key is not None and c.PROMPT in usage and (c.CACHE_READ in usage or c.CACHE_WRITE in usage):
            # OTel/OpenInference/Vercel input counts include cached tokens (semconv: SHOULD);
            # give Opik the uncached part so cache tokens are not billed twice. A count
            # smaller than the cache already excludes it.
            prompt = usage[c.PROMPT]
            cached = usage.get(c.CACHE_READ, 0) + usage.get(c.CACHE_WRITE, 0)
            usage.setdefault(uncached_key, prompt - cached if prompt >= cached else prompt)


def _unique(keys: Any) -> Tuple[str, ...]:
    return tuple(dict.fromkeys(keys))


#: content keys of spans no family reads (MLflow, libraries with plain ``input``/``output`` keys)
_UNREAD_CONTENT_KEYS = ("input", "output", "mlflow.spanInputs", "mlflow.spanOutputs")

#: attribute keys (and roots of flattened ones: ``llm.input_messages`` covers ``llm.input_messages.0...``)
#: that carry prompts, completions, documents: stripped from metadata when content capture is off
CONTENT_KEYS: Tuple[str, ...] = _unique(
    (*(k for f in FAMILIES for k in f.content_keys), *core.CONTENT_KEYS, *_UNREAD_CONTENT_KEYS)
)
#: span events whose attributes are message contents
CONTENT_EVENTS: Tuple[str, ...] = _unique(e for f in FAMILIES for e in f.content_events)
#: keys whose non-empty value makes a span count as GenAI for ``span_filter=genai`` (typed ``general``
#: agent/workflow spans that no reader marked)
GENAI_KEYS: Tuple[str, ...] = _unique(k for f in FAMILIES for k in f.genai_keys)

_flatten.use_prefixes([p for f in FAMILIES for p in f.prefixes])
_SIGNS: Dict[str, int] = {}
for _bit, _keys in (
    (SIGN_OPIK, core.OPIK_KEYS),
    (SIGN_PROMPT, [k for k, _ in _PROMPT_KEYS]),
    (SIGN_USAGE, [k for table in c.USAGE_TABLES for k, _ in table]),
    (SIGN_THREAD, _THREAD_KEYS),
    (SIGN_ENV, core.ENV_KEYS),
    (SIGN_TAGS, core.TAG_KEYS),
    (SIGN_IO, core.CONTENT_KEYS),
):
    for _k in _keys:
        _SIGNS[_k] = _SIGNS.get(_k, 0) | _bit
INDEX = FamilyIndex(FAMILIES, _SIGNS)


def read(out: MappedSpan) -> None:
    """The readers of the families the span carries a sign of (one pass over its keys), then :func:`finish`."""
    for reader in INDEX.readers(out):
        reader(out)
    finish(out)


#: every family's reader in priority order, then :func:`finish`: what :func:`read` runs on a span
#: that carries every family's signs (the index only leaves out readers that would do nothing)
READERS: List[Reader] = [*(f.read for f in FAMILIES), finish]
