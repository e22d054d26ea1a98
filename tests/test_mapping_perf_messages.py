"""The normalizer's shortcut for the messages most spans carry gives exactly what its general path gives.

``_chat._plain_text`` reads OpenAI string content and GenAI semconv messages made
of ``text`` and ``tool_call`` parts without the part machinery; anything else it
leaves to ``_from_role_message``. Whenever it answers, the answer must be the
general path's, message for message and key order included (the order is the
JSON Opik receives).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opentelemetry.exporter.opik._mapping.messages._chat import _from_role_message, _plain_text, role_of, to_messages


def _general(message: Dict[str, Any]) -> List[Dict[str, Any]]:
    return _from_role_message(message, role_of(message.get("role")))


def _same(fast: Optional[Dict[str, Any]], general: List[Dict[str, Any]]) -> None:
    assert [fast] == general
    assert [list(fast)] == [list(m) for m in general]  # key order
    for f, g in zip(fast.get("tool_calls") or (), general[0].get("tool_calls") or ()):
        assert list(f) == list(g) and list(f["function"]) == list(g["function"])


_CALL = {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "parts": [{"type": "text", "content": "a"}, {"type": "text", "content": "b"}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "Let me look."}, _CALL], "finish_reason": "tool_call"},
        {"role": "assistant", "parts": [_CALL], "finish_reason": "tool_call"},  # content None, after tool_calls
        {"role": "assistant", "parts": [_CALL, {**_CALL, "id": "call_2"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "name": "f"}, {"type": "tool_call", "id": ""}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": 7, "name": 3, "arguments": '{"a": 1}'}]},
        {"role": "assistant", "parts": [{"type": "text", "content": ""}, _CALL]},
        {"role": "system", "parts": [{"type": "text", "content": "[not blocks]"}]},
        {"role": "function", "parts": [{"type": "text", "content": "42"}]},
    ],
)
def test_text_and_tool_call_parts_read_as_the_general_path_reads_them(message: Dict[str, Any]) -> None:
    fast = _plain_text(message)
    assert fast is not None
    _same(fast, _general(message))


@pytest.mark.parametrize(
    "message",
    [
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c", "response": "42"}]},
        {"role": "user", "parts": [{"type": "text", "content": ""}]},  # nothing to show: left out
        {"role": "user", "parts": []},
        {"role": "user", "parts": [{"type": "text", "content": "a", "extra": 1}]},
        {"role": "user", "parts": [{"type": "text", "content": 5}]},
        {"role": "user", "parts": [{"type": "text", "text": "a"}]},
        {"role": "user", "parts": ["a"]},
        {"role": "assistant", "parts": [{**_CALL, "call_id": "x"}]},
        {"role": "assistant", "parts": [{"type": "reasoning", "content": "hm"}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "a"}], "name": "bot"},
        {"role": "assistant", "parts": [{"type": "text", "content": "a"}], "tool_calls": []},
        {"role": "assistant", "parts": ({"type": "text", "content": "a"},)},
        {"role": "Assistant", "parts": [{"type": "text", "content": "a"}]},
        {"role": "user", "content": '[{"text": "json blocks"}]'},
        {"role": "user", "content": ""},
        {"role": "user", "content": "hi", "name": "x"},
    ],
)
def test_every_other_message_is_left_to_the_general_path(message: Dict[str, Any]) -> None:
    assert _plain_text(message) is None


_text = st.text(max_size=4) | st.sampled_from(["", "[x", "Hi"])
_text_part = st.fixed_dictionaries({"type": st.just("text"), "content": _text})
_call_part = st.fixed_dictionaries(
    {"type": st.just("tool_call")},
    optional={"id": _text | st.none() | st.integers(), "name": _text | st.none(),
              "arguments": st.none() | _text | st.dictionaries(_text, st.integers(), max_size=2)},
)
_odd_part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "content": st.none() | st.integers()}, optional={"text": _text}),
    st.fixed_dictionaries({"type": st.just("tool_call"), "call_id": _text}, optional={"id": _text}),
    st.fixed_dictionaries({"type": st.sampled_from(["reasoning", "tool_call_response", "blob", "uri"])},
                          optional={"content": _text, "id": _text}),
    _text,
)
_part = st.one_of(_text_part, _call_part, _text_part, _call_part, _odd_part)  # mostly what the shortcut takes
_role = st.sampled_from(["user", "assistant", "system", "tool", "function", "model", "USER"])
_message = st.one_of(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system"]),
         "parts": st.lists(st.one_of(_text_part, _call_part), min_size=1, max_size=4)},
    ),
    st.fixed_dictionaries(  # the shapes the shortcut takes, and their near misses
        {"role": _role, "parts": st.lists(_part, min_size=1, max_size=4)}, optional={"finish_reason": st.sampled_from(["stop", None])}
    ),
    st.fixed_dictionaries(
        {"role": _role},
        optional={"parts": st.lists(_part, max_size=4) | _text, "content": _text, "name": _text,
                  "finish_reason": st.sampled_from(["stop", None])},
    ),
)


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(message=_message)
def test_whenever_the_shortcut_answers_it_is_the_general_path(message: Dict[str, Any]) -> None:
    fast = _plain_text(message)
    if fast is not None:
        _same(fast, _general(message))
        assert to_messages(message) == [fast]
