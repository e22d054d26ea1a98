"""The message normalizer (``_mapping/messages/``): every shape it claims to read, as Opik's UI shows it.

Each case runs the real functions (``llm_input``/``llm_output``/``conversation``/
``question``/``answer``) and checks the result with ``opik_ui``, the checker
written from Opik's frontend rules: detected as messages, no message that would
render empty, and the one-line table text a person reads.
"""

from __future__ import annotations

import json
from typing import Any, Dict

import opik_ui
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opentelemetry.exporter.opik._mapping import messages as M


def _llm(i: Any = None, o: Any = None) -> Dict[str, Any]:
    """An LLM item as the normalizer leaves it."""
    return {"input": M.llm_input(i), "output": M.llm_output(o)}


# --- odd values never raise, never overwrite ---------------------------------------


def test_a_role_that_is_not_a_string_does_not_raise() -> None:
    value = {"messages": [{"role": ["user"], "content": "hi"}]}
    assert M.conversation(value, "input") == {"messages": [{"role": "user", "content": "hi"}]}
    assert M.llm_input(value)["messages"] == [{"role": "user", "content": "hi"}]


def test_langchain_tool_calls_that_are_not_a_list_are_ignored() -> None:
    out = M.llm_output({"messages": [{"type": "ai", "content": "ok", "tool_calls": True}]})
    assert out == {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]}


def test_contents_beside_an_odd_messages_key_never_overwrite_it() -> None:
    value = {"messages": None, "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert M.llm_input(value) == value  # both kept as sent: nothing is dropped


def test_a_vercel_tool_result_output_of_odd_type_is_kept_as_json() -> None:
    msgs = M.llm_input({"messages": [{"role": "tool", "content": [
        {"type": "tool-result", "toolCallId": "a", "output": {"type": ["x"], "value": 1}}]}]})["messages"]
    assert msgs == [{"role": "tool", "tool_call_id": "a", "content": '{"type":["x"],"value":1}'}]


def test_messages_beside_an_empty_choices_key_never_overwrite_it() -> None:
    value = {"choices": [], "messages": [{"role": "assistant", "content": "hi"}]}
    assert M.llm_output(value) == value


def test_a_plain_openai_call_reads_as_a_conversation() -> None:
    item = _llm({"messages": [{"role": "user", "content": "Hi?"}]}, {"value": "Hello."})
    assert opik_ui.problems(item, "Hi?", "Hello.") == []


# --- GenAI semantic-convention parts ---------------------------------------------------

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
PNG_URL = f"data:image/png;base64,{PNG}"
WEATHER_CALL = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}


def _user(*parts: Dict[str, Any]) -> Dict[str, Any]:
    return {"role": "user", "parts": list(parts)}


def _content_of(part: Dict[str, Any]) -> Any:
    """The OpenAI content one GenAI part of a user message becomes."""
    msgs = M.llm_input({"messages": [_user(part)]})["messages"]
    assert len(msgs) == 1 and msgs[0]["role"] == "user"
    return msgs[0]["content"]


def test_genai_text_part() -> None:
    item = _llm({"messages": [{"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
                              _user({"type": "text", "content": "Capital of France?"})]},
                {"messages": [{"role": "assistant", "parts": [{"type": "text", "content": "Paris."}],
                               "finish_reason": "stop"}]})
    assert item == {
        "input": {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]},
        "output": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}]},
    }
    assert opik_ui.problems(item, "Capital of France?", "Paris.") == []
    assert opik_ui.messages_tab(item)


