"""OTLP/JSON text -> the tree the OTLP/JSON reader walks, with failures kept to one span.

Fast path: the whole body in one parse (orjson when installed, else the stdlib
refusing ``NaN``/``Infinity``). When that parse fails, or turned an integer
beyond 64 bits into an inexact float, or would take more memory than the
budget, the span-by-span path runs instead: a scanner that only skips strings
and brackets cuts the request into its resources, scopes and spans
(:func:`skeleton`), and each span is parsed on its own when it is read
(:class:`RawSpan`: orjson, and the stdlib with exact integers when orjson
refuses it or lost digits). A value the fast parser refuses then costs its
span only:

* integers are read exactly (beyond 64 bits the reader keeps their digits);
  one of more than :data:`MAX_INT_DIGITS` digits rejects its span;
* ``NaN``/``Infinity`` tokens and numbers beyond a double's range are read
  as doubles and counted (:attr:`DecodedBatch.not_finite`);
* a span nested deeper than :data:`MAX_JSON_DEPTH` levels is rejected;
* invalid UTF-8 is replaced by U+FFFD (counted once per request).

Only a body whose structure around the spans is broken (unbalanced brackets,
an unterminated string, no object at the top) is undecodable as a whole.

Memory (``DecodeLimits.json_memory`` per request, bounds measured with orjson
3.13 on CPython 3.11): :func:`fast_fits` says whether one parse stays within
it (:func:`estimate_memory`); if not, :func:`split_fits` whether the span-by-span
path does (the text, the records, one span's tree at a time), and a request
that fits neither is refused before anything is parsed (:class:`JsonTooLarge`).
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Type, Union

from ._json import using_orjson
from ._otlp import DecodedBatch, DecodeError, RequestTooLarge, _Bad

__all__ = [
    "MAX_INT_DIGITS",
    "MAX_JSON_DEPTH",
    "JsonTooLarge",
    "RawSpan",
    "SpanParser",
    "Unparsed",
    "estimate_memory",
    "fast_fits",
    "parse_fast",
    "parse_request",
    "skeleton",
    "split_fits",
]

#: integers with more digits reject their span (CPython's own default bound on int()/str(), against quadratic conversion)
MAX_INT_DIGITS = 4300
#: a span nested deeper than this is rejected: orjson's own limit (the stdlib, used for spans orjson refuses, is held to half)
MAX_JSON_DEPTH = 1024
_STDLIB_MAX_DEPTH = 512

# The memory bound (bytes): 2 per byte of text, 100 per object or array, 56 per quote. Measured with
# VmHWM over 19-20 MB bodies: GenAI spans peak at 7.0x their size (this estimate: 11.5x), 200 string
# attributes per span at 15.0x (18.8x), 200 small ints at 16.8x (21x), 5,000 empty AnyValues per
# span at 30.1x (35x), 2,000 empty arrayValues at 18.3x (19.3x), one long string at 2.0x (2.0x).
_PER_BYTE, _PER_CONTAINER, _PER_QUOTE = 2, 100, 56
#: the estimate's most per byte of text (``"",`` repeated): below budget / this, nothing is counted
_WORST_PER_BYTE = 40
#: span by span, the records (what the request decodes to) take at most this per byte of text: measured
#: 1.4x-3.5x on the same shapes; distinct short attributes ({"key":"k1","value":{}}) are about 4.1x
_RECORDS_PER_BYTE = 5
#: the text of a UTF-8 body takes at least half a byte per byte (all two-byte characters, Latin-1 range)
_MIN_TEXT_PER_BYTE = 0.5

# The scanner: whitespace, a string, a scalar (numbers, true/false/null, NaN...), and everything up to
# the next bracket with strings skipped whole (the only Python-level step is one per bracket).
_WS = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_SCALAR = re.compile(r"[^\s,:\[\]{}\"]+")
_TO_BRACKET = re.compile(r'(?:[^"\[\]{}]+|"[^"\\]*(?:\\.[^"\\]*)*")*', re.S)
_CLOSES = {"]": "[", "}": "{"}
# OTLP/JSON's three levels of arrays down to the spans, in both spellings the proto3 mapping allows
TRACE_LEVELS: Tuple[Tuple[str, ...], ...] = (("resourceSpans", "resource_spans"), ("scopeSpans", "scope_spans"), ("spans",))
LOG_LEVELS: Tuple[Tuple[str, ...], ...] = (("resourceLogs", "resource_logs"), ("scopeLogs", "scope_logs"), ("logRecords", "log_records"))

if using_orjson():
    import orjson

    _fast_loads: Callable[[Union[bytes, str]], Any] = orjson.loads
    _FAST_ERRORS: Tuple[Type[BaseException], ...] = (ValueError,)
    _EXACT_FAST = False  # orjson reads integers beyond 64 bits as floats
else:  # pragma: no cover - the stdlib-only install

    def _refuse(token: str) -> Any:
        raise ValueError(f"{token} is not JSON")

    _strict = json.JSONDecoder(parse_constant=_refuse)

    def _fast_loads(data: Union[bytes, str]) -> Any:
        return _strict.decode(data.decode("utf-8") if isinstance(data, bytes) else data)

    _FAST_ERRORS = (ValueError, RecursionError)
    _EXACT_FAST = True


class JsonTooLarge(RequestTooLarge):
    """Parsing this OTLP/JSON request would take more than ``DecodeLimits.json_memory`` (HTTP 413)."""

    def __init__(self, size: int, estimate: int, budget: int) -> None:
        super().__init__(
            f"parsing this {size}-byte OTLP/JSON request would take about {estimate // 2**20} MiB, more than the "
            f"{budget // 2**20} MiB one request may take: send smaller batches (or OTLP protobuf)"
        )
        self.estimate = estimate
        self.budget = budget


def estimate_memory(data: Union[bytes, str]) -> int:
    """An upper bound on the bytes that parsing ``data`` (and the tree it makes) takes at its peak."""
    if isinstance(data, bytes):
        containers, quotes = data.count(b"{") + data.count(b"["), data.count(b'"')
    else:
        containers, quotes = data.count("{") + data.count("["), data.count('"')
    return _PER_BYTE * len(data) + _PER_CONTAINER * containers + _PER_QUOTE * quotes


def fast_fits(data: Union[bytes, str], budget: int) -> Tuple[bool, int]:
    """``(parsing data in one piece stays within budget, the estimate)``.

    Bodies smaller than ``budget / 40`` (6.4 MiB at the default 256 MiB) always do, and are not counted.
    """
    if len(data) * _WORST_PER_BYTE <= budget:
        return True, 0
    estimate = estimate_memory(data)
    return estimate <= budget, estimate


def split_fits(text: str, size: int, budget: int) -> int:
    """The room left for one span's tree when ``text`` (of a ``size``-byte body) is read span by span.

    Raises :class:`JsonTooLarge` when the text and its records alone exceed ``budget``.
    """
    held = sys.getsizeof(text) + _RECORDS_PER_BYTE * size
    if held > budget:
        raise JsonTooLarge(size, held, budget)
    return budget - held


def parse_fast(data: Union[bytes, str]) -> Tuple[Any, bool, str]:
    """``(tree, ints are exact, "")`` from one parse of the whole body, or ``(None, False, why)``."""
    try:
        return _fast_loads(data), _EXACT_FAST, ""
    except _FAST_ERRORS as exc:
        return None, False, str(exc)[:200]


# --------------------------------------------------------------------------- the tolerant path


class Unparsed:
    """A resource or scope whose JSON could not be parsed: the reader rejects its spans with ``reason``."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class SpanParser:
    """Parses one span, resource or scope: orjson where it can, else (or for exact integers) the stdlib with bounds."""

    __slots__ = ("out", "room", "_decoder")

    def __init__(self, out: DecodedBatch, room: int) -> None:
        self.out = out
        #: bytes one span's tree may take (what the budget leaves beside the text and the records)
        self.room = room
        self._decoder = json.JSONDecoder(parse_int=self._int, parse_float=self._float, parse_constant=self._constant)

    def _int(self, s: str) -> int:
        digits = len(s) - (s[0] == "-")
        if digits > MAX_INT_DIGITS:
            raise _Bad(f"an integer of {digits} digits (at most {MAX_INT_DIGITS} are read)")
        return int(s)

    def _float(self, s: str) -> float:
        f = float(s)
        if math.isinf(f):
            self.out.not_finite += 1
        return f

    def _constant(self, s: str) -> float:
        self.out.not_finite += 1
        return float(s)  # NaN, Infinity, -Infinity

    def _check(self, text: str, depth: int) -> None:
        if depth > MAX_JSON_DEPTH:
            raise _Bad(f"nested {depth} levels deep; the JSON parser reads at most {MAX_JSON_DEPTH}")
        if len(text) * _WORST_PER_BYTE > self.room and estimate_memory(text) > self.room:
            raise _Bad(f"{len(text)} bytes whose parse would take about {estimate_memory(text) // 2**20} MiB, more than this request has left")

    def parse(self, text: str, depth: int) -> Tuple[Any, bool]:
        """``(the value in text, its integers are exact)``; raises :class:`_Bad` saying why there is none.

        ``depth`` is its levels of brackets. Not exact: orjson read it, and integers beyond 64 bits
        may be floats (the reader then asks :meth:`parse_exact`).
        """
        self._check(text, depth)
        if using_orjson():
            try:
                return _fast_loads(text), False
            except ValueError:
                pass  # NaN, a number beyond a double, a lone surrogate: the stdlib reads those
        return self._exact(text, depth), True

    def parse_exact(self, text: str, depth: int) -> Any:
        """The value in ``text`` with integers as Python ints (the stdlib, at most 512 levels deep)."""
        self._check(text, depth)
        return self._exact(text, depth)

    def _exact(self, text: str, depth: int) -> Any:
        if depth > _STDLIB_MAX_DEPTH:
            raise _Bad(f"nested {depth} levels deep and holding values orjson cannot read (at most {_STDLIB_MAX_DEPTH} levels then)")
        try:
            return self._decoder.decode(text)
        except RecursionError:
            raise _Bad(f"nested too deep to parse ({depth} levels)") from None
        except ValueError as exc:
            raise _Bad(f"not valid JSON ({str(exc)[:120]})") from None


