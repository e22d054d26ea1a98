"""OTLP/JSON hardening (issue 18 item 5): a value no parser reads costs its span only, big integers
keep their digits, NaN/Infinity get a true message, and a request is parsed within its memory budget.

The decoder alone first (both of its paths), then a real ``opik-otel serve`` fed over HTTP, with the
Opik stand-in checking what is stored.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, Iterator, List

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opik_standin import OpikStandin
from sidecar_helpers import SidecarProcess, TransportClient, wait_until

from opentelemetry.exporter.opik._otlp import (
    INTS_AS_STRINGS,
    DecodeLimits,
    RequestTooLarge,
    decode_json,
)
from opentelemetry.exporter.opik._otlp_json import JsonTooLarge
from opentelemetry.exporter.opik._otlp_json_parse import MAX_INT_DIGITS, estimate_memory

TEN_40 = 10**40
HTTP = TransportClient(timeout=120)
JSON = {"Content-Type": "application/json"}


# -- building OTLP/JSON text (deep values cannot go through json.dumps: it recurses) ----------


def _span(i: int, name: str, attrs: str = "[]", trace: int = 0xABC) -> str:
    """One OTLP/JSON span; ``attrs`` is the JSON text of its attributes array, put in as it is."""
    head = json.dumps({"traceId": f"{trace:032x}", "spanId": f"{i + 1:016x}", "name": name, "startTimeUnixNano": "1700000000000000000",
                       "endTimeUnixNano": "1700000001000000000"})
    return head[:-1] + ', "attributes": ' + attrs + "}"


def _attr(key: str, value: str) -> str:
    """``{"key": key, "value": <value text>}``."""
    return '{"key": ' + json.dumps(key) + ', "value": ' + value + "}"


def _request(*spans: str, resource: str = '[{"key": "service.name", "value": {"stringValue": "json-tests"}}]') -> str:
    return ('{"resourceSpans": [{"resource": {"attributes": ' + resource + '}, "scopeSpans": [{"scope": {"name": "json.tests"}, "spans": ['
            + ", ".join(spans) + "]}]}]}")


def _deep(levels: int) -> str:
    """An AnyValue of ``levels`` nested arrayValues (three JSON levels each)."""
    return '{"arrayValue": {"values": [' * levels + '{"stringValue": "bottom"}' + "]}}" * levels


def _hostile_request() -> str:
    """The issue's request: one 5,000-digit integer, one 1,000-deep value, one valid span."""
    return _request(
        _span(0, "huge-int", "[" + _attr("n", '{"intValue": ' + "7" * 5000 + "}") + "]"),
        _span(1, "deep", "[" + _attr("d", _deep(1000)) + "]"),
        _span(2, "valid", "[" + _attr("ok", '{"stringValue": "yes"}') + "]"),
    )


def _names(batch: Any) -> List[str]:
    return [r.name for r in batch.records]


# -- the decoder ---------------------------------------------------------------------------------------


def test_a_5000_digit_integer_and_a_1000_deep_value_reject_only_their_spans() -> None:
    batch = decode_json(_hostile_request().encode())
    assert _names(batch) == ["valid"] and batch.span_count == 3 and batch.rejected == 2
    message = batch.message()
    assert "2 of 3 spans could not be decoded" in message
    assert "spans[0] ('huge-int'): an integer of 5000 digits" in message and f"at most {MAX_INT_DIGITS}" in message
    assert "spans[1] ('deep'): nested 3004 levels deep" in message
    assert batch.records[0].attributes == {"ok": "yes"}


