"""Exceptions are described by type and place, never by their message (it may quote span content)."""

from __future__ import annotations

from opentelemetry.exporter.opik._errors import trail, where


def _inner(value: str) -> None:
    raise KeyError(f"sk-secret {value}")


def _outer() -> None:
    _inner("prompt text")


def test_where_and_trail_name_the_type_and_frames_without_the_message() -> None:
    try:
        _outer()
    except KeyError as exc:
        w, t = where(exc), trail(exc)
    assert w.startswith("KeyError in _inner (test_errors.py:")
    assert t.startswith("KeyError (its message is not logged")
    # innermost first, then its callers
    assert t.index("_inner (test_errors.py:") < t.index("_outer (test_errors.py:")
    for text in (w, t):
        assert "sk-secret" not in text and "prompt text" not in text


def test_an_exception_never_raised_has_only_its_type() -> None:
    exc = ValueError("content")
    assert where(exc) == "ValueError" and trail(exc) == "ValueError"
