"""Several regions, for real: a hub and three agents as separate hosts on a simulated wide-area network.

Network namespaces (tests/netns.py) stand for the hosts: `hub`, three regions (`eu-west` 20 ms, `us-east` 80 ms,
`ap-south` 150 ms of round trip, with 0.5 %, 1 % and 2 % packet loss) and `targets`, which serves three
addresses. Real `prober run` processes: the hub with ingest tokens, one agent per region with `--push`, all
reading the same check file. Faults are firewall drops inside the namespaces:

1. a target unreachable from one region only: that location is down on the hub's feed, and under `quorum: 2`
   no incident opens;
2. a target unreachable from two regions: exactly one incident;
3. one region cut off from the hub for 60 s: its results reach the hub after the heal, every one exactly once
   (the agent's and the hub's id sets are equal, and the hub's rollups count each once).

Time-to-detect of each case is printed. About 100 s; marked `regions` (not in the main suite; `.ci/run`
runs it with `pytest -m regions`). Needs root, `ip`, `nft` and /dev/net/tun.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netns import Lab, Node, wait_for

pytestmark = [pytest.mark.regions, pytest.mark.slow]

HUB = "10.77.0.1"
HEALTHY, ONE_BLOCKED, TWO_BLOCKED = "10.77.0.20", "10.77.0.21", "10.77.0.22"
REGIONS = {  # location -> (namespace node, address, round trip in s, loss)
    "eu-west": ("eu", "10.77.0.11", 0.020, 0.005),
    "us-east": ("us", "10.77.0.12", 0.080, 0.01),
    "ap-south": ("ap", "10.77.0.13", 0.150, 0.02),
}
PARTITION_SECONDS = 60.0
TOKENS = {"eu-west": "tok-eu-0123456789", "us-east": "tok-us-0123456789", "ap-south": "tok-ap-0123456789"}

CHECKS = (
    """\
version: 1
ingest:
  tokens: {eu-west: "${EU_TOKEN}", us-east: "${US_TOKEN}", ap-south: "${AP_TOKEN}"}
defaults:
  schedule: every 2s
  timeout: 2500ms
  retries: 0
  locations: [eu-west, us-east, ap-south]
  alert: {after: 2, recover_after: 1, quorum: 2}
checks:
  - {name: healthy, type: http, url: "http://HEALTHY:8000/"}
  - {name: one-region-blocked, type: http, url: "http://ONE_BLOCKED:8000/"}
  - {name: two-regions-blocked, type: http, url: "http://TWO_BLOCKED:8000/"}
