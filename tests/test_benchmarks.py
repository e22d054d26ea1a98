"""The benchmark harness runs end to end (``--quick``) and reports sound figures.

No timing is asserted here (the machine running the suite is shared and its
speed unknown); what is checked is that every section ran, that both exporters
really delivered every span to the sink, that the sidecar accepted and
delivered what it was sent, and that the memory run hit the writer's bounds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run_benchmark(
    script: str, args: List[str], out: Path, timeout: float
) -> Tuple["subprocess.CompletedProcess[str]", Dict[str, Any]]:
    """Run ``benchmarks/<script>`` with ``--out``; the process and the JSON it wrote."""
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(ROOT),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return r, json.loads(out.read_text())


def test_quick_benchmark_runs_every_section(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    r, res = _run_benchmark("run.py", ["--quick"], out, timeout=240)
    s = res["sections"]
    assert set(s) == {"exporter", "gzip", "scaling", "sidecar", "memory", "opik-sdk"}

    # exporter: both shapes in every install that runs different code, every span delivered, ratios computed
    measured = [inst["install"] for inst in s["exporter"]["installs"]]
    assert {n for m in measured for n in m["names"]} == {"default", "every-extra", "stdlib"}
    for inst in s["exporter"]["installs"]:
        stdlib = "stdlib" in inst["install"]["names"]
        # what the process really used: the stdlib fallback without orjson and isal, the others with both
        # (or, before they are dependencies, the default install shares the stdlib fallback's run)
        assert (inst["json_encoder"], inst["gzip"]) == (("stdlib", "zlib") if stdlib else ("orjson", "isal"))
        assert [w["name"] for w in inst["workloads"]][:2] == ["sparse", "agent"]
        for w in inst["workloads"]:
            assert w["spans"] > 0 and w["traces"] > 0
            for name, v in w["variants"].items():
                assert v["errors"] == [], (inst["install"], w["name"], name, v["errors"])
                assert v["cpu_ms_per_1000_median"] > 0 and v["requests"] > 0
            assert w["variants"]["opik"]["ratio_median"]["otlp"] > 0
    sparse, agent = (w["variants"] for w in s["exporter"]["installs"][0]["workloads"][:2])
    # gzip on by default: fewer bytes on the wire than OTLP's uncompressed protobuf
    assert agent["opik"]["bytes_sent_per_span"] < agent["otlp"]["bytes_sent_per_span"]
    assert sparse["opik"]["bytes_sent_per_span"] < sparse["otlp"]["bytes_sent_per_span"]

    # compression settings: level 9 never sends more than level 1, none sends the most
    for w in s["gzip"]["workloads"]:
        v = w["variants"]
        assert v["opik:compression=none"]["bytes_sent_per_span"] > v["opik:compression_level=1"]["bytes_sent_per_span"]
        assert (
            v["opik:compression_level=9"]["bytes_sent_per_span"] <= v["opik:compression_level=1"]["bytes_sent_per_span"]
        )

    names = [w["name"] for w in s["scaling"]["workloads"]]
    assert names == ["1 span/trace", "10 spans/trace", "100 spans/trace", "1 KB", "10 KB", "100 KB"]
    assert all(not v["errors"] for w in s["scaling"]["workloads"] for v in w["variants"].values())

    # sidecar: every request answered 200 and everything accepted reached the sink
    for name in ("protobuf", "protobuf+gzip"):
        for mode in ("max", "at_rate", "at_half_max"):
            run = s["sidecar"]["runs"][name][mode]
            assert run["errors"] == 0 and run["spans"] > 0, run
            assert run["drained"] is True
            assert run["p50_ms"] is not None and run["p99_ms"] >= run["p50_ms"]
    for inst in s["sidecar"]["efficiency"]["installs"]:
        for shape in ("sparse", "agent"):
            row = inst["shapes"][shape]
            assert row["errors"] == 0 and row["drained"] is True and row["spans_per_cpu_s"] > 0, (inst["label"], shape)

    # the SDK comparison: both OTel apps delivered; Opik's SDK, when its venv exists, flushed without loss
    sdk = s["opik-sdk"]
    for shape in ("sparse", "agent"):
        apps = sdk["shapes"][shape]
        assert apps["otel+opik"]["delivered_spans"] == sdk["traces_per_run"] * 3 and not apps["otel+opik"]["dropped"]
        assert apps["otel+otlp"]["requests"] == {"/v1/traces": apps["otel+otlp"]["requests"]["/v1/traces"]}
        for app, fig in apps.items():
            assert fig["cpu_ms_per_1000_spans_median"] > 0 and fig["ratio_vs_otel_otlp_median"] > 0, app
            if app.startswith("opik-"):
                assert any(p.endswith("/spans/batch") for p in fig["requests"]), (app, fig["requests"])
                assert fig["flush_result"] is None or "dropped_items=0" in fig["flush_result"], fig["flush_result"]
    assert "opik_skipped" in sdk or "opik-track" in sdk["shapes"]["sparse"]

    # memory: Opik stalled, so the exporter kept only what its bounds allow and dropped the rest
    mem = s["memory"]
    exp = mem["exporter"]
    assert exp["stats"]["spans_received"] == exp["offered"] > 0
    assert exp["stats"]["dropped"].get("queue_full", 0) > 0
    assert exp["queue_bytes"] <= exp["bounds"]["max_queue_bytes"]
    assert mem["baseline"]["peak_rss_mb"] > 0 and mem["sidecar"]["peak_rss_mb"] > 0

    summary = res["summary"]
    for key in (
        "exporter_ratio_vs_otlp",
        "exporter_sparse_ratio_vs_otlp",
        "spans_per_trace_spread",
        "sidecar_spans_per_s",
        "sidecar_cpu_vs_otlp_exporter",
        "sidecar_spans_per_s_at_reference_speed",
        "exporter_overload_rss_delta_mb",
    ):
        assert key in summary, key
    # the target restated against the reference exporter: 50 ms per 1,000 spans over its 40 ms
    assert summary["sidecar_cpu_vs_otlp_exporter_max"] == pytest.approx(1.25)
    assert "Exporter CPU per 1,000 spans" in r.stdout and "Sidecar" in r.stdout and "Summary vs targets" in r.stdout
    assert "App process CPU per 1,000 spans" in r.stdout


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="the instruction count needs valgrind")
def test_instruction_count_runs(tmp_path: Path) -> None:
    """``instructions.py --quick``: every section ran in both shapes and every install, and counted something."""
    out = tmp_path / "instructions.json"
    r, res = _run_benchmark("instructions.py", ["--quick"], out, timeout=600)
    assert res["spans_requested"] == 24 and res["processes"] == 2  # the quick size: one process per install
    ex = res["exporters"]
    assert set(ex) == {"sparse", "agent"}
    installs = set(res["installs"])
    # the default install, every extra and the stdlib fallback are all measured (some may share a run)
    assert {name for key in installs for name in key.split("+")} == {"default", "every-extra", "stdlib"}
    for shape, slot in ex.items():
        assert slot["spans"] >= 24
        assert set(slot["per_span"]) == installs | {"otlp"}, shape
        assert all(slot["per_span"]["otlp"][m] > 0 for m in ("otlp-exporter", "otlp"))
        for install in installs:
            per_span = slot["per_span"][install]
            assert all(per_span[m] > 0 for m in ("opik-exporter", "opik", "sidecar")), (shape, install, per_span)
            assert all(v > 0 for v in slot["ratios"][install].values())
    # the stdlib fallback really ran without orjson and isal, every extra with both
    used = {k: v["used"] for k, v in res["installs"].items()}
    assert used[next(k for k in used if "stdlib" in k.split("+"))] == {"orjson": False, "isal": False}
    assert used[next(k for k in used if "every-extra" in k.split("+"))] == {"orjson": True, "isal": True}
    pt = res["per_trace"]
    assert pt["1"]["opik-exporter"] > 0 and pt["100"]["opik-exporter"] > 0 and pt["100"]["spans"] >= 100
    assert "spread_1_vs_100" in pt
    assert "ratio opik / otlp exporter" in r.stdout and "1 vs 100" in r.stdout