def test_genai_tool_call_and_tool_call_response() -> None:
    item = _llm(
        {"messages": [
            _user({"type": "text", "content": "Weather in Paris?"}),
            {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "weather", "arguments": {"city": "Paris"}}]},
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": {"temperatureC": 18}}]},
        ]},
        {"messages": [{"role": "assistant", "parts": [{"type": "tool_call", "id": "c2", "name": "weather",
                                                       "arguments": '{"city":"Lyon"}'}], "finish_reason": "tool_call"}]},
    )
    assert item["input"]["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [WEATHER_CALL]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"temperatureC":18}'},
    ]
    assert item["output"]["choices"][0]["message"]["tool_calls"] == [
        {"id": "c2", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Lyon"}'}}
    ]
    assert opik_ui.problems(item, "Weather in Paris?") == []


def test_genai_tool_call_response_in_a_user_message_becomes_a_tool_message() -> None:
    msgs = M.llm_input({"messages": [_user({"type": "tool_call_response", "id": "c1", "response": "18 degrees"},
                                           {"type": "text", "content": "And tomorrow?"})]})["messages"]
    assert msgs == [{"role": "tool", "tool_call_id": "c1", "content": "18 degrees"},
                    {"role": "user", "content": "And tomorrow?"}]


def test_genai_blob_image_becomes_a_data_url() -> None:
    content = _content_of({"type": "blob", "modality": "image", "mime_type": "image/png", "content": PNG})
    assert content == [{"type": "image_url", "image_url": {"url": PNG_URL}}]
    assert opik_ui.problems({"input": {"messages": [{"role": "user", "content": content}]}}) == []


def test_genai_blob_audio_becomes_input_audio() -> None:
    content = _content_of({"type": "blob", "modality": "audio", "mime_type": "audio/wav", "content": "UklGRiQAAABXQVZF"})
    assert content == [{"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}}]
    assert opik_ui.problems({"input": {"messages": [{"role": "user", "content": content}]}}) == []


def test_genai_blob_of_other_bytes_is_a_readable_note() -> None:
    assert _content_of({"type": "blob", "modality": "video", "mime_type": "video/mp4", "content": "AAAA"}) == \
        "[video video/mp4, 3 bytes]"


def test_genai_uri_parts() -> None:
    assert _content_of({"type": "uri", "modality": "image", "uri": "https://example.com/cat.png"}) == [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    ]
    assert _content_of({"type": "uri", "modality": "video", "uri": "https://example.com/v.mp4"}) == \
        "[video: https://example.com/v.mp4]"


def test_genai_file_part() -> None:
    assert _content_of({"type": "file", "modality": "document", "file_id": "file-1", "mime_type": "application/pdf"}) == \
        "[file: file-1 (application/pdf)]"


def test_genai_reasoning_part() -> None:
    out = M.llm_output({"messages": [{"role": "assistant", "parts": [{"type": "reasoning", "content": "Paris is the capital."},
                                                                     {"type": "text", "content": "Paris."}]}]})
    assert out == {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris.",
                                                        "reasoning_content": "Paris is the capital."}}]}
    # reasoning alone is shown as the message's text, never an empty message
    alone = M.llm_output({"messages": [{"role": "assistant", "parts": [{"type": "reasoning", "content": "Hmm."}]}]})
    assert alone["choices"][0]["message"]["content"] == "Hmm."
    assert opik_ui.problems({"output": alone}) == []


def test_genai_server_tool_call_and_generic_parts_stay_readable() -> None:
    content = _content_of({"type": "server_tool_call", "name": "web_search", "id": "s1",
                           "server_tool_call": {"type": "web_search", "query": "Paris"}})
    assert content == '[server_tool_call web_search] {"id":"s1","server_tool_call":{"type":"web_search","query":"Paris"}}'
    assert _content_of({"type": "generic", "content": "a custom part"}) == "a custom part"
    # a type nobody knows: kept as its JSON, never dropped
    assert _content_of({"type": "hologram", "depth": 3}) == '{"type":"hologram","depth":3}'


def test_genai_mixed_parts_keep_their_order() -> None:
    content = _content_of({"type": "text", "content": "What is this?"})
    assert content == "What is this?"
    msgs = M.llm_input({"messages": [_user({"type": "text", "content": "What is this?"},
                                           {"type": "blob", "modality": "image", "mime_type": "image/png", "content": PNG})]})
    assert msgs["messages"][0]["content"] == [{"type": "text", "text": "What is this?"},
                                              {"type": "image_url", "image_url": {"url": PNG_URL}}]
    assert opik_ui.problems({"input": msgs}, "What is this?") == []


