"""Settings resolution: argument > env > ~/.opik.config > defaults, and clear errors."""

from __future__ import annotations

import base64
import inspect
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from opentelemetry.exporter.opik import ConfigError, OpikSpanExporter, resolve_settings
from opentelemetry.exporter.opik._config import CLOUD_URL, LOCAL_URL

NO_CONFIG = os.devnull  # "no config file"; a missing one is an error


def write_config(tmp_path: Path, **values: str) -> dict:
    path = tmp_path / "opik.config"
    path.write_text("[opik]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))
    return {"OPIK_CONFIG_PATH": str(path)}


def test_defaults_without_anything(tmp_path: Path) -> None:
    s = resolve_settings(env={"OPIK_CONFIG_PATH": NO_CONFIG})
    assert (s.url, s.api_key, s.workspace, s.project_name) == (LOCAL_URL, None, "default", "Default Project")
    assert s.sources["url"].startswith("default")
    assert s.compression == "gzip" and s.batch_max_items == 1000


def test_api_key_without_url_means_cloud(tmp_path: Path) -> None:
    s = resolve_settings(env={"OPIK_CONFIG_PATH": NO_CONFIG, "OPIK_API_KEY": "k" * 25})
    assert s.url == CLOUD_URL
    assert s.headers() == {"Comet-Workspace": "default", "Authorization": "k" * 25}


def test_api_key_carrying_its_base_url(tmp_path: Path) -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"baseUrl": "https://opik.example.com/"}).encode()).decode().rstrip("=")
    s = resolve_settings(env={"OPIK_CONFIG_PATH": NO_CONFIG, "OPIK_API_KEY": "a" * 25 + "*" + payload})
    assert s.url == "https://opik.example.com/opik/api"
    assert s.sources["url"] == "derived from the API key"


def test_resolution_order(tmp_path: Path) -> None:
    env = write_config(
        tmp_path, url_override="http://from-file:5173/api/", api_key="filekey", workspace="file-ws", project_name="file-proj"
    )
    s = resolve_settings(env=env)
    assert (s.url, s.api_key, s.workspace, s.project_name) == (
        "http://from-file:5173/api",
        "filekey",
        "file-ws",
        "file-proj",
    )
    assert s.sources["workspace"].endswith("[opik] workspace")

    env.update(OPIK_URL_OVERRIDE="http://from-env/api", OPIK_WORKSPACE="env-ws")
    s = resolve_settings(env=env)
    assert (s.url, s.workspace, s.project_name) == ("http://from-env/api", "env-ws", "file-proj")
    assert s.sources["url"] == "env OPIK_URL_OVERRIDE"

    s = resolve_settings({"url": "http://from-arg/api", "project_name": "arg-proj"}, env=env)
    assert (s.url, s.workspace, s.project_name) == ("http://from-arg/api", "env-ws", "arg-proj")
    assert s.sources["project_name"] == "argument"


def test_home_config_file_is_the_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".opik.config").write_text("[opik]\nproject_name = from-home\n")
    assert resolve_settings(env={"HOME": str(tmp_path)}).project_name == "from-home"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"OTEL_EXPORTER_OPIK_TIMEOUT": "ten"}, "OTEL_EXPORTER_OPIK_TIMEOUT"),
        ({"OTEL_EXPORTER_OPIK_TIMEOUT": "-1"}, "OTEL_EXPORTER_OPIK_TIMEOUT"),
        ({"OTEL_EXPORTER_OPIK_BATCH_MAX_ITEMS": "5000"}, "OTEL_EXPORTER_OPIK_BATCH_MAX_ITEMS"),
        ({"OTEL_EXPORTER_OPIK_COMPRESSION": "zstd"}, "OTEL_EXPORTER_OPIK_COMPRESSION"),
        ({"OTEL_EXPORTER_OPIK_DRY_RUN": "maybe"}, "OTEL_EXPORTER_OPIK_DRY_RUN"),
        ({"OPIK_URL_OVERRIDE": "localhost:5173"}, "OPIK_URL_OVERRIDE"),
        ({"OTEL_EXPORTER_OPIK_SCRUB_PATTERNS": "(unclosed"}, "OTEL_EXPORTER_OPIK_SCRUB_PATTERNS"),
    ],
)
def test_malformed_setting_names_itself(tmp_path: Path, env: dict, names: str) -> None:
    env = dict(env, OPIK_CONFIG_PATH=NO_CONFIG)
    with pytest.raises(ConfigError) as err:
        resolve_settings(env=env)
    assert names in str(err.value)


