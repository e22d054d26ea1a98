"""Instructions per span, counted by callgrind: our exporter and sidecar paths against the official OTLP exporter.

CPU time on a shared machine varies by 15-30% from one round to the next; an
instruction count does not. This script runs seeded SDK spans through each
path in a process under ``valgrind --tool=callgrind`` and counts only the
measured work: the process calls ``os.getppid()`` before and after it, and
callgrind dumps (and zeroes) its counters at each call
(``--dump-before=getppid``), so imports, span building and warm-up are not in
the count. Callgrind counts every thread. The paths (``mode``):

* **opik-exporter** and **otlp-exporter**: the whole exporters, ``OpikSpanExporter``
  and the official ``OTLPSpanExporter`` (HTTP/protobuf, no compression, its
  default), each exporting the spans in batches of 512 to a local sink and
  flushing: with the sender thread, its queue and HTTP. The issue's comparison.
* **opik**: ``from_readable_span``, the pipeline, the request bodies and gzip,
  as the exporter runs them, without its threads and HTTP;
* **otlp**: the official exporter's ``encode_spans(...).SerializePartialToString()``;
* **sidecar**: what ``opik-otel serve`` does with the OTLP requests of those
  spans (512 per request): parse and validate, convert to records, the same
  pipeline, request bodies and gzip (no HTTP server or client).

Sections:

* ``exporters``: both span shapes (``sparse``: about 5 attributes per span;
  ``agent``: about 10), every path, in each install that runs different code
  (``installs.py``: the default install, every extra, the stdlib fallback with
  orjson and isal hidden). The OTLP paths import none of those modules, so
  they are counted once per shape.
* ``per_trace``: the whole exporter on LLM-span traces of 1 and of 100 spans.
* ``baseline`` (with ``--baseline-src``): the sidecar path and the whole
  exporter of another source tree (``git worktree add /tmp/base <commit>``),
  on both shapes, in each tree's default install and with every extra in
  both, against this tree's counts from the same run.

    python benchmarks/instructions.py [--spans 1536] [--baseline-src /tmp/base/src] [--out F]
    python benchmarks/instructions.py --quick   # every section on 24 spans in two processes (the test suite)

Each process builds the spans of one shape once and runs its tasks in turn
(``--quick``: one process per install). A full run is 9 callgrind processes,
about 5 minutes on 2 idle cores. It needs ``valgrind``.
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
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import installs  # noqa: E402

_TOTALS = re.compile(r"^totals:\s*(\d+)", re.M)
SHAPES = ("sparse", "agent")
OPIK_MODES = ("opik-exporter", "opik", "sidecar")
OTLP_MODES = ("otlp-exporter", "otlp")
PER_TRACE = (1, 100)

#: one measured path: (shape, spans per trace, mode)
Task = Tuple[str, int, str]


# -- the measured process ------------------------------------------------------------
def _paths(settings: Any) -> Dict[str, Callable[[Any], None]]:
    """The in-process paths (no threads, no HTTP), as the exporter and the sidecar run them."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from spans import batches

    from opentelemetry.exporter.opik._compress import gzip_compressor
    from opentelemetry.exporter.opik._items import KIND_ORDER, request_body
    from opentelemetry.exporter.opik._otlp import decode_protobuf
    from opentelemetry.exporter.opik._pipeline import Pipeline
    from opentelemetry.exporter.opik._record import from_readable_span

    gz = gzip_compressor(settings.compression_level)

    def deliver(pipeline: Any, records: List[Any]) -> None:
        items = pipeline.process(records).items
        for kind in KIND_ORDER:
            of_kind = [i for i in items if i.kind == kind]
            if of_kind:
                gz(request_body(kind, of_kind))

    def opik(spans: Sequence[Any]) -> None:
        pipeline = Pipeline(settings)
        for batch in batches(spans):
            deliver(pipeline, [from_readable_span(s) for s in batch])

    def otlp(spans: Sequence[Any]) -> None:
        for batch in batches(spans):
            encode_spans(batch).SerializePartialToString()

    def sidecar(bodies: Sequence[bytes]) -> None:
        pipeline = Pipeline(settings)
        for body in bodies:
            decoded = decode_protobuf(body, lazy=True)  # the answer is sent here
            deliver(pipeline, decoded.materialize())

    return {"opik": opik, "otlp": otlp, "sidecar": sidecar}


def _exporter(mode: str, sink_url: str) -> Any:
    if mode == "otlp-exporter":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=sink_url + "/v1/traces")
    from opentelemetry.exporter.opik import OpikSpanExporter
    from opentelemetry.exporter.opik._config import resolve_settings

    return OpikSpanExporter(settings=resolve_settings({"url": sink_url + "/api"}, env={"OPIK_CONFIG_PATH": os.devnull}))


