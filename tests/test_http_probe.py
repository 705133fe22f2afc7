"""The `http` check type, run through the Runner against real aiohttp targets on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from certs_factory import make_cert, server_ssl_context
from http_targets import READINESS, Target, http_target, run_check, run_checks, unused_port

from prober.config.loader import load_config
from prober.results import Assertion, Result
from prober.scheduling.runner import Runner


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    async with http_target() as running:
        yield running


def _assertion(result: Result, metric: str) -> Assertion:
    matches = [a for a in result.assertions if a.metric == metric]
    assert len(matches) == 1, f"expected one assertion on {metric}, got {result.assertions}"
    return matches[0]


# --- status and JSON -----------------------------------------------------------------------------------


async def test_readiness_json_is_checked_field_by_field(target: Target, tmp_path: Path) -> None:
    result = await run_check(
        tmp_path,
        {
            "url": target.url("/health"),
            "expect": {
                "status": 200,
                "json": {
                    "status": "healthy",
                    "checks.database.status": "healthy",
                    "checks.database.latency_ms": "< 100",
                },
            },
        },
    )
    assert result.status == "up", result.error
    assert result.error is None
    assert result.metrics["status"] == 200
    assert _assertion(result, "json.checks.database.status").actual == "healthy"
    assert _assertion(result, "json.checks.database.latency_ms").actual == 5
    assert all(a.ok and a.level == "expect" for a in result.assertions)


async def test_a_json_field_with_the_wrong_value_is_down_naming_path_and_actual_value(
    target: Target, tmp_path: Path
) -> None:
    result = await run_check(
        tmp_path, {"url": target.url("/sick"), "expect": {"json": {"checks.database.status": "healthy"}}}
    )
    assert result.status == "down"
    assert result.error == "json.checks.database.status was 'unhealthy', expected healthy"
    failed = _assertion(result, "json.checks.database.status")
    assert (failed.ok, failed.actual, failed.condition) == (False, "unhealthy", "healthy")


async def test_a_missing_json_path_is_down_saying_it_is_missing(target: Target, tmp_path: Path) -> None:
    result = await run_check(
        tmp_path, {"url": target.url("/health"), "expect": {"json": {"checks.cache.status": "ok"}}}
    )
    assert result.status == "down"
    assert result.error == "json.checks.cache.status was missing, expected ok"


async def test_a_503_is_down_under_the_default_2xx_expectation(target: Target, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": target.url("/unavailable")})
    assert result.status == "down"
    assert result.metrics["status"] == 503
    assert result.error == "status was 503, expected 2xx"
    assert _assertion(result, "status").condition == "2xx"


async def test_an_own_status_expectation_replaces_the_default(target: Target, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": target.url("/unavailable"), "expect": {"status": [503, 502]}})
    assert result.status == "up", result.error
    assert [a.metric for a in result.assertions] == ["status"]


async def test_a_non_json_body_under_a_json_condition_is_down_saying_the_body_is_not_json(
    target: Target, tmp_path: Path
) -> None:
    result = await run_check(tmp_path, {"url": target.url("/text"), "expect": {"json": {"status": "healthy"}}})
    assert result.status == "down"
    assert result.error is not None
    assert "not JSON" in result.error
    assert result.metrics["status"] == 200


async def test_a_gzip_body_is_decompressed_before_json_conditions(target: Target, tmp_path: Path) -> None:
    result = await run_check(
        tmp_path, {"url": target.url("/gzip"), "expect": {"json": {"checks.database.status": "healthy"}}}
    )
    assert result.status == "up", result.error
    assert result.metrics["body_size"] == len(__import__("json").dumps(READINESS))


async def test_a_failed_warn_with_every_expect_passing_is_degraded(target: Target, tmp_path: Path) -> None:
    result = await run_check(
        tmp_path, {"url": target.url("/health"), "expect": {"latency": "< 10s"}, "warn": {"latency": "< 0ms"}}
    )
    assert result.status == "degraded"
    assert result.error is not None and result.error.startswith("warning: latency was ")
    assert result.error.endswith("expected < 0ms")
    warn = [a for a in result.assertions if a.level == "warn"]
    assert len(warn) == 1 and not warn[0].ok


# --- what is sent ---------------------------------------------------------------------------------------


async def test_method_headers_and_text_body_are_sent(target: Target, tmp_path: Path) -> None:
    result = await run_check(
        tmp_path,
        {
            "url": target.url("/echo"),
            "method": "put",
            "headers": {"X-Token": "s3cret", "Accept": "application/json"},
            "body": "hello prober",
            "expect": {"json": {"method": "PUT", "body": "hello prober", "headers.X-Token": "s3cret"}},
        },
    )
    assert result.status == "up", result.error
    (seen,) = target.requests
    assert seen["method"] == "PUT"
    assert seen["headers"]["X-Token"] == "s3cret"
    assert seen["headers"]["Accept"] == "application/json"
    assert seen["body"] == "hello prober"


async def test_a_json_body_is_sent_as_json(target: Target, tmp_path: Path) -> None:
    result = await run_check(
        tmp_path,
        {
            "url": target.url("/echo"),
            "method": "POST",
            "json": {"query": "status", "items": [1, 2]},
            "expect": {"json": {"json.query": "status", "json.items.1": 2}},
        },
    )
    assert result.status == "up", result.error
    (seen,) = target.requests
    assert seen["method"] == "POST"
    assert seen["headers"]["Content-Type"].startswith("application/json")


async def test_head_requests_read_no_body(target: Target, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": target.url("/health"), "method": "HEAD"})
    assert result.status == "up", result.error
    assert result.metrics["body_size"] == 0
    assert target.requests[0]["method"] == "HEAD"


async def test_every_run_opens_a_fresh_connection(target: Target, tmp_path: Path) -> None:
    (spec,) = load_config(
        [_write(tmp_path, f"checks: [{{name: twice, type: http, url: '{target.url('/health')}'}}]")], env={}
    ).checks
    runner = Runner()
    try:
        first = await runner.run(spec)
        second = await runner.run(spec)
    finally:
        await runner.resources.aclose()
    assert first.status == second.status == "up"
    peers = [tuple(request["peer"]) for request in target.requests]
    assert len(peers) == 2 and peers[0] != peers[1], "the second run reused the first run's connection"
    assert second.metrics["connect"] > 0


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "checks.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- redirects ------------------------------------------------------------------------------------------


async def test_redirects_are_followed_and_counted(target: Target, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": target.url("/redirect/3"), "expect": {"body_contains": "landed"}})
    assert result.status == "up", result.error
    assert result.metrics["redirects"] == 3
    assert result.metrics["status"] == 200
    assert result.details["final_url"] == target.url("/redirect/0")


async def test_follow_redirects_false_reports_the_3xx_itself(target: Target, tmp_path: Path) -> None:
    kept, default = await run_checks(
        tmp_path,
        [
            {
                "name": "kept",
                "type": "http",
                "url": target.url("/found"),
                "follow_redirects": False,
                "expect": {"status": 302},
            },
            {"name": "default", "type": "http", "url": target.url("/found"), "follow_redirects": False},
        ],
    )
    assert kept.status == "up", kept.error
    assert kept.metrics["status"] == 302
    assert kept.metrics["redirects"] == 0
    assert default.status == "down"
    assert default.error == "status was 302, expected 2xx"
    assert [r["path"] for r in target.requests] == ["/found", "/found"], "the redirect must not be followed"


async def test_a_redirect_loop_is_down_with_too_many_redirects(target: Target, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": target.url("/loop"), "max_redirects": 5})
    assert result.status == "down"
    assert result.error is not None and "too many redirects" in result.error
    assert len(target.requests) <= 6  # the first request and at most five redirects


async def test_exactly_max_redirects_redirects_are_followed(target: Target, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": target.url("/redirect/3"), "max_redirects": 3})
    assert result.status == "up", result.error
    assert result.metrics["redirects"] == 3


async def test_max_redirects_zero_follows_no_redirect_and_never_loops(target: Target, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": target.url("/loop"), "max_redirects": 0, "timeout": "1s"})
    assert result.status == "down"
    assert result.error is not None and "too many redirects" in result.error
    assert len(target.requests) == 1


# --- body, headers --------------------------------------------------------------------------------------


async def test_body_contains_and_body_matches_pass_on_the_page(target: Target, tmp_path: Path) -> None:
    result = await run_check(
        tmp_path,
        {
            "url": target.url("/html"),
            "expect": {"body_contains": "<title>Prober test page</title>", "body_matches": r"Order #\d{5} confirmed"},
        },
    )
    assert result.status == "up", result.error
    assert {a.metric: a.ok for a in result.assertions} == {"status": True, "body_contains": True, "body_matches": True}


async def test_body_contains_missing_text_is_down_saying_so(target: Target, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": target.url("/html"), "expect": {"body_contains": "Sold out"}})
    assert result.status == "down"
    assert result.error == "body does not contain 'Sold out'"


async def test_body_matches_failure_is_down_showing_the_pattern(target: Target, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": target.url("/html"), "expect": {"body_matches": r"Order #\d{6}\b"}})
    assert result.status == "down"
    assert result.error == r"body does not match /Order #\d{6}\b/"


async def test_body_contains_any_of_a_list(target: Target, tmp_path: Path) -> None:
    result = await run_check(
        tmp_path, {"url": target.url("/html"), "expect": {"body_contains": ["Sold out", "Welcome"]}}
    )
    assert result.status == "up", result.error


async def test_header_assertions_ignore_the_case_of_header_names(target: Target, tmp_path: Path) -> None:
    result = await run_check(
        tmp_path,
        {"url": target.url("/headers"), "expect": {"headers": {"x-custom": "abc", "CACHE-CONTROL": "no-store"}}},
    )
    assert result.status == "up", result.error
    assert _assertion(result, "headers.x-custom").actual == "abc"


async def test_a_wrong_or_missing_header_is_down_with_the_actual_value(target: Target, tmp_path: Path) -> None:
    wrong, missing = await run_checks(
        tmp_path,
        [
            {
                "name": "wrong",
                "type": "http",
                "url": target.url("/headers"),
                "expect": {"headers": {"X-Custom": "xyz"}},
            },
            {
                "name": "missing",
                "type": "http",
                "url": target.url("/headers"),
                "expect": {"headers": {"X-Request-Id": "!= ''"}},
            },
        ],
    )
    assert wrong.status == "down"
    assert wrong.error == "headers.X-Custom was 'abc', expected xyz"
    assert missing.status == "down"
    assert missing.error == "headers.X-Request-Id was missing, expected != ''"


async def test_the_body_is_read_up_to_max_body_and_no_further(target: Target, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": target.url("/big?mb=8"), "max_body": 100_000})
    assert result.status == "up", result.error
    assert result.metrics["body_size"] == 100_000
    assert result.details["body_truncated_at"] == 100_000


# --- timings --------------------------------------------------------------------------------------------


async def test_phase_timings_are_present_non_negative_and_ttfb_is_within_latency(
    target: Target, tmp_path: Path
) -> None:
    result = await run_check(tmp_path, {"url": target.url("/health")})
    assert result.status == "up", result.error
    phases = {key: result.metrics[key] for key in ("latency", "dns", "connect", "ttfb", "transfer")}
    assert all(isinstance(value, float) and value >= 0 for value in phases.values()), phases
    assert phases["ttfb"] <= phases["latency"]
    assert phases["connect"] <= phases["ttfb"]
    assert phases["transfer"] <= phases["latency"]
    assert "tls" not in result.metrics, "plain http has no TLS phase"
    assert phases["latency"] <= result.duration_ms / 1000


# --- TLS ------------------------------------------------------------------------------------------------


@pytest.fixture
async def https_target(tmp_path: Path) -> AsyncIterator[Target]:
    files = make_cert("good", tmp_path / "certs")  # issued by a throwaway trustme CA the system does not trust
    async with http_target(server_ssl_context(files)) as running:
        yield running


async def test_verify_tls_rejects_an_untrusted_certificate_and_false_accepts_it(
    https_target: Target, tmp_path: Path
) -> None:
    verified, unverified = await run_checks(
        tmp_path,
        [
            {"name": "verified", "type": "http", "url": https_target.url("/health")},
            {"name": "unverified", "type": "http", "url": https_target.url("/health"), "verify_tls": False},
        ],
    )
    assert verified.status == "down"
    assert verified.error is not None and verified.error.startswith("TLS certificate rejected")
    assert unverified.status == "up", unverified.error
    assert unverified.metrics["status"] == 200
    for key in ("latency", "dns", "connect", "tls", "ttfb", "transfer"):
        assert unverified.metrics[key] >= 0, key
    assert unverified.metrics["tls"] > 0
    assert unverified.metrics["ttfb"] <= unverified.metrics["latency"]


async def test_https_results_carry_cert_days_remaining(https_target: Target, tmp_path: Path) -> None:
    small, large = await run_checks(
        tmp_path,
        [
            {"name": "small", "type": "http", "url": https_target.url("/health"), "verify_tls": False},
            {"name": "large", "type": "http", "url": https_target.url("/big?mb=1"), "verify_tls": False},
        ],
    )
    for result in (small, large):
        assert result.status == "up", result.error
        assert 89 < result.metrics.get("cert_days_remaining", -1) <= 90, f"{result.check}: {result.metrics}"


async def test_cert_days_remaining_can_be_expected(https_target: Target, tmp_path: Path) -> None:
    result = await run_check(
        tmp_path,
        {"url": https_target.url("/health"), "verify_tls": False, "expect": {"cert_days_remaining": ">= 100"}},
    )
    assert result.status == "down"
    assert result.error is not None
    assert re.fullmatch(r"cert_days_remaining was (89|90)(\.\d+)?, expected >= 100", result.error), result.error


# --- failures and retries -------------------------------------------------------------------------------


async def test_connection_refused_is_down_saying_so(tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": f"http://127.0.0.1:{unused_port()}/"})
    assert result.status == "down"
    assert re.fullmatch(r"connection refused by 127\.0\.0\.1:\d+", result.error or ""), result.error


async def test_an_authorization_header_wins_over_credentials_in_the_url(target: Target, tmp_path: Path) -> None:
    port = target.base_url.rsplit(":", 1)[1]
    url = f"http://user:pw@127.0.0.1:{port}/echo"
    result = await run_check(tmp_path, {"url": url, "headers": {"authorization": "Bearer abc"}})
    assert result.status == "up", result.error
    assert target.requests[-1]["headers"]["Authorization"] == "Bearer abc"
    plain = await run_check(tmp_path, {"url": url})
    assert plain.status == "up", plain.error
    assert target.requests[-1]["headers"]["Authorization"].startswith("Basic ")


async def test_a_slow_body_and_a_slow_server_are_down_at_the_timeout(target: Target, tmp_path: Path) -> None:
    slow_body, slow_headers, healthy = await run_checks(
        tmp_path,
        [
            {"name": "slow-body", "type": "http", "url": target.url("/slow-body"), "timeout": "600ms"},
            {"name": "slow-headers", "type": "http", "url": target.url("/slow-headers"), "timeout": "600ms"},
            {"name": "healthy", "type": "http", "url": target.url("/health"), "timeout": "600ms"},
        ],
    )
    for result in (slow_body, slow_headers):
        assert result.status == "down"
        assert result.error == "timed out after 600ms"
        assert 590 <= result.duration_ms < 1500
    assert healthy.status == "up"
    assert healthy.duration_ms < 500, "a slow target held up another check"


async def test_retries_turn_early_failures_into_up_and_count_attempts(target: Target, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": target.url("/flaky/a?fail=2"), "retries": 2})
    assert result.status == "up", result.error
    assert result.details["attempts"] == 3
    assert len(target.requests) == 3


async def test_retries_exhausted_is_down_with_the_last_error(target: Target, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": target.url("/flaky/b?fail=5"), "retries": 1})
    assert result.status == "down"
    assert result.error == "status was 503, expected 2xx"
    assert result.details["attempts"] == 2
    assert len(target.requests) == 2


async def test_no_retries_means_one_request_and_no_attempt_count(target: Target, tmp_path: Path) -> None:
    result = await run_check(tmp_path, {"url": target.url("/flaky/c?fail=1")})
    assert result.status == "down"
    assert "attempts" not in result.details
    assert len(target.requests) == 1
