"""Links spans to the Opik prompt they used, the way Opik's SDK does (``metadata.opik_prompts``).

A span naming a prompt (``metadata.prompt_info``: ``{"name", "version"}``, read
from ``gen_ai.prompt.*``, ``langfuse.observation.prompt.*`` or
``llm.prompt_template.*``, see ``conventions.finish``) gets
``metadata.opik_prompts = [{"name", "id", "version": {"template", "commit", "id",
"version_number"}}]`` when Opik knows that prompt and version. Each
``(name, version)`` is looked up once through Opik's REST API
(``POST /v1/private/prompts/versions/retrieve``) on a background thread and
cached; mapping never waits for it: a span whose prompt is not known yet is sent
without the link (the next spans naming it get it). A prompt Opik does not know
(404) or a failed lookup is asked again after ``retry_s``.

A version is read as Opik's ``version_number`` (``v3``, or a bare number ``3``)
or as its 8-character ``commit``; without a version, Opik's latest version.
Other version spellings (``1.2.0``) cannot be asked and get no link.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, Optional, Tuple

from .._json import dumps, loads

_logger = logging.getLogger("opentelemetry.exporter.opik")

PROMPT_INFO = "prompt_info"
OPIK_PROMPTS = "opik_prompts"
RETRIEVE_PATH = "/v1/private/prompts/versions/retrieve"

Key = Tuple[str, Optional[str]]
#: ``request body -> (status, parsed JSON or None)``; raises on no answer
Post = Callable[[Dict[str, Any]], Tuple[int, Any]]

_VERSION_NUMBER = re.compile(r"^[vV](\d{1,9})$")
_COMMIT = re.compile(r"^[a-zA-Z0-9]{8}$")


def retrieve_body(name: str, version: Optional[str]) -> Optional[Dict[str, Any]]:
    """The retrieve request for a prompt name and version; None when the version cannot be asked."""
    body: Dict[str, Any] = {"name": name}
    if version is None:
        return body
    m = _VERSION_NUMBER.match(version)
    if m:
        body["version_number"] = f"v{int(m.group(1))}"
    elif version.isdigit() and len(version) <= 9:
        body["version_number"] = f"v{int(version)}"
    elif _COMMIT.match(version):
        body["commit"] = version
    else:
        return None
    return body


def link_info(name: str, detail: Any) -> Optional[Dict[str, Any]]:
    """Opik's ``PromptVersion_Detail`` as the SDK's prompt info (``__internal_api__to_info_dict__``)."""
    if not isinstance(detail, dict) or not isinstance(detail.get("template"), str):
        return None
    version: Dict[str, Any] = {"template": detail["template"]}
    for key in ("commit", "id", "version_number"):
        if isinstance(detail.get(key), str):
            version[key] = detail[key]
    info: Dict[str, Any] = {"name": name, "version": version}
    if isinstance(detail.get("prompt_id"), str):
        info["id"] = detail["prompt_id"]
    return info


class PromptLinker:
    """Adds ``metadata.opik_prompts`` from a bounded cache filled by one background thread."""

    def __init__(self, post: Post, *, max_entries: int = 1024, retry_s: float = 60.0, max_pending: int = 256) -> None:
        self._post = post
        self._max = max_entries
        self._retry_s = retry_s
        #: key -> (monotonic time of the answer, link info or None when Opik has none)
        self._cache: "OrderedDict[Key, Tuple[float, Optional[Dict[str, Any]]]]" = OrderedDict()
        self._pending: Dict[Key, Dict[str, Any]] = {}
        self._queue: "queue.Queue[Optional[Key]]" = queue.Queue(maxsize=max_pending)
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._closed = False
        self.lookups = 0

    def link(self, metadata: Dict[str, Any]) -> None:
        """Link the span whose metadata this is, when its prompt is known; otherwise ask for it (never blocks)."""
        info = metadata.get(PROMPT_INFO)
        if not isinstance(info, dict) or OPIK_PROMPTS in metadata:
            return
        name = info.get("name")
        if not isinstance(name, str) or not name.strip():
            return
        version = info.get("version")
        key: Key = (name, None if version is None else str(version))
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and (hit[1] is not None or now - hit[0] < self._retry_s):
                self._cache.move_to_end(key)
                if hit[1] is not None:
                    metadata[OPIK_PROMPTS] = [hit[1]]
                return
            if key in self._pending or self._closed:
                return
            body = retrieve_body(*key)
            if body is None:
                self._remember(key, None, float("inf"))
                return
            try:
                self._queue.put_nowait(key)
            except queue.Full:
                return
            self._pending[key] = body
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="opik-prompt-lookup", daemon=True)
                self._thread.start()

    def _remember(self, key: Key, info: Optional[Dict[str, Any]], at: float) -> None:
        self._cache[key] = (at, info)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)

    def _run(self) -> None:
        while True:
            key = self._queue.get()
            if key is None:
                return
            with self._lock:
                body = self._pending.get(key)
            info: Optional[Dict[str, Any]] = None
            try:
                self.lookups += 1
                status, detail = self._post(body or {"name": key[0]})
                if status == 200:
                    info = link_info(key[0], detail)
                elif status != 404:
                    _logger.debug("Opik prompt lookup answered %s", status)
            except Exception as exc:  # noqa: BLE001 - a lookup never breaks export
                _logger.debug("Opik prompt lookup failed: %s", type(exc).__name__)
            with self._lock:
                self._pending.pop(key, None)
                self._remember(key, info, time.monotonic())

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no lookup is pending (tests, shutdown); True when none is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    return True
            time.sleep(0.005)
        return False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            started = self._thread is not None
        if started:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                pass


def rest_post(settings: Any) -> Post:
    """A ``Post`` to Opik's prompt retrieve endpoint with the exporter's url, credentials and TLS settings."""
    import httpx

    from opentelemetry import context as otel_context

    from .._transport import _client_verify, _verify, suppressed_context

    base = settings.url
    headers = {"Content-Type": "application/json", "Accept": "application/json", **settings.headers()}
    clients: list = []  # made on the first lookup (only spans naming a prompt need one)

    def post(body: Dict[str, Any]) -> Tuple[int, Any]:
        if not clients:
            t = settings.timeout
            clients.append(httpx.Client(headers=headers, timeout=httpx.Timeout(t, connect=min(t, 10.0)),
                                        verify=_client_verify(base, _verify(settings)), follow_redirects=False,
                                        trust_env=False))
        token = otel_context.attach(suppressed_context())  # the lookup itself is never traced
        try:
            r = clients[0].post(base + RETRIEVE_PATH, content=dumps(body))
        finally:
            otel_context.detach(token)
        if r.status_code != 200:
            return r.status_code, None
        try:
            return 200, loads(r.content)
        except ValueError:
            return 200, None

    return post
