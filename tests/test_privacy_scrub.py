"""Credential scrubbing: on by default, key and value rules, and no secret in any log line."""

from __future__ import annotations

import json
import logging
import socket
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from opentelemetry.exporter.opik import ConfigError, resolve_settings
from opentelemetry.exporter.opik._privacy import Scrubber, marker

try:
    from tests.conftest_privacy import make_exporter, opik, provider_for, sent_text, spans_by_name  # noqa: F401
    from tests.opik_standin import Fault, OpikStandin
except ImportError:
    from conftest_privacy import make_exporter, opik, provider_for, sent_text, spans_by_name  # type: ignore[no-redef] # noqa: F401
    from opik_standin import Fault, OpikStandin  # type: ignore[no-redef]

OPENAI_KEY = "sk-proj-Zq8xV2mN4pL7rT1yW9cB3dF6hJ0kS5aE"
ANTHROPIC_KEY = "sk-ant-api03-Hk2Lm9Qz4Rt7Wx1Yb5Nc8Vd3Fg6Jp0Ss"
BEARER = "Bearer tok_9f8e7d6c5b4a3f2e1d0c9b8a"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
AWS_KEY = "AKIAIOSFODNN7EXAMPLQ"
PASSWORD = "hunter2-correct-horse"
COOKIE = "session=8f14e45fceea167a5a36dedd4bea2543"
OPIK_KEY = "Xk3Jq9Lm2Pz7Vb4Nc8Rt1Wy6"
SECRETS = [OPENAI_KEY, ANTHROPIC_KEY, "tok_9f8e7d6c5b4a3f2e1d0c9b8a", JWT, AWS_KEY, PASSWORD, COOKIE, OPIK_KEY]


# -- rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, label",
    [
        ("Authorization", "authorization"),
        ("http.request.header.authorization", "authorization"),
        ("proxy-authorization", "authorization"),
        ("x-api-key", "api key"),
        ("apiKey", "api key"),
        ("OPENAI_API_KEY", "api key"),
        ("client_secret", "secret"),
        ("aws_secret_access_key", "secret"),
        ("db.password", "password"),
        ("passwd", "password"),
        ("access_token", "token"),
        ("refreshToken", "token"),
        ("id_token", "token"),
        ("http.request.header.cookie", "cookie"),
        ("set-cookie", "cookie"),
        ("sessionToken", "session key"),
        ("private_key", "private key"),
        ("credentials", "credential"),
    ],
)
def test_keys_that_name_a_secret(key: str, label: str) -> None:
    cls = Scrubber().classify(key)
    assert cls is not None and cls.strong and cls.label == label


@pytest.mark.parametrize(
    "key",
    [
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "max_tokens",
        "gen_ai.request.max_tokens",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "llm.token_count.prompt",
        "time_to_first_token_ms",
        "tokenizer",
        "author",
        "session.id",
        "session_id",
        "role",
        "content",
        "keywords",
    ],
)
def test_ordinary_keys_are_left_alone(key: str) -> None:
    assert Scrubber().classify(key) is None


def test_weak_words_only_take_opaque_values() -> None:
    from opentelemetry.exporter.opik._privacy._scrub import looks_opaque

    cls = Scrubber().classify("token")
    assert cls is not None and not cls.strong
    assert not looks_opaque("Hello")  # a logprobs token
    assert looks_opaque("a8f5f167f44f4964e6c998dee827110c")


@pytest.mark.parametrize(
    "text, label",
    [
        (f"use {OPENAI_KEY} now", "api key"),
        (f"key={ANTHROPIC_KEY}", "anthropic key"),
        (f"Authorization: {BEARER}", "bearer token"),
        (f"jwt {JWT}", "jwt"),
        (f"aws {AWS_KEY} ok", "aws key"),
        ("gh ghp_16C7e42F292c6912E7710c838347Ae178B4a done", "github token"),
        ("AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW", "google api key"),
        ("xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack token"),
        ("hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "huggingface token"),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "api key"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM\n-----END RSA PRIVATE KEY-----", "private key"),
    ],
)
def test_values_that_look_like_a_secret(text: str, label: str) -> None:
    out = Scrubber().scrub_str(text)
    assert marker(label) in out
    for s in SECRETS + ["ghp_16C7e42F292c6912E7710c838347Ae178B4a", "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM"]:
        assert s not in out


