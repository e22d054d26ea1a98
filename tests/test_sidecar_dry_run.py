"""``opik-otel serve --dry-run`` prints the traces and says so: it never claims it delivered anything."""

from __future__ import annotations

import httpx
from opik_standin import OpikStandin
from sidecar_helpers import SidecarProcess, make_spans, protobuf_body


def test_dry_run_says_nothing_was_sent() -> None:
    def build(tracer: object) -> None:
        with tracer.start_as_current_span("dry run request"):  # type: ignore[attr-defined]
            pass

    with OpikStandin() as opik:
        sidecar = SidecarProcess(opik.url, "--dry-run", grpc=False).start()
        try:
            r = httpx.post(sidecar.traces_url, content=protobuf_body(make_spans(build)),
                           headers={"Content-Type": "application/x-protobuf"}, timeout=30)
            assert r.status_code == 200
        finally:
            code = sidecar.stop()
        assert code == 0
        assert not opik.requests  # nothing reached Opik
    err = sidecar.stderr()
    last = [line for line in err.splitlines() if "opik-otel serve stopped" in line]
    assert last and "dry run, nothing sent" in last[-1] and "1 traces and 1 spans printed" in last[-1], err
    assert "delivered" not in last[-1]
