"""``opik-otel check``: can this configuration deliver spans to Opik?

It resolves the settings exactly as the exporter does (same function, same
sources), prints each with where it came from, then probes Opik over the
exporter's own :class:`Transport` (same headers, TLS and timeout):

1. reachable: ``GET /is-alive/ping`` (no auth; tells a wrong host, port, scheme
   or path from a missing ``/api``);
2. credentials: ``GET /v1/private/projects?size=1`` (a read that needs the key
   and the workspace);
3. project writable: ``POST /v1/private/traces/batch`` with an *empty* batch.
   Opik authenticates and authorizes the write before it validates the body,
   then refuses an empty batch with 422, so a 422 proves the write endpoint
   exists at this URL and accepts these credentials, and nothing is ever
   written (a real probe trace would litter the user's project). Opik creates
   a project on its first write, so a missing project is reported, not failed.

Every failure comes with one line saying what to change.
"""

from __future__ import annotations

import re
import time
from typing import Callable, List, Optional, TextIO, Tuple
from urllib.parse import quote, urlsplit

from ._config import SPECS, ConfigError, OpikSettings
from ._json import loads
from ._transport import Response, Transport, TransportError

OK, FAIL, SKIP, WARN = "ok", "FAIL", "skip", "warn"


class Check:
    """One probe's outcome; ``fix`` is the one line to act on when it failed."""

    __slots__ = ("name", "status", "detail", "fix")

    def __init__(self, name: str, status: str, detail: str, fix: str = "") -> None:
        self.name = name
        self.status = status
        self.detail = detail
        self.fix = fix

    @property
    def passed(self) -> bool:
        return self.status in (OK, WARN)

    def __repr__(self) -> str:
        return f"Check({self.name!r}, {self.status!r}, {self.detail!r}, fix={self.fix!r})"


# -- settings report ---------------------------------------------------------------------


def _show(value: object) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, tuple):
        return ",".join(value) if value else "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def settings_rows(settings: OpikSettings) -> List[Tuple[str, str, str]]:
    """``(setting, value, source)`` for every setting; the API key masked."""
    return [
        (spec.env, _show(settings.masked(spec.field)), settings.sources.get(spec.field, "default"))
        for spec in SPECS
    ]


def format_settings(settings: OpikSettings) -> str:
    rows = settings_rows(settings)
    w_name = max(len(r[0]) for r in rows)
    w_value = min(max(len(r[1]) for r in rows), 48)
    return "\n".join(f"  {name:<{w_name}}  {value:<{w_value}}  {source}" for name, value, source in rows)


#: the ``opik-otel`` options that set a setting as an "argument"
_FLAGS = {"url": "--url", "workspace": "--workspace", "project_name": "--project", "timeout": "--timeout"}


def _where(settings: OpikSettings, field: str) -> str:
    """Which knob to turn for ``field``, given where its current value came from."""
    spec = next(s for s in SPECS if s.field == field)
    source = settings.sources.get(field, "default")
    if source == "argument":
        flag = _FLAGS.get(field)
        return f"{flag} (or {spec.env})" if flag else f"the {field}= argument (or {spec.env})"
    if "[opik]" in source:
        return f"{spec.ini} in {source.split(' [opik]')[0]} (or {spec.env})"
    return spec.env


# -- diagnosis ---------------------------------------------------------------------------

