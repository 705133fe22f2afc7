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

__all__ = ["LogFormat", "install_log_redaction", "setup_logging"]

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


def install_log_redaction() -> None:
    """Attach the secrets filter to every root handler and to Python's last-resort handler (which prints
    warnings when logging was never set up, as in `prober check`). Idempotent."""
    for handler in [*logging.getLogger().handlers, logging.lastResort]:
        if handler is not None and LOG_SECRETS not in handler.filters:
            handler.addFilter(LOG_SECRETS)
