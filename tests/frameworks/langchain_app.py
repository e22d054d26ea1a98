"""LangChain (``ChatOpenAI``) with OpenInference's instrumentation, exported through the real ``OpikSpanExporter``.

``python langchain_app.py <opik url> <project>``

Runs in the main test venv (``langchain-openai`` and
``openinference-instrumentation-langchain`` are in the ``test`` extra) against
the fake OpenAI server. OpenInference records every chat model call with
``input.value``/``output.value`` in LangChain's serialized constructor form
plus the flattened ``llm.input_messages.*``/``llm.output_messages.*``.

Scenarios, one trace each: ``chat`` (a ``prompt | llm | parser`` chain,
non-streaming), ``stream`` (``llm.stream``), ``tool`` (a ``@chain`` function
running a tool round trip with ``bind_tools``), ``image`` (a PNG data URL in
the user message), ``error`` (model ``error-model``) and ``turn1``..``turn3``
(a chain with the conversation history, under OpenInference's
``using_session``). It prints one JSON line of facts for the test.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, List

from fake_openai import FakeOpenAIServer
from numbers_check import served
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from opentelemetry.exporter.opik import OpikSpanExporter

ANSWER = "Paris is the capital of France."
SYSTEM = "You are a terse assistant."
PNG_URL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
THREAD = "langchain-thread"
QUESTIONS = {
    "chat": "What is the capital of France?",
    "stream": "Stream me the capital of France.",
    "tool": "What is the weather in Paris?",
    "image": "What is in this image?",
    "error": "This call fails.",
    "turn1": "Hello, who are you?",
    "turn2": "What can you do?",
    "turn3": "Thanks, goodbye.",
}


def main(url: str, project: str) -> Dict[str, Any]:
    exporter = OpikSpanExporter(url=url, project_name=project, timeout=5)
    provider = TracerProvider(resource=Resource.create({"service.name": "langchain-app"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))

    from openinference.instrumentation import using_session
    from openinference.instrumentation.langchain import LangChainInstrumentor

    LangChainInstrumentor().instrument(tracer_provider=provider)

    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
    from langchain_core.runnables import chain
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str, unit: str = "celsius") -> str:
        """Weather for a city."""
        return f"Sunny, 21 degrees {unit} in {city}"

    facts: Dict[str, Any] = {"answer": ANSWER, "system": SYSTEM, "questions": QUESTIONS, "thread": THREAD,
                             "tool_result": "Sunny, 21 degrees celsius in Paris", "image_url": PNG_URL}
    answers: Dict[str, str] = {}
    with FakeOpenAIServer(content=ANSWER, first_chunk_delay=0.05, chunk_delay=0.002) as server:

        def model(name: str = "gpt-4o-mini", **kwargs: Any) -> ChatOpenAI:
            return ChatOpenAI(model=name, base_url=server.base_url, api_key="test", max_retries=0, **kwargs)

        llm = model()
        prompt = ChatPromptTemplate.from_messages([("system", SYSTEM), ("human", "{question}")])
        answers["chat"] = (prompt | llm | StrOutputParser()).invoke({"question": QUESTIONS["chat"]})

        chunks = [c.content for c in model(stream_usage=True).stream([SystemMessage(SYSTEM),
                                                                       HumanMessage(QUESTIONS["stream"])])]
        answers["stream"] = "".join(str(c) for c in chunks)
        facts["stream_first_chunk_ms"] = server.last_request.first_chunk_offset_s * 1000.0

        with_tools = llm.bind_tools([get_weather])

        @chain
        def weather_turn(question: str) -> str:
            messages: List[BaseMessage] = [SystemMessage(SYSTEM), HumanMessage(question)]
            reply = with_tools.invoke(messages)
            messages.append(reply)
            for call in reply.tool_calls:  # type: ignore[attr-defined]
                messages.append(get_weather.invoke(call))
            return str(with_tools.invoke(messages).content)

        answers["tool"] = weather_turn.invoke(QUESTIONS["tool"])

        image = HumanMessage(content=[{"type": "text", "text": QUESTIONS["image"]},
                                      {"type": "image_url", "image_url": {"url": PNG_URL}}])
        answers["image"] = str(llm.invoke([SystemMessage(SYSTEM), image]).content)

        try:
            model("error-model").invoke([SystemMessage(SYSTEM), HumanMessage(QUESTIONS["error"])])
        except Exception as exc:  # noqa: BLE001 - the failure is the scenario
            facts["error"] = f"{type(exc).__module__}.{type(exc).__qualname__}"

        conversation = ChatPromptTemplate.from_messages(
            [("system", SYSTEM), MessagesPlaceholder("history"), ("human", "{question}")]
        ) | llm | StrOutputParser()
        history: List[BaseMessage] = []
        with using_session(THREAD):
            for turn in ("turn1", "turn2", "turn3"):
                answers[turn] = conversation.invoke({"history": history, "question": QUESTIONS[turn]})
                history += [HumanMessage(QUESTIONS[turn]), AIMessage(answers[turn])]

        facts["answers"] = answers
        facts["requests"] = len(server.requests)
        facts["served"] = served(server)

    provider.force_flush(10_000)
    facts["flushed"] = exporter.force_flush(10_000)
    provider.shutdown()
    return facts


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
