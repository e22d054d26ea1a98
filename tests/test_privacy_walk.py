"""The privacy walk: for any item, the same object back iff nothing changed, and the reference's result.

The reference below is the walk written the plain way: every container rebuilt,
every string of 13+ characters given to the scrubber, every field's size measured
by encoding it. :class:`ContentStage` must give exactly its result, and must
hand back the very item (and every unchanged nested object) when that result
equals what went in.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Dict, List, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opentelemetry.exporter.opik import resolve_settings
from opentelemetry.exporter.opik._json import dumps
from opentelemetry.exporter.opik._mapping import Mapped
from opentelemetry.exporter.opik._privacy import ContentStage, blob_placeholder, fit, marker
from opentelemetry.exporter.opik._privacy._scrub import MIN_SECRET_LEN, Scrubber, looks_opaque
from opentelemetry.exporter.opik._privacy._truncate import DEEP, MAX_DEPTH, add_note, cut_string
from opentelemetry.exporter.opik._stats import Stats

try:
    from tests.test_privacy_scrub import OPIK_KEY, SECRET_FORMATS
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from test_privacy_scrub import OPIK_KEY, SECRET_FORMATS  # type: ignore[no-redef]

FIELDS = ("input", "output", "metadata", "error_info", "tags", "reason")
OTEL_WALKED = ("resource", "events", "status")
BLOB_MAX = 200

# -- the reference -------------------------------------------------------------------


def ref_value(v: Any, depth: int, scr: Optional[Scrubber], parent: Any) -> Any:
    if isinstance(v, str):
        if len(v) < MIN_SECRET_LEN:
            return v
        blob = blob_placeholder(v, parent, BLOB_MAX)
        if blob is not None:
            v = blob  # the placeholder quotes a mime type from the item: scrubbed like any string
        return scr.scrub_str(v) if scr is not None else v
    if isinstance(v, dict):
        return ref_dict(v, depth + 1, scr, False)
    if isinstance(v, list):
        return ref_list(v, depth + 1, scr)
    return v


def ref_dict(d: Dict[str, Any], depth: int, scr: Optional[Scrubber], metadata: bool) -> Any:
    if depth >= MAX_DEPTH:
        return DEEP
    out: Dict[str, Any] = {}
    for k, x in d.items():
        cls = scr.classify(k) if scr is not None else None
        if cls is None:
            if metadata and k == "otel" and isinstance(x, dict):
                out[k] = {ok: ref_value(ov, 1, scr, x) if ok in OTEL_WALKED else ov for ok, ov in x.items()}
            else:
                out[k] = ref_value(x, depth, scr, d)
        elif cls.allow:
            out[k] = x
        elif cls.strong:
            out[k] = ref_secret(x, cls.label, depth)
        elif isinstance(x, str) and looks_opaque(x):
            out[k] = marker(cls.label)
        else:
            out[k] = ref_value(x, depth, scr, d)
    return out


def ref_list(v: List[Any], depth: int, scr: Optional[Scrubber]) -> Any:
    if depth >= MAX_DEPTH:
        return DEEP
    return [ref_value(x, depth, scr, None) for x in v]


def ref_secret(x: Any, label: str, depth: int) -> Any:
    if x is None or isinstance(x, bool):
        return x
    if isinstance(x, str):
        return marker(label) if x else x
    if isinstance(x, (int, float)):
        return marker(label)
    if depth >= MAX_DEPTH:
        return DEEP
    if isinstance(x, dict):
        return {k: ref_secret(v, label, depth + 1) for k, v in x.items()}
    return [ref_secret(v, label, depth + 1) for v in x]


def reference(kind: str, data: Dict[str, Any], scr: Optional[Scrubber], cap: int) -> Dict[str, Any]:
    out = dict(data)
    originals: Dict[str, int] = {}
    for f in FIELDS:
        v = data.get(f)
        if v is None:
            continue
        if isinstance(v, dict):
            v2 = ref_dict(v, 0, scr, f == "metadata")
        elif isinstance(v, list):
            v2 = ref_list(v, 0, scr)
        else:
            v2 = ref_value(v, 0, scr, None)
        size = len(dumps(v2))
        if size > cap:
            v2, originals[f] = fit(v2, cap, size, keep_keys=(f == "error_info"))
        out[f] = v2
    for f in ("name", "thread_id"):
        v = data.get(f)
        if isinstance(v, str) and len(v.encode("utf-8", "surrogatepass")) > cap:
            originals[f] = len(v.encode("utf-8", "surrogatepass"))
            out[f] = cut_string(v, cap // 4)
    if originals and kind != "span_score":
        out["metadata"] = add_note(out.get("metadata"), originals, cap)
    return out


# -- generated items -------------------------------------------------------------------

WORDS = st.sampled_from(["the", "weather", "in", "Paris", "is", "mild", "today", "order", "42", "ok", "é", "😀", "a\nb"])
PROSE = st.lists(WORDS, min_size=1, max_size=40).map(" ".join)
SECRET_TEXT = st.tuples(PROSE, st.sampled_from([f[1] for f in SECRET_FORMATS]), PROSE).map(" ".join)
STRINGS = st.one_of(
    st.text(max_size=20),
    PROSE,
    SECRET_TEXT,
    st.sampled_from(
        [
            "a3F9k2L8m1N7p4Q6r0S5",  # opaque: goes under a weak key
            "[scrubbed: api key]",  # already a marker
            "task-1234567890abcdef1234567890",  # an anchor inside a longer word: not a key
            "data:image/png;base64," + "iVBORw0KGgo" + "A" * 400,
            "iVBORw0KGgo" + "QUJD" * 100,  # a bare base64 run over the blob limit
            "x" * 500,  # long, not base64: stays (or is cut by the size cap)
            OPIK_KEY,
        ]
    ),
)
KEYS = st.one_of(
    st.sampled_from(
        [
            "content", "role", "q", "text", "mime_type", "api_key", "Authorization", "password", "token", "auth",
            "access_token", "prompt_tokens", "max_tokens", "cookie", "client_secret", "otel", "k" * 250,
        ]
    ),
    st.text(min_size=1, max_size=12),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False))
VALUES = st.recursive(
    st.one_of(SCALARS, STRINGS),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=30,
)
OTEL = st.fixed_dictionaries(
    {"trace_id": st.just("0af7651916cd43dd8448eb211c80319c"), "span_kind": st.just("INTERNAL")},
    optional={
        "resource": st.dictionaries(KEYS, VALUES, max_size=4),
        "events": st.lists(st.fixed_dictionaries({"name": st.just("e")}, optional={"attributes": VALUES}), max_size=3),
        "status": st.fixed_dictionaries({"code": st.just("ERROR")}, optional={"message": STRINGS}),
        "scope": st.just({"name": "my.lib", "version": "1.0"}),
    },
)
METADATA = st.one_of(
    st.dictionaries(KEYS, VALUES, max_size=5),
    st.tuples(st.dictionaries(KEYS, VALUES, max_size=5), OTEL).map(lambda p: {**p[0], "otel": p[1]}),
)
ITEMS = st.fixed_dictionaries(
    {"id": st.just("0193c6a2-0000-7000-8000-000000000000"), "name": st.one_of(PROSE, st.just("long name " * 300))},
    optional={
        "input": VALUES,
        "output": VALUES,
        "metadata": METADATA,
        "error_info": st.fixed_dictionaries({"exception_type": st.just("ValueError"), "message": STRINGS, "traceback": STRINGS}),
        "tags": st.lists(STRINGS, max_size=4),
        "reason": STRINGS,
        "thread_id": STRINGS,
    },
)
CONFIGS = st.fixed_dictionaries(
    {"field_max_bytes": st.sampled_from([256, 2000, 4 * 1024 * 1024]), "scrub": st.booleans()},
    optional={"api_key": st.just(OPIK_KEY)},
)
KINDS = st.sampled_from(["trace", "span", "span_score"])


def _unchanged_objects_are_shared(before: Any, after: Any) -> None:
    """Every container the walk did not change is the very object that went in."""
    if isinstance(before, (dict, list)) and before == after:
        assert after is before
    elif isinstance(before, dict) and isinstance(after, dict):
        for k, v in before.items():
            if k in after:
                _unchanged_objects_are_shared(v, after[k])
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for x, y in zip(before, after):
            _unchanged_objects_are_shared(x, y)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=ITEMS, config=CONFIGS, kind=KINDS)
def test_the_walk_returns_the_same_object_iff_nothing_changed(data: Dict[str, Any], config: Dict[str, Any], kind: str) -> None:
    s = resolve_settings({**config, "blob_max_bytes": BLOB_MAX, "attachment_min_chars": 0}, env={})
    stats = Stats()
    stage = ContentStage(s, stats)
    m = Mapped(kind, data, "label", None)  # type: ignore[arg-type]
    before = copy.deepcopy(data)
    expected = reference(kind, before, stage.scrubber, s.field_max_bytes)

    out = stage(m)

    assert data == before  # nothing changed in place
    assert out.data == expected
    assert (out is m) == (expected == before)
    if out is not m:
        assert out.kind == m.kind and out.label_key == m.label_key
    uncut = reference(kind, before, stage.scrubber, 1 << 40)
    for f in FIELDS:
        if data.get(f) is not None and len(dumps(uncut[f])) <= s.field_max_bytes:  # not rebuilt by the size cap
            _unchanged_objects_are_shared(data[f], out.data[f])
    if out is m:
        assert not stats.get("values_scrubbed") and not stats.get("blobs_omitted") and not stats.get("fields_truncated")
    if s.scrub:
        sent = _values_text(out.data)
        walked_text = _values_text(before)
        for name, text, parts, _ in SECRET_FORMATS:
            if text in walked_text and (name != "opik api key" or "api_key" in config):
                for part in parts:
                    assert part not in sent, name


def _values_text(v: Any) -> str:
    """The string values of the walked fields joined (of ``metadata.otel``, the sender's parts only: the
    mapper writes that entry last, over any attribute of that name)."""
    out: List[str] = []

    def collect(x: Any) -> None:
        if isinstance(x, str):
            out.append(x)
        elif isinstance(x, dict):
            for y in x.values():
                collect(y)
        elif isinstance(x, list):
            for y in x:
                collect(y)

    for f in FIELDS:
        x = v.get(f)
        if f == "metadata" and isinstance(x, dict) and isinstance(x.get("otel"), dict):
            x = {**x, "otel": {k: x["otel"].get(k) for k in OTEL_WALKED}}
        collect(x)
    return "\x00".join(out)


def test_nesting_past_the_depth_limit_is_cut_as_the_reference_cuts_it() -> None:
    deep: Any = "innermost value of the nest"
    for i in range(MAX_DEPTH + 3):
        deep = {"k": deep} if i % 2 else [deep]
    data = {"id": "x", "name": "n", "input": deep, "metadata": {"otel": {"resource": deep}}}
    stage = ContentStage(resolve_settings({}, env={}))
    out = stage(Mapped("span", data, "label", None))  # type: ignore[arg-type]
    assert out is not None and out.data == reference("span", data, stage.scrubber, stage.field_max)
    assert DEEP in json.dumps(out.data["input"])


@pytest.mark.parametrize("value", [{}, [], "", None, False, [None, True], {"nested": {}}, "[scrubbed: api key]"])
def test_a_secret_key_whose_value_holds_nothing_to_replace_leaves_the_item_as_it_is(value: Any) -> None:
    stats = Stats()
    stage = ContentStage(resolve_settings({}, env={}), stats)
    m = Mapped("span", {"id": "x", "name": "n", "input": {"api_key": value}}, "label", None)  # type: ignore[arg-type]
    assert stage(m) is m and not stats.get("values_scrubbed")


def with_resource(data: Dict[str, Any], resource: Dict[str, Any]) -> Dict[str, Any]:
    """``data`` with ``metadata.otel`` holding ``resource``, as the mapper writes it (a metadata dict only)."""
    md = data.get("metadata")
    if isinstance(md, dict):
        data["metadata"] = {**md, "otel": {"trace_id": "0af7651916cd43dd8448eb211c80319c", "resource": resource}}
    return data


def assert_each_gets_the_reference_result(stage: ContentStage, sequence: List[Dict[str, Any]], cap: int) -> None:
    """``sequence`` judged in order by one stage: each item as the reference judges it, the very item when
    that changes nothing, and no item changed in place (they share objects)."""
    before = copy.deepcopy(sequence)
    for data, orig in zip(sequence, before):
        m = Mapped("span", data, "label", None)  # type: ignore[arg-type]
        expected = reference("span", orig, stage.scrubber, cap)
        out = stage(m)
        assert out.data == expected
        assert (out is m) == (expected == orig)
    assert sequence == before


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(ITEMS, min_size=1, max_size=4), resource=st.dictionaries(KEYS, VALUES, max_size=4),
       shared=st.lists(st.booleans(), min_size=4, max_size=4), config=CONFIGS)
def test_objects_shared_between_items_give_each_item_the_reference_result(
    items: List[Dict[str, Any]], resource: Dict[str, Any], shared: List[bool], config: Dict[str, Any]
) -> None:
    """A trace row and its root span share their content objects, every span the process resource:
    an item after one that passed with the same objects is still judged as the reference judges it."""
    s = resolve_settings({**config, "blob_max_bytes": BLOB_MAX, "attachment_min_chars": 0}, env={})
    stage = ContentStage(s)
    sequence: List[Dict[str, Any]] = []
    for data, twin in zip(items, shared):
        data = with_resource(data, resource)
        sequence.append(data)
        if twin:  # the root span: the same content objects, its own top-level dict and ids
            sequence.append({**data, "id": "0193c6a2-0000-7000-8000-000000000001", "type": "general"})
    assert_each_gets_the_reference_result(stage, sequence, s.field_max_bytes)


def test_a_secret_in_a_blobs_mime_type_does_not_leak_through_its_placeholder() -> None:
    # found by the property above: the placeholder quoted the mime_type beside the blob unscrubbed
    s = resolve_settings({"blob_max_bytes": BLOB_MAX, "attachment_min_chars": 0}, env={})
    key = "sk-proj-Zq8xV2mN4pL7rT1yW9cB3dF6hJ0kS5aE"
    for part in ({"content": "iVBORw0KGgo" + "QUJD" * 100, "mime_type": f"the key {key} the"},
                 {"url": f"data:{key};base64," + "QUJD" * 100}):
        data = {"id": "0193c6a2-0000-7000-8000-000000000000", "name": "x", "output": [part]}
        out = ContentStage(s)(Mapped("trace", data, "label", None))  # type: ignore[arg-type]
        sent = json.dumps(out.data)
        assert key not in sent and "[blob omitted:" in sent and "[scrubbed: api key]" in sent
