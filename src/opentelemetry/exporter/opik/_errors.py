"""Exceptions in log lines by type and place, never by their text.

An exception raised while reading, mapping or filtering a span may quote the
span's content (a prompt, a secret in an attribute) in its message, and a
traceback repeats it. Logs must not carry content, so these helpers give what
finding the bug needs instead: the exception's type and the frames it passed.
"""

from __future__ import annotations

import traceback
from typing import Optional

__all__ = ["where", "trail"]


def _frame(filename: str, lineno: Optional[int], name: str) -> str:
    return f"{name} ({filename.rsplit('/', 1)[-1]}:{lineno})"


def where(exc: BaseException) -> str:
    """``"KeyError in read (genai.py:42)"``: the type and the innermost frame."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return type(exc).__name__
    code = tb.tb_frame.f_code
    return f"{type(exc).__name__} in {_frame(code.co_filename, tb.tb_lineno, code.co_name)}"


def trail(exc: BaseException, limit: int = 8) -> str:
    """The type and up to ``limit`` frames, innermost first: a traceback without the message."""
    frames = traceback.extract_tb(exc.__traceback__)[-limit:]
    path = " <- ".join(_frame(f.filename, f.lineno, f.name) for f in reversed(frames))
    name = type(exc).__qualname__
    return f"{name} (its message is not logged: it may quote span content) at {path}" if path else name
