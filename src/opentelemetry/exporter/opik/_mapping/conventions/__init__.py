"""Convention readers, one module per instrumentation family, in priority order.

Every reader first recognises its family with a few dict lookups and returns
at once otherwise, so a span of an unrelated library (HTTP, DB) costs a handful
of lookups per reader. Each field keeps the first value it is given, so the
order below is the priority: explicit Langfuse observation fields, then the
families with their own keys, then plain GenAI semconv (which most of them
also emit) and finally :func:`finish`, which applies the cross-family rules.
``core.read`` runs after all of them (Opik's own keys, errors, defaults).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from .. import _prompts, core
from .._model import MappedSpan, is_empty
from . import _common as c
from . import adk, genai, langfuse, langsmith, litellm, openinference, pydantic_ai, strands, traceloop, vercel_ai
from ._providers import KNOWN, normalize, refine, resolve

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
        for key in ("opik.thread_id", *core.THREAD_KEYS):
            v = attrs.get(key)
            if v is not None:
                out.used.add(key)
                out.set_thread(v)
        scratch = out.scratch
        if scratch is not None and out.thread_id is None:
            for v in scratch.get("threads", ()):
                out.set_thread(v)

    if out.type == "llm":
        # no reader found a provider (none named, or a framework named): the model id, its prefix, the host
        if out.provider is None:
            out.set_provider(resolve(out.model or attrs.get("gen_ai.request.model"), attrs.get("server.address")))
        out.provider = refine(out.provider, out.model)
        model = out.model
        if model and model.count("/") == 1 and out.provider is not None and out.provider in KNOWN \
                and normalize(model.split("/", 1)[0]) == out.provider:
            # LiteLLM-style openai/gpt-4o: Opik prices the model's own name under its provider
            out.metadata.setdefault("model_id", model)
            out.model = model.split("/", 1)[1] or model

    if any(key in attrs for key, _ in _PROMPT_KEYS):
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


READERS: List[Callable[[MappedSpan], None]] = [
    langfuse.read,
    openinference.read,
    vercel_ai.read,
    pydantic_ai.read,
    langsmith.read,
    adk.read,
    litellm.read,
    traceloop.read,
    strands.read,
    genai.read,
    finish,
]
