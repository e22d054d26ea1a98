"""The message normalizer: every family's input/output -> the shapes Opik's UI renders.

Opik's Messages view and its table/thread text read OpenAI chat shapes (see
``docs/mapping.md``, "How content is shaped"). Convention readers store content
as their family has it; :func:`normalize` runs once per span after all of them
and rewrites it:

* LLM spans: input ``{"messages": [OpenAI chat messages], ...request params}``,
  output ``{"choices": [{"index", "message", "finish_reason"}]}``;
* agent, chain and other spans whose content is a conversation: input
  ``{"messages": [...]}`` (the table shows the last user message), output
  ``{"messages": [...]}`` (the last assistant message);
* tool spans are left as their readers made them (arguments and result).

:func:`question` and :func:`answer` give the plain text a person reads for a
field, which the trace row uses. ``OTEL_EXPORTER_OPIK_MESSAGE_FORMAT=otel``
turns this module off.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from .._model import MappedSpan
from ._chat import ROLES, is_message_like, to_chat, to_choices, to_messages
from ._content import as_text

__all__ = ["normalize", "llm_input", "llm_output", "conversation", "question", "answer", "to_chat", "to_choices"]

IO = Dict[str, Any]


def _is_chat(msgs: Any) -> bool:
    return isinstance(msgs, list) and bool(msgs) and all(map(_is_chat_message, msgs))


def _is_chat_message(m: Any) -> bool:
    role = m.get("role") if isinstance(m, dict) else None
    return isinstance(role, str) and role in ROLES and "parts" not in m and _is_chat_content(m.get("content"))


def _is_chat_content(content: Any) -> bool:
    """OpenAI content already: text (not a JSON string of blocks, as Strands sends) or OpenAI's own parts
    (other families' typed parts, e.g. Vercel AI ``image``/``tool-call``, are read by the normalizer)."""
    if content is None:
        return True
    if isinstance(content, str):
        return content.lstrip()[:1] != "["
    return isinstance(content, list) and all(
        isinstance(p, dict) and isinstance(p.get("type"), str) and p["type"] in _OPENAI_PARTS for p in content
    )


_OPENAI_PARTS = frozenset(("text", "image_url", "input_audio", "file", "refusal"))


def _messages_of(value: IO, key: str) -> Optional[List[Any]]:
    """``value[key]`` when it is a list of messages (a LangChain batch of one unwrapped)."""
    msgs = value.get(key)
    if not isinstance(msgs, list) or not msgs:
        return None
    if len(msgs) == 1 and isinstance(msgs[0], list):
        msgs = msgs[0]
    if all(map(is_message_like, msgs)):
        return msgs
    return None


def _only_text(value: IO) -> Optional[str]:
    """The text of ``{"value": "..."}`` / ``{"prompt": "..."}`` style objects of one string."""
    if len(value) == 1:
        v = next(iter(value.values()))
        if isinstance(v, str) and v:
            return v
    return None


def _replaced(value: IO, key: str, new_key: str, new: Any) -> IO:
    """``value`` without ``key``, ``new_key: new`` first."""
    rest = value.copy()
    del rest[key]
    return {new_key: new, **rest}


def llm_input(value: Optional[IO]) -> Optional[IO]:
    if not isinstance(value, dict):
        return value
    for key in ("messages", "contents", "input"):
        msgs = _messages_of(value, key) if key == "messages" or "messages" not in value else None
        if msgs is not None:
            chat = to_chat(msgs)
            return _replaced(value, key, "messages", chat) if chat else value
    text = _only_text(value)
    if text is not None:
        return {"messages": [{"role": "user", "content": text}]}
    return value


def _normalized_choices(choices: List[Any]) -> List[Any]:
    result = []
    for n, c in enumerate(choices):
        if not isinstance(c, dict) or not isinstance(c.get("message"), dict):
            return choices
        msgs = [m for m in to_messages(c["message"], "assistant") if m["role"] != "tool"]
        if not msgs:
            return choices
        result.append({**c, "index": c.get("index", n), "message": msgs[0]})
    return result


def llm_output(value: Optional[IO]) -> Optional[IO]:
    if not isinstance(value, dict):
        return value
    choices = value.get("choices")
    if isinstance(choices, list) and choices:
        return {**value, "choices": _normalized_choices(choices)}
    clash = "choices" in value  # an empty/odd ``choices`` is kept, never overwritten
    for key in ("messages", "output"):
        msgs = None if clash else _messages_of(value, key)
        if msgs is not None:
            made = to_choices([_one_assistant_turn(msgs)] if key == "output" else msgs)
            if made:
                return _replaced(value, key, "choices", made)
    content = value.get("content")
    if not clash and isinstance(content, dict) and isinstance(content.get("parts"), list):  # Gemini/ADK response
        made = to_choices([{**content, "role": "assistant", "finish_reason": value.get("finish_reason")}])
        if made:
            return _replaced(value, "content", "choices", made)
    gens = value.get("generations")
    if not clash and isinstance(gens, list) and gens:  # LangChain LLMResult (LangSmith, OpenInference)
        made = _from_generations(gens)
        if made:
            return _replaced(value, "generations", "choices", made)
    text = _only_text(value)
    if text is not None:
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
    return value


def _from_generations(gens: List[Any]) -> List[Dict[str, Any]]:
    """LangChain ``generations`` (a list per prompt of candidate generations) -> ``choices``.

    A generation's ``message`` (constructor or dict) gives the assistant message,
    else its ``text``; ``generation_info.finish_reason`` the finish reason; the
    rest of ``generation_info`` stays on the choice. Empty when one is unreadable.
    """
    flat = [g for batch in gens for g in (batch if isinstance(batch, list) else [batch])]
    choices: List[Dict[str, Any]] = []
    for g in flat:
        if not isinstance(g, dict):
            return []
        msg = g.get("message")
        made = to_choices([msg]) if is_message_like(msg) else []
        if not made and isinstance(g.get("text"), str) and g["text"]:
            made = [{"index": 0, "message": {"role": "assistant", "content": g["text"]}}]
        if not made:
            return []
        choice = {**made[0], "index": len(choices)}
        info = g.get("generation_info")
        if isinstance(info, dict) and info:
            info = dict(info)
            finish = info.pop("finish_reason", None)
            if finish is not None:
                choice["finish_reason"] = finish
            if info:
                choice["generation_info"] = info
        choices.append(choice)
    return choices


def _one_assistant_turn(items: List[Any]) -> Dict[str, Any]:
    """Responses-API output items (messages, function calls, reasoning) as one assistant message."""
    chat = [m for m in to_chat(items, "assistant") if m["role"] == "assistant"]
    merged: Dict[str, Any] = {"role": "assistant"}
    # a reasoning item's message shows its reasoning as content: it is not the answer
    texts = [m["content"] for m in chat if isinstance(m.get("content"), str) and m["content"] != m.get("reasoning_content")]
    if texts:
        merged["content"] = "\n".join(texts)
    calls = [c for m in chat for c in m.get("tool_calls", ())]
    if calls:
        merged["tool_calls"] = calls
    reasoning = [m["reasoning_content"] for m in chat if "reasoning_content" in m]
    if reasoning:
        merged["reasoning_content"] = "\n".join(reasoning)
    return merged


def conversation(value: Optional[IO], side: str) -> Optional[IO]:
    """An agent/chain field that holds a conversation -> ``{"messages": [OpenAI chat]}``."""
    if not isinstance(value, dict):
        return value
    msgs = _messages_of(value, "messages")
    if msgs is None or _is_chat(msgs):
        return value
    chat = to_chat(msgs, "assistant" if side == "output" else "user")
    return {**value, "messages": chat} if chat else value


def normalize(out: MappedSpan) -> None:
    """Rewrite one span's input/output into the shapes Opik renders."""
    if out.type == "llm":
        out.input = llm_input(out.input)
        out.output = llm_output(out.output)
    elif out.type != "tool":
        out.input = conversation(out.input, "input")
        out.output = conversation(out.output, "output")


def _text_of_content(content: Any) -> Optional[str]:
    if isinstance(content, str):
        return content or None
    if isinstance(content, list):
        for p in reversed(content):
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) and p["text"]:
                return p["text"]
    return None


def question(value: Any) -> Optional[str]:
    """The text a person reads for an input: the last user message, or a lone string."""
    if isinstance(value, str):
        return value or None
    if not isinstance(value, dict):
        return None
    msgs = value.get("messages")
    if isinstance(msgs, list):
        for m in reversed(msgs):
            if isinstance(m, dict) and m.get("role") == "user":
                return _text_of_content(m.get("content"))
        return None
    return _only_text(value)


def answer(value: Any) -> Optional[str]:
    """The text a person reads for an output: the last choice's (or assistant message's) text."""
    if isinstance(value, str):
        return value or None
    if not isinstance(value, dict):
        return None
    choices = value.get("choices")
    if isinstance(choices, list) and choices:
        msg = choices[-1].get("message") if isinstance(choices[-1], dict) else None
        content = msg.get("content") if isinstance(msg, dict) else None
        return content if isinstance(content, str) and content else None
    msgs = value.get("messages")
    if isinstance(msgs, list):
        for m in reversed(msgs):
            if isinstance(m, dict) and m.get("role") == "assistant":
                c = m.get("content")
                return c if isinstance(c, str) and c else None
        return None
    text = _only_text(value)
    return text if text is not None else (as_text(value["output"]) if isinstance(value.get("output"), str) else None)
