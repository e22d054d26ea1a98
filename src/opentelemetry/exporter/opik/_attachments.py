"""Images, audio and files in LLM input/output become Opik attachments, the way Opik's SDK does it.

* :class:`AttachmentStage` (a pipeline stage, after the filters and capture-off, before scrubbing
  and size caps) finds base64 content of at least ``attachment_min_chars`` characters (256,000 by
  default, Opik's own threshold) in ``input``, ``output`` and ``metadata``: data URLs (OpenAI
  ``image_url``, what the normalizer writes for semconv ``blob`` parts and OpenInference images),
  Vercel file parts, and any base64 run in a string (Opik SDK's pattern). Each run whose type is
  recognised (the data URL's MIME type, else the magic bytes) is replaced by ``[<file name>]``,
  the reference Opik's SDK writes (so ``data:image/png;base64,[input-attachment-1-2.png]``), and
  handed to the uploader. Shorter content stays inline. ``uri`` parts are never downloaded.
* File names follow Opik's backend scheme ``<input|output|metadata>-attachment-<n>-<m>.<ext>``,
  with ``n`` and ``m`` taken from the content's SHA-256: a span sent again names the same file.
* :class:`AttachmentUploader`: one background thread, bounded by its own byte budget
  (``attachment_max_queue_bytes``). ``upload-start`` then the part PUTs to the returned URLs then
  ``upload-complete`` (Opik Cloud, S3); when Opik answers ``upload_id`` ``BEMinIO`` (self-hosted
  without S3) it PUTs the bytes to ``/v1/private/attachment/upload`` instead, and remembers that
  for every later upload. Answers are judged by the writer's :func:`classify`, waits by its
  :func:`retry_delay` (server hints honoured) until ``retry_deadline``. A given-up upload is
  counted in ``stats()["dropped"]`` as ``attachment_<reason>``; the span itself is never held.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import json
import logging
import mimetypes
import os
import re
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any, Deque, Dict, List, Optional, Tuple
from urllib.parse import urlencode

import httpx

from ._config import OpikSettings
from ._delivery.policy import Action, classify, retry_delay
from ._errors import trail
from ._mapping import Mapped
from ._stats import Stats
from ._transport import Response, Transport, TransportError

_logger = logging.getLogger("opentelemetry.exporter.opik")

#: the backend's own reference scheme (Opik SDK ``decoder_helpers.ATTACHMENT_FILE_NAME_REGEX``)
FILE_NAME_RE = re.compile(r"(?:input|output|metadata)-attachment-\d+-\d+\.\w+")
#: metadata key listing the attachments taken out of the item
NOTE_KEY = "opik_attachments"
#: S3 multipart part size (the SDK's ``MIN_FILE_PART_SIZE``)
PART_SIZE = 5 * 1024 * 1024
#: the ``upload_id`` with which Opik says "no S3 here, PUT the bytes to me"
LOCAL_UPLOAD_ID = "BEMinIO"
START = "/v1/private/attachment/upload-start"
COMPLETE = "/v1/private/attachment/upload-complete"
UPLOAD = "/v1/private/attachment/upload"
_CONTEXTS = ("input", "output", "metadata")
_DATA_HEAD = re.compile(r"data:([\w.+-]+/[\w.+-]+)[^,]{0,200};base64,$")
_MIME_KEYS = ("mime_type", "mimeType", "media_type", "mediaType", "content_type", "contentType")


def detect_mime(data: bytes) -> Optional[str]:
    """The type from magic bytes, as Opik's SDK detects it (``None``: not a file we recognise)."""
    if len(data) < 4:
        return None
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9":
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"%PDF":
        return "application/pdf"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[:3] == b"ID3" or data[:2] in (b"\xff\xfb", b"\xff\xf3"):
        return "audio/mpeg"
    if data[:4] == b"OggS":
        return "audio/ogg"
    if b"<svg" in data[:1024].lower():
        return "image/svg+xml"
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return "video/mp4"
    return None


def extension(mime: str) -> str:
    """``png`` for ``image/png`` (the SDK's ``get_file_extension``)."""
    base = mime.split(";", 1)[0].strip().lower()
    if base == "image/jpeg":
        return "jpg"
    ext = mimetypes.guess_extension(base, strict=False)
    if ext:
        return ext.lstrip(".")
    sub = base.split("/", 1)[-1].split("+", 1)[0]
    return re.sub(r"\W", "", sub) or "bin"


