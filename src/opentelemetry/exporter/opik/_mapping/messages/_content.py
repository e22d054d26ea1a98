"""Content parts of any family -> OpenAI chat content, tool calls and tool results.

One message's parts are read into a :class:`Parts` accumulator: text and
image parts (OpenAI ``content`` list items), ``tool_calls``, tool results
(which become separate ``tool`` messages) and reasoning. Every part shape a
family emits is recognised here:

* GenAI semconv: ``text`` (``content``), ``tool_call``, ``tool_call_response``,
  ``blob``, ``uri``, ``file``, ``reasoning``, ``server_tool_call[_response]``,
  anything else as ``generic``;
* OpenAI chat (``text``/``image_url``/``input_audio``) and Responses
  (``input_text``, ``output_text``, ``input_image``, ``refusal``);
* Anthropic (``tool_use``, ``tool_result``, ``thinking``) and Bedrock/Strands
  blocks (``{"text"}``, ``{"toolUse"}``, ``{"toolResult"}``, ``{"image"}``);
* Gemini/ADK parts (``{"text"}``, ``function_call``, ``function_response``,
  ``inline_data``);
* Vercel AI SDK parts (``tool-call``, ``tool-result`` with its ``{"type",
  "value"}`` output, ``image`` with ``image``/``mediaType``, ``file`` with
  ``data``/``mediaType``) and LangChain v1 ``image`` blocks (``url``/``base64``).

A part nobody knows is kept as readable JSON text: never dropped silently.
"""

from __future__ import annotations

import base64
from typing import Any, Dict, List, Optional

from ..._json import dumps, parse_json_like

Message = Dict[str, Any]
_TEXT_TYPES = frozenset(("text", "input_text", "output_text"))
_REASONING_TYPES = frozenset(("reasoning", "thinking", "redacted_thinking"))


def as_text(value: Any) -> str:
    """A readable string for any value: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return dumps(value).decode("utf-8", "replace")


def as_arguments(value: Any) -> str:
    """Tool-call arguments as the JSON string OpenAI's shape has."""
    if isinstance(value, str):
        return value
    return dumps({} if value is None else value).decode("utf-8", "replace")


def _data_url(mime: Any, content: Any) -> Optional[str]:
    if isinstance(content, (bytes, bytearray)):
        content = base64.b64encode(bytes(content)).decode("ascii")
    if not isinstance(content, str) or not content:
        return None
    if content.startswith("data:"):
        return content
    return f"data:{mime or 'application/octet-stream'};base64,{content}"


def _modality(part: Dict[str, Any]) -> str:
    mime = str(part.get("mime_type") or part.get("mimeType") or part.get("media_type") or "")
    modality = str(part.get("modality") or "")
    return modality or mime.split("/", 1)[0]


def tool_call(call_id: Any, name: Any, arguments: Any, n: int) -> Dict[str, Any]:
    """One OpenAI ``tool_calls`` entry; a call without an id is named by its position ``n`` in the message."""
    return {
        "id": str(call_id) if call_id is not None else f"call_{n}",
        "type": "function",
        "function": {"name": str(name) if name is not None else "tool", "arguments": as_arguments(arguments)},
    }


