"""One command for every performance figure: ``python benchmarks/run.py``.

Sections (``--sections``, default all):

* ``exporter``: CPU per 1,000 spans of ``OpikSpanExporter`` vs the official
  ``OTLPSpanExporter`` (no compression, its default, and gzip) on the same SDK
  spans, alternating in one process, both sending to a sink in another process;
  realistic agent traces and a large-content variant (10-50 KB per LLM span);
  the stdlib JSON fallback against the same reference.
* ``gzip``: our exporter's CPU and bytes on the wire per gzip level.
* ``scaling``: cost per span at 1/10/100 spans per trace and 1/10/100 KB.
* ``sidecar``: ``opik-otel serve`` pinned to one core, fed OTLP protobuf
  requests of 512 spans by a separate process: spans/s, CPU per 1,000 spans,
  p50/p99 response time, with and without gzip.
* ``memory``: 200,000 spans offered while Opik never answers: peak RSS of the
  exporting process and of the sidecar, against a baseline.

Prints a table and writes the figures as JSON (``--out``). ``--quick`` runs
every section small (about a minute), for the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import table  # noqa: E402
from sink import sink  # noqa: E402

SECTIONS = ("exporter", "gzip", "scaling", "sidecar", "memory")
#: the issue's targets, checked in the summary
TARGETS = {
    "exporter_ratio_max": 1.0,
    "sidecar_spans_per_s_min": 20_000,
    "sidecar_p99_ms_max": 50.0,
    "exporter_overload_rss_delta_mb_max": 150.0,
    "sidecar_overload_rss_mb_max": 300.0,
    "spans_per_trace_spread_max": 0.20,
    # the reference: the OTLP exporter's CPU per 1,000 agent spans on its machine
    "reference_otlp_cpu_ms_per_1000": 40.0,
}


def _cpus() -> List[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return list(range(os.cpu_count() or 1))


def cpu_pair() -> tuple:
    """(core for the measured process, core for the load and sink)."""
    cpus = _cpus()
    return (cpus[0], cpus[1] if len(cpus) > 1 else cpus[0])


def worker(
    cmd: str, cfg: Dict[str, Any], json_mode: str = "orjson", cpu: Optional[int] = None, timeout: float = 600
) -> Dict[str, Any]:
    """Run ``worker.py`` in a fresh process (optionally pinned) and return its result."""
    argv = [sys.executable, os.path.join(HERE, "worker.py"), cmd, json.dumps(cfg), "--json", json_mode]
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        argv = ["taskset", "-c", str(cpu)] + argv if _has_taskset() else argv
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_"))}
    env["OPIK_CONFIG_PATH"] = os.devnull
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"worker {cmd} failed (exit {r.returncode}):\n{r.stderr[-3000:]}")


def _has_taskset() -> bool:
    from shutil import which

    return which("taskset") is not None


# -- sections ----------------------------------------------------------------------
def run_exporter(q: bool) -> Dict[str, Any]:
    me, other = cpu_pair()
    n = 1024 if q else 6144
    rounds = 2 if q else 15
    workloads = [
        {"name": "agent", "shape": "agent", "n": n},
        {"name": "agent-large", "shape": "agent", "n": 256 if q else 1536, "payload": [10_000, 50_000]},
    ]
    with sink(cpu=other) as url:
        main = worker(
            "cpu",
            {"sink": url, "variants": ["otlp", "opik", "otlp-gzip"], "rounds": rounds, "workloads": workloads},
            cpu=me,
        )
        stdlib = worker(
            "cpu",
            {"sink": url, "variants": ["otlp", "opik"], "rounds": 2 if q else 9, "workloads": workloads[:1]},
            json_mode="stdlib",
            cpu=me,
        )
    return {"orjson": main, "stdlib": stdlib}


def run_gzip(q: bool) -> Dict[str, Any]:
    me, other = cpu_pair()
    levels = [
        "opik:compression=none",
        "opik:compression_level=1",
        "opik:compression_level=3",
        "opik:compression_level=6",
        "opik:compression_level=9",
    ]
    workloads = [
        {"name": "agent", "shape": "agent", "n": 512 if q else 3072},
        {"name": "agent-large", "shape": "agent", "n": 128 if q else 768, "payload": [10_000, 50_000]},
    ]
    with sink(cpu=other) as url:
        return worker(
            "cpu",
            {"sink": url, "variants": levels, "rounds": 1 if q else 5, "workloads": workloads},
            cpu=me,
        )


def run_scaling(q: bool) -> Dict[str, Any]:
    me, other = cpu_pair()
    n = 600 if q else 6000
    workloads = [
        {"name": "1 span/trace", "shape": "llm", "spans_per_trace": 1, "n": n},
        {"name": "10 spans/trace", "shape": "llm", "spans_per_trace": 10, "n": n},
        {"name": "100 spans/trace", "shape": "llm", "spans_per_trace": 100, "n": n},
        {"name": "1 KB", "shape": "llm", "spans_per_trace": 10, "n": n, "payload": 1_000},
        {"name": "10 KB", "shape": "llm", "spans_per_trace": 10, "n": 200 if q else 2000, "payload": 10_000},
        {"name": "100 KB", "shape": "llm", "spans_per_trace": 10, "n": 50 if q else 400, "payload": 100_000},
    ]
    with sink(cpu=other) as url:
        return worker(
            "cpu",
            {"sink": url, "variants": ["otlp", "opik"], "rounds": 1 if q else 7, "workloads": workloads, "interleave": True},
            cpu=me,
        )


def run_memory(q: bool) -> Dict[str, Any]:
    me, other = cpu_pair()
    n = 10_240 if q else 200_000
    out: Dict[str, Any] = {}
    with sink("stall", cpu=other) as url:
        out["baseline"] = worker("overload", {"sink": url, "exporter": "none", "n": n}, cpu=me)
        # quick: a small byte bound, so the few spans offered still overflow it
        variant = "opik:max_queue_bytes=4194304" if q else "opik"
        out["exporter"] = worker("overload", {"sink": url, "exporter": variant, "n": n}, cpu=me)
    try:
        import sidecar_bench
    except ImportError:
        return out
    out["sidecar"] = sidecar_bench.run_overload(n, me, other)
    return out


def run_sidecar(q: bool) -> Dict[str, Any]:
    import sidecar_bench

    me, other = cpu_pair()
    return sidecar_bench.run_throughput(q, me, other)


RUNNERS = {
    "exporter": run_exporter,
    "gzip": run_gzip,
    "scaling": run_scaling,
    "sidecar": run_sidecar,
    "memory": run_memory,
}


def machine() -> Dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions: Dict[str, str] = {}
    from importlib import metadata

    for dist in (
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-http",
        "protobuf",
        "orjson",
        "isal",
        "httpx",
        "uvicorn",
        "httptools",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "-"
    try:
        from google.protobuf.internal import api_implementation

        versions["protobuf backend"] = api_implementation.Type()
    except ImportError:
        pass
    return {
        "cpu": model,
        "cpus": len(_cpus()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="opentelemetry-exporter-opik benchmarks")
    ap.add_argument("--quick", action="store_true", help="small sizes, one minute: proves the harness works")
    ap.add_argument(
        "--out", default=os.path.join(HERE, "results", "latest.json"), help="where to write the JSON results"
    )
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of " + ",".join(SECTIONS))
    args = ap.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if s not in RUNNERS]
    if unknown:
        ap.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    results: Dict[str, Any] = {
        "command": "python benchmarks/run.py" + (" --quick" if args.quick else ""),
        "quick": args.quick,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "targets": TARGETS,
        "sections": {},
    }
    t0 = time.monotonic()
    for name in sections:
        s0 = time.monotonic()
        print(f"[{name}] running...", file=sys.stderr, flush=True)
        results["sections"][name] = RUNNERS[name](args.quick)
        results["sections"][name]["elapsed_s"] = round(time.monotonic() - s0, 1)
    results["elapsed_s"] = round(time.monotonic() - t0, 1)
    results["summary"] = table.summary(results)
    print(table.render(results))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
        print(f"\nresults written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