class RawSpan:
    """One span's text, parsed only when it is read (so the whole tree never exists at once)."""

    __slots__ = ("text", "start", "end", "depth")

    def __init__(self, text: str, start: int, end: int, depth: int) -> None:
        self.text = text
        self.start = start
        self.end = end
        self.depth = depth

    def parse(self, parser: SpanParser) -> Tuple[Any, bool]:
        return parser.parse(self.text[self.start : self.end], self.depth)

    def parse_exact(self, parser: SpanParser) -> Any:
        return parser.parse_exact(self.text[self.start : self.end], self.depth)

    def name(self) -> Optional[str]:
        """The span's ``name`` read by the scanner alone (for the rejection message), or None."""
        scan = _Scan(self.text, self.start)
        try:
            if scan.peek() != "{":
                return None
            for key in scan.members():
                start, end, _ = scan.value()
                if key == "name" and self.text[start] == '"':
                    name = json.loads(self.text[start:end])
                    return name if isinstance(name, str) else None
        except (_Malformed, ValueError):
            pass
        return None


class _Malformed(Exception):
    """The structure around the spans is not JSON."""


class _Scan:
    """A cursor over the text that steps over values without building them."""

    __slots__ = ("s", "i")

    def __init__(self, s: str, i: int = 0) -> None:
        self.s = s
        self.i = i

    def peek(self) -> str:
        """The next character after whitespace ("" at the end)."""
        m = _WS.match(self.s, self.i)
        self.i = m.end() if m else self.i
        return self.s[self.i] if self.i < len(self.s) else ""

    def take(self, ch: str) -> None:
        if self.peek() != ch:
            raise _Malformed(f"expected {ch!r} at character {self.i}")
        self.i += 1

    def members(self) -> Iterator[str]:
        """The keys of the object here; the caller steps over each value."""
        self.take("{")
        if self.peek() == "}":
            self.i += 1
            return
        while True:
            if self.peek() != '"':
                raise _Malformed(f"expected a key at character {self.i}")
            start, end, _ = self.value()
            self.take(":")
            yield json.loads(self.s[start:end])
            if self._next("}"):
                return

    def elements(self) -> Iterator[None]:
        """Once before each element of the array here; the caller steps over it."""
        self.take("[")
        if self.peek() == "]":
            self.i += 1
            return
        while True:
            yield None
            if self._next("]"):
                return

    def _next(self, close: str) -> bool:
        c = self.peek()
        self.i += 1
        if c == close:
            return True
        if c != ",":
            raise _Malformed(f"expected ',' or {close!r} at character {self.i - 1}")
        return False

    def value(self) -> Tuple[int, int, int]:
        """Step over one value: ``(start, end, depth of brackets)``."""
        c = self.peek()
        start = self.i
        if c == '"':
            m = _STRING.match(self.s, start)
            if m is None:
                raise _Malformed(f"a string at character {start} does not end")
            self.i = m.end()
            return start, self.i, 0
        if c in ("[", "{"):
            self.i, depth = _skip_nested(self.s, start)
            return start, self.i, depth
        m = _SCALAR.match(self.s, start)
        if m is None:
            raise _Malformed(f"expected a value at character {start}")
        self.i = m.end()
        return start, self.i, 0