# --- OpenAI chat: already the rendered shape --------------------------------------------


OPENAI_INPUT = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is in this photo?"},
                                     {"type": "image_url", "image_url": {"url": PNG_URL}}]},
        {"role": "assistant", "content": None, "tool_calls": [WEATHER_CALL]},
        {"role": "tool", "tool_call_id": "c1", "content": "18 degrees"},
        {"role": "user", "content": "Thanks. Tomorrow?"},
    ],
    "temperature": 0.2,
}
OPENAI_OUTPUT = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Rain.",
                                                      "reasoning_content": "Forecast says rain."},
                              "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 3}}


def test_openai_chat_is_kept_as_it_is() -> None:
    assert M.llm_input(OPENAI_INPUT) == OPENAI_INPUT
    assert M.llm_output(OPENAI_OUTPUT) == OPENAI_OUTPUT
    assert M.conversation(OPENAI_INPUT, "input") == OPENAI_INPUT
    assert opik_ui.problems(_llm(OPENAI_INPUT, OPENAI_OUTPUT), "Thanks. Tomorrow?", "Rain.") == []


def test_normalizing_twice_changes_nothing() -> None:
    genai = {"messages": [_user({"type": "text", "content": "hi"}, {"type": "blob", "modality": "image",
                                                                       "mime_type": "image/png", "content": PNG}),
                          {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "weather",
                                                           "arguments": {"city": "Paris"}}]},
                          {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": 18}]}]}
    once = M.llm_input(genai)
    assert M.llm_input(once) == once
    out = M.llm_output({"messages": [{"role": "assistant", "parts": [{"type": "text", "content": "ok"}]}]})
    assert M.llm_output(out) == out


def test_openai_text_parts_only_become_one_string() -> None:
    """A content list of text parts alone reads the same as one string (as Opik's table shows it)."""
    value = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}
    assert M.llm_input(value) == {"messages": [{"role": "user", "content": "Hi"}]}


def test_openai_output_text_form_and_tool_call_arguments_as_objects() -> None:
    out = M.llm_output({"choices": [{"message": {"role": "assistant", "tool_calls": [
        {"id": "c1", "function": {"name": "weather", "arguments": {"city": "Paris"}}}]}}]})
    assert out == {"choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [WEATHER_CALL]}}]}
    assert opik_ui.problems({"output": out}) == []


# --- LangChain ---------------------------------------------------------------------------


def _lc(cls: str, **kwargs: Any) -> Dict[str, Any]:
    return {"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", cls], "kwargs": kwargs}


LC_EXPECTED = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [WEATHER_CALL]},
    {"role": "tool", "tool_call_id": "c1", "content": "18 degrees"},
]


