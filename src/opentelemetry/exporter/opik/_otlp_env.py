"""Opik's own OTLP setup as a source of settings (migrating from Opik's OTLP endpoint).

Opik's docs tell its users to set::

    OTEL_EXPORTER_OTLP_ENDPOINT=https://www.comet.com/opik/api/v1/private/otel
    OTEL_EXPORTER_OTLP_HEADERS='Authorization=<key>,projectName=<project>,Comet-Workspace=<workspace>'

When such an endpoint is set (the traces one, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, wins, as in
the OTLP exporter) and it is an Opik URL (its path ends in ``/v1/private/otel`` or
``/v1/private/otel/v1/traces``), it gives the Opik base URL, and the headers (the traces ones win)
give the key, the workspace and the project. Header values are URL-decoded, as the OTel spec says.
An endpoint that is not Opik's (a Collector, another backend) is left alone.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import urllib.parse
from typing import Dict, Mapping, Optional, Tuple

_logger = logging.getLogger("opentelemetry.exporter.opik")

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
HEADER_VARS = ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
#: header (lower case) -> the setting it gives
HEADER_FIELDS = {"authorization": "api_key", "comet-workspace": "workspace", "projectname": "project_name"}
_OPIK_PATH = re.compile(r"^(?P<base>.*?)/v1/private/otel(?:/v1/traces)?/*$")


@dataclasses.dataclass(frozen=True)
class OtlpSettings:
    """What Opik's OTLP variables say: values by setting, and where each came from."""

    values: Dict[str, str]
    sources: Dict[str, str]


def opik_base_url(endpoint: str) -> Optional[str]:
    """The Opik API base of an Opik OTLP endpoint URL (``.../api/v1/private/otel`` -> ``.../api``); else None."""
    parts = urllib.parse.urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    match = _OPIK_PATH.match(parts.path)
    if match is None:
        return None
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, match.group("base"), "", "")).rstrip("/")


def parse_headers(raw: str, var: str) -> Dict[str, str]:
    """``k=v,k2=v2`` as the OTel spec writes it (URL-encoded, whitespace around entries ignored); keys lower-cased.

    A malformed entry is skipped with a warning that names its position, never its text (it may hold the key).
    """
    out: Dict[str, str] = {}
    for i, entry in enumerate(raw.split(","), 1):
        if not entry.strip():
            continue
        key, sep, value = entry.partition("=")
        key = urllib.parse.unquote(key).strip().lower()
        if not sep or not key:
            _logger.warning("%s: entry %d is not 'name=value' and is ignored", var, i)
            continue
        out[key] = urllib.parse.unquote(value).strip()
    return out


def _first(env: Mapping[str, str], names: Tuple[str, ...]) -> Optional[Tuple[str, str]]:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return name, value
    return None


def from_otlp_env(env: Mapping[str, str]) -> Optional[OtlpSettings]:
    """Settings from Opik's OTLP variables, or None when the OTLP endpoint set is not Opik's (or none is)."""
    endpoint = _first(env, ENDPOINT_VARS)
    if endpoint is None:
        return None
    base = opik_base_url(endpoint[1])
    if base is None:
        return None
    values = {"url": base}
    sources = {"url": f"env {endpoint[0]} (Opik's OTLP endpoint)"}
    headers = _first(env, HEADER_VARS)
    if headers is not None:
        for key, value in parse_headers(headers[1], headers[0]).items():
            field = HEADER_FIELDS.get(key)
            if field and value:
                values[field] = value
                sources[field] = f"env {headers[0]} ({key})"
    return OtlpSettings(values, sources)


def describe(sources: Mapping[str, str]) -> str:
    """``url from env OTEL_EXPORTER_OTLP_ENDPOINT (...), api_key from ...``: where, never what."""
    return ", ".join(f"{field} from {source}" for field, source in sources.items())


__all__ = ["ENDPOINT_VARS", "HEADER_VARS", "OtlpSettings", "describe", "from_otlp_env", "opik_base_url",
           "parse_headers"]