class Parts:
    """What one source message's parts add up to, in OpenAI chat terms."""

    __slots__ = ("content", "tool_calls", "tool_results", "reasoning")

    def __init__(self) -> None:
        self.content: List[Dict[str, Any]] = []
        self.tool_calls: List[Dict[str, Any]] = []
        #: ``(tool_call_id, content)``: each becomes a ``tool`` message
        self.tool_results: List[Dict[str, Any]] = []
        self.reasoning: List[str] = []

    def text(self, value: Any) -> None:
        s = as_text(value)
        if s:
            self.content.append({"type": "text", "text": s})

    def image(self, url: Optional[str]) -> None:
        if url:
            self.content.append({"type": "image_url", "image_url": {"url": url}})

    def call(self, call_id: Any, name: Any, arguments: Any) -> None:
        self.tool_calls.append(tool_call(call_id, name, arguments, len(self.tool_calls)))

    def result(self, call_id: Any, content: Any) -> None:
        self.tool_results.append(
            {"role": "tool", "tool_call_id": str(call_id) if call_id is not None else "", "content": result_text(content)}
        )

    def add(self, part: Any) -> None:
        """Read one part of any known shape."""
        if isinstance(part, str):
            self.text(part)
            return
        if not isinstance(part, dict):
            self.text(part)
            return
        t = part.get("type")
        reader = _BY_TYPE.get(t) if isinstance(t, str) else None
        if reader is not None:
            reader(self, part)
            return
        for key, keyed in _BY_KEY:
            if key in part:
                keyed(self, part)
                return
        self.text(part)

    def string_content(self) -> Any:
        """``content`` as OpenAI has it: one string when every part is text, else the list."""
        if all(p.get("type") == "text" for p in self.content):
            texts = [p["text"] for p in self.content]
            return "\n".join(texts) if texts else None
        return self.content


def result_text(content: Any) -> str:
    """A tool result's content as one readable string (lists of text blocks joined)."""
    if isinstance(content, str):
        parsed, ok = parse_json_like(content)
        if ok and isinstance(parsed, list):
            content = parsed
        else:
            return content
    if isinstance(content, list):
        inner = Parts()
        for p in content:
            inner.add(p)
        if inner.content and all(p.get("type") == "text" for p in inner.content):
            return "\n".join(p["text"] for p in inner.content)
    return as_text(content)


# --- readers by ``type``


def _text(p: Parts, part: Dict[str, Any]) -> None:
    p.text(part.get("text") if "text" in part else part.get("content"))


def _refusal(p: Parts, part: Dict[str, Any]) -> None:
    p.text(part.get("refusal") or part.get("text") or part.get("content"))


def _image_url(p: Parts, part: Dict[str, Any]) -> None:
    img = part.get("image_url")
    url = img.get("url") if isinstance(img, dict) else img
    if isinstance(url, str) and url:
        p.content.append({"type": "image_url", "image_url": {"url": url}})
    else:
        p.text(part)


def _input_image(p: Parts, part: Dict[str, Any]) -> None:
    url = part.get("image_url") or part.get("url")
    if isinstance(url, dict):
        url = url.get("url")
    if isinstance(url, str) and url:
        p.image(url)
    else:
        p.text(f"[image {part.get('file_id') or ''}]".replace(" ]", "]"))


def _audio(p: Parts, part: Dict[str, Any]) -> None:
    """An audio part Opik plays (its ``input_audio``/``audio`` payload), else a text placeholder (no empty message)."""
    if part.get("input_audio") or part.get("audio"):
        p.content.append(dict(part))
    else:
        p.text(f"[audio {part.get('id') or ''}]".replace(" ]", "]"))


def _blob(p: Parts, part: Dict[str, Any]) -> None:
    mime = part.get("mime_type") or part.get("mimeType")
    modality = _modality(part)
    content = part.get("content") if "content" in part else part.get("data")
    url = _data_url(mime, content)
    if modality == "image" and url:
        p.image(url)
    elif modality == "audio" and isinstance(content, str):
        fmt = str(mime or "audio/wav").split("/", 1)[-1]
        p.content.append({"type": "input_audio", "input_audio": {"data": content, "format": fmt}})
    else:
        size = len(content) * 3 // 4 if isinstance(content, str) else 0
        p.text(f"[{modality or 'file'} {mime or ''}, {size} bytes]".replace(" ,", ","))


def _uri(p: Parts, part: Dict[str, Any]) -> None:
    uri = part.get("uri") or part.get("url")
    if _modality(part) == "image" and isinstance(uri, str) and uri:
        p.image(uri)
    else:
        p.text(f"[{_modality(part) or 'file'}: {uri}]")