def test_langchain_constructors() -> None:
    value = {"messages": [[
        _lc("SystemMessage", content="Be brief."),
        _lc("HumanMessage", content="Weather in Paris?"),
        _lc("AIMessage", content="", tool_calls=[{"name": "weather", "args": {"city": "Paris"}, "id": "c1", "type": "tool_call"}]),
        _lc("ToolMessage", content="18 degrees", tool_call_id="c1"),
    ]]}
    item = _llm(value, {"messages": [_lc("AIMessageChunk", content="Mild.")]})
    assert item["input"] == {"messages": LC_EXPECTED}
    assert item["output"] == {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Mild."}}]}
    assert opik_ui.problems(item, "Weather in Paris?", "Mild.") == []


def test_langchain_type_dicts() -> None:
    value = {"messages": [
        {"type": "system", "content": "Be brief."},
        {"type": "human", "content": "Weather in Paris?"},
        {"type": "ai", "content": "", "additional_kwargs": {"tool_calls": [WEATHER_CALL]}},
        {"type": "tool", "content": "18 degrees", "tool_call_id": "c1"},
    ]}
    assert M.llm_input(value) == {"messages": LC_EXPECTED}
    chat = M.llm_input({"messages": [{"type": "chat", "role": "user", "content": "hey"}]})
    assert chat == {"messages": [{"role": "user", "content": "hey"}]}
    # agent/chain spans: the same conversation
    assert M.conversation(value, "input") == {"messages": LC_EXPECTED}


def test_langchain_generations_become_choices() -> None:
    out = M.llm_output({
        "generations": [[{"text": "", "generation_info": {"finish_reason": "tool_calls", "logprobs": None},
                          "message": _lc("AIMessage", content="", tool_calls=[
                              {"name": "weather", "args": {"city": "Paris"}, "id": "c1"}])}]],
        "llm_output": {"model_name": "gpt-4o"},
    })
    assert out == {"choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [WEATHER_CALL]},
                                "finish_reason": "tool_calls", "generation_info": {"logprobs": None}}],
                   "llm_output": {"model_name": "gpt-4o"}}
    assert opik_ui.problems({"output": out}) == []
    text_only = M.llm_output({"generations": [[{"text": "Paris.", "type": "Generation"}]]})
    assert opik_ui.table_text(text_only, "output") == "Paris."
    # a failed call's empty generation is not made an empty message: kept as sent (LangChain's shape, detected)
    failed = {"generations": [[{"text": "", "message": _lc("AIMessage", content="")}]]}
    assert M.llm_output(failed) == failed and opik_ui.output_detected(failed)


# --- OpenAI Responses items ---------------------------------------------------------------


def test_responses_input_items() -> None:
    value = {"input": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"},
                                     {"type": "input_image", "image_url": PNG_URL}]},
        {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "18 degrees"},
    ], "model": "gpt-4.1"}
    got = M.llm_input(value)
    assert got == {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"},
                                     {"type": "image_url", "image_url": {"url": PNG_URL}}]},
        {"role": "assistant", "content": None, "tool_calls": [WEATHER_CALL]},
        {"role": "tool", "tool_call_id": "c1", "content": "18 degrees"},
    ], "model": "gpt-4.1"}
    assert opik_ui.problems({"input": got}, "Weather in Paris?") == []


def test_responses_output_items_are_one_assistant_turn() -> None:
    out = M.llm_output({"output": [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Need the tool."}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": '{"city":"Paris"}'},
    ], "id": "resp_1"})
    assert out == {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Checking.",
                                                        "reasoning_content": "Need the tool.",
                                                        "tool_calls": [WEATHER_CALL]}}],
                   "id": "resp_1"}
    assert opik_ui.problems({"output": out}, answer="Checking.") == []


# --- Gemini / ADK ---------------------------------------------------------------------------


def test_gemini_contents_and_response() -> None:
    item = _llm(
        {"contents": [
            {"role": "user", "parts": [{"text": "Weather here?"}, {"inline_data": {"mime_type": "image/png", "data": PNG}}]},
            {"role": "model", "parts": [{"function_call": {"name": "weather", "args": {"city": "Paris"}}}]},
            {"role": "user", "parts": [{"function_response": {"name": "weather", "response": {"temperatureC": 18}}}]},
        ], "config": {"temperature": 0}},
        {"content": {"role": "model", "parts": [{"text": "18 degrees."}]}, "finish_reason": "STOP"},
    )
    assert item["input"] == {"messages": [
        {"role": "user", "content": [{"type": "text", "text": "Weather here?"},
                                     {"type": "image_url", "image_url": {"url": PNG_URL}}]},
        # no call id: the function's name links the call and its response
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "weather", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "weather", "content": '{"temperatureC":18}'},
    ], "config": {"temperature": 0}}
    assert item["output"]["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "18 degrees."},
                                          "finish_reason": "STOP"}]
    assert opik_ui.problems(item, "Weather here?", "18 degrees.") == []


