"""The high-availability deployment files: docker/compose.ha.yaml (with docker/ha/) and docker/k8s/ha/.

They parse and agree with each other: two hubs with a volume each, agents pushing to every hub, Alertmanager
peers naming each other, the prober checks naming every peer, nginx with both hubs upstream, ports bound to
127.0.0.1; Alertmanager's own `amtool check-config` accepts both Alertmanager configurations, and
`kubectl kustomize` renders the Kubernetes manifests. Running the stack for real is tests/test_ha.py (the same
pieces as processes on loopback).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from prober.config.loader import load_config

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
HA = DOCKER / "ha"
K8S_HA = DOCKER / "k8s" / "ha"
TOKENS_ENV = {"EU_WEST_TOKEN": "t-eu", "US_EAST_TOKEN": "t-us"}
LOCATIONS = ("eu-west", "us-east")


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DOCKER / "compose.ha.yaml").read_text())
    return doc


def flags(command: list[str], name: str) -> list[str]:
    return [item.split("=", 1)[1] for item in command if item.startswith(f"--{name}=")]


def test_compose_ha_has_two_hubs_two_agents_two_alertmanagers_and_nginx_with_no_profiles() -> None:
    services = compose()["services"]
    assert set(services) == {
        "hub-0", "hub-1", "agent-eu-west", "agent-us-east", "alertmanager-0", "alertmanager-1", "nginx",
    }  # fmt: skip
    assert not any("profiles" in service for service in services.values()), "podman-compose 1.0.3 ignores profiles"
    volumes = set()
    for hub in ("hub-0", "hub-1"):
        env = services[hub]["environment"]
        assert env["PROBER_LOCATION"] == "hub" and env["PROBER_LISTEN"] == "0.0.0.0:8080"
        data = [v for v in services[hub]["volumes"] if v.endswith(":/data")]
        assert len(data) == 1
        volumes.add(data[0])
    assert len(volumes) == 2, "each hub has its own database volume"


def test_compose_ha_agents_push_to_every_hub_and_publish_nothing() -> None:
    services = compose()["services"]
    hubs = sorted(name for name in services if name.startswith("hub-"))
    for location in LOCATIONS:
        agent = services[f"agent-{location}"]
        assert agent["environment"]["PROBER_PUSH"].split(",") == [f"http://{hub}:8080" for hub in hubs]
        assert "ports" not in agent
        assert set(agent["depends_on"]) == set(hubs)


def test_compose_ha_binds_every_published_port_to_loopback() -> None:
    published = {name: s["ports"] for name, s in compose()["services"].items() if s.get("ports")}
    assert set(published) == {"nginx", "alertmanager-0"}
    for ports in published.values():
        for port in ports:
            assert port.startswith("127.0.0.1:"), port


def test_compose_ha_alertmanager_peers_name_each_other_and_prober_names_every_peer() -> None:
    services = compose()["services"]
    peers = sorted(name for name in services if name.startswith("alertmanager-"))
    for name in peers:
        command = services[name]["command"]
        others = [f"{peer}:9094" for peer in peers if peer != name]
        assert flags(command, "cluster.peer") == others
        assert flags(command, "cluster.listen-address") == ["0.0.0.0:9094"]
    config = load_config([HA / "checks"], env=TOKENS_ENV)
    assert config.notifiers["pager"].alertmanager == [f"http://{peer}:9093" for peer in peers]
    assert config.status_page.url == "http://127.0.0.1:8080"
    for location in LOCATIONS:
        assert config.select(location=location)
    assert not config.select(location="hub"), "the hubs probe nothing"
    assert all(spec.model.alert.notify == ["pager"] for spec in config.checks)


def test_compose_ha_mounts_files_that_exist_and_nginx_has_both_hubs_upstream() -> None:
    for service in compose()["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DOCKER / source).exists(), source
    nginx = (HA / "nginx.conf").read_text()
    assert re.findall(r"server (hub-\d):8080", nginx) == ["hub-0", "hub-1"]
    assert "proxy_next_upstream error timeout" in nginx


@pytest.mark.parametrize("source", ["compose", "k8s"])
def test_amtool_accepts_the_alertmanager_configuration(tmp_path: Path, source: str) -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.fail("amtool is missing: apt-get install prometheus-alertmanager (scripts/test does)")
    if source == "compose":
        path = HA / "alertmanager.yml"
    else:
        configmap = next(d for d in rendered() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "alertmanager")
        path = tmp_path / "alertmanager.yml"
        path.write_text(configmap["data"]["alertmanager.yml"])
    done = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# ---- Kubernetes ---------------------------------------------------------------------------------------------


def rendered() -> list[dict[str, Any]]:
    done = subprocess.run(
        ["kubectl", "kustomize", str(K8S_HA)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def find(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def env_of(statefulset: dict[str, Any]) -> dict[str, Any]:
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_the_kustomization_lists_every_manifest_and_renders_into_its_namespace() -> None:
    kustomization = yaml.safe_load((K8S_HA / "kustomization.yaml").read_text())
    assert set(kustomization["resources"]) == {p.name for p in K8S_HA.glob("*.yaml")} - {"kustomization.yaml"}
    documents = rendered()
    for doc in documents:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "prober-ha", doc["metadata"]["name"]
    images = {d["spec"]["template"]["spec"]["containers"][0]["image"] for d in documents if d["kind"] == "StatefulSet"}
    assert images == {"localhost/prober:slim", "docker.io/prom/alertmanager:v0.27.0"}


def test_two_hub_pods_with_a_volume_each_and_agents_pushing_to_each_by_its_pod_name() -> None:
    documents = rendered()
    hub = find(documents, "StatefulSet", "hub")
    replicas, service = hub["spec"]["replicas"], hub["spec"]["serviceName"]
    assert replicas == 2
    assert [t["metadata"]["name"] for t in hub["spec"]["volumeClaimTemplates"]] == ["data"]
    headless = find(documents, "Service", service)
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == hub["spec"]["selector"]["matchLabels"]
    pods = [f"http://hub-{index}.{service}:8080" for index in range(replicas)]
    for location in LOCATIONS:
        agent = env_of(find(documents, "StatefulSet", f"agent-{location}"))
        assert agent["PROBER_PUSH"].split(",") == pods
        assert agent["PROBER_LOCATION"] == location
    assert env_of(hub)["PROBER_LOCATION"] == "hub"


def test_the_alertmanager_statefulset_peers_with_itself_and_prober_posts_to_every_peer(tmp_path: Path) -> None:
    documents = rendered()
    alertmanager = find(documents, "StatefulSet", "alertmanager")
    replicas, service = alertmanager["spec"]["replicas"], alertmanager["spec"]["serviceName"]
    assert replicas == 2 and find(documents, "Service", service)["spec"]["clusterIP"] == "None"
    args = alertmanager["spec"]["template"]["spec"]["containers"][0]["args"]
    names = [f"alertmanager-{index}.{service}" for index in range(replicas)]
    assert flags(args, "cluster.peer") == [f"{name}:9094" for name in names]
    checks = find(documents, "ConfigMap", "prober-checks")["data"]["checks.yaml"]
    (tmp_path / "checks.yaml").write_text(checks)
    config = load_config([tmp_path], env=TOKENS_ENV)
    assert config.notifiers["pager"].alertmanager == [f"http://{name}:9093" for name in names]
    secret = find(documents, "Secret", "prober-tokens")
    assert set(secret["stringData"]) == set(config.ingest.tokens) == set(LOCATIONS)