def _file(p: Parts, part: Dict[str, Any]) -> None:
    if "file" in part and isinstance(part["file"], dict) and "type" not in part["file"]:
        f = part["file"]  # OpenAI chat file part
        p.text(f"[file: {f.get('filename') or f.get('file_id') or 'inline'}]")
        return
    mime = part.get("mime_type") or part.get("mimeType") or part.get("mediaType")
    data = part.get("data")
    if isinstance(data, str) and data and str(mime or "").startswith("image/"):  # Vercel AI: an image as a file
        p.image(data if data.startswith(("http://", "https://")) else _data_url(mime, data))
        return
    ident = part.get("file_id") or part.get("filename") or part.get("uri") or "inline"
    p.text(f"[file: {ident}{f' ({mime})' if mime else ''}]")


def _tool_call(p: Parts, part: Dict[str, Any]) -> None:
    args = part.get("arguments") if "arguments" in part else part.get("input", part.get("args"))
    p.call(part.get("id") or part.get("call_id"), part.get("name"), args)


def _vercel_tool_call(p: Parts, part: Dict[str, Any]) -> None:
    """Vercel AI SDK ``{"type": "tool-call", "toolCallId", "toolName", "input"}`` (v4: ``args``)."""
    args = part.get("input") if "input" in part else part.get("args")
    p.call(part.get("toolCallId") or part.get("id"), part.get("toolName") or part.get("name"), args)


def _vercel_tool_result(p: Parts, part: Dict[str, Any]) -> None:
    """Vercel AI SDK ``{"type": "tool-result", "toolCallId", "output": {"type", "value"}}`` (v4: ``result``)."""
    content = part.get("output") if "output" in part else part.get("result")
    if isinstance(content, dict) and "value" in content and isinstance(content.get("type"), str) \
            and content["type"] in _VERCEL_OUTPUTS:
        content = content["value"]
    p.result(part.get("toolCallId") or part.get("id"), content)


_VERCEL_OUTPUTS = frozenset(("text", "json", "error-text", "error-json", "content", "execution-denied"))


def _function_call_item(p: Parts, part: Dict[str, Any]) -> None:
    fn = part.get("function")
    if isinstance(fn, dict):  # an OpenAI tool_calls entry given as a part
        p.call(part.get("id"), fn.get("name"), fn.get("arguments"))
    else:
        p.call(part.get("call_id") or part.get("id"), part.get("name"), part.get("arguments"))


def _tool_response(p: Parts, part: Dict[str, Any]) -> None:
    for key in ("response", "result", "content", "output"):
        if key in part:
            content = part[key]
            break
    else:
        content = None
    p.result(part.get("id") or part.get("tool_call_id") or part.get("tool_use_id") or part.get("call_id"), content)


def _reasoning(p: Parts, part: Dict[str, Any]) -> None:
    for key in ("content", "thinking", "text", "summary"):
        v = part.get(key)
        if v:
            if isinstance(v, list):  # Responses: summary [{"type": "summary_text", "text"}]
                v = "\n".join(as_text(s.get("text", s) if isinstance(s, dict) else s) for s in v)
            p.reasoning.append(as_text(v))
            return


def _server_tool(p: Parts, part: Dict[str, Any]) -> None:
    name = part.get("name") or part.get("type")
    body = {k: v for k, v in part.items() if k not in ("type", "name")}
    p.text(f"[{part.get('type')} {name}] {as_text(body)}")


def _generic(p: Parts, part: Dict[str, Any]) -> None:
    body = part.get("content", {k: v for k, v in part.items() if k != "type"})
    p.text(as_text(body))


def _typed_image(p: Parts, part: Dict[str, Any]) -> None:
    """``{"type": "image"}``: Strands' latest parts (``content`` a Bedrock image) or Anthropic's (``source``)."""
    inner = part.get("content")
    if isinstance(inner, dict) and isinstance(inner.get("source"), dict):
        _k_image(p, {"image": inner})
        return
    src = part.get("source")
    img = part.get("image", part.get("url", part.get("base64", part.get("data"))))
    if isinstance(img, str) and img:  # Vercel AI (``image``), LangChain v1 blocks (``url``/``base64``/``data``)
        mime = part.get("mediaType") or part.get("mimeType") or part.get("mime_type") or "image/png"
        p.image(img if img.startswith(("http://", "https://")) else _data_url(mime, img))
    elif isinstance(src, dict) and isinstance(src.get("url"), str):
        p.image(src["url"])
    elif isinstance(src, dict) and "data" in src:
        _blob(p, {"mime_type": src.get("media_type") or "image/png", "modality": "image", "content": src["data"]})
    else:
        p.text(part)


