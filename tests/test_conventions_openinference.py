"""OpenInference -> Opik, from the attribute sets of the OpenInference spec.

(``spec/semantic_conventions.md``, ``spec/llm_spans.md``, ``spec/multimodal_attributes.md``
and the LangChain instrumentation's hand-built ``exception`` event.)
"""

from __future__ import annotations

import json

import opik_ui
from conftest_conventions import Recorder, mapped, strip


def _llm_attrs() -> dict:
    a = {
        "openinference.span.kind": "LLM",
        "llm.system": "anthropic",
        "llm.provider": "aws",
        "llm.model_name": "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "input.value": "What is in this image?",  # plain text: the messages below render better
        "input.mime_type": "text/plain",
        "llm.invocation_parameters": '{"temperature": 0, "max_tokens": 256}',
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "You see images.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.contents.0.message_content.type": "text",
        "llm.input_messages.1.message.contents.0.message_content.text": "What is in this image?",
        "llm.input_messages.1.message.contents.1.message_content.type": "image",
        "llm.input_messages.1.message.contents.1.message_content.image.image.url": "https://example.com/cat.png",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "A cat.",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "toolu_1",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "zoom",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"factor": 2}',
        "llm.token_count.prompt": 1500,
        "llm.token_count.completion": 20,
        "llm.token_count.total": 1520,
        "llm.token_count.prompt_details.cache_read": 1000,
        "llm.token_count.prompt_details.cache_write": 200,
        "llm.token_count.prompt_details.audio": 0,
        "llm.token_count.completion_details.reasoning": 0,
        "llm.cost.prompt": 0.0012,
        "llm.cost.completion": 0.0003,
        "llm.cost.total": 0.0015,
        "llm.tools.0.tool.json_schema": '{"type": "function", "function": {"name": "zoom"}}',
        "session.id": "sess-1",
        "user.id": "user-7",
        "metadata": '{"experiment": "b", "run": 3}',
        "tag.tags": ("vision", "beta"),
    }
    return a


def test_llm_span_full_mapping() -> None:
    rec = Recorder(scope="openinference.instrumentation.bedrock")
    rec.span("bedrock.converse", _llm_attrs(), 0, 800, events=[("First Token Stream Event", 412.5, {})])
    result = mapped(rec.finished())
    span = result.span("bedrock.converse")
    assert strip(span) == {
        "name": "bedrock.converse",
        "type": "llm",
        "model": "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "provider": "bedrock",
        "usage": {
            "prompt_tokens": 1500,
            "completion_tokens": 20,
            "total_tokens": 1520,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 200,
            # Opik prices Bedrock input without the cache: 1500 - 1000 - 200
            "original_usage.inputTokens": 300,
        },
        "total_estimated_cost": 0.0015,
        "ttft": 412.5,
        "tags": ["vision", "beta"],
        "input": {"messages": [
            {"role": "system", "content": "You see images."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ]},
        ]},
        "output": {"choices": [{"index": 0, "message": {
            "role": "assistant",
            "content": "A cat.",
            "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "zoom", "arguments": '{"factor": 2}'}}],
        }}]},
        "metadata": {
            "experiment": "b",
            "run": 3,
            "llm.tools": [{"type": "function", "function": {"name": "zoom"}}],
            "openinference.span.kind": "LLM",
            "llm.system": "anthropic",
            "llm.invocation_parameters": {"temperature": 0, "max_tokens": 256},
            "llm.cost.prompt": 0.0012,
            "llm.cost.completion": 0.0003,
            "user.id": "user-7",
        },
    }
    assert strip(result.trace) == {
        "name": "bedrock.converse",
        "input": span["input"],
        "output": span["output"],
        "metadata": strip(span)["metadata"],
        "tags": ["vision", "beta"],
        "thread_id": "sess-1",
        "ttft": 412.5,
    }
    assert "events" not in span["metadata"]["otel"]


