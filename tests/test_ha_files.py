"""The high-availability deployment files: docker/compose.ha.yaml (with docker/ha/) and docker/k8s/ha/.

They parse and agree with each other: two hubs with a volume each, agents pushing to every hub, Alertmanager
peers naming each other, the prober checks naming every peer, nginx with both hubs upstream, ports bound to
127.0.0.1, the example target probed by default; Alertmanager's own `amtool check-config` accepts both Alertmanager
configurations. docker/k8s/ha/ is an overlay of docker/k8s/base/, rendered here with `kubectl kustomize` from a copy
holding the token files a user creates: it keeps everything the base has (probes, security, budgets, policies,
labels: tests/test_container_files.py validates every overlay against the Kubernetes schemas and checks those for
all of them) and adds a second hub pod, pushes to both, and an Alertmanager cluster whose pods keep apart, may lose
one at a time, and take connections only from the hubs (the API) and from each other (gossip). Running the stack for
real is tests/test_ha.py (the same pieces as processes on loopback).
"""

from __future__ import annotations

import base64
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
K8S = DOCKER / "k8s"
K8S_HA = K8S / "ha"
NAMESPACE = "prober-ha"
TOKENS_ENV = {"EU_WEST_TOKEN": "t-eu", "US_EAST_TOKEN": "t-us"}
LOCATIONS = ("eu-west", "us-east")
HUB = {"app.kubernetes.io/name": "prober", "app.kubernetes.io/component": "hub"}


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DOCKER / "compose.ha.yaml").read_text())
    return doc


def flags(command: list[str], name: str) -> list[str]:
    return [item.split("=", 1)[1] for item in command if item.startswith(f"--{name}=")]


