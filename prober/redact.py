"""Redacting secrets from URLs before they reach a log line, a result, the database or the API.

One rule decides what in a URL is secret (`_redact`); everything that shows a URL uses it: `redact_url`
(check targets in the API, the check page, probe messages, notifier lanes), `secrets_in_url` (the
same parts as raw strings, for scrubbing free text) and through them the runner's Scrubber (results),
the log filter (logs) and the notifier (notifications). It masks, with `****`:

- the password in the userinfo, and a user name that looks like a token;
- the values of query parameters named like a secret (token, key, secret, password, signature, sig,
  auth, hmac, hdnts, ...);
- for web URLs (http, https, ws, wss): a path segment or query value that looks random (`looks_random`:
  16+ characters mixing lower case, upper case and digits with no words in it, such as
  `aZ3kP9qW2xL7mN4vB8cD` or a JWT). Words joined by `-`, `_` or `.` (`main-stage-live-commerce`),
  file names, dates, numbers, lower-case hex and UUIDs stay visible: they name the stream or resource
  being checked, and on-call must be able to tell which one broke;
- for Apprise notifier URLs (`slack://T1/B2/abcdefXYZ`, `tgram://bot:token/chat`): the path segments and
  the "port" that look like secrets (`looks_secret`: 8+ characters of two character classes, or 24+),
  since those schemes carry their tokens there; and an Apprise "host" that is plainly a token.

Scheme, host and a numeric port always stay visible, and a URL is never masked whole when masking its
parts suffices.

`secrets_in_url` lists the raw substrings that `redact_url` masks, so `scrub` can clean them out of
free text (an exception message that quotes the URL).

`RedactingFilter` is a logging filter that scrubs the secrets of registered URLs, and registered plain
secret values, out of every record it sees (libraries such as Apprise log request URLs at DEBUG level
with the token in the path). `LOG_SECRETS` is the process's one instance: the runner registers every
check's secrets in it before the check runs, the notifier its URLs; `prober.daemon.logs` attaches it to the
handlers, and the notifier scrubs its message text with it.

`check_secrets` lists the secret values of one check definition, from the fields its probe declares in
`secrets` (see `prober.probes.registry`); `Scrubber` masks a fixed set of secret values in text and in
JSON-like values (the runner scrubs every Result with its check's secrets before the Result leaves).

It must never raise on odd input, never shorten or otherwise change what it does not mask, and never
log: it is called from the logging paths themselves.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote

__all__ = [
    "LOG_SECRETS",
    "MASK",
    "MIN_SECRET",
    "RedactingFilter",
    "Scrubber",
    "check_secrets",
    "config_secrets",
    "looks_random",
    "looks_secret",
    "redact_url",
    "scrub",
    "secrets_in_url",
]

MASK = "****"
WEB_SCHEMES = frozenset({"http", "https", "ws", "wss"})

_SECRET_NAME_PARTS = (
    "token",
    "secret",
    "passw",
    "pwd",
    "apikey",
    "api_key",
    "auth",
    "credential",
    "signature",
    "hmac",
    "hdnts",
    "hdnea",
)
_SECRET_NAME_WORDS = frozenset({"key", "sig", "pass", "pw", "code", "session", "access_key", "private"})
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>.*)$", re.S)
_TOKENISH = re.compile(r"^[A-Za-z0-9_\-=+.~%]+$")
_SECRET_HEADER = re.compile(r"auth|token|secret|passw|key|cookie|session|signature|credential", re.I)
_WORDS = re.compile(r"[\s&=,;:\"'{}\[\]]+")
MIN_SECRET = 6
"""Shorter values are not masked in free text: masking `on` or `1234` would mangle every message."""


def _is_secret_name(name: str) -> bool:
    lowered = unquote(name).lower().lstrip("-:_")
    if any(part in lowered for part in _SECRET_NAME_PARTS):
        return True
    return any(word in _SECRET_NAME_WORDS for word in re.split(r"[^a-z0-9]+", lowered)) or lowered in _SECRET_NAME_WORDS


def looks_secret(text: str) -> bool:
    """A heuristic for tokens: 8+ characters mixing two of lower case, upper case and digits (with no
    spaces), or 24+ characters of token alphabet. Plain words (`hook`, `services`, `v1`) are not secrets.
    """
    value = unquote(text)
    if len(value) < 8 or not _TOKENISH.match(text):
        return False
    classes = sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
        )
    )
    return classes >= 2 or len(value) >= 24


_RUNS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
MIN_RANDOM = 16
"""Shorter path segments are names or ids (`Abc12345xyz`, a video id), not tokens worth hiding."""


def looks_random(text: str) -> bool:
    """A web URL's path segment or query value that is a token rather than a name: 16+ characters, lower
    case, upper case and digits all present, and no words in it (its runs of one kind of character,
    `Camel` `Case` `2024`, are shorter than 3 on average). `main-stage-live-commerce`, `Camera01-Lobby-1080p`,
    `2026-06-01`, `5f4dcc3b5aa765d6` and UUIDs are names; `aZ3kP9qW2xL7mN4vB8cD` and JWTs are not.
    """
    value = unquote(text)
    if len(value) < MIN_RANDOM or any(c.isspace() for c in value):
        return False
    if not (any(c.islower() for c in value) and any(c.isupper() for c in value) and any(c.isdigit() for c in value)):
        return False
    return len(_RUNS.findall(value)) * 3 > len(value)


def _host_looks_secret(host: str) -> bool:
    """Some Apprise schemes carry a token where the host goes (`pbul://o.AbCd...`). Real host names
    are not mixed case and not 24+ characters without a dot, so only those are masked.
    """
    if not _TOKENISH.match(host):
        return False
    mixed_case = any(c.islower() for c in host) and any(c.isupper() for c in host)
    return (mixed_case and len(host) >= 8) or (len(host) >= 24 and "." not in host)


def _split_netloc(netloc: str) -> tuple[str | None, str | None, str, str | None]:
    """(user, password, host, port) without any decoding; port is whatever follows the last ':'."""
    user = password = None
    hostport = netloc
    if "@" in netloc:
        userinfo, hostport = netloc.rsplit("@", 1)
        user, sep, pw = userinfo.partition(":")
        password = pw if sep else None
    if hostport.startswith("["):  # IPv6 literal
        end = hostport.find("]")
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        return user, password, host, rest[1:] if rest.startswith(":") else None
    host, sep, port = hostport.rpartition(":")
    if not sep:
        return user, password, hostport, None
    return user, password, host, port


def _redact(url: str, mask_path: bool | None, found: list[str]) -> str:
    match = _URL.match(url)
    if not match:
        return url
    scheme, rest = match.group("scheme"), match.group("rest")
    web = scheme.lower() in WEB_SCHEMES

    def mask(value: str) -> str:
        if value:
            found.append(value)
        return MASK

    rest, hash_sign, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")

    user, password, host, port = _split_netloc(netloc)
    new_netloc = ""
    if user is not None:
        new_netloc = mask(user) if looks_secret(user) else user
        if password is not None:
            new_netloc += ":" + (mask(password) if password else "")
        new_netloc += "@"
    new_netloc += mask(host) if not web and _host_looks_secret(host) else host
    if port is not None:
        new_netloc += ":" + (port if port.isdigit() or not port else mask(port))

    # Apprise schemes (and `mask_path=True`) carry tokens in the path: the looser rule; web paths name pages.
    segment_is_secret: Callable[[str], bool] | None = looks_secret if mask_path else None
    if mask_path is None:
        segment_is_secret = looks_random if web else looks_secret
    if segment_is_secret is not None and path:
        path = "/".join(mask(segment) if segment_is_secret(segment) else segment for segment in path.split("/"))

    if query:
        pairs = []
        for pair in query.split("&"):
            name, equals, value = pair.partition("=")
            value_is_secret = looks_random(value) if web else looks_secret(value)
            if equals and value and (_is_secret_name(name) or value_is_secret):
                value = mask(value)
            pairs.append(name + equals + value)
        query = "&".join(pairs)

    if fragment and looks_secret(fragment):
        fragment = mask(fragment)

    return f"{scheme}://{new_netloc}{slash}{path}{question}{query}{hash_sign}{fragment}"


def redact_url(url: str, *, mask_path: bool | None = None) -> str:
    """The URL with its secrets replaced by `****` (see the module docstring).

    `mask_path=True` masks path segments by the looser Apprise rule (`looks_secret`) whatever the scheme,
    `False` masks none; by default web URLs mask random-looking segments (`looks_random`) and other schemes
    use the Apprise rule. A string that is not a URL is returned as is.
    """
    try:
        return _redact(url, mask_path, [])
    except Exception:  # redaction must never take a log line down with it
        return MASK


def secrets_in_url(url: str, *, mask_path: bool | None = None) -> list[str]:
    """The raw substrings of `url` that `redact_url` masks (longest first), for `scrub`."""
    found: list[str] = []
    try:
        _redact(url, mask_path, found)
    except Exception:
        return [url]
    return sorted({item for item in found if item}, key=len, reverse=True)


def scrub(text: str, urls: Iterable[str]) -> str:
    """`text` with every full URL in `urls` replaced by its redacted form and every secret of those URLs
    (also URL-decoded) replaced by `****`: for error messages that might quote a notifier URL.
    """
    for url in urls:
        if not url:
            continue
        text = text.replace(url, redact_url(url))
        for secret in secrets_in_url(url):
            for form in {secret, unquote(secret)}:
                if len(form) >= 4:
                    text = text.replace(form, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Scrubs the secrets of registered URLs from log records (message, arguments and traceback).

    Attach it to a logger (`logging.getLogger("apprise").addFilter(f)`) or to a handler. It never drops
    a record. Thread-safe: `add` may be called while other threads log.
    """

    def __init__(self) -> None:
        super().__init__()
        self._urls: tuple[str, ...] = ()
        self._needles: tuple[str, ...] = ()
        self._plain: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, url: str) -> None:
        """Register a URL whose secrets (and whole text) must not appear in a log record."""
        if not url or url in self._urls:
            return
        needles = {url, *secrets_in_url(url)}
        needles |= {unquote(n) for n in needles}
        with self._lock:
            self._urls = (*self._urls, url)
            self._needles = tuple(sorted({*self._needles, *(n for n in needles if len(n) >= 4)}, key=len, reverse=True))

    def add_secrets(self, values: Iterable[str]) -> None:
        """Register plain secret values (a header token, a form value) that must not appear in a record."""
        values = [value for value in values if value and len(value) >= MIN_SECRET]
        for url in (value for value in values if _URL.match(value)):
            self.add(url)  # shown redacted (`http://admin:****@host/`), not as one `****`
        new = {value for value in values if not _URL.match(value)} - set(self._plain)
        if not new:
            return
        with self._lock:
            self._plain = tuple(sorted({*self._plain, *new}, key=len, reverse=True))
            self._needles = tuple(sorted({*self._needles, *new}, key=len, reverse=True))

    def text(self, value: str) -> str:
        """`value` with every registered URL and secret masked (for text that is not a log record)."""
        needles = self._needles
        if not needles or not any(needle in value for needle in needles):
            return value
        value = scrub(value, self._urls)
        for secret in self._plain:
            value = value.replace(secret, MASK)
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        needles = self._needles
        if not needles:
            return True
        try:
            message = record.getMessage()
            if any(needle in message for needle in needles):
                record.msg = self.text(message)
                record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text and any(needle in record.exc_text for needle in needles):
                record.exc_text = self.text(record.exc_text)
            fields = getattr(record, "fields", None)
            if isinstance(fields, dict):
                record.fields = {key: _scrub_json(self.text, item) for key, item in fields.items()}
        except Exception:  # a log line must never fail because of redaction
            record.msg, record.args = MASK, None
        return True


