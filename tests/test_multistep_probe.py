"""The `multistep` check type against a real aiohttp API on loopback: log in, capture the token, use it; a token
that expires; a step that fails; a capture that finds nothing; captured values masked everywhere."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from prober.config.loader import ConfigError, load_config
from prober.results import Result
from prober.scheduling.runner import Runner


class Api:
    """POST /login {user, password} -> {"access_token", "expires_in"} and a X-Session header; GET /orders with
    Authorization: Bearer <token> -> {"count": 2, "owner": <token>} or 401 once the token expired."""

    def __init__(self, lifetime: float = 60.0) -> None:
        self.lifetime = lifetime
        self.tokens: dict[str, float] = {}
        self.orders_status = 200

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/login", self.login)
        app.router.add_get("/orders", self.orders)
        app.router.add_get("/orders/{id}", self.order)
        return app

    async def login(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body != {"user": "monitor", "password": "Sekr1t-pass"}:
            return web.json_response({"error": "bad credentials"}, status=403)
        token = secrets.token_urlsafe(16)
        self.tokens[token] = time.monotonic() + self.lifetime
        return web.json_response(
            {"access_token": token, "expires_in": self.lifetime},
            headers={"X-Session": "sess-" + token[:8]},
        )

    def _valid(self, request: web.Request) -> str | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        expires = self.tokens.get(token)
        return token if expires is not None and time.monotonic() < expires else None

    async def orders(self, request: web.Request) -> web.Response:
        token = self._valid(request)
        if token is None:
            return web.json_response({"error": "token expired or unknown"}, status=401)
        if self.orders_status != 200:
            return web.json_response({"error": "database down"}, status=self.orders_status)
        return web.Response(
            text=json.dumps({"count": 2, "owner": token, "items": [{"id": 41}, {"id": 42}]}),
            content_type="application/json",
        )

    async def order(self, request: web.Request) -> web.Response:
        if self._valid(request) is None:
            return web.json_response({"error": "token expired or unknown"}, status=401)
        return web.json_response({"id": int(request.match_info["id"]), "state": "shipped"})


@pytest.fixture
async def api() -> AsyncIterator[tuple[Api, str]]:
    target = Api()
    runner = web.AppRunner(target.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield target, f"http://127.0.0.1:{port}"
    await runner.cleanup()


def flow(base: str, *, orders_expect: str = "{status: 200, json: {count: '>= 1'}}", capture: str = "") -> str:
    return f"""\
checks:
  - name: orders-flow
    type: multistep
    steps:
      - name: login
        method: POST
        url: {base}/login
        json: {{user: monitor, password: Sekr1t-pass}}
        capture:
          token: {{json: access_token}}
          session: {{header: x-session, secret: false}}{capture}
      - name: orders
        url: {base}/orders
        headers: {{Authorization: "Bearer {{{{ steps.login.token }}}}"}}
        expect: {orders_expect}
        capture: {{first: {{json: items.0.id, secret: false}}}}
      - name: first-order
        url: "{base}/orders/{{{{ steps.orders.first }}}}"
        headers: {{Authorization: "Bearer {{{{steps.login.token}}}}"}}
        expect: {{json: {{state: shipped}}}}
