"""One spec table per settings system: every option has a variable, a help text and a default, and
``--help`` and ``docs/settings.md`` show exactly the table's facts."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from opentelemetry.exporter.opik._check import settings_markdown
from opentelemetry.exporter.opik._config import SPECS, known_env_names
from opentelemetry.exporter.opik.sidecar._cli import _UsageError, add_serve_arguments, serve_options
from opentelemetry.exporter.opik.sidecar._options import OPTIONS, ServeOption
from opentelemetry.exporter.opik.sidecar._server import ServeOptions

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    add_serve_arguments(parser)
    return parser


def test_every_serve_options_field_is_an_option_of_the_table() -> None:
    fields = {f.name for f in dataclasses.fields(ServeOptions)}
    rows = {o.field for o in OPTIONS}
    assert fields <= rows, sorted(fields - rows)
    assert len(rows) == len(OPTIONS) and len({o.env for o in OPTIONS}) == len(OPTIONS)  # no row twice


def test_every_option_has_its_variable_help_and_default_in_help_and_docs() -> None:
    helps = {a.option_strings[0]: a.help or "" for a in _parser()._actions if a.option_strings}
    for o in OPTIONS:
        assert o.env.startswith("OPIK_OTEL_") and o.help, o
        assert helps[o.flag] == f"{o.help} (default {o.shown_default()}) [{o.env}]"
        row = next((line for line in DOC.splitlines() if line.startswith(f"| `{o.env}` |")), None)
        assert row is not None, f"{o.env} missing from docs/settings.md"
        assert f"`{o.flag}`" in row and o.shown_default() in row, row
        assert o.env in known_env_names()  # the unknown-name warning knows it
    for spec in SPECS:  # the exporter's table: the same facts in the docs
        assert any(line.startswith(f"| `{spec.env}` |") for line in DOC.splitlines()), spec.env
    assert settings_markdown() in DOC, "docs/settings.md is stale: regenerate with `opik-otel settings --markdown`"


def test_the_defaults_in_help_are_the_defaults_serve_uses() -> None:
    options = serve_options(_parser().parse_args(["--no-grpc"]), env={})
    for o in OPTIONS:
        if hasattr(options, o.field) and o.field != "grpc_port":
            assert getattr(options, o.field) == o.default, o.field


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.kind in ("int", "float", "port", "bool")],
                         ids=lambda o: o.env)
def test_a_bad_value_names_the_variable_or_option_and_never_the_value(option: ServeOption) -> None:
    o = option
    secret = "sk-secret-7f3a9c2e5b1d"
    with pytest.raises(_UsageError) as env_error:
        serve_options(_parser().parse_args(["--no-grpc"]), env={o.env: secret})
    assert o.env in str(env_error.value) and secret not in str(env_error.value)
    if o.kind in ("int", "float"):
        with pytest.raises(_UsageError, match=re.escape(o.flag) + " must be positive"):
            serve_options(_parser().parse_args(["--no-grpc", o.flag, "0"]), env={})


def test_the_retired_max_pending_spans_is_accepted_and_says_it_has_no_effect(caplog: pytest.LogCaptureFixture) -> None:
    from opentelemetry.exporter.opik._config import resolve_settings
    from opentelemetry.exporter.opik.sidecar._server import Sidecar

    settings = resolve_settings({"dry_run": True}, env={"OPIK_CONFIG_PATH": "/dev/null"})
    quiet = Sidecar(settings, ServeOptions(grpc_port=None))
    assert not [r for r in caplog.records if "max-pending-spans" in r.getMessage()]
    options = serve_options(_parser().parse_args(["--no-grpc", "--max-pending-spans", "100"]), env={})
    with caplog.at_level("WARNING", logger="opentelemetry.exporter.opik.sidecar"):
        loud = Sidecar(settings, options)
    (warning,) = [r.getMessage() for r in caplog.records if "max-pending-spans" in r.getMessage()]
    assert "OPIK_OTEL_MAX_PENDING_SPANS" in warning and "no effect" in warning and "MAX_QUEUE_BYTES" in warning
    for sidecar in (quiet, loud):
        sidecar.receiver.close(5)
