"""Convention readers, one module per instrumentation family, in priority order."""

from __future__ import annotations

from typing import Callable, List

from .._model import MappedSpan

READERS: List[Callable[[MappedSpan], None]] = []