def _whole(exporter: Any, spans: Sequence[Any]) -> None:
    from spans import batches

    for batch in batches(spans):
        exporter.export(batch)
    exporter.force_flush()


def _encoders() -> Dict[str, bool]:
    """What the package really uses in this process (orjson? isal?)."""
    from opentelemetry.exporter.opik import _compress, _json

    def flag(mod: Any, fn: str, attr: str) -> bool:
        probe = getattr(mod, fn, None)
        return bool(probe()) if callable(probe) else getattr(mod, attr, None) is not None

    return {"orjson": flag(_json, "using_orjson", "_orjson"), "isal": flag(_compress, "using_isal", "_isal")}


def _package_dir() -> str:
    import opentelemetry.exporter.opik as package

    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(package.__file__)))))


def _child(spec: Dict[str, Any]) -> None:
    """Build the spans, warm every task's path, then run each task between two markers."""
    installs.hide(spec["hide"])
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from spans import SpanFactory, batches

    from opentelemetry.exporter.opik._config import resolve_settings

    n = spec["n"]
    settings = resolve_settings({"url": "http://127.0.0.1:9/api"}, env={"OPIK_CONFIG_PATH": os.devnull})
    paths = _paths(settings) if any(m in ("opik", "otlp", "sidecar") for _, _, m in spec["tasks"]) else {}
    built: Dict[Tuple[str, int], Tuple[List[Any], List[Any]]] = {}
    runs: List[Callable[[], None]] = []
    exporters: List[Tuple[Any, str, int]] = []  # (exporter, mode, spans it was given)
    counts: List[int] = []
    for shape, per_trace, mode in spec["tasks"]:
        key = (shape, per_trace)
        if key not in built:
            built[key] = (
                SpanFactory().build(shape, n, spans_per_trace=per_trace),
                SpanFactory(seed=7).build(shape, spec["warm"], spans_per_trace=per_trace),
            )
        spans, warm = built[key]
        counts.append(len(spans))
        if mode.endswith("-exporter"):
            exporter = _exporter(mode, spec["sink"])
            exporters.append((exporter, mode, len(spans) + len(warm)))
            _whole(exporter, warm)
            runs.append(lambda e=exporter, s=spans: _whole(e, s))  # type: ignore[misc]
        elif mode == "sidecar":
            bodies = [encode_spans(b).SerializeToString() for b in batches(spans)]
            paths["sidecar"]([encode_spans(b).SerializeToString() for b in batches(warm)])
            runs.append(lambda b=bodies: paths["sidecar"](b))  # type: ignore[misc]
        else:
            paths[mode](warm)
            runs.append(lambda m=mode, s=spans: paths[m](s))  # type: ignore[misc]
    for run in runs:
        os.getppid()  # marker: callgrind dumps the counters so far and starts from zero
        run()
    os.getppid()
    for exporter, mode, given in exporters:
        if mode == "opik-exporter":
            stats = exporter.stats()
            if stats["dropped"] or stats["spans_exported"] != given:
                raise SystemExit(f"the exporter did not deliver every span ({given} given): {stats}")
        exporter.shutdown()
    print("RESULT " + json.dumps({"spans": counts, "encoders": _encoders(), "src": _package_dir()}), flush=True)


