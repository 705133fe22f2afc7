"""Loopback plumbing every kind of test needs: a TCP port nothing listens on.

The one implementation; `free_port` is also a fixture (tests/conftest.py), and the helper modules' names for
the same thing (`unused_port`, `refused_port`) are this function.
"""

from __future__ import annotations

import socket

__all__ = ["HOST", "free_port"]

HOST = "127.0.0.1"


def free_port() -> int:
    """A 127.0.0.1 TCP port nothing listens on just now (bound, then released): for a server to listen on
    later, or to be refused. An ephemeral port, so never on Chromium's list of unsafe ports."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])
