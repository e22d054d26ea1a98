"""What a convention family owns: one declaration per family module (``FAMILY = Family(...)``).

``conventions/__init__`` derives everything that lists keys of more than one
family from these declarations: the reader order, the key index that picks the
readers a span needs, the flattened prefixes, the keys stripped when content
capture is off and the keys the ``genai`` span filter looks for. Adding a
family is its module plus one entry in ``conventions.FAMILIES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Tuple

from .._model import MappedSpan

Reader = Callable[[MappedSpan], None]


@dataclass(frozen=True)
class Family:
    """One instrumentation family's reader and the attribute keys and events it owns.

    The reader runs on a span that carries one of its ``markers`` (or a
    ``scopes``/``span_names``/``events``/``values`` sign of the family); it
    still checks for itself that the span is its family, so the signs only
    need to cover every span it would read, never to be exact.
    """

    read: Reader
    #: attribute keys whose presence may mean the family: a span carrying one runs the reader
    markers: Tuple[str, ...] = ()
    #: the other exact attribute keys the reader reads into Opik fields (consumed keys stay out of metadata)
    keys: Tuple[str, ...] = ()
    #: ``<prefix><rest>`` keys it reassembles (flattened lists, spread dicts); each ends with "." and has two dots
    prefixes: Tuple[str, ...] = ()
    #: keys holding prompts, completions, documents; a key also covers its flattened ``<key>.<rest>`` keys.
    #: Stripped from metadata when content capture is off
    content_keys: Tuple[str, ...] = ()
    #: span events whose attributes are message contents (omitted when content capture is off)
    content_events: Tuple[str, ...] = ()
    #: instrumentation scope names whose spans the reader reads
    scopes: Tuple[str, ...] = ()
    #: span-name prefixes that mean the family
    span_names: Tuple[str, ...] = ()
    #: event names that mean the family
    events: Tuple[str, ...] = ()
    #: ``(key, value)`` pairs that mean the family (a framework naming itself in ``gen_ai.system``)
    values: Tuple[Tuple[str, str], ...] = ()
    #: keys whose non-empty value makes a span count as GenAI for ``span_filter=genai``
    genai_keys: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for p in self.prefixes:
            if not p.endswith(".") or p.count(".") < 2:
                raise ValueError(f"{self.name}: prefix {p!r} must end with '.' and have two dots (see _flatten)")

    @property
    def name(self) -> str:
        """The family module's name (``langfuse``, ``genai``...)."""
        return self.read.__module__.rpartition(".")[2]
