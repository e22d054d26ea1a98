"""Settings: resolved once, from arguments, environment, ``~/.opik.config``, defaults.

Opik's own names (``OPIK_URL_OVERRIDE``, ``OPIK_API_KEY``, ``OPIK_WORKSPACE``,
``OPIK_PROJECT_NAME``, the ``[opik]`` INI section) are honoured so an Opik user
needs nothing new; exporter tuning uses ``OTEL_EXPORTER_OPIK_*``. Every setting
remembers where its value came from (for ``opik-otel check``), and a malformed
value fails at construction with a message naming the setting and the fix.
"""

from __future__ import annotations

import base64
import configparser
import dataclasses
import difflib
import logging
import os
import re
import threading
import urllib.parse
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ._json import loads

LOCAL_URL = "http://localhost:5173/api"
CLOUD_URL = "https://www.comet.com/opik/api"
DEFAULT_WORKSPACE = "default"
DEFAULT_PROJECT = "Default Project"
_PREFIX = "OTEL_EXPORTER_OPIK_"
_logger = logging.getLogger("opentelemetry.exporter.opik")


class ConfigError(ValueError):
    """A setting is malformed; the message names it and says how to fix it."""


def _kind(kind: str) -> Callable[[Callable[[str], Any]], Callable[[str], Any]]:
    """What a setting's value is when it is not given as text (keyword arguments):
    ``str``, ``bool``, ``int``, ``number`` or ``list``; every value is checked by the same parser."""

    def mark(parse: Callable[[str], Any]) -> Callable[[str], Any]:
        parse.kind = kind  # type: ignore[attr-defined]
        return parse

    return mark


@_kind("str")
def _parse_str(v: str) -> str:
    v = v.strip()
    if not v:
        raise ValueError("must not be empty")
    return v


@_kind("bool")
def _parse_bool(v: str) -> bool:
    s = v.strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


@_kind("number")
def _parse_seconds(v: str) -> float:
    try:
        f = float(v)
    except ValueError:
        raise ValueError("must be a number of seconds, e.g. 10") from None
    if not f > 0 or f != f or f == float("inf"):
        raise ValueError("must be a positive number of seconds")
    return f


def _positive_int(lo: int = 1, hi: Optional[int] = None) -> Callable[[str], int]:
    def parse(v: str) -> int:
        try:
            i = int(v.strip().replace("_", ""))
        except ValueError:
            raise ValueError("must be a whole number") from None
        if i < lo or (hi is not None and i > hi):
            raise ValueError(f"must be between {lo} and {hi}" if hi else f"must be at least {lo}")
        return i

    return _kind("int")(parse)


def _choice(*options: str) -> Callable[[str], str]:
    def parse(v: str) -> str:
        s = v.strip().lower()
        if s not in options:
            raise ValueError("must be one of " + ", ".join(options))
        return s

    return _kind("str")(parse)


@_kind("list")
def _parse_list(v: str) -> Tuple[str, ...]:
    return tuple(p.strip() for p in v.split(",") if p.strip())


def _check_patterns(pats: Tuple[str, ...]) -> Tuple[str, ...]:
    for i, p in enumerate(pats, 1):
        try:
            re.compile(p)
        except re.error as exc:  # the error names a position, never the pattern
            raise ValueError(f"has an invalid regular expression (entry {i}: {exc})") from None
    return pats


@_kind("list")
def _parse_patterns(v: str) -> Tuple[str, ...]:
    return _check_patterns(_parse_list(v))


@_kind("str")
def _parse_url(v: str) -> str:
    v = v.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", v):
        raise ValueError("must be an http(s) URL such as http://localhost:5173/api")
    try:
        parts = urllib.parse.urlsplit(v)
        port = parts.port  # ValueError: not a number, or out of range
    except ValueError:
        raise ValueError("has a port that is not a number from 1 to 65535, e.g. http://localhost:5173/api") from None
    if not parts.hostname:
        raise ValueError("has no host name, e.g. http://localhost:5173/api")
    if port == 0:
        raise ValueError("has port 0; use the port Opik listens on, e.g. http://localhost:5173/api")
    return v


