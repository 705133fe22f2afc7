"""A small wide-area network made of Linux network namespaces, for tests/test_regions.py.

Every node (the hub, each region, the targets) is a network namespace `<prefix>-<node>` whose only link is a TUN
device `wan0` with one or more 10.77.0.x addresses. One relay process (`python tests/netns.py relay SPEC`) holds
every node's TUN and forwards IPv4 packets between them after a one-way delay of `rtt / 2` for each end that has
one, dropping `loss` of the packets at each such end: a userspace `tc netem`. (This kernel is built without
sch_netem, so `tc qdisc add ... netem` is refused; the relay gives the same per-packet latency and loss.)

Faults are nftables rules on a node's input hook: `drop_from(node, addresses)` silently drops what arrives from
those addresses (a firewall, or one side of a partition) until `heal(node)`.

Nothing here touches the host's own network: the namespaces are created and deleted by `Lab`, namespaces left by
a run that was killed are removed by the next one, and TUN devices vanish with the relay. Needs root, `ip`, `nft`
and /dev/net/tun.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import json
import os
import random
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
NETNS_DIR = Path("/run/netns")
PREFIX_RE = re.compile(r"^prt(\d+)-")


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def enter_namespace(name: str) -> None:
    """Move the calling thread into network namespace `name` (only this thread; sockets it opens stay there)."""
    fd = os.open(NETNS_DIR / name, os.O_RDONLY)
    try:
        _setns(fd)
    finally:
        os.close(fd)


def in_namespace(name: str, fn: Callable[[], T], timeout: float = 30.0) -> T:
    """Run fn in a fresh thread inside namespace `name` and return its result (the thread is discarded)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            enter_namespace(name)
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"nothing came back from namespace {name} within {timeout} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


@dataclass
class Node:
    name: str
    addresses: list[str]
    rtt: float = 0.0
    """Seconds of round trip this node adds to any path (half on the way in, half on the way out)."""
    loss: float = 0.0
    """Share of the packets leaving or reaching this node that are lost."""


def _run(argv: Sequence[str]) -> None:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")


def remove_stale_namespaces() -> list[str]:
    """Delete `prt<pid>-*` namespaces whose creating process is gone (a run killed before its clean-up)."""
    removed = []
    for path in NETNS_DIR.glob("prt*-*") if NETNS_DIR.is_dir() else []:
        match = PREFIX_RE.match(path.name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            pids = subprocess.run(
                ["ip", "netns", "pids", path.name], capture_output=True, text=True, timeout=30, check=False
            ).stdout.split()
            for pid in pids:  # processes a killed run left behind in it (the relay dies with its parent)
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "delete", path.name], capture_output=True, timeout=30, check=False)
            removed.append(path.name)
    return removed