def test_url_password_keeps_the_rest_of_the_url() -> None:
    out = Scrubber().scrub_str(f"postgres://app:{PASSWORD}@db.internal:5432/orders")
    assert out == f"postgres://app:{marker('password')}@db.internal:5432/orders"


@pytest.mark.parametrize(
    "text",
    [
        "chatcmpl-AbCdEf0123456789xyzQRS",
        "msg_01XFDUDYJgAACzvnptvVoYEL",
        "0b4e7a1c-9f3d-4e2b-8a6c-5d7f9e1b3a2c",
        "task-abcdefghij1234567890ABCDEFGH",
        "The quick brown fox jumps over the lazy dog; internationalization matters.",
        "https://api.openai.com/v1/chat/completions",
        "Tokens: 1234567890123456 were used",
    ],
)
def test_ordinary_values_are_left_alone(text: str) -> None:
    sc = Scrubber()
    assert sc.scrub_str(text) is text
    assert not sc.any_might_hold_secret([text]) or sc.scrub_str(text) is text


def test_own_key_without_a_long_run_is_still_found() -> None:
    sc = Scrubber(own_secrets=["ab-12-cd-34-ef"])
    assert sc.scrub_str("the key is ab-12-cd-34-ef, really") == f"the key is {marker('opik api key')}, really"


# -- end to end: SDK spans -> exporter -> HTTP -> stand-in --------------------------


def _emit_secret_spans(tp: Any) -> None:
    tracer = tp.get_tracer("privacy.tests")
    with tracer.start_as_current_span("request", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.request.header.authorization", (BEARER,))
        root.set_attribute("http.request.header.cookie", (COOKIE,))
        root.set_attribute("db.connection_string", f"postgres://app:{PASSWORD}@db:5432/x")
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as llm:
            llm.set_attribute("gen_ai.operation.name", "chat")
            llm.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            llm.set_attribute("gen_ai.usage.input_tokens", 12)
            llm.set_attribute("gen_ai.usage.output_tokens", 7)
            tool_args = json.dumps({"api_key": OPENAI_KEY, "aws": AWS_KEY, "city": "Paris"})
            llm.set_attribute(
                "gen_ai.input.messages",
                json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"call the weather tool with {tool_args}"}]}]),
            )
            llm.set_attribute(
                "gen_ai.output.messages",
                json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": f"Your session token is {JWT}"}]}]),
            )
            llm.set_attribute("llm.invocation_parameters", json.dumps({"temperature": 0.1, "api_key": ANTHROPIC_KEY}))
            llm.set_attribute("note", f"sent with {OPIK_KEY}")
        with tracer.start_as_current_span("failing call") as bad:
            try:
                raise PermissionError(f"login refused for password={PASSWORD} with key {OPENAI_KEY}")
            except PermissionError as exc:
                bad.record_exception(exc)
                bad.set_status(Status(StatusCode.ERROR, str(exc)))