def test_json_input_value_without_messages_and_many_messages_keep_numeric_order() -> None:
    a = {"openinference.span.kind": "LLM", "llm.system": "openai", "llm.model_name": "gpt-4o",
         "input.value": json.dumps({"messages": "see request"}), "input.mime_type": "application/json"}
    # 12 messages, index 5 dropped by an attribute limit: order is numeric (10 after 9), the gap closed
    for i in range(12):
        if i != 5:
            a[f"llm.output_messages.{i}.message.role"] = "assistant"
            a[f"llm.output_messages.{i}.message.content"] = f"m{i}"
    rec = Recorder()
    rec.span("ChatCompletion", a, 0, 10)
    span = mapped(rec.finished()).span("ChatCompletion")
    # no llm.input_messages: the JSON input.value is all there is (its one string reads as the question)
    assert span["input"] == {"messages": [{"role": "user", "content": "see request"}]}
    assert [ch["message"]["content"] for ch in span["output"]["choices"]] == [f"m{i}" for i in range(12) if i != 5]
    assert not any(k.startswith("llm.output_messages") for k in span["metadata"])
    assert "input.value" not in span["metadata"] and "input.mime_type" not in span["metadata"]


def test_agent_chain_tool_retriever_guardrail() -> None:
    rec = Recorder(scope="openinference.instrumentation.smolagents")
    agent = rec.span("CodeAgent.run", {"openinference.span.kind": "AGENT", "input.value": '{"task": "sum"}',
                                       "input.mime_type": "application/json", "output.value": "42",
                                       "llm.token_count.prompt": 300, "llm.token_count.completion": 40,
                                       "smolagents.max_steps": 5}, 0, 100)
    rec.span("LiteLLMModel.__call__", {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
                                       "llm.provider": "openai", "llm.token_count.prompt": 300,
                                       "llm.token_count.completion": 40,
                                       "llm.input_messages.0.message.role": "user",
                                       "llm.input_messages.0.message.content": "sum 40 and 2"}, 10, 50, parent=agent)
    rec.span("add", {"openinference.span.kind": "TOOL", "tool.name": "add", "input.value": '{"a": 40, "b": 2}',
                     "output.value": "42", "tool.parameters": '{"a": "int", "b": "int"}'}, 60, 61, parent=agent)
    rec.span("retrieve", {"openinference.span.kind": "RETRIEVER", "input.value": "sum",
                          "retrieval.documents.1.document.content": "second", "retrieval.documents.1.document.score": 0.5,
                          "retrieval.documents.0.document.content": "first", "retrieval.documents.0.document.id": "d0",
                          "retrieval.documents.0.document.metadata": '{"src": "wiki"}'}, 62, 63, parent=agent)
    rec.span("check", {"openinference.span.kind": "GUARDRAIL", "input.value": "42", "output.value": "pass"}, 64, 65,
             parent=agent)
    result = mapped(rec.finished())
    run = result.span("CodeAgent.run")
    assert run["type"] == "general" and "usage" not in run
    assert run["metadata"]["llm.token_count.prompt"] == 300  # the children's sum, kept for reference
    assert run["input"] == {"task": "sum"} and run["output"] == {"value": "42"}
    assert result.usage_total() == {"prompt_tokens": 300, "completion_tokens": 40, "total_tokens": 340}
    llm = result.span("LiteLLMModel.__call__")
    assert llm["input"] == {"messages": [{"role": "user", "content": "sum 40 and 2"}]}
    assert llm["provider"] == "openai"
    tool = result.span("add")
    assert (tool["type"], tool["input"]) == ("tool", {"a": 40, "b": 2})
    retr = result.span("retrieve")
    assert retr["type"] == "general"
    assert retr["output"] == {"documents": [
        {"content": "first", "id": "d0", "metadata": '{"src": "wiki"}'},
        {"content": "second", "score": 0.5},
    ]}
    assert result.span("check")["type"] == "guardrail"


