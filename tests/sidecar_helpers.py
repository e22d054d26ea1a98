"""Helpers for the sidecar tests: a running ``opik-otel serve`` subprocess, real SDK spans, spec OTLP/JSON."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_START = re.compile(r"OTLP/HTTP on https?://(?P<host>[^ ]+):(?P<port>\d+)/v1/traces(?:, OTLP/gRPC on [^ ]+:(?P<grpc>\d+))?")


def opik_otel_command() -> List[str]:
    """The installed ``opik-otel`` script next to this interpreter, else the module."""
    script = Path(sys.executable).with_name("opik-otel")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "opentelemetry.exporter.opik._cli"]  # pragma: no cover


def clean_env(**extra: str) -> Dict[str, str]:
    """The test process's environment without any developer OPIK/OTEL settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_"))}
    env["OPIK_CONFIG_PATH"] = os.devnull  # "no config file" (a missing one is an error)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class SidecarProcess:
    """``opik-otel serve`` in a subprocess on free ports; read its one start line for the ports."""

    def __init__(self, opik_url: str, *args: str, env: Optional[Dict[str, str]] = None, grpc: bool = True) -> None:
        cmd = opik_otel_command() + ["serve", "--port", "0", "--url", opik_url]
        cmd += ["--grpc-port", "0"] if grpc else ["--no-grpc"]
        cmd += list(args)
        self.cmd = cmd
        self.env = env if env is not None else clean_env()
        self.proc: Optional[subprocess.Popen] = None
        self.start_line = ""
        self.port = 0
        self.grpc_port: Optional[int] = None
        self._stderr: List[str] = []

    def start(self, timeout: float = 20.0) -> "SidecarProcess":
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        threading.Thread(target=self._pump_stderr, daemon=True).start()
        line: List[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        if not line or not line[0]:
            self.kill()
            raise AssertionError(f"the sidecar did not start: {self.stderr()}")
        self.start_line = line[0].strip()
        m = _START.search(self.start_line)
        assert m, self.start_line
        self.port = int(m.group("port"))
        self.grpc_port = int(m.group("grpc")) if m.group("grpc") else None
        return self

    def _pump_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    def stderr(self) -> str:
        return "".join(self._stderr)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_url(self) -> str:
        return self.url + "/v1/traces"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss_mb(self) -> float:
        with open(f"/proc/{self.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0  # pragma: no cover

    def metric(self, name: str) -> float:
        """One unlabelled sample of ``/metrics``."""
        import httpx

        text = httpx.get(self.url + "/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)

    def drain(self, timeout: float = 15.0) -> None:
        """Wait until nothing waits for delivery to Opik (so one test's items never land in the next)."""
        wait_until(lambda: self.metric("opik_otel_queue_items") == 0, timeout, "an empty sidecar queue")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40.0) -> int:
        """Signal the sidecar and wait for it; returns its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the sidecar did not stop within {timeout}s: {self.stderr()}") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> "SidecarProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.alive():
            try:
                self.stop()
            except AssertionError:
                pass


def make_spans(build: Callable[[Any], None], resource: Optional[Dict[str, Any]] = None, sampler: Any = None) -> List[ReadableSpan]:
    """Finished SDK spans: ``build(tracer)`` creates them with a real ``TracerProvider``."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource or {"service.name": "sidecar-tests"}), sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    build(provider.get_tracer("sidecar.tests", "1.0"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def protobuf_body(spans: Sequence[ReadableSpan]) -> bytes:
    """What the official OTLP exporters put on the wire for these spans."""
    return encode_spans(spans).SerializeToString()


def _hex_ids(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                out[k] = base64.b64decode(v).hex()
            else:
                out[k] = _hex_ids(v)
        return out
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


def otlp_json(spans: Sequence[ReadableSpan]) -> Dict[str, Any]:
    """OTLP/JSON per the spec: lowerCamelCase, hex ids, int64 as strings, enums as integers."""
    msg = encode_spans(spans)
    return _hex_ids(MessageToDict(msg, use_integers_for_enums=True))


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(0.05)


def rows_without_volatile(rows: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Stored rows, minus what the stand-in adds itself."""
    return {k: {f: v for f, v in row.items() if f not in ("workspace",)} for k, row in rows.items()}