"""


async def run(tmp_path: Path, text: str) -> Result:
    path = tmp_path / "flow.yaml"
    path.write_text(text)
    spec = load_config([str(path)]).checks[0]
    return await Runner().run(spec)


async def test_login_then_orders_with_the_captured_token(api: tuple[Api, str], tmp_path: Path) -> None:
    target, base = api
    result = await run(tmp_path, flow(base))
    assert result.status == "up", result.error
    assert result.metrics["steps_passed"] == 3 and result.metrics["steps_failed"] == 0
    steps = result.details["steps"]
    assert [step["name"] for step in steps] == ["login", "orders", "first-order"]
    assert all(step["ok"] and step["latency"] > 0 and step["metrics"]["status"] == 200 for step in steps)
    assert steps[2]["url"] == f"{base}/orders/41"
    assert steps[0]["captured"] == ["session", "token"]
    assert result.metrics["latency"] >= sum(step["metrics"]["latency"] for step in steps) * 0.9
    (token,) = target.tokens
    assert token not in json.dumps(result.to_json())


async def test_every_run_logs_in_again_so_an_expiring_token_is_never_reused(
    api: tuple[Api, str], tmp_path: Path
) -> None:
    target, base = api
    target.lifetime = 0.3
    first = await run(tmp_path, flow(base))
    await asyncio.sleep(0.4)  # the first token has expired by now
    second = await run(tmp_path, flow(base))
    assert first.status == second.status == "up", (first.error, second.error)
    assert len(target.tokens) == 2


async def test_a_token_that_expires_before_use_fails_the_step_that_used_it(
    api: tuple[Api, str], tmp_path: Path
) -> None:
    target, base = api
    target.lifetime = 0.0
    result = await run(tmp_path, flow(base))
    assert result.status == "down"
    assert (result.error or "").startswith("step 2 'orders': status was 401, expected 200")
    assert result.metrics["failed_step"] == "orders" and result.metrics["steps_passed"] == 1
    assert result.details["steps"][1]["ok"] is False and len(result.details["steps"]) == 2


async def test_a_failing_step_is_named_with_its_actual_value(api: tuple[Api, str], tmp_path: Path) -> None:
    target, base = api
    target.orders_status = 503
    result = await run(tmp_path, flow(base))
    assert result.status == "down"
    assert (result.error or "").startswith("step 2 'orders': status was 503, expected 200")
    assert result.metrics["status"] == 503


async def test_a_capture_that_finds_nothing_fails_its_step(api: tuple[Api, str], tmp_path: Path) -> None:
    _, base = api
    text = flow(base, capture="\n          refresh: {json: refresh_token}")
    result = await run(tmp_path, text)
    assert result.status == "down"
    assert result.error == (
        "step 1 'login': the capture 'refresh' found nothing (the JSON path 'refresh_token' is not in the response)"
    )
    regex = await run(tmp_path, flow(base, capture="\n          code: {regex: 'code=([0-9]+)'}"))
    assert "the capture 'code' found nothing (the regular expression 'code=([0-9]+)'" in (regex.error or "")


async def test_a_captured_value_echoed_in_an_error_is_masked(api: tuple[Api, str], tmp_path: Path) -> None:
    target, base = api
    result = await run(tmp_path, flow(base, orders_expect="{json: {owner: somebody}}"))
    assert result.status == "down"
    (token,) = target.tokens
    assert result.error == "step 2 'orders': json.owner was '****', expected somebody"
    assert token not in json.dumps(result.to_json())


async def test_a_refused_connection_names_the_step(tmp_path: Path, free_port: int) -> None:
    result = await run(tmp_path, flow(f"http://127.0.0.1:{free_port}"))
    assert result.status == "down"
    assert (result.error or "").startswith("step 1 'login': connection refused")


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (
            "[{name: a, url: 'http://h.test/{{ steps.b.token }}'}]",
            "steps[0] (a): {{ steps.b.token }} names no earlier step (earlier steps: none)",
        ),
        (
            "[{name: a, url: 'http://h.test/', capture: {token: {json: t}}},"
            " {name: b, url: 'http://h.test/', headers: {X: '{{ steps.a.tokn }}'}}]",
            "steps[1] (b): {{ steps.a.tokn }}: step 'a' captures no 'tokn' (it captures: token)",
        ),
        (
            "[{name: a, url: 'http://h.test/', body: '{{ token }}'}]",
            "{{ … }} must read {{ steps.<step>.<capture> }}, got '{{ token }}'",
        ),
        ("[{name: a, url: 'http://h.test/'}, {name: a, url: 'http://h.test/'}]", "the step name 'a' is used twice"),
        (
            "[{name: a, url: 'http://h.test/', capture: {t: {json: x, header: y}}}]",
            "a capture takes exactly one of 'json', 'header' or 'regex'",
        ),
        ("[{name: a, url: 'http://h.test/', expect: {latncy: '< 1s'}}]", "unknown metric 'latncy'"),
        ("[{name: a, url: 'ftp://h.test/'}]", "expected an http:// or https:// URL, got 'ftp://h.test/'"),
        ("[]", "at least 1 item"),
    ],
)
def test_bad_steps_are_refused_with_the_file_the_check_and_the_step(tmp_path: Path, steps: str, expected: str) -> None:
    path = tmp_path / "flows.yaml"
    path.write_text(f"checks:\n  - {{name: shop, type: multistep, steps: {steps}}}\n")
    with pytest.raises(ConfigError) as raised:
        load_config([str(path)])
    text = str(raised.value)
    assert "flows.yaml" in text and "shop" in text and "steps" in text
    assert expected in text
