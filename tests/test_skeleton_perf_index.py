"""The family index remembers the union of a span's key bits per key tuple; that changes nothing.

For any mix of declared markers, sign keys, value keys (with and without a
family's value), flattened keys and unknown keys, seen once or again, with the
learned-key table and the tuple memo cleared in between, ``FamilyIndex.readers``
gives the plan, ``out.present`` and ``out.groups`` that a pass over every key
gives (the reference below: the loop the memo replaced).
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st

from opentelemetry.exporter.opik._mapping import conventions as cv
from opentelemetry.exporter.opik._mapping._model import MappedSpan
from opentelemetry.exporter.opik._mapping.conventions import _index
from opentelemetry.exporter.opik._record import SpanRecord

INDEX = cv.INDEX
_KEYS = sorted(
    {*INDEX._declared, *(p + "0.message.role" for p in INDEX.prefixes), *(p + "x" for p in INDEX.prefixes),
     "http.method", "db.statement", "custom.key", "llm.input_messages", "gen_ai.prompt"}
)
_VALUES = sorted({v for pairs in INDEX._values.values() for v, _ in pairs} | {"openai", "x"})


def _reference(rec: SpanRecord) -> Tuple[int, Dict[str, List[str]]]:
    """Family and sign bits of the span's keys and values, and its flattened key groups: one pass over every key."""
    mask = 0
    found: Dict[str, List[str]] = {}
    for k, v in rec.attributes.items():
        b = INDEX._declared.get(k)
        if b is None:
            b = _index._GROUP if INDEX._table.prefix_of(k) is not None else 0
        mask |= b
        if b & _index._VALUE:
            for value, bit in INDEX._values[k]:
                if v == value:
                    mask |= bit
        if b & _index._GROUP:
            INDEX._table.add(found, k)
    return mask & ~_index._SPECIAL, found


def _plan(present: int) -> Tuple[Any, ...]:
    return tuple(f.read for i, f in enumerate(INDEX.families) if present >> i & 1)


@settings(max_examples=300, deadline=None)
@given(
    spans=st.lists(
        st.dictionaries(st.sampled_from(_KEYS), st.sampled_from(_VALUES), max_size=12), min_size=1, max_size=6
    ),
    clear=st.sampled_from(["none", "tuples", "learned", "both"]),
)
def test_the_key_tuple_memo_gives_what_a_pass_over_every_key_gives(spans: List[Dict[str, str]], clear: str) -> None:
    for attrs in spans + spans:  # every key tuple seen twice: computed, then remembered
        rec = SpanRecord(1, 2, None, "span", 0, 1, attrs, scope_name="tests.index")
        out = MappedSpan(rec)
        plan = INDEX.readers(out)
        present, groups = _reference(rec)
        assert out.present == present
        assert out.groups == groups
        assert plan == _plan(present)
        if clear in ("tuples", "both"):
            INDEX._unions.clear()
        if clear in ("learned", "both"):
            INDEX._keys = dict(INDEX._declared)


def test_the_memo_is_bounded() -> None:
    for n in range(_index._MAX_KEY_TUPLES + 10):
        INDEX.readers(MappedSpan(SpanRecord(1, 2, None, "span", 0, 1, {f"bounded.{n}": 1})))
    assert len(INDEX._unions) <= _index._MAX_KEY_TUPLES
