"""No single point of failure, with real software on loopback: two hubs, two agents, a two-peer Alertmanager
cluster and nginx in front of the hubs.

- Debian's `prometheus-alertmanager`, two peers gossiping (`--cluster.listen-address`/`--cluster.peer`), routing
  every alert to a webhook receiver (tests/webhook_receiver.py) with short group_wait/group_interval;
- two hubs (`prober run` at location `hub`, which no check lists: they probe nothing) with the same check file,
  whose notifier `pager` lists both Alertmanager peers;
- two agents (`prober run --location eu-west|us-east --push hub-a --push hub-b`), probing loopback targets;
- nginx (`nginx -p DIR -c nginx.conf -g 'daemon off;'`) with both hubs as one upstream.

Each fault uses its own check (so one incident's re-sent alerts never meet another's):
1. `first` fails at both locations: exactly one firing page at the receiver, then one resolved page;
2. `hub-killed` fails, then one hub is killed with SIGKILL while the incident is open: the resolved page still
   arrives, once. That hub stays down 60 s: nginx keeps serving the status page and /api/v1/status, the other
   hub never falls behind the agents, and after the restart its backlog arrives (delay measured) with exactly
   the other hub's result ids, each once;
3. `peer-stopped` fails while one Alertmanager peer is stopped: one firing and one resolved page;
4. the other hub is stopped: nginx still serves both pages; restarted, it catches up. In the end both hubs hold
   exactly the agents' results, each once, and the receiver got 3 firing and 3 resolved pages in all.

The pages per incident and the backlog delay are printed. About two and a half minutes; marked `ha` (run by
.ci/run after the container tests, `pytest -m ha`) and `slow`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from daemon_helpers import Target, query
from loopback import free_port
from webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.ha, pytest.mark.slow]

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
LOCATIONS = ("eu-west", "us-east")
TOKENS = {"eu-west": "tok-eu-7f3a9c2e11", "us-east": "tok-us-0b8d4e6f22"}
CHECKS = ("first", "hub-killed", "peer-stopped")
QUIET = 8.0
"""Seconds without a second page before a page counts as the only one (> peer timeout + 2 group intervals)."""
HUB_DOWN = 60.0


def say(line: str) -> None:
    print(f"ha: {line}", file=sys.stderr, flush=True)


class Proc:
    """A subprocess whose output goes to a log file (a pipe nobody reads would stall it)."""

    def __init__(self, name: str, argv: list[str], log: Path, cwd: Path) -> None:
        self.name, self.argv, self.log, self.cwd = name, argv, log, cwd
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> Proc:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, cwd=self.cwd, stdout=out, stderr=asyncio.subprocess.STDOUT, env=dict(os.environ)
            )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.proc = None

    def check(self) -> None:
        """Fail with its log's tail when the process has exited."""
        if self.proc is not None and self.proc.returncode is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


async def wait_for(what: str, predicate: Any, timeout: float, interval: float = 0.1) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return time.monotonic() - began
        await asyncio.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:g} s")


async def http_ok(url: str) -> bool:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session,
            session.get(url) as response,
        ):
            await response.read()
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


def ids(db: Path, location: str | None = None) -> set[str]:
    if location is None:
        return {row[0] for row in query(db, "SELECT id FROM results")}
    return {row[0] for row in query(db, "SELECT id FROM results WHERE location = ?", location)}