@pytest.mark.parametrize(
    "attrs, reason",
    [
        ("[" + _attr("n", '{"intValue": ' + "9" * (MAX_INT_DIGITS + 1) + "}") + "]", f"an integer of {MAX_INT_DIGITS + 1} digits"),
        ("[" + _attr("n", '{"intValue": "' + "9" * 5000 + '"}') + "]", "intValue must be a decimal integer string"),
        ("[" + _attr("d", '{"kvlistValue": {"values": [' * 400 + "]}}" * 400) + "]", "nested 1203 levels deep"),
        ("[" + _attr("n", '{"intValue": NaN}') + "]", "intValue must be an integer, got the number nan"),
        ("[" + _attr("n", '{"intValue": 1.5}') + "]", "intValue must be an integer, got the number 1.5"),
        ("[" + _attr("n", '{"intValue": 1e40}') + "]", "intValue must be an integer, got the number 1e+40"),
        ('[{"key": "k", "value": {"stringValue": "x" "y"}}]', "not valid JSON"),
    ],
    ids=["digits-number", "digits-string", "deep-kvlist", "nan-int", "fraction", "float-beyond-64-bits", "broken-span"],
)
def test_one_bad_value_rejects_its_span_alone(attrs: str, reason: str) -> None:
    body = _request(_span(0, "before"), _span(1, "bad", attrs), _span(2, "after"))
    batch = decode_json(body)
    assert _names(batch) == ["before", "after"] and batch.rejected == 1, batch.message()
    assert "spans[1]" in batch.reasons[0] and reason in batch.reasons[0], batch.reasons


def test_a_value_deep_but_parseable_is_cut_not_rejected() -> None:
    """Within the parser's 1,024 levels the usual max_depth cut applies, on either path."""
    spans = (_span(0, "deep-but-ok", "[" + _attr("d", _deep(300)) + "]"), _span(1, "plain"))
    for body in (_request(*spans), _request(*spans, _span(2, "nan-forces-span-by-span", "[" + _attr("x", '{"doubleValue": NaN}') + "]"))):
        batch = decode_json(body)
        assert batch.rejected == 0 and batch.depth_cut == 1
        value = batch.records[0].attributes["d"]
        for _ in range(32):
            (value,) = value
        assert value == "[nested too deep]"


@pytest.mark.parametrize("force_span_by_span", [False, True], ids=["one-parse", "span-by-span"])
def test_integers_beyond_64_bits_keep_their_digits_as_flagged_strings(force_span_by_span: bool) -> None:
    attrs = ",".join([
        _attr("big", '{"intValue": ' + str(TEN_40) + "}"),
        _attr("big_str", '{"intValue": "' + str(TEN_40) + '"}'),
        _attr("neg", '{"intValue": ' + str(-TEN_40) + "}"),
        _attr("two63", '{"intValue": ' + str(2**63) + "}"),
        _attr("max", '{"intValue": ' + str(2**63 - 1) + "}"),
        _attr("min", '{"intValue": "' + str(-(2**63)) + '"}'),
        _attr("nested", '{"arrayValue": {"values": [{"intValue": ' + str(TEN_40 + 1) + "}]}}"),
    ])
    event = '[{"name": "e", "timeUnixNano": "1700000000500000000", "attributes": [' + _attr("ev", '{"intValue": ' + str(2**70) + "}") + "]}]"
    span = _span(0, "numbers", "[" + attrs + "]")[:-1] + ', "events": ' + event + "}"
    extra = [_span(1, "nan", "[" + _attr("x", '{"doubleValue": NaN}') + "]")] if force_span_by_span else []
    resource = "[" + _attr("res.big", '{"intValue": ' + str(2**64) + "}") + "]"
    batch = decode_json(_request(span, *extra, resource=resource).encode())
    assert batch.rejected == 0, batch.message()
    (r, *_) = batch.records
    a = r.attributes
    assert a["big"] == a["big_str"] == "10000000000000000000000000000000000000000"
    assert a["neg"] == "-10000000000000000000000000000000000000000" and a["two63"] == "9223372036854775808"
    assert a["max"] == 2**63 - 1 and a["min"] == -(2**63)  # int64 stays an int
    assert a["nested"] == (str(TEN_40 + 1),) and r.events[0].attributes["ev"] == str(2**70)
    assert r.resource["res.big"] == str(2**64)
    assert a[INTS_AS_STRINGS] == ("resource: res.big", "big", "big_str", "neg", "two63", "nested", "event 'e': ev")
    if force_span_by_span:  # the resource's integer is listed in each of its spans
        assert batch.records[1].attributes[INTS_AS_STRINGS] == ("resource: res.big",)
    assert f"integers beyond 64 bits in {len(batch.records)} spans were kept as their decimal strings" in batch.message()


