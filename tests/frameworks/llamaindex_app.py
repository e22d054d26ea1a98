"""LlamaIndex with OpenInference's instrumentation, exported through the real ``OpikSpanExporter``.

``python llamaindex_app.py <opik url> <project>`` (in the ``llamaindex`` venv)

OpenInference records LlamaIndex calls with ``input.value`` holding the
``repr()`` of LlamaIndex objects (``ChatMessage(role=<MessageRole.USER:
'user'>, ...)``) next to the flattened ``llm.input_messages.*`` of the model
call. Scenarios, one trace each, against the fake OpenAI server:

* ``chat`` (``OpenAI.chat``), ``stream`` (``stream_chat``), ``image`` (a
  ``ChatMessage`` with an ``ImageBlock`` of PNG bytes);
* ``tool``: a ``FunctionAgent`` with one ``FunctionTool`` (a tool round trip:
  tool call, tool result, answer);
* ``error``: ``OpenAILike`` with model ``error-model`` (LlamaIndex's ``OpenAI``
  refuses model names it has no context window for);
* ``rag``: a ``SummaryIndex`` query engine (retriever, prompt template, answer);
* ``turn1``..``turn3``: ``chat`` with the history, under OpenInference's
  ``using_session``.

It prints one JSON line of facts for the test.
"""

from __future__ import annotations

import asyncio
import base64
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
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
THREAD = "llamaindex-thread"
DOCUMENTS = ["Paris is the capital of France.", "Berlin is the capital of Germany."]
QUESTIONS = {
    "chat": "What is the capital of France?",
    "stream": "Stream me the capital of France.",
    "tool": "What is the weather in Paris?",
    "image": "What is in this image?",
    "error": "This call fails.",
    "rag": "Which city is the capital of France?",
    "turn1": "Hello, who are you?",
    "turn2": "What can you do?",
    "turn3": "Thanks, goodbye.",
}


def main(url: str, project: str) -> Dict[str, Any]:
    exporter = OpikSpanExporter(url=url, project_name=project, timeout=5)
    provider = TracerProvider(resource=Resource.create({"service.name": "llamaindex-app"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))

    from openinference.instrumentation import using_session
    from openinference.instrumentation.llama_index import LlamaIndexInstrumentor

    LlamaIndexInstrumentor().instrument(tracer_provider=provider)

    from llama_index.core import Document, SummaryIndex
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.llms import ChatMessage, ImageBlock, TextBlock
    from llama_index.core.tools import FunctionTool
    from llama_index.llms.openai import OpenAI
    from llama_index.llms.openai_like import OpenAILike

    def get_weather(city: str, unit: str = "celsius") -> str:
        """Weather for a city."""
        return f"Sunny, 21 degrees {unit} in {city}"

    facts: Dict[str, Any] = {"answer": ANSWER, "system": SYSTEM, "questions": QUESTIONS, "thread": THREAD,
                             "tool_result": "Sunny, 21 degrees celsius in Paris", "documents": DOCUMENTS,
                             "image_url": f"data:image/png;base64,{PNG_B64}"}
    answers: Dict[str, str] = {}
    with FakeOpenAIServer(content=ANSWER, first_chunk_delay=0.05, chunk_delay=0.002) as server:
        llm = OpenAI(model="gpt-4o-mini", api_base=server.base_url, api_key="test", max_retries=0)
        system = ChatMessage(role="system", content=SYSTEM)

        def ask(question: str) -> List[ChatMessage]:
            return [system, ChatMessage(role="user", content=question)]

        answers["chat"] = str(llm.chat(ask(QUESTIONS["chat"])).message.content)

        deltas = [chunk.delta or "" for chunk in llm.stream_chat(ask(QUESTIONS["stream"]))]
        answers["stream"] = "".join(deltas)
        facts["stream_first_chunk_ms"] = server.last_request.first_chunk_offset_s * 1000.0

        agent = FunctionAgent(tools=[FunctionTool.from_defaults(fn=get_weather)], llm=llm, system_prompt=SYSTEM)

        async def agent_run() -> str:
            return str(await agent.run(QUESTIONS["tool"]))

        answers["tool"] = asyncio.run(agent_run())

        image = ChatMessage(role="user", blocks=[TextBlock(text=QUESTIONS["image"]),
                                                 ImageBlock(image=base64.b64decode(PNG_B64), image_mimetype="image/png")])
        answers["image"] = str(llm.chat([system, image]).message.content)

        failing = OpenAILike(model="error-model", api_base=server.base_url, api_key="test", max_retries=0,
                             is_chat_model=True)
        try:
            failing.chat(ask(QUESTIONS["error"]))
        except Exception as exc:  # noqa: BLE001 - the failure is the scenario
            facts["error"] = f"{type(exc).__module__}.{type(exc).__qualname__}"

        index = SummaryIndex.from_documents([Document(text=t) for t in DOCUMENTS])
        answers["rag"] = str(index.as_query_engine(llm=llm).query(QUESTIONS["rag"]))

        history: List[ChatMessage] = [system]
        with using_session(THREAD):
            for turn in ("turn1", "turn2", "turn3"):
                history.append(ChatMessage(role="user", content=QUESTIONS[turn]))
                reply = llm.chat(history).message
                answers[turn] = str(reply.content)
                history.append(reply)

        facts["answers"] = answers
        facts["requests"] = len(server.requests)
        facts["served"] = served(server)

    provider.force_flush(10_000)
    facts["flushed"] = exporter.force_flush(10_000)
    provider.shutdown()
    return facts


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