def test_langchain_exception_event_and_failed_call_model() -> None:
    rec = Recorder(scope="openinference.instrumentation.langchain")
    rec.span("ChatOpenAI", {"openinference.span.kind": "LLM", "llm.invocation_parameters": '{"model": "gpt-4o"}',
                            "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "hi"},
             0, 5, events=[("exception", 5, {"exception.type": "openai.RateLimitError", "exception.message": "slow down",
                                              "exception.stacktrace": "Traceback...", "exception.escaped": False})])
    span = mapped(rec.finished()).span("ChatOpenAI")
    assert span["model"] == "gpt-4o"
    assert span["error_info"] == {"exception_type": "openai.RateLimitError", "message": "slow down",
                                  "traceback": "Traceback..."}


def test_embedding_span() -> None:
    rec = Recorder()
    rec.span("CreateEmbeddings", {"openinference.span.kind": "EMBEDDING", "embedding.model_name": "text-embedding-3-small",
                                  "embedding.embeddings.0.embedding.text": "hello",
                                  "embedding.embeddings.0.embedding.vector": (0.1, 0.2),
                                  "embedding.embeddings.1.embedding.text": "world",
                                  "llm.token_count.prompt": 2, "llm.token_count.total": 2}, 0, 1)
    span = mapped(rec.finished()).span("CreateEmbeddings")
    assert (span["type"], span["model"], span["input"]) == ("llm", "text-embedding-3-small", {"texts": ["hello", "world"]})
    assert span["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    assert not any(k.startswith("embedding.embeddings") for k in span["metadata"])


# --- LangChain and LlamaIndex: recorded attributes (openinference-instrumentation-langchain 0.1.80 with
# langchain-openai 1.8, openinference-instrumentation-llama-index 4.6 with llama-index-core 0.14)


def _lc(cls: str, **kwargs: object) -> dict:
    return {"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", cls], "kwargs": kwargs}


_LC_AI = _lc("AIMessage", content="Paris.", additional_kwargs={"refusal": None}, type="ai", tool_calls=[],
             response_metadata={"model_name": "gpt-4o-mini-2024-07-18", "finish_reason": "stop"})
_LC_RESULT = {
    "generations": [[{"text": "Paris.", "generation_info": {"finish_reason": "stop", "logprobs": None},
                      "type": "ChatGeneration", "message": _LC_AI}]],
    "llm_output": {"token_usage": {"completion_tokens": 9, "prompt_tokens": 13, "total_tokens": 22},
                   "model_name": "gpt-4o-mini-2024-07-18", "id": "chatcmpl-fake000001"},
    "run": None,
    "type": "LLMResult",
}
_LC_LLM = {
    "openinference.span.kind": "LLM",
    "llm.provider": "openai",
    "llm.system": "openai",
    "llm.model_name": "gpt-4o-mini-2024-07-18",
    "llm.invocation_parameters": '{"model": "gpt-4o-mini", "stream": false, "_type": "openai-chat", "stop": null}',
    "input.mime_type": "application/json",
    "output.mime_type": "application/json",
    "input.value": json.dumps({"messages": [[_lc("SystemMessage", content="Be terse.", type="system"),
                                             _lc("HumanMessage", content="Capital of France?", type="human")]]}),
    "output.value": json.dumps(_LC_RESULT),
    "llm.finish_reason": "stop",
    "metadata": '{"ls_provider": "openai", "ls_model_name": "gpt-4o-mini"}',
}
_LC_MESSAGES = {
    "llm.input_messages.0.message.role": "system",
    "llm.input_messages.0.message.content": "Be terse.",
    "llm.input_messages.1.message.role": "user",
    "llm.input_messages.1.message.content": "Capital of France?",
    "llm.output_messages.0.message.role": "assistant",
    "llm.output_messages.0.message.content": "Paris.",
}
_CHAT = {"messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Capital of France?"}]}
_ANSWER = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}]}


def _one(attrs: dict, name: str = "ChatOpenAI", scope: str = "openinference.instrumentation.langchain") -> dict:
    rec = Recorder(scope=scope)
    rec.span(name, attrs, 0, 10)
    return mapped(rec.finished()).span(name)


def test_langchain_flattened_messages_win_over_serialized_constructors() -> None:
    span = _one({**_LC_LLM, **_LC_MESSAGES})
    assert span["input"] == _CHAT
    assert span["output"] == _ANSWER
    assert opik_ui.problems(span, "Capital of France?", "Paris.") == [] and opik_ui.messages_tab(span)
    # what LLMResult holds besides the generations stays in metadata; the finish reason is on the choice
    assert span["metadata"]["output.value"] == {"llm_output": _LC_RESULT["llm_output"]}
    assert "input.value" not in span["metadata"] and "llm.finish_reason" not in span["metadata"]
    assert span["metadata"]["llm.invocation_parameters"]["_type"] == "openai-chat"