_DNS = re.compile(
    r"name or service not known|nodename nor servname|temporary failure in name resolution|"
    r"no address associated|getaddrinfo failed|name resolution|\[errno -[235]\]|\[errno 11001\]",
    re.I,
)
_REFUSED = re.compile(r"connection refused|errno 111\]|errno 61\]|errno 10061|actively refused", re.I)
_TLS_VERIFY = re.compile(r"certificate verify failed|certificate_verify_failed|self[- ]signed|unable to get local issuer", re.I)
_TLS_PLAIN = re.compile(r"wrong_version_number|wrong version number|record layer failure|unknown protocol|packet length too long", re.I)
_TLS_ANY = re.compile(r"\bssl\b|\btls\b|handshake", re.I)
_TIMEOUT = re.compile(r"timeout|timed out", re.I)


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def suggest_api_url(url: str) -> Optional[str]:
    """The base URL the user most likely meant, or None when the path looks right."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    root = f"{parts.scheme}://{parts.netloc}"
    m = re.search(r"/v1/private(/|$)", path)
    if m:  # the OTLP endpoint or an API route pasted as the base URL
        return root + path[: m.start()]
    if path.endswith("/api"):
        return None
    if parts.hostname and parts.hostname.endswith("comet.com"):
        return root + "/opik/api"
    return root + path + "/api"


def explain_transport_error(message: str, settings: OpikSettings) -> Tuple[str, str]:
    """``(problem, fix)`` for a request that got no HTTP answer."""
    url = settings.url
    where = _where(settings, "url")
    hp = _host_port(url)
    host = urlsplit(url).hostname or "?"
    if _DNS.search(message):
        return (
            f"DNS: the host name {host!r} does not resolve",
            f"fix: correct the host in {where} (now {url}); check spelling, VPN or /etc/hosts",
        )
    if _REFUSED.search(message):
        return (
            f"connection refused at {hp}: nothing listens there",
            f"fix: start Opik (self-hosted: ./opik.sh), or point {where} at the host and port where it runs "
            "(self-hosted default http://localhost:5173/api)",
        )
    if _TLS_PLAIN.search(message):
        plain = "http://" + url.split("://", 1)[1]
        return (
            f"TLS error at {hp}: the server does not speak HTTPS there ({message})",
            f"fix: use {plain} in {where}, or the server's HTTPS port",
        )
    if _TLS_VERIFY.search(message):
        return (
            f"TLS error: the certificate of {hp} is not trusted ({message})",
            "fix: set OTEL_EXPORTER_OPIK_CERTIFICATE to the PEM file of the CA that signed it "
            "(OPIK_CHECK_TLS_CERTIFICATE=false only for testing)",
        )
    if _TLS_ANY.search(message):
        return (
            f"TLS error at {hp}: {message}",
            "fix: check the https:// URL and the server's certificate; a private CA goes in OTEL_EXPORTER_OPIK_CERTIFICATE",
        )
    if _TIMEOUT.search(message):
        return (
            f"no answer from {hp} within {settings.timeout:g} s ({message})",
            f"fix: check {where} (a firewall or proxy may swallow the connection), or raise OTEL_EXPORTER_OPIK_TIMEOUT",
        )
    return (f"no answer from {hp}: {message}", f"fix: check {where} (now {url})")


def _is_html(resp: Response) -> bool:
    ctype = resp.headers.get("content-type", "").lower()
    return "text/html" in ctype or resp.text.lstrip()[:15].lower().startswith(("<!doctype html", "<html"))


def _private_path_note(url: str) -> Optional[str]:
    """Why a URL with ``/v1/private`` in it is wrong, or None."""
    path = urlsplit(url).path.rstrip("/")
    if not re.search(r"/v1/private(/|$)", path):
        return None
    if re.search(r"/v1/private/otel(/|$)", path):
        return (
            "it is Opik's OTLP endpoint, meant for OTLP exporters; this exporter writes to Opik's REST API "
            "and needs its base URL, ending in /api"
        )
    return "it ends in an API route (/v1/private/...); the exporter needs the base URL, ending in /api"


def _wrong_path(settings: OpikSettings, resp: Response, probe: str) -> Tuple[str, str]:
    where = _where(settings, "url")
    suggestion = suggest_api_url(settings.url)
    what = "an HTML page (the Opik UI or another web site)" if _is_html(resp) else f"HTTP {resp.status}"
    problem = f"{probe} answered {what}: {settings.url} is not the Opik REST API"
    note = _private_path_note(settings.url)
    if suggestion:
        return problem + f" ({note or 'the /api part is missing'})", f"fix: set {where} to {suggestion}"
    return (
        problem,
        f"fix: check host and port in {where}: self-hosted Opik serves the API at http://<host>:5173/api "
        "(or at http://<host>:8080 without /api when you talk to the backend directly); "
        "Opik Cloud at https://www.comet.com/opik/api",
    )


def _auth_failure(settings: OpikSettings, resp: Response, action: str) -> Tuple[str, str]:
    if resp.status == 401:
        if not settings.api_key:
            return (
                f"HTTP 401 to {action}: this Opik requires an API key and none is set",
                "fix: set OPIK_API_KEY (Opik Cloud: your key from the Opik settings page), or api_key in ~/.opik.config",
            )
        return (
            f"HTTP 401 to {action}: the API key {settings.masked('api_key')} was refused",
            f"fix: set {_where(settings, 'api_key')} to a valid key for this Opik (keys are per Opik installation)",
        )
    return (
        f"HTTP 403 to {action}: the key has no access to workspace {settings.workspace!r}",
        f"fix: set {_where(settings, 'workspace')} to a workspace this key belongs to (Opik Cloud: usually your user name)",
    )


def _unexpected(resp: Response, action: str, where: str) -> Tuple[str, str]:
    body = re.sub(r"\s+", " ", resp.text)[:200]
    if resp.status >= 500 or resp.status in (408, 429):
        return (f"HTTP {resp.status} to {action}: {body}", "fix: Opik is up but failing or overloaded; retry later or check its logs")
    return (f"HTTP {resp.status} to {action}: {body}", f"fix: check {where}")


# -- probes --------------------------------------------------------------------------------

Probe = Callable[[], Response]


def _timed(fn: Probe) -> Tuple[Optional[Response], Optional[str], float]:
    t0 = time.monotonic()
    try:
        resp: Optional[Response] = fn()
        err = None
    except TransportError as exc:
        resp, err = None, str(exc)
    return resp, err, (time.monotonic() - t0) * 1000


def run_checks(settings: OpikSettings, transport: Optional[Transport] = None) -> List[Check]:
    """Probe Opik as the exporter would; later probes are skipped once one cannot connect."""
    checks: List[Check] = []
    if settings.dry_run:
        checks.append(Check("dry run", WARN, "OTEL_EXPORTER_OPIK_DRY_RUN is on: the exporter prints traces and sends nothing"))
    if not settings.check_tls_certificate and settings.url.startswith("https"):
        checks.append(Check("tls", WARN, "TLS certificate verification is off (OPIK_CHECK_TLS_CERTIFICATE=false): use only for testing"))
    try:
        tr = transport or Transport(settings)
    except ConfigError as exc:
        checks.append(Check("certificate", FAIL, str(exc), "fix: point OTEL_EXPORTER_OPIK_CERTIFICATE at a readable PEM file"))
        return checks
    try:
        _probe_all(settings, tr, checks)
    finally:
        if transport is None:
            tr.close()
    return checks


def _probe_all(settings: OpikSettings, tr: Transport, checks: List[Check]) -> None:
    url_where = _where(settings, "url")
    timeout = settings.timeout

    # 1. reachable, and the URL is Opik's API
    resp, err, ms = _timed(lambda: tr.get("/is-alive/ping", timeout=timeout))
    name = "reachable"
    if resp is None:
        problem, fix = explain_transport_error(err or "", settings)
        note = _private_path_note(settings.url)
        if note:  # the host or port is wrong, and the path is next
            fix += f"; also, {note}: {suggest_api_url(settings.url)}"
        checks.append(Check(name, FAIL, problem, fix))
        checks.append(Check("credentials", SKIP, "needs a reachable Opik"))
        checks.append(Check("project writable", SKIP, "needs a reachable Opik"))
        return
    if resp.status == 400 and _is_html(resp) and settings.url.startswith("http://"):
        https = "https://" + settings.url.split("://", 1)[1]
        problem, fix = f"HTTP 400 HTML from {_host_port(settings.url)}: it expects HTTPS", f"fix: use {https} in {url_where}"
    elif resp.status in (301, 302, 303, 307, 308):
        loc = resp.headers.get("location", "?")
        problem = f"GET /is-alive/ping was redirected to {loc}; the exporter does not follow redirects"
        fix = f"fix: set {url_where} to the API URL the redirect points at (e.g. https:// instead of http://)"
    elif resp.status in (404, 405) or _is_html(resp):
        problem, fix = _wrong_path(settings, resp, "GET /is-alive/ping")
    elif not resp.ok:
        problem, fix = _unexpected(resp, "GET /is-alive/ping", url_where)
    else:
        problem = fix = ""
    if problem:
        checks.append(Check(name, FAIL, problem, fix))
        checks.append(Check("credentials", SKIP, "needs the Opik API URL"))
        checks.append(Check("project writable", SKIP, "needs the Opik API URL"))
        return
    checks.append(Check(name, OK, f"GET {settings.url}/is-alive/ping answered {resp.status} in {ms:.0f} ms"))

    # 2. the key and workspace are accepted for reading
    name = "credentials"
    resp, err, ms = _timed(lambda: tr.get("/v1/private/projects?size=1", timeout=timeout))
    cred_ok = False
    if resp is None:
        problem, fix = explain_transport_error(err or "", settings)
        checks.append(Check(name, FAIL, problem, fix))
    elif resp.status in (401, 403):
        checks.append(Check(name, FAIL, *_auth_failure(settings, resp, "GET /v1/private/projects")))
    elif resp.status in (404, 405) or _is_html(resp):
        checks.append(Check(name, FAIL, *_wrong_path(settings, resp, "GET /v1/private/projects")))
    elif not resp.ok:
        checks.append(Check(name, FAIL, *_unexpected(resp, "GET /v1/private/projects", url_where)))
    else:
        cred_ok = True
        who = f"API key {settings.masked('api_key')}" if settings.api_key else "no API key (fine for a self-hosted Opik)"
        checks.append(Check(name, OK, f"workspace {settings.workspace!r} accepted with {who}"))

    # 3. the project can be written: an empty batch is authorized, then refused by validation
    name = "project writable"
    if not cred_ok:
        checks.append(Check(name, SKIP, "needs accepted credentials"))
        return
    resp, err, ms = _timed(lambda: tr.request("POST", "/v1/private/traces/batch", b'{"traces":[]}', timeout=timeout))
    project = settings.project_name
    if resp is None:
        problem, fix = explain_transport_error(err or "", settings)
        checks.append(Check(name, FAIL, problem, fix))
        return
    if resp.status in (401, 403):
        checks.append(Check(name, FAIL, *_auth_failure(settings, resp, "POST /v1/private/traces/batch (a write)")))
        return
    if resp.status in (404, 405) or _is_html(resp):
        checks.append(Check(name, FAIL, *_wrong_path(settings, resp, "POST /v1/private/traces/batch")))
        return
    if resp.status not in (400, 422) and not resp.ok:
        checks.append(Check(name, FAIL, *_unexpected(resp, "POST /v1/private/traces/batch", url_where)))
        return
    exists = _project_exists(tr, project, timeout)
    note = {True: "the project exists", False: "the project does not exist yet; Opik creates it with the first trace",
            None: "could not tell whether the project exists"}[exists]
    checks.append(Check(name, OK, f"project {project!r}: writes to workspace {settings.workspace!r} are authorized "
                                  f"(an empty probe batch got {resp.status}; nothing was written); {note}"))


def _project_exists(tr: Transport, project: str, timeout: float) -> Optional[bool]:
    try:
        resp = tr.get(f"/v1/private/projects?size=100&name={quote(project)}", timeout=timeout)
        if not resp.ok:
            return None
        page = loads(resp.text)
        names = [p.get("name") for p in page.get("content", []) if isinstance(p, dict)]
    except (TransportError, ValueError, AttributeError):
        return None
    return project in names


# -- command -------------------------------------------------------------------------------


def report(settings: OpikSettings, checks: List[Check], out: TextIO) -> int:
    """Print the settings and the checks; the exit code: 0 only when every check passed."""
    out.write("Settings, resolved as the exporter resolves them (argument > environment > config file > default):\n")
    out.write(format_settings(settings) + "\n\n")
    out.write(f"Checks against {settings.url}\n")
    for c in checks:
        out.write(f"  [{c.status}]{' ' * (5 - len(c.status))}{c.name}: {c.detail}\n")
        if c.fix and not c.passed:
            out.write(f"          {c.fix}\n")
    failed = [c for c in checks if c.status == FAIL]
    skipped = [c for c in checks if c.status == SKIP]
    if failed or skipped:
        extra = f" ({len(skipped)} skipped)" if skipped else ""
        out.write(f"\n{len(failed)} check{'s' if len(failed) != 1 else ''} failed{extra}: fix the first failure and run again.\n")
    else:
        out.write(f"\nAll {len(checks)} checks passed: spans exported with these settings will reach Opik.\n")
    out.flush()
    return 1 if failed or skipped else 0


def settings_markdown() -> str:
    """The settings tables of ``docs/settings.md``: the exporter's (from :data:`SPECS`), the
    sidecar's ``OPIK_OTEL_*`` (from ``opik-otel serve``'s own options and help texts) and
    the few other variables read."""
    lines = [
        "| Environment variable | `~/.opik.config` key | Argument | Default | Meaning |",
        "|---|---|---|---|---|",
    ]
    for spec in SPECS:
        default = spec.default
        if spec.field == "url":
            shown = "`http://localhost:5173/api`; Opik Cloud when an API key is set"
        elif default is None:
            shown = "not set"
        else:
            shown = f"`{_show(default)}`"
        ini = f"`{spec.ini}`" if spec.ini else ""
        doc = spec.doc.replace("|", "\\|")
        lines.append(f"| `{spec.env}` | {ini} | `{spec.field}=` | {shown} | {doc} |")
    lines += [
        "",
        "### `opik-otel serve` (the sidecar)",
        "",
        "The Opik settings above apply to the sidecar as well; these are its own (an option wins over its variable):",
        "",
        *_sidecar_markdown(),
        "",
        "### Other variables",
        "",
        *_other_markdown(),
    ]
    return "\n".join(lines) + "\n"


#: variables read outside the settings table: (name, default, meaning)
_OTHER_VARIABLES: Tuple[Tuple[str, str, str], ...] = (
    ("OPIK_CONFIG_PATH", "`~/.opik.config`", "the Opik config file (the INI file `opik configure` writes); a path that is "
     "not a file is a configuration error, `/dev/null` means none"),
    ("OTEL_TRACES_EXPORTER", "", "`opik` selects this exporter for `opentelemetry-instrument` (zero code)"),
    ("OTEL_TRACES_SAMPLER", "", "`opik` selects `OpikSampler` (parent-based, writes the `opik` tracestate entry) "
     "for `opentelemetry-instrument`"),
    ("OTEL_TRACES_SAMPLER_ARG", "`1.0`", "with `OTEL_TRACES_SAMPLER=opik`: the sampling ratio of new traces, 0 to 1 "
     "(children follow their parent)"),
    ("OTEL_METRICS_EXPORTER", "`none` (this package's distro)", "under `opentelemetry-instrument` with this package's "
     "distro, `none` unless set; an exporter named but not installed is left out with a warning"),
    ("OTEL_LOGS_EXPORTER", "`none` (this package's distro)", "`opik` joins GenAI content sent as log records to its "
     "spans (`OpikLogExporter`); `none` unless set under this package's distro"),
    ("OTEL_PYTHON_DISTRO", "", "`opik` makes `opentelemetry-instrument` use this package's distro when "
     "`opentelemetry-distro` is installed too (otherwise the first one found wins)"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "", "migration: an Opik OTLP endpoint (`<opik>/api/v1/private/otel`) gives the Opik "
     "URL while no `OPIK_URL_OVERRIDE` / `OPIK_API_KEY` is set; any other endpoint is not read"),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "the same, ending in `/v1/private/otel/v1/traces`; wins over "
     "`OTEL_EXPORTER_OTLP_ENDPOINT`"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "", "with an Opik OTLP endpoint: `Authorization` (the API key), `Comet-Workspace`, "
     "`projectName` (URL-encoded values); `OTEL_EXPORTER_OTLP_TRACES_HEADERS` wins over it"),
)


def _other_markdown() -> List[str]:
    lines = ["| Environment variable | Default | Meaning |", "|---|---|---|"]
    for name, default, doc in _OTHER_VARIABLES:
        lines.append(f"| `{name}` | {default or 'not set'} | {doc} |")
    return lines


def _sidecar_markdown() -> List[str]:
    """One row per ``OPIK_OTEL_*`` variable, from the sidecar's option table (the one ``--help`` shows)."""
    from .sidecar._options import OPTIONS

    lines = ["| Environment variable | `opik-otel serve` option | Default | Meaning |", "|---|---|---|---|"]
    for option in OPTIONS:
        default = option.shown_default()
        shown = default if default == "not set" or " " in default else f"`{default}`"
        doc = option.help.replace("|", "\\|")
        lines.append(f"| `{option.env}` | `{option.flag}` | {shown} | {doc} |")
    return lines
