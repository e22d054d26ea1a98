"""``opik-otel import``: backfill Opik from OTLP files.

Readable inputs (sniffed from the content, not the file name):

* OTLP/JSON: the Collector ``file`` exporter's JSON lines (one request per
  line; lines of metrics are skipped; lines of logs are read for the GenAI
  content they carry, joined to their spans as ``OpikLogExporter`` does), or a JSON document holding one
  request or an array of requests (pretty-printed or not, several documents
  may follow each other);
* OTLP protobuf: one ``ExportTraceServiceRequest`` (``TracesData`` has the same
  wire format), or several, each prefixed by its length, either as a varint
  (protobuf's ``writeDelimitedTo``, the OTLP file spec) or as 4 bytes
  big-endian (the Collector ``file`` exporter with ``format: proto``). A
  message cannot start with a 0 byte and a request starts with ``0x0A``, so
  the three are told apart by the first byte;
* any of these gzip- (``1f 8b``) or zstd-compressed (``28 b5 2f fd``, needs
  the ``zstandard`` package).

Ids: requests go through one :class:`Pipeline` (one mapper, one trace cache)
in file order, files in the order given, exactly as the sidecar maps a stream
of requests. A trace's Opik ids take its start from the ``opik`` tracestate
entry when spans carry one (``OpikSampler``), else from the earliest span
start of the first request that holds the trace, which is what live export of
the same requests computes. So an import stores the ids live export stores,
and a re-run stores the same ids again: Opik keeps one row per id (the newest
``last_updated_at``, which is the span's end, identical), so resuming an
interrupted import is re-running it. (Concatenating protobuf requests without
length prefixes merges them into one request, which can change the start of a
trace split across them.)
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import sys
import threading
import time
from typing import IO, Any, Dict, Iterator, List, Mapping, Optional, Sequence, TextIO, Union

from ._config import ConfigError, OpikSettings, resolve_settings
from ._delivery.sink import Sink, close_sink, make_sink
from ._items import Item
from ._json import loads
from ._mapping import Mapper
from ._mapping._traces import TraceCache
from ._otlp import DecodedBatch, DecodeError, DecodeLimits, decode_json, decode_protobuf, encode_varint
from ._pipeline import Pipeline
from ._record import SpanRecord
from ._stats import Stats

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_MAX_FRAME = 1 << 31
#: a file is one import: no per-request span cap
_LIMITS = DecodeLimits(max_spans=1 << 62)
_SUBMIT_CHUNK = 500
#: drop reasons that are the user's own choice (filters, the mask hook returning None);
#: every other reason (rejected, http_*, retry_deadline, ...) means data was lost
CHOSEN_REASONS = frozenset(("masked", "filtered", "scope_filtered"))


class ImportFileError(Exception):
    """The file cannot be read as OTLP traces at all; the message says why."""


class Request:
    """One OTLP request found in a file: ``fmt`` is ``json`` (a parsed object) or ``protobuf`` (bytes)."""

    __slots__ = ("fmt", "payload", "where")

    def __init__(self, fmt: str, payload: Any, where: str) -> None:
        self.fmt = fmt
        self.payload = payload
        self.where = where


# -- reading files -------------------------------------------------------------------------


class _Source:
    """A file (or stdin) opened for reading, decompressed, with the raw position for progress."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = "<stdin>" if path == "-" else path
        if path == "-":
            self._raw: Any = sys.stdin.buffer
            self.size: Optional[int] = None
        else:
            try:
                self._raw = open(path, "rb")  # noqa: SIM115 - closed in close()
                self.size = os.fstat(self._raw.fileno()).st_size
            except OSError as exc:
                raise ImportFileError(f"{path}: cannot open: {exc.strerror or exc}") from None
        raw: Any = self._raw if isinstance(self._raw, io.BufferedReader) else io.BufferedReader(self._raw)
        magic = raw.peek(4)[:4]
        stream: Any
        if magic.startswith(_GZIP_MAGIC):
            stream = gzip.GzipFile(fileobj=raw, mode="rb")
            self.compression: Optional[str] = "gzip"
        elif magic == _ZSTD_MAGIC:
            try:
                import zstandard
            except ImportError:
                raise ImportFileError(
                    f"{self.name}: zstd-compressed; install the zstandard package (pip install zstandard) "
                    "or decompress it first (zstd -d)"
                ) from None
            stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            self.compression = "zstd"
        else:
            stream = raw
            self.compression = None
        self._buffered = raw
        self.stream: Any = io.BufferedReader(stream, 1 << 16) if stream is not raw else raw

    def position(self) -> int:
        """Bytes of the (compressed) file consumed so far."""
        try:
            return self._raw.tell() if self.size is not None else 0
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        if self.path != "-":
            try:
                self.stream.close()
            finally:
                self._raw.close()


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    chunks: List[bytes] = []
    while n > 0:
        b = stream.read(n)
        if not b:
            break
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def _read_varint(stream: IO[bytes]) -> Optional[int]:
    """A base-128 varint, None at a clean end of file."""
    shift = result = 0
    for i in range(10):
        b = stream.read(1)
        if not b:
            if i == 0:
                return None
            raise ImportFileError("the file ends inside a length prefix")
        result |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return result
        shift += 7
    raise ImportFileError("a length prefix is longer than 10 bytes: not a length-delimited protobuf file")


