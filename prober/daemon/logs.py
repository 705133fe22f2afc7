"""Logging set-up for the daemon: readable text by default, one JSON object per line with `--log-format json`.

Log records may carry structured fields through `extra={"fields": {...}}`; they become keys of the JSON
object (and `key=value` pairs in text). Every handler carries `prober.redact.LOG_SECRETS`, the filter
that masks the secrets of every check and notifier URL this process knows, whichever library logged them.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from prober.redact import LOG_SECRETS

__all__ = ["LogFormat", "RepeatedError", "install_log_redaction", "setup_logging"]

LogFormat = Literal["text", "json"]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update(fields)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return text


def setup_logging(fmt: LogFormat = "text", level: str = "info") -> None:
    """Configure the root logger once for the process (stderr, so stdout stays for command output)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(LOG_SECRETS)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class RepeatedError:
    """Logs an error that keeps happening once per `interval` seconds with a count, not once per occurrence.

    `failed(text)` logs the first occurrence at once, then at most one line per interval saying how many
    times it happened meanwhile; `recovered(text)` logs one line once it stops (only after a failure).
    """

    def __init__(self, logger: logging.Logger, interval: float = 60.0) -> None:
        import time

        self._logger = logger
        self._clock = time.monotonic
        self.interval = interval
        self.failing = False
        self.total = 0
        self._unlogged = 0
        self._last_logged = -1e18

    def failed(self, text: str) -> None:
        self.total += 1
        self._unlogged += 1
        now = self._clock()
        if not self.failing or now - self._last_logged >= self.interval:
            extra = "" if not self.failing else f" ({self._unlogged} times in the last {now - self._last_logged:.0f} s)"
            self._logger.error(f"{text}{extra}", extra={"fields": {"occurrences": self.total}})
            self._last_logged = now
            self._unlogged = 0
        self.failing = True

    def recovered(self, text: str) -> None:
        if self.failing:
            self._logger.warning(text, extra={"fields": {"occurrences": self.total}})
        self.failing = False
        self.total = 0
        self._unlogged = 0
        self._last_logged = -1e18


def install_log_redaction() -> None:
    """Attach the secrets filter to every root handler and to Python's last-resort handler (which prints
    warnings when logging was never set up, as in `prober check`). Idempotent."""
    for handler in [*logging.getLogger().handlers, logging.lastResort]:
        if handler is not None and LOG_SECRETS not in handler.filters:
            handler.addFilter(LOG_SECRETS)
