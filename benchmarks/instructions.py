"""Instructions per span, counted by callgrind: our exporter path against the official OTLP encoding.

CPU time on a shared machine varies by 15-20% from one round to the next; an
instruction count does not. This script runs the same seeded SDK spans through
two paths, each in its own process under ``valgrind --tool=callgrind``:

* **opik**: ``from_readable_span``, the pipeline (convention readers, privacy,
  JSON encoding), the request bodies and gzip, as the exporter runs them;
* **otlp**: the official exporter's ``encode_spans(...).SerializePartialToString()``;
* **sidecar**: what ``opik-otel serve`` does with the OTLP requests of those
  spans (512 per request): parse and validate, convert to records, the same
  pipeline, request bodies and gzip;
* **opik-exporter** and **otlp-exporter**: the whole exporters, ``OpikSpanExporter``
  and the official ``OTLPSpanExporter`` (HTTP/protobuf, no compression, its
  default), each exporting the spans in batches of 512 to a local sink and
  flushing: with the sender thread, its queue and HTTP (callgrind counts every
  thread). This is the issue's comparison, without the machine's noise.

A further process builds the same spans (and their OTLP requests), creates and
warms both exporters and every path, but runs none. Its count is subtracted from
the others. HTTP is in the two whole-exporter counts only; it is a few percent
of either exporter's CPU and about a fifth of the sidecar's (its server and its
client, see README.md).

    python benchmarks/instructions.py [--spans 1536] [--shape agent|llm] [--spans-per-trace 3] [--out F]

It needs ``valgrind``. A run of 1,536 spans takes about three minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def _child(mode: str, shape: str, n: int, per_trace: int, sink_url: str) -> None:
    """One measured process: build the spans, warm every path, then run ``mode`` once."""
    sys.path.insert(0, HERE)
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from spans import SpanFactory, batches

    from opentelemetry.exporter.opik import OpikSpanExporter
    from opentelemetry.exporter.opik._compress import gzip_compressor
    from opentelemetry.exporter.opik._config import resolve_settings
    from opentelemetry.exporter.opik._items import KIND_ORDER, request_body
    from opentelemetry.exporter.opik._otlp import decode_protobuf
    from opentelemetry.exporter.opik._pipeline import Pipeline
    from opentelemetry.exporter.opik._record import from_readable_span

    settings = resolve_settings({"url": "http://127.0.0.1:9/api"}, env={"OPIK_CONFIG_PATH": os.devnull})
    gz = gzip_compressor(settings.compression_level)
    spans = SpanFactory().build(shape, n, spans_per_trace=per_trace)
    warm = SpanFactory(seed=7).build(shape, min(n, 200), spans_per_trace=per_trace)

    def deliver(pipeline: Pipeline, records: List[Any]) -> None:
        items = pipeline.process(records).items
        for kind in KIND_ORDER:
            of_kind = [i for i in items if i.kind == kind]
            if of_kind:
                gz(request_body(kind, of_kind))

    def opik(group: List[Any]) -> None:
        pipeline = Pipeline(settings)
        for batch in batches(group):
            deliver(pipeline, [from_readable_span(s) for s in batch])

    def otlp(group: List[Any]) -> None:
        for batch in batches(group):
            encode_spans(batch).SerializePartialToString()

    def sidecar(bodies: List[bytes]) -> None:
        pipeline = Pipeline(settings)
        for body in bodies:
            decoded = decode_protobuf(body, lazy=True)  # the answer is sent here
            deliver(pipeline, decoded.materialize())

    def requests(group: List[Any]) -> List[bytes]:
        return [encode_spans(batch).SerializeToString() for batch in batches(group)]

    bodies, warm_bodies = requests(spans), requests(warm)
    no_config = {"OPIK_CONFIG_PATH": os.devnull}
    exporters: Dict[str, Any] = {
        "opik-exporter": OpikSpanExporter(settings=resolve_settings({"url": sink_url + "/api"}, env=no_config)),
        "otlp-exporter": OTLPSpanExporter(endpoint=sink_url + "/v1/traces"),
    }
    for exporter in exporters.values():
        exporter.export(warm)
        exporter.force_flush()
    opik(warm)
    otlp(warm)
    sidecar(warm_bodies)
    if mode == "opik":
        opik(spans)
    elif mode == "otlp":
        otlp(spans)
    elif mode == "sidecar":
        sidecar(bodies)
    elif mode in exporters:
        exporter = exporters[mode]
        for batch in batches(spans):
            exporter.export(batch)
        exporter.force_flush()
        if mode == "opik-exporter":
            stats = exporter.stats()
            assert stats["spans_exported"] >= len(spans) and not stats["dropped"], stats
    for exporter in exporters.values():
        exporter.shutdown()
    print(len(spans))


def _count(mode: str, args: argparse.Namespace) -> int:
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        mode,
        "--shape",
        args.shape,
        "--spans",
        str(args.spans),
        "--spans-per-trace",
        str(args.spans_per_trace),
        "--sink",
        args.sink,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    m = _COLLECTED.search(r.stderr)
    if r.returncode != 0 or m is None:
        raise SystemExit(f"callgrind run {mode!r} failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
    return int(m.group(1))


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spans", type=int, default=1536, help="spans measured (whole traces, at least this many)")
    ap.add_argument("--shape", choices=("agent", "llm"), default="agent", help="agent traces (agent, LLM, tool) or LLM-only traces")
    ap.add_argument("--spans-per-trace", type=int, default=3, help="for --shape llm")
    ap.add_argument("--out", help="also write the figures as JSON")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--sink", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child, args.shape, args.spans, args.spans_per_trace, args.sink)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: this measurement needs it (apt install valgrind)", file=sys.stderr)
        return 2
    # the spans are whole traces: count them as the child builds them
    sys.path.insert(0, HERE)
    from spans import SpanFactory

    n = len(SpanFactory().build(args.shape, args.spans, spans_per_trace=args.spans_per_trace))
    from sink import sink

    # instruction counts do not depend on load: the processes run side by side
    modes = ("base", "opik", "otlp", "sidecar", "opik-exporter", "otlp-exporter")
    with sink() as url, concurrent.futures.ThreadPoolExecutor(max_workers=len(modes)) as pool:
        args.sink = url
        futures = {mode: pool.submit(_count, mode, args) for mode in modes}
        counts: Dict[str, int] = {mode: f.result() for mode, f in futures.items()}
    per_span = {mode: (counts[mode] - counts["base"]) / n for mode in modes[1:]}
    result = {
        "shape": args.shape,
        "spans_per_trace": args.spans_per_trace if args.shape == "llm" else 3,
        "spans": n,
        "instructions": counts,
        "instructions_per_span": per_span,
        "ratio_opik_vs_otlp": per_span["opik"] / per_span["otlp"],
        "ratio_sidecar_vs_otlp": per_span["sidecar"] / per_span["otlp"],
        "ratio_exporter_vs_otlp_exporter": per_span["opik-exporter"] / per_span["otlp-exporter"],
    }
    print(f"{n} spans ({args.shape}), instructions per span counted by callgrind:")
    print(f"  opik (records, pipeline, request bodies, gzip): {per_span['opik']:>12,.0f}")
    print(f"  otlp (encode_spans + serialize):                {per_span['otlp']:>12,.0f}")
    print(f"  sidecar (parse, records, pipeline, bodies, gzip): {per_span['sidecar']:>10,.0f}")
    print(f"  ratio opik / otlp:                              {result['ratio_opik_vs_otlp']:>12.3f}")
    print(f"  ratio sidecar / otlp:                           {result['ratio_sidecar_vs_otlp']:>12.3f}")
    print("whole exporters, batches of 512 to a local sink, with their threads and HTTP:")
    print(f"  OpikSpanExporter (gzip):                        {per_span['opik-exporter']:>12,.0f}")
    print(f"  OTLPSpanExporter (no compression):              {per_span['otlp-exporter']:>12,.0f}")
    print(f"  ratio:                                          {result['ratio_exporter_vs_otlp_exporter']:>12.3f}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