def test_gemini_camel_case_parts() -> None:
    msgs = M.llm_input({"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": PNG}}]},
                                     {"role": "model", "parts": [{"functionCall": {"id": "f1", "name": "w", "args": {}}}]},
                                     {"role": "user", "parts": [{"functionResponse": {"id": "f1", "name": "w",
                                                                                      "response": {"ok": 1}}}]}]})
    assert msgs["messages"] == [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG_URL}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "f1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "f1", "content": '{"ok":1}'},
    ]


# --- Bedrock / Strands and Anthropic blocks --------------------------------------------------


BEDROCK = [
    {"role": "user", "content": [{"text": "Weather here?"}, {"image": {"format": "png", "source": {"bytes": PNG}}}]},
    {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "weather", "input": {"city": "Paris"}}}]},
    {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "18 degrees"}], "status": "success"}}]},
]
BEDROCK_EXPECTED = [
    {"role": "user", "content": [{"type": "text", "text": "Weather here?"}, {"type": "image_url", "image_url": {"url": PNG_URL}}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "t1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}]},
    {"role": "tool", "tool_call_id": "t1", "content": "18 degrees"},
]


def test_bedrock_blocks() -> None:
    got = M.llm_input({"messages": BEDROCK})
    assert got == {"messages": BEDROCK_EXPECTED}
    assert opik_ui.problems({"input": got}, "Weather here?") == []
    out = M.llm_output({"messages": [{"role": "assistant", "content": [
        {"reasoningContent": {"reasoningText": {"text": "Easy."}}}, {"text": "Mild."}]}]})
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "Mild.", "reasoning_content": "Easy."}


def test_strands_json_string_contents() -> None:
    """Strands sends each message's content as a JSON string of Bedrock blocks."""
    got = M.llm_input({"messages": [{"role": m["role"], "content": json.dumps(m["content"])} for m in BEDROCK]})
    assert got == {"messages": BEDROCK_EXPECTED}
    # a plain text that merely starts with a bracket stays text
    assert M.llm_input({"messages": [{"role": "user", "content": "[draft] hello"}]}) == \
        {"messages": [{"role": "user", "content": "[draft] hello"}]}


def test_anthropic_blocks() -> None:
    item = _llm(
        {"messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather here?"},
                                         {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "Use the tool."},
                                              {"type": "tool_use", "id": "tu1", "name": "weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu1",
                                          "content": [{"type": "text", "text": "18 degrees"}]}]},
        ], "system": "Be brief."},
        {"messages": [{"role": "assistant", "content": [{"type": "text", "text": "Mild."}]}]},
    )
    assert item["input"] == {"messages": [
        {"role": "user", "content": [{"type": "text", "text": "Weather here?"}, {"type": "image_url", "image_url": {"url": PNG_URL}}]},
        {"role": "assistant", "content": None, "reasoning_content": "Use the tool.", "tool_calls": [
            {"id": "tu1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "tu1", "content": "18 degrees"},
    ], "system": "Be brief."}
    # the last user message is a tool result: the table shows the question that has text
    assert opik_ui.problems(item, answer="Mild.") == []


def test_anthropic_url_image() -> None:
    assert _content_of({"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}) == [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    ]


# --- Vercel AI SDK parts ------------------------------------------------------------------------


def test_vercel_parts() -> None:
    got = M.llm_input({"messages": [
        {"role": "user", "content": [{"type": "text", "text": "Weather here?"},
                                     {"type": "image", "image": PNG, "mediaType": "image/png"},
                                     {"type": "image", "image": "https://example.com/a.png"},
                                     {"type": "file", "data": PNG, "mediaType": "image/png"},
                                     {"type": "file", "data": "JVBERi0=", "mediaType": "application/pdf", "filename": "a.pdf"}]},
        {"role": "assistant", "content": [{"type": "reasoning", "text": "Tool."},
                                          {"type": "tool-call", "toolCallId": "c1", "toolName": "weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "tool", "content": [{"type": "tool-result", "toolCallId": "c1", "toolName": "weather",
                                      "output": {"type": "text", "value": "18 degrees"}}]},
        {"role": "assistant", "content": [{"type": "tool-call", "toolCallId": "c2", "toolName": "weather",
                                           "args": {"city": "Paris"}}]},  # v4
        {"role": "tool", "content": [{"type": "tool-result", "toolCallId": "c2", "toolName": "weather", "result": {"t": 18}}]},
    ]})
    assert got["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather here?"},
                                     {"type": "image_url", "image_url": {"url": PNG_URL}},
                                     {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                                     {"type": "image_url", "image_url": {"url": PNG_URL}},
                                     {"type": "text", "text": "[file: a.pdf (application/pdf)]"}]},
        {"role": "assistant", "content": None, "reasoning_content": "Tool.", "tool_calls": [WEATHER_CALL]},
        {"role": "tool", "tool_call_id": "c1", "content": "18 degrees"},
        {"role": "assistant", "content": None, "tool_calls": [{**WEATHER_CALL, "id": "c2"}]},
        {"role": "tool", "tool_call_id": "c2", "content": '{"t":18}'},
    ]
    assert opik_ui.problems({"input": got}) == []


def test_langchain_v1_image_blocks() -> None:
    assert _content_of({"type": "image", "url": "https://example.com/a.png"}) == [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
    assert _content_of({"type": "image", "base64": PNG, "mime_type": "image/png"}) == [
        {"type": "image_url", "image_url": {"url": PNG_URL}}]
    assert _content_of({"type": "image", "source_type": "base64", "data": PNG, "mime_type": "image/png"}) == [
        {"type": "image_url", "image_url": {"url": PNG_URL}}]


# --- question / answer: the text a person reads ---------------------------------------------------


def test_question_is_the_last_user_text() -> None:
    assert M.question("plain") == "plain"
    assert M.question("") is None
    assert M.question({"messages": [{"role": "user", "content": "first"}, {"role": "assistant", "content": "a"},
                                    {"role": "user", "content": [{"type": "text", "text": "second"},
                                                                 {"type": "image_url", "image_url": {"url": PNG_URL}}]}]}) \
        == "second"
    assert M.question({"messages": [{"role": "system", "content": "only system"}]}) is None
    assert M.question({"input": "What is 2+2?"}) == "What is 2+2?"
    assert M.question({"input": "x", "other": 1}) is None
    assert M.question(None) is None and M.question(["a"]) is None


def test_answer_is_the_last_assistant_text() -> None:
    assert M.answer("plain") == "plain"
    assert M.answer({"choices": [{"index": 0, "message": {"role": "assistant", "content": "A"}},
                                 {"index": 1, "message": {"role": "assistant", "content": "B"}}]}) == "B"
    assert M.answer({"choices": [{"index": 0, "message": {"role": "assistant", "content": None,
                                                          "tool_calls": [WEATHER_CALL]}}]}) is None
    assert M.answer({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "done"}]}) == "done"
    assert M.answer({"output": "4"}) == "4"
    assert M.answer({"value": "Sunny."}) == "Sunny."
    assert M.answer({}) is None and M.answer(None) is None


def test_agent_conversation_reads_in_the_table() -> None:
    inp = M.conversation({"messages": [_user({"type": "text", "content": "Plan a trip."})]}, "input")
    out = M.conversation({"messages": [{"role": "assistant", "parts": [{"type": "text", "content": "Done."}]}]}, "output")
    assert opik_ui.table_text(inp, "input") == "Plan a trip." and M.question(inp) == "Plan a trip."
    assert opik_ui.table_text(out, "output") == "Done." and M.answer(out) == "Done."


# --- any JSON-like messages: never raise; what is made is what the UI detects ----------------------

_KEYS = ["role", "content", "parts", "type", "text", "tool_calls", "function", "name", "arguments", "id", "call_id",
         "output", "lc", "kwargs", "message", "tool_call_id", "image_url", "url", "data", "mime_type", "mediaType",
         "toolUse", "toolResult", "function_call", "function_response", "inline_data", "image", "source",
         "reasoningContent", "summary", "finish_reason", "toolCallId", "toolName", "args", "input", "result", "file",
         "modality", "uri", "response", "additional_kwargs", "thinking", "reasoning_content", "generation_info"]
_TYPES = ["user", "assistant", "tool", "system", "human", "ai", "model", "chat", "developer", "text", "tool_call",
          "tool_call_response", "blob", "uri", "file", "reasoning", "function_call", "function_call_output", "message",
          "image_url", "input_image", "tool_use", "tool_result", "constructor", "image", "tool-call", "tool-result",
          "generic", "server_tool_call", "refusal", "input_audio", "thinking", "input_text", "output_text", "function"]
_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6),
                  st.sampled_from(_TYPES + ['[{"text": "x"}]', "[1]", "data:image/png;base64,AA", "image/png", "audio/wav"]))


