"""The measured process: exports SDK spans and reports CPU or memory as JSON.

``run.py`` starts one worker per measurement so each is a clean process (its
own peak RSS, no threads left over from another section). Commands:

* ``cpu CONFIG_JSON``: for each workload, build the spans once, then for
  ``rounds`` rounds export them through every exporter variant in turn
  (rotating the order each round), each a fresh exporter warmed up on other
  spans, and record ``time.process_time()`` (all threads, so the Opik writer
  thread's encoding, gzip and HTTP are counted) from the first ``export`` to the
  end of ``force_flush``, when everything has been delivered to the sink.
* ``overload CONFIG_JSON``: offer spans in batches of 512 to an exporter whose
  Opik never answers and report the peak RSS (``ru_maxrss``).

``--hide orjson,isal`` hides those modules before the exporter is imported
(``installs.py``), to measure the default install or the stdlib fallback.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
import time
import urllib.request
from typing import Any, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _sink_stats(url: str) -> Dict[str, Any]:
    with urllib.request.urlopen(url + "/stats", timeout=5) as r:
        return json.loads(r.read())


def _sent_bytes(before: Dict[str, Any], after: Dict[str, Any]) -> Tuple[int, int]:
    req = sum(after["requests"].values()) - sum(before["requests"].values())
    size = sum(after["bytes"].values()) - sum(before["bytes"].values())
    return req, size


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def make_exporter(variant: str, sink: str) -> Any:
    """``opik[:key=value,...]``, ``otlp`` or ``otlp-gzip``."""
    name, _, opts = variant.partition(":")
    if name == "opik":
        from opentelemetry.exporter.opik import OpikSpanExporter
        from opentelemetry.exporter.opik._config import resolve_settings

        overrides: Dict[str, Any] = {"url": sink + "/api"}
        for kv in filter(None, opts.split(",")):
            k, _, v = kv.partition("=")
            overrides[k] = v
        # no environment, no ~/.opik.config: the defaults are what is measured
        settings = resolve_settings(overrides, env={"OPIK_CONFIG_PATH": os.devnull})
        return OpikSpanExporter(settings=settings)
    if name in ("otlp", "otlp-gzip"):
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        comp = Compression.Gzip if name == "otlp-gzip" else Compression.NoCompression
        return OTLPSpanExporter(endpoint=sink + "/v1/traces", compression=comp)
    raise SystemExit(f"unknown exporter variant {variant!r}")


def _delivered_ok(variant: str, exporter: Any, n_spans: int, before: Dict[str, Any]) -> Optional[str]:
    """None when every span was delivered, else why not (the run is then invalid)."""
    if not variant.startswith("opik"):
        return None
    stats = exporter.stats()
    exported = stats["spans_exported"] - before["spans_exported"]
    dropped = sum(stats["dropped"].values()) - sum(before["dropped"].values())
    if exported != n_spans or dropped:
        return f"{variant}: {exported}/{n_spans} spans delivered, {dropped} dropped ({stats['dropped']})"
    return None


def _one_window(variant: str, sink: str, batches: Sequence[Sequence[Any]], warm: Sequence[Any]) -> Dict[str, Any]:
    exporter = make_exporter(variant, sink)
    try:
        exporter.export(warm)  # connection, pools, first-call imports: not per-span costs
        exporter.force_flush()
        before = exporter.stats() if variant.startswith("opik") else {}
        s0 = _sink_stats(sink)
        n = sum(len(b) for b in batches)
        gc.collect()
        w0 = time.perf_counter()
        c0 = time.process_time()
        failures = 0
        for b in batches:
            if exporter.export(b).name != "SUCCESS":
                failures += 1
        exporter.force_flush()
        c1 = time.process_time()
        w1 = time.perf_counter()
        s1 = _sink_stats(sink)
        err = _delivered_ok(variant, exporter, n, before)
        if failures:
            err = (err or "") + f" {failures} export() calls failed"
        requests, sent = _sent_bytes(s0, s1)
        return {
            "cpu_s": c1 - c0,
            "wall_s": w1 - w0,
            "cpu_ms_per_1000": (c1 - c0) / n * 1e6,
            "requests": requests,
            "bytes_sent": sent,
            "error": err,
        }
    finally:
        exporter.shutdown()


def _median(xs: List[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def cmd_cpu(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """CPU per variant and workload; ``interleave`` runs every workload in each round.

    Without it a workload's rounds run back to back, then the next workload's. With it
    (the scaling section) each round visits every workload in a rotating order, so a
    drift of the shared machine's speed over minutes falls on all of them alike and
    their medians compare fairly.
    """
    from spans import SpanFactory, batches, describe

    sink = cfg["sink"]
    variants: List[str] = cfg["variants"]
    out: Dict[str, Any] = {"workloads": []}
    factory = SpanFactory(seed=cfg.get("seed", 42))

    def prepare(wl: Dict[str, Any]) -> Tuple[Sequence[Sequence[Any]], Sequence[Any], Dict[str, Any]]:
        spans = factory.build(wl["shape"], wl["n"], wl.get("spans_per_trace", 3), wl.get("payload"))
        warm = factory.build(wl["shape"], min(64, wl["n"]), wl.get("spans_per_trace", 3), wl.get("payload"))
        n_traces, attr_bytes = describe(spans)
        info = {"name": wl["name"], "spans": len(spans), "traces": n_traces, "attr_bytes_per_span": round(attr_bytes)}
        return batches(spans, 512), warm, info

    def one_round(
        r: int, bs: Sequence[Sequence[Any]], warm: Sequence[Any], runs: Dict[str, List[Dict[str, Any]]]
    ) -> None:
        k = r % len(variants)
        for v in variants[k:] + variants[:k]:  # alternate which exporter goes first
            runs[v].append(_one_window(v, sink, bs, warm))

    workloads = cfg["workloads"]
    if cfg.get("interleave"):
        prepared = [prepare(wl) for wl in workloads]
        all_runs: List[Dict[str, List[Dict[str, Any]]]] = [{v: [] for v in variants} for _ in workloads]
        for r in range(cfg["rounds"]):
            k = r % len(workloads)
            for i in list(range(k, len(workloads))) + list(range(k)):
                bs, warm, _ = prepared[i]
                one_round(r, bs, warm, all_runs[i])
        for (bs, _, info), runs in zip(prepared, all_runs):
            out["workloads"].append(_summarize(info, runs, sum(len(b) for b in bs)))
        return out
    for wl in workloads:
        bs, warm, info = prepare(wl)
        runs: Dict[str, List[Dict[str, Any]]] = {v: [] for v in variants}
        for r in range(cfg["rounds"]):
            one_round(r, bs, warm, runs)
        out["workloads"].append(_summarize(info, runs, info["spans"]))
        del bs, warm
        gc.collect()
    return out


def _summarize(info: Dict[str, Any], runs: Dict[str, List[Dict[str, Any]]], n_spans: int) -> Dict[str, Any]:
    res: Dict[str, Any] = dict(info, variants={})
    for v, rs in runs.items():
        errors = [x["error"] for x in rs if x["error"]]
        res["variants"][v] = {
            "cpu_ms_per_1000_median": _median([x["cpu_ms_per_1000"] for x in rs]),
            "cpu_ms_per_1000_all": [round(x["cpu_ms_per_1000"], 2) for x in rs],
            "wall_s_median": _median([x["wall_s"] for x in rs]),
            "requests": rs[-1]["requests"],
            "bytes_sent_per_span": rs[-1]["bytes_sent"] / n_spans,
            "errors": errors,
        }
    # ratios are taken within a round (same conditions), then the median over rounds
    for v, rs in runs.items():
        res["variants"][v]["ratio_median"] = {
            o: _median([a["cpu_ms_per_1000"] / b["cpu_ms_per_1000"] for a, b in zip(rs, ors)])
            for o, ors in runs.items()
            if o != v
        }
    return res


class _NullExporter:
    """The baseline: the same span generation with an exporter that keeps nothing."""

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 0) -> bool:
        return True

    def shutdown(self, timeout_millis: int = 0) -> None:
        pass

    def stats(self) -> Dict[str, Any]:
        return {}


def cmd_overload(cfg: Dict[str, Any]) -> Dict[str, Any]:
    from spans import SpanFactory

    variant = cfg["exporter"]
    exporter = _NullExporter() if variant == "none" else make_exporter(variant, cfg["sink"])
    factory = SpanFactory(seed=cfg.get("seed", 7))
    factory.build("agent", 512)  # warm the SDK and the generator
    gc.collect()
    rss_start = _rss_kb()
    offered = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    batch: List[Any] = []
    samples: List[int] = []
    while offered < cfg["n"]:
        batch.extend(factory.agent_trace())
        if len(batch) >= 512:
            exporter.export(batch)
            offered += len(batch)
            batch = []
            if (offered // 512) % 40 == 0:
                samples.append(_rss_kb())
    c1 = time.process_time()
    t1 = time.perf_counter()
    res: Dict[str, Any] = {
        "exporter": variant,
        "offered": offered,
        "rss_start_mb": rss_start / 1024,
        "rss_end_mb": _rss_kb() / 1024,
        "peak_rss_mb": _peak_rss_kb() / 1024,
        "rss_samples_mb": [round(s / 1024, 1) for s in samples[:: max(1, len(samples) // 20)]],
        "wall_s": t1 - t0,
        "cpu_s": c1 - c0,
    }
    if variant != "none":
        st = exporter.stats()
        res["stats"] = {
            "spans_received": st["spans_received"],
            "spans_exported": st["spans_exported"],
            "dropped": st["dropped"],
        }
        writer = getattr(exporter, "_writer", None)
        if writer is not None:
            res["queue_items"] = st.get("queue_items", 0)  # queued and in flight (the bounds count both)
            res["queue_bytes"] = st.get("queue_bytes", 0)
            res["bounds"] = {
                "max_queue_items": writer.settings.max_queue_items,
                "max_queue_bytes": writer.settings.max_queue_bytes,
            }
    return res


def main() -> None:
    args = sys.argv[1:]
    if "--hide" in args:
        import installs

        i = args.index("--hide")
        installs.hide([m for m in args[i + 1].split(",") if m and m != "-"])
        del args[i : i + 2]
    cmd, cfg = args[0], json.loads(args[1])
    if cmd == "cpu":
        res = cmd_cpu(cfg)
    elif cmd == "overload":
        res = cmd_overload(cfg)
    else:
        raise SystemExit(f"unknown command {cmd!r}")
    from opentelemetry.exporter.opik import _compress, _json

    res["json_encoder"] = "orjson" if _json.using_orjson() else "stdlib"
    res["gzip"] = "isal" if _compress.using_isal() else "zlib"
    import opentelemetry.exporter.opik as package

    res["package"] = os.path.dirname(os.path.abspath(package.__file__))
    res["pid"] = os.getpid()
    sys.stdout.write("RESULT " + json.dumps(res) + "\n")
    sys.stdout.flush()
    os._exit(0)  # a stalled sender thread must not hold the process open


if __name__ == "__main__":
    main()
