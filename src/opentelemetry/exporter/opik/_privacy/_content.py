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
from typing import Any, Dict, List, Optional, Tuple

from .._config import OpikSettings
from .._json import dumps
from .._mapping import Mapped
from .._mapping.conventions import CONTENT_EVENTS, CONTENT_KEYS
from .._stats import Stats
from ._scrub import MIN_SECRET_LEN, KeyClass, Scrubber, looks_opaque, marker
from ._truncate import DEEP, MAX_DEPTH, add_note, cut_string, fit

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


#: JSON bytes one dict/list entry can take besides its long strings: a key of at most 200
#: characters (longer keys are counted as characters), a short value, punctuation
_ENTRY_BOUND = 200 * 6 + 16 * 6 + 8


class _State:
    __slots__ = ("chars", "nodes", "blobs", "scrubbed")

    def __init__(self) -> None:
        self.chars = 0  # characters of strings long enough to matter
        self.nodes = 0  # entries of dicts and lists
        self.blobs = 0
        self.scrubbed = 0


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
    """Scrub credentials, replace large blobs, cap each field's size."""

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
        # shorter strings need nothing (not a secret, not a blob) and are covered by the per-entry size bound
        self._min = MIN_SECRET_LEN
        self.stats = stats
        self._resource_memo: Tuple[Any, Any] = (None, None)
        #: the last item found clean as it is (a trace row, for its root span)
        self._clean_item: Optional[Mapped] = None
        self._scan = self._make_scan()

    def __call__(self, m: Mapped) -> Mapped:
        if m.twin is not None and m.twin is self._clean_item:
            # a root span right after its trace row, found clean unchanged: the span's
            # content fields are the trace row's own objects (its extra keys are ids,
            # type, model, provider, usage, cost and ttft, which are not content)
            return m
        # Fast path: a read-only scan (keys checked in C, long strings collected) and one
        # check over all collected text at once. Most spans end here, unchanged.
        strs: List[str] = []
        if self._scan_item(m.data, strs):
            return self._rewrite(m)
        if strs and self.scrubber is not None and self.scrubber.any_might_hold_secret(strs):
            return self._rewrite(m)
        self._clean_item = m
        return m

    def _scan_item(self, d: Dict[str, Any], strs: List[str]) -> bool:
        """True when the item may need a change (secret key, blob, size, odd type); ``strs``
        receives the strings long enough to be judged for secrets."""
        scan = self._scan
        cap = self.field_max
        cnt = [0]
        fields = 0
        for f in WALKED:
            v = d.get(f)
            if v is None:
                continue
            fields += 1
            if f == "metadata" and type(v) is dict and type(v.get("otel")) is dict:
                if self._scan_metadata(v, strs, cnt):
                    return True
            elif scan(v, 0, strs, cnt):
                return True
        # one bound for all fields together: if they fit, each does (else measured on the slow path)
        bound = cnt[0] * _ENTRY_BOUND + 64 * fields
        if bound > cap or sum(map(len, strs)) * 6 > cap - bound:
            return True
        for f in CAPPED_STRINGS:
            v = d.get(f)
            if type(v) is str and len(v) * 4 > cap:
                return True
        return False

    def _scan_metadata(self, md: Dict[str, Any], strs: List[str], cnt: List[int]) -> bool:
        scan = self._scan
        otel = md["otel"]
        # the sender's parts of metadata.otel; ids, kind and scope are the mapper's own
        for k in ("resource", "events", "status"):
            x = otel.get(k)
            if x is None:
                continue
            if k == "resource":
                memo = self._resource_memo
                if memo[0] is x and memo[1] is x:
                    continue  # the process's resource, found clean before
                first = len(strs)
                if scan(x, 1, strs, cnt):
                    return True
                res_strs = strs[first:]
                if self.scrubber is None or not res_strs or not self.scrubber.any_might_hold_secret(res_strs):
                    self._resource_memo = (x, x)
                else:
                    return True
            elif scan(x, 1, strs, cnt):
                return True
        # the rest of metadata: like scan() on a dict, minus the "otel" entry
        cnt[0] += len(md)
        scr = self.scrubber
        if scr is not None and not scr.clean.issuperset(md):
            for k in md:
                if k not in scr.clean:
                    cls = scr.classify(k)
                    if (cls is not None and not cls.allow) or type(k) is not str or len(k) > 200:
                        return True
        elif scr is None and any(type(k) is not str or len(k) > 200 for k in md):
            return True
        minlen = MIN_SECRET_LEN
        blob_max = self.blob_max
        for x in md.values():
            tx = type(x)
            if tx is str:
                if len(x) >= minlen:
                    if len(x) > blob_max:
                        return True
                    strs.append(x)
            elif tx is int or tx is float or tx is bool or x is None or x is otel:
                continue
            elif scan(x, 1, strs, cnt):
                return True
        return False

    def _make_scan(self) -> Any:
        scr = self.scrubber
        clean = scr.clean if scr is not None else None
        classify = scr.classify if scr is not None else None
        minlen = MIN_SECRET_LEN
        blob_max = self.blob_max

        def scan(v: Any, depth: int, strs: List[str], cnt: List[int]) -> bool:
            if depth >= MAX_DEPTH:
                return True
            t = type(v)
            if t is dict:
                cnt[0] += len(v)
                if clean is not None:
                    if not clean.issuperset(v):
                        for k in v:
                            if k not in clean:
                                cls = classify(k)  # type: ignore[misc]
                                if cls is not None and not cls.allow:
                                    return True
                                if type(k) is not str or len(k) > 200:
                                    return True  # odd or long keys: the slow path counts them
                elif any(type(k) is not str or len(k) > 200 for k in v):
                    return True
                vals: Any = v.values()
            elif t is list or t is tuple:
                cnt[0] += len(v)
                vals = v
            elif t is str:
                if len(v) >= minlen:
                    if len(v) > blob_max:
                        return True
                    strs.append(v)
                return False
            elif t is int or t is float or t is bool or v is None:
                return False
            elif isinstance(v, Mapping):  # SDK attribute mappings
                return scan(dict(v), depth, strs, cnt)
            else:
                return True  # bytes, other objects: the slow path handles them
            for x in vals:
                tx = type(x)
                if tx is str:
                    if len(x) >= minlen:
                        if len(x) > blob_max:
                            return True
                        strs.append(x)
                elif tx is int or tx is float or tx is bool or x is None:
                    continue
                elif scan(x, depth + 1, strs, cnt):
                    return True
            return False

        return scan

    def _rewrite(self, m: Mapped) -> Mapped:
        """The slow path: a copy-on-write walk that scrubs, replaces blobs and caps sizes."""
        d = m.data
        new: Optional[Dict[str, Any]] = None
        originals: Dict[str, int] = {}
        cap = self.field_max
        st = _State()
        for f in WALKED:
            v = d.get(f)
            if v is None:
                continue
            chars, nodes = st.chars, st.nodes
            tv = type(v)
            if tv is dict:
                v2 = self._dict(v, 0, st, f == "metadata")
            elif tv is list:
                v2 = self._list(v, 0, st)
            else:
                v2 = self._value(v, 0, st, None)
            # cheap upper bound first (6 bytes per char covers escapes); exact size only when it may be over
            if (st.chars - chars) * 6 + (st.nodes - nodes) * _ENTRY_BOUND + 64 > cap:
                size = len(dumps(v2))
                if size > cap:
                    v2, originals[f] = fit(v2, cap, size, keep_keys=(f == "error_info"))
            if v2 is not v:
                if new is None:
                    new = dict(d)
                new[f] = v2
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
        stats = self.stats
        if stats is not None and (st.blobs or st.scrubbed or originals):
            if st.blobs:
                stats.add("blobs_omitted", st.blobs)
            if st.scrubbed:
                stats.add("values_scrubbed", st.scrubbed)
            if originals:
                stats.add("fields_truncated", len(originals))
        return m if new is None else Mapped(m.kind, new, m.label_key, m.mapped)

    # -- the walk ----------------------------------------------------------------
    def _value(self, x: Any, depth: int, st: _State, parent: Any) -> Any:
        """Any value; the dict and list walkers handle the common types inline."""
        t = type(x)
        if t is str:
            if len(x) < self._min:
                return x
            return self._str(x, st, parent)
        if t is int or t is float or t is bool or x is None:
            return x
        if t is dict:
            return self._dict(x, depth + 1, st, False)
        if t is list or t is tuple:
            return self._list(x, depth + 1, st)
        if isinstance(x, Mapping):
            return self._dict(x, depth + 1, st, False)
        if isinstance(x, (bytes, bytearray)):
            s = bytes(x).decode("utf-8", "replace")
            y = self._value(s, depth, st, parent)
            return x if y == s else y
        if isinstance(x, (list, tuple)):
            return self._list(x, depth + 1, st)
        return x

    def _str(self, x: str, st: _State, parent: Any) -> str:
        n = len(x)
        st.chars += n
        if n > self.blob_max:
            b = blob_placeholder(x, parent, self.blob_max)
            if b is not None:
                st.blobs += 1
                return b
        scr = self.scrubber
        if scr is None:
            return x
        y = scr.scrub_str(x)
        if y is not x:
            st.scrubbed += 1
        return y

    def _dict(self, d: Any, depth: int, st: _State, top_metadata: bool) -> Any:
        if depth >= MAX_DEPTH:
            return DEEP
        st.nodes += len(d)
        scr = self.scrubber
        if scr is None:
            fast = True
            st.chars += sum(len(k) for k in d if type(k) is str and len(k) > 200)
        else:
            # the clean set holds keys of at most 200 characters only, so the size bound stays true
            fast = scr.clean.issuperset(d)
        minlen = self._min
        out: Optional[Dict[str, Any]] = None
        for k, x in d.items():
            if fast:
                cls: Optional[KeyClass] = None
            else:
                cls = scr.classify(k)  # type: ignore[union-attr]
                if type(k) is str and len(k) > 200:
                    st.chars += len(k)
            if cls is None:
                t = type(x)
                if t is str:
                    if len(x) < minlen:
                        continue
                    y: Any = self._str(x, st, d)
                elif t is int or t is float or t is bool or x is None:
                    continue
                elif t is dict:
                    y = self._otel(x, st) if top_metadata and k == "otel" else self._dict(x, depth + 1, st, False)
                elif t is list or t is tuple:
                    y = self._list(x, depth + 1, st)
                else:
                    y = self._value(x, depth, st, d)
            elif cls.allow:
                continue
            elif cls.strong:
                y = self._secret(x, cls.label, depth)
                if y is not x:
                    st.scrubbed += 1
            else:  # a weak hint: only opaque strings go
                if type(x) is str and looks_opaque(x):
                    y = marker(cls.label)
                    st.scrubbed += 1
                else:
                    y = self._value(x, depth, st, d)
            if y is not x:
                if out is None:
                    out = dict(d)
                out[k if type(k) is str else str(k)] = y
        return d if out is None else out

    def _list(self, v: Any, depth: int, st: _State) -> Any:
        if depth >= MAX_DEPTH:
            return DEEP
        st.nodes += len(v)
        minlen = self._min
        out: Optional[List[Any]] = None
        for i, x in enumerate(v):
            t = type(x)
            if t is str:
                if len(x) < minlen:
                    continue
                y: Any = self._str(x, st, None)
            elif t is int or t is float or t is bool or x is None:
                continue
            elif t is dict:
                y = self._dict(x, depth + 1, st, False)
            elif t is list or t is tuple:
                y = self._list(x, depth + 1, st)
            else:
                y = self._value(x, depth, st, None)
            if y is not x:
                if out is None:
                    out = list(v)
                out[i] = y
        return v if out is None else out

    def _otel(self, o: Dict[str, Any], st: _State) -> Dict[str, Any]:
        """The mapper's ``metadata.otel``: ids and kind are ours; resource, events and status are the sender's."""
        out: Optional[Dict[str, Any]] = None
        for k in ("resource", "events", "status"):
            x = o.get(k)
            if x is None:
                continue
            if k == "resource":
                memo = self._resource_memo
                if memo[0] is x:
                    y = memo[1]
                else:
                    y = self._value(x, 1, st, o)
                    self._resource_memo = (x, y)
            else:
                y = self._value(x, 1, st, o)
            if y is not x:
                if out is None:
                    out = dict(o)
                out[k] = y
        return o if out is None else out

    def _secret(self, x: Any, label: str, depth: int) -> Any:
        """Everything under a key that names a secret: leaves become markers, the shape stays."""
        t = type(x)
        if x is None or t is bool:
            return x
        if t is str or isinstance(x, (bytes, bytearray)):
            return marker(label) if len(x) else x
        if t is int or t is float:
            return marker(label)
        if depth >= MAX_DEPTH:
            return DEEP
        if isinstance(x, Mapping):
            return {str(k): self._secret(v, label, depth + 1) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [self._secret(v, label, depth + 1) for v in x]
        return marker(label)


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
