# ruff: noqa: E501
"""Benchmark: CPU of a `multistep` check (login, then two requests with the captured token) against the same
three requests made as three `http` checks, in the same run.

Run on demand (not collected by pytest):  python tests/bench/bench_multistep.py [-n 300]

The target is an aiohttp API in its own process (its CPU is not counted). This process runs -n checks of each
kind one after the other through the Runner (what `prober run` does per check) and reads its own CPU time
(time.process_time). The multistep check does what the three http checks do plus the captures, the
{{ steps.* }} substitutions and masking the captured token; the ratio is the price of chaining.
Machines here are shared and noisy: read the ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from prober.config.loader import load_config
from prober.scheduling.runner import Runner

SERVER = textwrap.dedent(
    """
    import secrets, sys
    from aiohttp import web
    tokens = set()
    async def login(request):
        token = secrets.token_urlsafe(16)
        tokens.add(token)
        return web.json_response({"access_token": token})
    def allowed(request):
        return request.headers.get("Authorization", "").removeprefix("Bearer ") in tokens or "static" in request.headers.get("Authorization", "")
    async def orders(request):
        if not allowed(request):
            return web.json_response({}, status=401)
        return web.json_response({"count": 1, "items": [{"id": 7}]})
    async def order(request):
        if not allowed(request):
            return web.json_response({}, status=401)
        return web.json_response({"state": "shipped"})
    app = web.Application()
    app.router.add_post("/login", login)
    app.router.add_get("/orders", orders)
    app.router.add_get("/orders/{id}", order)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def checks(base: str) -> str:
    return f"""\
checks:
  - name: flow
    type: multistep
    steps:
      - {{name: login, method: POST, url: "{base}/login", json: {{user: u}}, capture: {{token: {{json: access_token}}}}}}
      - name: orders
        url: "{base}/orders"
        headers: {{Authorization: "Bearer {{{{ steps.login.token }}}}"}}
        expect: {{json: {{count: ">= 1"}}}}
        capture: {{first: {{json: items.0.id, secret: false}}}}
      - name: order
        url: "{base}/orders/{{{{ steps.orders.first }}}}"
        headers: {{Authorization: "Bearer {{{{ steps.login.token }}}}"}}
        expect: {{json: {{state: shipped}}}}
  - {{name: h-login, type: http, method: POST, url: "{base}/login", json: {{user: u}}, expect: {{json: {{access_token: "!= x"}}}}}}
  - {{name: h-orders, type: http, url: "{base}/orders", headers: {{Authorization: Bearer static}}, expect: {{json: {{count: ">= 1"}}}}}}
  - {{name: h-order, type: http, url: "{base}/orders/7", headers: {{Authorization: Bearer static}}, expect: {{json: {{state: shipped}}}}}}
"""


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=300)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "checks.yaml"
            path.write_text(checks(f"http://127.0.0.1:{port}"))
            specs = {spec.name: spec for spec in load_config([str(path)]).checks}
            runner = Runner()
            for _ in range(100):
                try:
                    if (await runner.run(specs["h-orders"])).status == "up":
                        break
                except OSError:
                    pass
                await asyncio.sleep(0.05)
            for spec in specs.values():  # warm up
                result = await runner.run(spec)
                assert result.status == "up", (spec.name, result.error)
            cpu: dict[str, float] = {}
            for label, names in (("multistep", ["flow"]), ("http x3", ["h-login", "h-orders", "h-order"])):
                began = time.process_time()
                for _ in range(args.n):
                    for name in names:
                        await runner.run(specs[name])
                cpu[label] = (time.process_time() - began) / args.n
            await runner.resources.aclose()
    finally:
        server.terminate()
        server.wait(5)
    print(f"multistep check (3 steps): {cpu['multistep'] * 1000:.2f} ms CPU per check")
    print(f"the same 3 requests as 3 http checks: {cpu['http x3'] * 1000:.2f} ms CPU")
    print(f"ratio multistep / 3 http checks: {cpu['multistep'] / cpu['http x3']:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
