"""ContentStage's shortcuts give what the full judgement gives.

Each shortcut skips work whose result it can prove from what it already has; these
properties check the proof on generated values, against the plain computation.
"""

from __future__ import annotations

import re
from typing import Any, Dict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opentelemetry.exporter.opik import resolve_settings
from opentelemetry.exporter.opik._json import dumps
from opentelemetry.exporter.opik._mapping import Mapped
from opentelemetry.exporter.opik._privacy import ContentStage, _scrub

try:
    from tests.test_privacy_walk import reference
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from test_privacy_walk import reference  # type: ignore[no-redef]

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