def _coerce(spec: "_Spec", raw: Any) -> Any:
    """``raw`` (text from the environment or a file, or any value given as an argument),
    checked by the setting's own parser whatever its type."""
    if isinstance(raw, str):
        return spec.parse(raw)
    kind = getattr(spec.parse, "kind", "str")
    if kind == "str" and isinstance(raw, os.PathLike):  # spool_dir=Path(...), certificate=Path(...)
        return spec.parse(os.fspath(raw))
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        raise ValueError("must be true or false")
    if kind in ("int", "number"):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ValueError("must be a whole number" if kind == "int" else "must be a number of seconds")
        if kind == "int" and not isinstance(raw, int):
            raise ValueError("must be a whole number")
        return spec.parse(repr(raw))
    if kind == "list":
        if not isinstance(raw, (list, tuple, set, frozenset)) or not all(isinstance(x, str) for x in raw):
            raise ValueError("must be a list of strings (or one comma-separated string)")
        items = tuple(x.strip() for x in raw if x.strip())
        return _check_patterns(items) if spec.parse is _parse_patterns else items
    raise ValueError("must be a string")


@dataclasses.dataclass(frozen=True)
class _Spec:
    field: str
    env: str
    parse: Callable[[str], Any]
    default: Any
    ini: Optional[str] = None
    doc: str = ""


# One row per setting: the README's settings table is generated from the same facts.
SPECS: Tuple[_Spec, ...] = (
    _Spec("url", "OPIK_URL_OVERRIDE", _parse_url, None, "url_override", "Opik API base URL; default http://localhost:5173/api, or Opik Cloud when an API key is set"),
    _Spec("api_key", "OPIK_API_KEY", _parse_str, None, "api_key", "Opik Cloud API key, sent as `Authorization`"),
    _Spec("workspace", "OPIK_WORKSPACE", _parse_str, DEFAULT_WORKSPACE, "workspace", "Opik workspace, sent as `Comet-Workspace`"),
    _Spec("project_name", "OPIK_PROJECT_NAME", _parse_str, DEFAULT_PROJECT, "project_name", "default project (a span or resource `opik.project_name` overrides it)"),
    _Spec("environment", "OPIK_ENVIRONMENT", _parse_str, None, None, "environment when spans carry no `deployment.environment[.name]`"),
    _Spec("check_tls_certificate", "OPIK_CHECK_TLS_CERTIFICATE", _parse_bool, True, None, "verify TLS certificates (false only for testing; warns)"),
    _Spec("certificate", _PREFIX + "CERTIFICATE", _parse_str, None, None, "PEM file of a private CA to trust"),
    _Spec("timeout", _PREFIX + "TIMEOUT", _parse_seconds, 10.0, None, "seconds for one HTTP request"),
    _Spec("retry_deadline", _PREFIX + "RETRY_DEADLINE", _parse_seconds, 120.0, None, "seconds a batch is retried before it is spooled or dropped"),
    _Spec("batch_max_items", _PREFIX + "BATCH_MAX_ITEMS", _positive_int(1, 1000), 1000, None, "items per request (Opik allows 1000)"),
    _Spec("batch_max_bytes", _PREFIX + "BATCH_MAX_BYTES", _positive_int(1024), 8 * 1024 * 1024, None, "uncompressed bytes per request"),
    _Spec("compression", _PREFIX + "COMPRESSION", _choice("gzip", "none"), "gzip", None, "request body compression"),
    _Spec("compression_level", _PREFIX + "COMPRESSION_LEVEL", _positive_int(1, 9), 1, None, "gzip level; 1-3 use ISA-L (level 2) (a dependency; zlib if it cannot be imported), measured best for CPU and size"),
    _Spec("max_queue_items", _PREFIX + "MAX_QUEUE_ITEMS", _positive_int(1), 100_000, None, "items held for delivery before new ones are dropped"),
    _Spec("max_queue_bytes", _PREFIX + "MAX_QUEUE_BYTES", _positive_int(1024), 64 * 1024 * 1024, None, "encoded bytes held for delivery before new ones are dropped"),
    _Spec("dry_run", _PREFIX + "DRY_RUN", _parse_bool, False, None, "print the Opik traces as a tree instead of sending"),
    _Spec("spool_dir", _PREFIX + "SPOOL_DIR", _parse_str, None, None, "directory where undeliverable batches are kept and re-sent later"),
    _Spec("spool_max_bytes", _PREFIX + "SPOOL_MAX_BYTES", _positive_int(1024), 512 * 1024 * 1024, None, "disk the spool may use"),
    _Spec("sigterm_flush", _PREFIX + "SIGTERM_FLUSH", _parse_bool, False, None, "on SIGTERM, if the app has no handler of its own, exit through the exit hooks so queued spans are delivered (or spooled) first"),
    _Spec("capture_content", _PREFIX + "CAPTURE_CONTENT", _parse_bool, True, None, "false drops input/output/message contents (sizes kept)"),
    _Spec("scrub", _PREFIX + "SCRUB", _parse_bool, True, None, "replace credentials (keys, tokens, passwords) by markers"),
    _Spec("scrub_patterns", _PREFIX + "SCRUB_PATTERNS", _parse_patterns, (), None, "extra comma-separated regexes of keys to scrub"),
    _Spec("scrub_allow", _PREFIX + "SCRUB_ALLOW", _parse_list, (), None, "comma-separated keys never scrubbed"),
    _Spec("span_filter", _PREFIX + "SPAN_FILTER", _choice("all", "genai"), "all", None, "`genai` keeps only traces with an LLM/agent/tool span"),
    _Spec("scopes_allow", _PREFIX + "SCOPES_ALLOW", _parse_list, (), None, "only spans of these instrumentation scopes (prefixes)"),
    _Spec("scopes_deny", _PREFIX + "SCOPES_DENY", _parse_list, (), None, "drop spans of these instrumentation scopes (prefixes)"),
    _Spec("field_max_bytes", _PREFIX + "FIELD_MAX_BYTES", _positive_int(256), 4 * 1024 * 1024, None, "cap per input/output/metadata value; longer strings are shortened inside the JSON"),
    _Spec("blob_max_bytes", _PREFIX + "BLOB_MAX_BYTES", _positive_int(64), 32 * 1024, None, "base64 images/blobs larger than this that are not uploaded as attachments become a placeholder; while attachments are on and this is not set, the attachment threshold is used instead (Opik keeps smaller content inline)"),
    _Spec("attachment_min_chars", _PREFIX + "ATTACHMENT_MIN_CHARS", _positive_int(0), 256_000, None, "base64 content (images, audio, files) of at least this many characters in input/output/metadata is uploaded as an Opik attachment of its span and replaced by its `[file name]` reference, as Opik's SDK does; 0 turns attachments off"),
    _Spec("attachment_max_queue_bytes", _PREFIX + "ATTACHMENT_MAX_QUEUE_BYTES", _positive_int(1024), 128 * 1024 * 1024, None, "decoded attachment bytes held for upload before new attachments are dropped (the span keeps its reference)"),
    _Spec("message_format", _PREFIX + "MESSAGE_FORMAT", _choice("opik", "otel"), "opik", None, "`opik` reshapes LLM messages into the chat form Opik's UI renders; `otel` keeps them as the instrumentation sent them"),
    _Spec("project_from_service_name", _PREFIX + "PROJECT_FROM_SERVICE_NAME", _parse_bool, False, None, "use the resource `service.name` as project when no `opik.project_name`"),
    _Spec("log_join_window", _PREFIX + "LOG_JOIN_WINDOW", _parse_seconds, 2.0, None, "seconds an LLM span without content waits for the log records that carry it (while `OpikLogExporter` runs); content that comes later re-sends the span"),
)
_BY_FIELD = {s.field: s for s in SPECS}
_BY_ENV = {s.env: s for s in SPECS}


