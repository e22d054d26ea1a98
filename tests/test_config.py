"""Settings resolution: argument > env > ~/.opik.config > defaults, and clear errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from opentelemetry.exporter.opik import ConfigError, OpikSpanExporter, resolve_settings
from opentelemetry.exporter.opik._config import CLOUD_URL, LOCAL_URL


def write_config(tmp_path: Path, **values: str) -> dict:
    path = tmp_path / "opik.config"
    path.write_text("[opik]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))
    return {"OPIK_CONFIG_PATH": str(path)}


def test_defaults_without_anything(tmp_path: Path) -> None:
    s = resolve_settings(env={"OPIK_CONFIG_PATH": str(tmp_path / "missing")})
    assert (s.url, s.api_key, s.workspace, s.project_name) == (LOCAL_URL, None, "default", "Default Project")
    assert s.sources["url"].startswith("default")
    assert s.compression == "gzip" and s.batch_max_items == 1000


def test_api_key_without_url_means_cloud(tmp_path: Path) -> None:
    s = resolve_settings(env={"OPIK_CONFIG_PATH": str(tmp_path / "x"), "OPIK_API_KEY": "k" * 25})
    assert s.url == CLOUD_URL
    assert s.headers() == {"Comet-Workspace": "default", "Authorization": "k" * 25}


def test_api_key_carrying_its_base_url(tmp_path: Path) -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"baseUrl": "https://opik.example.com/"}).encode()).decode().rstrip("=")
    s = resolve_settings(env={"OPIK_CONFIG_PATH": str(tmp_path / "x"), "OPIK_API_KEY": "a" * 25 + "*" + payload})
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
    env = dict(env, OPIK_CONFIG_PATH=str(tmp_path / "x"))
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
    monkeypatch.setenv("OPIK_CONFIG_PATH", str(tmp_path / "x"))
    monkeypatch.setenv("OTEL_EXPORTER_OPIK_MAX_QUEUE_ITEMS", "lots")
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OPIK_MAX_QUEUE_ITEMS"):
        OpikSpanExporter()


def test_api_key_never_in_repr_or_errors(tmp_path: Path) -> None:
    secret = "sk-super-secret-key-0123456789"
    s = resolve_settings({"api_key": secret}, env={"OPIK_CONFIG_PATH": str(tmp_path / "x")})
    assert secret not in repr(s)
    with pytest.raises(ConfigError) as err:
        resolve_settings({"api_key": secret, "timeout": "soon"}, env={"OPIK_CONFIG_PATH": str(tmp_path / "x")})
    assert "timeout" in str(err.value) and secret not in str(err.value)


def test_unknown_argument_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="colour"):
        OpikSpanExporter(colour="blue")
