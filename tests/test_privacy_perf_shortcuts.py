"""ContentStage's shortcuts give what the full judgement gives.

Each shortcut skips work whose result it can prove from what it already has; these
properties check the proof on generated values, against the plain computation.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Dict, List, Set

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_privacy_walk import (  # tests/ is on sys.path (pytest's rootdir conftest)
    BLOB_MAX,
    CONFIGS,
    FIELDS,
    ITEMS,
    KEYS,
    VALUES,
    assert_each_gets_the_reference_result,
    reference,
    with_resource,
)

from opentelemetry.exporter.opik import resolve_settings
from opentelemetry.exporter.opik._json import dumps
from opentelemetry.exporter.opik._mapping import Mapped
from opentelemetry.exporter.opik._privacy import ContentStage, _scrub

#: every code point, lone surrogates included (the encoder replaces them)
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=300)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.one_of(ANY_TEXT, st.integers(0, 400).map("é".__mul__), st.integers(0, 400).map("😀".__mul__)),
       thread=st.one_of(st.none(), ANY_TEXT), cap=st.integers(256, 1200))
def test_a_body_within_the_name_limit_holds_no_name_over_the_cap(name: str, thread: Any, cap: int) -> None:
    """``judge`` asks ``_long_names`` only of a body longer than ``field_max // 4``: a string is
    shorter than the JSON that holds it, so a shorter body has no name or thread id that long."""
    stage = ContentStage(resolve_settings({"field_max_bytes": cap}, env={}))
    data: Dict[str, Any] = {"id": "x", "name": name}
    if thread is not None:
        data["thread_id"] = thread
    if stage._long_names(data):
        assert len(dumps(data)) > stage._name_chars
    m = Mapped("span", data, "label", None)  # type: ignore[arg-type]
    out = stage(m)
    assert out.data == reference("span", data, stage.scrubber, cap)


# -- the value pre-checks ---------------------------------------------------------------

CARDISH = st.lists(
    st.one_of(
        st.sampled_from(["4111", "1111", "5500", "0000", "3782", "822463", "10005", "6011", "1234", "-", " ", "x", "."]),
        st.sampled_from(["SG.", "hooks.slack.com/", "glpat-", "t-", "é", "\x00"]),
        st.sampled_from(["4111111111111111", "4111 1111 1111 1111", "3782 822463 10005", "5500-0000-0000-0004"]),
        st.from_regex(r"\d{1,20}", fullmatch=True),
    ),
    max_size=12,
).map("".join)


def _card_everywhere(s: str) -> bool:
    """A valid card number matched at some position of ``s`` (every position tried)."""
    b = s.encode("utf-8", "surrogatepass")
    for i in range(len(b)):
        m = _scrub._CARD_B.match(b, i)
        if m is not None and _scrub._is_card(m.group().decode().replace(" ", "").replace("-", "")):
            return True
    return False


@settings(max_examples=500, deadline=None)
@given(s=CARDISH)
def test_the_card_check_tries_every_position_a_card_can_start_at(s: str) -> None:
    """``_has_card`` tries the pattern only where the digit translate shows a card's shape."""
    assert _scrub._has_card(s) == _card_everywhere(s)


@settings(max_examples=300, deadline=None)
@given(s=CARDISH)
def test_the_direct_prefixes_are_found_wherever_they_are(s: str) -> None:
    expected = "hooks.slack.com/" in s or "SG." in s or re.search(r"gl(?:pat|dt|rt|ptt|soat|cbt)-", s) is not None
    assert _scrub._has_direct(s) == expected


# -- the memo of the last item that passed ------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(ITEMS, min_size=1, max_size=4), resource=st.dictionaries(KEYS, VALUES, max_size=4),
       kept=st.lists(st.sets(st.sampled_from(FIELDS)), min_size=4, max_size=4), config=CONFIGS)
def test_an_item_with_some_of_the_passed_items_fields_gets_the_reference_result(
    items: List[Dict[str, Any]], resource: Dict[str, Any], kept: List[Set[str]], config: Dict[str, Any]
) -> None:
    """A root span after its trace row may carry only some of the row's content objects (the
    metadata, without input and output): judged as the reference judges it, whether or not the
    memo takes it."""
    s = resolve_settings({**config, "blob_max_bytes": BLOB_MAX, "attachment_min_chars": 0}, env={})
    stage = ContentStage(s)
    sequence: List[Dict[str, Any]] = []
    for data, fields in zip(items, kept):
        sequence.append(with_resource(data, resource))
        twin = {k: v for k, v in data.items() if k not in FIELDS or k in fields}
        sequence.append({**twin, "id": "0193c6a2-0000-7000-8000-000000000001", "type": "general"})
    assert_each_gets_the_reference_result(stage, sequence, s.field_max_bytes)


def test_the_memo_takes_a_root_span_with_only_the_trace_rows_metadata() -> None:
    """The sparse root span (metadata only, the trace row's object) is not walked again."""
    stage = ContentStage(resolve_settings({}, env={}))
    md = {"gen_ai.agent.name": "travel agent", "otel": {"trace_id": "0af7651916cd43dd8448eb211c80319c"}}
    row = {"id": "t", "name": "agent", "input": {"q": "what is the weather like"}, "output": {"a": "mild"}, "metadata": md}
    root = {"id": "s", "name": "agent", "metadata": md}
    walked: List[Any] = []
    walk = stage._walk
    stage._walk = lambda d, st: walked.append(d) or walk(d, st)  # type: ignore[assignment]
    for data in (row, root):
        m = Mapped("span", data, "label", None)  # type: ignore[arg-type]
        assert stage(m) is m
    assert walked == [row]
    # not next to each other in WALKED order: walked
    other = {"id": "u", "name": "agent", "input": row["input"], "metadata": md}
    assert stage(Mapped("span", other, "label", None)) is not None  # type: ignore[arg-type]
    assert walked == [row, other]


def test_a_list_holding_one_object_at_several_places_is_copied_from_its_first_change() -> None:
    """``walk_list`` finds the entry that changed by identity: the first entry that is that object."""
    secret = "key sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 here"
    inner = {"text": secret}
    stage = ContentStage(resolve_settings({}, env={}))
    for value in ([secret, secret], ["plain text here", secret, 7, secret], [inner, {"text": "ok"}, inner]):
        data = {"id": "x", "name": "n", "input": value}
        out = stage(Mapped("span", data, "label", None))  # type: ignore[arg-type]
        assert out.data == reference("span", copy.deepcopy(data), stage.scrubber, stage.field_max)
        assert secret.encode() not in dumps(out.data)