@dataclasses.dataclass(frozen=True)
class OpikSettings:
    """Resolved settings. ``sources`` says where each value came from."""

    url: str
    api_key: Optional[str]
    workspace: str
    project_name: str
    environment: Optional[str]
    check_tls_certificate: bool
    certificate: Optional[str]
    timeout: float
    retry_deadline: float
    batch_max_items: int
    batch_max_bytes: int
    compression: str
    compression_level: int
    max_queue_items: int
    max_queue_bytes: int
    dry_run: bool
    spool_dir: Optional[str]
    spool_max_bytes: int
    sigterm_flush: bool
    capture_content: bool
    scrub: bool
    scrub_patterns: Tuple[str, ...]
    scrub_allow: Tuple[str, ...]
    span_filter: str
    scopes_allow: Tuple[str, ...]
    scopes_deny: Tuple[str, ...]
    field_max_bytes: int
    blob_max_bytes: int
    attachment_min_chars: int
    attachment_max_queue_bytes: int
    message_format: str
    project_from_service_name: bool
    log_join_window: float
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False)

    def __repr__(self) -> str:  # never print the key
        fields = ", ".join(
            f"{f.name}={self.masked(f.name)!r}" for f in dataclasses.fields(self) if f.name != "sources"
        )
        return f"OpikSettings({fields})"

    def masked(self, field: str) -> Any:
        v = getattr(self, field)
        if field == "api_key" and v:
            return mask_secret(v)
        return v

    def headers(self) -> Dict[str, str]:
        h = {"Comet-Workspace": self.workspace}
        if self.api_key:
            h["Authorization"] = self.api_key
        return h


def mask_secret(value: str) -> str:
    """``abcd…(25 chars)``: enough to tell two keys apart, never the key."""
    return f"{value[:3]}…({len(value)} chars)" if len(value) > 8 else f"…({len(value)} chars)"


