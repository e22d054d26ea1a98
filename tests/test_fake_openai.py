"""The fake OpenAI server answers the real ``openai`` client correctly."""

from __future__ import annotations

import json
import time

import pytest

openai = pytest.importorskip("openai")

try:
    from tests.fake_openai import FakeOpenAIServer
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from fake_openai import FakeOpenAIServer  # type: ignore[no-redef]

MESSAGES = [{"role": "user", "content": "Say hello"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


@pytest.fixture()
def server():
    with FakeOpenAIServer(
        content="Hi there from fake", prompt_tokens=21, completion_tokens=5, first_chunk_delay=0.3
    ) as srv:
        yield srv


@pytest.fixture()
def client(server):
    c = openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0, timeout=10)
    yield c
    c.close()


def test_base_url_and_lifecycle():
    srv = FakeOpenAIServer()
    with pytest.raises(RuntimeError):
        srv.base_url  # noqa: B018
    with srv:
        assert srv.base_url.startswith("http://127.0.0.1:")
        assert srv.base_url.endswith("/v1")
        assert srv.port > 0
    srv.stop()  # idempotent


def test_completion(server, client):
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2)
    assert resp.object == "chat.completion"
    assert resp.model == "gpt-4o-mini-2024-07-18"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == "Hi there from fake"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (21, 5, 26)
    req = server.last_request
    assert req.path == "/v1/chat/completions"
    assert req.body["model"] == "gpt-4o-mini"
    assert req.body["messages"] == MESSAGES
    assert req.body["temperature"] == 0.2
    assert req.headers["authorization"] == "Bearer test-key"
    assert req.status == 200


def test_unknown_model_is_echoed(client):
    resp = client.chat.completions.create(model="my-local-model", messages=MESSAGES)
    assert resp.model == "my-local-model"


def test_tool_call(server, client):
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS)
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "celsius"}
    assert server.last_request.body["tools"][0]["function"]["name"] == "get_weather"

    # after the tool result comes back, the model answers in text
    follow = client.chat.completions.create(
        model="gpt-4o-mini",
        tools=TOOLS,
        messages=[
            *MESSAGES,
            {"role": "assistant", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert follow.choices[0].finish_reason == "stop"
    assert follow.choices[0].message.content == "Hi there from fake"


def test_stream_first_chunk_delay_and_usage(server, client):
    start = time.monotonic()
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = []
    first_at = None
    for chunk in stream:
        if first_at is None:
            first_at = time.monotonic() - start
        chunks.append(chunk)
    assert first_at is not None and first_at >= 0.3
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hi there from fake"
    assert all(c.model == "gpt-4o-mini-2024-07-18" for c in chunks)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == 21
    assert chunks[-1].usage.completion_tokens == 5

    req = server.last_request
    assert req.stream
    assert req.first_chunk_offset_s is not None
    assert 0.3 <= req.first_chunk_offset_s < 0.3 + 0.25
    assert req.received_ns < req.first_chunk_sent_ns <= req.completed_ns
    # the client cannot see the first chunk before the server sent it
    assert first_at >= req.first_chunk_offset_s


def test_stream_without_usage(client):
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_stream_tool_call(server, client):
    server.config.first_chunk_delay = 0
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS, stream=True
    )
    name = ""
    args = ""
    finish = None
    for chunk in stream:
        for tc in chunk.choices[0].delta.tool_calls or []:
            name += tc.function.name or ""
            args += tc.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert name == "get_weather"
    assert json.loads(args) == {"city": "Paris", "unit": "celsius"}
    assert finish == "tool_calls"


def test_error_model(server, client):
    with pytest.raises(openai.InternalServerError) as excinfo:
        client.chat.completions.create(model="error-model", messages=MESSAGES)
    assert excinfo.value.status_code == 500
    assert excinfo.value.body["type"] == "server_error"
    assert "server had an error" in excinfo.value.body["message"]
    assert len(server.requests) == 1  # no retry with max_retries=0
    assert server.last_request.status == 500


def test_forced_error_status(server, client):
    server.force_error = 429
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def test_embeddings(server, client):
    resp = client.embeddings.create(model="text-embedding-3-small", input=["hello world", "bye"])
    assert resp.model == "text-embedding-3-small"
    assert [d.index for d in resp.data] == [0, 1]
    assert all(len(d.embedding) == 8 and all(isinstance(x, float) for x in d.embedding) for d in resp.data)
    assert resp.usage.prompt_tokens == 3 and resp.usage.total_tokens == 3
    # the same input gives the same vector, float or base64 alike
    again = client.embeddings.create(model="text-embedding-3-small", input="hello world", encoding_format="float")
    assert again.data[0].embedding == pytest.approx(resp.data[0].embedding, abs=1e-6)
    assert server.last_request.path == "/v1/embeddings"


def test_async_client_stream(server):
    import asyncio

    async def run():
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0) as ac:
            stream = await ac.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
            return [c async for c in stream]

    server.config.first_chunk_delay = 0.05
    chunks = asyncio.run(run())
    assert chunks[0].model == "gpt-4o-2024-08-06"
    assert chunks[-1].usage.total_tokens == 26


def test_records_concurrent_requests(server):
    import concurrent.futures

    server.config.first_chunk_delay = 0.6

    def one(i):
        with openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as c:
            return "".join(
                ch.choices[0].delta.content or ""
                for ch in c.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": str(i)}], stream=True
                )
            )

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(4)))
    assert results == ["Hi there from fake"] * 4
    assert time.monotonic() - start < 0.6 * 4  # served in parallel (serially it would take 2.4 s or more)
    assert sorted(r.body["messages"][0]["content"] for r in server.requests) == ["0", "1", "2", "3"]


def test_unknown_path(server, client):
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o-mini")
