"""dumps copies orjson's working buffer to the exact size: a queued item holds what it weighs."""

from __future__ import annotations

import tracemalloc

import pytest

from opentelemetry.exporter.opik import _json


@pytest.mark.skipif(not _json.using_orjson(), reason="the stdlib encoder returns exact bytes by itself")
def test_dumps_holds_no_more_than_its_bytes() -> None:
    values = [{"id": str(i), "name": "span", "input": {"q": "x" * (i % 700)}} for i in range(300)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        bodies = [_json.dumps(v) for v in values]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    text = sum(len(b) for b in bodies)
    # each body: its bytes plus a bytes object's header (33 bytes), and the list's slot; orjson's own
    # buffer (4 KiB for a small item) would make it ~1.2 MB
    assert held < text + 64 * len(bodies)
    assert all(type(b) is bytes for b in bodies)
    assert bodies[1] == b'{"id":"1","name":"span","input":{"q":"x"}}'