def test_unsigned_fields_must_fit_64_bits() -> None:
    span = _span(0, "late")[:-1] + ', "endTimeUnixNano": ' + str(2**64) + "}"
    batch = decode_json(_request(span, _span(1, "ok")))
    assert _names(batch) == ["ok"] and "endTimeUnixNano must be an unsigned 64-bit integer" in batch.reasons[0]


def test_nan_and_infinity_strings_are_valid_doubles_without_a_warning() -> None:
    attrs = ",".join(_attr(k, '{"doubleValue": "' + k + '"}') for k in ("NaN", "Infinity", "-Infinity"))
    batch = decode_json(_request(_span(0, "words", "[" + attrs + "]")))
    (r,) = batch.records
    assert math.isnan(r.attributes["NaN"]) and r.attributes["Infinity"] == math.inf and r.attributes["-Infinity"] == -math.inf
    assert batch.message() == ""


def test_nan_and_infinity_tokens_are_read_with_a_message_that_says_so() -> None:
    attrs = ",".join([_attr("nan", '{"doubleValue": NaN}'), _attr("inf", '{"doubleValue": Infinity}'),
                      _attr("ninf", '{"doubleValue": -Infinity}'), _attr("huge", '{"doubleValue": 1e400}')])
    batch = decode_json(_request(_span(0, "tokens", "[" + attrs + "]"), _span(1, "plain")).encode())
    assert _names(batch) == ["tokens", "plain"] and batch.rejected == 0
    a = batch.records[0].attributes
    assert math.isnan(a["nan"]) and a["inf"] == a["huge"] == math.inf and a["ninf"] == -math.inf
    message = batch.message()
    assert message.startswith("4 numbers were NaN, Infinity or beyond a double's range") and '"NaN", "Infinity", "-Infinity"' in message
    assert "UTF-8" not in message  # what the old fallback said


def test_span_by_span_gives_the_same_records_as_one_parse() -> None:
    spans = [_span(i, f"s{i}", "[" + ",".join(_attr(f"k{j}", f'{{"stringValue": "v{j}"}}') for j in range(40)) + "]") for i in range(300)]
    body = _request(*spans).encode()
    whole = decode_json(body)
    # a budget one parse exceeds but the text and its records fit: the span-by-span path
    budget = (estimate_memory(body) + 12 * len(body)) // 2
    assert budget < estimate_memory(body)
    split = decode_json(body, DecodeLimits(json_memory=budget))
    assert [(r.span_id, r.name, r.attributes) for r in split.records] == [(r.span_id, r.name, r.attributes) for r in whole.records]
    assert split.rejected == whole.rejected == 0


def test_a_request_beyond_the_budget_is_refused_before_it_is_parsed() -> None:
    body = _request(*[_span(i, f"s{i}", "[" + ",".join("{}" for _ in range(2000)) + "]") for i in range(100)]).encode()
    with pytest.raises(JsonTooLarge) as err:
        decode_json(body, DecodeLimits(json_memory=4 * len(body)))
    assert isinstance(err.value, RequestTooLarge)
    assert "MiB" in str(err.value) and "send smaller batches" in str(err.value)
    # with room for the text and the records (not for one parse) it is decoded span by span
    assert decode_json(body, DecodeLimits(json_memory=8 * len(body))).rejected == 0


def test_a_broken_structure_around_the_spans_is_still_undecodable() -> None:
    from opentelemetry.exporter.opik._otlp import DecodeError

    # a string that never ends swallows what follows: where its span ends cannot be known
    unterminated = _request(_span(0, "a", '[{"key": "k", "value": {"stringValue": "unterminated}}]'), _span(1, "b"))
    for body in ('{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": NaN}]}]}', '{"resourceSpans": [}', '{"a": NaN} trailing', "NaN", unterminated):
        with pytest.raises(DecodeError):
            decode_json(body)


# -- a real sidecar ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def opik_mod() -> Iterator[OpikStandin]:
    with OpikStandin() as standin:
        yield standin


@pytest.fixture(scope="module")
def sidecar(opik_mod: OpikStandin) -> Iterator[SidecarProcess]:
    with SidecarProcess(opik_mod.url, "--max-body-bytes", str(64 * 2**20), grpc=False) as proc:
        yield proc


