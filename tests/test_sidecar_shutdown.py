"""SIGTERM during a stream: everything the sidecar acknowledged reaches Opik, or the spool (and then Opik)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from opik_standin import Fault, OpikStandin
from sidecar_helpers import SidecarProcess, make_spans, protobuf_body, wait_until


@pytest.fixture
def opik() -> Iterator[OpikStandin]:
    with OpikStandin() as standin:
        yield standin


class Stream:
    """Posts one 3-span trace per request on a keep-alive connection until the sidecar stops answering.

    ``acked`` holds the root names of requests answered 200: what the sidecar promised to deliver.
    """

    def __init__(self, sidecar: SidecarProcess) -> None:
        self.sidecar = sidecar
        self.acked: List[str] = []
        self.statuses: List[int] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _body(self, n: int) -> bytes:
        def build(tracer: Any) -> None:
            with tracer.start_as_current_span(f"stream-{n}"):
                with tracer.start_as_current_span(f"stream-{n}-a"):
                    pass
                with tracer.start_as_current_span(f"stream-{n}-b"):
                    pass

        return protobuf_body(make_spans(build))

    def _run(self) -> None:
        n = 0
        conn = self.sidecar.http_connection(timeout=10)
        while not self._stop.is_set() and self.errors < 20:
            body = self._body(n)
            try:
                conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
                resp = conn.getresponse()
                resp.read()
            except OSError:  # connection closed/refused while stopping: not acknowledged
                self.errors += 1
                conn.close()
                time.sleep(0.02)
                conn = self.sidecar.http_connection(timeout=10)
                continue
            self.statuses.append(resp.status)
            if resp.status == 200:
                self.acked.append(f"stream-{n}")
            n += 1
        conn.close()

    def __enter__(self) -> "Stream":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def wait_for(self, n: int) -> None:
        wait_until(lambda: len(self.acked) >= n, 20, f"{n} acknowledged requests")


def test_sigterm_mid_stream_delivers_everything_acknowledged(opik: OpikStandin) -> None:
    with SidecarProcess(opik.url) as sidecar:
        with Stream(sidecar) as stream:
            stream.wait_for(30)
            assert sidecar.stop(signal.SIGTERM) == 0
            time.sleep(0.2)
        assert set(stream.statuses) <= {200, 503}
        acked = set(stream.acked)
        assert len(acked) >= 30
        stored = {t["name"] for t in opik.traces.values()}
        assert acked <= stored, f"acknowledged but lost: {sorted(acked - stored)[:5]}"
        assert len(opik.spans) == 3 * len(stored)
        assert "opik-otel serve stopped" in sidecar.stderr()


def test_sigterm_with_opik_down_spools_and_the_next_start_delivers(opik: OpikStandin, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    down = opik.faults.add(Fault.respond(503, times=None, path="/v1/private/spans/batch"))
    down_traces = opik.faults.add(Fault.respond(503, times=None, path="/v1/private/traces/batch"))
    args = ["--spool-dir", str(spool), "--shutdown-timeout", "4", "--set", "retry_deadline=60"]
    with SidecarProcess(opik.url, *args, grpc=False) as sidecar:
        with Stream(sidecar) as stream:
            stream.wait_for(20)
            assert sidecar.stop(signal.SIGINT) == 0
        acked = set(stream.acked)
        assert "spooled" in sidecar.stderr()
    assert not opik.traces and any(spool.rglob("*")), "nothing was spooled"
    opik.faults.remove(down)  # Opik is back; a new sidecar on the same spool re-sends
    opik.faults.remove(down_traces)
    with SidecarProcess(opik.url, *args, grpc=False):
        wait_until(lambda: acked <= {t["name"] for t in opik.traces.values()}, 30, "the spooled traces in Opik")
    assert opik.duplicates() == {}
