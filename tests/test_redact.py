"""Redaction of secrets in URLs: notifier URLs, check URLs, and free text quoting them."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prober.redact import RedactingFilter, looks_secret, redact_url, scrub, secrets_in_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("slack://T1/B2/abcdefXYZ", "slack://T1/B2/****"),
        ("json://127.0.0.1:8099/hook", "json://127.0.0.1:8099/hook"),
        ("jsons://hooks.example.com/services/hook", "jsons://hooks.example.com/services/hook"),
        ("https://user:pa55word@example.com:8443/a", "https://user:****@example.com:8443/a"),
        ("https://example.com/x?token=abc&page=2", "https://example.com/x?token=****&page=2"),
        ("https://example.com/x?api_key=k&Signature=s&sig=t&X-Auth=u&password=p", None),
        ("tgram://123456789:ABCdefGhIJKlmnoPQRsT/12345", "tgram://123456789:****/12345"),
        ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", "discord://4174216298/****"),
        ("pbul://o.gn5kj6nfhv736I7jC3cj3QLRiyhgl98b", "pbul://****"),
        ("mailto://alerts:hunter2@gmail.com", "mailto://alerts:****@gmail.com"),
        ("json://[::1]:8080/x?sig=abc", "json://[::1]:8080/x?sig=****"),
        ("https://ghp_16C7e42F292c6912E7710c838347Ae178B4a@github.com/x", "https://****@github.com/x"),
        ("https://api.example.com/v1/users/Abc12345xyz", "https://api.example.com/v1/users/Abc12345xyz"),
        ("ntfy://ntfy.sh/alerts-team", "ntfy://ntfy.sh/alerts-team"),
        ("not a url at all", "not a url at all"),
        ("", ""),
    ],
)
def test_secrets_are_masked_and_everything_else_is_kept(url: str, expected: str | None) -> None:
    redacted = redact_url(url)
    if expected is None:
        assert redacted == "https://example.com/x?api_key=****&Signature=****&sig=****&X-Auth=****&password=****"
    else:
        assert redacted == expected


def test_web_url_paths_are_masked_only_when_asked() -> None:
    url = "https://hc-ping.com/eb095278-f28d-448d-87fb-7b75c171a6aa"
    assert redact_url(url) == url
    assert redact_url(url, mask_path=True) == "https://hc-ping.com/****"


def test_host_and_port_stay_visible() -> None:
    redacted = redact_url("json://admin:Sup3rSecret@monitor.internal:9000/hooks/Zx8Kq2Lm9Pw4?apikey=Zx8")
    assert redacted == "json://admin:****@monitor.internal:9000/hooks/****?apikey=****"


@pytest.mark.parametrize("word", ["hook", "services", "v1", "alerts-team", "webhooks", "2026-11-23", "B2"])
def test_plain_words_do_not_look_secret(word: str) -> None:
    assert not looks_secret(word)


@pytest.mark.parametrize("token", ["abcdefXYZ", "JHMHI8qBe7bk2ZwO5U711o3dV_js", "eb095278-f28d-448d", "a" * 24])
def test_random_looking_strings_look_secret(token: str) -> None:
    assert looks_secret(token)


def test_scrub_removes_urls_and_their_secrets_from_free_text() -> None:
    url = "slack://T1/B2/abcdefXYZ"
    text = f"failed posting to {url}; token abcdefXYZ rejected"
    assert scrub(text, [url]) == "failed posting to slack://T1/B2/****; token **** rejected"
    assert secrets_in_url(url) == ["abcdefXYZ"]


def test_scrub_also_catches_url_decoded_secrets() -> None:
    url = "https://bob:p%40ss%2Fword@example.com/"
    assert "p@ss/word" not in scrub("login as bob with p@ss/word failed", [url])


secret_text = st.text(
    alphabet="ABCDEFGHJKMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789", min_size=10, max_size=40
).filter(lambda s: any(c.isupper() for c in s) and any(c.islower() for c in s))


@settings(max_examples=200, deadline=None)
@given(secret_text, st.sampled_from(["slack", "discord", "json", "gotify", "https"]), st.integers(1, 65535))
def test_no_secret_survives_in_any_position(secret: str, scheme: str, port: int) -> None:
    urls = [
        f"{scheme}://user:{secret}@host.example:{port}/path",
        f"{scheme}://host.example:{port}/path?token={secret}",
        f"{scheme}://host.example/a/b?key={secret}&x=1",
    ]
    if scheme != "https":
        urls.append(f"{scheme}://host.example:{port}/T1/{secret}")
    for url in urls:
        redacted = redact_url(url)
        assert secret not in redacted
        assert "host.example" in redacted
        assert scrub(f"error while posting to {url}: {secret}", [url]).count(secret) == 0


def test_redacting_filter_scrubs_registered_secrets_from_messages_arguments_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js"
    logger = logging.getLogger("test.redacting-filter")
    redactor = RedactingFilter()
    redactor.add(url)
    logger.addFilter(redactor)
    try:
        with caplog.at_level(logging.DEBUG, logger=logger.name):
            logger.debug("POST %s", "https://discord.com/api/webhooks/4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js")
            logger.info("loaded %s", url)
            try:
                raise ConnectionError(f"cannot reach {url}")
            except ConnectionError:
                logger.exception("delivery failed")
            logger.info("nothing secret here: %d", 42)
    finally:
        logger.removeFilter(redactor)
    assert "JHMHI8qBe7bk2ZwO5U711o3dV_js" not in caplog.text
    assert "discord://4174216298/****" in caplog.text
    assert "nothing secret here: 42" in caplog.text


# ---- check secrets by declared kind, and the Scrubber ------------------------------------------------

from prober.redact import MASK, Scrubber, check_secrets  # noqa: E402


def test_each_secret_kind_finds_its_values_and_leaves_plain_words() -> None:
    model = {
        "url": "https://admin:Pw9xxxxx@api.example.com/live.m3u8?token=Tok9yyyyy&page=2",
        "headers": {"Authorization": "Bearer AbC123def456", "Accept": "application/json", "X-Trace": "q1W2e3R4t5"},
        "auth": {"token": "short1", "nested": ["Whole value here"]},
        "send": '{"type": "subscribe", "token": "SendTok55abcXYZ"}',
        "steps": [{"value": "hunter22"}, {"value": None}],
    }
    found = check_secrets(
        model, {"url": "url", "headers": "headers", "auth": "value", "send": "text", "steps.value": "value"}
    )
    assert {"Pw9xxxxx", "Tok9yyyyy", "Bearer AbC123def456", "AbC123def456", "q1W2e3R4t5"} <= found
    assert {"short1", "Whole value here", "SendTok55abcXYZ", "hunter22"} <= found
    assert not {"application/json", "subscribe", "live.m3u8", "page", "type", "token"} & found


def test_a_missing_or_empty_declared_field_finds_nothing() -> None:
    assert check_secrets({"url": "https://api.example.com/health"}, {"url": "url", "headers": "headers"}) == set()


def test_the_scrubber_keeps_a_quoted_url_readable_and_masks_its_parts_elsewhere() -> None:
    url = "http://admin:Pw9xxxxx@127.0.0.1:99999/health?token=Tok9yyyyy"
    scrub = Scrubber(check_secrets({"url": url}, {"url": "url"}))
    text = scrub.text(f"could not open {url}; the password Pw9xxxxx was refused")
    assert text == ("could not open http://admin:****@127.0.0.1:99999/health?token=****; the password **** was refused")
    masked = f"http://admin:{MASK}@127.0.0.1:99999/health?token={MASK}"
    assert scrub.json({"k": [url, 1, None]}) == {"k": [masked, 1, None]}


def test_a_scrubber_without_secrets_returns_values_unchanged() -> None:
    scrub = Scrubber(["", "abc"])  # empty and too short: nothing to mask
    value = {"a": "abc def"}
    assert not scrub and scrub.json(value) is value and scrub.text("abc") == "abc"
