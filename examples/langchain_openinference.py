"""A LangChain chain traced with OpenInference's LangChain instrumentation and
exported to Opik with ``OpikSpanExporter``.

The chat model is LangChain's own fake model (no network, no API key), so this
runs anywhere; replace it by any chat model (``ChatOpenAI``, ``ChatAnthropic``,
...) and the spans look the same. Each question becomes one Opik trace: the
chain, the prompt, the "retrieval" step, the LLM call (with messages and token
usage) and the output parser; both questions share a session, shown as one Opik
thread.

    pip install -e . langchain-core openinference-instrumentation-langchain   # in a clone
    # (from an index: pip install opentelemetry-exporter-opik langchain-core openinference-instrumentation-langchain)
    export OPIK_URL_OVERRIDE=http://localhost:5173/api   # or OPIK_API_KEY + OPIK_WORKSPACE for Opik Cloud
    python examples/langchain_openinference.py
"""

from __future__ import annotations

import os
import sys
from typing import Dict, List

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from openinference.instrumentation import using_session
from openinference.instrumentation.langchain import LangChainInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from opentelemetry.exporter.opik import OpikSampler, OpikSpanExporter

DOCS: Dict[str, str] = {
    "opik": "Opik is an open-source platform to trace, evaluate and monitor LLM applications.",
    "otel": "OpenTelemetry is a vendor-neutral standard for traces, metrics and logs.",
}


def retrieve(question: str) -> str:
    """A stand-in retriever: the documents whose key appears in the question."""
    hits = [text for key, text in DOCS.items() if key in question.lower()]
    return "\n".join(hits) or "no documents found"


def fake_answers() -> List[AIMessage]:
    usage = {"input_tokens": 41, "output_tokens": 12, "total_tokens": 53}
    return [
        AIMessage(content="Opik traces and evaluates LLM applications.", usage_metadata=usage),  # type: ignore[arg-type]
        AIMessage(content="OpenTelemetry is the vendor-neutral tracing standard.", usage_metadata=usage),  # type: ignore[arg-type]
    ]


def main() -> int:
    exporter = OpikSpanExporter(project_name=os.environ.get("OPIK_PROJECT_NAME", "otel-langchain-example"))
    provider = TracerProvider(resource=Resource.create({"service.name": "langchain-rag"}), sampler=OpikSampler())
    provider.add_span_processor(BatchSpanProcessor(exporter))
    LangChainInstrumentor().instrument(tracer_provider=provider)

    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from the context only.\n\nContext:\n{context}"), ("human", "{question}")]
    )
    model = GenericFakeChatModel(messages=iter(fake_answers()))
    chain = (
        {"context": RunnableLambda(retrieve).with_config(run_name="retrieve"), "question": RunnablePassthrough()}
        | prompt
        | model
        | StrOutputParser()
    ).with_config(run_name="rag-chain")

    with using_session("langchain-session-1"):  # OpenInference session id: the Opik thread
        for question in ("What is Opik?", "What is OTel?"):
            print(f"Q: {question}\nA: {chain.invoke(question)}")

    LangChainInstrumentor().uninstrument()
    provider.shutdown()
    stats = exporter.stats()
    print(
        f"Opik: {stats['traces_exported']} traces, {stats['spans_exported']} spans sent to {exporter.settings.url}"
        f" (project {exporter.settings.project_name!r}); dropped: {stats['dropped'] or 'none'}"
    )
    return 1 if stats["dropped"] else 0


if __name__ == "__main__":
    sys.exit(main())