def test_malformed_config_file_value_names_file_and_key(tmp_path: Path) -> None:
    env = write_config(tmp_path, url_override="not a url")
    with pytest.raises(ConfigError) as err:
        resolve_settings(env=env)
    assert "url_override" in str(err.value) and str(tmp_path) in str(err.value)


def test_unreadable_config_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.config"
    path.write_text("this is not an ini file\n[opik\n")
    with pytest.raises(ConfigError) as err:
        resolve_settings(env={"OPIK_CONFIG_PATH": str(path)})
    assert "OPIK_CONFIG_PATH" in str(err.value)


def test_exporter_fails_at_construction_on_bad_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPIK_CONFIG_PATH", NO_CONFIG)
    monkeypatch.setenv("OTEL_EXPORTER_OPIK_MAX_QUEUE_ITEMS", "lots")
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OPIK_MAX_QUEUE_ITEMS"):
        OpikSpanExporter()


def test_api_key_never_in_repr_or_errors(tmp_path: Path) -> None:
    secret = "sk-super-secret-key-0123456789"
    s = resolve_settings({"api_key": secret}, env={"OPIK_CONFIG_PATH": NO_CONFIG})
    assert secret not in repr(s)
    with pytest.raises(ConfigError) as err:
        resolve_settings({"api_key": secret, "timeout": "soon"}, env={"OPIK_CONFIG_PATH": NO_CONFIG})
    assert "timeout" in str(err.value) and secret not in str(err.value)


def test_unknown_argument_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="colour"):
        OpikSpanExporter(colour="blue")


# -- every value validated the same way, whatever its type --------------------------

OPIK_KEY = "Xk3Jq9Lm2Pz7Vb4Nc8Rt1Wy6-full-secret-key"


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"batch_max_items": 0}, "OTEL_EXPORTER_OPIK_BATCH_MAX_ITEMS"),
        ({"batch_max_items": 5000}, "OTEL_EXPORTER_OPIK_BATCH_MAX_ITEMS"),
        ({"batch_max_items": 10.5}, "OTEL_EXPORTER_OPIK_BATCH_MAX_ITEMS"),
        ({"timeout": -5}, "OTEL_EXPORTER_OPIK_TIMEOUT"),
        ({"timeout": 0}, "OTEL_EXPORTER_OPIK_TIMEOUT"),
        ({"timeout": float("nan")}, "OTEL_EXPORTER_OPIK_TIMEOUT"),
        ({"timeout": True}, "OTEL_EXPORTER_OPIK_TIMEOUT"),
        ({"retry_deadline": "-1"}, "OTEL_EXPORTER_OPIK_RETRY_DEADLINE"),
        ({"max_queue_items": 0}, "OTEL_EXPORTER_OPIK_MAX_QUEUE_ITEMS"),
        ({"max_queue_bytes": 10}, "OTEL_EXPORTER_OPIK_MAX_QUEUE_BYTES"),
        ({"compression_level": 12}, "OTEL_EXPORTER_OPIK_COMPRESSION_LEVEL"),
        ({"compression": "zstd"}, "OTEL_EXPORTER_OPIK_COMPRESSION"),
        ({"scrub": "perhaps"}, "OTEL_EXPORTER_OPIK_SCRUB"),
        ({"scrub": 1}, "OTEL_EXPORTER_OPIK_SCRUB"),
        ({"scrub_patterns": ["(unclosed"]}, "OTEL_EXPORTER_OPIK_SCRUB_PATTERNS"),
        ({"scrub_allow": [1, 2]}, "OTEL_EXPORTER_OPIK_SCRUB_ALLOW"),
        ({"workspace": 7}, "OPIK_WORKSPACE"),
        ({"project_name": "   "}, "OPIK_PROJECT_NAME"),
        ({"url": 5173}, "OPIK_URL_OVERRIDE"),
        ({"url": "http://localhost:abc/api"}, "OPIK_URL_OVERRIDE"),
        ({"url": "http://localhost:99999/api"}, "OPIK_URL_OVERRIDE"),
    ],
)
def test_keyword_arguments_are_validated_like_the_environment(kwargs: dict, setting: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    (field, value), = kwargs.items()
    with pytest.raises(ConfigError) as err:
        OpikSpanExporter(api_key=OPIK_KEY, **kwargs)
    msg = str(err.value)
    assert setting in msg and f"{field}=" in msg
    assert OPIK_KEY not in msg and OPIK_KEY not in caplog.text
    if isinstance(value, str) and value.strip() and len(value) > 3:
        assert value not in msg  # the value is never echoed


def test_typed_keyword_arguments_that_are_right_are_kept() -> None:
    s = resolve_settings(
        {"timeout": 3, "batch_max_items": 10, "scrub": False, "scrub_patterns": ("ssn$",), "scopes_deny": ["httpx"]},
        env={"OPIK_CONFIG_PATH": NO_CONFIG},
    )
    assert (s.timeout, s.batch_max_items, s.scrub, s.scrub_patterns, s.scopes_deny) == (3.0, 10, False, ("ssn$",), ("httpx",))
    assert s.sources["timeout"] == "argument"


def test_a_non_numeric_port_in_the_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="OPIK_URL_OVERRIDE") as err:
        resolve_settings(env={"OPIK_CONFIG_PATH": NO_CONFIG, "OPIK_URL_OVERRIDE": f"http://localhost:{OPIK_KEY}/api"})
    assert OPIK_KEY not in str(err.value) and "port" in str(err.value)


