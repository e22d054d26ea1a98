"""A small local OpenAI-compatible HTTP server for tests.

Real HTTP on ``127.0.0.1`` (port chosen by the OS), served from a background
thread, so the real ``openai`` client and any instrumentation wrapped around it
run unmodified::

    with FakeOpenAIServer(first_chunk_delay=0.3) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        server.requests[-1].body["model"]          # -> "gpt-4o-mini"

Endpoints
---------
``POST /v1/chat/completions``
    * plain answer: ``chat.completion`` with ``content`` and ``usage``;
    * tool call when the request carries ``tools`` (unless ``tool_choice`` is
      ``"none"`` or the last message is a ``tool`` result): one ``tool_calls``
      entry naming the first tool (or ``tool_name``) with ``tool_arguments``
      as JSON, ``finish_reason == "tool_calls"``;
    * ``stream: true``: server-sent events; the first chunk is sent after
      ``first_chunk_delay`` seconds, further chunks ``chunk_delay`` apart, a
      final usage chunk when ``stream_options.include_usage`` is true, then
      ``data: [DONE]``. When the first chunk went out is recorded on the
      request (``first_chunk_offset_s`` / ``first_chunk_sent_ns``);
    * error: a model listed in ``error_models`` (default ``error-model`` ->
      500) gets that HTTP status and an OpenAI error body. The ``openai``
      client retries 429/5xx by default: build it with ``max_retries=0``.
``POST /v1/embeddings``
    A deterministic vector per input (``float`` lists, or base64 float32 which
    is what the ``openai`` client asks for by default) and ``usage``.

The response model is ``model_aliases.get(requested, requested)``, so
``gpt-4o-mini`` answers as ``gpt-4o-mini-2024-07-18``, like the real API.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Mapping, Optional, Sequence

__all__ = ["FakeOpenAIServer", "RecordedRequest", "DEFAULT_MODEL_ALIASES"]

DEFAULT_MODEL_ALIASES: Dict[str, str] = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "text-embedding-3-small": "text-embedding-3-small",
}


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    headers: Dict[str, str]
    body: Any
    #: wall clock (``time.time_ns()``) when the request had been read
    received_ns: int
    #: ``time.monotonic()`` at the same moment
    received_monotonic: float
    status: Optional[int] = None
    #: streaming only: wall clock right before the first SSE chunk was written
    first_chunk_sent_ns: Optional[int] = None
    #: streaming only: seconds from ``received_monotonic`` to the first chunk
    first_chunk_offset_s: Optional[float] = None
    #: wall clock right before the last write of the response (set before the
    #: client can have read the whole answer)
    completed_ns: Optional[int] = None
    #: number of SSE ``data:`` events sent (including ``[DONE]``)
    chunks_sent: int = 0

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))


@dataclass
class _Config:
    content: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    model_aliases: Dict[str, str]
    first_chunk_delay: float
    chunk_delay: float
    stream_chunks: Optional[List[str]]
    tool_name: Optional[str]
    tool_arguments: Any
    tool_call_id: str
    error_models: Dict[str, int]
    error_message: str
    embedding_dim: int
    finish_reason: str
    extra_usage: Dict[str, Any] = field(default_factory=dict)


class FakeOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1; see the module docstring."""

    def __init__(
        self,
        *,
        content: str = "Hello! This is the fake OpenAI server answering.",
        prompt_tokens: int = 13,
        completion_tokens: int = 9,
        cached_tokens: int = 0,
        reasoning_tokens: int = 0,
        model_aliases: Optional[Mapping[str, str]] = None,
        first_chunk_delay: float = 0.3,
        chunk_delay: float = 0.01,
        stream_chunks: Optional[Sequence[str]] = None,
        tool_name: Optional[str] = None,
        tool_arguments: Any = None,
        tool_call_id: str = "call_fake_0001",
        error_models: Optional[Mapping[str, int]] = None,
        error_message: str = "The server had an error while processing your request.",
        embedding_dim: int = 8,
        finish_reason: str = "stop",
    ) -> None:
        self.config = _Config(
            content=content,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=cached_tokens,
            reasoning_tokens=reasoning_tokens,
            model_aliases=dict(
                DEFAULT_MODEL_ALIASES if model_aliases is None else model_aliases
            ),
            first_chunk_delay=first_chunk_delay,
            chunk_delay=chunk_delay,
            stream_chunks=list(stream_chunks) if stream_chunks is not None else None,
            tool_name=tool_name,
            tool_arguments=(
                {"city": "Paris", "unit": "celsius"}
                if tool_arguments is None
                else tool_arguments
            ),
            tool_call_id=tool_call_id,
            error_models=dict(
                {"error-model": 500} if error_models is None else error_models
            ),
            error_message=error_message,
            embedding_dim=embedding_dim,
            finish_reason=finish_reason,
        )
        #: when set to an HTTP status, every request gets that error
        self.force_error: Optional[int] = None
        self._requests: List[RecordedRequest] = []
        self._lock = threading.Lock()
        self._counter = 0
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # ------------------------------------------------------------------ life
    def start(self) -> "FakeOpenAIServer":
        if self._httpd is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-openai-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FakeOpenAIServer":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # ---------------------------------------------------------------- access
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> List[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise LookupError("no request received yet")
            return self._requests[-1]

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()

    def response_model(self, requested: str) -> str:
        return self.config.model_aliases.get(requested, requested)

    # ------------------------------------------------------------- internals
    def _record(self, req: RecordedRequest) -> int:
        with self._lock:
            self._requests.append(req)
            self._counter += 1
            return self._counter

    def _usage(self) -> Dict[str, Any]:
        c = self.config
        usage: Dict[str, Any] = {
            "prompt_tokens": c.prompt_tokens,
            "completion_tokens": c.completion_tokens,
            "total_tokens": c.prompt_tokens + c.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": c.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": c.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        usage.update(c.extra_usage)
        return usage

    def _tool_call_for(self, body: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        tools = body.get("tools")
        if not tools or body.get("tool_choice") == "none":
            return None
        messages = body.get("messages") or []
        if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool":
            return None
        name = self.config.tool_name
        if name is None:
            first = tools[0] if isinstance(tools[0], dict) else {}
            name = (first.get("function") or {}).get("name") or first.get("name") or "tool"
        args = self.config.tool_arguments
        return {
            "id": self.config.tool_call_id,
            "type": "function",
            "function": {
                "name": name,
                "arguments": args if isinstance(args, str) else json.dumps(args),
            },
        }

    def _stream_pieces(self) -> List[str]:
        if self.config.stream_chunks is not None:
            return list(self.config.stream_chunks)
        words = self.config.content.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer  # set on the bound subclass
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # keep test output quiet

    # -------------------------------------------------------------- helpers
    def _send_json(self, status: int, payload: Any, req: Optional[RecordedRequest], rid: int = 0) -> None:
        data = json.dumps(payload).encode("utf-8")
        if req is not None:  # set before writing: the client may look right after reading
            req.status = status
            req.completed_ns = time.time_ns()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_fake_{rid}")
        self.send_header("openai-processing-ms", "1")
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error(self, status: int, message: str, req: Optional[RecordedRequest], rid: int = 0,
                    err_type: str = "server_error", code: Optional[str] = None) -> None:
        self._send_json(
            status,
            {"error": {"message": message, "type": err_type, "param": None, "code": code}},
            req,
            rid,
        )

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    # ------------------------------------------------------------ dispatch
    def do_GET(self) -> None:  # noqa: N802
        self._read_and_route()

    def do_POST(self) -> None:  # noqa: N802
        self._read_and_route()

    def _read_and_route(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        req = RecordedRequest(
            method=self.command,
            path=self.path.split("?", 1)[0],
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            received_ns=time.time_ns(),
            received_monotonic=time.monotonic(),
        )
        rid = self.fake._record(req)
        try:
            if self.fake.force_error is not None:
                self._send_error(self.fake.force_error, self.fake.config.error_message, req, rid)
            elif self.command == "POST" and req.path == "/v1/chat/completions":
                self._chat(req, rid)
            elif self.command == "POST" and req.path == "/v1/embeddings":
                self._embeddings(req, rid)
            else:
                self._send_error(404, f"Unknown request URL: {self.command} {req.path}", req, rid,
                                 err_type="invalid_request_error", code="unknown_url")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # ----------------------------------------------------------------- chat
    def _chat(self, req: RecordedRequest, rid: int) -> None:
        fake, cfg = self.fake, self.fake.config
        body = req.body if isinstance(req.body, dict) else {}
        requested = str(body.get("model") or "")
        if requested in cfg.error_models:
            self._send_error(cfg.error_models[requested], cfg.error_message, req, rid)
            return
        if not body.get("messages"):
            self._send_error(400, "'messages' is a required property", req, rid,
                             err_type="invalid_request_error")
            return
        model = fake.response_model(requested)
        cid = f"chatcmpl-fake{rid:06d}"
        created = int(time.time())
        tool_call = fake._tool_call_for(body)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._chat_stream(req, cid, created, model, tool_call, include_usage)
            return
        if tool_call is not None:
            message: Dict[str, Any] = {"role": "assistant", "content": None,
                                       "tool_calls": [tool_call], "refusal": None}
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": cfg.content, "refusal": None}
            finish = cfg.finish_reason
        n = int(body.get("n") or 1)
        payload = {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake0001",
            "service_tier": "default",
            "choices": [
                {"index": i, "message": message, "logprobs": None, "finish_reason": finish}
                for i in range(n)
            ],
            "usage": fake._usage(),
        }
        self._send_json(200, payload, req, rid)

    def _chat_stream(self, req: RecordedRequest, cid: str, created: int, model: str,
                     tool_call: Optional[Dict[str, Any]], include_usage: bool) -> None:
        fake, cfg = self.fake, self.fake.config
        req.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", f"req_fake_{cid[-6:]}")
        self.end_headers()
        self.wfile.flush()

        def chunk(delta: Dict[str, Any], finish: Optional[str]) -> Dict[str, Any]:
            c: Dict[str, Any] = {
                "id": cid, "object": "chat.completion.chunk", "created": created,
                "model": model, "system_fingerprint": "fp_fake0001", "service_tier": "default",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                c["usage"] = None
            return c

        events: List[Dict[str, Any]] = []
        if tool_call is not None:
            args = tool_call["function"]["arguments"]
            half = max(1, len(args) // 2)
            events.append(chunk({"role": "assistant", "content": None, "tool_calls": [{
                "index": 0, "id": tool_call["id"], "type": "function",
                "function": {"name": tool_call["function"]["name"], "arguments": ""}}],
                "refusal": None}, None))
            for part in (args[:half], args[half:]):
                if part:
                    events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}, None))
            events.append(chunk({}, "tool_calls"))
        else:
            events.append(chunk({"role": "assistant", "content": "", "refusal": None}, None))
            for piece in fake._stream_pieces():
                events.append(chunk({"content": piece}, None))
            events.append(chunk({}, cfg.finish_reason))
        if include_usage:
            events.append({"id": cid, "object": "chat.completion.chunk", "created": created,
                           "model": model, "system_fingerprint": "fp_fake0001",
                           "service_tier": "default", "choices": [], "usage": fake._usage()})

        if cfg.first_chunk_delay > 0:
            # sleep relative to when the request was read, so the offset is exact
            remaining = req.received_monotonic + cfg.first_chunk_delay - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)
        for i, event in enumerate(events):
            if i > 0 and cfg.chunk_delay > 0:
                time.sleep(cfg.chunk_delay)
            if i == 0:  # stamped right before the write, so never after the client saw it
                req.first_chunk_sent_ns = time.time_ns()
                req.first_chunk_offset_s = time.monotonic() - req.received_monotonic
            req.chunks_sent += 1
            self._write_chunk(b"data: " + json.dumps(event).encode("utf-8") + b"\n\n")
        req.chunks_sent += 1
        req.completed_ns = time.time_ns()
        self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # ----------------------------------------------------------- embeddings
    def _embeddings(self, req: RecordedRequest, rid: int) -> None:
        fake, cfg = self.fake, self.fake.config
        body = req.body if isinstance(req.body, dict) else {}
        requested = str(body.get("model") or "")
        if requested in cfg.error_models:
            self._send_error(cfg.error_models[requested], cfg.error_message, req, rid)
            return
        inputs = body.get("input")
        if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            self._send_error(400, "'input' is a required property", req, rid,
                             err_type="invalid_request_error")
            return
        dim = int(body.get("dimensions") or cfg.embedding_dim)
        b64 = body.get("encoding_format") == "base64"
        data = []
        tokens = 0
        for i, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(str(t) for t in item)
            tokens += max(1, len(text.split()))
            seed = sum(text.encode("utf-8")) + i
            vec = [round(((seed * (k + 1)) % 97) / 97.0 - 0.5, 6) for k in range(dim)]
            emb: Any = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode("ascii") if b64 else vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        payload = {
            "object": "list",
            "data": data,
            "model": fake.response_model(requested),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        self._send_json(200, payload, req, rid)
