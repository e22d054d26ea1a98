"""LlamaIndex's Python reprs, as OpenInference records them, read back into messages.

OpenInference's LlamaIndex instrumentation writes the arguments of a call with
``repr()`` when they are not JSON, so ``input.value`` holds strings such as::

    ChatMessage(role=<MessageRole.USER: 'user'>, additional_kwargs={},
                blocks=[TextBlock(block_type='text', text='Hi')])

and an agent's ``output.value`` is a (possibly truncated) repr such as
``StopEvent(result=AgentOutput(response=ChatMessage(...), ...), ...``. The
flattened ``llm.input_messages.*`` are preferred where they exist; these reprs
are read only when they are all a span has (a call that failed before
LlamaIndex's events fired, ``_prepare_chat_with_tools``, an agent's answer).

The repr is tokenized by Python's own tokenizer (string literals, escapes and
quotes handled exactly; a truncated repr just ends early) and only the fields
that carry content are read: the role, ``TextBlock.text``, ``ImageBlock``
(base64 ``image`` bytes, ``url`` or ``path``), ``ToolCallBlock`` and a tool
message's ``tool_call_id``. Anything it cannot read returns ``None`` and the
string stays as it was.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from typing import Any, Dict, Iterator, List, Optional, Tuple

_MESSAGE = re.compile(r"ChatMessage\(role=<MessageRole\.\w+: '(\w+)'>")
_BLOCKS = frozenset(("TextBlock", "ImageBlock", "ToolCallBlock", "ThinkingBlock", "DocumentBlock", "AudioBlock"))

Token = Tuple[int, str, int]  # type, string, column


def is_message_repr(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("ChatMessage(role=<MessageRole.")


def _tokens(s: str) -> Iterator[Token]:
    try:
        for t in tokenize.generate_tokens(io.StringIO(s).readline):
            yield t.type, t.string, t.start[1]
    except (tokenize.TokenError, IndentationError, SyntaxError):  # truncated: what was read so far
        return


def _literal(tok: Token, s: str, toks: List[Token], i: int) -> Tuple[Any, int]:
    """The Python literal starting at ``toks[i]`` and the index after it."""
    ttype, text, col = tok
    if ttype == tokenize.STRING:
        try:
            return ast.literal_eval(text), i + 1
        except (ValueError, SyntaxError):
            return text, i + 1
    if text in ("{", "[", "("):  # a dict/list literal: from here to its closing bracket
        depth = 0
        for j in range(i, len(toks)):
            t = toks[j][1]
            if t in ("{", "[", "("):
                depth += 1
            elif t in ("}", "]", ")"):
                depth -= 1
                if depth == 0:
                    src = s[col : toks[j][2] + 1]
                    try:
                        return ast.literal_eval(src), j + 1
                    except (ValueError, SyntaxError):
                        return src, j + 1
        return None, len(toks)
    if ttype == tokenize.NAME and text in ("None", "True", "False"):
        return {"None": None, "True": True, "False": False}[text], i + 1
    return text, i + 1


def _fields(s: str, start: int = 0) -> Tuple[List[Tuple[str, Dict[str, Any]]], Dict[str, Any]]:
    """The blocks (``(class, {field: value})``) of the ``ChatMessage(`` at ``start`` and its ``additional_kwargs``."""
    toks = [t for t in _tokens(s[start:]) if t[0] not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER)]
    blocks: List[Tuple[str, Dict[str, Any]]] = []
    extra: Dict[str, Any] = {}
    depth = 0
    current: Optional[Dict[str, Any]] = None
    current_depth = -1
    i = 0
    while i < len(toks):
        ttype, text, _ = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else ""
        if ttype == tokenize.NAME and nxt == "(" and text in _BLOCKS and depth >= 1:
            current = {}
            blocks.append((text, current))
            current_depth = depth + 1
            depth += 1
            i += 2
            continue
        if ttype == tokenize.NAME and nxt == "=" and i + 2 < len(toks):
            if current is not None and depth == current_depth:
                value, i = _literal(toks[i + 2], s[start:], toks, i + 2)
                current[text] = value
                continue
            if depth == 1 and text == "additional_kwargs":
                value, i = _literal(toks[i + 2], s[start:], toks, i + 2)
                if isinstance(value, dict):
                    extra = value
                continue
        if text in ("(", "[", "{"):
            depth += 1
        elif text in (")", "]", "}"):
            depth -= 1
            if current is not None and depth < current_depth:
                current, current_depth = None, -1
            if depth == 0:
                break
        i += 1
    return blocks, extra


def _tool_call(fields: Dict[str, Any]) -> Dict[str, Any]:
    args = fields.get("tool_kwargs")
    return {
        "id": str(fields.get("tool_call_id") or fields.get("tool_name") or ""),
        "type": "function",
        "function": {
            "name": str(fields.get("tool_name") or "tool"),
            "arguments": args if isinstance(args, str) else json.dumps(args if args is not None else {}),
        },
    }


def _image(fields: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    data = fields.get("image")
    url = fields.get("url")
    if isinstance(data, (bytes, bytearray)) and data:
        try:
            b64 = bytes(data).decode("ascii")
        except UnicodeDecodeError:
            b64 = ""
        if b64:
            mime = fields.get("image_mimetype") or "image/png"
            return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{b64}"}}
    if isinstance(url, str) and url:
        return {"type": "image_url", "image_url": {"url": url}}
    path = fields.get("path")
    return {"type": "text", "text": f"[image: {path}]"} if path else None


def message_at(s: str, start: int = 0) -> Optional[Dict[str, Any]]:
    """The OpenAI chat message for the ``ChatMessage(...)`` repr at ``s[start:]``, or None."""
    m = _MESSAGE.match(s, start)
    if m is None:
        return None
    role = m.group(1)
    blocks, extra = _fields(s, start)
    parts: List[Dict[str, Any]] = []
    calls: List[Dict[str, Any]] = []
    for cls, fields in blocks:
        if cls == "TextBlock":
            text = fields.get("text")
            if isinstance(text, str) and text:
                parts.append({"type": "text", "text": text})
        elif cls == "ImageBlock":
            part = _image(fields)
            if part is not None:
                parts.append(part)
        elif cls == "ToolCallBlock":
            calls.append(_tool_call(fields))
        elif cls == "ThinkingBlock":
            continue  # reasoning: not part of the conversation text
        else:
            parts.append({"type": "text", "text": f"[{cls}]"})
    msg: Dict[str, Any] = {"role": role}
    if all(p["type"] == "text" for p in parts):
        msg["content"] = "\n".join(p["text"] for p in parts) if parts else None
    else:
        msg["content"] = parts
    if calls:
        msg["tool_calls"] = calls
    if role == "tool":
        msg["tool_call_id"] = str(extra.get("tool_call_id") or extra.get("name") or "")
        if msg["content"] is None:
            msg["content"] = ""
    elif msg["content"] is None and not calls:
        return None
    return msg


def message(value: Any) -> Optional[Dict[str, Any]]:
    return message_at(value) if is_message_repr(value) else None


def messages(values: Any) -> Optional[List[Dict[str, Any]]]:
    """A list of ``ChatMessage`` reprs as OpenAI messages; None unless every item is one."""
    if not isinstance(values, list) or not values or not all(is_message_repr(v) for v in values):
        return None
    out = [message(v) for v in values]
    return [m for m in out if m is not None]


def response_in(text: Any) -> Optional[Dict[str, Any]]:
    """The assistant ``response=ChatMessage(...)`` inside an agent's ``StopEvent``/``AgentOutput`` repr."""
    if not isinstance(text, str):
        return None
    i = text.find("response=ChatMessage(role=<MessageRole.")
    if i < 0:
        return None
    return message_at(text, i + len("response="))