def _skip_nested(s: str, pos: int) -> Tuple[int, int]:
    """The end of the array/object starting at ``pos`` and its depth; brackets must match."""
    stack: List[str] = []
    unchecked = 0  # levels beyond MAX_JSON_DEPTH are counted, not kept (a 20 MB "[[[[" holds no list of 20 M)
    deepest = 0
    n = len(s)
    while pos < n:
        c = s[pos]
        if c in "[{":
            if len(stack) < MAX_JSON_DEPTH:
                stack.append(c)
            else:
                unchecked += 1
            deepest = max(deepest, len(stack) + unchecked)
        elif c in "]}":
            if unchecked:
                unchecked -= 1
            elif not stack or stack.pop() != _CLOSES[c]:
                raise _Malformed(f"unbalanced {c!r} at character {pos}")
            if not stack and not unchecked:
                return pos + 1, deepest
        else:  # a quote the string pattern did not close
            raise _Malformed(f"a string at character {pos} does not end")
        m = _TO_BRACKET.match(s, pos + 1)
        pos = m.end() if m else pos + 1
    raise _Malformed("the body ends inside a value")


def _level(scan: _Scan, depth: int, levels: Tuple[Tuple[str, ...], ...], parser: SpanParser) -> Any:
    """The object at ``depth``: its array key holds the next level (spans as :class:`RawSpan`), other values parsed."""
    if scan.peek() != "{":
        return _parsed(scan, parser)
    obj: Dict[str, Any] = {}
    for key in scan.members():
        if key in levels[depth] and scan.peek() == "[":
            items: List[Any] = []
            for _ in scan.elements():
                if depth + 1 < len(levels):
                    items.append(_level(scan, depth + 1, levels, parser))
                else:
                    items.append(RawSpan(scan.s, *scan.value()))
            obj[key] = items
        else:
            obj[key] = _parsed(scan, parser)
    return obj


