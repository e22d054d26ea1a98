"""One command for every performance figure: ``python benchmarks/run.py``.

Sections (``--sections``, default all):

* ``exporter``: CPU per 1,000 spans of ``OpikSpanExporter`` vs the official
  ``OTLPSpanExporter`` (no compression, its default, and gzip) on the same SDK
  spans, alternating in one process, both sending to a sink in another process;
  sparse spans (about 5 attributes), agent spans (about 10) and a large-content
  variant (10-50 KB per LLM span); in the default install and again in each
  install that runs other code (every extra, the stdlib fallback: ``installs.py``).
* ``gzip``: our exporter's CPU and bytes on the wire per gzip level.
* ``scaling``: cost per span at 1/10/100 spans per trace and 1/10/100 KB.
* ``sidecar``: ``opik-otel serve`` pinned to one core, fed OTLP protobuf
  requests of 512 spans by a separate process: spans/s, CPU per 1,000 spans,
  p50/p99 response time, with and without gzip.
* ``memory``: 200,000 spans offered while Opik never answers: peak RSS of the
  exporting process and of the sidecar, against a baseline.
* ``opik-sdk``: CPU of the app process (all threads) recording the same traces
  with OTel + this exporter, OTel + the OTLP exporter and Opik's own Python SDK
  (``opik_sdk.py``; the SDK in ``.venvs/bench-opik``), alternating rounds.

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
from typing import Any, Dict, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import installs  # noqa: E402
import table  # noqa: E402
from sink import sink  # noqa: E402

SECTIONS = ("exporter", "gzip", "scaling", "sidecar", "memory", "opik-sdk")
#: the issue's targets, checked in the summary
TARGETS = {
    # issue 20, by instruction count (instructions.py); the CPU figures here are checked against them too
    "exporter_agent_ratio_max": 0.60,
    "exporter_sparse_ratio_max": 0.70,
    "sidecar_speedup_vs_baseline_min": 2.0,
    "sidecar_spans_per_s_min": 20_000,
    "sidecar_p99_ms_max": 50.0,
    "exporter_overload_rss_delta_mb_max": 150.0,
    "sidecar_overload_rss_mb_max": 300.0,
    "spans_per_trace_spread_max": 0.15,
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
    cmd: str, cfg: Dict[str, Any], hidden: Sequence[str] = (), cpu: Optional[int] = None, timeout: float = 900
) -> Dict[str, Any]:
    """Run ``worker.py`` in a fresh process (optionally pinned), ``hidden`` modules hidden; its result."""
    argv = [sys.executable, os.path.join(HERE, "worker.py"), cmd, json.dumps(cfg), "--hide", ",".join(hidden) or "-"]
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
    """Both span shapes in every install that runs different exporter code, each against OTLP."""
    me, other = cpu_pair()
    n = 1024 if q else 6144
    workloads = [
        {"name": "sparse", "shape": "sparse", "n": n},
        {"name": "agent", "shape": "agent", "n": n},
        {"name": "agent-large", "shape": "agent", "n": 256 if q else 1536, "payload": [10_000, 50_000]},
    ]
    out: Dict[str, Any] = {"installs": []}
    with sink(cpu=other) as url:
        for i, (names, hidden) in enumerate(installs.groups(installs.EXPORTER_MODULES)):
            first = i == 0  # the default install: also large content and OTLP with gzip
            res = worker(
                "cpu",
                {
                    "sink": url,
                    "variants": ["otlp", "opik", "otlp-gzip"] if first else ["otlp", "opik"],
                    "rounds": 2 if q else 15,
                    "workloads": workloads if first else workloads[:2],
                },
                hidden=hidden,
                cpu=me,
            )
            res["install"] = {"names": names, "label": installs.group_label(names), "hidden": list(hidden)}
            out["installs"].append(res)
    return out


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
            {
                "sink": url,
                "variants": ["otlp", "opik"],
                "rounds": 1 if q else 7,
                "workloads": workloads,
                "interleave": True,
            },
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


#: --baseline-src, for the sidecar section's side-by-side comparison
BASELINE_SRC: Optional[str] = None


OPIK_VENV = os.path.join(os.path.dirname(HERE), ".venvs", "bench-opik")


def _opik_python() -> Optional[str]:
    exe = os.path.join(OPIK_VENV, "bin", "python")
    return exe if os.path.exists(exe) else None


def _sdk_app(variant: str, shape: str, traces: int, url: str, cpu: int) -> Dict[str, Any]:
    """One app process of ``opik_sdk.py``: the Opik SDK's variants in their own venv."""
    import tempfile

    import opik_sdk

    opik_variant = variant in opik_sdk.OPIK_VARIANTS
    # the OTel apps run as the default install has it (installs.py); the Opik SDK in its own venv
    launch = [_opik_python() or "-"] if opik_variant else installs.launcher(installs.hidden_for("default"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_"))}
    env["OPIK_CONFIG_PATH"] = os.devnull
    with tempfile.TemporaryDirectory(prefix="opik-home-") as home:
        if opik_variant:
            env.update(
                HOME=home,  # no ~/.opik.config
                OPIK_URL_OVERRIDE=url + "/api",
                OPIK_PROJECT_NAME="bench",
                OPIK_SENTRY_ENABLE="false",
                OPIK_ANALYTICS_ENABLE="false",
                OPIK_SUPPRESS_BATCHING_UPDATE_WARNING="true",
            )
        argv = launch + [os.path.join(HERE, "opik_sdk.py"), variant, "--shape", shape, "--traces", str(traces)]
        argv += ["--sink", url, "--cpu", str(cpu)]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env, cwd=home)
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"opik_sdk.py {variant} failed (exit {r.returncode}):\n{r.stderr[-3000:]}")


