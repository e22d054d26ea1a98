"""A small local OpenAI Responses API server (``POST /v1/responses``) for the OpenAI Agents SDK.

``tests/fake_openai.py`` serves chat completions only; the Agents SDK's default model
(``OpenAIResponsesModel``) speaks the Responses API. This server answers like it, over
real HTTP on loopback, so the real ``openai`` client, the SDK and the instrumentation
run unmodified::

    with FakeResponsesServer(content="Paris.") as server:
        AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        server.requests[-1]            # -> {"model": ..., "stream": ..., "input": [...]}

* a ``message`` output item with ``output_text`` and ``usage``;
* a ``function_call`` item naming the first function tool when the request has
  ``tools`` and its last input item is not a ``function_call_output``;
* ``stream: true``: ``response.created``, one ``response.output_item.added``, the text
  as ``response.output_text.delta`` events (the first after ``first_chunk_delay``),
  ``response.output_item.done`` and ``response.completed`` as server-sent events;
* model ``error-model``: HTTP 500 with an OpenAI error body.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional

__all__ = ["FakeResponsesServer"]

ALIASES = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18"}


class FakeResponsesServer:
    def __init__(self, content: str, *, tool_arguments: Optional[Dict[str, Any]] = None,
                 tool_call_id: str = "call_fake_0001", first_chunk_delay: float = 0.05,
                 input_tokens: int = 13, output_tokens: int = 9) -> None:
        self.content = content
        self.tool_arguments = tool_arguments if tool_arguments is not None else {"city": "Paris", "unit": "celsius"}
        self.tool_call_id = tool_call_id
        self.first_chunk_delay = first_chunk_delay
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.requests: List[Dict[str, Any]] = []
        #: per streamed request: seconds from its arrival to the first text delta
        self.first_chunk_offsets: List[float] = []
        #: per request, what was answered, in ``numbers_check.served`` form (for the usage checks)
        self.served: List[Dict[str, Any]] = []
        self._count = 0
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "FakeResponsesServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                owner._handle(self, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- answers -------------------------------------------------------------------------
    def _response(self, body: Dict[str, Any], n: int) -> Dict[str, Any]:
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
        items = body.get("input")
        last = items[-1] if isinstance(items, list) and items else {}
        if tools and not (isinstance(last, dict) and last.get("type") == "function_call_output"):
            output: Dict[str, Any] = {"id": f"fc_fake{n:06d}", "type": "function_call", "status": "completed",
                                      "call_id": self.tool_call_id, "name": tools[0]["name"],
                                      "arguments": json.dumps(self.tool_arguments)}
        else:
            output = {"id": f"msg_fake{n:06d}", "type": "message", "role": "assistant", "status": "completed",
                      "content": [{"type": "output_text", "text": self.content, "annotations": []}]}
        model = str(body.get("model"))
        return {
            "id": f"resp_fake{n:06d}", "object": "response", "created_at": int(time.time()),
            "model": ALIASES.get(model, model), "status": "completed", "output": [output],
            "instructions": body.get("instructions"), "parallel_tool_calls": True,
            "tool_choice": body.get("tool_choice") or "auto", "tools": body.get("tools") or [],
            "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                      "total_tokens": self.input_tokens + self.output_tokens,
                      "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
        }

    def _handle(self, h: BaseHTTPRequestHandler, body: Dict[str, Any]) -> None:
        received = time.monotonic()
        record: Dict[str, Any] = {"path": h.path, "received_ns": time.time_ns(), "status": None,
                                  "stream": bool(body.get("stream")), "model": None, "requested": body.get("model"),
                                  "usage": None, "first_chunk_offset_ms": None}
        with self._lock:
            self._count += 1
            n = self._count
            self.requests.append(body)
            self.served.append(record)
        if h.path.rstrip("/") != "/v1/responses":
            self._json(h, 404, {"error": {"message": "not found", "type": "invalid_request_error"}})
            return
        if body.get("model") == "error-model":
            record["status"] = 500
            self._json(h, 500, {"error": {"message": "The server had an error while processing your request.",
                                          "type": "server_error", "param": None, "code": None}})
            return
        response = self._response(body, n)
        record.update(status=200, model=response["model"], usage={
            "prompt_tokens": self.input_tokens, "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens})
        if not body.get("stream"):
            self._json(h, 200, response)
            return
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        seq = iter(range(1_000))

        def send(event: Dict[str, Any]) -> None:
            event["sequence_number"] = next(seq)
            h.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
            h.wfile.flush()

        item = response["output"][0]
        send({"type": "response.created", "response": {**response, "status": "in_progress", "output": []}})
        send({"type": "response.output_item.added", "output_index": 0,
              "item": {**item, "status": "in_progress", **({"content": []} if item["type"] == "message" else {})}})
        time.sleep(self.first_chunk_delay)
        if item["type"] == "message":
            words = self.content.split(" ")
            for i, word in enumerate(words):
                if i == 0:
                    self.first_chunk_offsets.append(time.monotonic() - received)
                    record["first_chunk_offset_ms"] = self.first_chunk_offsets[-1] * 1000
                send({"type": "response.output_text.delta", "item_id": item["id"], "output_index": 0,
                      "content_index": 0, "delta": word + (" " if i < len(words) - 1 else ""), "logprobs": []})
        send({"type": "response.output_item.done", "output_index": 0, "item": item})
        send({"type": "response.completed", "response": response})
        h.close_connection = True

    @staticmethod
    def _json(h: BaseHTTPRequestHandler, status: int, payload: Dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