def _url_from_api_key(api_key: str) -> Optional[str]:
    """Opik Cloud keys may carry their base URL: ``<key>*<base64 {"baseUrl": ...}>``."""
    if "*" not in api_key:
        return None
    try:
        raw = api_key.split("*", 1)[1]
        data = loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        base = data.get("baseUrl") if isinstance(data, dict) else None
    except (ValueError, TypeError):
        return None
    if not isinstance(base, str) or not base.startswith("http"):
        return None
    return base.rstrip("/") + "/opik/api"


def config_file_path(env: Mapping[str, str]) -> str:
    return os.path.expanduser(env.get("OPIK_CONFIG_PATH") or "~/.opik.config")


def _read_config_file(path: str, explicit: bool = False) -> Dict[str, str]:
    """The ``[opik]`` section of the config file; ``explicit``: named by ``OPIK_CONFIG_PATH``,
    so it must exist (``os.devnull`` says "no file"). Errors never quote the file's lines."""
    if path == os.devnull:
        return {}
    if not os.path.isfile(path):
        if explicit:
            raise ConfigError(
                f"OPIK_CONFIG_PATH names {path}, which is not a file; "
                f"point OPIK_CONFIG_PATH at the Opik config file, or unset it (or set it to {os.devnull} for none)"
            )
        return {}
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError, OSError) as exc:
        raise ConfigError(
            f"{path} (the Opik config file) could not be read: {_config_problem(exc)}. "
            "Fix its [opik] section or point OPIK_CONFIG_PATH elsewhere."
        ) from None
    return dict(parser["opik"]) if parser.has_section("opik") else {}


def _config_problem(exc: BaseException) -> str:
    """What is wrong with the file, by line number: configparser's own messages quote the line."""
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"line {exc.lineno} comes before any section header; the file must start with [opik]"
    if isinstance(exc, configparser.DuplicateOptionError):
        return f"option {exc.option!r} is set twice in [{exc.section}] (line {exc.lineno})"
    if isinstance(exc, configparser.DuplicateSectionError):
        return f"section [{exc.section}] appears twice (line {exc.lineno})"
    if isinstance(exc, configparser.ParsingError):
        lines = ", ".join(str(n) for n, _ in getattr(exc, "errors", [])[:5])
        return f"line(s) {lines} are not 'name = value'" if lines else "it is not an INI file"
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__


#: other names the exporter reads (the sidecar's ``OPIK_OTEL_*`` come from its option table)
_OTHER_NAMES = ("OPIK_CONFIG_PATH", "OPIK_OTEL_LOG_LEVEL")
#: settings of Opik's own SDK (``OPIK_*``): not ours, not mistakes
_OPIK_SDK_NAMES = frozenset(
    "OPIK_" + n
    for n in (
        "TRACK_DISABLE DEFAULT_FLUSH_TIMEOUT BACKGROUND_WORKERS CONSOLE_LOGGING_LEVEL FILE_LOGGING_LEVEL LOGGING_FILE "
        "PYTEST_EXPERIMENT_ENABLED FILE_UPLOAD_BACKGROUND_WORKERS ENABLE_LITELLM_MODELS_MONITORING "
        "ENABLE_JSON_REQUEST_COMPRESSION MAXIMAL_QUEUE_SIZE MAXIMAL_QUEUE_SIZE_BATCH_FACTOR SENTRY_ENABLE "
        "DISABLE_SENTRY PROMPT_CACHE_TTL_SECONDS LOG_START_TRACE_SPAN CHECK_TLS_CERTIFICATE"
    ).split()
)
_warned: set = set()
_warned_lock = threading.Lock()


def known_env_names() -> List[str]:
    """Every ``OTEL_EXPORTER_OPIK_*`` / ``OPIK_*`` / ``OPIK_OTEL_*`` name this package reads."""
    names = [s.env for s in SPECS] + list(_OTHER_NAMES)
    try:
        from .sidecar._options import OPTIONS  # the sidecar's option table

        names += [o.env for o in OPTIONS]
    except Exception:  # noqa: BLE001 - the sidecar's extras may be missing: its names are then not known
        pass
    return sorted(set(names))


