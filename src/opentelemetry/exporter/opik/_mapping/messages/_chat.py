"""Messages of any family -> OpenAI chat messages (what Opik's Messages view renders).

Recognised message shapes, each turned into one or more OpenAI messages
(``{"role", "content", "tool_calls"?, "tool_call_id"?}``):

* OpenAI chat messages (kept, their ``tool_calls`` made ``type: function``
  with JSON-string ``arguments``);
* GenAI semconv messages (``{"role", "parts": [...]}``), whose
  ``tool_call_response`` parts become ``tool`` messages;
* LangChain: serialized constructors (``{"lc": 1, "type": "constructor",
  "id": [..., "HumanMessage"], "kwargs": {...}}``) and dicts with ``type``
  ``human``/``ai``/``system``/``tool``;
* OpenAI Responses items (``function_call``, ``function_call_output``,
  ``message`` with ``input_text``/``output_text``, ``reasoning``);
* Gemini/ADK contents (``{"role": "model", "parts": [{"text"}...]}``) and
  Bedrock/Strands/Anthropic messages whose content is a list of blocks (or a
  JSON string of one).
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

from ..._json import parse_json_like
from ._content import Message, Parts, as_arguments, as_text, result_text, tool_call

ROLES = frozenset(("system", "user", "assistant", "tool", "function"))
_ROLE_ALIASES = {
    "human": "user",
    "ai": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "developer": "system",
    "chat": "user",
    "generic": "user",
}
_LC_CLASSES = {
    "HumanMessage": "user",
    "HumanMessageChunk": "user",
    "AIMessage": "assistant",
    "AIMessageChunk": "assistant",
    "SystemMessage": "system",
    "ToolMessage": "tool",
    "FunctionMessage": "function",
    "ChatMessage": "user",
}
_RESPONSES_ITEMS = frozenset(("function_call", "function_call_output", "reasoning", "message", "computer_call",
                              "web_search_call", "file_search_call", "mcp_call"))


def role_of(value: Any, default: str = "user") -> str:
    if not isinstance(value, str) or not value:
        return default
    r = value.strip().lower()
    if r in ROLES:
        return r
    return _ROLE_ALIASES.get(r, default)


def is_message_like(m: Any) -> bool:
    """A dict that any recognised family uses for one message (or a Responses item)."""
    if not isinstance(m, dict):
        return False
    if "role" in m:
        return True
    if m.get("lc") == 1 and isinstance(m.get("kwargs"), dict):
        return True
    t = m.get("type")
    return isinstance(t, str) and (t in _ROLE_ALIASES or t in _RESPONSES_ITEMS or t in ROLES) and (
        "content" in m or t in _RESPONSES_ITEMS
    )


def _content_parts(content: Any) -> Optional[List[Any]]:
    """Content as a list of parts, or None when it is plain text (or absent)."""
    if isinstance(content, str):
        s = content.lstrip()
        if s[:1] == "[":  # Strands/Bedrock: a JSON string of content blocks
            parsed, ok = parse_json_like(content)
            if ok and isinstance(parsed, list) and parsed and all(isinstance(b, dict) for b in parsed):
                return parsed
        return None
    if isinstance(content, list):
        return content
    if isinstance(content, dict):
        inner = content.get("parts")  # a Gemini Content object given as content
        return inner if isinstance(inner, list) else [content]
    return None


def _openai_tool_calls(calls: Any, parts: Parts) -> None:
    if not isinstance(calls, list):
        return
    for call in calls:
        if not isinstance(call, dict):
            continue
        fn = call.get("function")
        if isinstance(fn, dict):
            parts.call(call.get("id"), fn.get("name"), fn.get("arguments"))
        else:  # flattened forms: {"id", "name", "arguments"}
            parts.call(call.get("id"), call.get("name"), call.get("arguments", call.get("args")))


def _build(role: str, source: Dict[str, Any], parts: Parts) -> List[Message]:
    """The OpenAI messages for one source message, from what its parts added up to."""
    out: List[Message] = list(parts.tool_results)
    if role == "tool":
        if out:
            return out
        call_id = source.get("tool_call_id") or source.get("id") or source.get("name") or ""
        text = result_text(source.get("content", source.get("parts")))
        # like a message of any other role with nothing to show, an empty result is left out
        return [{"role": "tool", "tool_call_id": str(call_id), "content": text}] if text else []
    msg: Message = {"role": role}
    content = parts.string_content()
    if parts.reasoning:
        msg["reasoning_content"] = "\n".join(parts.reasoning)
        if content is None and not parts.tool_calls:
            content = msg["reasoning_content"]
    if content is not None:
        msg["content"] = content
    if parts.tool_calls:
        msg["tool_calls"] = parts.tool_calls
        msg.setdefault("content", None)
    name = source.get("name")
    if isinstance(name, str) and name and role in ("user", "assistant", "system"):
        msg["name"] = name
    if "content" in msg and (msg["content"] is not None or parts.tool_calls):
        out.append(msg)
    return out


def _from_role_message(m: Dict[str, Any], role: str) -> List[Message]:
    parts = Parts()
    raw = m.get("parts") if isinstance(m.get("parts"), list) else m.get("content")
    listed = _content_parts(raw)
    if listed is None:
        if isinstance(raw, str):
            parts.text(raw)
        elif raw is not None:
            parts.text(as_text(raw))
    else:
        for p in listed:
            parts.add(p)
    _openai_tool_calls(m.get("tool_calls"), parts)
    reasoning = m.get("reasoning_content")  # OpenAI-compatible providers' (DeepSeek, vLLM) reasoning
    if isinstance(reasoning, str) and reasoning:
        parts.reasoning.append(reasoning)
    if role == "tool" and not parts.tool_results:
        return _build(role, {**m, "content": result_text(raw)}, Parts())
    return _build(role, m, parts)


def _from_langchain(m: Dict[str, Any]) -> List[Message]:
    kwargs = m["kwargs"]
    ids = m.get("id")
    cls = ids[-1] if isinstance(ids, list) and ids else ""
    role = _LC_CLASSES.get(str(cls))
    if role is None:
        role = role_of(kwargs.get("type") or kwargs.get("role"))
    return _from_langchain_dict({**kwargs, "type": role}, role)


def _from_langchain_dict(m: Dict[str, Any], role: Optional[str] = None) -> List[Message]:
    role = role or role_of(m.get("type") if m.get("type") != "chat" else m.get("role"))
    source: Dict[str, Any] = {"content": m.get("content"), "name": m.get("name")}
    if role == "tool":
        source["tool_call_id"] = m.get("tool_call_id")
    calls = m.get("tool_calls")
    if not calls:
        extra = m.get("additional_kwargs")
        calls = extra.get("tool_calls") if isinstance(extra, dict) else None
    if isinstance(calls, list) and calls:
        source["tool_calls"] = [
            c if "function" in c else {"id": c.get("id"), "name": c.get("name"), "arguments": as_arguments(c.get("args"))}
            for c in calls
            if isinstance(c, dict)
        ]
    return _from_role_message(source, role)


def _from_responses_item(m: Dict[str, Any]) -> List[Message]:
    t = m.get("type")
    parts = Parts()
    if t == "function_call":
        parts.call(m.get("call_id") or m.get("id"), m.get("name"), m.get("arguments"))
        return _build("assistant", {}, parts)
    if t == "function_call_output":
        text = result_text(m.get("output"))
        return [{"role": "tool", "tool_call_id": str(m.get("call_id") or ""), "content": text}] if text else []
    if t == "reasoning":
        parts.add(m)
        return _build("assistant", {}, parts)
    if t == "message":
        return _from_role_message(m, role_of(m.get("role"), "assistant"))
    parts.text(m)  # hosted tool calls: readable as they are
    return _build("assistant", {}, parts)


_CALL_KEYS = frozenset(("type", "id", "name", "arguments"))


def _plain_text(m: Dict[str, Any]) -> Optional[Message]:
    """The message most spans carry, read without the part machinery: one role, and OpenAI string content
    or GenAI semconv parts that are all text and tool calls.

    Exactly what the general path makes of it, or None to leave it to that path
    (``tests/test_mapping_perf_messages.py`` pins the two to the same result).
    """
    role = m.get("role")
    if type(role) is not str or role not in ROLES or role == "tool":
        return None
    parts = m.get("parts")
    if parts is None:
        c = m.get("content")  # with ``role``, two keys: ``{"role", "content"}``
        if len(m) == 2 and type(c) is str and c and c[0] != "[":  # "[..." may be a JSON string of blocks
            return {"role": role, "content": c}
        return None
    n = len(m)  # with ``role`` and ``parts``: {"role", "parts", "finish_reason"?}
    if type(parts) is list and (n == 2 or (n == 3 and "finish_reason" in m)):
        return _semconv_parts(role, parts)
    return None


def _semconv_parts(role: str, parts: List[Any]) -> Optional[Message]:
    """``text`` parts (``{"type", "content"}``) and ``tool_call`` parts as one OpenAI message; None for any other part."""
    texts: List[str] = []
    calls: List[Dict[str, Any]] = []
    for p in parts:
        if type(p) is not dict:
            return None
        t = p.get("type")
        if t == "text":
            c = p.get("content")
            if len(p) != 2 or type(c) is not str:
                return None
            if c:
                texts.append(c)
        elif t == "tool_call" and p.keys() <= _CALL_KEYS:
            calls.append(tool_call(p.get("id") or None, p.get("name"), p.get("arguments"), len(calls)))
        else:
            return None
    if texts:
        msg: Message = {"role": role, "content": "\n".join(texts)}
        if calls:
            msg["tool_calls"] = calls
        return msg
    if calls:
        return {"role": role, "tool_calls": calls, "content": None}
    return None  # nothing to show: the general path leaves the message out


def to_messages(m: Any, default_role: str = "user") -> List[Message]:
    """One source message (any family) -> its OpenAI messages (usually one)."""
    plain = _plain_text(m) if type(m) is dict else None
    if plain is not None:
        return [plain]
    if isinstance(m, str):
        return [{"role": default_role, "content": m}] if m else []
    if not isinstance(m, dict):
        return [{"role": default_role, "content": as_text(m)}] if m is not None else []
    if m.get("lc") == 1 and isinstance(m.get("kwargs"), dict):
        return _from_langchain(m)
    role = m.get("role")
    t = m.get("type")
    if role is None and isinstance(t, str):
        if t in _RESPONSES_ITEMS:
            return _from_responses_item(m)
        if t in _ROLE_ALIASES or t in ROLES:
            return _from_langchain_dict(m)
    if role is None and "parts" in m:
        role = "assistant" if default_role == "assistant" else None
    return _from_role_message(m, role_of(role, default_role))


def to_chat(items: Iterable[Any], default_role: str = "user") -> List[Message]:
    """A conversation of any family -> OpenAI chat messages, tool calls merged per turn.

    An assistant message that only calls tools joins the assistant message before it.
    """
    out: List[Message] = []
    for item in items:
        for m in to_messages(item, default_role):
            if "tool_calls" in m and out and m.get("content") is None and m["role"] == "assistant" \
                    and out[-1]["role"] == "assistant":
                out[-1].setdefault("tool_calls", []).extend(m["tool_calls"])
            else:
                out.append(m)
    return out


def to_choices(items: Iterable[Any]) -> List[Dict[str, Any]]:
    """Output messages -> OpenAI ``choices`` (finish reasons kept)."""
    choices: List[Dict[str, Any]] = []
    for m in items:
        finish = m.get("finish_reason") if isinstance(m, dict) else None
        msg = None
        for x in to_messages(m, "assistant"):
            if x["role"] == "tool":
                continue
            if msg is None:
                msg = x
            elif x.get("tool_calls"):  # a choice is one message: later pieces join it
                msg.setdefault("tool_calls", []).extend(x["tool_calls"])
        if msg is None:
            continue
        choice: Dict[str, Any] = {"index": len(choices), "message": msg}
        if finish is not None:
            choice["finish_reason"] = finish
        choices.append(choice)
    return choices