def test_langchain_serialized_messages_alone_are_converted() -> None:
    # no llm.*_messages (an older instrumentation, or hidden): the constructors and LLMResult are read
    span = _one(_LC_LLM)
    assert span["input"] == _CHAT
    assert span["output"] == _ANSWER
    assert span["metadata"]["output.value"] == {"llm_output": _LC_RESULT["llm_output"]}
    assert opik_ui.problems(span, "Capital of France?", "Paris.") == []


def test_langchain_tool_round_trip_and_failed_call() -> None:
    call = {"llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "get_weather",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"city": "Paris"}'}
    first = _one({**_LC_LLM, "llm.input_messages.0.message.role": "user",
                  "llm.input_messages.0.message.content": "Weather in Paris?", "llm.finish_reason": "tool_calls", **call})
    assert first["output"]["choices"] == [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                                          "arguments": '{"city": "Paris"}'}}]}}]
    assert opik_ui.problems(first, "Weather in Paris?") == []
    second = _one({**_LC_LLM, **{k.replace("output_messages.0", "input_messages.1"): v for k, v in call.items()},
                   "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "Weather in Paris?",
                   "llm.input_messages.2.message.role": "tool", "llm.input_messages.2.message.content": "Sunny",
                   "llm.input_messages.2.message.tool_call_id": "call_1", "llm.input_messages.2.message.name": "get_weather",
                   "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": "Paris."})
    assert [m["role"] for m in second["input"]["messages"]] == ["user", "assistant", "tool"]
    assert second["input"]["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"}
    assert opik_ui.problems(second, "Weather in Paris?", "Paris.") == []

    # a failed call: an assistant message with nothing in it and an empty generation: no output, not an empty one
    failed_result = {"generations": [[{"text": "", "generation_info": None, "type": "ChatGeneration",
                                       "message": _lc("AIMessage", content="", type="ai", tool_calls=[])}]],
                     "llm_output": None, "run": None, "type": "LLMResult"}
    failed = _one({**_LC_LLM, "output.value": json.dumps(failed_result), "llm.input_messages.0.message.role": "user",
                   "llm.input_messages.0.message.content": "fail", "llm.output_messages.0.message.role": "assistant"})
    assert failed["input"] == {"messages": [{"role": "user", "content": "fail"}]}
    assert "output" not in failed
    assert failed["metadata"]["output.value"] == failed_result  # kept whole: nothing of it became the output


_LI_SYSTEM = "ChatMessage(role=<MessageRole.SYSTEM: 'system'>, additional_kwargs={}, blocks=[TextBlock(block_type='text', text='Be terse.')])"  # noqa: E501
_LI_USER = "ChatMessage(role=<MessageRole.USER: 'user'>, additional_kwargs={}, blocks=[TextBlock(block_type='text', text='Capital of France?')])"  # noqa: E501
_LI_LLM = {
    "openinference.span.kind": "LLM",
    "llm.provider": "openai",
    "llm.system": "openai",
    "llm.model_name": "gpt-4o-mini",
    "llm.invocation_parameters": '{"context_window":128000,"num_output":-1,"is_chat_model":true,"model_name":"gpt-4o-mini"}',
    "input.value": json.dumps({"messages": [_LI_SYSTEM, _LI_USER], "kwargs": {"tool_choice": "auto"}}),
    "input.mime_type": "application/json",
    "output.value": "assistant: Paris.",
    "llm.finish_reason": "stop",
}
_LI_SCOPE = "openinference.instrumentation.llama_index"


def test_llama_index_flattened_messages_win_over_reprs() -> None:
    span = _one({**_LI_LLM, **_LC_MESSAGES}, "OpenAI.chat", _LI_SCOPE)
    assert span["input"] == _CHAT and span["output"] == _ANSWER
    assert opik_ui.problems(span, "Capital of France?", "Paris.") == []
    assert span["metadata"]["input.value"] == {"kwargs": {"tool_choice": "auto"}}  # the request's other arguments