def iter_requests(src: _Source) -> Iterator[Union[Request, ImportFileError]]:
    """Every OTLP request in the file; a bad line or message yields an error and reading goes on where it can."""
    stream = src.stream
    head = stream.peek(256)
    if head.startswith(b"\xef\xbb\xbf"):
        stream.read(3)
        head = head[3:]
    if not head:
        return
    first = head.lstrip(b" \t\r\n")[:1]
    if first in (b"{", b"["):
        yield from _json_requests(src)
    elif not first:  # only whitespace so far: look further
        rest = stream.read()
        if rest.strip():
            yield from _json_document(src, rest, 1)
    else:
        yield from _protobuf_requests(src, head[0])


def _json_values(obj: Any, where: str) -> Iterator[Union[Request, ImportFileError]]:
    if isinstance(obj, list):
        for i, o in enumerate(obj):
            yield from _json_values(o, f"{where}[{i}]")
        return
    if isinstance(obj, dict):
        if "resourceSpans" in obj or "resource_spans" in obj:
            yield Request("json", obj, where)
            return
        if "resourceLogs" in obj or "resource_logs" in obj:
            yield Request("json_logs", obj, where)  # GenAI content in log records: joined to its spans
            return
        if any(k in obj for k in ("resourceMetrics", "resource_metrics",
                                  "resourceProfiles", "resource_profiles")):
            return  # another signal in a shared Collector file: not ours to import
    yield ImportFileError(f"{where}: not an OTLP trace request (no resourceSpans)")


def _json_requests(src: _Source) -> Iterator[Union[Request, ImportFileError]]:
    stream = src.stream
    lineno = 0
    for raw_line in stream:
        lineno += 1
        line = raw_line.strip()
        if not line:
            continue
        try:
            obj = loads(line)
        except ValueError as exc:
            kind = _request_line(line)
            if kind:  # a value the fast parser refuses (NaN, 5,000 digits, deep): the decoder keeps it to its span or record
                yield Request(kind, line, f"{src.name}:{lineno}")
                continue
            if lineno == 1 or not line.endswith((b"}", b"]")):
                # not JSON lines: a (pretty-printed) document, or documents one after another
                yield from _json_document(src, raw_line + stream.read(), lineno)
                return
            yield ImportFileError(f"{src.name}:{lineno}: invalid JSON ({str(exc)[:120]}); line skipped")
            continue
        kind = _request_line(line) if isinstance(obj, dict) else None
        if kind:
            yield Request(kind, line, f"{src.name}:{lineno}")  # the text: integers beyond 64 bits keep their digits
            continue
        yield from _json_values(obj, f"{src.name}:{lineno}")


def _request_line(line: bytes) -> Optional[str]:
    """``json`` / ``json_logs`` for one OTLP/JSON trace / logs request on a line (a Collector file exporter's)."""
    if not (line.startswith(b"{") and line.endswith(b"}")):
        return None
    head = line[:64]
    if b'"resourceSpans"' in head or b'"resource_spans"' in head:
        return "json"
    if b'"resourceLogs"' in head or b'"resource_logs"' in head:
        return "json_logs"
    return None


def _json_document(src: _Source, data: bytes, first_line: int) -> Iterator[Union[Request, ImportFileError]]:
    text = data.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    pos, n, k = 0, len(text), 0
    while True:
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        if pos >= n:
            return
        try:
            obj, end = decoder.raw_decode(text, pos)
        except ValueError as exc:
            line = first_line + text.count("\n", 0, getattr(exc, "pos", pos))
            yield ImportFileError(f"{src.name}:{line}: invalid JSON ({str(exc)[:120]}); the rest of the file is skipped")
            return
        k += 1
        yield from _json_values(obj, f"{src.name} (document {k})" if k > 1 or end < n - 1 else src.name)
        pos = end