class Lab:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: dict[str, Proc] = {}
        self.targets = {name: Target() for name in CHECKS}
        self.hook = WebhookReceiver(path="/hook")
        self.hub_ports = {"hub-a": free_port(), "hub-b": free_port()}
        self.am_web = [free_port(), free_port()]
        self.am_cluster = [free_port(), free_port()]
        self.nginx_port = free_port()

    # ---- set-up ------------------------------------------------------------------------------------------

    def checks_file(self) -> Path:
        peers = ", ".join(f'"http://127.0.0.1:{port}"' for port in self.am_web)
        lines = [
            "version: 1",
            f'status_page: {{title: "HA lab", url: "http://127.0.0.1:{self.nginx_port}"}}',
            f"notifiers:\n  pager:\n    alertmanager: [{peers}]",
            "ingest:\n  tokens: {" + ", ".join(f"{loc}: {tok}" for loc, tok in TOKENS.items()) + "}",
            "defaults:",
            "  schedule: every 1s",
            "  timeout: 800ms",
            f"  locations: [{', '.join(LOCATIONS)}]",
            "  alert: {after: 2, recover_after: 1, quorum: 2, notify: [pager], labels: {severity: page, team: web}}",
            "checks:",
        ]
        lines += [
            f"  - {{name: {name}, type: http, group: ha, url: '{target.url}'}}" for name, target in self.targets.items()
        ]
        path = self.tmp / "checks.yaml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def alertmanager_config(self) -> Path:
        path = self.tmp / "alertmanager.yml"
        path.write_text(
            f"""route:
  receiver: hook
  group_by: [alertname, check]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:{self.hook.port}/hook
        send_resolved: true
"""
        )
        return path

    def nginx_config(self) -> Path:
        root = self.tmp / "nginx"
        for sub in ("logs", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        servers = "\n".join(
            f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;" for port in self.hub_ports.values()
        )
        temp = " ".join(
            f"{kind}_temp_path tmp/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        path = root / "nginx.conf"
        path.write_text(
            f"""worker_processes 1;
error_log logs/error.log warn;
pid logs/nginx.pid;
events {{ worker_connections 128; }}
http {{
  access_log off;
  {temp}
  upstream hubs {{
{servers}
  }}
  server {{
    listen 127.0.0.1:{self.nginx_port};
    location / {{
      proxy_pass http://hubs;
      proxy_next_upstream error timeout http_502 http_503 http_504;
      proxy_connect_timeout 1s;
      proxy_read_timeout 10s;
    }}
  }}
}}
"""
        )
        return path

    def prober(self, name: str, *args: str) -> Proc:
        argv = [sys.executable, "-m", "prober", "run", str(self.tmp / "checks.yaml"), *args, "--log-level", "info"]
        proc = Proc(name, argv, self.tmp / f"{name}.log", self.tmp)
        self.procs[name] = proc
        return proc

    def hub(self, name: str) -> Proc:
        port = self.hub_ports[name]
        return self.prober(name, "--db", str(self.db(name)), "--location", "hub", "--listen", f"127.0.0.1:{port}")

    def db(self, name: str) -> Path:
        return self.tmp / f"{name}.db"

    def peer(self, index: int) -> Proc:
        assert ALERTMANAGER is not None
        other = self.am_cluster[1 - index]
        argv = [
            ALERTMANAGER, f"--config.file={self.tmp / 'alertmanager.yml'}",
            f"--storage.path={self.tmp / f'am-{index}'}",
            f"--web.listen-address=127.0.0.1:{self.am_web[index]}",
            f"--cluster.listen-address=127.0.0.1:{self.am_cluster[index]}",
            f"--cluster.peer=127.0.0.1:{other}",
            "--cluster.peer-timeout=2s", "--cluster.settle-timeout=3s", "--cluster.gossip-interval=100ms",
            "--cluster.pushpull-interval=2s", "--cluster.probe-interval=500ms", "--log.level=info",
        ]  # fmt: skip
        proc = Proc(f"am-{index}", argv, self.tmp / f"am-{index}.log", self.tmp)
        self.procs[proc.name] = proc
        return proc

    async def start(self) -> None:
        await self.hook.start()
        for target in self.targets.values():
            await target.start()
        self.checks_file()
        self.alertmanager_config()
        for index in (0, 1):
            await self.peer(index).start()
        for index in (0, 1):
            await wait_for(f"Alertmanager peer {index} ready", self.am_ready(index), 30)
        await wait_for("the Alertmanager cluster of two", self.cluster_of_two, 30)
        for name in self.hub_ports:
            await self.hub(name).start()
        for name, port in self.hub_ports.items():
            await wait_for(f"{name} listening", lambda port=port: http_ok(f"http://127.0.0.1:{port}/healthz"), 30)
        hubs = [arg for port in self.hub_ports.values() for arg in ("--push", f"http://127.0.0.1:{port}")]
        for location in LOCATIONS:
            token = self.tmp / f"token-{location}"
            token.write_text(TOKENS[location] + "\n")
            await self.prober(
                f"agent-{location}", "--db", str(self.db(f"agent-{location}")), "--location", location,
                "--listen", "off", "--token-file", str(token), *hubs,
            ).start()  # fmt: skip
        assert NGINX is not None
        conf = self.nginx_config()
        nginx = Proc("nginx", [NGINX, "-p", str(conf.parent), "-c", str(conf), "-g", "daemon off;"],
                     self.tmp / "nginx.log", self.tmp)  # fmt: skip
        self.procs["nginx"] = await nginx.start()
        await wait_for("nginx serving", lambda: http_ok(f"http://127.0.0.1:{self.nginx_port}/healthz"), 15)

    def am_ready(self, index: int) -> Any:
        return lambda: http_ok(f"http://127.0.0.1:{self.am_web[index]}/-/ready")

    async def cluster_of_two(self) -> bool:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session,
                session.get(f"http://127.0.0.1:{self.am_web[0]}/api/v2/status") as response,
            ):
                status = await response.json()
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False
        return len(status["cluster"]["peers"]) == 2 and status["cluster"]["status"] == "ready"

    async def close(self) -> None:
        for proc in reversed(list(self.procs.values())):
            await proc.stop()
        for target in self.targets.values():
            await target.stop()
        await self.hook.stop()

    # ---- observations ------------------------------------------------------------------------------------

    def alive(self) -> bool:
        """False never: raises, with the log's tail, if a process the lab started has exited."""
        for proc in self.procs.values():
            proc.check()
        return False

    def pages(self, check: str, status: str) -> int:
        """Webhook notifications about `check` with status firing|resolved."""
        return sum(
            1
            for body in self.hook.received
            if body.get("status") == status
            and any(alert.get("labels", {}).get("check") == check for alert in body.get("alerts", []))
        )

    def page(self, check: str, status: str) -> dict[str, Any]:
        for body in self.hook.received:
            if body.get("status") == status and body["alerts"][0]["labels"]["check"] == check:
                return dict(body)
        raise AssertionError(f"no {status} page for {check}")

    async def one_page(self, check: str, status: str, timeout: float = 40) -> float:
        """Wait for the first `status` page of `check`, then QUIET seconds: it must stay the only one."""
        took = await wait_for(
            f"a {status} page for {check}", lambda: self.alive() or self.pages(check, status) >= 1, timeout
        )
        await asyncio.sleep(QUIET)
        count = self.pages(check, status)
        assert count == 1, f"{count} {status} pages for {check}, expected exactly one: {self.hook.received}"
        return took

    def agent_ids(self) -> set[str]:
        return set().union(*(ids(self.db(f"agent-{loc}"), loc) for loc in LOCATIONS))

    async def incident(self, check: str) -> dict[str, float]:
        """Fail `check`'s target at both locations, wait for the one firing page; return timings."""
        await self.targets[check].stop()
        return {"firing_after": await self.one_page(check, "firing")}

    async def recover(self, check: str) -> float:
        await self.targets[check].start()
        return await self.one_page(check, "resolved")


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    if ALERTMANAGER is None or NGINX is None:
        pytest.fail("the HA test needs Debian's prometheus-alertmanager and nginx (scripts/test installs them)")
    lab = Lab(tmp_path)
    try:
        await lab.start()
        yield lab
    finally:
        await lab.close()
        for proc in lab.procs.values():
            if "Traceback" in proc.tail(400):
                say(f"--- {proc.name} log tail ---\n{proc.tail()}")


async def test_two_hubs_an_alertmanager_cluster_and_nginx_survive_each_single_fault(lab: Lab) -> None:
    status_page = f"http://127.0.0.1:{lab.nginx_port}/"
    status_api = f"http://127.0.0.1:{lab.nginx_port}/api/v1/status"
    await wait_for("results at both hubs", lambda: all(len(ids(lab.db(h))) >= 6 for h in lab.hub_ports), 30)

    # 1. one incident, two hubs judging it, two Alertmanager peers: one page each way
    firing = await lab.incident("first")
    page = lab.page("first", "firing")
    labels = page["alerts"][0]["labels"]
    assert labels == {"alertname": "ProberCheckDown", "check": "first", "group": "ha", "type": "http",
                      "severity": "page", "team": "web"}, labels  # fmt: skip
    assert page["alerts"][0]["generatorURL"] == f"http://127.0.0.1:{lab.nginx_port}/checks/first"
    assert "first is down at eu-west, us-east" in page["alerts"][0]["annotations"]["description"]
    resolved = await lab.recover("first")
    say(f"fault 1 (none, both hubs up): 1 firing page {firing['firing_after']:.1f} s after the target stopped, "
        f"1 resolved page {resolved:.1f} s after it came back")  # fmt: skip

    # 2. a hub killed while the incident is open
    firing = await lab.incident("hub-killed")
    killed_at = time.monotonic()
    await lab.procs["hub-b"].stop(signal.SIGKILL)
    for url in (status_page, status_api):
        assert await http_ok(url), f"nginx did not serve {url} with hub-b down"
    resolved = await lab.recover("hub-killed")
    say(f"fault 2 (hub-b killed -9 while open): 1 firing page, 1 resolved page {resolved:.1f} s after recovery")
    # the other hub never falls behind while hub-b is down
    worst = 0
    while time.monotonic() - killed_at < HUB_DOWN:
        agents, hub_a = lab.agent_ids(), ids(lab.db("hub-a"))
        await asyncio.sleep(3.0)  # what the agents held 3 s ago must be at hub-a by now (pushes every second)
        missing = agents - ids(lab.db("hub-a"))
        worst = max(worst, len(agents - hub_a))
        assert not missing, f"hub-a fell behind: {len(missing)} results the agents held 3 s ago are missing"
        for url in (status_page, status_api):
            assert await http_ok(url), f"nginx did not serve {url} with hub-b down"
    at_heal = ids(lab.db("hub-a"))
    healed = time.monotonic()
    await lab.hub("hub-b").start()
    backlog = await wait_for(
        "hub-b's backlog", lambda: lab.alive() or ids(lab.db("hub-b")) >= at_heal, 60, interval=0.2
    )
    say(f"fault 2: hub-b down {healed - killed_at:.0f} s; its backlog ({len(at_heal)} results in all) arrived "
        f"{backlog:.1f} s after the restart; hub-a lagged the agents by at most {worst} results meanwhile")  # fmt: skip
    await asyncio.sleep(QUIET)  # the restarted hub resolves its restored incident from the backlog: no page
    assert lab.pages("hub-killed", "firing") == 1 and lab.pages("hub-killed", "resolved") == 1, lab.hook.received

    # 3. one Alertmanager peer stopped
    await lab.procs["am-0"].stop()
    firing = await lab.incident("peer-stopped")
    resolved = await lab.recover("peer-stopped")
    say(f"fault 3 (Alertmanager peer 0 stopped): 1 firing page {firing['firing_after']:.1f} s, "
        f"1 resolved page {resolved:.1f} s after recovery")  # fmt: skip

    # 4. the other hub down: nginx serves from hub-b; back up, it catches up too
    await lab.procs["hub-a"].stop()
    for _ in range(3):
        for url in (status_page, status_api):
            assert await http_ok(url), f"nginx did not serve {url} with hub-a down"
    at_heal = ids(lab.db("hub-b"))
    await lab.hub("hub-a").start()
    caught_up = await wait_for("hub-a's backlog", lambda: lab.alive() or ids(lab.db("hub-a")) >= at_heal, 60)
    say(f"fault 4 (hub-a stopped): nginx served from hub-b; hub-a's backlog arrived {caught_up:.1f} s after restart")

    # the agents' last flush reaches both hubs; both hold the agents' results, each exactly once
    for location in LOCATIONS:
        await lab.procs[f"agent-{location}"].stop()
    pushed = lab.agent_ids()
    for hub in ("hub-a", "hub-b"):
        held = ids(lab.db(hub))
        assert held == pushed, f"{hub} misses {len(pushed - held)} results and has {len(held - pushed)} unknown ones"
        rows = query(lab.db(hub), "SELECT COUNT(*), COUNT(DISTINCT id) FROM results")
        assert rows[0][0] == rows[0][1] == len(pushed), f"{hub} stores a result twice"
    total = {status: sum(lab.pages(check, status) for check in CHECKS) for status in ("firing", "resolved")}
    say(f"pages in all: {total['firing']} firing, {total['resolved']} resolved for {len(CHECKS)} incidents")
    assert total == {"firing": 3, "resolved": 3}, lab.hook.received
