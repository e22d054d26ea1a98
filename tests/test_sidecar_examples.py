"""``examples/collector``: the Collector configs and Kubernetes manifests agree with the sidecar they drive.

No Collector binary here, so the configs are checked for what the sidecar depends on (trace-id
routing, the bearer header, retries, the ports and paths it serves), and the sidecar is run
with the manifests' own arguments and environment and fed a request shaped like the
Collector's (gzip protobuf with the configured headers).
"""

from __future__ import annotations

import argparse
import gzip
import re
import shlex
from pathlib import Path
from typing import Any, Dict, List

import httpx
import pytest
from opik_standin import OpikStandin
from sidecar_helpers import SidecarProcess, clean_env, make_spans, protobuf_body

from opentelemetry.exporter.opik._config import SPECS
from opentelemetry.exporter.opik.sidecar._cli import _ENV, add_serve_arguments, serve_options

yaml = pytest.importorskip("yaml")

DIR = Path(__file__).resolve().parent.parent / "examples" / "collector"


def _load(name: str) -> List[Dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DIR / name).read_text()) if d]


def _containers(docs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [c for d in docs if d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"]]


def _parse(args: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(args)


def _probe_target(probe: Dict[str, Any]) -> "tuple[str, int]":
    """(path, port) a probe asks: an httpGet without a ``host`` (that is the node's address, not the
    pod's), or an exec probe that fetches the pod's own 127.0.0.1."""
    if "httpGet" in probe:
        assert "host" not in probe["httpGet"], "httpGet host is where the kubelet connects: the node, not the pod"
        return probe["httpGet"]["path"], probe["httpGet"]["port"]
    m = re.search(r"http://127\.0\.0\.1:(\d+)(/[a-z]+)", " ".join(probe["exec"]["command"]))
    assert m, probe
    return m.group(2), int(m.group(1))


def _check_pipeline(cfg: Dict[str, Any]) -> None:
    for name, pipe in cfg["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipe.get(kind, []):
                assert component in cfg[kind], f"pipeline {name} uses undefined {kind[:-1]} {component}"


def test_collector_to_one_sidecar() -> None:
    (cfg,) = _load("otel-collector.yaml")
    _check_pipeline(cfg)
    exporter = cfg["exporters"]["otlphttp/opik"]
    # the sidecar command the file shows listens where the Collector's own receivers do not
    run = re.search(r"^#\s+(?:\S+=\S+\s+)*opik-otel serve(.*)$", (DIR / "otel-collector.yaml").read_text(), re.M)
    assert run, "otel-collector.yaml shows how to run the sidecar"
    options = serve_options(_parse(shlex.split(run.group(1))), env={})
    receiver_ports = {int(p["endpoint"].rsplit(":", 1)[1]) for p in cfg["receivers"]["otlp"]["protocols"].values()}
    sidecar_ports = {options.port} | ({options.grpc_port} if options.grpc_port else set())
    assert not sidecar_ports & receiver_ports, (sidecar_ports, receiver_ports)
    assert exporter["endpoint"] == f"http://127.0.0.1:{options.port}"
    assert exporter["endpoint"].startswith("http://127.0.0.1:") and not exporter["endpoint"].endswith("/v1/traces")
    assert exporter["headers"]["Authorization"] == "Bearer ${env:OPIK_OTEL_AUTH_TOKEN}"
    assert exporter["retry_on_failure"]["enabled"] and exporter["compression"] == "gzip"
    assert cfg["processors"]["batch"]["send_batch_max_size"] <= 20_000  # under --max-spans-per-request


def test_collector_load_balancing_routes_by_trace_id() -> None:
    (cfg,) = _load("otel-collector-loadbalancing.yaml")
    _check_pipeline(cfg)
    lb = cfg["exporters"]["loadbalancing/opik"]
    assert lb["routing_key"] == "traceID"
    assert lb["protocol"]["otlp"]["headers"]["authorization"] == "Bearer ${env:OPIK_OTEL_AUTH_TOKEN}"
    dns = lb["resolver"]["dns"]
    service = next(d for d in _load("kubernetes-replicas.yaml") if d["kind"] == "Service")
    assert service["spec"]["clusterIP"] == "None"  # headless: the DNS resolver sees every replica
    assert dns["hostname"].startswith(f"{service['metadata']['name']}.{service['metadata']['namespace']}.")
    assert dns["port"] in [p["port"] for p in service["spec"]["ports"]]


@pytest.mark.parametrize("manifest", ["kubernetes-sidecar.yaml", "kubernetes-replicas.yaml"])
def test_manifests_use_real_options_ports_and_probes(manifest: str) -> None:
    docs = _load(manifest)
    known_env = {s.env for s in SPECS} | {spec[0] for spec in _ENV.values()}
    (sidecar,) = [c for c in _containers(docs) if c["name"] == "opik-otel"]
    options = serve_options(_parse(sidecar["args"]), env={})
    http_port = options.port
    assert {p["containerPort"] for p in sidecar["ports"]} == {options.port, options.grpc_port}
    assert _probe_target(sidecar["livenessProbe"]) == ("/healthz", http_port)
    assert _probe_target(sidecar["readinessProbe"]) == ("/readyz", http_port)
    if options.host == "127.0.0.1":  # only the pod itself reaches it: the kubelet cannot httpGet it
        assert "exec" in sidecar["livenessProbe"] and "exec" in sidecar["readinessProbe"]
    for var in sidecar.get("env", []):
        if var["name"] == "OPIK_URL_OVERRIDE":  # troubleshooting.md: the backend's port 8080 has no /api
            assert not re.search(r":8080/api\b", var["value"]), var["value"]
    for var in sidecar.get("env", []):
        assert var["name"] in known_env, f"{var['name']} is not an Opik or sidecar setting"
    for doc in docs:
        if doc["kind"] == "Secret":
            for key in doc["stringData"]:
                assert key in known_env, key
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    timeout = float(next((v["value"] for v in sidecar.get("env", []) if v["name"] == "OPIK_OTEL_SHUTDOWN_TIMEOUT"), options.shutdown_timeout))
    assert grace > timeout  # Kubernetes must not kill the sidecar while it delivers what it acknowledged
    if options.host != "127.0.0.1":
        secret = next(d for d in docs if d["kind"] == "Secret")
        assert "OPIK_OTEL_AUTH_TOKEN" in secret["stringData"]  # reachable from other pods: token required


def test_dockerfile_entrypoint_parses() -> None:
    text = (DIR / "Dockerfile").read_text()
    entry = re.search(r'^ENTRYPOINT \[(.*)\]$', text, re.M)
    assert entry
    argv = [a.strip().strip('"') for a in entry.group(1).split(",")]
    assert argv[:2] == ["opik-otel", "serve"]
    assert serve_options(_parse(argv[2:]), env={}).host == "0.0.0.0"
    assert "opentelemetry-exporter-opik[grpc" in text  # the load-balancing Collector speaks gRPC


def test_replica_manifest_settings_accept_a_collector_shaped_request(tmp_path: Path) -> None:
    """The replicas' arguments and environment (host made local, ports free) take the Collector's request."""
    docs = _load("kubernetes-replicas.yaml")
    (sidecar,) = _containers(docs)
    secret = next(d for d in docs if d["kind"] == "Secret")["stringData"]
    env = {v["name"]: v["value"] for v in sidecar["env"] if v["name"] != "OPIK_URL_OVERRIDE"}
    env.update({k: v for k, v in secret.items() if k != "OPIK_API_KEY"})
    args = shlex.split(" ".join(sidecar["args"]))
    args[args.index("--host") + 1] = "127.0.0.1"
    args = [a for a in args if a not in ("--port", "--grpc-port", "4318", "4317")]
    with OpikStandin() as opik, SidecarProcess(opik.url, *args, env=clean_env(**env)) as proc:
        assert "bearer token required" in proc.start_line
        spans = make_spans(lambda t: t.start_span("from-the-collector").end(), resource={"service.name": "checkout"})
        headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip", "Authorization": f"Bearer {secret['OPIK_OTEL_AUTH_TOKEN']}"}
        r = httpx.post(proc.traces_url, content=gzip.compress(protobuf_body(spans)), headers=headers)
        assert r.status_code == 200
        opik.wait_for_counts(traces=1, spans=1)
        (trace,) = opik.traces_by_id().values()
        assert trace["project_name"] == "checkout"  # OTEL_EXPORTER_OPIK_PROJECT_FROM_SERVICE_NAME from the manifest
        assert httpx.post(proc.traces_url, content=protobuf_body(spans), headers={"Content-Type": "application/x-protobuf"}).status_code == 401


def test_in_pod_probes_really_answer() -> None:
    """The sidecar manifest's exec probes, run against a sidecar started with its arguments."""
    import subprocess
    import sys

    docs = _load("kubernetes-sidecar.yaml")
    (sidecar,) = [c for c in _containers(docs) if c["name"] == "opik-otel"]
    args = [a for a in sidecar["args"]]
    for opt in ("--port", "--grpc-port"):
        args[args.index(opt) + 1] = "0"
    args = [a for a in args if a not in ("--port", "--grpc-port", "0")]
    with OpikStandin() as opik, SidecarProcess(opik.url, *args) as proc:
        for probe in ("livenessProbe", "readinessProbe"):
            cmd = list(sidecar[probe]["exec"]["command"])
            assert cmd[0] == "python"
            code = cmd[2].replace(":4318/", f":{proc.port}/")
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, (probe, r.stderr[-500:])