def test_compose_ha_has_two_hubs_two_agents_two_alertmanagers_nginx_and_the_target_with_no_profiles() -> None:
    services = compose()["services"]
    assert set(services) == {
        "hub-0", "hub-1", "agent-eu-west", "agent-us-east", "alertmanager-0", "alertmanager-1", "nginx", "target",
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
        assert set(agent["depends_on"]) == {*hubs, "target"}


def test_compose_ha_binds_every_published_port_to_loopback() -> None:
    published = {name: s["ports"] for name, s in compose()["services"].items() if s.get("ports")}
    assert published == {
        "nginx": ["${PROBER_BIND:-127.0.0.1}:${PROBER_PORT:-8080}:8080"],  # as compose.yaml publishes its hub
        "alertmanager-0": ["127.0.0.1:${ALERTMANAGER_PORT:-9093}:9093"],
    }


def test_compose_ha_passes_the_target_to_every_prober_and_its_checks_probe_it_by_default() -> None:
    services = compose()["services"]
    for name in ("hub-0", "hub-1", "agent-eu-west", "agent-us-east"):
        env = services[name]["environment"]
        assert env["TARGET_URL"] == "${TARGET_URL:-http://target:8000/}", name
        assert env["STATUS_PAGE_URL"] == "${STATUS_PAGE_URL:-http://127.0.0.1:8080}", name
    assert "/data" in services["target"]["tmpfs"]  # no anonymous volume left behind by `down -v`
    config = load_config([HA / "checks"], env=TOKENS_ENV)
    assert [str(c.model.url) for c in config.checks] == ["http://target:8000/"]  # type: ignore[attr-defined]
    mine = load_config([HA / "checks"], env={**TOKENS_ENV, "TARGET_URL": "https://example.org/"})
    assert [str(c.model.url) for c in mine.checks] == ["https://example.org/"]  # type: ignore[attr-defined]


def test_compose_ha_says_how_to_create_the_tokens_start_and_tear_everything_down() -> None:
    header = (DOCKER / "compose.ha.yaml").read_text().split("\nx-prober:")[0]
    command = "podman-compose -p prober-ha -f docker/compose.ha.yaml"
    for needed in ("openssl rand -hex 24 > docker/secrets/eu_west_token", "chmod 0644 docker/secrets/*",
                   f"{command} up -d", f"{command} down -v && podman network rm prober-ha_default",
                   "podman healthcheck run prober-ha_hub-0_1"):  # fmt: skip
        assert needed in header, needed
    page = (ROOT / "docs" / "high-availability.md").read_text()
    assert "podman-compose -p prober-ha -f docker/compose.ha.yaml down -v" in page
    assert "--build" not in page, "compose never builds (docs/deployment.md): scripts/build-images does"


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
        configmap = find(rendered(tmp_path), "ConfigMap", "alertmanager")
        path = tmp_path / "alertmanager.yml"
        path.write_text(configmap["data"]["alertmanager.yml"])
    done = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# ---- Kubernetes ---------------------------------------------------------------------------------------------


def rendered(tmp_path: Path, overlay: str = "ha") -> list[dict[str, Any]]:
    """`kubectl kustomize` of an overlay, from a copy of docker/k8s holding the token files a user creates."""
    copy = tmp_path / f"k8s-{overlay}"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("eu-west", "us-east"))
    for location in LOCATIONS:
        (copy / "base" / "secrets" / location).write_text(f"token-of-{location}\n")
    done = subprocess.run(
        ["kubectl", "kustomize", str(copy / overlay)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def find(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def of_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


def pod_spec(statefulset: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = statefulset["spec"]["template"]["spec"]
    return spec


def pod_labels(statefulset: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = statefulset["spec"]["template"]["metadata"]["labels"]
    return labels


def env_of(statefulset: dict[str, Any]) -> dict[str, Any]:
    container = pod_spec(statefulset)["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a matchLabels selector (the only form these manifests use) selects these labels."""
    assert set(selector) <= {"matchLabels"}, selector
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def test_the_overlay_builds_on_the_base_and_lists_every_file_of_its_directory() -> None:
    kustomization = yaml.safe_load((K8S_HA / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["../base", "alertmanager"]
    assert {patch["path"] for patch in kustomization["patches"]} == {p.name for p in K8S_HA.glob("*.yaml")} - {
        "kustomization.yaml"
    }
    assert kustomization["namespace"] == NAMESPACE
    alertmanager = yaml.safe_load((K8S_HA / "alertmanager" / "kustomization.yaml").read_text())
    assert set(alertmanager["resources"]) == {p.name for p in (K8S_HA / "alertmanager").glob("*.yaml")} - {
        "kustomization.yaml"
    }


def test_every_object_renders_into_its_namespace_with_the_instance_label_and_the_base_tokens(tmp_path: Path) -> None:
    documents = rendered(tmp_path)
    (namespace,) = of_kind(documents, "Namespace")  # the base's, renamed
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in documents:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE, where
        assert doc["metadata"]["labels"]["app.kubernetes.io/instance"] == NAMESPACE, where  # not the base's
    (secret,) = of_kind(documents, "Secret")  # from docker/k8s/base/secrets/, the files the user creates
    assert secret["metadata"]["name"].startswith("prober-tokens-")
    assert {key: base64.b64decode(value).decode() for key, value in secret["data"].items()} == {
        location: f"token-of-{location}\n" for location in LOCATIONS
    }
    images = {pod_spec(d)["containers"][0]["image"] for d in of_kind(documents, "StatefulSet")}
    assert images == {"localhost/prober:slim", "docker.io/prom/alertmanager:v0.27.0"}


def test_the_hubs_and_agents_are_the_bases_but_for_replicas_pushes_and_placement(tmp_path: Path) -> None:
    """Everything an operator reviewed in the base (probes, security, resources, volumes, budgets, policies, the
    Ingress) is in the overlay unchanged: only the HA differences are allowed to differ."""
    base, ha = rendered(tmp_path, "base"), rendered(tmp_path, "ha")
    names = {(d["kind"], d["metadata"]["name"]) for d in ha if d["kind"] != "Namespace"}
    alertmanager = {(d["kind"], d["metadata"]["name"]) for d in ha if d["metadata"]["name"] == "alertmanager"}
    assert {(d["kind"], d["metadata"]["name"]) for d in base if d["kind"] != "Namespace"} | alertmanager == names
    assert alertmanager == {(kind, "alertmanager") for kind in ("ConfigMap", "ServiceAccount", "Service",
                            "PodDisruptionBudget", "StatefulSet", "NetworkPolicy")}  # fmt: skip
    for kind in ("PodDisruptionBudget", "NetworkPolicy", "Ingress"):
        for doc in of_kind(base, kind):
            assert find(ha, kind, doc["metadata"]["name"])["spec"] == doc["spec"], (kind, doc["metadata"]["name"])

    def without_ha_changes(statefulset: dict[str, Any]) -> dict[str, Any]:
        spec = dict(statefulset["spec"], replicas=None, podManagementPolicy=None)
        spec["template"] = {"spec": dict(pod_spec(statefulset), affinity=None)}
        (container,) = spec["template"]["spec"]["containers"]
        env = [e for e in container.get("env", []) if e["name"] != "PROBER_PUSH"]
        spec["template"]["spec"]["containers"] = [dict(container, env=sorted(env, key=lambda e: str(e["name"])))]
        spec["volumeClaimTemplates"] = [{"spec": t["spec"]} for t in spec["volumeClaimTemplates"]]
        return spec

    for statefulset in of_kind(base, "StatefulSet"):
        name = statefulset["metadata"]["name"]
        mine = find(ha, "StatefulSet", name)
        assert without_ha_changes(mine) == without_ha_changes(statefulset), name
        if name.startswith("agent-"):
            assert mine["spec"]["replicas"] == statefulset["spec"]["replicas"], name
            assert pod_spec(mine)["affinity"] == pod_spec(statefulset)["affinity"], name


def test_two_hub_pods_with_a_volume_each_and_agents_pushing_to_each_by_its_pod_name(tmp_path: Path) -> None:
    documents = rendered(tmp_path)
    hub = find(documents, "StatefulSet", "hub")
    replicas, service = hub["spec"]["replicas"], hub["spec"]["serviceName"]
    assert replicas == 2 and hub["spec"]["podManagementPolicy"] == "Parallel"
    assert [t["metadata"]["name"] for t in hub["spec"]["volumeClaimTemplates"]] == ["data"]
    headless = find(documents, "Service", service)
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    assert headless["spec"]["selector"] == hub["spec"]["selector"]["matchLabels"]
    pods = [f"http://hub-{index}.{service}:8080" for index in range(replicas)]
    for location in LOCATIONS:
        agent = env_of(find(documents, "StatefulSet", f"agent-{location}"))
        assert agent["PROBER_PUSH"].split(",") == pods
        assert agent["PROBER_LOCATION"] == location
    assert env_of(hub)["PROBER_LOCATION"] == "hub"
    # the status page: the Ingress's Service spreads readers over both hub pods
    backends = {
        item["backend"]["service"]["name"]
        for rule in find(documents, "Ingress", "status-page")["spec"]["rules"]
        for item in rule["http"]["paths"]
    }
    assert backends == {"hub"} and find(documents, "Service", "hub")["spec"]["selector"] == HUB


@pytest.mark.parametrize("name", ["hub", "alertmanager"])
def test_the_two_replicas_must_run_on_different_nodes_and_one_at_a_time_may_go(tmp_path: Path, name: str) -> None:
    documents = rendered(tmp_path)
    statefulset = find(documents, "StatefulSet", name)
    assert statefulset["spec"]["replicas"] == 2
    anti = pod_spec(statefulset)["affinity"]["podAntiAffinity"]
    assert set(anti) == {"requiredDuringSchedulingIgnoredDuringExecution"}, "two replicas on one node are one failure"
    (term,) = anti["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert selects(term["labelSelector"], pod_labels(statefulset))
    for other in of_kind(documents, "StatefulSet"):
        if other is not statefulset:
            assert not selects(term["labelSelector"], pod_labels(other)), other["metadata"]["name"]
    (budget,) = [
        b for b in of_kind(documents, "PodDisruptionBudget") if selects(b["spec"]["selector"], pod_labels(statefulset))
    ]
    assert budget["spec"]["maxUnavailable"] == 1  # of 2: one always serves


def test_the_alertmanager_statefulset_peers_with_itself_and_prober_posts_to_every_peer(tmp_path: Path) -> None:
    documents = rendered(tmp_path)
    alertmanager = find(documents, "StatefulSet", "alertmanager")
    replicas, service = alertmanager["spec"]["replicas"], alertmanager["spec"]["serviceName"]
    headless = find(documents, "Service", service)
    assert replicas == 2 and headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True  # peers find each other while starting
    assert {(p["port"], p.get("protocol", "TCP")) for p in headless["spec"]["ports"]} == {
        (9093, "TCP"), (9094, "TCP"), (9094, "UDP"),
    }  # fmt: skip
    (container,) = pod_spec(alertmanager)["containers"]
    args = container["args"]
    names = [f"alertmanager-{index}.{service}" for index in range(replicas)]
    assert flags(args, "cluster.peer") == [f"{name}:9094" for name in names]
    assert flags(args, "cluster.listen-address") == ["0.0.0.0:9094"]
    assert flags(args, "cluster.advertise-address") == ["[$(POD_IP)]:9094"]
    assert env_of(alertmanager)["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    checks = find(documents, "ConfigMap", "prober-checks")["data"]["checks.yaml"]
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "checks.yaml").write_text(checks)
    config = load_config([tmp_path / "checks"], env=TOKENS_ENV)
    assert config.notifiers["pager"].alertmanager == [f"http://{name}:9093" for name in names]
    assert not config.select(location="hub"), "the hubs probe nothing"
    secret = of_kind(documents, "Secret")[0]
    assert set(secret["data"]) == set(config.ingest.tokens) == set(LOCATIONS)
    # the same alerting as compose's checks (which probe the example target instead of public sites)
    compose_checks = {spec.name: spec.model for spec in load_config([HA / "checks"], env=TOKENS_ENV).checks}
    k8s_checks = {spec.name: spec.model for spec in config.checks}
    assert set(compose_checks) <= set(k8s_checks)
    for name, model in compose_checks.items():
        assert k8s_checks[name].alert == model.alert, name  # the same labels: the same Alertmanager routing


def test_the_alertmanager_pods_are_as_locked_down_as_probers_and_say_their_version(tmp_path: Path) -> None:
    documents = rendered(tmp_path)
    alertmanager = find(documents, "StatefulSet", "alertmanager")
    pod = pod_spec(alertmanager)
    (container,) = pod["containers"]
    assert pod["automountServiceAccountToken"] is False
    assert find(documents, "ServiceAccount", pod["serviceAccountName"])["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["memory"]
    assert all(v["emptyDir"].get("sizeLimit") for v in pod["volumes"] if "emptyDir" in v)
    assert container["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/-/healthy", "port": "http"}
    assert "initialDelaySeconds" not in container["livenessProbe"]  # the startupProbe covers the start
    tag = container["image"].rsplit(":", 1)[1]
    for labels in (alertmanager["metadata"]["labels"], pod_labels(alertmanager)):
        assert labels["app.kubernetes.io/version"] == tag.removeprefix("v")  # its own version, not prober's
        assert labels["app.kubernetes.io/part-of"] == "prober"
        assert labels["app.kubernetes.io/component"] == "alerting"
    kustomization = yaml.safe_load((K8S_HA / "alertmanager" / "kustomization.yaml").read_text())
    (image,) = [i for i in kustomization["images"] if i["name"] == "docker.io/prom/alertmanager"]
    assert image["newTag"] == tag
    for doc in documents:  # every Alertmanager object says Alertmanager's version
        if doc["metadata"]["labels"].get("app.kubernetes.io/name") == "alertmanager":
            assert doc["metadata"]["labels"]["app.kubernetes.io/version"] == tag.removeprefix("v"), doc["kind"]


# ---- Kubernetes: who may connect where ---------------------------------------------------------------------

Source = tuple[str, dict[str, str]]  # a pod: its namespace and its labels


def admits(documents: list[dict[str, Any]], source: Source, target: dict[str, str], port: int, protocol: str) -> bool:
    """Whether the rendered NetworkPolicies let `source` connect to a pod of the overlay's namespace with the
    labels `target` on port/protocol (the Kubernetes semantics, for the selector forms these manifests use)."""
    namespace, labels = source
    policies = [
        p
        for p in of_kind(documents, "NetworkPolicy")
        if "Ingress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], target)
    ]
    if not policies:
        return True  # a pod no policy selects is not isolated

    def peer_matches(peer: dict[str, Any]) -> bool:
        if "namespaceSelector" in peer:
            in_namespace = selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace})
        else:
            in_namespace = namespace == NAMESPACE
        return in_namespace and selects(peer.get("podSelector", {}), labels)

    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            ports = rule.get("ports")
            if ports is not None and not any(p["port"] == port and p.get("protocol", "TCP") == protocol for p in ports):
                continue
            if "from" not in rule or any(peer_matches(peer) for peer in rule["from"]):
                return True
    return False


def test_only_agents_ingest_only_hubs_page_and_only_peers_gossip(tmp_path: Path) -> None:
    documents = rendered(tmp_path)
    hub = pod_labels(find(documents, "StatefulSet", "hub"))
    alertmanager = pod_labels(find(documents, "StatefulSet", "alertmanager"))
    eu_west = pod_labels(find(documents, "StatefulSet", "agent-eu-west"))
    us_east = pod_labels(find(documents, "StatefulSet", "agent-us-east"))
    pods: dict[str, Source] = {
        "hub": (NAMESPACE, hub), "alertmanager": (NAMESPACE, alertmanager),
        "agent-eu-west": (NAMESPACE, eu_west), "agent-us-east": (NAMESPACE, us_east),
        "another pod of the namespace": (NAMESPACE, {"app": "debug"}),
        "the ingress controller": ("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}),
        "Prometheus": ("monitoring", {"app.kubernetes.io/name": "prometheus"}),
        "a pod of another namespace": ("default", {"app.kubernetes.io/name": "prober"}),
    }  # fmt: skip
    allowed = {
        ("agent-eu-west", "hub", 8080, "TCP"), ("agent-us-east", "hub", 8080, "TCP"),  # ingest
        ("the ingress controller", "hub", 8080, "TCP"),  # the status page, for anyone, through the Ingress
        ("Prometheus", "hub", 8080, "TCP"), ("Prometheus", "agent-eu-west", 8080, "TCP"),  # /metrics
        ("Prometheus", "agent-us-east", 8080, "TCP"),
        ("hub", "alertmanager", 9093, "TCP"),  # the hubs post their alerts
        ("alertmanager", "alertmanager", 9094, "TCP"), ("alertmanager", "alertmanager", 9094, "UDP"),  # gossip
    }  # fmt: skip
    targets = {"hub": hub, "alertmanager": alertmanager, "agent-eu-west": eu_west, "agent-us-east": us_east}
    ports = [(8080, "TCP"), (9093, "TCP"), (9094, "TCP"), (9094, "UDP")]
    wrong = []
    for source_name, source in pods.items():
        for target_name, target in targets.items():
            for port, protocol in ports:
                expected = (source_name, target_name, port, protocol) in allowed
                if admits(documents, source, target, port, protocol) != expected:
                    verb = "is let" if not expected else "is not let"
                    wrong.append(f"{source_name} {verb} into {target_name} on {port}/{protocol}")
    assert not wrong, "; ".join(wrong)
    # the ports the policies open are the ones the containers listen on
    (container,) = pod_spec(find(documents, "StatefulSet", "alertmanager"))["containers"]
    assert {(p["containerPort"], p.get("protocol", "TCP")) for p in container["ports"]} == {
        (9093, "TCP"), (9094, "TCP"), (9094, "UDP"),
    }  # fmt: skip


def test_the_policy_check_sees_a_policy_that_lets_everyone_in(tmp_path: Path) -> None:
    documents = rendered(tmp_path)
    policy = find(documents, "NetworkPolicy", "alertmanager")
    source: Source = (NAMESPACE, {"app": "debug"})
    target = pod_labels(find(documents, "StatefulSet", "alertmanager"))
    assert not admits(documents, source, target, 9093, "TCP")
    policy["spec"]["ingress"][0]["from"].append({"podSelector": {}})  # a careless edit: every pod of the namespace
    assert admits(documents, source, target, 9093, "TCP")
    del policy["spec"]["ingress"][0]["from"]  # no `from`: everyone, from anywhere
    assert admits(documents, ("default", {}), target, 9093, "TCP")