def test_secrets_never_reach_opik_but_markers_do(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with OpikStandin(api_key=OPIK_KEY) as opik:
        exporter = make_exporter(opik, api_key=OPIK_KEY)
        tp = provider_for(exporter)
        _emit_secret_spans(tp)
        assert exporter.force_flush(10_000)
        opik.wait_for_counts(traces=1, spans=3)
        tp.shutdown()
        text = sent_text(opik)
        requests_seen = len(opik.requests)
    assert requests_seen >= 2
    for secret in SECRETS:
        assert secret not in text, secret
        assert secret not in caplog.text, secret
    for label in ("authorization", "cookie", "api key", "jwt", "aws key", "opik api key"):
        assert marker(label) in text, label
    assert "password" in text and marker("password") in text
    # structure survives: usage, model and ordinary content are untouched
    assert '"city": "Paris"' in text or '\\"city\\": \\"Paris\\"' in text
    assert '"prompt_tokens": 12' in text


def test_scrubbed_error_info_still_has_its_required_fields(opik: OpikStandin) -> None:
    exporter = make_exporter(opik)
    tp = provider_for(exporter)
    _emit_secret_spans(tp)
    assert exporter.force_flush(10_000)
    opik.wait_for_counts(traces=1, spans=3)
    tp.shutdown()
    err = spans_by_name(opik)["failing call"]["error_info"]
    assert err["exception_type"] == "PermissionError"
    assert PASSWORD not in json.dumps(err) and OPENAI_KEY not in json.dumps(err)
    assert marker("api key") in err["message"] and err["traceback"]


def test_switched_off_extra_patterns_and_allow_list(opik: OpikStandin) -> None:
    def one_span(**options: Any) -> str:
        opik.clear()
        exporter = make_exporter(opik, **options)
        tp = provider_for(exporter)
        with tp.get_tracer("t").start_as_current_span("s") as span:
            span.set_attribute("customer.ssn", "123-45-6789")
            span.set_attribute("x-api-key", "plain-value-1")
            span.set_attribute("text", f"key {OPENAI_KEY}")
        assert exporter.force_flush(10_000)
        opik.wait_for_counts(traces=1, spans=1)
        tp.shutdown()
        return sent_text(opik)

    default = one_span()
    assert "plain-value-1" not in default and OPENAI_KEY not in default and "123-45-6789" in default
    custom = one_span(scrub_patterns=(r"ssn$",), scrub_allow=("x-api-key",))
    assert "123-45-6789" not in custom and marker("custom pattern") in custom
    assert "plain-value-1" in custom and OPENAI_KEY not in custom
    off = one_span(scrub=False)
    assert "plain-value-1" in off and OPENAI_KEY in off


def test_scrub_settings_from_the_environment() -> None:
    s = resolve_settings({}, env={"OTEL_EXPORTER_OPIK_SCRUB": "false", "OTEL_EXPORTER_OPIK_SCRUB_PATTERNS": "ssn$,^internal\\."})
    assert s.scrub is False and s.scrub_patterns == ("ssn$", "^internal\\.")
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OPIK_SCRUB_PATTERNS"):
        resolve_settings({}, env={"OTEL_EXPORTER_OPIK_SCRUB_PATTERNS": "(unclosed"})


# -- the exporter's own key in every error path -------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _export_one(exporter: Any) -> None:
    tp = provider_for(exporter)
    with tp.get_tracer("t").start_as_current_span("span in an error path"):
        pass
    exporter.force_flush(3_000)
    tp.shutdown()


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[List[str]]:
    caplog.set_level(logging.DEBUG)
    lines: List[str] = []
    yield lines
    lines.extend(r.getMessage() + " " + (r.exc_text or "") for r in caplog.records)


def _assert_key_absent(caplog: pytest.LogCaptureFixture) -> None:
    assert caplog.records, "the error path logged nothing"
    for r in caplog.records:
        msg = r.getMessage()
        assert OPIK_KEY not in msg, msg
        if r.exc_info and r.exc_info[1] is not None:
            assert OPIK_KEY not in str(r.exc_info[1])
    assert OPIK_KEY not in caplog.text


def test_key_not_logged_on_401(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with OpikStandin(api_key="the-right-key-0000000000") as opik:
        _export_one(make_exporter(opik, api_key=OPIK_KEY))
        assert opik.count(status=401) >= 1
    _assert_key_absent(caplog)


def test_key_not_logged_on_500(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with OpikStandin(api_key=OPIK_KEY) as opik:
        opik.faults.add(Fault.respond(500, times=None, body={"message": "boom"}))
        _export_one(make_exporter(opik, api_key=OPIK_KEY))
        assert opik.count(status=500) >= 1
    _assert_key_absent(caplog)


def test_key_not_logged_when_refused(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _export_one(make_exporter(None, url=f"http://127.0.0.1:{_free_port()}/api", api_key=OPIK_KEY))
    _assert_key_absent(caplog)


def test_key_not_in_config_errors_or_repr(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as e1:
        resolve_settings({}, env={"OPIK_API_KEY": OPIK_KEY, "OTEL_EXPORTER_OPIK_TIMEOUT": "soon"})
    with pytest.raises(ConfigError) as e2:
        resolve_settings({}, env={"OPIK_API_KEY": OPIK_KEY, "OPIK_URL_OVERRIDE": f"ftp://{OPIK_KEY}"})
    with pytest.raises(ConfigError) as e3:
        resolve_settings({}, env={"OPIK_API_KEY": OPIK_KEY, "OPIK_URL_OVERRIDE": f"http://localhost:{OPIK_KEY}/api"})
    with pytest.raises(ConfigError) as e4:
        resolve_settings({"api_key": OPIK_KEY, "timeout": OPIK_KEY}, env={})
    settings = resolve_settings({"api_key": OPIK_KEY}, env={})
    errors = [str(e.value) for e in (e1, e2, e3, e4)]
    assert "OTEL_EXPORTER_OPIK_TIMEOUT" in errors[0] and "OPIK_URL_OVERRIDE" in errors[1] + errors[2]
    for text in errors + [repr(settings), str(settings), caplog.text]:
        assert OPIK_KEY not in text  # the full key, and no 8-character piece of it either
        assert not any(OPIK_KEY[i : i + 8] in text for i in range(len(OPIK_KEY) - 7))


# -- 23 secret formats x 6 locations, in process and through the sidecar -------------

#: (name, how it appears in text, the parts that must never reach Opik, the marker left)
SECRET_FORMATS = [
    ("openai key", f"key {OPENAI_KEY}", [OPENAI_KEY[3:]], "api key"),
    ("anthropic key", f"key {ANTHROPIC_KEY}", [ANTHROPIC_KEY[7:]], "anthropic key"),
    ("stripe key", "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", ["4eC39HqLyjWDarjtT1zdp7dc"], "api key"),
    ("aws access key id", f"aws {AWS_KEY} ok", [AWS_KEY], "aws key"),
    ("aws secret access key", "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"], "secret"),
    ("github token", "gh ghp_16C7e42F292c6912E7710c838347Ae178B4a done", ["16C7e42F292c6912E7710c838347Ae178B4a"],
     "github token"),
    ("github fine-grained token", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01",
     ["11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"], "github token"),
    ("gitlab token", "push with glpat-xR3_vT9-kL2mN8qW4zYb please", ["xR3_vT9-kL2mN8qW4zYb"], "gitlab token"),
    ("google api key", "maps AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW", ["SyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"],
     "google api key"),
    ("slack token", "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", ["AbCdEfGhIjKlMnOpQrStUvWx"], "slack token"),
    ("slack webhook", "post to https://hooks.slack.com/services/T024BE7LD/B01ABCDEF12/aBcDeFgHiJkLmNoPqRsTuVwX now",
     ["T024BE7LD/B01ABCDEF12", "aBcDeFgHiJkLmNoPqRsTuVwX"], "slack webhook"),
    ("huggingface token", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567", ["AbCdEfGhIjKlMnOpQrStUvWxYz01234567"],
     "huggingface token"),
    ("jwt", f"jwt {JWT}", [JWT.split(".")[1], JWT.split(".")[2]], "jwt"),
    ("pem private key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM\n-----END RSA PRIVATE KEY-----",
     ["MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM"], "private key"),
    ("bearer token", f"Authorization: {BEARER}", ["tok_9f8e7d6c5b4a3f2e1d0c9b8a"], "bearer token"),
    ("url password", f"postgres://app:{PASSWORD}@db.internal:5432/orders", [PASSWORD], "password"),
    ("password pair", "login failed: password=Tr0ub4dor&3x user=bob", ["Tr0ub4dor"], "password"),
    ("api key pair", '{"api_key": "c2VjcmV0LWtleS0xMjM0NTY3"}', ["c2VjcmV0LWtleS0xMjM0NTY3"], "api key"),
    ("credit card", "card 4111 1111 1111 1111 exp 12/29", ["4111 1111 1111 1111"], "card number"),
    ("sendgrid key", "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",
     ["ngeVfQFYQlKU0ufo8x5d1A", "TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc-1s5cr"], "sendgrid key"),
    ("npm token", "//registry.npmjs.org/:_authToken=npm_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5",
     ["aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5"], "npm token"),
    ("azure account key",
     "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErC"
     "z4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=core.windows.net",
     ["Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50u"], "account key"),
    ("opik api key", f"sent with {OPIK_KEY}", [OPIK_KEY], "opik api key"),
]
LOCATIONS = ("attributes", "resource", "events", "messages", "status", "exceptions")


def test_there_are_23_formats() -> None:
    assert len(SECRET_FORMATS) == 23 and len({f[0] for f in SECRET_FORMATS}) == 23


@pytest.mark.parametrize("name, text, parts, label", SECRET_FORMATS, ids=[f[0] for f in SECRET_FORMATS])
def test_each_format_is_scrubbed_to_its_marker(name: str, text: str, parts: List[str], label: str) -> None:
    out = Scrubber(own_secrets=[OPIK_KEY]).scrub_str(text)
    assert marker(label) in out, out
    for p in parts:
        assert p not in out


def _resource_key(i: int) -> str:
    return f"deploy.note.{i}"


def _build_secret_spans(tracer: Any) -> None:
    """One LLM span per format, the secret in its attributes, an event, its messages, its status and an exception."""
    for i, (name, text, _, _) in enumerate(SECRET_FORMATS):
        with tracer.start_as_current_span(f"fmt {i}", kind=SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            span.set_attribute("note", f"see {text}")
            span.add_event("log", {"message": f"logged {text}"})
            span.set_attribute(
                "gen_ai.input.messages",
                json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"my {name}: {text}"}]}]),
            )
            span.set_attribute(
                "gen_ai.output.messages",
                json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": f"got {text}"}]}]),
            )
            try:
                raise RuntimeError(f"call failed with {text}")
            except RuntimeError as exc:
                span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"refused {text}"))


