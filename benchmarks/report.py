"""The issue's table, in Markdown, from one ``instructions.py`` run and one ``run.py`` run.

    python benchmarks/instructions.py --baseline-src /tmp/base/src --out /tmp/instructions.json
    python benchmarks/run.py --sections exporter,sidecar,opik-sdk --baseline-src /tmp/base/src --out /tmp/run.json
    python benchmarks/report.py /tmp/instructions.json /tmp/run.json

Every figure is a ratio to the official OTLP exporter on the same spans, or to
the baseline tree, taken from those files; nothing is typed in by hand.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Optional

SHAPES = ("sparse", "agent")


def _x(v: Optional[float], nd: int = 2) -> str:
    return "-" if v is None else f"{v:.{nd}f}x"


def _install_key(keys: List[str], name: str) -> Optional[str]:
    return next((k for k in keys if name in k.split("+")), None)


def _instruction_rows(ins: Dict[str, Any], targets: Dict[str, str]) -> List[List[str]]:
    rows: List[List[str]] = []
    ex = ins["exporters"]
    keys = [k for k in ex[SHAPES[0]]["ratios"]]
    seen: List[str] = []
    for name in ("default", "every-extra", "stdlib"):
        key = _install_key(keys, name)
        if key is None or any(key == k for k in seen):
            continue
        seen.append(key)
        label = ins["installs"][key]["label"]
        whole = [ex[s]["ratios"][key]["exporter_vs_otlp_exporter"] for s in SHAPES]
        rows.append(
            [f"`OpikSpanExporter` vs `OTLPSpanExporter`, instructions, {label}"]
            + [_x(v, 3) for v in whole]
            + [targets["instructions"] if name == "default" else ""]
        )
    per = {s: ex[s]["per_span"] for s in SHAPES}
    dk = _install_key(keys, "default")
    rows.append(
        ["instructions per span: ours (default install) / OTLP exporter"]
        + [f"{per[s][dk]['opik-exporter']:,.0f} / {per[s]['otlp']['otlp-exporter']:,.0f}" for s in SHAPES]
        + [""]
    )
    pt = ins.get("per_trace", {})
    if "spread_1_vs_100" in pt:
        rows.append(
            [
                "whole exporter, 1 vs 100 spans per trace (LLM spans), instructions per span",
                f"{pt['1']['opik-exporter']:,.0f} vs {pt['100']['opik-exporter']:,.0f}: {pt['spread_1_vs_100']:+.1%}",
                "",
                "within 15%",
            ]
        )
    b = ins.get("baseline")
    if b:
        for key, which in (("shapes", "each tree's default install"), ("shapes_every_extra", "every extra in both")):
            if key not in b:
                continue
            for mode, what in (
                ("sidecar", "sidecar path (parse, records, pipeline, gzip)"),
                ("opik-exporter", "whole exporter"),
            ):
                rows.append(
                    [f"{what} vs `{b['commit']}`, instructions, fewer by ({which})"]
                    + [_x(b[key][s][mode]["speedup"]) for s in SHAPES]
                    + [""]
                )
    return rows


def _cpu_rows(run: Dict[str, Any]) -> List[List[str]]:
    rows: List[List[str]] = []
    s = run["sections"]
    for inst in s.get("exporter", {}).get("installs", []):
        ws = {w["name"]: w for w in inst["workloads"]}
        rows.append(
            [
                f"`OpikSpanExporter` vs `OTLPSpanExporter`, CPU (median of {len(ws['agent']['variants']['opik']['cpu_ms_per_1000_all'])} alternating rounds), {inst['install']['label']}"
            ]
            + [_x(ws[sh]["variants"]["opik"]["ratio_median"]["otlp"]) for sh in SHAPES]
            + [""]
        )
    sd = s.get("sidecar", {})
    b = sd.get("baseline")
    if b:
        for install, r in b["installs"].items():
            what = "each tree's default install" if install == "default" else "every extra in both"
            rows.append(
                [f"sidecar spans per CPU-second on one core vs `{b['baseline_commit']}`, side by side, {what}"]
                + [
                    f"{_x(r['shapes'][sh]['ratio_median'])} ({r['shapes'][sh]['baseline_spans_per_cpu_s']:,.0f} → {r['shapes'][sh]['current_spans_per_cpu_s']:,.0f})"
                    for sh in SHAPES
                ]
                + ["≥ 2x" if install == "default" else ""]
            )
    for inst in sd.get("efficiency", {}).get("installs", []):
        rows.append(
            [f"sidecar spans per CPU-second (spans/s closed loop), {inst['label']}"]
            + [
                f"{inst['shapes'][sh]['spans_per_cpu_s']:,.0f} ({inst['shapes'][sh]['spans_per_s']:,.0f}/s)"
                for sh in SHAPES
            ]
            + [""]
        )
    sdk = s.get("opik-sdk")
    if sdk and sdk.get("shapes"):
        names = {
            "otel+opik": "OTel + `OpikSpanExporter`",
            "opik-client": f"Opik SDK {sdk.get('opik_version', '')} `trace()`/`span()` + `end()`",
            "opik-client-whole": f"Opik SDK {sdk.get('opik_version', '')} `trace()`/`span()`, every field at creation",
            "opik-track": f"Opik SDK {sdk.get('opik_version', '')} `@track`",
        }
        for v, label in names.items():
            if v not in sdk["shapes"][SHAPES[0]]:
                continue
            rows.append(
                [
                    f"app process CPU, {label} vs OTel + `OTLPSpanExporter` (median of {sdk['rounds']} alternating rounds)"
                ]
                + [
                    _x(sdk["shapes"][sh][v]["ratio_vs_otel_otlp_median"], 1 if v.startswith("opik-") else 2)
                    for sh in SHAPES
                ]
                + [""]
            )
    return rows


def render(ins: Dict[str, Any], run: Dict[str, Any]) -> str:
    targets = {"instructions": "≤ 0.70x sparse, ≤ 0.60x agent"}
    rows = _instruction_rows(ins, targets) + _cpu_rows(run)
    out = ["| | sparse spans | agent spans | target |", "|---|---:|---:|---|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    m = run.get("machine", {})
    out.append("")
    out.append(
        f"Instructions: commit {ins['commit']}, {ins['date']}, {ins['spans_requested']} spans per path, "
        f"load average {', '.join(f'{x:.1f}' for x in ins['load_average'])} at the end. "
        f"CPU: {run.get('started')}, {m.get('cpu')} ({m.get('cpus')} CPUs), Python {m.get('python')}."
    )
    return "\n".join(out)


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        ins = json.load(f)
    with open(argv[1], encoding="utf-8") as f:
        run = json.load(f)
    print(render(ins, run))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