def test_llama_index_reprs_alone_are_read() -> None:
    # OpenAILike.chat wraps OpenAI.chat: the outer span only has the reprs (here with an image and a tool turn)
    image = ("ChatMessage(role=<MessageRole.USER: 'user'>, additional_kwargs={}, blocks=[TextBlock(block_type='text', "
             "text='What is it? It\\'s \"small\".'), ImageBlock(block_type='image', image=b'iVBORw0KGgo=', path=None, "
             "url=None, image_mimetype='image/png', detail=None)])")
    assistant = ("ChatMessage(role=<MessageRole.ASSISTANT: 'assistant'>, additional_kwargs={'tool_calls': "
                 "[ChatCompletionMessageFunctionToolCall(id='call_1', function=Function(arguments='{\"city\": \"Paris\"}', "
                 "name='get_weather'), type='function')]}, blocks=[ToolCallBlock(block_type='tool_call', "
                 "tool_call_id='call_1', tool_name='get_weather', tool_kwargs='{\"city\": \"Paris\"}')])")
    tool = ("ChatMessage(role=<MessageRole.TOOL: 'tool'>, additional_kwargs={'tool_call_id': 'call_1', 'name': "
            "'get_weather'}, blocks=[TextBlock(block_type='text', text='Sunny')])")
    attrs = {k: v for k, v in _LI_LLM.items() if not k.startswith("output") and k != "llm.finish_reason"}
    attrs["input.value"] = json.dumps({"messages": [_LI_SYSTEM, image, assistant, tool]})
    span = _one(attrs, "OpenAILike.chat", _LI_SCOPE)
    assert span["input"]["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": [{"type": "text", "text": 'What is it? It\'s "small".'},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
    ]
    assert opik_ui.problems(span) == []


def test_llama_index_prepare_chat_with_tools_is_a_step_and_agent_answers_read() -> None:
    rec = Recorder(scope=_LI_SCOPE)
    agent = rec.span("FunctionAgent.run", {
        "openinference.span.kind": "CHAIN",
        "input.value": '{"init_state": {"is_running": false}, "start_event": "AgentWorkflowStartEvent()"}',
        "input.mime_type": "application/json",
        # truncated by the instrumentation, as recorded
        "output.value": "StopEvent(result=AgentOutput(response=ChatMessage(role=<MessageRole.ASSISTANT: 'assistant'>, "
                        "additional_kwargs={}, blocks=[TextBlock(block_type='text', text='Paris.')]), "
                        "structured_response=None, c...",
        "output.mime_type": "text/plain",
    }, 0, 20)
    rec.span("OpenAI._prepare_chat_with_tools", {
        "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini", "llm.provider": "openai",
        "input.value": json.dumps({"tools": ["<FunctionTool object>"], "user_msg": None, "chat_history": [_LI_USER]}),
        "output.value": json.dumps({"messages": [_LI_USER], "tools": [{"type": "function"}], "tool_choice": "auto"}),
    }, 1, 2, parent=agent)
    rec.span("OpenAI.astream_chat", {**_LI_LLM, **_LC_MESSAGES}, 2, 10, parent=agent)
    result = mapped(rec.finished())
    prep = result.span("OpenAI._prepare_chat_with_tools")
    assert prep["type"] == "general"  # builds the request, calls no model
    assert prep["input"]["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert prep["output"]["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert result.span("OpenAI.astream_chat")["type"] == "llm"
    root = result.span("FunctionAgent.run")
    assert root["output"] == {"messages": [{"role": "assistant", "content": "Paris."}]}
    assert root["metadata"]["output.value"].startswith("StopEvent(")
    # the trace row: the first LLM question (the root's input is workflow state), the agent's answer
    assert opik_ui.table_text(result.trace["input"], "input") == "Capital of France?"
    assert opik_ui.table_text(result.trace["output"], "output") == "Paris."


def test_llama_index_retriever_documents_and_lists() -> None:
    rec = Recorder(scope=_LI_SCOPE)
    nodes = '["<NodeWithScore(node=TextNode(id_=n1), score=None)>", "<NodeWithScore(node=TextNode(id_=n2), score=None)>"]'
    rec.span("SummaryIndexRetriever.retrieve", {
        "openinference.span.kind": "RETRIEVER", "input.value": "capital",
        "retrieval.documents.0.document.id": "n1", "retrieval.documents.0.document.content": "Paris is in France.",
        "retrieval.documents.1.document.id": "n2", "retrieval.documents.1.document.content": "Berlin is in Germany.",
        "output.value": nodes, "output.mime_type": "application/json"}, 0, 1)
    rec.span("SummaryIndexRetriever._retrieve", {
        "openinference.span.kind": "RETRIEVER", "input.value": '{"query_bundle": {"query_str": "capital"}}',
        "output.value": nodes, "output.mime_type": "application/json"}, 2, 3)
    rec.span("SentenceSplitter.split_text", {
        "openinference.span.kind": "CHAIN", "input.value": '{"text": "Paris is in France."}',
        "output.value": '["Paris is in France."]', "output.mime_type": "application/json"}, 4, 5)
    result = mapped(rec.finished())
    retrieve = result.span("SummaryIndexRetriever.retrieve")
    assert retrieve["output"] == {"documents": [{"id": "n1", "content": "Paris is in France."},
                                                {"id": "n2", "content": "Berlin is in Germany."}]}
    assert retrieve["metadata"]["output.value"] == json.loads(nodes)
    assert result.span("SummaryIndexRetriever._retrieve")["output"] == {"documents": json.loads(nodes)}
    assert result.span("SentenceSplitter.split_text")["output"] == {"output": ["Paris is in France."]}


def test_llama_index_predict_fills_its_prompt_template() -> None:
    span = _one({
        "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini", "llm.provider": "openai",
        "input.value": json.dumps({"prompt": "SelectorPromptTemplate(metadata={...})", "prompt_args": {"context_str": "x"}}),
        "input.mime_type": "application/json",
        "llm.prompt_template.template": "Context: {context_str}\nQuery: {query_str}\nAnswer: ",
        "llm.prompt_template.variables": '{"context_str": "Paris is in France.", "query_str": "Capital of France?"}',
        "output.value": "Paris.",
    }, "OpenAI.predict", _LI_SCOPE)
    question = "Context: Paris is in France.\nQuery: Capital of France?\nAnswer: "
    assert span["input"] == {"messages": [{"role": "user", "content": question}]}
    assert opik_ui.problems(span, question, "Paris.") == []
    assert span["metadata"]["llm.prompt_template.template"].startswith("Context: {context_str}")


def test_langchain_message_dict_on_a_chain_span() -> None:
    # StrOutputParser's input: the model's AIMessage in LangChain's message_to_dict form
    data = {"content": "Paris.", "additional_kwargs": {"refusal": None}, "response_metadata": {"finish_reason": "stop"},
            "type": "ai", "name": None, "id": "lc_run--1", "tool_calls": [], "invalid_tool_calls": []}
    span = _one({"openinference.span.kind": "CHAIN", "input.value": json.dumps({"type": "ai", "data": data}),
                 "input.mime_type": "application/json", "output.value": "Paris."}, "StrOutputParser")
    assert span["input"] == {"messages": [{"role": "assistant", "content": "Paris."}]}
    assert span["output"] == {"value": "Paris."}


def test_llama_index_truncated_reprs_stay_text() -> None:
    # the instrumentation cuts long reprs with "...": cut before the answer's blocks, nothing is made up
    cut = ("AgentOutput(response=ChatMessage(role=<MessageRole.ASSISTANT: 'assistant'>, additional_kwargs="
           "{'tool_calls': [ChoiceDeltaToolCall(index=0, id='call_1', function=ChoiceDeltaToolCallFunction(...")
    step = _one({"openinference.span.kind": "CHAIN", "output.value": cut, "output.mime_type": "text/plain"},
                "BaseWorkflowAgent.run_agent_step", _LI_SCOPE)
    assert step["output"] == {"value": cut}
    # a message list where one item is not a ChatMessage repr is left as it was
    odd = {**_LI_LLM, "input.value": json.dumps({"messages": [_LI_USER, "something else"]})}
    del odd["output.value"]
    span = _one(odd, "OpenAI.chat", _LI_SCOPE)
    assert span["input"] == {"messages": [_LI_USER, "something else"]}