def _protobuf_requests(src: _Source, first: int) -> Iterator[Union[Request, ImportFileError]]:
    stream = src.stream
    if first == 0x0A:  # field 1 (resource_spans), length-delimited: one request
        yield Request("protobuf", stream.read(), src.name)
        return
    fixed = first == 0x00  # a 4-byte big-endian length below 16 MiB
    k = 0
    offset = 0
    while True:
        try:
            if fixed:
                prefix = _read_exact(stream, 4)
                if not prefix:
                    return
                if len(prefix) < 4:
                    raise ImportFileError("the file ends inside a length prefix")
                length: Optional[int] = int.from_bytes(prefix, "big")
                plen = 4
            else:
                length = _read_varint(stream)
                if length is None:
                    return
                plen = len(encode_varint(length))
            assert length is not None
            if length > _MAX_FRAME:
                raise ImportFileError(f"a length prefix says {length} bytes: not a length-delimited OTLP protobuf file")
            body = _read_exact(stream, length)
            if len(body) < length:
                raise ImportFileError(f"the file ends inside message {k + 1} ({len(body)} of {length} bytes; an interrupted write?)")
            if body and body[0] != 0x0A:
                raise ImportFileError(
                    "not an OTLP protobuf trace file (expected one ExportTraceServiceRequest, or several each "
                    "prefixed by their length as a varint or 4 bytes big-endian)"
                )
        except ImportFileError as exc:
            yield ImportFileError(f"{src.name} at byte {offset}: {exc}")
            return
        k += 1
        yield Request("protobuf", body, f"{src.name} (message {k})")
        offset += plen + length


def decode_request(req: Request) -> DecodedBatch:
    if req.fmt == "json":
        return decode_json(req.payload, _LIMITS)
    return decode_protobuf(req.payload, _LIMITS)


# -- progress ------------------------------------------------------------------------------


