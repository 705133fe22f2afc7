"""The `icmp` check type: pings of 127.0.0.1 and ::1 (raw sockets as root); an unprivileged ICMP socket and
the sentence when neither kind may be opened, each in a network namespace of its own run as `nobody`; and
packet loss across the region simulation's namespaces (tests/netns.py), whose relay drops packets."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from prober.config.loader import ConfigError, load_config
from prober.probes.icmp import no_socket_sentence
from prober.results import Result
from prober.scheduling.runner import Runner

ROOT_ONLY = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: creates network namespaces and drops to uid nobody inside them"
)
REPO = Path(__file__).parent.parent


def _write(tmp_path: Path, *checks: dict[str, Any]) -> Path:
    path = tmp_path / "checks.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "checks": list(checks)}), encoding="utf-8")
    return path


def _check(**keys: Any) -> dict[str, Any]:
    return {"name": "ping", "type": "icmp", "timeout": "2s", "interval": "20ms", "packet_timeout": "300ms", **keys}


async def _run(tmp_path: Path, **keys: Any) -> Result:
    config = load_config([_write(tmp_path, _check(**keys))])
    return await Runner().run(config.checks[0])


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
async def test_loopback_answers_every_ping(tmp_path: Path, host: str) -> None:
    result = await _run(tmp_path, host=host, count=3, ip_version=6 if host == "::1" else None)

    assert result.status == "up", result.error
    assert result.metrics["sent"] == result.metrics["received"] == 3
    assert result.metrics["loss"] == 0
    assert result.metrics["resolved_ip"] in ("127.0.0.1", "::1")
    assert 0 < result.metrics["rtt_min"] <= result.metrics["rtt_avg"] <= result.metrics["rtt_max"] < 0.5
    assert result.metrics["privileged"] is (os.geteuid() == 0)
    assert len(result.details["rtts"]) == 3


async def test_an_unresolvable_host_is_the_shared_dns_sentence(tmp_path: Path) -> None:
    result = await _run(tmp_path, host="nothing.invalid")

    assert result.status == "down"
    assert result.error is not None and result.error.startswith("cannot resolve host nothing.invalid: ")


NAMESPACED = """
import asyncio, json, sys, tempfile
from pathlib import Path
from prober.config.loader import load_config
from prober.scheduling.runner import Runner
path = Path(tempfile.mkdtemp()) / "checks.yaml"
path.write_text(sys.argv[1])
result = asyncio.run(Runner().run(load_config([path]).checks[0]))
print(json.dumps({"status": result.status, "error": result.error, "metrics": result.metrics}))
"""


def _as_nobody_in_a_new_namespace(tmp_path: Path, group_range: str) -> dict[str, Any]:
    """Run one icmp check of 127.0.0.1 as uid/gid 65534 in a fresh network namespace whose
    net.ipv4.ping_group_range is `group_range` (the host's own setting is not touched)."""
    path = _write(tmp_path, _check(host="127.0.0.1", count=2))
    python = [sys.executable, "-c", NAMESPACED, path.read_text()]
    script = (
        "ip link set lo up && "
        f"sysctl -qw net.ipv4.ping_group_range='{group_range}' && "
        'exec setpriv --reuid 65534 --regid 65534 --clear-groups "$@"'
    )
    done = subprocess.run(
        ["unshare", "--net", "--", "sh", "-c", script, "sh", *python],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "HOME": "/tmp"},
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@ROOT_ONLY
def test_without_privileges_an_unprivileged_icmp_socket_is_used(tmp_path: Path) -> None:
    outcome = _as_nobody_in_a_new_namespace(tmp_path, "0 2147483647")

    assert outcome["status"] == "up", outcome["error"]
    assert outcome["metrics"]["privileged"] is False
    assert outcome["metrics"]["received"] == 2


@ROOT_ONLY
def test_when_neither_socket_kind_is_allowed_the_sentence_says_why_and_what_to_do(tmp_path: Path) -> None:
    outcome = _as_nobody_in_a_new_namespace(tmp_path, "1 0")

    assert outcome["status"] == "down"
    assert outcome["error"] == no_socket_sentence(65534, 65534, "1 0")
    assert "net.ipv4.ping_group_range (1 0)" in outcome["error"]
    assert "grant CAP_NET_RAW" in outcome["error"]


@pytest.mark.slow
@ROOT_ONLY
def test_packet_loss_across_the_region_namespaces_is_measured(tmp_path: Path) -> None:
    """Two nodes of the region simulation: the relay drops 30 % of the packets reaching or leaving
    `lossy` (so about half the round trips fail) and every packet of `dead`."""
    assert shutil.which("ip"), "iproute2 is needed for the namespaces"
    sys.path.insert(0, str(Path(__file__).parent))
    from netns import Lab, Node, in_namespace

    lab = Lab(
        [Node("pinger", ["10.77.0.1"]), Node("lossy", ["10.77.0.2"], loss=0.3), Node("dead", ["10.77.0.3"], loss=1.0)],
        tmp_path,
    )
    lab.start()
    try:
        config = load_config(
            [
                _write(
                    tmp_path,
                    _check(name="lossy", host="10.77.0.2", count=20, timeout="5s", packet_timeout="100ms"),
                    _check(name="dead", host="10.77.0.3", count=3, packet_timeout="100ms"),
                )
            ]
        )

        async def both() -> list[Result]:
            runner = Runner()
            return [await runner.run(spec) for spec in config.checks]

        lossy, dead = in_namespace(lab.ns("pinger"), lambda: asyncio.run(both()), timeout=30)
    finally:
        lab.close()

    assert lossy.status == "up", lossy.error  # some replies came: the default expect is loss < 1
    assert 0 < lossy.metrics["loss"] < 1, lossy.metrics
    assert lossy.metrics["received"] == 20 - round(lossy.metrics["loss"] * 20)
    assert dead.status == "down"
    assert dead.metrics["loss"] == 1 and "rtt_avg" not in dead.metrics
    assert dead.error == "no reply to any echo request (loss 100%, expected < 1)"


# --- bad definitions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "field", "words"),
    [
        ({"host": "https://example.com"}, "host", "not a URL"),
        ({"host": "127.0.0.1", "count": 0}, "count", "greater than or equal to 1"),
        ({"host": "127.0.0.1", "interval": "1ms"}, "interval", "at least 10ms, got 1ms"),
        ({"host": "127.0.0.1", "packet_timeout": "0s"}, "packet_timeout", "greater than 0"),
        ({"host": "127.0.0.1", "ip_version": 5}, "ip_version", "4 or 6"),
        (
            {"host": "127.0.0.1", "count": 20, "interval": "1s"},
            None,
            "20 pings 1s apart, each waiting up to 300ms for its reply, take up to 25s: more than the check's timeout",
        ),
    ],
)
def test_bad_definitions_name_file_check_and_field(
    tmp_path: Path, keys: dict[str, Any], field: str | None, words: str
) -> None:
    path = _write(tmp_path, {**_check(), **keys})
    with pytest.raises(ConfigError) as raised:
        load_config([path])

    [problem] = raised.value.problems
    assert (problem.check, problem.field) == ("ping", field)
    assert words in problem.message, problem.message
    assert str(path) in str(problem)
