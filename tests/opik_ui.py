"""What Opik's web UI shows for a stored trace or span: a checker for the tests.

Written from the facts in ``../shared/reference/opik-ui.md`` (Opik's frontend:
``shared/PrettyLLMMessage/llmMessages/`` for the Messages view, ``lib/traces.ts``
for the one-line text of tables and the thread view). It is this project's own
code, deliberately strict where the facts are: an older deployed Opik does not
detect an output ``{"messages": [...]}``, so neither does this checker.

* :func:`input_detected` / :func:`output_detected`: would the Messages view
  recognise the field (OpenAI or LangChain shapes)?
* :func:`messages_tab`: the tab shows when each field is detected or empty.
* :func:`empty_messages`: messages that would render as a bare role header.
* :func:`table_text`: the one-line text; ``None`` when the UI falls back to JSON.
* :func:`problems`: everything a user would see wrong on one LLM item.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

ROLES = frozenset(("system", "user", "assistant", "tool", "function"))
LANGCHAIN_TYPES = frozenset(("human", "ai", "system", "tool", "function", "chat"))
_GENERIC_KEYS = {
    "input": ("question", "message", "messages", "user_input", "user_text", "query", "input_prompt", "prompt",
              "contents", "input", "text", "content"),
    "output": ("answer", "output", "response", "reply", "final_output"),
}


def _is_openai_message(m: Any) -> bool:
    if not isinstance(m, dict):
        return False
    role = m.get("role")
    if not isinstance(role, str) or role not in ROLES:
        return False
    return not (role == "tool" and "content" not in m)


def _openai_messages(value: Any) -> Optional[List[Any]]:
    msgs = value.get("messages") if isinstance(value, dict) else value
    if isinstance(msgs, list) and msgs and all(_is_openai_message(m) for m in msgs):
        return msgs
    return None


def _langchain_input(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    msgs = value.get("messages")
    return (
        isinstance(msgs, list)
        and bool(msgs)
        and all(isinstance(batch, list) for batch in msgs)
        and all(isinstance(m, dict) and m.get("type") in LANGCHAIN_TYPES for batch in msgs for m in batch)
    )


def input_detected(value: Any) -> bool:
    return _openai_messages(value) is not None or _langchain_input(value)


def output_detected(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    choices = value.get("choices")
    if isinstance(choices, list) and choices:
        return all(isinstance(c, dict) and _is_openai_message(c.get("message")) for c in choices)
    if isinstance(value.get("text"), str):
        return True
    gens = value.get("generations")
    return isinstance(gens, list) and bool(gens) and all(isinstance(g, list) for g in gens)


def _empty(v: Any) -> bool:
    return v is None or v == {} or v == [] or v == ""


def messages_tab(item: Dict[str, Any]) -> bool:
    """The Messages tab shows (and opens by default) when each field is detected or empty."""
    i, o = item.get("input"), item.get("output")
    return (_empty(i) or input_detected(i)) and (_empty(o) or output_detected(o)) and not (_empty(i) and _empty(o))


def _part_renders(p: Any) -> bool:
    if not isinstance(p, dict):
        return False
    t = p.get("type")
    if t == "text":
        return isinstance(p.get("text"), str) and p["text"] != ""
    if t == "image_url":
        img = p.get("image_url")
        url = img.get("url") if isinstance(img, dict) else img
        return isinstance(url, str) and url != ""
    if t in ("input_audio", "audio"):
        return bool(p.get("input_audio") or p.get("audio"))
    if t in ("video_url", "file"):
        return bool(p.get(t))
    return False


def message_renders(m: Dict[str, Any]) -> bool:
    content = m.get("content")
    if isinstance(content, str) and content != "":
        return True
    if isinstance(content, list) and any(_part_renders(p) for p in content):
        return True
    calls = m.get("tool_calls")
    if isinstance(calls, list) and calls:
        return all(
            isinstance(c, dict) and isinstance(c.get("function"), dict) and isinstance(c["function"].get("name"), str)
            for c in calls
        )
    return False


def empty_messages(item: Dict[str, Any]) -> List[str]:
    """``"input[2] (assistant)"`` for every message the Messages view would render empty."""
    found: List[str] = []
    msgs = _openai_messages(item.get("input"))
    for n, m in enumerate(msgs or ()):
        if not message_renders(m):
            found.append(f"input[{n}] ({m.get('role')})")
    out = item.get("output")
    choices = out.get("choices") if isinstance(out, dict) else None
    if isinstance(choices, list):
        for n, c in enumerate(choices):
            msg = c.get("message") if isinstance(c, dict) else None
            if isinstance(msg, dict) and not message_renders(msg):
                found.append(f"output.choices[{n}] ({msg.get('role')})")
    return found


def _last_text_part(content: Any) -> Optional[str]:
    if isinstance(content, str):
        return content or None
    if isinstance(content, list):
        for p in reversed(content):
            if isinstance(p, dict) and p.get("type") == "text":
                t = p.get("text")
                return t if isinstance(t, str) and t else None
    return None


def _openai_text(value: Dict[str, Any], side: str) -> Optional[str]:
    if side == "input" and isinstance(value.get("messages"), list):
        users = [m for m in value["messages"] if isinstance(m, dict) and m.get("role") == "user" and "content" in m]
        return _last_text_part(users[-1]["content"]) if users else None
    if side == "output" and isinstance(value.get("choices"), list) and value["choices"]:
        last = value["choices"][-1]
        msg = last.get("message") if isinstance(last, dict) else None
        content = msg.get("content") if isinstance(msg, dict) else None
        return content if isinstance(content, str) and content else None
    if side == "output" and isinstance(value.get("messages"), list):
        for m in reversed(value["messages"]):
            if isinstance(m, dict) and m.get("role") == "assistant":
                c = m.get("content")
                return c if isinstance(c, str) and c else None
    return None


def _agents_text(value: Dict[str, Any], side: str) -> Optional[str]:
    if side == "input" and isinstance(value.get("input"), list):
        users = [m["content"] for m in value["input"]
                 if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str) and m["content"]]
        return "\n\n".join(users) if users else None
    if side == "output" and isinstance(value.get("output"), list):
        texts = [
            c["text"]
            for m in value["output"]
            if isinstance(m, dict) and m.get("role") == "assistant" and m.get("type") == "message"
            and isinstance(m.get("content"), list)
            for c in m["content"]
            if isinstance(c, dict) and c.get("type") == "output_text" and isinstance(c.get("text"), str) and c["text"]
        ]
        return "\n\n".join(texts) if texts else None
    return None


def _generic_text(value: Dict[str, Any], side: str) -> Optional[str]:
    if len(value) == 1:
        only = next(iter(value.values()))
        if isinstance(only, str):
            return only
        if isinstance(only, dict):
            value = only
    for key in _GENERIC_KEYS[side]:
        v = value.get(key)
        if isinstance(v, str):
            return v
    return None


def table_text(value: Any, side: str) -> Optional[str]:
    """The one-line text of the tables and the thread view; ``None`` when the UI shows JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        return None
    for rule in (_openai_text, _agents_text, _generic_text):
        text = rule(value, side)
        if text is not None:
            return text
    return None


def problems(item: Dict[str, Any], question: Optional[str] = None, answer: Optional[str] = None) -> List[str]:
    """What a user would see wrong on an LLM span (or a trace shown as a conversation)."""
    found: List[str] = []
    i, o = item.get("input"), item.get("output")
    if not _empty(i) and not input_detected(i):
        found.append(f"input not detected as messages: {str(i)[:300]}")
    if not _empty(o) and not output_detected(o):
        found.append(f"output not detected as messages: {str(o)[:300]}")
    found.extend(f"empty message {m}" for m in empty_messages(item))
    if question is not None and table_text(i, "input") != question:
        found.append(f"input text {table_text(i, 'input')!r} != {question!r}")
    if answer is not None and table_text(o, "output") != answer:
        found.append(f"output text {table_text(o, 'output')!r} != {answer!r}")
    return found
