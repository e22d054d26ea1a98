"""``conventions.finish`` remembers ``resolve(model, server)`` for string arguments; that changes nothing.

The memo answers what ``resolve`` answers, asked once or again, for strings and
for values of other types (``True`` and ``1`` are equal keys but different
models: those are never remembered), and it stays bounded.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from opentelemetry.exporter.opik._mapping import conventions as cv
from opentelemetry.exporter.opik._mapping.conventions._providers import resolve

_MODELS = st.one_of(
    st.sampled_from(["gpt-4o-mini", "openai/gpt-4o", "gemini-2.0-flash", "projects/p/publishers/google/models/gemini-pro",
                     "models/gemma-3", "anthropic/claude-3", "bedrock/x", "", "  GPT-4O  "]),
    st.text(max_size=12), st.booleans(), st.integers(0, 3), st.none(),
)
_SERVERS = st.one_of(
    st.sampled_from(["api.openai.com", "api.deepseek.com", "https://api.anthropic.com/v1", "localhost:4000", ""]),
    st.none(), st.integers(0, 3), st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(model=_MODELS, server=_SERVERS)
def test_the_resolve_memo_answers_what_resolve_answers(model: Any, server: Any) -> None:
    assert cv._resolve(model, server) == resolve(model, server)
    assert cv._resolve(model, server) == resolve(model, server)  # remembered


def test_equal_keys_of_other_types_are_not_remembered() -> None:
    assert cv._resolve(1, None) == resolve(1, None)
    assert cv._resolve(True, None) == resolve(True, None)
    assert (True, None) not in cv._RESOLVED and (1, None) not in cv._RESOLVED


def test_the_resolve_memo_is_bounded() -> None:
    for n in range(cv._MAX_RESOLVED + 10):
        cv._resolve(f"model-{n}", None)
    assert len(cv._RESOLVED) <= cv._MAX_RESOLVED
