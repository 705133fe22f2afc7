"""Benchmark: CPU of OpenTelemetry export per result, beside the cost of the same runs without it.

A subprocess serves both the target (GET /health) and an OTLP/HTTP sink (POST /v1/traces, /v1/metrics answer
200) on 127.0.0.1, so this process's CPU (all threads: the loop and the export thread) is prober's alone.
Rounds alternate: N http runs with tracing and metrics off, then N with both on (every run submitted to the
exporter, spans flushed before the round's CPU is read). Prints CPU per result for each and the difference.

    .venv/bin/python tests/bench/bench_otel.py --runs 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def _ok(self, body, kind):
        self.send_response(200); self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_GET(self): self._ok(b'{"ok":true}', "application/json")
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0))); self._ok(b"", "application/x-protobuf")
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _round(spec: object, runs: int, exporter: object | None, tracing: bool) -> float:
    from prober.scheduling.runner import Runner

    runner = Runner(tracing=tracing)
    started = time.process_time()
    for _ in range(runs):
        result = await runner.run(spec)  # type: ignore[arg-type]
        if exporter is not None:
            exporter.submit(result, "http://127.0.0.1/health")  # type: ignore[attr-defined]
    if exporter is not None:
        exporter.flush()  # type: ignore[attr-defined]
    spent = time.process_time() - started
    await runner.resources.aclose()
    return spent / runs


async def main(args: argparse.Namespace) -> None:
    from prober.config.loader import load_config
    from prober.telemetry import TelemetrySettings, start_exporter

    port = _port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        time.sleep(0.5)
        folder = Path(tempfile.mkdtemp())
        (folder / "c.yaml").write_text(
            json.dumps({"checks": [{"name": "api", "type": "http", "url": f"http://127.0.0.1:{port}/health"}]})
        )
        spec = load_config([folder / "c.yaml"]).checks[0]
        base = f"http://127.0.0.1:{port}"
        settings = TelemetrySettings(
            traces_endpoint=f"{base}/v1/traces", metrics_endpoint=f"{base}/v1/metrics", metrics_interval=1.0
        )
        exporter = start_exporter(settings, location="bench", instance_id="bench")
        await _round(spec, 200, exporter, True)  # warm up both paths
        await _round(spec, 200, None, False)
        plain: list[float] = []
        traced: list[float] = []
        for _ in range(args.rounds):
            plain.append(await _round(spec, args.runs, None, False))
            traced.append(await _round(spec, args.runs, exporter, True))
        await asyncio.to_thread(exporter.shutdown, 5)
        best_plain, best_traced = min(plain), min(traced)
        print(f"http runs per round: {args.runs}, rounds: {args.rounds}")
        print(f"without export: {best_plain * 1e6:8.1f} µs CPU per result (best round)")
        print(f"with export:    {best_traced * 1e6:8.1f} µs CPU per result (traces + metrics, best round)")
        print(
            f"export costs {(best_traced - best_plain) * 1e6:.1f} µs CPU per result "
            f"({best_traced / best_plain:.2f}x the run without it); dropped: {exporter.dropped}"
        )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