def warn_unknown_env(env: Mapping[str, str]) -> List[str]:
    """One warning per unknown ``OTEL_EXPORTER_OPIK_*`` / ``OPIK_OTEL_*`` / ``OPIK_*`` name, with the
    closest valid one. An ``OPIK_*`` name of Opik's own SDK is not a mistake; another ``OPIK_*`` name
    is only reported when it is close to one of ours. Returns the warnings (new or not)."""
    candidates = [k for k in env if k.startswith(("OPIK_", _PREFIX))]
    if not candidates:
        return []
    known = set(_BY_ENV) | set(_OTHER_NAMES)
    unknown = [k for k in candidates if k not in known and k not in _OPIK_SDK_NAMES]
    if not unknown:
        return []
    all_known = known_env_names()
    out: List[str] = []
    for name in sorted(unknown):
        if name in all_known:
            continue
        ours = name.startswith((_PREFIX, "OPIK_OTEL_"))
        if name.startswith("OPIK_OTEL_"):
            pool = [n for n in all_known if n.startswith("OPIK_OTEL_")]
        elif name.startswith(_PREFIX):
            pool = [n for n in all_known if n.startswith(_PREFIX)]
        else:  # Opik's own names: a near miss of one of them
            pool = [n for n in all_known if not n.startswith(("OPIK_OTEL_", _PREFIX))]
        close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
        if not ours and not close:
            continue
        hint = f"; did you mean {close[0]}?" if close else "; see `opik-otel settings` for the valid names"
        msg = f"{name} is not a setting of the Opik exporter and is ignored{hint}"
        out.append(msg)
        with _warned_lock:
            if name in _warned:
                continue
            _warned.add(name)
        _logger.warning(msg)
    return out


def resolve_settings(
    overrides: Optional[Mapping[str, Any]] = None, env: Optional[Mapping[str, str]] = None
) -> OpikSettings:
    """Resolve every setting: argument > environment > config file > default."""
    env = os.environ if env is None else env
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(overrides) - set(_BY_FIELD)
    if unknown:
        raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    path = config_file_path(env)
    ini = _read_config_file(path, explicit=bool(env.get("OPIK_CONFIG_PATH")))
    values: Dict[str, Any] = {}
    sources: Dict[str, str] = {}
    for spec in SPECS:
        if spec.field in overrides:
            raw: Any = overrides[spec.field]
            where = "argument"
            label = f"{spec.field}= (argument)"
        elif env.get(spec.env, "").strip():
            raw = env[spec.env]
            where = f"env {spec.env}"
            label = spec.env
        elif spec.ini and ini.get(spec.ini, "").strip():
            raw = ini[spec.ini]
            where = f"{path} [opik] {spec.ini}"
            label = f"{spec.ini} in {path}"
        else:
            values[spec.field] = spec.default
            sources[spec.field] = "default"
            continue
        try:
            values[spec.field] = _coerce(spec, raw)
        except ValueError as exc:  # never the value: it may be (or contain) a secret
            raise ConfigError(f"{label} {exc}{_fix_hint(spec, where)}") from None
        sources[spec.field] = where
    if values["url"] is None and values["api_key"] is None:
        _from_opik_otlp(env, values, sources)
    if values["url"] is None:
        from_key = _url_from_api_key(values["api_key"]) if values["api_key"] else None
        if from_key:
            values["url"], sources["url"] = from_key, "derived from the API key"
        elif values["api_key"]:
            values["url"], sources["url"] = CLOUD_URL, "default (Opik Cloud, because an API key is set)"
        else:
            values["url"], sources["url"] = LOCAL_URL, "default (local Opik)"
    warn_unknown_env(env)
    return OpikSettings(**values, sources=sources)


def _from_opik_otlp(env: Mapping[str, str], values: Dict[str, Any], sources: Dict[str, str]) -> None:
    """No Opik URL or key is set: Opik's own OTLP variables (endpoint plus headers) may give them, and
    the workspace and project where those are defaults. One INFO line says where each came from."""
    from ._otlp_env import describe, from_otlp_env

    found = from_otlp_env(env)
    if found is None:
        return
    used: Dict[str, str] = {}
    for field, raw in found.values.items():
        if field in ("workspace", "project_name") and sources.get(field) != "default":
            continue  # OPIK_WORKSPACE / OPIK_PROJECT_NAME (or the config file) win
        spec = _BY_FIELD[field]
        try:
            values[field] = _coerce(spec, raw)
        except ValueError as exc:  # never the value
            var = found.sources[field].split(" ", 2)[1]
            raise ConfigError(f"{var} gives the Opik {field}, which {exc}; fix {var} or set {spec.env}") from None
        sources[field] = used[field] = found.sources[field]
    _logger.info("Opik exporter: no OPIK_URL_OVERRIDE or OPIK_API_KEY; using Opik's OTLP settings: %s", describe(used))


def _fix_hint(spec: "_Spec", where: str) -> str:
    if where == "argument":
        return f" (the setting {spec.env})"
    if where.startswith("env "):
        return f"; fix {spec.env}"
    return f"; fix {spec.ini} in the Opik config file (or set {spec.env})"