@pytest.fixture
def opik(opik_mod: OpikStandin, sidecar: SidecarProcess) -> OpikStandin:
    sidecar.drain(60)
    opik_mod.clear()
    return opik_mod


def _post(sidecar: SidecarProcess, body: str) -> httpx.Response:
    return HTTP.post(sidecar.traces_url, content=body.encode(), headers=JSON)


def _stored(opik: OpikStandin, name: str, timeout: float = 15.0) -> Dict[str, Any]:
    found: List[Dict[str, Any]] = []

    def seen() -> bool:
        found[:] = [row for row in opik.spans.values() if row.get("name") == name]
        return bool(found)

    wait_until(seen, timeout, f"span {name!r} stored")
    return found[0]


def _status(pid: int, field: str) -> int:
    """A /proc/<pid>/status field in bytes (VmHWM, VmRSS)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)  # pragma: no cover


def test_sidecar_stores_the_valid_span_and_names_the_rejected_ones(sidecar: SidecarProcess, opik: OpikStandin) -> None:
    r = _post(sidecar, _hostile_request())
    assert r.status_code == 200, r.text
    partial = r.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "2"
    assert "('huge-int'): an integer of 5000 digits" in partial["errorMessage"]
    assert "('deep'): nested 3004 levels deep" in partial["errorMessage"]
    row = _stored(opik, "valid")
    assert row["metadata"]["ok"] == "yes"
    sidecar.drain(30)
    assert sorted(row["name"] for row in opik.spans.values()) == ["valid"]


def test_sidecar_stores_ten_to_the_40_exactly(sidecar: SidecarProcess, opik: OpikStandin) -> None:
    attrs = ",".join([_attr("big", '{"intValue": ' + str(TEN_40) + "}"), _attr("big_str", '{"intValue": "' + str(TEN_40) + '"}'),
                      _attr("small", '{"intValue": "42"}')])
    r = _post(sidecar, _request(_span(0, "ten-to-the-40", "[" + attrs + "]")))
    assert r.status_code == 200, r.text
    assert r.json()["partialSuccess"].get("rejectedSpans", "0") == "0"
    assert INTS_AS_STRINGS in r.json()["partialSuccess"]["errorMessage"]
    md = _stored(opik, "ten-to-the-40")["metadata"]
    assert md["big"] == md["big_str"] == "10000000000000000000000000000000000000000"
    assert md[INTS_AS_STRINGS] == ["big", "big_str"] and md["small"] == 42


def test_sidecar_nan_and_infinity(sidecar: SidecarProcess, opik: OpikStandin) -> None:
    words = ",".join(_attr(k, '{"doubleValue": "' + k + '"}') for k in ("NaN", "Infinity", "-Infinity"))
    r = _post(sidecar, _request(_span(0, "nan-words", "[" + words + "]")))
    assert r.status_code == 200 and r.content == b"{}", r.text  # valid OTLP/JSON: a full success
    tokens = ",".join([_attr("nan", '{"doubleValue": NaN}'), _attr("inf", '{"doubleValue": Infinity}'), _attr("one", '{"doubleValue": 1.5}')])
    r = _post(sidecar, _request(_span(1, "nan-tokens", "[" + tokens + "]"), _span(2, "nan-int", "[" + _attr("n", '{"intValue": NaN}') + "]")))
    assert r.status_code == 200, r.text
    partial = r.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "spans[1] ('nan-int'): intValue must be an integer, got the number nan" in partial["errorMessage"]
    assert "3 numbers were NaN, Infinity or beyond a double's range" in partial["errorMessage"]
    # Opik's JSON has no NaN/Infinity: those values arrive as null, the rest of the span as sent
    for name in ("nan-words", "nan-tokens"):
        md = _stored(opik, name)["metadata"]
        assert all(md[k] is None for k in md if k in ("NaN", "Infinity", "-Infinity", "nan", "inf")), md
    assert _stored(opik, "nan-tokens")["metadata"]["one"] == 1.5


def _genai_span(i: int, trace: int) -> str:
    """About 1.4 KB of a GenAI chat span, as an OTLP/JSON sender writes it."""
    text = f"question {i}: " + "the weather in paris is mild today with light rain expected in the evening " * 8
    attrs = ",".join([
        _attr("gen_ai.operation.name", '{"stringValue": "chat"}'),
        _attr("gen_ai.request.model", '{"stringValue": "gpt-4o-mini"}'),
        _attr("gen_ai.provider.name", '{"stringValue": "openai"}'),
        _attr("gen_ai.usage.input_tokens", f'{{"intValue": "{100 + i % 50}"}}'),
        _attr("gen_ai.usage.output_tokens", f'{{"intValue": "{20 + i % 7}"}}'),
        _attr("gen_ai.input.messages", json.dumps({"stringValue": json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}])})),
        _attr("gen_ai.output.messages", json.dumps({"stringValue": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": text[:300]}]}])})),
    ])
    return _span(i, f"chat {i}", "[" + attrs + "]", trace=trace)


def test_sidecar_rss_stays_under_the_documented_bound_for_a_19_mb_request(sidecar: SidecarProcess, opik: OpikStandin) -> None:
    body = _request(*[_genai_span(i, trace=0x10000 + i // 10) for i in range(11_000)])
    size = len(body.encode())
    assert 18_000_000 < size < 21_000_000
    baseline = _status(sidecar.pid, "VmRSS")
    r = _post(sidecar, body)
    assert r.status_code == 200 and r.content == b"{}", r.text[:300]
    opik.wait_for_counts(spans=11_000, timeout=180)
    hwm = _status(sidecar.pid, "VmHWM")
    # docs/cli.md: the body twice (as read, and joined), at most the 256 MiB JSON budget, and the 64 MiB queue
    bound = 2 * size + 256 * 2**20 + 64 * 2**20
    assert hwm - baseline < bound, (hwm - baseline, bound)


def test_sidecar_refuses_a_request_beyond_the_budget_with_413_before_parsing(opik_mod: OpikStandin) -> None:
    # ~48 MB of small attributes: one parse would take ~15x its size, span by span (text + records) ~5.5x: both over 256 MiB
    attrs = "[" + ",".join(_attr(f"k{j}", f'{{"stringValue": "v{j}"}}') for j in range(200)) + "]"
    body = _request(*[_span(i, f"s{i}", attrs) for i in range(5_400)]).encode()
    size = len(body)
    assert size > 46 * 2**20
    with SidecarProcess(opik_mod.url, "--max-body-bytes", str(64 * 2**20), grpc=False) as fresh:  # its own high-water mark
        before = _status(fresh.pid, "VmHWM")
        r = HTTP.post(fresh.traces_url, content=body, headers=JSON)
        assert r.status_code == 413, r.text[:300]
        assert "MiB" in r.json()["message"] and "send smaller batches" in r.json()["message"]
        grown = _status(fresh.pid, "VmHWM") - before
        assert grown < 4 * size, grown  # the body as read and joined; a parse would have taken ~15x
        r = HTTP.post(fresh.traces_url, content=_request(_span(0, "after-the-refusal")).encode(), headers=JSON)
        assert r.status_code == 200 and r.content == b"{}"
        _stored(opik_mod, "after-the-refusal")


# -- opik-otel import reads OTLP/JSON lines the same way ----------------------------------------------


def test_import_keeps_a_bad_value_to_its_span_and_big_integers_exact(tmp_path: Any, capsys: pytest.CaptureFixture) -> None:
    from opentelemetry.exporter.opik._cli import main

    lines = [
        _hostile_request(),  # line 1: orjson refuses it (5,000 digits); it used to end the import here
        _request(_span(10, "ten-to-the-40", "[" + _attr("big", '{"intValue": ' + str(TEN_40) + "}") + "]", trace=0xDEF)),
        _request(_span(11, "last-line", trace=0x123)),
    ]
    path = tmp_path / "collector.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with OpikStandin() as standin:
        code = main(["import", str(path), "--url", standin.url, "--progress", "none"])
        err = capsys.readouterr().err
        assert code == 1, err  # two spans could not be decoded
        assert "collector.jsonl:1: resourceSpans[0].scopeSpans[0].spans[0] ('huge-int'): an integer of 5000 digits" in err
        stored = {row["name"]: row for row in standin.spans_by_id().values()}
        assert set(stored) == {"valid", "ten-to-the-40", "last-line"}
        md = stored["ten-to-the-40"]["metadata"]
        assert md["big"] == "10000000000000000000000000000000000000000" and md[INTS_AS_STRINGS] == ["big"]


def test_logs_a_bad_value_costs_its_log_record_only() -> None:
    from opentelemetry.exporter.opik._otlp_logs import decode_logs_json

    def record(i: int, body: str) -> str:
        return json.dumps({"traceId": f"{0xABC:032x}", "spanId": f"{i + 1:016x}", "timeUnixNano": "1700000000000000000"})[:-1] + ', "body": ' + body + "}"

    records = [record(0, '{"intValue": ' + "7" * 5000 + "}"), record(1, _deep(1000)), record(2, '{"stringValue": "kept"}'),
               record(3, '{"doubleValue": NaN}')]
    body = '{"resourceLogs": [{"scopeLogs": [{"logRecords": [' + ", ".join(records) + "]}]}]}"
    decoded = decode_logs_json(body.encode())
    assert [r[5] for r in decoded.records][0] == "kept" and math.isnan(decoded.records[1][5])
    assert decoded.rejected == 2
    assert "an integer of 5000 digits" in decoded.message() and "nested 3002 levels deep" in decoded.message()


_GOOD_TEXT = _request(_span(0, "a", "[" + _attr("k", '{"arrayValue": {"values": [{"intValue": "1"}, {"doubleValue": 2.5}]}}') + "]"),
                      _span(1, "b", "[" + _attr("s", '{"stringValue": "x, [y] {z} \\\\\\" w"}') + "]"), _span(2, "c"))
_JUNK = ["NaN", "-Infinity", "7" * 4400, str(TEN_40), "1e400", "[[[[", "]]", "{", "}", '"', ",", ":", "\\ud800", "\xff", "null", "[" * 1100]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=len(_GOOD_TEXT)), st.sampled_from(_JUNK)), min_size=1, max_size=3))
def test_junk_anywhere_in_the_text_decodes_span_by_span_or_fails_cleanly(edits: List[Any]) -> None:
    """Whatever is inserted wherever: a DecodeError, or every span decoded or rejected (never an exception)."""
    from opentelemetry.exporter.opik._otlp import DecodeError

    text = _GOOD_TEXT
    for at, junk in sorted(edits, reverse=True):
        text = text[:at] + junk + text[at:]
    for body in (text, text.encode("utf-8", "surrogatepass")):
        try:
            batch = decode_json(body)
        except DecodeError:
            continue
        assert batch.rejected + len(batch.records) == batch.span_count


def test_without_orjson_the_stdlib_gives_the_same_answers() -> None:
    """The stdlib-only install (no ``fast`` extra): same rejections, same exact integers, same NaN message."""
    import subprocess
    import sys

    body = _request(
        _span(0, "huge-int", "[" + _attr("n", '{"intValue": ' + "7" * 5000 + "}") + "]"),
        _span(1, "deep", "[" + _attr("d", _deep(1000)) + "]"),
        _span(2, "big", "[" + _attr("b", '{"intValue": ' + str(TEN_40) + "}") + "]"),
        _span(3, "nan", "[" + _attr("x", '{"doubleValue": NaN}') + "]"),
    )
    script = (
        "import sys, json\n"
        "sys.modules['orjson'] = None\n"
        "from opentelemetry.exporter.opik._json import using_orjson\n"
        "from opentelemetry.exporter.opik._otlp import decode_json\n"
        "b = decode_json(sys.stdin.buffer.read())\n"
        "print(json.dumps({'orjson': using_orjson(), 'names': [r.name for r in b.records], 'reasons': b.reasons,\n"
        "                  'big': b.records[0].attributes.get('b'), 'message': b.message()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], input=body.encode(), capture_output=True, timeout=120, check=True)
    got = json.loads(done.stdout)
    assert got["orjson"] is False
    assert got["names"] == ["big", "nan"] and got["big"] == str(TEN_40)
    assert "('huge-int'): an integer of 5000 digits" in got["reasons"][0] and "('deep'): nested 3004 levels deep" in got["reasons"][1]
    assert "1 numbers were NaN, Infinity" in got["message"]
