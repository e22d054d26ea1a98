"""Both JSON encoders (orjson from the ``fast`` extra, the stdlib fallback) accept every OTel value alike."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import types
from typing import Any, Iterator

import pytest

from opentelemetry.exporter.opik import _json as fast_json

pytest.importorskip("orjson", reason="the test extra installs orjson")


def _load_without_orjson() -> types.ModuleType:
    spec = importlib.util.find_spec("opentelemetry.exporter.opik._json")
    assert spec is not None and spec.loader is not None
    saved = sys.modules.get("orjson")
    sys.modules["orjson"] = None  # type: ignore[assignment]  # import orjson -> ImportError
    try:
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        if saved is None:
            del sys.modules["orjson"]
        else:
            sys.modules["orjson"] = saved
    return mod


stdlib_json = _load_without_orjson()


@pytest.fixture(params=["orjson", "stdlib"])
def j(request: pytest.FixtureRequest) -> Iterator[types.ModuleType]:
    mod = fast_json if request.param == "orjson" else stdlib_json
    assert mod.using_orjson() == (request.param == "orjson")
    yield mod


CASES = [
    {"a": 1, "b": [1, 2.5, True, None], "c": {"d": "é ✓ 🙂"}},
    {"tuple": ("x", "y"), "nested": [("a", 1)]},
    {1: "int key", 2.5: "float key", None: "none key"},  # non-string keys become strings
    {"nan": float("nan"), "inf": float("inf"), "ninf": -float("inf")},
    {"bytes": b"caf\xc3\xa9", "bad": b"\xff\xfe"},
    {"surrogate": "a\ud800b"},
    {"proxy": types.MappingProxyType({"k": "v"})},
    {"set": frozenset(["only"])},
]


@pytest.mark.parametrize("value", CASES, ids=[str(i) for i in range(len(CASES))])
def test_every_otel_value_encodes_and_both_encoders_agree(j: types.ModuleType, value: Any) -> None:
    out = j.dumps(value)
    assert isinstance(out, bytes)
    decoded = json.loads(out)
    assert decoded == json.loads(stdlib_json.dumps(value)) == json.loads(fast_json.dumps(value))


def test_sanitized_values(j: types.ModuleType) -> None:
    assert json.loads(j.dumps({1: "a", None: "b", False: "c", 2.5: "d"})) == {"1": "a", "null": "b", "false": "c", "2.5": "d"}
    # beyond 64 bits: a string with orjson (it has no such numbers), the exact number with the stdlib
    huge = json.loads(j.dumps({"v": 2**70, "ok": 2**62}))
    assert huge == ({"v": str(2**70), "ok": 2**62} if j.using_orjson() else {"v": 2**70, "ok": 2**62})
    assert json.loads(j.dumps({"v": math.nan})) == {"v": None}
    assert json.loads(j.dumps({"v": b"\xff"})) == {"v": "\ufffd"}
    assert json.loads(j.dumps({"v": "a\ud800b"})) == {"v": "a?b"}
    deep: Any = "leaf"
    for _ in range(5000):  # past both encoders' own limits: sanitize cuts it at 64 levels
        deep = [deep]
    text = j.dumps(deep).decode()
    assert text.startswith('[' * 64 + '"[nested too deep]"]')


def test_plain_values_are_compact_utf8(j: types.ModuleType) -> None:
    assert j.dumps({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()


def test_loads_and_lenient_parsing(j: types.ModuleType) -> None:
    assert j.loads(b'{"a":1}') == {"a": 1}
    with pytest.raises(ValueError):
        j.loads("{not json")
    assert j.parse_json_like('[{"role":"user"}]') == ([{"role": "user"}], True)
    assert j.parse_json_like('"{\\"a\\": 1}"') == ({"a": 1}, True)  # one level of double encoding unwrapped
    assert j.parse_json_like("plain text") == ("plain text", False)
    assert j.parse_json_like("{broken") == ("{broken", False)