def _fmt_duration(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """A one-line bar on a terminal, a plain line every few seconds otherwise, or nothing."""

    def __init__(self, mode: str, stream: TextIO, total_bytes: Optional[int]) -> None:
        if mode == "auto":
            mode = "bar" if stream.isatty() else "lines"
        self.mode = mode
        self.stream = stream
        self.total = total_bytes
        self.start = time.monotonic()
        self._last = self.start if mode == "lines" else 0.0
        self._interval = 0.1 if mode == "bar" else 5.0
        self._drawn = False

    def _due(self, force: bool) -> Optional[float]:
        """Now, when a line is due (forced, or the interval passed); None when quiet."""
        if self.mode == "none":
            return None
        now = time.monotonic()
        if not force and now - self._last < self._interval:
            return None
        self._last = now
        return now

    def update(self, done_bytes: int, spans: int, traces: int, label: str = "", force: bool = False) -> None:
        now = self._due(force)
        if now is None:
            return
        elapsed = max(now - self.start, 1e-6)
        rate = spans / elapsed
        frac = done_bytes / self.total if self.total else None
        eta = ""
        if frac and 0 < frac < 1 and elapsed > 0.5:
            eta = f" ETA {_fmt_duration(elapsed * (1 - frac) / frac)}"
        counts = f"{spans:,} spans {traces:,} traces {rate:,.0f} spans/s"
        if self.mode == "bar":
            width = shutil.get_terminal_size((80, 20)).columns
            pct = f"{frac * 100:3.0f}%" if frac is not None else "   ?"
            text = f" {pct} {counts}{eta}"
            bar_w = max(10, min(40, width - len(text) - 3))
            filled = int(bar_w * (frac or 0))
            line = f"[{'#' * filled}{'.' * (bar_w - filled)}]{text}"
            self.stream.write("\r" + line[: width - 1].ljust(width - 1))
            self._drawn = True
        else:
            pct = f" ({frac * 100:.0f}%)" if frac is not None else ""
            self.stream.write(f"import: {label + ': ' if label else ''}{counts}{pct}{eta}\n")
        self.stream.flush()

    def sending(self, delivered: int, total: int, dropped: int, force: bool = False) -> None:
        """The drain after reading: ``sending: N of M delivered`` until the writer is done."""
        if self._due(force) is None:
            return
        lost = f", {dropped:,} dropped" if dropped else ""
        text = f"sending: {delivered:,} of {total:,} delivered{lost}"
        if self.mode == "bar":
            width = shutil.get_terminal_size((80, 20)).columns
            self.stream.write("\r" + text[: width - 1].ljust(width - 1))
            self._drawn = True
        else:
            self.stream.write(f"import: {text}\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.mode == "bar" and self._drawn:
            self.stream.write("\n")
            self.stream.flush()


# -- the command ---------------------------------------------------------------------------


class ImportResult:
    """What an import did; ``exit_code`` is 0 only when nothing was lost."""

    def __init__(self) -> None:
        self.files_read = 0
        self.requests = 0
        self.spans_read = 0
        self.traces_mapped = 0
        self.decode_rejected = 0
        self.map_rejected = 0
        self.problems: List[str] = []  # file errors and rejections, for the summary
        self.empty_files: List[str] = []  # readable, but no trace request in them
        self.file_errors = 0
        self.flushed = True
        self.interrupted = False
        self.stats: Dict[str, Any] = {}
        self.seconds = 0.0

    def note(self, message: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(message)

    @property
    def lost(self) -> Dict[str, int]:
        dropped = self.stats.get("dropped", {}) or {}
        return {k: v for k, v in dropped.items() if k not in CHOSEN_REASONS}

    @property
    def left_out(self) -> Dict[str, int]:
        dropped = self.stats.get("dropped", {}) or {}
        return {k: v for k, v in dropped.items() if k in CHOSEN_REASONS}

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        bad = self.decode_rejected or self.map_rejected or self.file_errors or self.lost or not self.flushed
        return 1 if bad else 0


def _wait_and_submit(writer: Sink, items: List[Item], stats: Stats) -> None:
    """Submit without ever overflowing the writer's queue: an import must not drop what it read."""
    for i in range(0, len(items), _SUBMIT_CHUNK):
        chunk = items[i : i + _SUBMIT_CHUNK]
        nbytes = sum(it.size for it in chunk)
        while not writer.has_capacity(len(chunk), nbytes) and writer.pending() > 0:
            if stats.dropped().get("unauthorized"):
                raise _AuthRefused()
            time.sleep(0.005)
        writer.submit(chunk)


class _AuthRefused(Exception):
    """Opik refused the credentials mid-import: stop reading, everything else would be dropped too."""


def run_import(
    paths: Sequence[str],
    overrides: Optional[Mapping[str, Any]] = None,
    *,
    dry_run: bool = False,
    progress: str = "auto",
    flush_timeout: float = 300.0,
    out: Optional[TextIO] = None,
    err: Optional[TextIO] = None,
    env: Optional[Mapping[str, str]] = None,
) -> int:
    """Import ``paths`` into Opik; prints progress and a summary; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    opts = dict(overrides or {})
    if dry_run:
        opts["dry_run"] = True
    try:
        settings = resolve_settings(opts, env)
    except ConfigError as exc:
        err.write(f"opik-otel import: configuration error: {exc}\n")
        return 2
    if not settings.dry_run:
        from ._check import FAIL, run_checks

        failed = [c for c in run_checks(settings) if c.status == FAIL]
        if failed:
            c = failed[0]
            err.write(f"opik-otel import: cannot send to Opik at {settings.url}: {c.detail}\n  {c.fix}\n"
                      "Nothing was imported. (`opik-otel check` shows the settings and every check.)\n")
            return 1
    result = _import(paths, settings, progress, flush_timeout, out, err)
    _summary(result, settings, err)
    return result.exit_code


def _import(paths: Sequence[str], settings: OpikSettings, progress_mode: str, flush_timeout: float,
            out: TextIO, err: TextIO) -> ImportResult:
    result = ImportResult()
    stats = Stats()
    # One mapper for the whole import; its trace cache never expires by idle time
    # (an import may pause between files), and holds many traces.
    mapper = Mapper(settings, cache=TraceCache(max_entries=1_000_000, ttl_s=float("inf")))
    pipeline = Pipeline(settings, mapper=mapper, stats=stats)
    # no spool: re-running the same import is its recovery (and it sends nothing twice)
    writer = make_sink(settings, stats, console=out, spool=False)
    # log records (GenAI content) join their spans: read before them they wait, after them the span is sent again
    joiner = _ImportJoin(pipeline, writer, stats)
    sizes = []
    for p in paths:
        try:
            sizes.append(os.path.getsize(p) if p != "-" else None)
        except OSError:
            sizes.append(0)
    total = None if any(s is None for s in sizes) else sum(s or 0 for s in sizes)
    bar = Progress(progress_mode, err, total)
    done_before = 0
    t0 = time.monotonic()
    try:
        for path, size in zip(paths, sizes):
            try:
                src = _Source(path)
            except ImportFileError as exc:
                result.file_errors += 1
                result.note(str(exc))
                bar.update(done_before, result.spans_read, result.traces_mapped, force=True)
                continue
            result.files_read += 1
            requests_before, errors_before = result.requests, result.file_errors
            try:
                for req in iter_requests(src):
                    if isinstance(req, ImportFileError):
                        result.file_errors += 1
                        result.note(str(req))
                        continue
                    _process(req, pipeline, writer, stats, result, joiner)
                    bar.update(done_before + src.position(), result.spans_read, result.traces_mapped, os.path.basename(src.name))
            except (OSError, EOFError, ValueError) as exc:  # corrupt compression, unreadable file
                result.file_errors += 1
                result.note(f"{src.name}: read error: {exc}; the rest of this file is skipped")
            finally:
                src.close()
            if result.requests == requests_before and result.file_errors == errors_before:
                result.empty_files.append(src.name)
            done_before += size or 0
            bar.update(done_before, result.spans_read, result.traces_mapped, os.path.basename(src.name), force=True)
        joiner.finish(result)
        close = getattr(pipeline, "close", None)
        if close is not None:  # items a stage held back (e.g. traces waiting to be judged by a filter)
            _wait_and_submit(writer, close(), stats)
        result.flushed = _drain(writer, stats, bar, flush_timeout)
        bar.finish()
    except _AuthRefused:
        bar.finish()
        result.note("Opik refused the credentials during the import; stopped (see the error logged above)")
        result.flushed = False
    except KeyboardInterrupt:
        bar.finish()
        result.interrupted = True
        err.write("\ninterrupted: sending what was read (up to 10 s)...\n")
        result.flushed = writer.flush(10.0)
    finally:
        close_sink(writer, 5.0)
    result.seconds = time.monotonic() - t0
    result.stats = stats.snapshot()
    return result


_DELIVERED = ("traces_exported", "spans_exported", "scores_exported")


def _drain(writer: Sink, stats: Stats, bar: Progress, timeout: float) -> bool:
    """Wait for delivery (one flush, in a helper thread) while the bar shows ``sending: N of M delivered``."""
    outcome: List[bool] = []
    waiter = threading.Thread(target=lambda: outcome.append(writer.flush(timeout)), name="opik-import-flush",
                              daemon=True)
    waiter.start()
    force = True
    while True:
        snap = stats.snapshot()
        delivered = sum(int(snap.get(k, 0) or 0) for k in _DELIVERED)  # type: ignore[call-overload]
        dropped_map = snap.get("dropped")
        dropped = sum(dropped_map.values()) if isinstance(dropped_map, dict) else 0
        bar.sending(delivered, delivered + dropped + writer.pending(), dropped, force=force or not waiter.is_alive())
        if not waiter.is_alive():
            return bool(outcome and outcome[0])
        force = False
        waiter.join(0.1)


class _ImportJoin:
    """The import's own log join: no waiting window (files have no time), generous bounds, late content re-sent."""

    def __init__(self, pipeline: Pipeline, writer: Sink, stats: Stats) -> None:
        from ._join import LogJoin

        self.pipeline = pipeline
        self.writer = writer
        self.stats = stats
        self.join = LogJoin(
            stats=stats,
            max_pending_records=200_000,
            max_pending_bytes=256 * 1024 * 1024,
            pending_seconds=float("inf"),
            keep_always=True,
        )
        self.log_records = 0

    def deliver_joined(self, records: List[SpanRecord], resend: bool) -> None:
        from ._mapping._time import iso_ns

        processed = self.pipeline.process(records, updated_at=iso_ns(time.time_ns()) if resend else None)
        _wait_and_submit(self.writer, processed.items, self.stats)

    def logs(self, req: Request, result: ImportResult) -> bool:
        """Join a logs request; False when ``req`` is not one."""
        from ._otlp_logs import decode_logs_json, decode_logs_protobuf

        try:
            decoded = decode_logs_json(req.payload) if req.fmt == "json_logs" else decode_logs_protobuf(req.payload)
        except DecodeError as exc:
            if req.fmt != "json_logs":
                return False
            result.file_errors += 1
            result.note(f"{req.where}: {exc}")
            return True
        if req.fmt != "json_logs" and (decoded.rejected or not decoded.records):
            return False
        if decoded.rejected:
            result.decode_rejected += decoded.rejected
            result.note(f"{req.where}: {decoded.message()}")
        self.log_records += len(decoded.records)
        self.join.logs(decoded.records)
        return True

    def finish(self, result: ImportResult) -> None:
        waiting = self.join.sizes()["pending_records"]
        if waiting:
            self.stats.drop("log_span_never_came", waiting)
            result.note(f"{waiting:,} GenAI log records name spans that are in none of the files")


def _process(
    req: Request, pipeline: Pipeline, writer: Sink, stats: Stats, result: ImportResult, joiner: Optional[_ImportJoin] = None
) -> None:
    result.requests += 1
    if req.fmt == "json_logs" and joiner is not None:
        joiner.logs(req, result)
        return
    try:
        batch = decode_request(req)
    except DecodeError as exc:
        if joiner is not None and req.fmt == "protobuf" and joiner.logs(req, result):
            return
        result.file_errors += 1
        result.note(f"{req.where}: {exc}")
        return
    if joiner is not None and req.fmt == "protobuf" and batch.rejected >= batch.span_count and joiner.logs(req, result):
        return  # not one span could be read: a logs request (the two share their first field number)
    result.spans_read += batch.span_count
    if batch.rejected:
        result.decode_rejected += batch.rejected
        for reason in batch.reasons[:5]:
            result.note(f"{req.where}: {reason}")
    records = joiner.join.spans(batch.records, joiner) if joiner is not None else batch.records
    processed = pipeline.process(records)
    if processed.rejected:
        result.map_rejected += len(processed.rejected)
        for label, reason in processed.rejected[:5]:
            result.note(f"{req.where}: {label}: {reason}")
    result.traces_mapped += sum(1 for it in processed.items if it.kind == "trace")
    _wait_and_submit(writer, processed.items, stats)


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _summary(r: ImportResult, settings: OpikSettings, err: TextIO) -> None:
    s = r.stats
    rate = r.spans_read / r.seconds if r.seconds > 0 else 0.0
    verb = "Printed" if settings.dry_run else "Sent"
    lines = [
        f"Read {_n(r.spans_read, 'span')} in {_n(r.requests, 'request')} from {_n(r.files_read, 'file')} in {r.seconds:.1f} s "
        f"({rate:,.0f} spans/s).",
        f"{verb} {_n(int(s.get('traces_exported', 0)), 'trace')}, {_n(int(s.get('spans_exported', 0)), 'span')}, "
        f"{_n(int(s.get('scores_exported', 0)), 'feedback score')}"
        + ("" if settings.dry_run else f" to {settings.url} (workspace {settings.workspace!r}, default project {settings.project_name!r})")
        + ".",
    ]
    rejected = []
    if r.decode_rejected:
        rejected.append(f"{_n(r.decode_rejected, 'span')} could not be decoded")
    if r.map_rejected:
        rejected.append(f"{_n(r.map_rejected, 'span')} could not be mapped")
    for reason, n in sorted(r.lost.items()):
        rejected.append(f"{_n(n, 'item')} lost ({reason})")
    if r.file_errors:
        rejected.append(f"{_n(r.file_errors, 'file, line or message')} could not be read")
    if not r.flushed and not r.interrupted:
        rejected.append("delivery did not finish in time (raise --flush-timeout)")
    if r.empty_files:
        lines.append("No trace data in: " + ", ".join(r.empty_files[:10]) + (" ..." if len(r.empty_files) > 10 else "") + ".")
    if r.left_out:
        lines.append("Left out by your settings: " + ", ".join(f"{n:,} {k}" for k, n in sorted(r.left_out.items())) + ".")
    if rejected:
        lines.append("Problems: " + "; ".join(rejected) + ".")
        lines.extend("  " + p for p in r.problems)
    if r.interrupted:
        lines.append("Interrupted. Run the same command again to finish: spans already sent get the same ids and "
                     "are overwritten, not duplicated.")
    elif rejected:
        lines.append("Fix the problems above and run the same command again: spans already sent are not duplicated.")
    err.write("\n".join(lines) + "\n")
    err.flush()


__all__ = ["ImportFileError", "ImportResult", "Progress", "Request", "iter_requests", "run_import", "decode_request"]
