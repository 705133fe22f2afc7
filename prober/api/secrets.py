"""Keeping secrets out of API responses: redacted targets, and a scrubber for free text from results.

Check definitions carry secrets (passwords in URLs, Authorization headers, Socket.IO auth payloads,
browser form values, request bodies) and so do notifier URLs and ingest tokens. The API shows a check's
target only through `redact_url`, never shows headers or notifier URLs at all, and passes every string
that comes from a probe (errors, metrics, details, incident errors) through `Scrubber.text`, which masks
any of the configuration's secret values that a probe or a library quoted by accident.

It must never raise on odd input and never return a secret it was told about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from prober.config import CheckSpec, Config
from prober.redact import MASK, looks_secret, redact_url, secrets_in_url

__all__ = ["Scrubber", "check_target"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_SECRET_NAME = re.compile(r"auth|token|secret|passw|key|cookie|session|signature|credential", re.I)
_MIN_SECRET = 6
"""Shorter values are not masked in free text: masking `on` or `1234` would mangle every message."""


def check_target(spec: CheckSpec) -> str | None:
    """What the check probes, with credentials and secret query values masked (`https://user:****@host/`)."""
    model: Any = spec.model
    url = getattr(model, "url", None)
    if isinstance(url, str):
        return redact_url(url)
    host = getattr(model, "host", None)
    if isinstance(host, str):
        port = getattr(model, "port", None)
        shown = f"[{host}]" if ":" in host else host
        return f"{shown}:{port}" if port else shown
    return None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif hasattr(value, "model_dump"):
        yield from _strings(value.model_dump())


def _secrets_of_value(value: str) -> set[str]:
    found: set[str] = set()
    if _URL.match(value):
        found.update(secrets_in_url(value))
        found.update(secrets_in_url(value, mask_path=True))
        if found:
            found.add(value)
        return found
    found.add(value)
    words = value.split()
    if len(words) > 1:  # "Bearer abc123": the token alone may be quoted too
        found.update(word for word in words[1:])
    return found


def _secrets_of_check(spec: CheckSpec) -> set[str]:
    """URL credentials; header values that are named or look like secrets; Socket.IO auth payloads;
    browser form values; secret-looking strings in request bodies."""
    model: Any = spec.model
    found: set[str] = set()
    for name in ("url", "host"):
        value = getattr(model, name, None)
        if isinstance(value, str) and _URL.match(value):
            found.update(_secrets_of_value(value))
    headers = getattr(model, "headers", None) or {}
    for header, value in headers.items():
        if _SECRET_NAME.search(str(header)) or any(looks_secret(word) for word in str(value).split()):
            found.update(_secrets_of_value(str(value)))
    for text in _strings(getattr(model, "auth", None)):
        found.update(_secrets_of_value(text))
    for step in getattr(model, "steps", None) or ():
        value = getattr(step, "value", None)
        if isinstance(value, str):
            found.add(value)
    for text in _strings([getattr(model, "body", None), getattr(model, "json_body", None)]):
        found.update(word for word in re.split(r"[\s&=,;:\"']+", text) if looks_secret(word))
    return found


class Scrubber:
    """Masks a fixed set of secret strings in text and in JSON-like values."""

    def __init__(self, secrets: Iterable[str]) -> None:
        unique = {secret for secret in secrets if secret and len(secret) >= _MIN_SECRET}
        self._secrets = tuple(sorted(unique, key=len, reverse=True))

    @classmethod
    def from_config(cls, config: Config) -> Scrubber:
        secrets: set[str] = set()
        for spec in config.checks:
            secrets |= _secrets_of_check(spec)
        for notifier in config.notifiers.values():
            for url in notifier.urls:
                secrets.add(url)
                secrets.update(secrets_in_url(url))
        secrets.update(config.ingest.tokens.values())
        return cls(secrets)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def optional(self, value: str | None) -> str | None:
        return None if value is None else self.text(value)

    def json(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string (keys too) scrubbed; the value itself if no secrets."""
        if not self._secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(key)): self.json(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.json(item) for item in value]
        return value