def run_opik_sdk(q: bool) -> Dict[str, Any]:
    """App-process CPU: OTel + this exporter, OTel + OTLP, Opik's own SDK; alternating rounds."""
    import opik_sdk

    me, other = cpu_pair()
    variants = list(opik_sdk.OTEL_VARIANTS)
    out: Dict[str, Any] = {
        "reference": "otel+otlp",
        "shapes": {},
        "otel_install": installs.describe("default")["label"],
    }
    if _opik_python():
        variants += list(opik_sdk.OPIK_VARIANTS)
        r = subprocess.run(
            [_opik_python(), "-c", "import opik; print(opik.__version__)"], capture_output=True, text=True
        )  # type: ignore[list-item]
        out["opik_version"] = r.stdout.strip()
    else:
        out["opik_skipped"] = (
            f"no venv at {OPIK_VENV}: python -m venv {OPIK_VENV} && "
            f"{OPIK_VENV}/bin/pip install -r benchmarks/requirements-opik.txt"
        )
    rounds, traces = (1, 20) if q else (5, 150)
    out.update(rounds=rounds, traces_per_run=traces, variants=variants)
    with sink(cpu=other) as url:
        for shape in ("sparse", "agent"):
            runs: Dict[str, List[Dict[str, Any]]] = {v: [] for v in variants}
            for k in range(rounds):
                for v in variants[k % len(variants) :] + variants[: k % len(variants)]:
                    runs[v].append(_sdk_app(v, shape, traces, url, me))
            out["shapes"][shape] = _sdk_summary(runs, "otel+otlp")
    return out


def _sdk_summary(runs: Dict[str, List[Dict[str, Any]]], ref: str) -> Dict[str, Any]:
    def median(xs: List[float]) -> float:
        s = sorted(xs)
        n = len(s)
        return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2

    res: Dict[str, Any] = {}
    for v, rs in runs.items():
        res[v] = {
            "cpu_ms_per_1000_spans_median": median([x["cpu_ms_per_1000_spans"] for x in rs]),
            "cpu_ms_per_1000_spans_all": [round(x["cpu_ms_per_1000_spans"], 1) for x in rs],
            "ratio_vs_otel_otlp_median": median(
                [a["cpu_ms_per_1000_spans"] / b["cpu_ms_per_1000_spans"] for a, b in zip(rs, runs[ref])]
            ),
            "wall_s_median": median([x["wall_s"] for x in rs]),
            "requests": rs[-1]["requests"],
            "bytes_sent_per_span": rs[-1]["bytes_sent"] / rs[-1]["spans"],
            "delivered_spans": rs[-1].get("delivered_spans"),
            "dropped": rs[-1].get("dropped"),
            "flush_result": rs[-1].get("flush_result"),
        }
    return res


def run_sidecar(q: bool) -> Dict[str, Any]:
    import sidecar_bench

    me, other = cpu_pair()
    return sidecar_bench.run_throughput(q, me, other, BASELINE_SRC)


RUNNERS = {
    "exporter": run_exporter,
    "gzip": run_gzip,
    "scaling": run_scaling,
    "sidecar": run_sidecar,
    "memory": run_memory,
    "opik-sdk": run_opik_sdk,
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
    ap.add_argument(
        "--baseline-src",
        help="the sidecar section also runs this tree's sidecar beside ours (git worktree add /tmp/base <commit>; its src/)",
    )
    ap.add_argument(
        "--src",
        help="measure the package in this tree's src/ (e.g. a git worktree of one commit) instead of this checkout's",
    )
    args = ap.parse_args(argv)
    installs.use_tree(args.src)
    global BASELINE_SRC
    BASELINE_SRC = args.baseline_src
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if s not in RUNNERS]
    if unknown:
        ap.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    results: Dict[str, Any] = {
        "command": "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "commit": installs.git_commit(),
        "load_average_start": list(os.getloadavg()),
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
    results["load_average_end"] = list(os.getloadavg())
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