def _parsed(scan: _Scan, parser: SpanParser) -> Any:
    """A value outside the spans (a resource, a scope...), with exact integers."""
    start, end, depth = scan.value()
    try:
        return parser.parse_exact(scan.s[start:end], depth)
    except _Bad as exc:
        return Unparsed(str(exc))


def parse_request(
    data: Any, out: DecodedBatch, budget: int, levels: Tuple[Tuple[str, ...], ...]
) -> Tuple[Any, Optional[SpanParser]]:
    """One OTLP/JSON request for a caller that takes the items at the last level as they come.

    ``(tree, None)`` when parsed in one piece (or ``data`` was already parsed); else the skeleton
    and its parser: each item at the last level is then a :class:`RawSpan` to parse when read.
    """
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, (bytes, str)):
        return data, None
    why = ""
    if fast_fits(data, budget)[0]:
        tree, _, why = parse_fast(data)
        if not why:
            return tree, None
    return skeleton(data, out, why, budget, levels)


def skeleton(
    data: Union[bytes, str], out: DecodedBatch, why: str, budget: int, levels: Tuple[Tuple[str, ...], ...] = TRACE_LEVELS
) -> Tuple[Any, SpanParser]:
    """The request cut down to its spans (each a :class:`RawSpan`) and the parser to read them with.

    ``why`` is the fast parser's error, for the :class:`DecodeError` when the structure is broken;
    :class:`JsonTooLarge` when even span by span the request takes more than ``budget``.
    """
    if _MIN_TEXT_PER_BYTE * len(data) + _RECORDS_PER_BYTE * len(data) > budget:  # refused before the text is made
        raise JsonTooLarge(len(data), int((_MIN_TEXT_PER_BYTE + _RECORDS_PER_BYTE) * len(data)), budget)
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("utf-8", "replace")
            out.utf8_replaced += 1
    else:
        text = data
    parser = SpanParser(out, split_fits(text, len(data), budget))
    scan = _Scan(text)
    if text.startswith("\ufeff"):
        scan.i = 1
    try:
        if scan.peek() != "{":
            raise _Malformed("the body is not a JSON object")
        tree = _level(scan, 0, levels, parser)
        if scan.peek():
            raise _Malformed(f"more data after the request at character {scan.i}")
    except (_Malformed, ValueError) as exc:  # ValueError: a key that is not a valid JSON string
        raise DecodeError(f"the body is not valid JSON: {why or exc}") from None
    return tree, parser
