"""Request compression: ISA-L when installed, zlib otherwise; both send standard gzip that Opik reads."""

from __future__ import annotations

import gzip
import json
import random
from typing import Any, Dict

import pytest
from opik_standin import OpikStandin

from opentelemetry.exporter.opik import _compress
from opentelemetry.exporter.opik._compress import gzip_compressor

isal_zlib = pytest.importorskip("isal.isal_zlib", reason="the test extra installs isal")


def _body(n: int = 300) -> bytes:
    rng = random.Random(5)
    words = ["weather", "Paris", "tool", "assistant", "rain", "celsius", "sk", "the", "of", "chat"]
    items = [
        {"id": f"{rng.getrandbits(128):032x}", "input": {"messages": [{"role": "user", "content": " ".join(rng.choices(words, k=80))}]}}
        for _ in range(n)
    ]
    return json.dumps({"spans": items}).encode()


def test_the_test_environment_has_isal() -> None:
    # the other tests here compare the two backends: both must really be there
    assert _compress.using_isal()


@pytest.mark.parametrize("level", range(1, 10))
@pytest.mark.parametrize("backend", ["isal", "zlib"])
def test_every_level_round_trips_through_stdlib_gzip(level: int, backend: str) -> None:
    body = _body()
    out = gzip_compressor(level, isal=isal_zlib if backend == "isal" else False)(body)
    assert out[:2] == b"\x1f\x8b"  # a gzip member, as Content-Encoding: gzip promises
    assert gzip.decompress(out) == body
    assert len(out) < len(body) // 3
    assert gzip_compressor(level, isal=isal_zlib if backend == "isal" else False)(b"") != b""


def test_low_levels_use_isal_and_high_levels_zlib() -> None:
    body = _body()
    with_isal = gzip_compressor(1, isal=isal_zlib)(body)
    without = gzip_compressor(1, isal=False)(body)
    # ISA-L's stream differs from zlib's: the backend really changed
    assert with_isal != without
    # levels 4-9 ask for size over CPU: zlib at that level, whatever is installed
    assert gzip_compressor(6, isal=isal_zlib)(body) == gzip_compressor(6, isal=False)(body)
    # and ISA-L's level-2 stream is no larger than zlib's level 1
    assert len(with_isal) <= len(without)


def _export(opik: OpikStandin, provider_for: Any) -> Dict[str, Dict[str, Any]]:
    provider, exporter = provider_for(project_name="gz")
    tracer = provider.get_tracer("gz")
    with tracer.start_as_current_span("agent", attributes={"input.value": "hello " * 200}):
        for i in range(20):
            with tracer.start_as_current_span(f"step {i}", attributes={"output.value": f"answer {i} " * 50}):
                pass
    provider.force_flush()
    assert exporter.force_flush(5000)
    opik.wait_for_counts(traces=1, spans=21)
    posts = [r for r in opik.requests if r.method == "POST" and r.path.endswith("/batch")]
    assert posts and all(r.headers.get("content-encoding") == "gzip" for r in posts)
    assert all(r.body_size < r.decoded_size for r in posts)
    return {s["name"]: {k: v for k, v in s.items() if k not in ("id", "trace_id", "parent_span_id", "start_time", "end_time", "last_updated_at", "metadata")} for s in opik.spans_by_id().values()}


@pytest.mark.parametrize("backend", ["isal", "zlib"])
def test_exporter_sends_gzip_the_server_accepts(opik: OpikStandin, provider_for: Any, monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    if backend == "zlib":
        monkeypatch.setattr(_compress, "_isal", None)
    rows = _export(opik, provider_for)
    assert rows["agent"]["input"] == {"value": "hello " * 200}
    assert rows["step 7"]["output"] == {"value": "answer 7 " * 50}
    assert len(rows) == 21
