"""Google Agent Development Kit (scope ``gcp.vertex.agent``).

ADK's ``invoke_agent`` and ``execute_tool`` spans are GenAI semconv (read by
``genai``); this reader adds its own keys:

* ``call_llm`` spans (``gen_ai.system = gcp.vertex.agent``, which names the
  framework, not a provider): ``llm``, input ``gcp.vertex.agent.llm_request``,
  output ``gcp.vertex.agent.llm_response`` (JSON; ``{}`` when content capture
  is off, which counts as empty); the provider comes from the model id
  (``gemini-*`` -> ``google_ai``, LiteLLM ``openai/gpt-4o`` -> ``openai``);
* tool spans: ``gcp.vertex.agent.tool_call_args``/``tool_response``;
* ``gcp.vertex.agent.session_id`` is the thread; the empty placeholders ADK
  puts on every span (``llm_request = "{}"`` on tool spans) are dropped.
"""

from __future__ import annotations

from .._model import MappedSpan, is_empty
from . import _common as c
from ._providers import from_model_name

SCOPE = "gcp.vertex.agent"
# (key, is input): "{}" placeholders count as empty and are dropped
_IO = (
    ("gcp.vertex.agent.llm_request", True),
    ("gcp.vertex.agent.llm_response", False),
    ("gcp.vertex.agent.tool_call_args", True),
    ("gcp.vertex.agent.tool_response", False),
    ("gcp.vertex.agent.data", True),
)


def read(out: MappedSpan) -> None:
    rec = out.record
    attrs = rec.attributes
    get = attrs.get
    system = get("gen_ai.system")
    if (
        rec.scope_name != SCOPE
        and system != SCOPE
        and "gcp.vertex.agent.llm_request" not in attrs
        and "gcp.vertex.agent.event_id" not in attrs
    ):
        return
    used = out.used
    if system == SCOPE:
        used.add("gen_ai.system")

    req = get("gcp.vertex.agent.llm_request")
    is_llm = rec.name == "call_llm" or (system == SCOPE and "gen_ai.request.model" in attrs)
    if is_llm or not is_empty(req):
        out.set_type("llm")
        out.is_genai = True
        if out.provider is None:
            out.set_provider(from_model_name(get("gen_ai.request.model")))
    for key, is_input in _IO:
        v = get(key)
        if v is not None:
            if is_input:
                out.set_input(v, key)
            else:
                out.set_output(v, key)

    v = get("gcp.vertex.agent.session_id")
    if v is not None:
        c.thread_candidate(out, v)