def _secret_resource() -> Any:
    from opentelemetry.sdk.resources import Resource

    attrs = {_resource_key(i): f"configured {f[1]}" for i, f in enumerate(SECRET_FORMATS)}
    return Resource.create({"service.name": "privacy-formats", **attrs})


def _location_texts(span: Dict[str, Any], i: int) -> Dict[str, str]:
    """What each of the 6 locations became in the stored span of format ``i``."""
    otel = span["metadata"]["otel"]
    return {
        "attributes": span["metadata"]["note"],
        "resource": otel["resource"][_resource_key(i)],
        "events": json.dumps([e["attributes"] for e in otel["events"]]),
        "messages": json.dumps([span["input"], span["output"]]),
        "status": otel["status"]["message"],
        "exceptions": json.dumps([span["error_info"]["message"], span["error_info"]["traceback"]]),
    }


def _assert_every_location(rows: Dict[str, Dict[str, Any]], scrubbed: bool) -> None:
    for i, (name, _text, parts, label) in enumerate(SECRET_FORMATS):
        locs = _location_texts(rows[f"fmt {i}"], i)
        assert set(locs) == set(LOCATIONS)
        for loc, got in locs.items():
            for p in parts:
                assert (p in got) is not scrubbed, (name, loc, got)
            if scrubbed:
                assert marker(label) in got, (name, loc, got)


