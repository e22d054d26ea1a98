"""A tiny HTTP sink for the benchmarks, run in its own process.

It answers like the servers the exporters talk to, as cheaply as possible, so
the measured process (exporter or sidecar) is what costs CPU:

* Opik batch endpoints (``POST .../traces/batch``, ``.../spans/batch``,
  ``PUT .../feedback-scores``): ``204 No Content``;
* what Opik's own Python SDK calls besides (``benchmarks/opik_sdk.py``): every
  ``POST``/``PATCH``/``PUT`` under ``/v1/private/`` (``PATCH .../spans/{id}`` and
  ``.../traces/{id}`` once per ``end()``): ``204``; ``GET .../is-alive/ping``
  (its connection check): ``200``; ``GET .../is-alive/ver``: ``200`` with a version;
* OTLP/HTTP ``POST /v1/traces``: ``200`` with an empty protobuf
  ``ExportTraceServiceResponse``;
* ``GET /stats``: request and byte counts per path, as JSON;
* mode ``stall``: reads requests and never answers (Opik hung), except
  ``/stats``.

Usage: ``python benchmarks/sink.py [--mode ok|stall] [--cpu N]``; it prints
``PORT <n>`` on stdout once it listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional

_OK_OPIK = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
_OK_OTLP = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"
_ALIVE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
_VERSION_BODY = b'{"version":"1.9.0"}'
_VERSION = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(_VERSION_BODY),
    _VERSION_BODY,
)
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
_BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


_ID = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class _Stats:
    def __init__(self) -> None:
        self.requests: Dict[str, int] = {}
        self.bytes: Dict[str, int] = {}

    def add(self, path: str, n: int) -> None:
        path = _ID.sub("/{id}", path)  # one entry for the per-item updates of Opik's SDK
        self.requests[path] = self.requests.get(path, 0) + 1
        self.bytes[path] = self.bytes.get(path, 0) + n

    def body(self) -> bytes:
        data = json.dumps({"requests": self.requests, "bytes": self.bytes}).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        return head.encode() + data


class _Sink(asyncio.Protocol):
    """HTTP/1.1 keep-alive with Content-Length bodies: all the exporters send."""

    def __init__(self, stats: _Stats, stall: bool) -> None:
        self.stats = stats
        self.stall = stall
        self.buf = bytearray()
        self.transport: Optional[asyncio.Transport] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        out: List[bytes] = []
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = bytes(buf[:end]).decode("latin-1")
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) < 2:
                out.append(_BAD)
                buf.clear()
                break
            method, path = parts[0], parts[1]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                lname = name.strip().lower()
                if lname == "content-length":
                    length = int(value.strip())
                elif lname == "transfer-encoding" and "chunked" in value.lower():
                    out.append(_BAD)  # no client here sends chunked bodies
                    buf.clear()
                    length = -1
                    break
            if length < 0:
                break
            total = end + 4 + length
            if len(buf) < total:
                break
            del buf[:total]
            if path == "/stats":
                out.append(self.stats.body())
                continue
            self.stats.add(f"{method} {path}" if method != "POST" else path, length)
            if self.stall:
                continue
            if path.endswith("/v1/traces"):
                out.append(_OK_OTLP)
            elif method in ("POST", "PUT") and (path.endswith("/batch") or path.endswith("/feedback-scores")):
                out.append(_OK_OPIK)
            elif method in ("POST", "PATCH", "PUT") and "/v1/private/" in path:
                out.append(_OK_OPIK)  # Opik's SDK: an update per end(), single creates
            elif method == "GET" and path.endswith("/is-alive/ping"):
                out.append(_ALIVE)
            elif method == "GET" and path.endswith("/is-alive/ver"):
                out.append(_VERSION)
            else:
                out.append(_NOT_FOUND)
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


async def _serve(mode: str, port: int) -> None:
    stats = _Stats()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Sink(stats, mode == "stall"), "127.0.0.1", port, backlog=512)
    sock = server.sockets[0]
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


@contextmanager
def sink(mode: str = "ok", cpu: Optional[int] = None) -> Iterator[str]:
    """Start ``sink.py`` in its own process; yields its base URL."""
    cmd = [sys.executable, os.path.abspath(__file__), "--mode", mode]
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"sink did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("ok", "stall"), default="ok")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cpu", type=int, default=None, help="pin the sink to this CPU")
    args = ap.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    try:
        asyncio.run(_serve(args.mode, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