def _opik_otel(*args: str, **env: str) -> "subprocess.CompletedProcess[str]":
    script = Path(sys.executable).with_name("opik-otel")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "opentelemetry.exporter.opik._cli"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_"))}
    clean.update(env)
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60, env=clean)


def test_check_never_crashes_on_a_bad_port() -> None:
    r = _opik_otel("check", OPIK_CONFIG_PATH=NO_CONFIG, OPIK_API_KEY=OPIK_KEY, OPIK_URL_OVERRIDE="http://localhost:5173x/api")
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "Traceback" not in out and "OPIK_URL_OVERRIDE" in out and "port" in out
    assert OPIK_KEY not in out


# -- the config file ----------------------------------------------------------------


def test_a_missing_config_path_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "typo.config"
    with pytest.raises(ConfigError, match="OPIK_CONFIG_PATH"):
        resolve_settings(env={"OPIK_CONFIG_PATH": str(missing)})
    # the default path (~/.opik.config) may be absent: nothing was asked for
    home = tmp_path / "home"
    home.mkdir()
    assert resolve_settings(env={"HOME": str(home)}).url == LOCAL_URL


def test_a_config_file_without_a_section_header_never_echoes_the_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "opik.config"
    path.write_text(f"api_key = {OPIK_KEY}\nworkspace = mine\n")
    with pytest.raises(ConfigError) as err:
        resolve_settings(env={"OPIK_CONFIG_PATH": str(path)})
    msg = str(err.value)
    assert "section" in msg and "line 1" in msg and str(path) in msg
    assert OPIK_KEY not in msg and OPIK_KEY[:8] not in msg and OPIK_KEY not in caplog.text
    r = _opik_otel("check", OPIK_CONFIG_PATH=str(path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert OPIK_KEY not in r.stdout + r.stderr


def test_a_malformed_line_is_named_by_number_not_quoted(tmp_path: Path) -> None:
    path = tmp_path / "opik.config"
    path.write_text(f"[opik]\nworkspace = mine\n{OPIK_KEY}\n")
    with pytest.raises(ConfigError) as err:
        resolve_settings(env={"OPIK_CONFIG_PATH": str(path)})
    assert "line(s) 3" in str(err.value) and OPIK_KEY not in str(err.value)


def test_a_bad_value_in_the_config_file_is_not_echoed(tmp_path: Path) -> None:
    env = write_config(tmp_path, url_override=f"http://opik:{OPIK_KEY}/api", api_key=OPIK_KEY)
    with pytest.raises(ConfigError) as err:
        resolve_settings(env=env)
    assert "url_override" in str(err.value) and OPIK_KEY not in str(err.value)


# -- unknown names ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("OTEL_EXPORTER_OPIK_TIMEOUTS", "OTEL_EXPORTER_OPIK_TIMEOUT"),
        ("OTEL_EXPORTER_OPIK_SCRUB_PATTERN", "OTEL_EXPORTER_OPIK_SCRUB_PATTERNS"),
        ("OPIK_PROJECT", "OPIK_PROJECT_NAME"),
        ("OPIK_URL", "OPIK_URL_OVERRIDE"),
        ("OPIK_API_KEYS", "OPIK_API_KEY"),
        ("OPIK_OTEL_PROT", "OPIK_OTEL_PORT"),
        ("OPIK_OTEL_MAX_BODY_BYTE", "OPIK_OTEL_MAX_BODY_BYTES"),
    ],
)
def test_an_unknown_name_gets_one_warning_with_the_closest_valid_name(
    name: str, closest: str, caplog: pytest.LogCaptureFixture
) -> None:
    from opentelemetry.exporter.opik import _config

    _config._warned.discard(name)
    caplog.set_level(logging.WARNING, logger="opentelemetry.exporter.opik")
    env = {"OPIK_CONFIG_PATH": NO_CONFIG, name: OPIK_KEY}
    resolve_settings(env=env)
    resolve_settings(env=env)
    lines = [r.getMessage() for r in caplog.records if name in r.getMessage()]
    assert len(lines) == 1, lines
    assert f"did you mean {closest}?" in lines[0]
    assert OPIK_KEY not in caplog.text


