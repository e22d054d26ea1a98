"""The OpenAI Agents SDK as OpenInference's ``OpenAIAgentsInstrumentor`` records it.

The instrumentor turns each SDK trace into an OTel ``AGENT`` root span (named after the
workflow) and each SDK span into a child: ``AGENT`` for an agent, ``CHAIN`` for the
SDK's task and turn spans, ``LLM`` for a model call, ``TOOL`` for a function tool.
What the generic OpenInference reading gets wrong for it:

* a Responses-API model call (``ResponseSpanData``) has the SDK's input items as its
  JSON ``input.value``, which leave out the agent's instructions; the flattened
  ``llm.input_messages`` start with them (the system message), so they are preferred;
* its ``output.value`` is the whole ``Response``: its ``output`` items are the answer
  (read from ``llm.output_messages``), the rest (id, model, tools, status, usage...)
  stays in metadata;
* a streamed chat completion (``GenerationSpanData``) has as its output a list holding
  the ``Response`` the SDK assembled from the chunks, and no flattened output messages:
  its ``output`` items become the answer, the rest goes to metadata;
* the root, agent, task and turn spans carry no input or output at all (the SDK records
  none): they are marked to take the text of the LLM calls that ran inside them (the
  trace's first question when it was asked within the span, the last answer given
  within it), as Opik's own Agents integration fills its trace.
"""

from __future__ import annotations

from typing import Any, Dict, List

from .._model import MappedSpan
from . import _common as c

SCOPE = "openinference.instrumentation.openai_agents"
#: ``out.scratch`` key: the span reads as the conversation of the LLM calls inside it
#: (``_mapping.BORROW_CONVERSATION``, applied by the mapper, which sees the trace's calls)
BORROW = "conversation_from_llm_calls"


def is_agents(out: MappedSpan) -> bool:
    return out.record.scope_name.startswith(SCOPE)


def flattened_first(out: MappedSpan, as_json: Any, rebuilt: List[Any]) -> bool:
    """A model call's JSON input items leave out the instructions its flattened messages start with."""
    if not rebuilt or not isinstance(as_json, list) or not is_agents(out):
        return False
    first = rebuilt[0]
    return isinstance(first, dict) and first.get("role") == "system" and not any(
        isinstance(m, dict) and m.get("role") in ("system", "developer") for m in as_json
    )


def read(out: MappedSpan, kind: str) -> None:
    """After the OpenInference reading of a span of the Agents instrumentor."""
    if kind in ("AGENT", "CHAIN") and (out.input is None or out.output is None):
        scratch = out.scratch
        if scratch is None:
            scratch = out.scratch = {}
        scratch[BORROW] = True
    elif kind == "LLM":
        response = out.metadata.get("output.value")
        if isinstance(response, dict) and response.get("object") == "response" and out.output is not None:
            out.metadata["output.value"] = {k: v for k, v in response.items() if k != "output"}
        listed = out.output if out.output is not None and len(out.output) == 1 else {}
        streamed = listed.get("output", listed.get("messages"))
        if isinstance(streamed, list) and len(streamed) == 1 and _is_response(streamed[0]):
            _streamed_chat_completion(out, streamed[0])


def _is_response(value: Any) -> bool:
    return isinstance(value, dict) and value.get("object") == "response" and isinstance(value.get("output"), list)


def _streamed_chat_completion(out: MappedSpan, response: Dict[str, Any]) -> None:
    """A streamed chat completion: the SDK records the ``Response`` it assembled as the output, in a list.

    Its ``output`` items are the answer (the normalizer reads Responses items as one
    assistant turn); the rest stays in metadata, its usage counted when the span has none.
    """
    out.output = {"output": response["output"]}
    out.metadata["output.value"] = {k: v for k, v in response.items() if k != "output"}
    usage = response.get("usage")
    if isinstance(usage, dict) and not out.usage:
        out.set_usage(c.PROMPT, usage.get("input_tokens"))
        out.set_usage(c.COMPLETION, usage.get("output_tokens"))
        out.set_usage(c.TOTAL, usage.get("total_tokens"))