def _node(inner: Any) -> Any:
    return st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=3), inner, max_size=5),
        st.fixed_dictionaries({"type": st.sampled_from(_TYPES)}, optional={k: inner for k in _KEYS[:32] if k != "type"}),
        st.fixed_dictionaries({"role": st.sampled_from(_TYPES) | inner},
                              optional={k: inner for k in ("content", "parts", "tool_calls", "name", "tool_call_id")}),
    )


_json = st.recursive(_leaf, _node, max_leaves=30)
_fields = st.fixed_dictionaries({}, optional={k: _json for k in ("messages", "contents", "input", "output", "choices",
                                                                  "content", "generations", "value", "finish_reason")})


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(i=_fields, o=_fields)
def test_any_messages_never_raise_and_what_is_made_is_detected(i: Dict[str, Any], o: Dict[str, Any]) -> None:
    before = json.dumps([i, o], sort_keys=True, default=str)
    made_in, made_out = M.llm_input(i), M.llm_output(o)
    assert json.dumps([i, o], sort_keys=True, default=str) == before  # the source is never changed in place
    if made_in != i:
        assert opik_ui.input_detected(made_in), (i, made_in)
    if made_out != o:
        assert opik_ui.output_detected(made_out), (o, made_out)
    assert opik_ui.empty_messages({"input": made_in if made_in != i else None,
                                   "output": made_out if made_out != o else None}) == []
    for side, value in (("input", i), ("output", o)):
        conv = M.conversation(value, side)
        if conv != value:
            assert opik_ui.input_detected(conv), (value, conv)
    for v in (i, o, made_in, made_out):
        q, a = M.question(v), M.answer(v)
        assert q is None or isinstance(q, str)
        assert a is None or isinstance(a, str)
    assert M.llm_input(made_in) is not None and M.llm_output(made_out) is not None


# --- the one-text fast path gives exactly what the general path gives


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Salut"},
        {"role": "system", "parts": [{"type": "text", "content": "Be terse."}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "Done."}], "finish_reason": "stop"},
        {"role": "user", "content": '[{"text": "json blocks"}]'},  # not taken: may be blocks
        {"role": "user", "content": ""},
        {"role": "tool", "content": "42"},
        {"role": "user", "parts": [{"type": "text", "content": "a"}, {"type": "text", "content": "b"}]},
    ],
)
def test_plain_text_fast_path_matches_the_general_path(message: Dict[str, Any]) -> None:
    from opentelemetry.exporter.opik._mapping.messages._chat import _from_role_message, _plain_text, role_of

    fast = _plain_text(message)
    general = _from_role_message(message, role_of(message.get("role")))
    if fast is not None:
        assert [fast] == general


def test_an_audio_part_without_audio_reads_as_a_placeholder_not_an_empty_message() -> None:
    # found by the property above: {"type": "input_audio"} alone was kept and Opik showed an empty message
    out = M.llm_output({"content": {"role": "user", "parts": [{"type": "input_audio"}]}})
    assert opik_ui.empty_messages({"input": None, "output": out}) == []
    kept = {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}}
    assert _content_of(kept) == [kept]