def test_all_formats_in_all_locations_in_process() -> None:
    def run(**options: Any) -> Tuple[Dict[str, Dict[str, Any]], str]:
        with OpikStandin(api_key=OPIK_KEY) as opik:
            exporter = make_exporter(opik, api_key=OPIK_KEY, **options)
            tp = TracerProvider(resource=_secret_resource())
            tp.add_span_processor(SimpleSpanProcessor(exporter))
            _build_secret_spans(tp.get_tracer("privacy.formats"))
            assert exporter.force_flush(10_000)
            opik.wait_for_counts(spans=len(SECRET_FORMATS))
            tp.shutdown()
            return spans_by_name(opik), sent_text(opik)

    # switched off, every secret is in every location: the locations are real
    raw, _ = run(scrub=False)
    _assert_every_location(raw, scrubbed=False)
    rows, text = run()
    _assert_every_location(rows, scrubbed=True)
    for _, _, parts, _ in SECRET_FORMATS:
        for p in parts:
            assert p not in text


def test_all_formats_in_all_locations_through_the_sidecar() -> None:
    try:
        from tests.sidecar_helpers import SidecarProcess, clean_env, make_spans, protobuf_body
    except ImportError:
        from sidecar_helpers import SidecarProcess, clean_env, make_spans, protobuf_body  # type: ignore[no-redef]
    import httpx

    spans = make_spans(_build_secret_spans, resource=dict(_secret_resource().attributes))
    with OpikStandin(api_key=OPIK_KEY) as opik:
        with SidecarProcess(opik.url, env=clean_env(OPIK_API_KEY=OPIK_KEY), grpc=False) as sidecar:
            r = httpx.post(sidecar.traces_url, content=protobuf_body(spans),
                           headers={"Content-Type": "application/x-protobuf"}, timeout=30)
            assert r.status_code == 200
            opik.wait_for_counts(spans=len(SECRET_FORMATS), timeout=30)
            sidecar.drain()
        rows, text = spans_by_name(opik), sent_text(opik)
    _assert_every_location(rows, scrubbed=True)
    for _, _, parts, _ in SECRET_FORMATS:
        for p in parts:
            assert p not in text
            assert p not in sidecar.stderr()


