"""OTLP/HTTP load generator for the sidecar benchmark, run in its own process.

It pre-encodes real SDK spans (``benchmarks/spans.py``) with the official OTLP
protobuf encoder into requests of 512 spans (gzipped once up front with
``--gzip``, as a Collector sends them), then POSTs them over keep-alive
connections, one thread per connection:

* ``--rate 0`` (closed loop): every connection sends as fast as answers come:
  the sidecar's maximum throughput;
* ``--rate N`` (open loop): requests are scheduled at N spans/s whatever the
  answers; latency is measured from the *scheduled* time, so a sidecar that
  falls behind shows it (no coordinated omission).

It reads the sidecar's CPU time from ``/proc/<pid>/stat`` at the start and the
end of the measured window and prints one ``RESULT {json}`` line.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import sys
import threading
import time
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def proc_rss_mb(pid: int, key: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def build_requests(
    n_requests: int, spans_per_request: int, use_gzip: bool, seed: int, shape: str = "agent"
) -> List[bytes]:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from spans import SpanFactory

    factory = SpanFactory(seed=seed, service="bench-fleet")
    out: List[bytes] = []
    for _ in range(n_requests):
        spans = factory.build(shape, spans_per_request)[:spans_per_request]
        body = encode_spans(spans).SerializeToString()
        out.append(gzip.compress(body, 6) if use_gzip else body)
    return out


def _percentile(xs: List[float], p: float) -> Optional[float]:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


class _Conn:
    def __init__(self, url: str) -> None:
        u = urlsplit(url)
        self.host, self.port, self.path = u.hostname or "127.0.0.1", u.port or 80, u.path
        self.conn: Optional[http.client.HTTPConnection] = None

    def post(self, body: bytes, headers: Dict[str, str]) -> int:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.conn.request("POST", self.path, body=body, headers=headers)
                r = self.conn.getresponse()
                r.read()
                return r.status
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    return 0
        return 0


def _metrics(metrics_url: str) -> Dict[str, float]:
    """The sidecar's Prometheus ``/metrics``, unlabelled series only."""
    u = urlsplit(metrics_url)
    c = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=10)
    try:
        c.request("GET", u.path)
        text = c.getresponse().read().decode()
    finally:
        c.close()
    out: Dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("opik_otel_") and "{" not in name:
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def queue_items(metrics_url: str) -> float:
    m = _metrics(metrics_url)
    if "opik_otel_queue_items" not in m:
        raise KeyError("opik_otel_queue_items not in /metrics")
    return m["opik_otel_queue_items"]


def _drained(m: Dict[str, float]) -> bool:
    """Nothing queued, and every accepted span mapped and delivered (or rejected).

    The queue alone is not enough: a request is answered once decoded, and its
    spans enter the queue only after the mapping thread has converted them.
    """
    if m.get("opik_otel_queue_items", 0) != 0:
        return False
    accepted = m.get("opik_otel_receiver_spans_accepted_total")
    if accepted is None:
        return True
    done = m.get("opik_otel_spans_exported_total", 0) + m.get("opik_otel_spans_rejected_total", 0)
    return done >= accepted


def _wait_drained(metrics_url: str, timeout: float) -> bool:
    """Poll the sidecar until everything accepted was delivered (True), or give up."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if _drained(_metrics(metrics_url)):
            return True
        time.sleep(0.01)
    return False


def run(args: argparse.Namespace) -> Dict[str, Any]:
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    bodies = build_requests(args.distinct, args.spans, args.gzip, args.seed, args.shape)
    headers = {"Content-Type": "application/x-protobuf"}
    if args.gzip:
        headers["Content-Encoding"] = "gzip"
    lock = threading.Lock()
    lat_ms: List[float] = []
    status: Dict[int, int] = {}
    counter = [0]
    # warm up: connections, the sidecar's first-call imports and caches
    warm = _Conn(args.url)
    for b in bodies[: min(4, len(bodies))]:
        warm.post(b, headers)
    if warm.conn is not None:
        warm.conn.close()
    if args.metrics:  # the warm-up's spans are mapped and sent before the window opens
        _wait_drained(args.metrics, args.drain_timeout)
    interval = args.spans / args.rate if args.rate > 0 else 0.0
    total = args.requests

    def loop() -> None:
        c = _Conn(args.url)
        while True:
            with lock:
                i = counter[0]
                if i >= total:
                    return
                counter[0] += 1
            sched = t_start + i * interval
            if interval:
                delay = sched - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            t0 = time.perf_counter()
            code = c.post(bodies[i % len(bodies)], headers)
            t1 = time.perf_counter()
            with lock:
                lat_ms.append((t1 - (sched if interval else t0)) * 1000)
                status[code] = status.get(code, 0) + 1

    cpu0 = proc_cpu_s(args.pid) if args.pid else 0.0
    t_start = time.perf_counter()
    threads = [threading.Thread(target=loop, daemon=True) for _ in range(args.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_end = time.perf_counter()
    cpu1 = proc_cpu_s(args.pid) if args.pid else 0.0
    drained = _wait_drained(args.metrics, args.drain_timeout) if args.metrics else None
    t_drained = time.perf_counter()
    cpu2 = proc_cpu_s(args.pid) if args.pid else 0.0
    ok = status.get(200, 0)
    elapsed = t_end - t_start
    return {
        "requests": total,
        "shape": args.shape,
        "spans_per_request": args.spans,
        "gzip": args.gzip,
        "connections": args.connections,
        "offered_spans_per_s": args.rate if args.rate > 0 else None,
        "elapsed_s": elapsed,
        "status": {str(k): v for k, v in sorted(status.items())},
        "spans_accepted": ok * args.spans,
        "accepted_spans_per_s": ok * args.spans / elapsed if elapsed else 0.0,
        "sidecar_cpu_s": cpu1 - cpu0,
        # until everything accepted was delivered to the sink: the sustained figures
        "drained": drained,
        "drain_s": t_drained - t_end,
        "sustained_spans_per_s": ok * args.spans / (t_drained - t_start) if t_drained > t_start else 0.0,
        "sidecar_cpu_s_with_drain": cpu2 - cpu0,
        "cpu_ms_per_1000": (cpu2 - cpu0) / max(ok * args.spans, 1) * 1e6,
        "p50_ms": _percentile(lat_ms, 50),
        "p99_ms": _percentile(lat_ms, 99),
        "max_ms": max(lat_ms) if lat_ms else None,
        "request_bytes": sum(len(b) for b in bodies) / len(bodies),
        "sidecar_rss_mb": proc_rss_mb(args.pid) if args.pid else None,
        "sidecar_peak_rss_mb": proc_rss_mb(args.pid, "VmHWM") if args.pid else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="the sidecar's /v1/traces URL")
    ap.add_argument("--pid", type=int, default=0, help="the sidecar's pid, for its CPU time")
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--spans", type=int, default=512, help="spans per request")
    ap.add_argument("--distinct", type=int, default=8, help="distinct request bodies, sent in turn")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--rate", type=float, default=0.0, help="spans/s offered (0: as fast as answered)")
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--shape", choices=("agent", "sparse"), default="agent", help="span shape (benchmarks/spans.py)")
    ap.add_argument("--cpu", type=int, default=None, help="pin the load generator to this CPU")
    ap.add_argument("--metrics", default=None, help="the sidecar's /metrics URL: wait until its queue is empty")
    ap.add_argument("--drain-timeout", type=float, default=60.0)
    res = run(ap.parse_args())
    sys.stdout.write("RESULT " + json.dumps(res) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