def file_name(context: str, data: bytes, mime: str) -> str:
    """``input-attachment-<n>-<m>.png`` with ``n``, ``m`` from the content hash (same bytes, same name)."""
    h = hashlib.sha256(data).hexdigest()
    return f"{context}-attachment-{int(h[:8], 16) % 99_999_999 + 1}-{int(h[8:20], 16) % 10**13}.{extension(mime)}"


class Attachment:
    __slots__ = ("entity_type", "entity_id", "project_name", "file_name", "mime_type", "data", "first_seen", "path")

    def __init__(
        self, entity_type: str, entity_id: str, project_name: Optional[str], name: str, mime: str, data: bytes
    ) -> None:
        self.entity_type = entity_type
        self.entity_id = entity_id
        self.project_name = project_name
        self.file_name = name
        self.mime_type = mime
        self.data = data
        self.first_seen = time.monotonic()
        #: its file in the spool's ``attachments/`` directory, while it waits there
        self.path: Optional[str] = None

    @property
    def key(self) -> Tuple[str, str, str]:
        return (self.entity_type, self.entity_id, self.file_name)


class Extractor:
    """Finds base64 runs of at least ``min_chars`` characters and replaces them by ``[name]``."""

    def __init__(self, min_chars: int) -> None:
        self.min_chars = min_chars
        # Opik SDK's run: ``(?:[A-Za-z0-9+/]{4}){n,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?``; the same
        # runs are found with one character class (about 10 times faster) and cut to whole groups below
        self.pattern = re.compile(r"[A-Za-z0-9+/]{" + str(max(min_chars // 4, 1) * 4) + r",}={0,2}")

    def walk(self, v: Any, context: str, found: List[Tuple[str, str, bytes]], depth: int = 0) -> Any:
        """``v`` with every recognised run replaced (same object when nothing was); ``found``
        receives ``(name, mime, bytes)``. Nested objects are never changed in place."""
        t = type(v)
        if t is str:
            return self._str(v, context, found, None) if len(v) >= self.min_chars else v
        if depth > 60:
            return v
        if isinstance(v, Mapping):
            out: Optional[Dict[Any, Any]] = None
            for k, x in v.items():
                if type(x) is str:
                    y: Any = self._str(x, context, found, v) if len(x) >= self.min_chars else x
                elif isinstance(x, (Mapping, list, tuple)):
                    y = self.walk(x, context, found, depth + 1)
                else:
                    continue
                if y is not x:
                    if out is None:
                        out = dict(v)
                    out[k] = y
            return v if out is None else out
        if t is list or t is tuple:
            lst: Optional[List[Any]] = None
            for i, x in enumerate(v):
                y = self.walk(x, context, found, depth + 1)
                if y is not x:
                    if lst is None:
                        lst = list(v)
                    lst[i] = y
            return v if lst is None else lst
        return v

    def _str(self, s: str, context: str, found: List[Tuple[str, str, bytes]], parent: Any) -> str:
        pieces: List[str] = []
        last = 0
        for m in self.pattern.finditer(s):
            run = m.group()
            core = run.rstrip("=")
            pad = -len(core) % 4
            if pad in (1, 2) and len(run) - len(core) >= pad:
                run = core + "=" * pad
            else:
                run = core[: len(core) // 4 * 4]  # no valid padding here: the whole groups only
            end = m.start() + len(run)
            try:
                data = base64.b64decode(run, validate=True)
            except (ValueError, binascii.Error):
                continue
            head = _DATA_HEAD.search(s, max(0, m.start() - 260), m.start())
            mime = head.group(1).lower() if head is not None else None
            if mime is None and isinstance(parent, Mapping):
                for k in _MIME_KEYS:
                    p = parent.get(k)
                    if isinstance(p, str) and "/" in p:
                        mime = p.strip().lower()[:100]
                        break
            if mime is None or mime in ("application/octet-stream", "text/plain"):
                mime = detect_mime(data)
            if mime is None:
                continue  # not a file we recognise: left to the blob placeholder and the size cap
            name = file_name(context, data, mime)
            found.append((name, mime, data))
            pieces.append(s[last : m.start()])
            pieces.append(f"[{name}]")
            last = end
        if not pieces:
            return s
        pieces.append(s[last:])
        return "".join(pieces)


class AttachmentStage:
    """Takes large base64 content out of traces and spans and queues it for upload."""

    def __init__(self, settings: OpikSettings, uploader: "AttachmentUploader") -> None:
        self.extractor = Extractor(settings.attachment_min_chars)
        self.uploader = uploader
        #: (kind, id) -> attachments found, queued by :meth:`settle` once the item is known to leave
        #: (a later stage or the mask hook may still drop it: then nothing is uploaded)
        self._found: Dict[Tuple[str, str], List[Attachment]] = {}

    def settle(self, m: Mapped, sent: bool) -> None:
        if not self._found:
            return
        atts = self._found.pop((m.kind, str(m.data.get("id"))), None)
        if atts and sent:
            for a in atts:
                self.uploader.submit(a)

    def __call__(self, m: Mapped) -> Mapped:
        return self.judge(m, None)

    def judge(self, m: Mapped, body: Optional[bytes]) -> Mapped:
        """``m`` with its runs taken out; ``body`` (its JSON, when the caller has it) shorter than
        ``min_chars`` proves it holds no string that long, so no run: most items end here."""
        if m.kind not in ("trace", "span") or (body is not None and len(body) < self.extractor.min_chars):
            return m
        d = m.data
        entity_id = d.get("id")
        if not isinstance(entity_id, str):
            return m
        new: Optional[Dict[str, Any]] = None
        notes: List[Dict[str, Any]] = []
        for context in _CONTEXTS:
            v = d.get(context)
            if v is None:
                continue
            found: List[Tuple[str, str, bytes]] = []
            y = self.extractor.walk(v, context, found)
            if not found:
                continue
            if new is None:
                new = dict(d)
            new[context] = y
            seen = set()
            for name, mime, data in found:
                if name in seen:
                    continue
                seen.add(name)
                project = d.get("project_name")
                if len(self._found) >= 4096:  # items never settled (a stage list used without a Pipeline)
                    self._found.pop(next(iter(self._found)))
                self._found.setdefault((m.kind, entity_id), []).append(
                    Attachment(m.kind, entity_id, project if isinstance(project, str) else None, name, mime, data)
                )
                notes.append({"file_name": name, "mime_type": mime, "size": len(data), "context": context})
        if new is None:
            return m
        md = new.get("metadata")
        md2 = dict(md) if isinstance(md, Mapping) else {}
        md2[NOTE_KEY] = notes
        new["metadata"] = md2
        return Mapped(m.kind, new, m.label_key, m.mapped)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _json_field(text: str, key: str) -> Any:
    try:
        return json.loads(text).get(key)
    except Exception:  # noqa: BLE001 - a body that is not the expected JSON
        return None


class _Failed(Exception):
    def __init__(self, resp: Optional[Response], what: str) -> None:
        super().__init__(what)
        self.resp = resp


class AttachmentUploader:
    """The background uploader: bounded by bytes, retried with server hints, counted."""

    #: remembered uploaded (entity, file name) keys, so a span sent again is not uploaded again
    SEEN_MAX = 8192

    def __init__(self, settings: OpikSettings, stats: Stats, transport: Optional[Transport] = None) -> None:
        self.settings = settings
        self.stats = stats
        self.max_bytes = settings.attachment_max_queue_bytes
        self.deadline = settings.retry_deadline
        self.backoff_base, self.backoff_cap = 0.5, 30.0
        self.transport = transport or Transport(settings)
        self._parts: Optional[httpx.Client] = None
        self._cond = threading.Condition()
        self._queue: Deque[Attachment] = collections.deque()
        self._bytes = 0
        self._busy = False
        self._hurry = False
        self._closed = False
        self._thread: Optional[threading.Thread] = None
        self._seen: "collections.OrderedDict[Tuple[str, str, str], None]" = collections.OrderedDict()
        self._queued_keys: set = set()
        #: ``None`` until Opik told us; then ``"s3"`` or ``"local"`` (cached for every later upload)
        self.mode: Optional[str] = None
        #: ``<spool>/attachments`` when the writer has a spool: waiting attachments are kept there
        self.spool: Optional[str] = None
        self._spool_max = settings.spool_max_bytes
        self._spool_bytes = 0

    # -- the spool -------------------------------------------------------------------

    def attach_spool(self, directory: str) -> None:
        """Keep waiting attachments on disk under ``directory``; adopt what a dead process left there."""
        d = os.path.join(directory, "attachments")
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as exc:
            _logger.warning("Opik exporter: no attachment spool in %s: %s", d, exc)
            return
        self.spool = d
        try:
            names = sorted(os.listdir(d))
        except OSError:
            return
        for name in names:
            if not name.endswith(".opikatt"):
                continue
            path = os.path.join(d, name)
            try:
                self._spool_bytes += os.path.getsize(path)
                pid = int(name.split("-", 1)[0])
            except (OSError, ValueError):
                continue
            if pid != os.getpid() and _pid_alive(pid):
                continue  # another live process waits for it
            mine = os.path.join(d, f"{os.getpid()}-{name.split('-', 1)[1]}")
            try:
                os.rename(path, mine)  # the claim: one process wins
                with open(mine, "rb") as fh:
                    head = json.loads(fh.readline())
                    data = fh.read()
                a = Attachment(head["entity_type"], head["entity_id"], head.get("project_name"), head["file_name"],
                               head["mime_type"], data)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            a.path = mine
            if not self.submit(a, persist=False):
                break  # the memory budget is full: the rest waits on disk for the next process
            self.stats.add("attachments_unspooled")

    def _persist(self, a: Attachment) -> None:
        if self.spool is None or self._spool_bytes + len(a.data) > self._spool_max:
            return
        key = hashlib.sha256("/".join(a.key).encode()).hexdigest()[:24]
        path = os.path.join(self.spool, f"{os.getpid()}-{key}.opikatt")
        head = {"entity_type": a.entity_type, "entity_id": a.entity_id, "project_name": a.project_name,
                "file_name": a.file_name, "mime_type": a.mime_type}
        try:
            tmp = path + ".tmp"
            with open(tmp, "wb") as fh:
                fh.write(json.dumps(head).encode() + b"\n")
                fh.write(a.data)
            os.replace(tmp, path)
        except OSError as exc:
            _logger.warning("Opik exporter: attachment kept in memory only: %s", exc)
            return
        a.path = path
        self._spool_bytes += len(a.data)

    def _unpersist(self, a: Attachment) -> None:
        if a.path is not None:
            try:
                size = os.path.getsize(a.path)
                os.unlink(a.path)
                self._spool_bytes -= size
            except OSError:
                pass
            a.path = None

    # -- the producer side -------------------------------------------------------------

    def submit(self, a: Attachment, persist: bool = True) -> bool:
        """Queue ``a`` without blocking; False when it was dropped (counted) or is known already."""
        if persist and self.spool is not None:
            with self._cond:
                known = a.key in self._seen or a.key in self._queued_keys or self._closed
            if not known and self._bytes + len(a.data) <= self.max_bytes:
                self._persist(a)
        with self._cond:
            if a.key in self._seen or a.key in self._queued_keys:
                self.stats.add("attachments_deduplicated")
                return True
            if self._closed:
                self.stats.drop("attachment_shutdown")
                return False
            if len(a.data) > self.max_bytes:
                self.stats.drop("attachment_too_large")
                return False
            if self._bytes + len(a.data) > self.max_bytes:
                if a.path is None:
                    self.stats.drop("attachment_queue_full")
                return False
            self._queue.append(a)
            self._queued_keys.add(a.key)
            self._bytes += len(a.data)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="opik-attachments", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        return True

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + (1 if self._busy else 0)

    def flush(self, timeout: Optional[float] = None) -> bool:
        end = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        with self._cond:
            self._hurry = True
            self._cond.notify_all()
            try:
                while self._queue or self._busy:
                    left = None if end is None else end - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._cond.wait(0.05 if left is None else min(left, 0.05))
                return True
            finally:
                self._hurry = False

    def shutdown(self, timeout: float = 30.0) -> bool:
        ok = self.flush(timeout)
        with self._cond:
            self._closed = True
            left = len(self._queue)  # the one being sent is counted by the sender thread
            kept = sum(1 for a in self._queue if a.path is not None)
            left -= kept
            self._queue.clear()
            self._queued_keys.clear()
            self._bytes = 0
            self._cond.notify_all()
        if kept:
            self.stats.add("attachments_spooled", kept)  # the next process with this spool uploads them
        if left:
            self.stats.drop("attachment_shutdown", left)
        self.transport.close()
        if self._parts is not None:
            self._parts.close()
        return ok

    # -- the sender thread ------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                idle_until = time.monotonic() + 10.0
                while not self._queue and not self._closed:
                    if time.monotonic() > idle_until:
                        self._thread = None  # idle: end (submit starts a new one), so nothing keeps us alive
                        return
                    self._cond.wait(1.0)
                if self._closed:
                    return
                a = self._queue.popleft()
                self._busy = True
            try:
                reason = self._deliver(a)
            except Exception as exc:  # noqa: BLE001 - a bug never stops the uploads
                _logger.error("Opik exporter: attachment upload failed: %s", trail(exc))
                reason = "internal_error"
            spooled = reason in ("retry_deadline", "unauthorized", "shutdown") and a.path is not None
            if not spooled:
                self._unpersist(a)
            with self._cond:
                self._busy = False
                self._bytes -= len(a.data)
                self._queued_keys.discard(a.key)
                if reason is None:
                    self._seen[a.key] = None
                    while len(self._seen) > self.SEEN_MAX:
                        self._seen.popitem(last=False)
                self._cond.notify_all()
            if reason is None:
                self.stats.add("attachments_uploaded")
                self.stats.add("attachment_bytes_uploaded", len(a.data))
            elif spooled:
                self.stats.add("attachments_spooled")  # on disk: the next process with this spool uploads it
            else:
                self.stats.drop("attachment_" + reason)
                _logger.warning(
                    "Opik exporter: attachment %s of %s %s not uploaded (%s); the item keeps its reference",
                    a.file_name, a.entity_type, a.entity_id, reason,
                )

    def _deliver(self, a: Attachment) -> Optional[str]:
        """None once uploaded, else the drop reason."""
        start = time.monotonic()
        attempt = 0
        while True:
            try:
                self._upload_once(a)
                return None
            except _Failed as f:
                resp = f.resp
                out = classify(None if resp is None else resp.status, {} if resp is None else resp.headers,
                               "" if resp is None else resp.text)
            if out.action is Action.DELIVERED:  # a 409 on complete: Opik has it
                return None
            if out.action in (Action.SPLIT, Action.SHRINK):
                return "too_large"
            if out.action is Action.ISOLATE:
                return "rejected"
            if out.action is Action.DROP:
                return out.reason or "failed"
            refused = out.action is Action.PAUSE
            delay = retry_delay(
                attempt, refused=refused, base=self.backoff_base, cap=self.backoff_cap, auth_base=1.0,
                auth_cap=60.0, hint=out.delay_hint, no_answer=out.status is None,
            )
            attempt += 1
            self.stats.add("attachment_retries")
            if time.monotonic() + delay - start > self.deadline:
                return "unauthorized" if refused else "retry_deadline"
            with self._cond:
                end = time.monotonic() + delay
                while not self._closed and not self._hurry and time.monotonic() < end:
                    self._cond.wait(end - time.monotonic())
                if self._closed:
                    return "shutdown"

    def _request(self, method: str, path: str, body: bytes, content_type: str) -> Response:
        try:
            r = self.transport._send(
                method, path, content=body, headers={"Content-Type": content_type},
                timeout=httpx.Timeout(max(self.settings.timeout, 1.0) * 3, connect=min(self.settings.timeout, 10.0)),
            )
        except TransportError as exc:
            raise _Failed(None, str(exc)) from None
        self.stats.add("attachment_requests")
        if not r.ok:
            raise _Failed(r, f"HTTP {r.status}")
        return r

    def _upload_once(self, a: Attachment) -> None:
        if self.mode == "local":
            self._put_local(a)
            return
        n_parts = max(1, -(-len(a.data) // PART_SIZE))
        start: Dict[str, Any] = {
            "file_name": a.file_name,
            "num_of_file_parts": n_parts,
            "mime_type": a.mime_type,
            "entity_type": a.entity_type,
            "entity_id": a.entity_id,
            # the base URL the backend builds its local upload URL from (the SDK sends it base64-encoded)
            "path": base64.b64encode((self.settings.url.rstrip("/") + "/").encode()).decode(),
        }
        if a.project_name:
            start["project_name"] = a.project_name
        r = self._request("POST", START, json.dumps(start).encode(), "application/json")
        upload_id = _json_field(r.text, "upload_id")
        urls = _json_field(r.text, "pre_sign_urls") or []
        if upload_id == LOCAL_UPLOAD_ID:
            self.mode = "local"
            self._put_local(a)
            return
        if not isinstance(upload_id, str) or not isinstance(urls, list) or len(urls) < n_parts:
            raise _Failed(Response(502, {}, "upload-start answered without part URLs"), "bad upload-start")
        self.mode = "s3"
        parts = []
        for i in range(n_parts):
            chunk = a.data[i * PART_SIZE : (i + 1) * PART_SIZE]
            etag = self._put_part(str(urls[i]), chunk)
            parts.append({"e_tag": etag, "part_number": i + 1})
        done: Dict[str, Any] = {
            "file_name": a.file_name,
            "entity_type": a.entity_type,
            "entity_id": a.entity_id,
            "file_size": len(a.data),
            "mime_type": a.mime_type,
            "upload_id": upload_id,
            "uploaded_file_parts": parts,
        }
        if a.project_name:
            done["project_name"] = a.project_name
        self._request("POST", COMPLETE, json.dumps(done).encode(), "application/json")

    def _put_local(self, a: Attachment) -> None:
        q: Dict[str, str] = {"file_name": a.file_name, "mime_type": a.mime_type, "entity_type": a.entity_type,
                             "entity_id": a.entity_id}
        if a.project_name:
            q["project_name"] = a.project_name
        self._request("PUT", UPLOAD + "?" + urlencode(q), a.data, "application/octet-stream")

    def _put_part(self, url: str, chunk: bytes) -> str:
        """PUT one part to its pre-signed URL (no Opik credentials: the URL carries its own)."""
        if self._parts is None:
            self._parts = httpx.Client(timeout=max(self.settings.timeout, 1.0) * 3, trust_env=False)
        try:
            r = self._parts.put(url, content=chunk)
        except httpx.HTTPError as exc:
            raise _Failed(None, f"{type(exc).__name__}: {exc}") from None
        self.stats.add("attachment_requests")
        if not 200 <= r.status_code < 300:
            raise _Failed(Response(r.status_code, r.headers, r.text[:2000]), f"part HTTP {r.status_code}")
        return (r.headers.get("etag") or "").strip() or hashlib.md5(chunk).hexdigest()  # noqa: S324 - S3's ETag


# -- one uploader per pipeline/sink pair (they share the Stats object) -----------------------

#: every live uploader (for the fork handler); each one hangs on its Stats object, so an exporter
#: dropped without shutdown takes its uploader along
_UPLOADERS: "weakref.WeakSet[AttachmentUploader]" = weakref.WeakSet()
_ATTR = "_opik_attachment_uploader"
_LOCK = threading.Lock()


def enabled(settings: OpikSettings) -> bool:
    return settings.attachment_min_chars > 0 and settings.capture_content and not settings.dry_run


def uploader_for(settings: OpikSettings, stats: Stats) -> AttachmentUploader:
    """The uploader shared by the pipeline's stage and the sink built with the same ``stats``."""
    with _LOCK:
        up: Optional[AttachmentUploader] = getattr(stats, _ATTR, None)
        if up is None:
            up = AttachmentUploader(settings, stats)
            setattr(stats, _ATTR, up)
            _UPLOADERS.add(up)
        return up


def _after_fork_in_child() -> None:
    """The child starts with no pending uploads, its own thread and fresh connections (the parent's
    attachments stay the parent's; its locks may have been held by a thread that is not here)."""
    global _LOCK
    _LOCK = threading.Lock()
    for up in list(_UPLOADERS):
        up._cond = threading.Condition()
        up._queue = collections.deque()
        up._queued_keys = set()
        up._bytes = 0
        up._busy = False
        up._thread = None
        up._parts = None
        up.transport.reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def release(stats: Stats) -> None:
    with _LOCK:
        up = getattr(stats, _ATTR, None)
        if up is not None:
            delattr(stats, _ATTR)
            _UPLOADERS.discard(up)


def writer_with_uploads(settings: OpikSettings, stats: Stats, spool: Any, shrink: Any) -> Any:
    """The writer whose ``flush`` and ``shutdown`` also wait for the attachment uploads."""
    from ._writer import Writer

    class AttachmentWriter(Writer):
        def flush(self, timeout: Optional[float] = None) -> bool:
            end = None if timeout is None else time.monotonic() + max(timeout, 0.0)
            ok = super().flush(timeout)
            left = None if end is None else max(end - time.monotonic(), 0.0)
            return uploader_for(settings, stats).flush(left) and ok

        def shutdown(self, timeout: float = 30.0) -> bool:
            end = time.monotonic() + max(timeout, 0.0)
            # the uploads first: a span is already on its way, its attachment waits for no one
            up = uploader_for(settings, stats)
            ok_up = up.flush(max(timeout * 0.5, 0.0)) if up.pending() else True
            ok = super().shutdown(max(end - time.monotonic(), 0.0))
            up.shutdown(max(end - time.monotonic(), 0.0))
            release(stats)
            return ok and ok_up

    if spool is not None and settings.spool_dir:
        uploader_for(settings, stats).attach_spool(settings.spool_dir)
    return AttachmentWriter(settings, stats=stats, spool=spool, shrink=shrink)
