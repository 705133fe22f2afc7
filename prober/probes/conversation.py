"""A line-oriented conversation over an asyncio stream: read until a text or an RE2 pattern has arrived.

Used by the `tcp` probe for its `send` / `expect` steps and for the STARTTLS preambles. What arrives is
decoded as UTF-8 (invalid bytes replaced) into a buffer; `wait_for` searches the buffer from where the
last match ended, so one packet holding two replies satisfies two steps. The buffer is capped, so a
server that streams forever costs at most `MAX_BUFFER` characters of memory.

It only reads and writes the stream it is given and measures; it never judges or raises ProbeError
(the caller turns a `Miss` into a sentence).
"""

from __future__ import annotations

import asyncio
import codecs
import time
from dataclasses import dataclass
from typing import Any

from prober.config.regex import UserRegex

__all__ = ["MAX_BUFFER", "Conversation", "Miss", "first_line", "shown"]

MAX_BUFFER = 64 * 1024
"""Characters kept of what a server sent and not yet matched."""
_CHUNK = 16 * 1024


@dataclass(frozen=True, slots=True)
class Miss:
    """Why a wait ended without a match: the server closed, went silent past the deadline, or sent too much."""

    reason: str  # "closed" | "timeout" | "overflow"
    received: str
    waited: float


def shown(text: str, limit: int = 120) -> str:
    """A received text for a sentence: repr-quoted, cut to `limit` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def first_line(text: str) -> str:
    """The first line of what a server sent, without its line ending, at most 200 characters."""
    return text.split("\n", 1)[0].rstrip("\r")[:200]


def _line_at(text: str, end: int) -> str:
    """The line of `text` that holds the character before `end`, without its line ending, cut to 200."""
    begin = text.rfind("\n", 0, max(0, end - 1)) + 1
    stop = text.find("\n", end)
    return text[begin : len(text) if stop < 0 else stop].rstrip("\r")[:200]


class Conversation:
    """Reads from `reader` into a text buffer and finds texts or patterns in it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = ""
        self.received_any = ""
        """The first text ever received (for the banner), kept even after it is consumed."""
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def rebind(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Continue over a new stream pair (after STARTTLS): the plaintext buffer is dropped, as it must be."""
        self.reader, self.writer = reader, writer
        self.buffer = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    async def send(self, data: str | bytes) -> None:
        self.writer.write(data.encode("utf-8") if isinstance(data, str) else data)
        await self.writer.drain()

    def _find(self, text: str | None, pattern: UserRegex | None) -> int | None:
        """End offset of the first match in the buffer, or None."""
        if text is not None:
            at = self.buffer.find(text)
            return None if at < 0 else at + len(text)
        assert pattern is not None
        match: Any = pattern.search(self.buffer)
        return None if match is None else int(match.end())

    async def wait_for(
        self, *, text: str | None = None, pattern: UserRegex | None = None, deadline: float
    ) -> tuple[str, float] | Miss:
        """Read until `text` (or `pattern`) is in the buffer or `deadline` (loop time) passes.

        Returns the line the match ends in (without its line ending) and the seconds waited, and consumes
        the buffer through the match; or a Miss saying what arrived instead.
        """
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        while True:
            end = self._find(text, pattern)
            if end is not None:
                line = _line_at(self.buffer, end)
                self.buffer = self.buffer[end:]
                return line, time.perf_counter() - started
            if len(self.buffer) >= MAX_BUFFER:
                return Miss("overflow", self.buffer, time.perf_counter() - started)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return Miss("timeout", self.buffer, time.perf_counter() - started)
            try:
                async with asyncio.timeout(remaining):
                    chunk = await self.reader.read(_CHUNK)
            except TimeoutError:
                return Miss("timeout", self.buffer, time.perf_counter() - started)
            except (ConnectionError, OSError):
                chunk = b""
            if not chunk:
                self.buffer += self._decoder.decode(b"", final=True)
                end = self._find(text, pattern)
                if end is not None:
                    continue
                return Miss("closed", self.buffer, time.perf_counter() - started)
            decoded = self._decoder.decode(chunk)
            if not self.received_any:
                self.received_any = decoded
            self.buffer += decoded

    async def read_exactly(self, count: int, deadline: float) -> bytes | Miss:
        """`count` raw bytes (a binary reply such as PostgreSQL's one-byte SSLRequest answer)."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(max(0.0, deadline - loop.time())):
                return await self.reader.readexactly(count)
        except TimeoutError:
            return Miss("timeout", "", time.perf_counter() - started)
        except asyncio.IncompleteReadError as exc:
            return Miss("closed", exc.partial.decode("utf-8", "replace"), time.perf_counter() - started)
        except (ConnectionError, OSError):
            return Miss("closed", "", time.perf_counter() - started)