_BY_TYPE = {
    "text": _text,
    "input_text": _text,
    "output_text": _text,
    "refusal": _refusal,
    "image_url": _image_url,
    "input_image": _input_image,
    "input_audio": _audio,
    "audio": _audio,
    "blob": _blob,
    "uri": _uri,
    "file": _file,
    "input_file": _file,
    "tool_call": _tool_call,
    "tool_use": _tool_call,
    "function_call": _function_call_item,
    "function": _function_call_item,
    "tool_call_response": _tool_response,
    "tool_result": _tool_response,
    "function_call_output": _tool_response,
    "tool-call": _vercel_tool_call,
    "tool-result": _vercel_tool_result,
    "reasoning": _reasoning,
    "thinking": _reasoning,
    "redacted_thinking": _reasoning,
    "server_tool_call": _server_tool,
    "server_tool_call_response": _server_tool,
    "generic": _generic,
    "image": _typed_image,
}


# --- readers by key, for shapes without a ``type`` (Bedrock/Strands, Gemini)


def _k_text(p: Parts, part: Dict[str, Any]) -> None:
    p.text(part["text"])


def _k_tool_use(p: Parts, part: Dict[str, Any]) -> None:
    use = part["toolUse"]
    if isinstance(use, dict):
        p.call(use.get("toolUseId"), use.get("name"), use.get("input"))


def _k_tool_result(p: Parts, part: Dict[str, Any]) -> None:
    res = part["toolResult"]
    if isinstance(res, dict):
        p.result(res.get("toolUseId"), res.get("content"))


def _k_function_call(p: Parts, part: Dict[str, Any]) -> None:
    fc = part.get("function_call") or part.get("functionCall")
    if isinstance(fc, dict):  # without an id, the name (as the function_response reader takes it)
        p.call(fc.get("id") or fc.get("name"), fc.get("name"), fc.get("args"))


def _k_function_response(p: Parts, part: Dict[str, Any]) -> None:
    fr = part.get("function_response") or part.get("functionResponse")
    if isinstance(fr, dict):
        p.result(fr.get("id") or fr.get("name"), fr.get("response"))


def _k_inline_data(p: Parts, part: Dict[str, Any]) -> None:
    data = part.get("inline_data") or part.get("inlineData")
    if isinstance(data, dict):
        _blob(p, {"mime_type": data.get("mime_type") or data.get("mimeType"), "content": data.get("data")})


def _k_image(p: Parts, part: Dict[str, Any]) -> None:
    img = part["image"]
    src = img.get("source") if isinstance(img, dict) else None
    if isinstance(src, dict) and "bytes" in src:  # Bedrock {"image": {"format", "source": {"bytes"}}}
        _blob(p, {"mime_type": f"image/{img.get('format', 'png')}", "modality": "image", "content": src["bytes"]})
    else:
        p.text(part)


def _k_reasoning(p: Parts, part: Dict[str, Any]) -> None:
    rc = part["reasoningContent"]
    text = rc.get("reasoningText", {}).get("text") if isinstance(rc, dict) else rc
    p.reasoning.append(as_text(text))


_BY_KEY = (
    ("text", _k_text),
    ("toolUse", _k_tool_use),
    ("toolResult", _k_tool_result),
    ("function_call", _k_function_call),
    ("functionCall", _k_function_call),
    ("function_response", _k_function_response),
    ("functionResponse", _k_function_response),
    ("inline_data", _k_inline_data),
    ("inlineData", _k_inline_data),
    ("image", _k_image),
    ("reasoningContent", _k_reasoning),
)
