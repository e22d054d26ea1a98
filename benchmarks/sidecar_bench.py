"""Sidecar figures: ``opik-otel serve`` pinned to one core, fed by ``loadgen.py``.

Three processes: the sidecar (``taskset -c <core>``), the sink it forwards to
and the load generator (both on the other core). Throughput is measured closed
loop (as fast as the sidecar answers) until everything accepted has been
delivered to the sink; latency at a fixed offered rate (the 20,000 spans/s
target). Memory: the sink never answers and 200,000 spans are offered.

Spans per CPU-second (``efficiency``): closed loop, both span shapes, in every
install that runs different sidecar code (``installs.py``: the default install
has no httptools, so uvicorn parses HTTP with h11). With ``--baseline-src``
another source tree's sidecar (``git worktree add /tmp/base <commit>``) runs
beside this one, both pinned to the same core, and rounds alternate between
them: the ratio of their spans per CPU-second, per shape, in each tree's
default install and with every extra in both.

    python benchmarks/sidecar_bench.py --baseline-src /tmp/base/src [--rounds 5] [--quick] [--out F]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import installs  # noqa: E402
from loadgen import proc_rss_mb  # noqa: E402
from sink import sink  # noqa: E402

_START = re.compile(r"OTLP/HTTP on http://(?P<host>[^ ]+):(?P<port>\d+)/v1/traces")
TARGET_RATE = 20_000


def _env(src: Optional[str] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_"))}
    env["OPIK_CONFIG_PATH"] = os.devnull
    env["PYTHONUNBUFFERED"] = "1"
    if src:  # another tree's package is found before this one's editable install
        env["PYTHONPATH"] = os.path.abspath(src) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _serve_cmd(hidden: Optional[Sequence[str]] = None) -> List[str]:
    """The sidecar's command: this venv's ``opik-otel``, or the module with ``hidden`` modules hidden."""
    if hidden is None:
        script = os.path.join(os.path.dirname(sys.executable), "opik-otel")
        if os.path.exists(script):
            return [script, "serve"]
        return [sys.executable, "-m", "opentelemetry.exporter.opik._cli", "serve"]
    return installs.launcher(hidden) + ["-m", "opentelemetry.exporter.opik._cli", "serve"]


@contextmanager
def sidecar(
    opik_url: str,
    cpu: int,
    extra: Optional[List[str]] = None,
    hidden: Optional[Sequence[str]] = None,
    src: Optional[str] = None,
) -> Iterator[Dict[str, Any]]:
    """``opik-otel serve`` on a free port, pinned to ``cpu``; yields url and pid.

    ``hidden``: modules hidden (an install, ``installs.py``); ``src``: another tree's src/.
    """
    cmd = _serve_cmd(hidden) + ["--port", "0", "--no-grpc", "--url", opik_url, "--log-level", "error"] + (extra or [])
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu)] + cmd
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(src))
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


def run_throughput(quick: bool, me: int, other: int, baseline_src: Optional[str] = None) -> Dict[str, Any]:
    n_max = 8 if quick else 240  # requests of 512 spans
    n_rate = 8 if quick else 100
    distinct = 2 if quick else 8  # request bodies built (and cycled) per load generator run
    out: Dict[str, Any] = {"runs": {}, "target_rate": TARGET_RATE}
    default_hidden = installs.hidden_for("default")
    out["install"] = installs.describe("default")
    with sink(cpu=other) as opik:
        for name, gz in (("protobuf", False), ("protobuf+gzip", True)):
            with sidecar(opik + "/api", me, hidden=default_hidden) as sc:
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
    out["efficiency"] = run_efficiency(quick, me, other)
    if baseline_src:
        out["baseline"] = run_baseline(baseline_src, quick, me, other)
    return out


def _closed(sc: Dict[str, Any], cpu: int, shape: str, n_requests: int, distinct: int) -> Dict[str, Any]:
    """Closed loop on 4 connections until drained: spans per CPU-second of the sidecar."""
    r = loadgen(sc, cpu, requests=n_requests, connections=4, metrics=sc["metrics"], distinct=distinct, shape=shape)
    row = _row(r, True)
    row["spans_per_cpu_s"] = 1e6 / row["cpu_ms_per_1000"] if row["cpu_ms_per_1000"] else None
    return row


def run_efficiency(quick: bool, me: int, other: int) -> Dict[str, Any]:
    """Spans/s and spans per CPU-second, both shapes, each install that runs different sidecar code."""
    n, distinct = (8, 2) if quick else (120, 8)
    out: Dict[str, Any] = {"installs": []}
    with sink(cpu=other) as opik:
        for names, hidden in installs.groups(installs.SIDECAR_MODULES):
            entry: Dict[str, Any] = {
                "names": names,
                "label": installs.group_label(names),
                "hidden": list(hidden),
                "shapes": {},
            }
            with sidecar(opik + "/api", me, hidden=hidden) as sc:
                for shape in ("sparse", "agent"):
                    entry["shapes"][shape] = _closed(sc, other, shape, n, distinct)
            out["installs"].append(entry)
    return out


def _median(xs: List[float]) -> float:
    s = sorted(xs)
    k = len(s)
    return s[k // 2] if k % 2 else (s[k // 2 - 1] + s[k // 2]) / 2


def run_baseline(baseline_src: str, quick: bool, me: int, other: int, rounds: int = 0) -> Dict[str, Any]:
    """This tree's sidecar and ``baseline_src``'s side by side on one core, alternating rounds.

    Both run at once (the idle one costs nothing measurable), so every round sends
    the same requests to each in turn, which goes first alternating. Per shape and
    install: spans per CPU-second of each, and the median of the per-round ratios.
    """
    if not os.path.isdir(os.path.join(baseline_src, "opentelemetry", "exporter", "opik")):
        raise SystemExit(
            f"--baseline-src {baseline_src}: no opentelemetry/exporter/opik package there (give the tree's src/)"
        )
    base_root = os.path.dirname(os.path.abspath(baseline_src))
    rounds = rounds or (2 if quick else 5)
    n, distinct = (8, 2) if quick else (40, 8)
    # each tree's default install, and every extra in both (the code's own gain)
    setups: List[Tuple[str, Tuple[str, ...], Tuple[str, ...]]] = [
        ("default", installs.hidden_for("default"), installs.hidden_for("default", base_root)),
        ("every-extra", (), ()),
    ]
    out: Dict[str, Any] = {
        "baseline_src": baseline_src,
        "baseline_commit": installs.git_commit(base_root).split(" ")[0],
        "current_commit": installs.git_commit(),
        "rounds": rounds,
        "requests_per_run": n,
        "installs": {},
    }
    with sink(cpu=other) as opik:
        for install, cur_hidden, base_hidden in setups:
            res: Dict[str, Any] = {
                "current_hidden": list(cur_hidden),
                "baseline_hidden": list(base_hidden),
                "shapes": {},
            }
            with (
                sidecar(opik + "/api", me, hidden=cur_hidden) as cur,
                sidecar(opik + "/api", me, hidden=base_hidden, src=baseline_src) as base,
            ):
                for shape in ("sparse", "agent"):
                    runs: Dict[str, List[Dict[str, Any]]] = {"current": [], "baseline": []}
                    for r in range(rounds):
                        order = [("current", cur), ("baseline", base)]
                        for name, sc in order if r % 2 == 0 else order[::-1]:
                            runs[name].append(_closed(sc, other, shape, n, distinct))
                    res["shapes"][shape] = _compare(runs)
            out["installs"][install] = res
    return out


def _compare(runs: Dict[str, List[Dict[str, Any]]]) -> Dict[str, Any]:
    eff = {k: [x["spans_per_cpu_s"] for x in v] for k, v in runs.items()}
    return {
        "current_spans_per_cpu_s": _median(eff["current"]),
        "baseline_spans_per_cpu_s": _median(eff["baseline"]),
        "current_spans_per_s": _median([x["spans_per_s"] for x in runs["current"]]),
        "baseline_spans_per_s": _median([x["spans_per_s"] for x in runs["baseline"]]),
        "ratio_median": _median([c / b for c, b in zip(eff["current"], eff["baseline"])]),
        "ratio_all": [round(c / b, 3) for c, b in zip(eff["current"], eff["baseline"])],
        "errors": sum(x["errors"] for v in runs.values() for x in v),
        "drained": all(x["drained"] for v in runs.values() for x in v),
    }


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


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="the sidecar against another source tree, side by side on one core")
    ap.add_argument("--baseline-src", required=True, help="the other tree's src/ (git worktree add /tmp/base <commit>)")
    ap.add_argument("--rounds", type=int, default=0, help="alternating rounds (default 5, 2 with --quick)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", help="also write the figures as JSON")
    ap.add_argument("--src", help="measure this tree's src/ as the current one instead of this checkout's")
    args = ap.parse_args(argv)
    installs.use_tree(args.src)
    from run import cpu_pair

    me, other = cpu_pair()
    res = run_baseline(args.baseline_src, args.quick, me, other, args.rounds)
    print(
        f"sidecar on one core, {res['current_commit']} vs {res['baseline_commit']}, spans per CPU-second "
        f"(median of {res['rounds']} alternating rounds of {res['requests_per_run']} x 512 spans):"
    )
    for install, r in res["installs"].items():
        for shape, v in r["shapes"].items():
            print(
                f"  {install:12s} {shape:7s} {v['baseline_spans_per_cpu_s']:>8,.0f} -> {v['current_spans_per_cpu_s']:>8,.0f}"
                f"   ratio {v['ratio_median']:.2f}x (rounds {v['ratio_all']})"
            )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
