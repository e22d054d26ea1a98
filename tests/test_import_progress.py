"""``opik-otel import`` shows the delivery after the last byte is read: ``sending: N of M delivered``."""

from __future__ import annotations

import io
import re
from pathlib import Path

from opik_standin import Fault, OpikStandin
from test_cli_import import sdk_file

from opentelemetry.exporter.opik._import import run_import


def test_progress_goes_on_through_the_drain_until_everything_is_delivered(tmp_path: Path) -> None:
    path, live = sdk_file(tmp_path, n_traces=40)  # 40 traces of 3 spans: 160 Opik items
    live.stop()
    with OpikStandin() as opik:
        opik.faults.add(Fault.stall(0.3, times=None))  # a slow Opik: the drain outlasts the reading
        err = io.StringIO()
        code = run_import([str(path)], {"url": opik.url, "batch_max_items": 20}, progress="lines", err=err,
                          out=io.StringIO())
        assert code == 0, err.getvalue()
        lines = err.getvalue().splitlines()
        reading = [i for i, line in enumerate(lines) if line.startswith("import: ") and "spans/s" in line]
        sending = [(i, line) for i, line in enumerate(lines) if line.startswith("import: sending: ")]
        assert reading and sending, lines
        assert sending[0][0] > reading[-1]  # after the reading reached the end
        counts = [tuple(int(n.replace(",", "")) for n in re.findall(r"[\d,]+", line)[:2]) for _, line in sending]
        assert counts[-1] == (160, 160), sending  # the last line: everything delivered
        assert all(a[0] <= b[0] for a, b in zip(counts, counts[1:]))
        assert len(opik.traces) == 40 and len(opik.spans) == 120