""".replace("HEALTHY", HEALTHY)
    .replace("ONE_BLOCKED", ONE_BLOCKED)
    .replace("TWO_BLOCKED", TWO_BLOCKED)
)


def say(line: str) -> None:
    print(f"regions: {line}", file=sys.stderr, flush=True)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    nodes = [Node("hub", [HUB]), Node("targets", [HEALTHY, ONE_BLOCKED, TWO_BLOCKED])]
    nodes += [Node(node, [address], rtt=rtt, loss=loss) for node, address, rtt, loss in REGIONS.values()]
    lab = Lab(nodes, workdir=tmp_path)
    try:
        lab.start()
        yield lab
    finally:
        lab.close()
        for name in ["hub", "targets", *(f"agent-{location}" for location in REGIONS)]:
            text = lab.log_of(name)
            if text:
                print(f"---- {name} (last lines)\n" + "\n".join(text.splitlines()[-15:]), file=sys.stderr)


def ids(db: Path, location: str) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM results WHERE location = ?", (location,))}


def rollup_count(db: Path, location: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        row = conn.execute("SELECT coalesce(sum(count), 0) FROM rollups_hourly WHERE location = ?", (location,))
        return int(row.fetchone()[0])


def latencies(db: Path, location: str) -> list[float]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        rows = conn.execute(
            "SELECT metrics FROM results WHERE location = ? AND \"check\" = 'healthy' AND status = 'up'", (location,)
        )
        return [float(json.loads(metrics)["latency"]) for (metrics,) in rows]


def test_quorum_partition_and_exactly_once_delivery_across_three_regions(lab: Lab, tmp_path: Path) -> None:
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "regions.yaml").write_text(CHECKS)
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>target</title>ok\n")
    env = {"EU_TOKEN": TOKENS["eu-west"], "US_TOKEN": TOKENS["us-east"], "AP_TOKEN": TOKENS["ap-south"]}
    prober = [sys.executable, "-m", "prober", "run", str(checks)]

    lab.spawn(
        "targets",
        [sys.executable, "-m", "http.server", "8000", "--bind", "0.0.0.0", "--directory", str(site)],
        name="targets",
    )
    hub_db = tmp_path / "hub.db"
    hub = lab.spawn(
        "hub", [*prober, "--db", str(hub_db), "--location", "hub", "--listen", f"{HUB}:8080"], name="hub", env=env
    )
    agents: dict[str, Any] = {}
    for location, (node, _address, _rtt, _loss) in REGIONS.items():
        token = tmp_path / f"{location}.token"
        token.write_text(TOKENS[location] + "\n")
        agents[location] = lab.spawn(
            node,
            [
                *prober,
                "--db",
                str(tmp_path / f"{location}.db"),
                "--location",
                location,
                "--listen",
                "off",
                "--push",
                f"http://{HUB}:8080",
                "--token-file",
                str(token),
            ],
            name=f"agent-{location}",
            env=env,
        )

    def feed() -> dict[str, Any]:
        try:
            document: dict[str, Any] = lab.get_json("hub", f"http://{HUB}:8080/api/v1/status")
        except OSError:
            return {}
        return {check["name"]: check for check in document.get("checks", [])}

    def location_status(check: dict[str, Any], location: str) -> str:
        return next(item["status"] for item in check["locations"] if item["location"] == location)

    def incidents(check: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = lab.get_json("hub", f"http://{HUB}:8080/api/v1/incidents?check={check}")[
            "incidents"
        ]
        return found

    def all_up() -> bool:
        checks_now = feed()
        return len(checks_now) == 3 and all(
            location_status(check, location) == "up" for check in checks_now.values() for location in REGIONS
        )

    _, took = wait_for(all_up, timeout=60, what="every check up from every region on the hub's feed")
    assert hub.poll() is None and all(agent.poll() is None for agent in agents.values())
    say(f"all three regions up on the hub's feed {took:.1f} s after start")

    # The simulated distances are real: the healthy check's latency (connect + request: two round trips)
    # grows with the region's round trip.
    wait_for(lambda: all(len(latencies(hub_db, loc)) >= 3 for loc in REGIONS), timeout=30, what="latencies")
    medians = {location: statistics.median(latencies(hub_db, location)) for location in REGIONS}
    say("healthy check latency (median): " + ", ".join(f"{loc} {ms * 1000:.0f} ms" for loc, ms in medians.items()))
    assert medians["eu-west"] < medians["us-east"] < medians["ap-south"]
    for location, (_node, _address, rtt, _loss) in REGIONS.items():
        assert 2 * rtt * 0.9 <= medians[location] < 2 * rtt + 0.5, (location, medians[location])

    # ---- cases 1 and 2: a target unreachable from one region, another from two ----------------------------
    eu, us = REGIONS["eu-west"][1], REGIONS["us-east"][1]
    lab.drop_from("targets", [eu], to=ONE_BLOCKED, table="one")  # only eu-west cannot reach it
    lab.drop_from("targets", [eu, us], to=TWO_BLOCKED, table="two")  # eu-west and us-east cannot
    started = time.monotonic()

    def one_region_down() -> bool:
        check = feed().get("one-region-blocked")
        return check is not None and location_status(check, "eu-west") == "down"

    def incident_open() -> list[dict[str, Any]]:
        return [item for item in incidents("two-regions-blocked") if item["open"]]

    _, one_detect = wait_for(one_region_down, timeout=60, what="eu-west down for one-region-blocked")
    opened, _ = wait_for(incident_open, timeout=60, what="an incident for two-regions-blocked")
    two_detect = time.monotonic() - started
    time.sleep(8)  # several more rounds of down results from the same regions
    checks_now = feed()
    one = checks_now["one-region-blocked"]
    assert location_status(one, "eu-west") == "down"
    assert location_status(one, "us-east") == "up" and location_status(one, "ap-south") == "up"
    assert one["status"] == "degraded", one["status"]  # one location down < quorum 2: not down, no incident
    assert incidents("one-region-blocked") == []
    two_incidents = incidents("two-regions-blocked")
    assert len(two_incidents) == 1 and two_incidents[0]["open"], two_incidents
    assert set(two_incidents[0]["locations"]) == {"eu-west", "us-east"}, two_incidents
    assert checks_now["two-regions-blocked"]["status"] == "down"
    assert checks_now["healthy"]["status"] == "up"
    say(
        f"case 1, unreachable from eu-west only: eu-west down on the feed after {one_detect:.1f} s; "
        "status degraded, no incident (quorum 2)"
    )
    say(
        f"case 2, unreachable from eu-west and us-east: one incident open after {two_detect:.1f} s "
        f"(locations {', '.join(sorted(opened[0]['locations']))})"
    )

    lab.heal("targets", table="one")
    lab.heal("targets", table="two")
    _, recovered = wait_for(lambda: not incident_open() and all_up(), timeout=60, what="two-regions-blocked resolved")
    say(f"after the heal the incident resolved and every location is up again in {recovered:.1f} s")
    assert len(incidents("two-regions-blocked")) == 1

    # ---- case 3: ap-south cut off from the hub for 60 s ------------------------------------------------------
    ap = REGIONS["ap-south"][1]
    ap_db = tmp_path / "ap-south.db"
    before = ids(hub_db, "ap-south")
    lab.drop_from("hub", [ap], table="partition")
    lab.drop_from("ap", [HUB], table="partition")
    cut = time.monotonic()
    time.sleep(PARTITION_SECONDS)
    made_during = ids(ap_db, "ap-south") - before
    arrived_during = ids(hub_db, "ap-south") - before
    lab.heal("hub", table="partition")
    lab.heal("ap", table="partition")
    healed = time.monotonic()
    say(
        f"case 3: ap-south cut off from the hub for {healed - cut:.0f} s; it made {len(made_during)} results, "
        f"{len(arrived_during)} of them reached the hub meanwhile"
    )
    # A few may have left in the moment before the cut took effect; the rest must wait for the heal.
    assert len(made_during) >= 60 and len(arrived_during) <= 6, (len(made_during), len(arrived_during))
    _, delivered = wait_for(
        lambda: made_during <= ids(hub_db, "ap-south"), timeout=120, interval=1.0, what="ap-south's backlog"
    )
    say(f"case 3: the backlog of {len(made_during)} results reached the hub {delivered:.1f} s after the heal")
    # transient failures back off to at most 10 s, and a connect gives up after 5 s
    assert delivered < 20, f"the backlog arrived {delivered:.1f} s after the heal"
    # Stop the agent (it pushes what is pending on SIGTERM), then compare everything it ever made.
    assert lab.stop(agents["ap-south"], timeout=20) == 0
    time.sleep(1)
    agent_ids, hub_ids = ids(ap_db, "ap-south"), ids(hub_db, "ap-south")
    assert agent_ids == hub_ids, (len(agent_ids - hub_ids), len(hub_ids - agent_ids))
    assert rollup_count(hub_db, "ap-south") == len(hub_ids)  # each result counted once by the hub
    assert incidents("healthy") == [] and incidents("one-region-blocked") == []
    say(f"case 3: agent and hub hold the same {len(hub_ids)} ap-south result ids; rollups count each once")

    for location in ("eu-west", "us-east"):
        assert lab.stop(agents[location], timeout=20) == 0
    assert lab.stop(hub, timeout=20) == 0
    for location in REGIONS:  # nothing an agent made is missing on the hub
        assert ids(tmp_path / f"{location}.db", location) == ids(hub_db, location), location
