"""Secrets stop at one wall: whatever library wrote an error (aiohttp's "could not open http://user:…",
Playwright's navigation error, a websocket echo), no planted secret leaves a check run, a log line or a
notification. Each type fails in each way it can (refused, bad host, bad port, TLS failure, timeout,
browser failure), in-process and quickly, on loopback; `test_secrets_e2e.py` greps the real processes."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from ws_servers import raw_server, refused_port

from prober.alerts import Transition
from prober.config.loader import ConfigError, load_config
from prober.notify.message import format_message
from prober.redact import LOG_SECRETS
from prober.scheduling.runner import Runner

PASSWORD = "PlantedPw42x"
QUERY_TOKEN = "PlantedTok42"
HEADER_TOKEN = "HdrSecret99q"
AUTH_TOKEN = "SioAuth77zz"
SEND_TOKEN = "SendTok55abcXYZ"
FILL_VALUE = "FillPass31q"
SECRETS = (PASSWORD, QUERY_TOKEN, HEADER_TOKEN, AUTH_TOKEN, SEND_TOKEN, FILL_VALUE)


@asynccontextmanager
async def loopback_servers() -> AsyncIterator[dict[str, str]]:
    """host:port of a refused port, a silent server (timeout) and a server answering garbage (TLS failure)."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        await asyncio.sleep(30)
        writer.close()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n" * 4)
        await writer.drain()
        writer.close()

    quiet = await asyncio.start_server(silent, "127.0.0.1", 0)
    noisy = await asyncio.start_server(garbage, "127.0.0.1", 0)
    try:
        yield {
            "refused": f"127.0.0.1:{refused_port()}",
            "bad_port": "127.0.0.1:99999",
            "bad_host": "[zz::1]",
            "timeout": f"127.0.0.1:{quiet.sockets[0].getsockname()[1]}",
            "tls_failure": f"127.0.0.1:{noisy.sockets[0].getsockname()[1]}",
        }
    finally:
        for server in (quiet, noisy):
            server.close()


def checks_for(mode: str, where: str) -> list[dict[str, Any]]:
    """One check of every type that can fail this way, each carrying every secret its type declares."""
    web = "https" if mode == "tls_failure" else "http"
    ws = "wss" if mode == "tls_failure" else "ws"
    userinfo = f"admin:{PASSWORD}@"
    auth_header = {"Authorization": f"Bearer {HEADER_TOKEN}"}
    common = {"timeout": "1s" if mode == "timeout" else "3s"}
    checks: list[dict[str, Any]] = [
        {"name": f"http-{mode}", "type": "http", "url": f"{web}://{userinfo}{where}/health?token={QUERY_TOKEN}",
         "headers": auth_header, "body": f"token={SEND_TOKEN}", "method": "POST"},
        {"name": f"hls-{mode}", "type": "hls", "url": f"{web}://{userinfo}{where}/live.m3u8?token={QUERY_TOKEN}",
         "headers": auth_header},
    ]  # fmt: skip
    if mode not in ("bad_port", "bad_host"):  # a websocket URL with either is refused at load, redacted
        checks += [
            {"name": f"ws-{mode}", "type": "websocket", "url": f"{ws}://{userinfo}{where}/?token={QUERY_TOKEN}",
             "headers": auth_header, "send": {"type": "auth", "token": SEND_TOKEN}},
            {"name": f"sio-{mode}", "type": "websocket", "protocol": "socketio", "url": f"{ws}://{where}/",
             "auth": {"token": AUTH_TOKEN}},
        ]  # fmt: skip
    if mode in ("refused", "timeout", "tls_failure"):
        host, _, port = where.rpartition(":")
        checks.append({"name": f"tls-{mode}", "type": "tls", "host": host, "port": int(port)})
    return [{**common, **check} for check in checks]


def run_all(tmp_path: Path, checks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Path]:
    path = tmp_path / "checks.yaml"
    path.write_text(yaml.safe_dump({"checks": checks}))
    config = load_config([path])
    artifacts = tmp_path / "artifacts"

    async def main() -> list[dict[str, Any]]:
        runner = Runner(artifacts_dir=artifacts)
        try:
            results = await asyncio.gather(*(runner.run(spec) for spec in config.checks))
        finally:
            await runner.resources.aclose()
        return [result.to_json() for result in results]

    return asyncio.run(main()), artifacts


def assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{where} leaks {secret!r}: {text[:2000]}"


@pytest.fixture
def servers() -> Iterator[dict[str, str]]:
    loop = asyncio.new_event_loop()
    context = loopback_servers()
    try:
        yield loop.run_until_complete(context.__aenter__())
    finally:
        loop.run_until_complete(context.__aexit__(None, None, None))
        loop.close()


RUNTIME_MODES = ("refused", "timeout", "tls_failure")
LOAD_MODES = ("bad_port", "bad_host")  # refused by the URL validator before anything runs


