"""Redacting secrets from URLs before they reach a log line, a result, the database or the API.

`redact_url` masks, with `****`: the password in the userinfo (and a user name that looks like a
token), the values of query parameters named like a secret (token, key, secret, password, signature,
sig, auth, ...), and, for Apprise notifier URLs (`slack://T1/B2/abcdefXYZ`, `tgram://bot:token/chat`),
the path segments and the "port" that look like secrets (long or random-looking strings). Scheme, host
and a numeric port stay visible, so a reader can still tell which service and which server; the one
exception is an Apprise "host" that is plainly a token (mixed case, or 24+ characters with no dot).
For web URLs (http, https, ws, wss) path segments are left alone unless asked, because they name the
page being checked.

`secrets_in_url` lists the raw substrings that `redact_url` masks, so `scrub` can clean them out of
free text (an exception message that quotes the URL).

`RedactingFilter` is a logging filter that scrubs the secrets of registered URLs out of every record
it sees (libraries such as Apprise log request URLs at DEBUG level with the token in the path).

It must never raise on odd input, never shorten or otherwise change what it does not mask, and never
log: it is called from the logging paths themselves.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import unquote

__all__ = ["MASK", "RedactingFilter", "looks_secret", "redact_url", "scrub", "secrets_in_url"]

MASK = "****"
WEB_SCHEMES = frozenset({"http", "https", "ws", "wss"})

_SECRET_NAME_PARTS = ("token", "secret", "passw", "pwd", "apikey", "api_key", "auth", "credential", "signature")
_SECRET_NAME_WORDS = frozenset({"key", "sig", "pass", "pw", "code", "session", "access_key", "private"})
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>.*)$", re.S)
_TOKENISH = re.compile(r"^[A-Za-z0-9_\-=+.~%]+$")


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
    if mask_path is None:
        mask_path = not web

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

    if mask_path and path:
        path = "/".join(mask(segment) if looks_secret(segment) else segment for segment in path.split("/"))

    if query:
        pairs = []
        for pair in query.split("&"):
            name, equals, value = pair.partition("=")
            if equals and value and (_is_secret_name(name) or (not web and looks_secret(value))):
                value = mask(value)
            pairs.append(name + equals + value)
        query = "&".join(pairs)

    if fragment and looks_secret(fragment):
        fragment = mask(fragment)

    return f"{scheme}://{new_netloc}{slash}{path}{question}{query}{hash_sign}{fragment}"


def redact_url(url: str, *, mask_path: bool | None = None) -> str:
    """The URL with its secrets replaced by `****` (see the module docstring).

    `mask_path` forces masking of secret-looking path segments on (True) or off (False); by default it
    is on for every scheme except http, https, ws and wss. A string that is not a URL is returned as is.
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

    def filter(self, record: logging.LogRecord) -> bool:
        needles, urls = self._needles, self._urls
        if not needles:
            return True
        try:
            message = record.getMessage()
            if any(needle in message for needle in needles):
                record.msg = scrub(message, urls)
                record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text and any(needle in record.exc_text for needle in needles):
                record.exc_text = scrub(record.exc_text, urls)
        except Exception:  # a log line must never fail because of redaction
            record.msg, record.args = MASK, None
        return True
