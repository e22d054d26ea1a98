"""Langfuse SDK keys (Langfuse v3+ is OpenTelemetry-based; its spans may be forwarded here).

Read first: an explicit Langfuse observation field is the user's own statement.

* ``langfuse.observation.type``: ``generation``/``embedding`` -> ``llm``,
  ``tool`` -> ``tool``, ``guardrail`` -> ``guardrail``, others ``general``
  (``agent``/``chain`` sum their children);
* ``langfuse.observation.input``/``output`` (else the trace-level
  ``langfuse.trace.input``/``output``), ``model.name``;
* ``usage_details`` (JSON: ``input``/``output``/``total`` plus any other counts,
  Langfuse's ``input_cache_read``/``input_cache_creation``/``output_reasoning``
  renamed to Opik's keys) and ``cost_details`` (JSON, ``total`` else the sum);
* ``completion_start_time`` (ISO 8601, maybe JSON-quoted) -> ttft;
* ``langfuse.trace.tags`` -> tags, ``langfuse.{trace,observation}.metadata.*``
  (and whole-JSON ``...metadata``) -> metadata, ``langfuse.session.id`` -> thread,
  ``langfuse.environment`` -> environment; ``level = ERROR`` with its
  ``status_message`` -> error_info when nothing else reported the error.
"""

from __future__ import annotations

from typing import Any, Dict

from .._model import MappedSpan, is_empty
from . import _common as c
from ._family import Family
from ._flatten import collect, groups

_MARKERS = (
    "langfuse.observation.type",
    "langfuse.observation.input",
    "langfuse.observation.output",
    "langfuse.observation.model.name",
    "langfuse.observation.usage_details",
    "langfuse.trace.name",
    "langfuse.trace.input",
    "langfuse.session.id",
    "langfuse.environment",
)
_TYPES = {"generation": "llm", "embedding": "llm", "tool": "tool", "guardrail": "guardrail"}
_GENAI = frozenset(("generation", "embedding", "tool", "agent", "guardrail"))
_AGGREGATE = frozenset(("agent", "chain"))
_USAGE_NAMES = {
    "input": c.PROMPT,
    "output": c.COMPLETION,
    "total": c.TOTAL,
    "prompt_tokens": c.PROMPT,
    "completion_tokens": c.COMPLETION,
    "total_tokens": c.TOTAL,
    "input_tokens": c.PROMPT,
    "output_tokens": c.COMPLETION,
    "input_cache_read": c.CACHE_READ,
    "cache_read_input_tokens": c.CACHE_READ,
    "input_cached_tokens": c.CACHE_READ,
    "input_cache_creation": c.CACHE_WRITE,
    "cache_creation_input_tokens": c.CACHE_WRITE,
    "output_reasoning": c.REASONING,
    "output_reasoning_tokens": c.REASONING,
    "reasoning_tokens": c.REASONING,
}
_METADATA_PREFIXES = ("langfuse.observation.metadata.", "langfuse.trace.metadata.")


def read(out: MappedSpan) -> None:
    rec = out.record
    attrs = rec.attributes
    get = attrs.get
    for k in _MARKERS:
        if k in attrs:
            break
    else:
        return
    used = out.used

    otype = get("langfuse.observation.type")
    if otype is not None:
        otype = str(otype).strip().lower()
        used.add("langfuse.observation.type")
        out.set_type(_TYPES.get(otype, "general"))
        if otype in _GENAI:
            out.is_genai = True
        if otype in _AGGREGATE:
            c.aggregate(out)

    for key in ("langfuse.observation.input", "langfuse.trace.input"):
        v = get(key)
        if v is not None:
            out.set_input(v, key)
    for key in ("langfuse.observation.output", "langfuse.trace.output"):
        v = get(key)
        if v is not None:
            out.set_output(v, key)

    v = get("langfuse.observation.model.name")
    if v is not None and out.model is None:
        out.set_model(v)
        used.add("langfuse.observation.model.name")

    v = get("langfuse.observation.usage_details")
    if v is not None and not out.usage_is_aggregate:
        details, ok = c.parse_json(v)
        if ok and isinstance(details, dict):
            used.add("langfuse.observation.usage_details")
            for name, n in details.items():
                out.set_usage(_USAGE_NAMES.get(str(name), str(name)), n)
    v = get("langfuse.observation.cost_details")
    if v is not None:
        details, ok = c.parse_json(v)
        if ok and isinstance(details, dict):
            total = details.get("total")
            if total is None:
                nums = [c.to_float(x) for x in details.values()]
                total = sum(x for x in nums if x is not None) if nums and None not in nums else None
            if total is not None and c.set_cost(out, total):
                used.add("langfuse.observation.cost_details")

    v = get("langfuse.observation.completion_start_time")
    if v is not None:
        t = c.parse_iso_ns(v)
        if t is not None:
            used.add("langfuse.observation.completion_start_time")
            c.set_ttft_at(out, t)

    v = get("langfuse.trace.tags")
    if v is not None:
        used.add("langfuse.trace.tags")
        out.add_tags(v)
    v = get("langfuse.session.id")
    if v is not None:
        used.add("langfuse.session.id")
        c.thread_candidate(out, v)
    v = get("langfuse.environment")
    if v is not None:
        used.add("langfuse.environment")
        out.set_environment(v)

    for key in ("langfuse.observation.metadata", "langfuse.trace.metadata"):
        v = get(key)
        if v is not None:
            used.add(key)
            out.merge_metadata(v)
    g = groups(out)
    for prefix in _METADATA_PREFIXES:
        keys = g.get(prefix)
        if keys:
            used.update(keys)
            c.merge_prefixed(out, collect(attrs, keys, prefix))

    if out.error_info is None and str(get("langfuse.observation.level") or "").upper() == "ERROR":
        msg = get("langfuse.observation.status_message")
        info: Dict[str, Any] = {"exception_type": "Error", "traceback": str(msg) if not is_empty(msg) else "Error"}
        if not is_empty(msg):
            info["message"] = str(msg)
        # an exception event or an ERROR status, read by core, is more precise
        if rec.status_code != 2 and not any(e.name == "exception" for e in rec.events):
            out.error_info = info


FAMILY = Family(
    read,
    markers=_MARKERS,
    keys=(
        "langfuse.trace.output",
        "langfuse.observation.cost_details",
        "langfuse.observation.completion_start_time",
        "langfuse.trace.tags",
        "langfuse.observation.metadata",
        "langfuse.trace.metadata",
        "langfuse.observation.level",
        "langfuse.observation.status_message",
    ),
    prefixes=("langfuse.trace.metadata.", "langfuse.observation.metadata."),
    content_keys=("langfuse.observation.input", "langfuse.observation.output", "langfuse.trace.input", "langfuse.trace.output"),
)
