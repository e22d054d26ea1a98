"""Sidecar figures: ``opik-otel serve`` pinned to one core, fed by ``loadgen.py``.

Three processes: the sidecar (``taskset -c <core>``), the sink it forwards to
and the load generator (both on the other core). Throughput is measured closed
loop (as fast as the sidecar answers) until everything accepted has been
delivered to the sink; latency at a fixed offered rate (the 20,000 spans/s
target). Memory: the sink never answers and 200,000 spans are offered.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from loadgen import proc_rss_mb  # noqa: E402
from sink import sink  # noqa: E402

_START = re.compile(r"OTLP/HTTP on http://(?P<host>[^ ]+):(?P<port>\d+)/v1/traces")
TARGET_RATE = 20_000


def _env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_"))}
    env["OPIK_CONFIG_PATH"] = os.devnull
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _serve_cmd() -> List[str]:
    script = os.path.join(os.path.dirname(sys.executable), "opik-otel")
    if os.path.exists(script):
        return [script, "serve"]
    return [sys.executable, "-m", "opentelemetry.exporter.opik._cli", "serve"]


@contextmanager
def sidecar(opik_url: str, cpu: int, extra: Optional[List[str]] = None) -> Iterator[Dict[str, Any]]:
    """``opik-otel serve`` on a free port, pinned to ``cpu``; yields url and pid."""
    cmd = _serve_cmd() + ["--port", "0", "--no-grpc", "--url", opik_url, "--log-level", "error"] + (extra or [])
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu)] + cmd
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    err: List[str] = []
    threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True).start()  # type: ignore[arg-type]
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = _START.search(line)
        if not m:
            proc.kill()
            raise RuntimeError(f"opik-otel serve did not start: {line!r} {''.join(err)[-2000:]}")
        base = f"http://127.0.0.1:{m.group('port')}"
        time.sleep(0.2)
        yield {"url": base + "/v1/traces", "metrics": base + "/metrics", "pid": proc.pid, "stderr": err}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def loadgen(sc: Dict[str, Any], cpu: int, **kw: Any) -> Dict[str, Any]:
    argv = [
        sys.executable,
        os.path.join(HERE, "loadgen.py"),
        "--url",
        sc["url"],
        "--pid",
        str(sc["pid"]),
        "--cpu",
        str(cpu),
    ]
    for k, v in kw.items():
        flag = "--" + k.replace("_", "-")
        if v is True:
            argv.append(flag)
        elif v not in (None, False):
            argv += [flag, str(v)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=_env())
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"loadgen failed (exit {r.returncode}): {r.stderr[-3000:]}")


def _row(r: Dict[str, Any], sustained: bool) -> Dict[str, Any]:
    errors = sum(v for k, v in r["status"].items() if k != "200")
    return {
        "offered_spans_per_s": r["offered_spans_per_s"],
        "spans_per_s": r["sustained_spans_per_s"] if sustained else r["accepted_spans_per_s"],
        "accepted_spans_per_s": r["accepted_spans_per_s"],
        "cpu_ms_per_1000": r["cpu_ms_per_1000"],
        "p50_ms": r["p50_ms"],
        "p99_ms": r["p99_ms"],
        "max_ms": r["max_ms"],
        "errors": errors,
        "status": r["status"],
        "drain_s": r["drain_s"],
        "drained": r["drained"],
        "request_bytes": r["request_bytes"],
        "connections": r["connections"],
        "spans": r["spans_accepted"],
    }


def run_throughput(quick: bool, me: int, other: int) -> Dict[str, Any]:
    n_max = 8 if quick else 240  # requests of 512 spans
    n_rate = 8 if quick else 100
    distinct = 2 if quick else 8  # request bodies built (and cycled) per load generator run
    out: Dict[str, Any] = {"runs": {}, "target_rate": TARGET_RATE}
    with sink(cpu=other) as opik:
        for name, gz in (("protobuf", False), ("protobuf+gzip", True)):
            with sidecar(opik + "/api", me) as sc:
                closed = loadgen(
                    sc, other, requests=n_max, connections=4, gzip=gz, metrics=sc["metrics"], distinct=distinct
                )
                rated = loadgen(
                    sc,
                    other,
                    requests=n_rate,
                    connections=8,
                    gzip=gz,
                    rate=TARGET_RATE,
                    metrics=sc["metrics"],
                    distinct=distinct,
                )
                # latency where the sidecar keeps up: half its measured maximum
                half = max(1000.0, round(closed["sustained_spans_per_s"] / 2, -2))
                halfr = loadgen(
                    sc,
                    other,
                    requests=n_rate,
                    connections=8,
                    gzip=gz,
                    rate=half,
                    metrics=sc["metrics"],
                    distinct=distinct,
                )
                out["runs"][name] = {
                    "max": _row(closed, True),
                    "at_rate": _row(rated, False),
                    "at_half_max": _row(halfr, False),
                    "sidecar_peak_rss_mb": proc_rss_mb(sc["pid"], "VmHWM"),
                }
    return out


def run_overload(n_spans: int, me: int, other: int) -> Dict[str, Any]:
    """Opik never answers; ``n_spans`` offered once each: the sidecar's peak RSS."""
    with sink("stall", cpu=other) as opik:
        # nothing can be delivered: stop at once instead of the default 20 s grace
        with sidecar(opik + "/api", me, ["--shutdown-timeout", "1"]) as sc:
            idle = proc_rss_mb(sc["pid"])
            r = loadgen(
                sc, other, requests=max(1, n_spans // 512), connections=4, distinct=2 if n_spans < 50_000 else 8
            )
            peak = proc_rss_mb(sc["pid"], "VmHWM")
    return {
        "offered": r["requests"] * r["spans_per_request"],
        "rss_start_mb": idle,
        "peak_rss_mb": peak,
        "spans_accepted": r["spans_accepted"],
        "status": r["status"],
        "p99_ms": r["p99_ms"],
    }
