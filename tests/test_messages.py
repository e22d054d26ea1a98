"""The message normalizer (``_mapping/messages/``): every shape it claims to read, as Opik's UI shows it.

Each case runs the real functions (``llm_input``/``llm_output``/``conversation``/
``question``/``answer``) and checks the result with ``opik_ui``, the checker
written from Opik's frontend rules: detected as messages, no message that would
render empty, and the one-line table text a person reads.
"""

from __future__ import annotations

from typing import Any, Dict

import opik_ui

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


def test_messages_beside_an_empty_choices_key_never_overwrite_it() -> None:
    value = {"choices": [], "messages": [{"role": "assistant", "content": "hi"}]}
    assert M.llm_output(value) == value


def test_a_plain_openai_call_reads_as_a_conversation() -> None:
    item = _llm({"messages": [{"role": "user", "content": "Hi?"}]}, {"value": "Hello."})
    assert opik_ui.problems(item, "Hi?", "Hello.") == []