# -- ordinary text is never touched -------------------------------------------------

_PNG_1PX = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _ordinary_corpus() -> List[str]:
    import base64
    import hashlib
    import random
    import uuid

    rnd = random.Random(19)
    corpus = [
        "The quick brown fox jumps over the lazy dog; internationalization matters.",
        "Your password: must be at least 12 characters long.",
        "Reset your password at https://example.com/settings/security then sign in again.",
        "The secret: patience. Bread needs time.",
        "Set OPENAI_API_KEY in the environment; api_key is required.",
        "The Authorization header is missing, so the request was rejected (401).",
        "Used max_tokens=512 and prompt_tokens: 1234 (total_tokens 4567)",
        '{"token_count": 123456789, "finish_reason": "stop", "logprob": -0.0000123}',
        "commit 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 fixed the build",
        "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709 and md5 d41d8cd98f00b204e9800998ecf8427e",
        "https://user@git.example.com/org/repo.git",
        "https://api.openai.com/v1/chat/completions?model=gpt-4o-mini",
        "started at 1733165953123456789 ns, 1733165953123 ms; order 1234567890123456 shipped",
        "probability 0.4111111111111111 and 0.5555555555554444",
        "call +1 415 555 2671 or 020 7946 0958; ISBN 978-3-16-148410-0",
        "IBAN DE89 3704 0044 0532 0130 00 is a bank account, not a card",
        "task-abcdefghij1234567890ABCDEFGH and chatcmpl-AbCdEf0123456789xyzQRS",
        "msg_01XFDUDYJgAACzvnptvVoYEL / resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
        "Singapore SG.Marina Bay; glass-blowing; npm install left-pad; slack hooks are nice",
        "primary key: id; foreign key: user_id; the key point is speed",
        _PNG_1PX,
        "data:image/jpeg;base64," + base64.b64encode(bytes(rnd.randrange(256) for _ in range(6000))).decode(),
        base64.urlsafe_b64encode(bytes(rnd.randrange(256) for _ in range(3000))).decode(),
    ]
    corpus += [str(uuid.uuid4()) for _ in range(50)]
    corpus += [hashlib.sha256(str(i).encode()).hexdigest() for i in range(50)]
    corpus += [f"see trace {uuid.uuid4()} and span {hashlib.md5(str(i).encode()).hexdigest()}" for i in range(20)]
    return corpus


def test_ordinary_corpus_is_not_touched_by_the_scrubber() -> None:
    from opentelemetry.exporter.opik._ids import span_uuid, trace_uuid

    corpus = _ordinary_corpus()
    # the exporter's own UUIDv7 ids
    corpus += [trace_uuid(otel_id, 1_733_165_953_123) for otel_id in range(1, 2**120, 2**113)]
    corpus += [span_uuid(otel_id, 1_733_165_953_123) for otel_id in range(1, 2**60, 2**53)]
    sc = Scrubber(own_secrets=[OPIK_KEY])
    for text in corpus:
        assert sc.scrub_str(text) is text, text


def test_ordinary_corpus_reaches_opik_unchanged(opik: OpikStandin) -> None:
    corpus = _ordinary_corpus()
    chunks = [corpus[i : i + 60] for i in range(0, len(corpus), 60)]  # under the SDK's 128 attributes a span
    exporter = make_exporter(opik)
    tp = provider_for(exporter)
    tracer = tp.get_tracer("t")
    with tracer.start_as_current_span("ordinary"):
        for k, chunk in enumerate(chunks):
            with tracer.start_as_current_span(f"ordinary {k}") as span:
                for i, text in enumerate(chunk):
                    span.set_attribute(f"text.{i}", text)
                span.add_event("log", {f"text.{i}": t for i, t in enumerate(chunk)})
    assert exporter.force_flush(10_000)
    opik.wait_for_counts(traces=1, spans=len(chunks) + 1)
    tp.shutdown()
    rows = spans_by_name(opik)
    for k, chunk in enumerate(chunks):
        row = rows[f"ordinary {k}"]
        for i, text in enumerate(chunk):
            want = text if not text.startswith("{") else json.loads(text)  # JSON text is stored parsed
            assert row["metadata"][f"text.{i}"] == want
            assert row["metadata"]["otel"]["events"][0]["attributes"][f"text.{i}"] in (text, want)
    assert exporter.stats().get("values_scrubbed", 0) == 0