def test_valid_and_foreign_names_are_not_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="opentelemetry.exporter.opik")
    env = {
        "OPIK_CONFIG_PATH": NO_CONFIG,
        "OPIK_PROJECT_NAME": "p",
        "OTEL_EXPORTER_OPIK_TIMEOUT": "5",
        "OPIK_OTEL_PORT": "4318",
        "OPIK_TRACK_DISABLE": "true",  # Opik's own SDK
        "OPIK_SOMETHING_ELSE_ENTIRELY": "1",  # not ours, not close to ours
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x",
    }
    resolve_settings(env=env)
    assert not [r for r in caplog.records if "not a setting" in r.getMessage()]


# -- the exporter's signature -------------------------------------------------------


def test_exporter_has_one_keyword_per_setting_and_no_kwargs() -> None:
    from opentelemetry.exporter.opik._config import SPECS

    params = inspect.signature(OpikSpanExporter.__init__).parameters
    assert not [p for p in params.values() if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    assert {s.field for s in SPECS} <= set(params)
    assert set(params) - {s.field for s in SPECS} == {"self", "mask", "settings", "console"}


def test_mask_hook_is_exported() -> None:
    from opentelemetry.exporter.opik import MaskHook
    from opentelemetry.exporter.opik._pipeline import MaskHook as Internal

    assert MaskHook is Internal


def test_settings_doc_names_every_variable_read() -> None:
    """docs/settings.md (generated, checked current by test_cli_check) has every name: the exporter's,
    the sidecar's OPIK_OTEL_* and the others (OPIK_CONFIG_PATH, OTEL_TRACES_SAMPLER_ARG)."""
    from opentelemetry.exporter.opik._check import settings_markdown
    from opentelemetry.exporter.opik._config import known_env_names

    md = settings_markdown()
    names = known_env_names()
    assert len([n for n in names if n.startswith("OPIK_OTEL_")]) >= 13
    for name in names + ["OTEL_TRACES_SAMPLER_ARG", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_EXPORTER"]:
        assert f"`{name}`" in md, name


def test_paths_may_be_given_as_path_objects(tmp_path: Path) -> None:
    s = resolve_settings({"spool_dir": tmp_path / "spool"}, env={"OPIK_CONFIG_PATH": NO_CONFIG})
    assert s.spool_dir == str(tmp_path / "spool")


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        ([], {"OPIK_OTEL_PORT": OPIK_KEY}, "OPIK_OTEL_PORT"),
        ([], {"OPIK_OTEL_MAX_BODY_BYTES": "-" + OPIK_KEY}, "OPIK_OTEL_MAX_BODY_BYTES"),
        (["--set", OPIK_KEY], {}, "--set"),
        (["--set", f"timeout={OPIK_KEY}"], {}, "OTEL_EXPORTER_OPIK_TIMEOUT"),
        (["--url", f"http://localhost:{OPIK_KEY}/api"], {}, "url"),
    ],
)
def test_serve_errors_name_the_setting_never_the_value(args: list, env: dict, named: str) -> None:
    port = [] if "OPIK_OTEL_PORT" in env else ["--port", "0"]  # an option wins over its variable
    r = _opik_otel("serve", *port, "--no-grpc", *args, OPIK_CONFIG_PATH=NO_CONFIG, **env)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert named in out and "Traceback" not in out
    assert not any(OPIK_KEY[i : i + 8] in out for i in range(len(OPIK_KEY) - 7)), out