# -- the parent: run the children under callgrind -----------------------------------------
def _count(tasks: Sequence[Task], n: int, sink_url: str, hidden: Sequence[str], src: Optional[str]) -> Dict[str, Any]:
    """One callgrind process over ``tasks``: instructions per span of each, and what it used."""
    # warm-up: connections, first-call imports and caches; the quick size keeps it small
    spec = {"tasks": [list(t) for t in tasks], "n": n, "warm": min(n, 200), "sink": sink_url, "hide": list(hidden)}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_"))}
    if src:
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with tempfile.TemporaryDirectory(prefix="callgrind-") as tmp:
        out = os.path.join(tmp, "cg.out")
        cmd = [
            "valgrind",
            "--tool=callgrind",
            "--dump-before=getppid",
            f"--callgrind-out-file={out}",
            sys.executable,
            os.path.abspath(__file__),
            "--child",
            json.dumps(spec),
        ]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, env=env, cwd=tmp)
        result = next((json.loads(x[7:]) for x in r.stdout.splitlines() if x.startswith("RESULT ")), None)
        if r.returncode != 0 or result is None:
            raise SystemExit(f"callgrind run of {tasks} failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
        # part 1: before the first marker; part k+1: task k; the file without a suffix: the exit
        parts = [_totals(f"{out}.{k + 2}") for k in range(len(tasks))]
        if os.path.exists(f"{out}.{len(tasks) + 2}"):
            raise SystemExit("something else called getppid() in the measured process: the counts are not per task")
    per_span = [p / c for p, c in zip(parts, result["spans"])]
    return {
        "tasks": list(tasks),
        "instructions": parts,
        "spans": result["spans"],
        "per_span": per_span,
        "encoders": result["encoders"],
        "src": result["src"],
    }


def _totals(path: str) -> int:
    with open(path, encoding="utf-8", errors="replace") as f:
        m = _TOTALS.search(f.read())
    if m is None:
        raise SystemExit(f"no totals in {path}")
    return int(m.group(1))


def _plan(quick: bool, baseline: Optional[str]) -> List[Dict[str, Any]]:
    """Processes to run: each a group of tasks with the modules it hides and the tree it imports."""
    jobs: List[Dict[str, Any]] = []
    exporter_groups = installs.groups(installs.EXPORTER_MODULES)

    def add(section: str, key: str, tasks: List[Task], hidden: Sequence[str], src: Optional[str]) -> None:
        # one process per install and tree (quick: the test suite's size), else per shape too:
        # the process builds its spans once, and the tasks run in turn, each between two markers
        for t in tasks:
            group = (src, tuple(hidden)) if quick else (src, tuple(hidden), t[0])
            job = next((j for j in jobs if j["group"] == group), None)
            if job is None:
                job = {"group": group, "tasks": [], "labels": [], "hidden": tuple(hidden), "src": src}
                jobs.append(job)
            job["tasks"].append(t)
            job["labels"].append((section, key))

    for names, hidden in exporter_groups:
        key = "+".join(names)
        for shape in SHAPES:
            add("exporters", key, [(shape, 3, m) for m in OPIK_MODES], hidden, None)
    default_hidden = installs.hidden_for("default")
    # the OTLP paths import none of the hidden modules: --quick runs them in the other install's
    # process, so the two processes take about as long
    otlp_hidden = exporter_groups[-1][1] if quick else default_hidden
    for shape in SHAPES:
        add("exporters", "otlp", [(shape, 3, m) for m in OTLP_MODES], otlp_hidden, None)
    add(
        "per_trace",
        "+".join(exporter_groups[0][0]),
        [("llm", k, "opik-exporter") for k in PER_TRACE],
        default_hidden,
        None,
    )
    if baseline:
        base_root = os.path.dirname(os.path.abspath(baseline))
        # each tree's default install, and every extra in both (the code's own gain)
        for key, hidden in (("shapes", installs.hidden_for("default", base_root)), ("shapes_every_extra", ())):
            for shape in SHAPES:
                add("baseline", key, [(shape, 3, "sidecar"), (shape, 3, "opik-exporter")], hidden, baseline)
    return jobs


def _git_commit(src: Optional[str]) -> str:
    return installs.git_commit(os.path.dirname(os.path.abspath(src)) if src else None)


def _assemble(jobs: List[Dict[str, Any]], results: List[Dict[str, Any]], baseline: Optional[str]) -> Dict[str, Any]:
    """Per-span figures by section, shape, install and mode; the ratios the issue asks for."""
    out: Dict[str, Any] = {"exporters": {}, "per_trace": {}, "installs": {}}
    for job, res in zip(jobs, results):
        enc = res["encoders"]
        if res["src"] not in out.setdefault("package_src", []):  # where each process imported the package from
            out["package_src"].append(res["src"])
        for (section, key), task, per_span, spans in zip(job["labels"], res["tasks"], res["per_span"], res["spans"]):
            shape, per_trace, mode = task
            if section == "exporters":
                install = key
                slot = out["exporters"].setdefault(shape, {"spans": spans, "per_span": {}})
                slot["per_span"].setdefault(install, {})[mode] = per_span
                if install != "otlp":
                    out["installs"][install] = {
                        "label": installs.group_label(install.split("+")),
                        "hidden": list(job["hidden"]),
                        "used": enc,
                    }
            elif section == "per_trace":
                out["per_trace"][str(per_trace)] = {"spans": spans, "opik-exporter": per_span}
            else:
                b = out.setdefault("baseline", {"src": baseline, "commit": _git_commit(baseline)})
                b.setdefault(key, {}).setdefault(shape, {})[mode] = {"baseline": per_span}
    for slot in out["exporters"].values():
        otlp = slot["per_span"]["otlp"]
        slot["ratios"] = {
            install: {
                "exporter_vs_otlp_exporter": v["opik-exporter"] / otlp["otlp-exporter"],
                "pipeline_vs_otlp_encoding": v["opik"] / otlp["otlp"],
                "sidecar_vs_otlp_encoding": v["sidecar"] / otlp["otlp"],
            }
            for install, v in slot["per_span"].items()
            if install != "otlp"
        }
    pt = out["per_trace"]
    if "1" in pt and "100" in pt:
        pt["spread_1_vs_100"] = pt["1"]["opik-exporter"] / pt["100"]["opik-exporter"] - 1
    if "baseline" in out:
        keys = list(out["exporters"][SHAPES[0]]["per_span"])
        for key, install in (("shapes", "default"), ("shapes_every_extra", "every-extra")):
            current_key = next(k for k in keys if install in k.split("+"))
            for shape, modes in out["baseline"].get(key, {}).items():
                for mode, v in modes.items():
                    v["current"] = out["exporters"][shape]["per_span"][current_key][mode]
                    v["current_over_baseline"] = v["current"] / v["baseline"]
                    v["speedup"] = v["baseline"] / v["current"]
    return out


def _print(res: Dict[str, Any]) -> None:
    print(
        f"instructions per span counted by callgrind ({res['spans_requested']} spans per run, commit {res['commit']}):"
    )
    for shape, slot in res["exporters"].items():
        otlp = slot["per_span"]["otlp"]
        print(f"\n{shape} spans ({slot['spans']}):")
        print(f"  OTLPSpanExporter (no compression), whole:     {otlp['otlp-exporter']:>10,.0f}")
        print(f"  otlp encode_spans + serialize:                {otlp['otlp']:>10,.0f}")
        for install, v in slot["per_span"].items():
            if install == "otlp":
                continue
            r = slot["ratios"][install]
            print(f"  [{res['installs'][install]['label']}]")
            print(
                f"    OpikSpanExporter, whole:                    {v['opik-exporter']:>10,.0f}   ratio opik / otlp exporter {r['exporter_vs_otlp_exporter']:.3f}"
            )
            print(
                f"    opik (records, pipeline, bodies, gzip):     {v['opik']:>10,.0f}   ratio opik / otlp {r['pipeline_vs_otlp_encoding']:.3f}"
            )
            print(
                f"    sidecar (parse, records, pipeline, gzip):   {v['sidecar']:>10,.0f}   ratio sidecar / otlp {r['sidecar_vs_otlp_encoding']:.3f}"
            )
    pt = res["per_trace"]
    if "spread_1_vs_100" in pt:
        print("\nwhole OpikSpanExporter, LLM-span traces:")
        print(f"  1 span per trace:    {pt['1']['opik-exporter']:>10,.0f}")
        print(f"  100 spans per trace: {pt['100']['opik-exporter']:>10,.0f}   1 vs 100: {pt['spread_1_vs_100']:+.1%}")
    if "baseline" in res:
        b = res["baseline"]
        for key, what in (("shapes", "default install of each tree"), ("shapes_every_extra", "every extra in both")):
            print(f"\nagainst {b['commit']} ({b['src']}), {what}:")
            for shape, modes in b.get(key, {}).items():
                for mode, v in modes.items():
                    print(
                        f"  {shape:7s} {mode:14s} {v['baseline']:>10,.0f} -> {v['current']:>10,.0f}"
                        f"   {v['speedup']:.2f}x fewer"
                    )


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--spans", type=int, default=1536, help="spans measured per path (whole traces, at least this many)"
    )
    ap.add_argument("--quick", action="store_true", help="every section on 24 spans, in one process per install")
    ap.add_argument(
        "--baseline-src",
        help="another tree's src/ (git worktree add /tmp/base <commit>): its sidecar path and exporter",
    )
    ap.add_argument(
        "--jobs", type=int, default=0, help="callgrind processes at a time (default: the CPUs this may use)"
    )
    ap.add_argument("--out", help="also write the figures as JSON")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument(
        "--src", help="measure this tree's src/ (e.g. a git worktree of one commit) instead of this checkout's"
    )
    args = ap.parse_args(argv)
    if args.child:
        _child(json.loads(args.child))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: this measurement needs it (apt install valgrind)", file=sys.stderr)
        return 2
    if args.baseline_src and not os.path.isdir(os.path.join(args.baseline_src, "opentelemetry", "exporter", "opik")):
        ap.error(
            f"--baseline-src {args.baseline_src}: no opentelemetry/exporter/opik package there (give the tree's src/)"
        )
    installs.use_tree(args.src)
    n = 24 if args.quick else args.spans
    jobs = _plan(args.quick, args.baseline_src)
    workers = args.jobs or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2)
    from sink import sink

    t0 = time.monotonic()
    with sink() as url, concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_count, j["tasks"], n, url, j["hidden"], j["src"]) for j in jobs]
        results = [f.result() for f in futures]
    res: Dict[str, Any] = {
        "command": "python benchmarks/instructions.py " + " ".join(argv),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": _git_commit(None),
        "spans_requested": n,
        "processes": len(jobs),
        "elapsed_s": round(time.monotonic() - t0, 1),
        "load_average": list(os.getloadavg()),
    }
    res.update(_assemble(jobs, results, args.baseline_src))
    _print(res)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
