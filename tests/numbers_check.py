"""The numbers Opik prices and sums, checked against what the fake model server answered.

An app reports ``served(server)`` (one entry per request the fake OpenAI or
Responses server got: when, the model it answered, the usage it returned); a
framework test then calls ``problems(traces, spans, served)`` on what the
stand-in stored. For every trace:

* the sum of its spans' ``usage`` (prompt, completion, total) equals the usage
  the server returned for the calls made within the trace's time;
* every LLM span has a provider Opik can price (``_providers.KNOWN``) and, when
  the call succeeded, the model the server answered (or, with
  ``requested_model="stream"``/``"all"``, the model the client asked for, on
  streamed/all calls, when the framework records no other); a failed call with
  no usage has nothing to price;
* optionally a cost on every successful LLM span (the framework states one) and
  a ttft on every streamed LLM span (the framework records the first token):
  the span's start plus ttft falls after the server sent its first chunk and
  within 500 ms of it.

A call belongs to the trace that started last before the server got it (the
scenarios of an app run one after the other).

An empty list means all is right; each problem is a readable sentence.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from opentelemetry.exporter.opik._mapping.conventions._providers import KNOWN

KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def served(server: Any) -> List[Dict[str, Any]]:
    """What the fake server answered, per request (JSON-able, for an app's facts line)."""
    cfg = server.config
    out: List[Dict[str, Any]] = []
    for r in server.requests:
        body = r.body if isinstance(r.body, dict) else {}
        ok = r.status == 200
        usage: Optional[Dict[str, int]] = None
        if ok and r.path.endswith("/chat/completions"):
            if not r.stream or (body.get("stream_options") or {}).get("include_usage"):
                usage = {"prompt_tokens": cfg.prompt_tokens, "completion_tokens": cfg.completion_tokens,
                         "total_tokens": cfg.prompt_tokens + cfg.completion_tokens}
        out.append({
            "path": r.path,
            "received_ns": r.received_ns,
            "status": r.status,
            "stream": r.stream,
            "model": server.response_model(str(body.get("model") or "")) if ok else None,
            "requested": body.get("model"),
            "usage": usage,
            "first_chunk_offset_ms": r.first_chunk_offset_s * 1000 if r.first_chunk_offset_s is not None else None,
        })
    return out


def ns(iso: str) -> int:
    """An Opik ISO timestamp (``...Z``, microseconds) as ns since the epoch."""
    s = iso.rstrip("Z")
    base, _, frac = s.partition(".")
    dt = datetime.fromisoformat(base + "+00:00")
    return int(dt.timestamp()) * 1_000_000_000 + int((frac or "0")[:9].ljust(9, "0"))


def _sum(usages: Iterable[Optional[Mapping[str, int]]]) -> Dict[str, int]:
    total = {k: 0 for k in KEYS}
    for u in usages:
        for k in KEYS:
            total[k] += int((u or {}).get(k, 0))
    return total


def owner(calls: Sequence[Mapping[str, Any]], items: Sequence[Mapping[str, Any]]) -> List[Optional[Mapping[str, Any]]]:
    """For each call, the item (trace or span) that started last before the server got it.

    Scenarios run one after the other, so that is the trace the call belongs to (some
    instrumentations end a streamed call's span before the stream is read, so a call
    may fall after its span's end).
    """
    starts = sorted(((ns(i["start_time"]), n) for n, i in enumerate(items)), key=lambda x: x[0])
    found: List[Optional[Mapping[str, Any]]] = []
    for c in calls:
        before = [n for t, n in starts if t <= c["received_ns"]]
        found.append(items[before[-1]] if before else None)
    return found


def problems(
    traces: Sequence[Mapping[str, Any]],
    spans: Sequence[Mapping[str, Any]],
    calls: Sequence[Mapping[str, Any]],
    *,
    cost: bool = False,
    ttft: bool = False,
    requested_model: Optional[str] = None,
    no_ttft: Sequence[str] = (),
) -> List[str]:
    found: List[str] = []
    owners = owner(calls, traces)
    if any(o is None for o in owners):
        found.append(f"{sum(o is None for o in owners)} of {len(calls)} server calls came before every trace")
    for trace in traces:
        own = [s for s in spans if s["trace_id"] == trace["id"]]
        mine = [c for c, o in zip(calls, owners) if o is trace]
        got = _sum(s.get("usage") for s in own)
        want = _sum(c["usage"] for c in mine)
        if got != want:
            found.append(f"trace {trace['name']!r}: span usage sums to {got}, the server returned {want}")
        models = {c["model"] for c in mine if c["model"]}
        if requested_model:  # the framework records only the model it asked for ("stream": on streamed calls)
            models |= {c["requested"] for c in mine if c["model"] and (requested_model == "all" or c["stream"])}
        for s in own:
            if s["type"] != "llm":
                continue
            label = f"trace {trace['name']!r}, LLM span {s['name']!r}"
            if "error_info" in s and "usage" not in s:
                continue  # a failed call: nothing to price
            if s.get("provider") not in KNOWN:
                found.append(f"{label}: provider {s.get('provider')!r} is not one Opik prices")
            if s.get("model") not in models:
                found.append(f"{label}: model {s.get('model')!r}, the server answered {sorted(models)}")
            if cost and not (isinstance(s.get("total_estimated_cost"), (int, float)) and s["total_estimated_cost"] > 0):
                found.append(f"{label}: no cost, though the framework states one")
        if ttft and trace["name"] not in no_ttft:
            llm = [s for s in own if s["type"] == "llm"]
            streamed = [c for c in mine if c["stream"] and c["status"] == 200]
            for c, s in zip(streamed, owner(streamed, llm)):
                # the LLM span that made the call: its first token came after the server sent it, soon after
                if s is None:
                    found.append(f"trace {trace['name']!r}: no LLM span made the streamed call")
                    continue
                v = s.get("ttft")
                sent_ns = c["received_ns"] + c["first_chunk_offset_ms"] * 1e6
                at_ns = ns(s["start_time"]) + v * 1e6 if isinstance(v, (int, float)) else None
                if at_ns is None or not sent_ns - 2e6 <= at_ns <= sent_ns + 500e6:
                    found.append(f"trace {trace['name']!r}, LLM span {s['name']!r}: ttft {v!r} ms, the first chunk "
                                 f"left the server {(sent_ns - ns(s['start_time'])) / 1e6:.0f} ms after the span began")
    return found