@dataclass
class Lab:
    """The namespaces, the relay and every process started in them; `close()` removes all of it."""

    nodes: list[Node]
    workdir: Path
    prefix: str = field(default_factory=lambda: f"prt{os.getpid()}")
    relay: subprocess.Popen[str] | None = None
    processes: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)

    def ns(self, node: str) -> str:
        return f"{self.prefix}-{node}"

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def start(self) -> None:
        remove_stale_namespaces()
        for node in self.nodes:
            _run(["ip", "netns", "add", self.ns(node.name)])
            self.created.append(self.ns(node.name))
            _run(["ip", "-n", self.ns(node.name), "link", "set", "lo", "up"])
        spec = [{"ns": self.ns(n.name), "addresses": n.addresses, "rtt": n.rtt, "loss": n.loss} for n in self.nodes]
        self.relay = subprocess.Popen(
            [sys.executable, __file__, "relay", json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.relay.stdout is not None
        line = self.relay.stdout.readline()  # "ready" once every TUN exists; EOF if the relay failed
        if line.strip() != "ready":
            self.relay.wait(timeout=10)
            raise RuntimeError(f"the relay did not start: {self.relay.stderr.read() if self.relay.stderr else ''}")
        for node in self.nodes:
            ns = self.ns(node.name)
            for i, address in enumerate(node.addresses):
                _run(["ip", "-n", ns, "addr", "add", f"{address}/{24 if i == 0 else 32}", "dev", "wan0"])
            _run(["ip", "-n", ns, "link", "set", "wan0", "up"])

    def spawn(
        self, node: str, argv: Sequence[str], *, name: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start argv inside the node's namespace; its output goes to <workdir>/<name>.log."""
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(node), *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
        self.processes.append((name, proc, log))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
        """SIGTERM, and SIGKILL if it has not exited within timeout; the exit code (negative if killed)."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return proc.returncode

    def log_of(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def drop_from(self, node: str, sources: Sequence[str], *, to: str | None = None, table: str = "fault") -> None:
        """Drop every packet reaching `node` (only its address `to`, if given) from any of `sources`, until heal."""
        only = f" ip daddr {to}" if to else ""
        rules = "; ".join(f"add rule inet {table} in ip saddr {s}{only} drop" for s in sources)
        script = (
            f"add table inet {table}; "
            f"add chain inet {table} in {{ type filter hook input priority 0 ; policy accept ; }}; {rules}"
        )
        _run(["ip", "netns", "exec", self.ns(node), "nft", script])

    def heal(self, node: str, table: str = "fault") -> None:
        _run(["ip", "netns", "exec", self.ns(node), "nft", f"delete table inet {table}"])

    def get_json(self, node: str, url: str, timeout: float = 10.0) -> Any:
        """GET url from inside the node's namespace and parse the JSON answer."""

        def fetch() -> Any:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return json.loads(response.read())

        return in_namespace(self.ns(node), fetch, timeout=timeout + 5)

    def close(self) -> None:
        for _name, proc, log in reversed(self.processes):
            with contextlib.suppress(Exception):
                self.stop(proc, timeout=15)
            log.close()
        if self.relay is not None:
            if self.relay.poll() is None:
                self.relay.terminate()
                try:
                    self.relay.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.relay.kill()
                    self.relay.wait(timeout=10)
            for stream in (self.relay.stdout, self.relay.stderr):
                if stream is not None:
                    stream.close()
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=30, check=False)
        self.created.clear()


# ---- the relay (its own process) --------------------------------------------------------------------------


def _open_tun(ns: str) -> int:
    """Create wan0 inside namespace `ns` and return its file descriptor (the calling thread returns home)."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        enter_namespace(ns)
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", b"wan0", IFF_TUN | IFF_NO_PI))
        return fd
    finally:
        _setns(home)
        os.close(home)


def relay(spec: list[dict[str, Any]]) -> None:
    """Forward IPv4 packets between the nodes' TUNs with their delay and loss, until SIGTERM (or the parent dies)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    by_address: dict[bytes, tuple[int, float, float]] = {}
    fds = []
    for node in spec:
        fd = _open_tun(node["ns"])
        fds.append(fd)
        for address in node["addresses"]:
            by_address[bytes(map(int, address.split(".")))] = (fd, float(node["rtt"]) / 2, float(node["loss"]))
    loop = asyncio.new_event_loop()
    rng = random.Random(11)
    stats = {"forwarded": 0, "lost": 0, "unroutable": 0}

    def deliver(fd: int, packet: bytes) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(fd, packet)

    def readable(fd: int) -> None:
        for _ in range(256):  # bounded: give the loop back now and then
            try:
                packet = os.read(fd, 65536)
            except BlockingIOError:
                return
            if len(packet) < 20 or packet[0] >> 4 != 4:
                continue  # not IPv4 (router solicitations and the like)
            source = by_address.get(packet[12:16])
            target = by_address.get(packet[16:20])
            if source is None or target is None:
                stats["unroutable"] += 1
                continue
            if rng.random() < source[2] or rng.random() < target[2]:
                stats["lost"] += 1
                continue
            stats["forwarded"] += 1
            delay = source[1] + target[1]
            if delay > 0:
                loop.call_later(delay, deliver, target[0], packet)
            else:
                deliver(target[0], packet)

    for fd in fds:
        loop.add_reader(fd, readable, fd)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("ready", flush=True)
    loop.run_until_complete(stop.wait())
    print(json.dumps(stats), file=sys.stderr, flush=True)
    for fd in fds:
        os.close(fd)
    loop.close()


def wait_for(predicate: Callable[[], T], timeout: float, interval: float = 0.5, what: str = "") -> tuple[T, float]:
    """Poll predicate until it returns something truthy; that value and the seconds it took (bounded)."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        value = predicate()
        if value:
            return value, time.monotonic() - start
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        time.sleep(interval)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "relay":
        relay(json.loads(sys.argv[2]))
    else:
        sys.exit("usage: python tests/netns.py relay SPEC_JSON")