def _scrub_json(text: Any, value: Any) -> Any:
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {text(str(key)): _scrub_json(text, item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_json(text, item) for item in value]
    return value


LOG_SECRETS = RedactingFilter()
"""The process's log filter (see the module docstring)."""


class Scrubber:
    """Masks a fixed set of secret strings in text and in JSON-like values. Never raises on odd input."""

    def __init__(self, secrets: Iterable[str]) -> None:
        unique = {secret for secret in secrets if secret and len(secret) >= MIN_SECRET}
        self._secrets = tuple(sorted(unique, key=len, reverse=True))
        self._urls = tuple(secret for secret in self._secrets if _URL.match(secret))
        # A URL is shown redacted, never replaced whole by `****`: its parts are in `_plain` already.
        self._plain = tuple(secret for secret in self._secrets if not _URL.match(secret))

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def text(self, value: str) -> str:
        for url in self._urls:  # a quoted URL stays readable: `http://admin:****@host/`
            if url in value:
                value = value.replace(url, redact_url(url))
        for secret in self._plain:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def optional(self, value: str | None) -> str | None:
        return None if value is None else self.text(value)

    def json(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string (keys too) scrubbed; the value itself if no secrets."""
        if not self._secrets:
            return value
        return _scrub_json(self.text, value)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():  # keys are names (`token`), not secrets
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif hasattr(value, "model_dump"):
        yield from _strings(value.model_dump())
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def _whole(value: str) -> set[str]:
    """A secret value, plus its words after the first (`Bearer abc123`: the token alone may be quoted)."""
    found = {value, unquote(value)}
    words = value.split()
    if len(words) > 1:
        found.update(words[1:])
    return found


def _url_secrets(value: str) -> set[str]:
    # Exactly what `redact_url` masks (one rule), decoded too; and the URL itself when it has a secret, so a
    # Scrubber shows a quoted URL as `redact_url` does (`http://viewer:****@cdn/live/x/index.m3u8`), even
    # when a secret is too short to be masked on its own.
    found = set(secrets_in_url(value))
    found |= {unquote(item) for item in found}
    if found:
        found.add(value)
    return found


def _secret_words(text: str) -> set[str]:
    return {word for word in _WORDS.split(text) if looks_secret(word)}


def _at(value: Any, path: str) -> Iterator[Any]:
    """The values at a dotted field path (`steps.value` walks every step of the list)."""
    if isinstance(value, list | tuple):
        for item in value:
            yield from _at(item, path)
        return
    if not path:
        yield value
        return
    head, _, rest = path.partition(".")
    item = value.get(head) if isinstance(value, dict) else getattr(value, head, None)
    if item is not None:
        yield from _at(item, rest)


def check_secrets(model: Any, declared: Mapping[str, str]) -> set[str]:
    """The secret values of one check definition: what is found at each field path its probe declares,
    read according to its kind (url, headers, value, text; see `prober.probes.registry.SecretKind`)."""
    found: set[str] = set()
    for path, kind in declared.items():
        for value in _at(model, path):
            if kind == "url":
                for text in _strings(value):
                    found |= _url_secrets(text)
            elif kind == "headers" and isinstance(value, dict):
                for header, item in value.items():
                    if _SECRET_HEADER.search(str(header)):
                        found |= _whole(str(item))
                    else:
                        found |= _secret_words(str(item))
            elif kind == "value":
                for text in _strings(value):
                    found |= _whole(text)
            else:
                for text in _strings(value):
                    found |= _secret_words(text)
    return {item for item in found if len(item) >= MIN_SECRET}


def config_secrets(config: Any) -> set[str]:
    """Every secret of a loaded configuration: each check's (as its probe declares them), the notifier
    URLs and their secrets, and the ingest tokens. Duck-typed on `prober.config.loader.Config`."""
    found: set[str] = set()
    for spec in config.checks:
        found |= check_secrets(spec.model, spec.probe.secrets)
    for notifier in config.notifiers.values():
        for url in notifier.urls:
            found |= {url, *secrets_in_url(url)}
    found.update(config.ingest.tokens.values())
    return {item for item in found if item and len(item) >= MIN_SECRET}
