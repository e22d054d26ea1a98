"""What leaves the process: scrubbing, blob placeholders and size caps in one walk.

One copy-on-write walk per field (``input``, ``output``, ``metadata``,
``error_info``, ``tags``, a score's ``reason``) does everything: unchanged
objects are returned as they are (nothing is copied unless something is
replaced), and nested objects are never changed in place, because a trace row
and its root span share them.

Capture off (:class:`CaptureOff`) runs first: input/output and message
contents become ``{"content_omitted": true, "size": <bytes>}``, while names,
model, usage, timings and errors stay.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Dict, List, Optional

from .._config import OpikSettings
from .._json import dumps
from .._mapping import Mapped
from .._mapping.conventions import CONTENT_EVENTS, CONTENT_KEYS
from .._stats import Stats
from ._scrub import Scrubber
from ._truncate import add_note, cut_string, fit
from ._walk import WalkState, make_walk

#: top-level fields walked for secrets and blobs (``name`` is not: a span name is not content)
WALKED = ("input", "output", "metadata", "error_info", "tags", "reason")
#: bounded by the size cap only
CAPPED_STRINGS = ("name", "thread_id")

_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_\r\n"
_MIME_KEYS = ("mime_type", "mimeType", "media_type", "mediaType", "content_type", "contentType")
_MAGIC = (
    ("iVBORw0KGgo", "image/png"),
    ("/9j/", "image/jpeg"),
    ("R0lGOD", "image/gif"),
    ("UklGR", "image/webp"),
    ("JVBERi0", "application/pdf"),
    ("SUQz", "audio/mpeg"),
    ("//uQ", "audio/mpeg"),
    ("T2dnUw", "audio/ogg"),
)


def blob_placeholder(s: str, parent: Any, max_bytes: int) -> Optional[str]:
    """``[blob omitted: image/png, 123456 bytes]`` for a data: URI or a base64 run over ``max_bytes``."""
    if len(s) <= max_bytes:
        return None
    if s.startswith("data:"):
        head, sep, payload = s[:300].partition(",")
        if not sep:
            return None
        payload_len = len(s) - len(head) - 1
        declared = head[5:].split(";", 1)[0].strip() or "application/octet-stream"
        size = payload_len * 3 // 4 - s.count("=", -2) if ";base64" in head else payload_len
        return f"[blob omitted: {declared[:100]}, {size} bytes]"
    try:
        raw = s.encode("ascii")
    except UnicodeEncodeError:
        return None
    if raw.translate(None, _B64):
        return None  # not base64: long text is the size cap's business
    mime: Optional[str] = None
    if isinstance(parent, Mapping):
        for k in _MIME_KEYS:
            v = parent.get(k)
            if isinstance(v, str) and v:
                mime = v[:100]
                break
    if mime is None:
        for magic, kind in _MAGIC:
            if s.startswith(magic):
                mime = kind
                break
    size = len(s) * 3 // 4 - s.count("=", -2)
    return f"[blob omitted: {mime or 'application/octet-stream'}, {size} bytes]"


def _attachments_on(settings: OpikSettings) -> bool:
    from .._attachments import enabled

    return enabled(settings)


class ContentStage:
    """Scrub credentials, replace large blobs, cap each field's size: one walk of the item (:mod:`._walk`)."""

    def __init__(self, settings: OpikSettings, stats: Optional[Stats] = None) -> None:
        own = (settings.api_key,) if settings.api_key else ()
        self.scrubber: Optional[Scrubber] = (
            Scrubber(settings.scrub_patterns, settings.scrub_allow, own) if settings.scrub else None
        )
        self.blob_max = settings.blob_max_bytes
        if _attachments_on(settings) and settings.sources.get("blob_max_bytes", "default") == "default":
            # content below the attachment threshold stays inline, as Opik keeps it (the UI renders it);
            # a run at or over it was uploaded (now a reference) or is of no recognised type: placeholder
            self.blob_max = max(self.blob_max, settings.attachment_min_chars - 1)
        self.field_max = settings.field_max_bytes
        #: a string of more characters may be over the size cap (4 bytes per character at most)
        self._name_chars = self.field_max // 4
        self.stats = stats
        blob_max = self.blob_max

        def blob(s: str, parent: Any) -> Optional[str]:
            return blob_placeholder(s, parent, blob_max)

        self._walk = make_walk(WALKED, self.scrubber, blob_max, blob, scrub=False)
        self._scrub_walk = make_walk(WALKED, self.scrubber, blob_max, blob, scrub=True)
        #: the last item that passed unchanged (a root span comes right after its trace row,
        #: whose content fields are its very objects, or some of them), and its
        #: ``metadata.otel.resource`` (the process's, shared by every span). The walk is a function
        #: of the value alone and never changes an object in place: the very same objects would
        #: pass unchanged again (see ``judge``).
        self._passed: Dict[str, Any] = {}
        self._passed_resource: Any = None
        #: the resource known to the passed item's walk: if that was its resource (or it had none),
        #: the walk did not walk it, and its strings are what a walk of its fields collects now
        self._passed_known: Any = None

    def __call__(self, m: Mapped) -> Mapped:
        return self.judge(m, dumps(m.data))

    def judge(self, m: Mapped, body: bytes) -> Mapped:
        """``m`` scrubbed, blobs replaced, fields capped; ``body`` is ``dumps(m.data)``.

        The body's length bounds every field's JSON: only an item longer than the cap, or one the
        walk changed (a marker may be longer than what it replaced), has its fields measured.
        """
        d = m.data
        # a string is shorter than the JSON that holds it: a short body has no name over the cap
        names = len(body) > self._name_chars
        passed = self._passed
        # an item whose fields are some of the passed item's, the very objects, next to each other
        # in WALKED order (the others None), passes too: their walk is the same, and the strings
        # it collects are a run of the passed item's, which the batched check clears if it
        # cleared them all (no window it looks in is wider); if it did not, the scrubbing walk
        # found nothing to replace in them
        run = 0  # 1: in the item's run of fields, 2: past a field only the passed item has
        for f in WALKED:
            v = d.get(f)
            if v is passed.get(f):
                if v is not None:
                    if run == 2:
                        break
                    run = 1
            elif v is not None:
                break
            elif run == 1:
                run = 2
        else:
            r = self._passed_resource
            if r is None or r is self._passed_known:
                return self._finish(m, None, None, False) if names and self._long_names(d) else m
        st = WalkState(self._passed_resource)
        new = self._walk(d, st)
        strs = st.strs
        # one batched look at every collected string; only a possible secret costs a second walk
        # (the same walk, scrubbing each string it collects)
        if strs and self.scrubber is not None and self.scrubber.any_might_hold_secret(strs):
            st = WalkState(self._passed_resource)
            new = self._scrub_walk(d, st)
        over = len(body) > self.field_max
        if new is None and not over and not (names and self._long_names(d)):
            self._passed = d
            self._passed_known = st.known
            self._passed_resource = st.resource
            return m
        return self._finish(m, new, st, over or new is not None)

    def _long_names(self, d: Dict[str, Any]) -> bool:
        """A field of ``CAPPED_STRINGS`` (``name``, ``thread_id``) that may be over the size cap."""
        lim = self._name_chars
        name, thread = d.get("name"), d.get("thread_id")
        return (type(name) is str and len(name) > lim) or (type(thread) is str and len(thread) > lim)

    def _finish(self, m: Mapped, new: Optional[Dict[str, Any]], st: Optional[WalkState], measure: bool) -> Mapped:
        """Cap the fields' sizes (each one measured if ``measure``), note what was cut, count what changed."""
        d = m.data
        originals: Dict[str, int] = {}
        if measure:
            new = self._cap_fields(d, new, originals)
        cap = self.field_max
        for f in CAPPED_STRINGS:
            v = d.get(f)
            if type(v) is str and len(v) * 4 > cap:
                size = len(v.encode("utf-8", "surrogatepass"))
                if size > cap:
                    if new is None:
                        new = dict(d)
                    new[f] = cut_string(v, cap // 4)
                    originals[f] = size
        if originals and m.kind != "span_score":
            if new is None:
                new = dict(d)
            new["metadata"] = add_note(new.get("metadata"), originals, cap)
        if self.stats is not None:
            _count(self.stats, st, originals)
        return m if new is None else Mapped(m.kind, new, m.label_key, m.mapped)

    def _cap_fields(self, d: Dict[str, Any], new: Optional[Dict[str, Any]], originals: Dict[str, int]) -> Optional[Dict[str, Any]]:
        """Each walked field measured; one over the cap is cut to fit (``originals``: its size before)."""
        cap = self.field_max
        src = d if new is None else new
        for f in WALKED:
            v = src.get(f)
            if v is None:
                continue
            size = len(dumps(v))
            if size > cap:
                if new is None:
                    new = dict(d)
                new[f], originals[f] = fit(v, cap, size, keep_keys=(f == "error_info"))
        return new



def _count(stats: Stats, st: Optional[WalkState], originals: Dict[str, int]) -> None:
    if st is not None and st.blobs:
        stats.add("blobs_omitted", st.blobs)
    if st is not None and st.scrubbed:
        stats.add("values_scrubbed", st.scrubbed)
    if originals:
        stats.add("fields_truncated", len(originals))


# -- capture off -------------------------------------------------------------------

#: attribute keys (and roots of flattened ones) that carry prompts, completions, documents: every
#: family's declared content keys (``Family.content_keys``, see ``_mapping/conventions``)
_CONTENT_KEYS = CONTENT_KEYS
_CONTENT_RE = re.compile(
    r"^(" + "|".join(re.escape(k) for k in sorted(_CONTENT_KEYS, key=len, reverse=True)) + r")(?:\.|$)"
)
#: span events whose attributes are message contents (``Family.content_events``)
_CONTENT_EVENTS = frozenset(CONTENT_EVENTS)


def omitted(value: Any) -> Dict[str, Any]:
    return {"content_omitted": True, "size": len(dumps(value))}


def strip_content(attrs: Any) -> Any:
    """``attrs`` without content keys: each family becomes one size note (same object if none)."""
    out: Optional[Dict[str, Any]] = None
    notes: Dict[str, List[int]] = {}
    for k, v in attrs.items():
        m = _CONTENT_RE.match(k) if type(k) is str else None
        if m is None:
            continue
        if out is None:
            out = dict(attrs)
        del out[k]
        note = notes.setdefault(m.group(1), [0, 0])
        note[0] += len(dumps(v))
        note[1] += 1
    if out is None:
        return attrs
    for family, (size, n) in notes.items():
        out[family] = (
            {"content_omitted": True, "size": size} if n == 1 else {"content_omitted": True, "size": size, "keys": n}
        )
    return out


class CaptureOff:
    """``OTEL_EXPORTER_OPIK_CAPTURE_CONTENT=false``: structure, model, usage, timings and errors only."""

    def __call__(self, m: Mapped) -> Mapped:
        if m.kind == "span_score":
            return m
        d = m.data
        new = dict(d)
        for f in ("input", "output"):
            v = d.get(f)
            if v is not None:
                new[f] = omitted(v)
        md = d.get("metadata")
        if isinstance(md, Mapping):
            md2 = strip_content(md)
            otel = md2.get("otel")
            if isinstance(otel, Mapping) and otel.get("events"):
                events = [self._event(e) for e in otel["events"]]
                md2 = dict(md2)
                md2["otel"] = dict(otel, events=events)
            new["metadata"] = md2
        return Mapped(m.kind, new, m.label_key, m.mapped)

    @staticmethod
    def _event(e: Any) -> Any:
        if not isinstance(e, Mapping) or not e.get("attributes"):
            return e
        attrs = e["attributes"]
        if e.get("name") in _CONTENT_EVENTS:
            return dict(e, attributes=omitted(attrs))
        stripped = strip_content(attrs)
        return e if stripped is attrs else dict(e, attributes=stripped)
