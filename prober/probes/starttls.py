"""The plaintext preambles that ask a server to switch to TLS (STARTTLS), one per protocol.

Each preamble is a short scripted exchange on a `Conversation`: read the greeting, send the protocol's
upgrade command, read the go-ahead. After it the caller runs the TLS handshake on the same connection.
The commands are those of the RFCs (SMTP RFC 3207, IMAP RFC 2595/9051, POP3 RFC 2595, FTP RFC 4217,
PostgreSQL's SSLRequest), as `openssl s_client -starttls` and blackbox_exporter send them.

It returns a sentence when the server does not go along and never judges anything else; it never
touches TLS itself.
"""

from __future__ import annotations

import re
import struct
from typing import Literal

from prober.probes.conversation import Conversation, Miss, shown

__all__ = ["STARTTLS_PROTOCOLS", "StartTls", "upgrade"]

StartTls = Literal["smtp", "imap", "pop3", "ftp", "postgres"]
STARTTLS_PROTOCOLS: tuple[str, ...] = ("smtp", "imap", "pop3", "ftp", "postgres")

# A final reply line of an SMTP/FTP multi-line answer: three digits and a space.
_SMTP_FINAL = re.compile(r"(?m)^(\d{3}) [^\n]*\n")
_POSTGRES_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


class _Pattern:
    """The stdlib pattern for our own fixed replies (the server's text is bounded by the conversation)."""

    def __init__(self, regex: re.Pattern[str]) -> None:
        self.pattern = regex.pattern
        self._regex = regex

    def search(self, text: str) -> re.Match[str] | None:
        return self._regex.search(text)


_FINAL = _Pattern(_SMTP_FINAL)
_LINE = _Pattern(re.compile(r"\n"))


def _miss_sentence(where: str, protocol: str, waiting: str, miss: Miss) -> str:
    if miss.reason == "closed":
        got = f"after sending {shown(miss.received)}" if miss.received else "without a word"
        return f"{where} closed the connection {got} while prober waited for the {protocol} {waiting}"
    if miss.reason == "overflow":
        return f"{where} sent more than 64 KiB without the {protocol} {waiting}"
    got = f"it sent {shown(miss.received)}" if miss.received else "it sent nothing"
    return f"no {protocol} {waiting} from {where} within the timeout; {got}"


async def _reply(conversation: Conversation, deadline: float) -> str | Miss:
    """One SMTP/FTP reply, through its final `NNN ` line; the text of the final line."""
    outcome = await conversation.wait_for(pattern=_FINAL, deadline=deadline)
    if isinstance(outcome, Miss):
        return outcome
    return outcome[0]


async def _line(conversation: Conversation, deadline: float) -> str | Miss:
    outcome = await conversation.wait_for(pattern=_LINE, deadline=deadline)
    return outcome if isinstance(outcome, Miss) else outcome[0]


async def upgrade(protocol: StartTls, conversation: Conversation, where: str, deadline: float) -> str | None:
    """Run `protocol`'s STARTTLS preamble; None when the server agreed, else the sentence why not."""
    name = protocol.upper() if protocol != "postgres" else "PostgreSQL"
    if protocol in ("smtp", "ftp"):
        greeting = await _reply(conversation, deadline)
        if isinstance(greeting, Miss):
            return _miss_sentence(where, name, "greeting", greeting)
        if not greeting.startswith("220"):
            return f"{where} greeted with {shown(greeting)}, not the {name} 220 greeting"
        commands = [b"EHLO prober.invalid\r\n", b"STARTTLS\r\n"] if protocol == "smtp" else [b"AUTH TLS\r\n"]
        wanted = ["250", "220"] if protocol == "smtp" else ["234"]
        for command, code in zip(commands, wanted, strict=True):
            await conversation.send(command)
            answer = await _reply(conversation, deadline)
            said = command.decode().strip()
            if isinstance(answer, Miss):
                return _miss_sentence(where, name, f"answer to {said}", answer)
            if not answer.startswith(code):
                return f"{where} answered {said} with {shown(answer)}, not {code}: it does not offer STARTTLS"
        return None
    if protocol in ("imap", "pop3"):
        greeting = await _line(conversation, deadline)
        ok = "* OK" if protocol == "imap" else "+OK"
        if isinstance(greeting, Miss):
            return _miss_sentence(where, name, "greeting", greeting)
        if not greeting.startswith(ok):
            return f"{where} greeted with {shown(greeting)}, not the {name} {ok} greeting"
        command = b"p1 STARTTLS\r\n" if protocol == "imap" else b"STLS\r\n"
        await conversation.send(command)
        while True:  # IMAP may send untagged lines before the tagged answer
            answer = await _line(conversation, deadline)
            if isinstance(answer, Miss):
                return _miss_sentence(where, name, "answer to STARTTLS", answer)
            if protocol == "pop3" or answer.startswith("p1 "):
                break
        go_ahead = "p1 OK" if protocol == "imap" else "+OK"
        if not answer.startswith(go_ahead):
            return f"{where} answered STARTTLS with {shown(answer)}, not {go_ahead}: it does not offer STARTTLS"
        return None
    await conversation.send(_POSTGRES_SSL_REQUEST)
    byte = await conversation.read_exactly(1, deadline)
    if isinstance(byte, Miss):
        return _miss_sentence(where, name, "answer to SSLRequest", byte)
    if byte != b"S":
        return f"{where} refused PostgreSQL's SSLRequest (answered {byte!r}): the server has TLS off"
    return None