@pytest.mark.parametrize("mode", RUNTIME_MODES)
@pytest.mark.slow
def test_no_failure_of_any_type_lets_a_secret_out(
    mode: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, servers: dict[str, str]
) -> None:
    caplog.set_level(logging.DEBUG)
    results, _ = run_all(tmp_path, checks_for(mode, servers[mode]))
    assert {result["status"] for result in results} == {"down"}, results
    for result in results:
        assert result["error"], result
        assert_clean(json.dumps(result), f"{result['check']} result")
    assert_clean(caplog.text, "the log")
    assert_clean("\n".join(str(record.__dict__) for record in caplog.records), "the log records")
    urls = [result["error"] for result in results if "://" in result["error"]]
    for error in urls:  # a quoted URL stays readable, with its secrets masked
        assert "****" in error


@pytest.mark.parametrize("mode", LOAD_MODES)
def test_a_url_refused_at_load_is_named_with_its_secrets_masked(
    mode: str, tmp_path: Path, servers: dict[str, str]
) -> None:
    path = tmp_path / "checks.yaml"
    path.write_text(yaml.safe_dump({"checks": checks_for(mode, servers[mode])}))
    with pytest.raises(ConfigError) as caught:
        load_config([path])
    text = str(caught.value)
    assert_clean(text, "the validation error")
    masked = f"http://admin:****@{servers[mode]}/health?token=****"
    assert f"check 'http-{mode}': field 'url': invalid URL '{masked}'" in text


def test_the_healthy_twin_still_shows_what_is_not_secret(tmp_path: Path, servers: dict[str, str]) -> None:
    checks = checks_for("refused", servers["refused"])
    bare = {**checks[1], "name": "hls-no-header", "headers": {}}  # the URL's own user:password is then sent
    results, _ = run_all(tmp_path, [*checks, bare])
    by_name = {result["check"]: result for result in results}
    assert by_name["http-refused"]["error"] == f"connection refused by {servers['refused']}"
    hls = f"cannot fetch the playlist http://{servers['refused']}/live.m3u8?token=****"
    assert by_name["hls-refused"]["error"].startswith(hls)
    assert by_name["hls-no-header"]["error"].startswith(hls.replace("http://", "http://admin:****@"))


async def test_a_websocket_send_token_echoed_back_is_scrubbed_and_other_text_is_kept(tmp_path: Path) -> None:
    async with raw_server() as server:
        path = tmp_path / "checks.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "checks": [
                        {"name": "echo", "type": "websocket", "url": server.url("/echo"),
                         "send": json.dumps({"hello": "world", "token": SEND_TOKEN}),
                         "expect": {"message_contains": "goodbye"}},
                    ]
                }
            )
        )  # fmt: skip
        config = load_config([path])
        runner = Runner(artifacts_dir=tmp_path)
        try:
            result = await runner.run(config.checks[0])
        finally:
            await runner.resources.aclose()
    text = json.dumps(result.to_json())
    assert result.status == "down"
    assert SEND_TOKEN not in text
    assert '\\"hello\\": \\"world\\"' in json.dumps(result.metrics["message"])  # the rest of the message stays


def test_a_notification_is_scrubbed_of_every_secret_the_process_knows() -> None:
    from datetime import UTC, datetime

    LOG_SECRETS.add_secrets([HEADER_TOKEN])
    now = datetime.now(UTC)
    transition = Transition(
        kind="opened",
        check="api",
        incident_id="api@1",
        at=now,
        started_at=now,
        locations=("default",),
        error=f"the server said: bad token {HEADER_TOKEN}",
    )
    message = format_message(transition)
    assert HEADER_TOKEN not in message.body and "bad token ****" in message.body


def test_the_log_filter_scrubs_messages_arguments_fields_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    LOG_SECRETS.add_secrets([FILL_VALUE])
    logger = logging.getLogger("some.library")
    handler = logging.Handler()
    seen: list[logging.LogRecord] = []
    handler.emit = seen.append  # type: ignore[method-assign,assignment]
    handler.addFilter(LOG_SECRETS)
    logger.addHandler(handler)
    try:
        logger.warning("typed %s", FILL_VALUE, extra={"fields": {"value": FILL_VALUE, "ok": "visible"}})
        try:
            raise RuntimeError(f"failed with {FILL_VALUE}")
        except RuntimeError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    assert seen[0].getMessage() == "typed ****"
    assert seen[0].fields == {"value": "****", "ok": "visible"}  # type: ignore[attr-defined]
    assert seen[1].exc_text and FILL_VALUE not in seen[1].exc_text and "failed with ****" in seen[1].exc_text


def test_a_hub_scrubs_secrets_of_checks_only_its_agents_run_and_its_ingest_tokens(tmp_path: Path) -> None:
    from prober.daemon.service import Daemon, DaemonOptions

    hub_only = "AgentOnlyPw73k"
    ingest = "HubIngestTok19x"
    path = tmp_path / "checks.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "ingest": {"tokens": {"eu": ingest}},
                "checks": [{"name": "eu-api", "type": "http", "url": f"http://a:{hub_only}@127.0.0.1:1/",
                            "locations": ["eu"]}],
            }
        )
    )  # fmt: skip
    line = f"ingest from eu: could not open http://a:{hub_only}@127.0.0.1:1/ with {ingest}"
    assert LOG_SECRETS.text(line) == line  # not known before the configuration is loaded
    Daemon(DaemonOptions(paths=[str(path)], db=tmp_path / "p.db"))._use_config(load_config([path]))
    assert LOG_SECRETS.text(line) == "ingest from eu: could not open http://a:****@127.0.0.1:1/ with ****"
