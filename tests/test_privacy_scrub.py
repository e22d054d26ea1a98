"""Credential scrubbing: on by default, key and value rules, and no secret in any log line."""

from __future__ import annotations

import json
import logging
import socket
from typing import Any, Iterator, List

import pytest
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
        resolve_settings({}, env={"OPIK_API_KEY": OPIK_KEY, "OPIK_URL_OVERRIDE": f"ftp://{OPIK_KEY}"[:6]})
    settings = resolve_settings({"api_key": OPIK_KEY}, env={})
    for text in (str(e1.value), str(e2.value), repr(settings), str(settings), caplog.text):
        assert OPIK_KEY not in text
