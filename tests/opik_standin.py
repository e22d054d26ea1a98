"""A local stand-in for the Opik REST API, for tests.

It serves real HTTP on loopback and mimics what the exporter relies on:

* ``POST /api/v1/private/traces/batch`` and ``/spans/batch`` (``TraceBatch_Write`` /
  ``SpanBatch_Write``), ``PUT /api/v1/private/{traces,spans}/feedback-scores``
  (``FeedbackScoreBatch_Write``), ``GET /api/is-alive/ping``, ``GET /api/v1/private/projects``,
  ``POST /api/v1/private/prompts/versions/retrieve`` (``PromptVersionRetrieve_Detail`` ->
  ``PromptVersion_Detail`` or 404) over the prompts a test adds with :meth:`OpikStandin.add_prompt`.
* Bodies validated against the schemas derived from Opik's OpenAPI spec
  (``tests/schema/opik_write_schemas.json``): 422 ``{"errors": [...]}`` like Dropwizard,
  400 for bad JSON, 400 for ids that are not UUIDv7 (or are dated out of range).
* Storage with ReplacingMergeTree semantics (the newest ``last_updated_at`` wins).
* Optional auth (``Authorization: <api key>``, ``Comet-Workspace``), per-request records,
  counters, and thread-safe fault injection (:class:`Fault`).

Typical use::

    with OpikStandin() as opik:
        ...  # point the exporter at opik.url
        opik.wait_for_counts(traces=1, spans=3)
        assert opik.duplicates() == {}
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import http
import json
import os
import re
import socket
import threading
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, Union
from urllib.parse import parse_qs, urlencode, urlsplit

from jsonschema import Draft202012Validator, FormatChecker

__all__ = [
    "DEFAULT_PROJECT",
    "DEFAULT_WORKSPACE",
    "Fault",
    "Faults",
    "OpikStandin",
    "RecordedRequest",
    "Reply",
    "http_date",
    "is_uuid7",
    "new_uuid7",
    "parse_datetime",
    "uuid7_timestamp_ms",
]

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "opik_write_schemas.json"
DEFAULT_PROJECT = "Default Project"
DEFAULT_WORKSPACE = "default"
MIN_UUID7_MS = 946684800000  # 2000-01-01T00:00:00Z
API_PREFIX = "/api"

# --------------------------------------------------------------------------- helpers

_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})\Z"
)


def parse_datetime(value: str) -> Optional[datetime]:
    """Parse an RFC 3339 date-time (what Java's ``Instant`` accepts); None if invalid."""
    m = _DATE_TIME.match(value) if isinstance(value, str) else None
    if not m:
        return None
    y, mo, d, h, mi, s, frac, off = m.groups()
    tz = timezone.utc
    if off not in ("Z", "z"):
        oh, om = int(off[1:3]), int(off[4:6])
        if oh > 23 or om > 59:
            return None
        tz = timezone((1 if off[0] == "+" else -1) * timedelta(hours=oh, minutes=om))
    try:
        return datetime(int(y), int(mo), int(d), int(h), int(mi), min(int(s), 59),
                        int((frac or "0").ljust(6, "0")[:6]), tzinfo=tz)
    except ValueError:
        return None


def uuid7_timestamp_ms(uuid_str: str) -> int:
    """The 48-bit Unix-ms timestamp embedded in (the top bits of) a UUID."""
    return uuid.UUID(uuid_str).int >> 80


def is_uuid7(uuid_str: str) -> bool:
    """True for a version 7 UUID with the RFC 4122 variant."""
    try:
        u = uuid.UUID(uuid_str)
    except (ValueError, TypeError, AttributeError):
        return False
    return u.version == 7 and u.variant == uuid.RFC_4122


def new_uuid7(ms: Optional[int] = None) -> str:
    """A fresh UUIDv7 string, optionally with a chosen embedded timestamp (ms)."""
    ms = int(time.time() * 1000) if ms is None else ms
    value = ((ms & ((1 << 48) - 1)) << 80) | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return str(uuid.UUID(int=value))


def http_date(seconds_from_now: float) -> str:
    """An HTTP-date (for ``Retry-After``) this many seconds from now."""
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


_FORMATS = FormatChecker()


@_FORMATS.checks("date-time")
def _check_date_time(instance: object) -> bool:
    return not isinstance(instance, str) or parse_datetime(instance) is not None


@_FORMATS.checks("uuid")
def _check_uuid(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    try:
        uuid.UUID(instance)
    except ValueError:
        return False
    return len(instance) == 36 and all(instance[i] == "-" for i in (8, 13, 18, 23))


# --------------------------------------------------------------------------- data types


@dataclass
class Reply:
    """An HTTP answer: status, JSON body (None = empty) and extra headers."""

    status: int
    body: Any = None
    headers: Dict[str, str] = field(default_factory=dict)


def _error(status: int, message: Optional[str] = None, details: Optional[str] = None) -> Reply:
    """Dropwizard ``ErrorMessage`` shaped reply."""
    body: Dict[str, Any] = {"code": status,
                            "message": message or f"HTTP {status} {http.HTTPStatus(status).phrase}"}
    if details is not None:
        body["details"] = details
    return Reply(status, body)


@dataclass
class RecordedRequest:
    """One request as received (headers have lower-cased names)."""

    method: str
    path: str
    query: str
    headers: Dict[str, str]
    body_size: int  # raw bytes on the wire (before gunzip)
    decoded_size: int = 0  # bytes after gunzip
    json: Any = None  # decoded JSON body, or None
    status: Optional[int] = None  # status answered (None while in flight / dropped)
    time: float = field(default_factory=time.time)


FaultHandler = Callable[[RecordedRequest], Union[Reply, int, None]]
ItemPredicate = Callable[[Dict[str, Any]], bool]


@dataclass(eq=False)
class Fault:
    """One injected misbehaviour; build it with the class methods.

    A fault applies to requests matching ``path`` (with or without the ``/api``
    prefix; None = any) and ``method`` (None = any), at most ``times`` times
    (None = forever).  Kinds, by the field that is set:

    * ``status``: answer with it (plus ``headers``/``body``) instead of processing.
    * ``delay``: sleep first (a stall, to make the client time out).
    * ``after_store``: process and store normally, *then* apply delay/status/drop.
    * ``drop``: close the connection without answering.
    * ``reject_item``: 422 the whole batch if any item matches the predicate.
    * ``max_body_bytes``: 413 when the decompressed body is larger.
    * ``handler``: custom callable; returns a Reply/status to answer, or None to pass.
    """

    status: Optional[int] = None
    times: Optional[int] = 1
    path: Optional[str] = None
    method: Optional[str] = None
    headers: Dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0
    after_store: bool = False
    drop: bool = False
    reject_item: Optional[ItemPredicate] = None
    max_body_bytes: Optional[int] = None
    handler: Optional[FaultHandler] = None
    fired: int = 0  # how many times it has applied

    @classmethod
    def respond(cls, status: int, times: Optional[int] = 1, *, headers: Optional[Dict[str, str]] = None,
                body: Any = None, path: Optional[str] = None, method: Optional[str] = None,
                delay: float = 0.0, after_store: bool = False) -> "Fault":
        """Answer ``status`` for the next ``times`` requests (e.g. 503, 429 + Retry-After)."""
        return cls(status=status, times=times, headers=dict(headers or {}), body=body, path=path,
                   method=method, delay=delay, after_store=after_store)

    @classmethod
    def stall(cls, seconds: float, times: Optional[int] = 1, *, after_store: bool = False,
              status: Optional[int] = None, path: Optional[str] = None,
              method: Optional[str] = None) -> "Fault":
        """Delay the answer; with ``after_store`` the data is stored before the stall."""
        return cls(delay=seconds, times=times, after_store=after_store, status=status, path=path,
                   method=method)

    @classmethod
    def drop_connection(cls, times: Optional[int] = 1, *, after_store: bool = False,
                        path: Optional[str] = None) -> "Fault":
        """Close the connection without an answer (client sees a protocol/reset error)."""
        return cls(drop=True, times=times, after_store=after_store, path=path)

    @classmethod
    def poison(cls, predicate: ItemPredicate, times: Optional[int] = None, *,
               path: Optional[str] = None) -> "Fault":
        """422 any batch holding an item for which ``predicate(item)`` is true."""
        return cls(reject_item=predicate, times=times, path=path)

    @classmethod
    def body_limit(cls, max_bytes: int, times: Optional[int] = None, *,
                   path: Optional[str] = None) -> "Fault":
        """413 for bodies whose decompressed size exceeds ``max_bytes``."""
        return cls(max_body_bytes=max_bytes, status=413, times=times, path=path)

    @classmethod
    def custom(cls, handler: FaultHandler, times: Optional[int] = None, *,
               path: Optional[str] = None, method: Optional[str] = None) -> "Fault":
        """Call ``handler(request)``; a Reply or int answers, None lets the request through."""
        return cls(handler=handler, times=times, path=path, method=method)

    def matches(self, req: RecordedRequest) -> bool:
        if self.method is not None and self.method.upper() != req.method:
            return False
        return self.path is None or req.path in (self.path, API_PREFIX + self.path)

    def reply(self) -> Reply:
        status = self.status or 500
        base = _error(status)
        return Reply(status, base.body if self.body is None else self.body, dict(self.headers))


class Faults:
    """Thread-safe collection of active faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: List[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)

    def candidates(self, req: RecordedRequest, after_store: bool) -> List[Fault]:
        """Active faults that match ``req`` in the given phase (not yet consumed)."""
        with self._lock:
            return [f for f in self._faults
                    if f.after_store == after_store and f.matches(req)
                    and (f.times is None or f.fired < f.times)]

    def fire(self, fault: Fault) -> bool:
        """Atomically consume one use of ``fault``; False if it is used up."""
        with self._lock:
            if fault.times is not None and fault.fired >= fault.times:
                return False
            fault.fired += 1
            return True


# --------------------------------------------------------------------------- the server

_DROP = object()  # sentinel reply: close the connection without answering

TraceKey = Tuple[str, str, str]  # workspace, project, id
SpanKey = Tuple[str, str, str, Optional[str], str]  # workspace, project, trace_id, parent, id

_BATCHES = {  # path -> (method, schema, list field, entity)
    "/v1/private/traces/batch": ("POST", "TraceBatch_Write", "traces", "trace"),
    "/v1/private/spans/batch": ("POST", "SpanBatch_Write", "spans", "span"),
    "/v1/private/traces/feedback-scores": ("PUT", "FeedbackScoreBatch_Write", "scores", "trace_score"),
    "/v1/private/spans/feedback-scores": ("PUT", "FeedbackScoreBatch_Write", "scores", "span_score"),
}
_GETS = {"/is-alive/ping", "/v1/private/projects"}
#: Opik's attachment endpoints (path -> method); schemas in tests/schema/opik_attachment_schemas.json
_ATTACHMENT = {
    "/v1/private/attachment/upload-start": "POST",
    "/v1/private/attachment/upload-complete": "POST",
    "/v1/private/attachment/upload": "PUT",
    "/v1/private/attachment/list": "GET",
}
#: where the S3-style flow's pre-signed part URLs point (served by the stand-in, outside /api)
_PARTS_PREFIX = "/s3-parts/"
ATTACHMENT_SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "opik_attachment_schemas.json"
_PROMPT_RETRIEVE = "/v1/private/prompts/versions/retrieve"
#: Opik's PromptVersionRetrieve_Detail (openapi.yaml), the request of _PROMPT_RETRIEVE
_PROMPT_RETRIEVE_SCHEMA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "commit": {"type": "string"},
        "environment": {"type": "string", "maxLength": 150, "pattern": "^[A-Za-z0-9_-]+$"},
        "version_number": {"type": "string", "maxLength": 10, "pattern": "v\\d+"},
        "project_name": {"type": "string", "pattern": "(?s)^\\s*(\\S.*\\S|\\S)\\s*$"},
    },
}


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True  # SO_REUSEADDR: stop() then start() on the same port
    daemon_threads = True
    block_on_close = False
    standin: "OpikStandin"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (timeouts, dropped connections under test) are expected, not errors."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, OSError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.standin._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.standin._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        split = urlsplit(self.path)
        try:
            raw = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(_error(400, "Malformed chunked body"))
            return
        req = RecordedRequest(method=self.command, path=split.path, query=split.query,
                              headers={k.lower(): v for k, v in self.headers.items()},
                              body_size=len(raw))
        try:
            reply = self.server.standin._process(req, raw)
        except Exception as exc:  # noqa: BLE001 - a bug here or in a custom fault: answer like a server error
            reply = _error(500, f"Stand-in error: {exc!r}")
        if reply is _DROP:
            self.close_connection = True
            return
        assert isinstance(reply, Reply)
        req.status = reply.status
        self.server.standin._count(req)
        try:
            self._send(reply)
        except OSError:
            self.close_connection = True  # the client went away (e.g. it timed out)

    def _send(self, reply: Reply) -> None:
        body = b"" if reply.body is None or reply.status in (204, 304) else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status not in (204, 304):
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class OpikStandin:
    """In-process fake Opik server; see the module docstring.

    ``api_key``: if set, requests to ``/v1/private`` need ``Authorization: <api_key>`` (401).
    ``workspace``: if set, ``Comet-Workspace`` must equal it (403).
    ``uuid_future_tolerance``: seconds an id's UUIDv7 timestamp may lie in the future.
    ``uuid_min_ms``: ids dated before this (default 2000-01-01) are rejected.
    ``uuid_max_age``: if set, trace/span ``id`` older than this many seconds is rejected
    (Opik's optional ingestion window; referenced ids are exempt, as in Opik).
    """

    def __init__(self, api_key: Optional[str] = None, workspace: Optional[str] = None, *,
                 port: int = 0, uuid_future_tolerance: float = 60.0,
                 uuid_min_ms: int = MIN_UUID7_MS, uuid_max_age: Optional[float] = None) -> None:
        self.api_key = api_key
        self.workspace = workspace
        self.uuid_future_tolerance = uuid_future_tolerance
        self.uuid_min_ms = uuid_min_ms
        self.uuid_max_age = uuid_max_age
        self.faults = Faults()
        self._port = port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._conns: Set[socket.socket] = set()
        self._traces: Dict[TraceKey, Dict[str, Any]] = {}
        self._spans: Dict[SpanKey, Dict[str, Any]] = {}
        self._scores: Dict[Tuple[str, ...], Dict[str, Any]] = {}
        self._requests: List[RecordedRequest] = []
        self._counts: Counter = Counter()
        #: prompt name -> its versions (PromptVersion_Detail), oldest first
        self._prompts: Dict[str, List[Dict[str, Any]]] = {}
        self._prompt_validator = Draft202012Validator(_PROMPT_RETRIEVE_SCHEMA)
        #: ``"local"``: upload-start answers ``BEMinIO`` (self-hosted without S3); ``"s3"``: part URLs
        self.attachment_mode = "local"
        #: (entity_type, entity_id, file_name) -> {"data", "mime_type", "project_name", "via"}
        self._attachments: Dict[Tuple[str, str, str], Dict[str, Any]] = {}
        self._attachment_writes: List[Tuple[str, str, str]] = []
        self._uploads: Dict[str, Dict[str, Any]] = {}
        att = json.loads(ATTACHMENT_SCHEMA_PATH.read_text(encoding="utf-8"))
        self._att_validators = {
            name: Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": att["components"]},
                                       format_checker=_FORMATS)
            for name in ("StartMultipartUploadRequest", "CompleteMultipartUploadRequest")
        }
        self._att_params = att["x-query-parameters"]
        schemas = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
        self._validators = {
            name: Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                                        "components": schemas["components"]},
                                       format_checker=_FORMATS)
            for name in {spec[1] for spec in _BATCHES.values()}
        }

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """Base URL, like a self-hosted ``http://localhost:5173/api``."""
        return f"http://127.0.0.1:{self._port}{API_PREFIX}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> "OpikStandin":
        """Listen (again) on 127.0.0.1; after a stop() it reuses the same port."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.standin = self
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"opik-standin-{self._port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut open connections (clients then get 'connection refused')."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes stalled handlers
        server.shutdown()
        server.server_close()
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> "OpikStandin":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    # ------------------------------------------------------------------ inspection

    @property
    def traces(self) -> Dict[TraceKey, Dict[str, Any]]:
        """Stored traces (latest version), keyed by (workspace, project, id)."""
        with self._lock:
            return dict(self._traces)

    @property
    def spans(self) -> Dict[SpanKey, Dict[str, Any]]:
        """Stored spans, keyed by (workspace, project, trace_id, parent_span_id, id)."""
        with self._lock:
            return dict(self._spans)

    @property
    def feedback_scores(self) -> Dict[Tuple[str, ...], Dict[str, Any]]:
        """Stored scores, keyed by (workspace, 'trace'|'span', project, id, name)."""
        with self._lock:
            return dict(self._scores)

    @property
    def requests(self) -> List[RecordedRequest]:
        """Every request received, in arrival order."""
        with self._lock:
            return list(self._requests)

    def traces_by_id(self) -> Dict[str, Dict[str, Any]]:
        """Trace rows by id (if an id is stored under several keys, one of them)."""
        return {row["id"]: row for row in self.traces.values()}

    def spans_by_id(self) -> Dict[str, Dict[str, Any]]:
        """Span rows by id (if an id is stored under several keys, one of them)."""
        return {row["id"]: row for row in self.spans.values()}

    def duplicates(self) -> Dict[str, Dict[str, List[Dict[str, Any]]]]:
        """Ids stored under more than one key: ``{"traces"|"spans": {id: [rows]}}``; {} if none."""
        out: Dict[str, Dict[str, List[Dict[str, Any]]]] = {}
        for kind, rows in (("traces", self.traces.values()), ("spans", self.spans.values())):
            by_id: Dict[str, List[Dict[str, Any]]] = {}
            for row in rows:
                by_id.setdefault(row["id"], []).append(row)
            dup = {i: r for i, r in by_id.items() if len(r) > 1}
            if dup:
                out[kind] = dup
        return out

    @property
    def counts(self) -> Counter:
        """Requests answered, by (path, status)."""
        with self._lock:
            return Counter(self._counts)

    def count(self, path: Optional[str] = None, status: Optional[int] = None) -> int:
        """Requests answered for ``path`` (with or without /api) and/or ``status``."""
        paths = None if path is None else {path, API_PREFIX + path}
        return sum(n for (p, s), n in self.counts.items()
                   if (paths is None or p in paths) and (status is None or s == status))

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0,
                 interval: float = 0.02, message: str = "") -> bool:
        """Poll ``predicate`` until true; AssertionError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(message or f"condition not met within {timeout}s; {self.summary()}")
            time.sleep(interval)
        return True

    def wait_for_counts(self, traces: Optional[int] = None, spans: Optional[int] = None,
                        timeout: float = 10.0) -> bool:
        """Wait until at least N traces / M spans are stored; fail at once if more."""
        def reached() -> bool:
            n_traces, n_spans = len(self.traces), len(self.spans)
            if (traces is not None and n_traces > traces) or (spans is not None and n_spans > spans):
                raise AssertionError(f"expected traces={traces} spans={spans}; {self.summary()}")
            return (traces is None or n_traces >= traces) and (spans is None or n_spans >= spans)

        return self.wait_for(reached, timeout, message=f"expected traces={traces} spans={spans}")

    def summary(self) -> str:
        return (f"stored traces={len(self.traces)} spans={len(self.spans)} "
                f"scores={len(self.feedback_scores)}; requests={dict(self.counts)}")

    def clear(self, faults: bool = True) -> None:
        """Forget stored rows, requests and counters (and faults, unless told not to)."""
        with self._lock:
            self._traces.clear()
            self._spans.clear()
            self._scores.clear()
            self._requests.clear()
            self._counts.clear()
        if faults:
            self.faults.clear()

    # ------------------------------------------------------------------ request processing

    def _count(self, req: RecordedRequest) -> None:
        with self._lock:
            self._counts[(req.path, req.status)] += 1

    def _sleep(self, seconds: float) -> bool:
        """Stall; False if stop() cut the stall short (the request is then dropped)."""
        return seconds <= 0 or not self._stopping.wait(seconds)

    def _process(self, req: RecordedRequest, raw: bytes) -> Union[Reply, object]:
        with self._lock:
            self._requests.append(req)
        body = raw
        if req.headers.get("content-encoding", "").lower() in ("gzip", "x-gzip") and raw:
            try:
                body = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error):
                return _error(400, "Unable to decompress gzip request body")
        req.decoded_size = len(body)
        if body:
            try:
                req.json = json.loads(body)
            except ValueError:
                req.json = None

        reply = self._pre_faults(req)
        if reply is None:
            reply = self._route(req, body)
        if not isinstance(reply, Reply) or reply.status >= 300:
            return reply  # after-store faults only follow a successful write
        for fault in self.faults.candidates(req, after_store=True):
            if self.faults.fire(fault):
                if not self._sleep(fault.delay) or fault.drop:
                    return _DROP
                if fault.status is not None:
                    return fault.reply()
        return reply

    def _pre_faults(self, req: RecordedRequest) -> Union[Reply, object, None]:
        for fault in self.faults.candidates(req, after_store=False):
            if fault.reject_item is not None:
                continue  # applied once the batch has been parsed
            if fault.max_body_bytes is not None:
                if req.decoded_size > fault.max_body_bytes and self.faults.fire(fault):
                    return fault.reply()
                continue
            if fault.handler is not None:
                result = fault.handler(req)
                if result is None or not self.faults.fire(fault):
                    continue
                return result if isinstance(result, Reply) else _error(int(result))
            if self.faults.fire(fault):
                if not self._sleep(fault.delay) or fault.drop:
                    return _DROP
                if fault.status is not None:
                    return fault.reply()
        return None

    def _route(self, req: RecordedRequest, body: bytes) -> Reply:
        if req.path.startswith(_PARTS_PREFIX) and req.method == "PUT":
            return self._put_part(req, body)
        if not req.path.startswith(API_PREFIX + "/"):
            return _error(404)
        path = req.path[len(API_PREFIX):].rstrip("/")
        if path in _ATTACHMENT:
            if req.method != _ATTACHMENT[path]:
                return _error(405)
        elif path in _GETS:
            if req.method != "GET":
                return _error(405)
        elif path == _PROMPT_RETRIEVE:
            if req.method != "POST":
                return _error(405)
        elif path in _BATCHES:
            if req.method != _BATCHES[path][0]:
                return _error(405)
        else:
            return _error(404)
        if path == "/is-alive/ping":
            return Reply(200, {})
        denied = self._auth(req)
        if denied is not None:
            return denied
        if path == "/v1/private/projects":
            query = parse_qs(req.query)
            page = int((query.get("page") or ["1"])[0])
            size = int((query.get("size") or ["10"])[0])
            return Reply(200, {"content": [], "page": page, "size": size, "total": 0})
        if path == _PROMPT_RETRIEVE:
            return self._retrieve_prompt(body)
        if path in _ATTACHMENT:
            return self._attachment(req, path, body)
        return self._batch(req, path, body)

    # ------------------------------------------------------------------ attachments

    @property
    def attachments(self) -> Dict[Tuple[str, str, str], Dict[str, Any]]:
        """(entity_type, entity_id, file_name) -> {"data", "mime_type", "project_name", "via"}."""
        with self._lock:
            return dict(self._attachments)

    @property
    def attachment_writes(self) -> List[Tuple[str, str, str]]:
        """Every completed upload, in order (a re-upload of the same file appears twice)."""
        with self._lock:
            return list(self._attachment_writes)

    def _query_errors(self, op: str, query: Dict[str, List[str]]) -> List[str]:
        errors = []
        for p in self._att_params[op]:
            name, schema = p["name"], p.get("schema", {})
            vals = query.get(name)
            if not vals:
                if p.get("required"):
                    errors.append(f"{name} may not be null")
                continue
            v = vals[0]
            if "enum" in schema and v not in schema["enum"]:
                errors.append(f"{name} must be one of {schema['enum']}")
            if schema.get("format") == "uuid" and not _check_uuid(v):
                errors.append(f"{name} must be a UUID")
            if "pattern" in schema and not re.search(schema["pattern"], v):
                errors.append(f"{name} must match {schema['pattern']}")
            if len(v) < schema.get("minLength", 0):
                errors.append(f"{name} must not be empty")
        return errors

    def _store_attachment(self, entity_type: str, entity_id: str, name: str, data: bytes,
                          mime: Optional[str], project: Optional[str], via: str) -> None:
        with self._lock:
            key = (entity_type, entity_id, name)
            self._attachments[key] = {"data": data, "mime_type": mime, "project_name": project, "via": via}
            self._attachment_writes.append(key)

    def _attachment(self, req: RecordedRequest, path: str, body: bytes) -> Reply:
        if path.endswith("/upload") or path.endswith("/list"):
            query = parse_qs(req.query)
            errors = self._query_errors(path, query)
            if errors:
                return Reply(422, {"errors": errors})
            one = {k: v[0] for k, v in query.items()}
            if path.endswith("/list"):
                with self._lock:
                    found = [{"file_name": k[2], "file_size": len(v["data"]), "mime_type": v["mime_type"] or ""}
                             for k, v in self._attachments.items()
                             if k[0] == one["entity_type"] and k[1] == one["entity_id"]]
                return Reply(200, {"page": 1, "size": len(found), "total": len(found), "content": found})
            if self.attachment_mode != "local":
                return _error(404, "Direct upload is only available without S3")
            self._store_attachment(one["entity_type"], one["entity_id"], one["file_name"], body,
                                   one.get("mime_type"), one.get("project_name"), "local")
            return Reply(204, None)
        try:
            data = json.loads(body)
        except ValueError as exc:
            return _error(400, f"Unable to process JSON. {exc}")
        name = "StartMultipartUploadRequest" if path.endswith("upload-start") else "CompleteMultipartUploadRequest"
        errors = _schema_errors(self._att_validators[name], data)
        if errors:
            return Reply(422, {"errors": errors})
        if path.endswith("upload-start"):
            if self.attachment_mode == "local":
                q = urlencode({k: data[k] for k in ("file_name", "project_name", "mime_type", "entity_type",
                                                   "entity_id") if data.get(k) is not None})
                return Reply(200, {"upload_id": "BEMinIO",
                                   "pre_sign_urls": [f"{self.url}/v1/private/attachment/upload?{q}"]})
            upload_id = uuid.uuid4().hex
            with self._lock:
                self._uploads[upload_id] = {"start": data, "parts": {}}
            urls = [f"http://127.0.0.1:{self.port}{_PARTS_PREFIX}{upload_id}/{i + 1}"
                    for i in range(data["num_of_file_parts"])]
            return Reply(200, {"upload_id": upload_id, "pre_sign_urls": urls})
        with self._lock:
            up = self._uploads.get(data["upload_id"])
        if up is None:
            return _error(404, "Upload not found")
        start = up["start"]
        for k in ("file_name", "entity_type", "entity_id"):
            if data.get(k) != start.get(k):
                return _error(400, f"{k} differs from upload-start")
        parts = sorted(data["uploaded_file_parts"], key=lambda p: p["part_number"])
        if [p["part_number"] for p in parts] != list(range(1, start["num_of_file_parts"] + 1)):
            return _error(400, "Missing file parts")
        chunks = []
        for p in parts:
            got = up["parts"].get(p["part_number"])
            if got is None or got[0] != p["e_tag"]:
                return _error(400, f"Part {p['part_number']}: unknown ETag")
            chunks.append(got[1])
        blob = b"".join(chunks)
        if len(blob) != data["file_size"]:
            return _error(400, "file_size differs from the uploaded parts")
        self._store_attachment(data["entity_type"], data["entity_id"], data["file_name"], blob,
                               data.get("mime_type"), data.get("project_name"), "s3")
        with self._lock:
            self._uploads.pop(data["upload_id"], None)
        return Reply(204, None)

    def _put_part(self, req: RecordedRequest, body: bytes) -> Reply:
        """A pre-signed part URL (no Opik credentials, as S3 takes them): answers its ETag."""
        bits = req.path[len(_PARTS_PREFIX):].split("/")
        with self._lock:
            up = self._uploads.get(bits[0]) if len(bits) == 2 and bits[1].isdigit() else None
            if up is None:
                return _error(404, "NoSuchUpload")
            etag = '"' + hashlib.md5(body).hexdigest() + '"'  # noqa: S324 - S3's ETag
            up["parts"][int(bits[1])] = (etag, body)
        return Reply(200, None, {"ETag": etag})

    # ------------------------------------------------------------------ prompts

    def add_prompt(self, name: str, template: str, commit: Optional[str] = None) -> Dict[str, Any]:
        """Store a new version of prompt ``name`` (created if new); returns its PromptVersion_Detail."""
        with self._lock:
            versions = self._prompts.setdefault(name, [])
            prompt_id = versions[0]["prompt_id"] if versions else new_uuid7()
            version = {"id": new_uuid7(), "prompt_id": prompt_id, "commit": commit or uuid.uuid4().hex[:8],
                       "version_number": f"v{len(versions) + 1}", "template": template, "type": "mustache",
                       "variables": sorted(set(re.findall(r"{{\s*([\w.]+)\s*}}", template)))}
            versions.append(version)
            return dict(version)

    def _retrieve_prompt(self, body: bytes) -> Reply:
        try:
            data = json.loads(body)
        except ValueError as exc:
            return _error(400, f"Unable to process JSON. {exc}")
        errors = sorted(str(e.message) for e in self._prompt_validator.iter_errors(data))
        if errors:
            return Reply(422, {"errors": errors})
        chosen = [k for k in ("commit", "environment", "version_number") if k in data]
        if len(chosen) > 1:
            return _error(400, "commit, environment and version_number are mutually exclusive")
        with self._lock:
            versions = self._prompts.get(data["name"], [])
            if "commit" in data:
                found = [v for v in versions if v["commit"] == data["commit"]]
            elif "version_number" in data:
                found = [v for v in versions if v["version_number"] == data["version_number"]]
            elif "environment" in data:
                found = []
            else:
                found = versions[-1:]
        if not found:
            return _error(404, "Prompt version not found")
        return Reply(200, dict(found[-1]))

    def _auth(self, req: RecordedRequest) -> Optional[Reply]:
        if self.api_key is not None and req.headers.get("authorization") != self.api_key:
            return _error(401, "User not allowed to access workspace")
        if self.workspace is not None:
            given = req.headers.get("comet-workspace")
            if given is None:
                return _error(403, "Workspace name should be provided")
            if given != self.workspace:
                return _error(403, "User has no permission to the workspace")
        return None

    def _batch(self, req: RecordedRequest, path: str, body: bytes) -> Reply:
        _, schema, list_field, entity = _BATCHES[path]
        try:
            data = json.loads(body)
        except ValueError as exc:
            return _error(400, f"Unable to process JSON. {exc}")
        errors = _schema_errors(self._validators[schema], data)
        items: List[Dict[str, Any]] = data[list_field] if not errors else []
        if entity == "span":
            errors += [f"spans[{i}].trace_id: must not be null"
                       for i, item in enumerate(items) if item.get("trace_id") is None]
        if errors:
            return Reply(422, {"errors": errors})
        if entity in ("trace", "span"):
            bad = self._uuid_error(entity, items)
            if bad is not None:
                return bad
        for fault in self.faults.candidates(req, after_store=False):
            if fault.reject_item is None:
                continue
            hits = [i for i, item in enumerate(items) if fault.reject_item(item)]
            if hits and self.faults.fire(fault):
                return Reply(422, {"errors": [f"{list_field}[{i}]: rejected (injected fault)" for i in hits]})
        workspace = req.headers.get("comet-workspace") or self.workspace or DEFAULT_WORKSPACE
        self._store(entity, workspace, items)
        return Reply(204)

    def _uuid_error(self, entity: str, items: List[Dict[str, Any]]) -> Optional[Reply]:
        fields = ([("id", "Trace", True)] if entity == "trace" else
                  [("id", "Span", True), ("trace_id", "Span trace", False),
                   ("parent_span_id", "Span parent", False)])
        now_ms = time.time() * 1000
        for item in items:
            for name, resource, own_id in fields:
                value = item.get(name)
                if value is None:
                    continue
                if not is_uuid7(value):
                    return _error(400, "Invalid UUID for id", f"{resource} id must be a version 7 UUID")
                ts = uuid7_timestamp_ms(value)
                reason = None
                if ts > now_ms + self.uuid_future_tolerance * 1000:
                    reason = "too_far_future"
                elif ts < self.uuid_min_ms or (own_id and self.uuid_max_age is not None
                                               and ts < now_ms - self.uuid_max_age * 1000):
                    reason = "too_old"
                if reason:
                    stamp = datetime.fromtimestamp(ts / 1000, timezone.utc).isoformat()
                    return _error(400, "Invalid UUID for id",
                                  f"id with timestamp '{stamp}' must be in the allowed ingestion window "
                                  f"around now, reason '{reason}'")
        return None

    def _store(self, entity: str, workspace: str, items: List[Dict[str, Any]]) -> None:
        with self._lock:
            for item in items:
                row = dict(item)
                row["workspace"] = workspace
                row["project_name"] = item.get("project_name") or DEFAULT_PROJECT
                if entity.endswith("_score"):
                    kind = entity[: -len("_score")]
                    self._scores[(workspace, kind, row["project_name"], row["id"], row["name"])] = row
                    continue
                row["id"] = item.get("id") or new_uuid7()
                row["last_updated_at"] = item.get("last_updated_at") or _now_iso()
                table: Dict[Any, Dict[str, Any]]
                if entity == "trace":
                    key: Tuple[Any, ...] = (workspace, row["project_name"], row["id"])
                    table = self._traces
                else:
                    key = (workspace, row["project_name"], row["trace_id"], row.get("parent_span_id"),
                           row["id"])
                    table = self._spans
                old = table.get(key)
                if old is None or _stamp(row["last_updated_at"]) >= _stamp(old["last_updated_at"]):
                    table[key] = row


def _stamp(value: str) -> datetime:
    parsed = parse_datetime(value)
    assert parsed is not None, value
    return parsed


def _schema_errors(validator: Draft202012Validator, data: Any, limit: int = 100) -> List[str]:
    """Dropwizard-like ``"<path>: <message>"`` strings, without echoing huge instances."""
    out = []
    for err in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path).lstrip(".")
        kind, arg = err.validator, err.validator_value
        if kind == "required":
            missing = [p for p in arg if isinstance(err.instance, dict) and p not in err.instance]
            path = ".".join(x for x in (path, missing[0] if missing else "") if x)
            message = "must not be null"
        elif kind in ("minItems", "maxItems", "minLength", "maxLength"):
            schema = err.schema if isinstance(err.schema, dict) else {}
            low = schema.get("minItems", schema.get("minLength", 0))
            high = schema.get("maxItems", schema.get("maxLength", 2147483647))
            message = f"size must be between {low} and {high}"
        elif kind == "enum":
            message = f"must be one of {arg}"
        elif kind == "format":
            message = f"must be a valid {arg}"
        elif kind == "pattern":
            message = "must not be blank"
        else:
            message = err.message if len(err.message) <= 200 else err.message[:200] + "..."
        out.append(f"{path or '<body>'}: {message}")
        if len(out) >= limit:
            break
    return out
