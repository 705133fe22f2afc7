"""The deployment files under docker/: they parse, agree with each other, and the image's helpers behave.

Static checks of docker/compose*.yaml (as podman-compose 1.0.3 turns them into `podman run` commands), the
Kubernetes manifests of docker/k8s/ (rendered with `kubectl kustomize`, every overlay, and validated offline
against the Kubernetes OpenAPI schemas with kubernetes-validate, strictly), the Prometheus and Grafana files and
the Dockerfile; the entrypoint script (secrets from *_FILE, --shard from the pod ordinal) and the healthcheck run
for real. Building and running the images is scripts/test-containers (with scripts/build-images).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from aiohttp import web

from prober.config.loader import load_config

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
K8S = DOCKER / "k8s"
BASE = K8S / "base"
ENTRYPOINT = DOCKER / "entrypoint.sh"
HEALTHCHECK = DOCKER / "healthcheck.py"
TOKENS_ENV = {"EU_WEST_TOKEN": "t-eu", "US_EAST_TOKEN": "t-us"}
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
# The oldest Kubernetes the manifests claim (unhealthyPodEvictionPolicy is beta from 1.27) and the newest schema.
KUBERNETES_VERSIONS = ("1.27.0", "1.37.0")
OVERLAYS = sorted(p.parent.name for p in K8S.glob("*/kustomization.yaml"))


def kustomize(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=120)


def k8s_copy(tmp_path: Path, tokens: bool = True) -> Path:
    """docker/k8s copied to tmp_path, with the token files a user creates (the checkout has none)."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("eu-west", "us-east"))
    if tokens:
        for directory in {p.parent for p in copy.glob("*/kustomization.yaml")}:
            if (directory / "secrets").is_dir():
                (directory / "secrets" / "eu-west").write_text("token-of-eu-west\n")
                (directory / "secrets" / "us-east").write_text("token-of-us-east\n")
    return copy


def rendered(tmp_path: Path, overlay: str = "base") -> list[dict[str, Any]]:
    done = kustomize(k8s_copy(tmp_path) / overlay)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def find(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def of_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


def container(statefulset: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = statefulset["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(item: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in item.get("env", [])}


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector with matchLabels (the only form these manifests use) selects these labels."""
    assert set(selector) <= {"matchLabels"}, selector
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def agents(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        env_of(container(d))["PROBER_LOCATION"]: d
        for d in docs
        if d["kind"] == "StatefulSet" and d["metadata"]["name"].startswith("agent-")
    }


def pod_labels(statefulset: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = statefulset["spec"]["template"]["metadata"]["labels"]
    return labels


# ---- YAML parses; kustomize renders every overlay; the schemas accept every object ----------------------------


def test_every_yaml_file_under_docker_parses() -> None:
    files = sorted(DOCKER.rglob("*.yml")) + sorted(DOCKER.rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert documents, f"{path} is empty"
        assert all(isinstance(d, dict) for d in documents), path


def test_the_base_kustomization_lists_every_manifest_in_its_directory_and_nothing_else() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    for name in listed:
        for doc in yaml.safe_load_all((BASE / name).read_text()):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), doc
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"]), doc["metadata"]["name"]


def test_base_and_full_overlays_exist_and_every_overlay_renders() -> None:
    assert {"base", "full"} <= set(OVERLAYS), OVERLAYS


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_passes_the_kubernetes_schemas_strictly(tmp_path: Path, overlay: str) -> None:
    docs = rendered(tmp_path, overlay)
    assert of_kind(docs, "StatefulSet"), overlay
    for version in KUBERNETES_VERSIONS:
        for doc in docs:
            where = f"{overlay}: {doc['kind']}/{doc['metadata']['name']} (Kubernetes {version})"
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{where}: {error.message} at {'.'.join(map(str, error.path))}")


def test_the_validator_refuses_a_misspelt_field_and_a_wrong_type(tmp_path: Path) -> None:
    hub = find(rendered(tmp_path), "StatefulSet", "hub")
    hub["spec"]["template"]["spec"]["containers"][0]["livenessProbee"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="livenessProbee"):
        kubernetes_validate.validate(hub, KUBERNETES_VERSIONS[0], strict=True)
    del hub["spec"]["template"]["spec"]["containers"][0]["livenessProbee"]
    hub["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError, match="one"):
        kubernetes_validate.validate(hub, KUBERNETES_VERSIONS[0], strict=True)


def test_kustomize_renders_every_object_into_the_namespace_with_the_image_and_standard_labels(tmp_path: Path) -> None:
    docs = rendered(tmp_path)
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "prober", where
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "prober", where
        assert labels["app.kubernetes.io/instance"] == "prober", where
        assert labels["app.kubernetes.io/version"] == VERSION, where  # pyproject.toml's version
    for statefulset in of_kind(docs, "StatefulSet"):
        labels = pod_labels(statefulset)
        for key in ("name", "component", "part-of", "instance", "version"):
            assert f"app.kubernetes.io/{key}" in labels, (statefulset["metadata"]["name"], key)
        # the version is no selector: a new version must not make the StatefulSet's selector change (immutable)
        assert "app.kubernetes.io/version" not in statefulset["spec"]["selector"]["matchLabels"]
    assert {container(d)["image"] for d in of_kind(docs, "StatefulSet")} == {"localhost/prober:slim"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_of_every_overlay_has_the_standard_labels_and_no_version_in_a_selector(
    tmp_path: Path, overlay: str
) -> None:
    docs = rendered(tmp_path, overlay)
    for doc in docs:
        where = f"{overlay}: {doc['kind']}/{doc['metadata']['name']}"
        labels = doc["metadata"]["labels"]
        for key in ("part-of", "instance", "version", "managed-by"):
            assert labels.get(f"app.kubernetes.io/{key}"), f"{where} has no app.kubernetes.io/{key}"
    for statefulset in of_kind(docs, "StatefulSet"):
        where = f"{overlay}: {statefulset['metadata']['name']}"
        labels = pod_labels(statefulset)
        for key in ("name", "component", "part-of", "instance", "version"):
            assert f"app.kubernetes.io/{key}" in labels, f"{where}: its pods have no app.kubernetes.io/{key}"
        assert labels["app.kubernetes.io/version"] == statefulset["metadata"]["labels"]["app.kubernetes.io/version"]
        for key in ("version", "instance", "part-of", "managed-by"):  # selectors are immutable: never these
            assert f"app.kubernetes.io/{key}" not in statefulset["spec"]["selector"]["matchLabels"], where


def test_kustomize_refuses_a_kustomization_naming_a_missing_manifest(tmp_path: Path) -> None:
    copy = k8s_copy(tmp_path)
    (copy / "base" / "agent-us-east.yaml").unlink()
    done = kustomize(copy / "base")
    assert done.returncode != 0 and "agent-us-east.yaml" in done.stderr


# ---- Kubernetes: the tokens are files the user creates ---------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_a_resource_and_the_tokens_come_from_the_users_files(tmp_path: Path, overlay: str) -> None:
    for path in (K8S / overlay).glob("*.yaml"):
        text = path.read_text()
        kinds = [doc["kind"] for doc in yaml.safe_load_all(text) if doc]
        assert "Secret" not in kinds, f"{path} holds a Secret: tokens must come from files the user creates"
        assert "CHANGE-ME" not in text, f"{path} holds a placeholder token"
    assert (BASE / "secrets" / ".gitignore").read_text().split() == ["*", "!.gitignore"]  # never committed
    docs = rendered(tmp_path, overlay)
    (secret,) = of_kind(docs, "Secret")
    assert secret["metadata"]["name"].startswith("prober-tokens-")  # a content hash: a new token rolls the pods
    import base64

    assert {key: base64.b64decode(value).decode() for key, value in secret["data"].items()} == {
        "eu-west": "token-of-eu-west\n",
        "us-east": "token-of-us-east\n",
    }
    for statefulset in probers(docs):
        volumes = statefulset["spec"]["template"]["spec"]["volumes"]
        tokens = next(v for v in volumes if v["name"] == "tokens")
        assert tokens["secret"]["secretName"] == secret["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_without_the_token_files_kustomize_stops_naming_the_file(tmp_path: Path, overlay: str) -> None:
    done = kustomize(k8s_copy(tmp_path, tokens=False) / overlay)
    assert done.returncode != 0
    assert "secrets/eu-west" in done.stderr, done.stderr


def test_the_secret_holds_one_token_per_agent_location_and_each_agent_sees_its_own(tmp_path: Path) -> None:
    docs = rendered(tmp_path)
    (secret,) = of_kind(docs, "Secret")
    locations = set(agents(docs))
    assert set(secret["data"]) == locations
    hub_env = env_of(container(find(docs, "StatefulSet", "hub")))
    for location in locations:
        variable = location.upper().replace("-", "_") + "_TOKEN_FILE"
        assert hub_env[variable] == f"/run/secrets/prober/{location}"
    for location, statefulset in agents(docs).items():
        tokens = next(v for v in statefulset["spec"]["template"]["spec"]["volumes"] if v["name"] == "tokens")
        assert tokens["secret"]["items"] == [{"key": location, "path": location}]  # an agent sees its own only


# ---- Kubernetes: probes, pods, disruption, network ------------------------------------------------------------


def probers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The StatefulSets running prober (an overlay may add others, such as Alertmanager's)."""
    return [d for d in of_kind(docs, "StatefulSet") if container(d)["name"] == "prober"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_liveness_is_livez_readiness_is_healthz_and_startup_waits_for_migrations(tmp_path: Path, overlay: str) -> None:
    docs = rendered(tmp_path, overlay)
    assert probers(docs), overlay
    for statefulset in probers(docs):
        name = f"{overlay}: {statefulset['metadata']['name']}"
        c = container(statefulset)
        assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}, name  # a full disk is no reason
        assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, name
        startup = c["startupProbe"]
        assert startup["httpGet"] == {"path": "/livez", "port": "http"}, name
        budget = startup["periodSeconds"] * startup["failureThreshold"]
        hub = statefulset["metadata"]["name"] == "hub"
        assert budget >= (1800 if hub else 600), f"{name}: {budget} s for the database upgrade"
        assert "initialDelaySeconds" not in c["livenessProbe"], name  # the startupProbe covers the start


def test_the_hub_is_one_statefulset_replica_with_a_volume_and_a_disruption_budget(tmp_path: Path) -> None:
    docs = rendered(tmp_path)
    hub = find(docs, "StatefulSet", "hub")
    assert hub["spec"]["replicas"] == 1
    assert [t["metadata"]["name"] for t in hub["spec"]["volumeClaimTemplates"]] == ["data"]
    c = container(hub)
    assert {"name": "data", "mountPath": "/data"} in c["volumeMounts"]
    assert c["ports"] == [{"name": "http", "containerPort": 8080}]
    service = find(docs, "Service", "hub")
    assert service["spec"]["ports"][0]["port"] == 8080
    assert service["spec"]["selector"] == hub["spec"]["selector"]["matchLabels"]
    assert find(docs, "Service", hub["spec"]["serviceName"])["spec"]["clusterIP"] == "None"
    budgets = [b for b in of_kind(docs, "PodDisruptionBudget") if selects(b["spec"]["selector"], pod_labels(hub))]
    assert [b["metadata"]["name"] for b in budgets] == ["hub"]
    for location, statefulset in agents(docs).items():
        covering = [
            b for b in of_kind(docs, "PodDisruptionBudget") if selects(b["spec"]["selector"], pod_labels(statefulset))
        ]
        assert len(covering) == 1 and covering[0]["spec"]["maxUnavailable"] == 1, location


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_statefulset_of_every_overlay_has_one_disruption_budget_of_one_pod(tmp_path: Path, overlay: str) -> None:
    docs = rendered(tmp_path, overlay)
    budgets = of_kind(docs, "PodDisruptionBudget")
    for statefulset in of_kind(docs, "StatefulSet"):
        name = f"{overlay}: {statefulset['metadata']['name']}"
        covering = [b for b in budgets if selects(b["spec"]["selector"], pod_labels(statefulset))]
        assert len(covering) == 1, f"{name}: {len(covering)} PodDisruptionBudgets select its pods"
        assert covering[0]["spec"] == {
            "maxUnavailable": 1,
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
            "selector": statefulset["spec"]["selector"],
        }, name
    for budget in budgets:  # no budget selects nothing (a typo in a label)
        assert any(selects(budget["spec"]["selector"], pod_labels(s)) for s in of_kind(docs, "StatefulSet")), budget


def test_every_pod_runs_as_uid_10001_read_only_without_a_service_account_token(tmp_path: Path) -> None:
    docs = rendered(tmp_path)
    (account,) = of_kind(docs, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    for statefulset in of_kind(docs, "StatefulSet"):
        name = statefulset["metadata"]["name"]
        pod = statefulset["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "prober", name
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["fsGroup"] == 10001
        c = container(statefulset)
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert pod["terminationGracePeriodSeconds"] >= 20  # 10 s for in-flight runs, 5 s for the last push
        for volume in pod["volumes"]:
            if "emptyDir" in volume:
                assert volume["emptyDir"].get("sizeLimit"), f"{name}: emptyDir {volume['name']} has no sizeLimit"
        assert c["resources"]["limits"]["memory"] and c["resources"]["requests"]["memory"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_pod_of_any_overlay_mounts_a_service_account_token_or_an_unbounded_empty_dir(
    tmp_path: Path, overlay: str
) -> None:
    docs = rendered(tmp_path, overlay)
    for statefulset in of_kind(docs, "StatefulSet"):
        name = f"{overlay}: {statefulset['metadata']['name']}"
        pod = statefulset["spec"]["template"]["spec"]
        assert pod.get("automountServiceAccountToken") is False, name
        account = find(docs, "ServiceAccount", pod["serviceAccountName"])  # its own account, token-less too
        assert account["automountServiceAccountToken"] is False, name
        for volume in pod["volumes"]:
            if "emptyDir" in volume:
                assert volume["emptyDir"].get("sizeLimit"), f"{name}: emptyDir {volume['name']} has no sizeLimit"


def test_replicas_of_one_location_prefer_different_nodes(tmp_path: Path) -> None:
    docs = rendered(tmp_path)
    for location, statefulset in agents(docs).items():
        (term,) = statefulset["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
            "preferredDuringSchedulingIgnoredDuringExecution"
        ]
        selector = term["podAffinityTerm"]["labelSelector"]
        assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
        assert selects(selector, pod_labels(statefulset)), location
        for other, other_set in agents(docs).items():
            if other != location:
                assert not selects(selector, pod_labels(other_set)), (location, other)


def anti_affinity_terms(statefulset: dict[str, Any]) -> list[dict[str, Any]]:
    """The podAntiAffinity terms of a StatefulSet's pods, required or preferred."""
    anti = statefulset["spec"]["template"]["spec"].get("affinity", {}).get("podAntiAffinity", {})
    terms: list[dict[str, Any]] = list(anti.get("requiredDuringSchedulingIgnoredDuringExecution", []))
    terms += [t["podAffinityTerm"] for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])]
    return terms


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pods_of_every_statefulset_keep_apart_from_each_other_only(tmp_path: Path, overlay: str) -> None:
    statefulsets = of_kind(rendered(tmp_path, overlay), "StatefulSet")
    for statefulset in statefulsets:
        name = f"{overlay}: {statefulset['metadata']['name']}"
        (term,) = anti_affinity_terms(statefulset)
        assert term["topologyKey"] == "kubernetes.io/hostname", name
        assert selects(term["labelSelector"], pod_labels(statefulset)), f"{name}: its anti-affinity misses its pods"
        for other in statefulsets:
            if other is not statefulset:
                assert not selects(term["labelSelector"], pod_labels(other)), (name, other["metadata"]["name"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_let_only_agents_ingest_and_the_ingress_serve_the_status_page(
    tmp_path: Path, overlay: str
) -> None:
    docs = rendered(tmp_path, overlay)
    policies = of_kind(docs, "NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]]
    assert len(deny) == 1 and deny[0]["spec"]["policyTypes"] == ["Ingress"]
    hub = find(docs, "StatefulSet", "hub")
    (hub_policy,) = [
        p for p in policies if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], pod_labels(hub))
    ]
    (rule,) = hub_policy["spec"]["ingress"]
    pods = [peer["podSelector"] for peer in rule["from"] if "podSelector" in peer]
    for statefulset in agents(docs).values():
        assert any(selects(selector, pod_labels(statefulset)) for selector in pods)
    assert not any(selects(selector, pod_labels(hub)) for selector in pods)
    assert all(set(peer) == {"namespaceSelector"} for peer in rule["from"] if "podSelector" not in peer)
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]
    for statefulset in agents(docs).values():  # agents: scraped only, never pushed to
        covering = [
            p
            for p in policies
            if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], pod_labels(statefulset))
        ]
        assert all(
            "podSelector" not in peer for policy in covering for r in policy["spec"]["ingress"] for peer in r["from"]
        )

    def routed(path: str) -> bool:
        for rule in find(docs, "Ingress", "status-page")["spec"]["rules"]:
            for item in rule["http"]["paths"]:
                assert item["backend"]["service"]["name"] == "hub"
                prefix = item["path"].rstrip("/")
                if item["pathType"] == "Exact" and path == item["path"]:
                    return True
                if item["pathType"] == "Prefix" and (path == prefix or path.startswith(prefix + "/")):
                    return True
        return False

    for public in ("/", "/checks/website", "/api/v1/status", "/api/v1/checks/website/results", "/static/page.js",
                   "/badge/website.svg", "/feed.atom", "/api/v2/summary.json"):  # fmt: skip
        assert routed(public), public
    for private in ("/api/v1/ingest", "/metrics", "/healthz", "/livez", "/api/v1/ingest/"):
        assert not routed(private), private


# ---- Kubernetes: the full overlay -------------------------------------------------------------------------------


def memory_mib(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1)


def test_the_full_overlay_gives_agents_the_full_image_and_room_for_chromium(tmp_path: Path) -> None:
    base = rendered(tmp_path / "base")
    full = rendered(tmp_path / "full", "full")
    assert {d["metadata"]["name"] for d in full} == {d["metadata"]["name"] for d in base}
    for location, statefulset in agents(full).items():
        c = container(statefulset)
        assert c["image"] == "localhost/prober:full", location
        assert memory_mib(c["resources"]["limits"]["memory"]) >= 1024, location  # Chromium with 2 pages
        assert memory_mib(c["resources"]["requests"]["memory"]) >= 512, location
        volumes = {v["name"]: v for v in statefulset["spec"]["template"]["spec"]["volumes"]}
        shm = next(m for m in c["volumeMounts"] if m["mountPath"] == "/dev/shm")
        assert volumes[shm["name"]]["emptyDir"]["medium"] == "Memory"
        assert memory_mib(volumes[shm["name"]]["emptyDir"]["sizeLimit"]) >= 256
        assert memory_mib(volumes["tmp"]["emptyDir"]["sizeLimit"]) >= 256
        assert {m["mountPath"] for m in c["volumeMounts"]} >= {"/data", "/tmp", "/etc/prober/checks"}
        assert c["livenessProbe"] == container(agents(base)[location])["livenessProbe"]
    assert (
        container(find(full, "StatefulSet", "hub"))["resources"]
        == container(find(base, "StatefulSet", "hub"))["resources"]
    )


def test_an_image_digest_pins_every_container(tmp_path: Path) -> None:
    copy = k8s_copy(tmp_path)
    kustomization = yaml.safe_load((copy / "base" / "kustomization.yaml").read_text())
    digest = "sha256:" + "ab" * 32
    kustomization["images"][0]["digest"] = digest
    (copy / "base" / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    done = kustomize(copy / "base")
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert {container(d)["image"] for d in of_kind(docs, "StatefulSet")} == {f"localhost/prober:slim@{digest}"}


# ---- Kubernetes: agents, their shards and checks ---------------------------------------------------------------


def test_each_agent_statefulset_shards_by_pod_ordinal_over_its_replicas(tmp_path: Path) -> None:
    found = agents(rendered(tmp_path))
    assert set(found) == {"eu-west", "us-east"}
    for location, statefulset in found.items():
        assert statefulset["metadata"]["name"] == f"agent-{location}"
        env = env_of(container(statefulset))
        assert env["PROBER_SHARD"] == f"ordinal/{statefulset['spec']['replicas']}", location
        assert env["PROBER_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert env["PROBER_PUSH"] == "http://hub.prober.svc.cluster.local:8080"
        assert statefulset["spec"]["podManagementPolicy"] == "Parallel"


def write_configmap_like_the_kubelet(data: dict[str, str], directory: Path) -> None:
    """The layout a ConfigMap volume has: files in a timestamped directory, `..data` and the names as symlinks."""
    stamped = directory / "..2026_12_02_21_00_00.000000001"
    stamped.mkdir(parents=True)
    for name, text in data.items():
        (stamped / name).write_text(text)
    (directory / "..data").symlink_to(stamped.name)
    for name in data:
        (directory / name).symlink_to(f"..data/{name}")


def test_the_configmap_checks_load_once_from_a_kubelet_volume_for_every_location(tmp_path: Path) -> None:
    docs = rendered(tmp_path)
    write_configmap_like_the_kubelet(find(docs, "ConfigMap", "prober-checks")["data"], tmp_path / "checks")
    config = load_config([tmp_path / "checks"], env=TOKENS_ENV)
    assert [c.name for c in config.checks] == ["website", "website-cert"]  # not three copies through ..data
    assert set(config.ingest.tokens) == set(agents(docs))
    for location in agents(docs):
        assert config.select(location=location), f"no check runs at {location}"
    # the agents have no token variables: the file must load without them (empty tokens never match)
    assert load_config([tmp_path / "checks"], env={}).ingest.tokens == {"eu-west": "", "us-east": ""}


def test_a_broken_configmap_is_refused_like_any_check_file(tmp_path: Path) -> None:
    broken = {"checks.yaml": "version: 1\nchecks:\n  - {name: x, type: http, url: 'http://a/', timeoutt: 3s}\n"}
    write_configmap_like_the_kubelet(broken, tmp_path / "checks")
    with pytest.raises(Exception, match="timeoutt"):
        load_config([tmp_path / "checks"], env={})


# ---- compose, as podman-compose 1.0.3 reads it ------------------------------------------------------------------

COMPOSE_FILES = sorted(p.name for p in DOCKER.glob("compose*.yaml"))
# what podman-compose 1.0.3 ignores although it changes behaviour (stop_grace_period is documented instead)
IGNORED_BY_PODMAN_COMPOSE = ("profiles", "build", "deploy", "extends")


def compose(name: str = "compose.yaml") -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DOCKER / name).read_text())
    return doc


def podman_compose_commands(tmp_path: Path, *files: str, env: dict[str, str] | None = None) -> dict[str, list[str]]:
    """The `podman run` command podman-compose 1.0.3 makes for each service (its --dry-run output), run on a copy
    of docker/ with a project name of its own; it still creates the project's volumes and network, removed here."""
    copy = tmp_path / "docker"
    shutil.copytree(DOCKER, copy, ignore=shutil.ignore_patterns("k8s"))
    project = f"prober-dry-{os.getpid()}"
    command = ["podman-compose", "--dry-run", "-p", project]
    for name in files:
        command += ["-f", str(copy / name)]
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PROBER_", "TARGET_"))}
    try:
        done = subprocess.run(
            [*command, "up", "-d"], capture_output=True, text=True, timeout=120, env={**environment, **(env or {})}
        )
    finally:
        for kind in ("volume", "network"):
            listed = subprocess.run(
                ["podman", kind, "ls", "-q", "--filter", f"label=io.podman.compose.project={project}"],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            for item in listed.stdout.split():
                subprocess.run(["podman", kind, "rm", "-f", item], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    commands = {}
    for line in done.stdout.splitlines():
        if line.startswith("podman run "):
            args = shlex.split(line)
            name = next(a for a in args if a.startswith("--name="))[len("--name=") :]
            commands[name.removeprefix(project + "_").removesuffix("_1")] = args
    return commands


def test_no_compose_file_uses_what_podman_compose_ignores_and_every_port_is_on_loopback() -> None:
    assert {"compose.yaml", "compose.monitoring.yaml"} <= set(COMPOSE_FILES)
    for name in COMPOSE_FILES:
        doc = compose(name)
        assert "name" not in doc, f"{name}: podman-compose 1.0.3 ignores `name:`; the docs give -p instead"
        for service_name, service in doc["services"].items():
            for key in IGNORED_BY_PODMAN_COMPOSE:
                assert key not in service, f"{name}: service {service_name} uses `{key}`, which podman-compose ignores"
            for port in service.get("ports", []):
                assert port.startswith(("127.0.0.1:", "${PROBER_BIND:-127.0.0.1}:")), f"{name}: {service_name} {port}"


@pytest.mark.slow
def test_podman_compose_runs_the_hub_two_agents_and_the_target_on_loopback(tmp_path: Path) -> None:
    commands = podman_compose_commands(tmp_path, "compose.yaml", env={"PROBER_PORT": "18080"})
    assert set(commands) == {"hub", "agent-eu-west", "agent-us-east", "target"}  # no monitoring by default
    hub = commands["hub"]
    assert hub[hub.index("-p") + 1] == "127.0.0.1:18080:8080"
    for name, args in commands.items():
        assert "--read-only" in args and args[-1] == "localhost/prober:slim", name
        assert "TARGET_URL=http://target:8000/" in args or name == "target", name
        health = args[args.index("--healthcheck-command") + 1 : args.index("--healthcheck-command") + 4]
        assert health == ["/bin/sh", "-c", "/usr/local/bin/prober-healthcheck"], (name, health)
        assert sum(a == "-p" for a in args) == (1 if name == "hub" else 0), name
    everywhere = podman_compose_commands(tmp_path / "b", "compose.yaml", env={"PROBER_BIND": "0.0.0.0"})["hub"]
    assert everywhere[everywhere.index("-p") + 1] == "0.0.0.0:8080:8080"
    target = podman_compose_commands(tmp_path / "c", "compose.yaml", env={"TARGET_URL": "https://example.org/"})
    assert "TARGET_URL=https://example.org/" in target["agent-eu-west"]


@pytest.mark.slow
def test_the_monitoring_file_adds_prometheus_and_grafana_on_loopback(tmp_path: Path) -> None:
    commands = podman_compose_commands(tmp_path, "compose.yaml", "compose.monitoring.yaml")
    assert set(commands) == {"hub", "agent-eu-west", "agent-us-east", "target", "prometheus", "grafana"}
    assert commands["prometheus"][commands["prometheus"].index("-p") + 1] == "127.0.0.1:9090:9090"
    assert commands["grafana"][commands["grafana"].index("-p") + 1] == "127.0.0.1:3000:3000"


@pytest.mark.slow
def test_podman_compose_runs_the_ha_stack_on_loopback_with_the_example_target(tmp_path: Path) -> None:
    commands = podman_compose_commands(tmp_path, "compose.ha.yaml", env={"PROBER_PORT": "18080"})
    probers = {"hub-0", "hub-1", "agent-eu-west", "agent-us-east"}
    assert set(commands) == probers | {"alertmanager-0", "alertmanager-1", "nginx", "target"}
    published = {name: args[args.index("-p") + 1] for name, args in commands.items() if "-p" in args}
    assert published == {"nginx": "127.0.0.1:18080:8080", "alertmanager-0": "127.0.0.1:9093:9093"}
    for name in probers | {"target"}:
        args = commands[name]
        assert "--read-only" in args and args[-1] == "localhost/prober:slim", name
        health = args[args.index("--healthcheck-command") + 1 : args.index("--healthcheck-command") + 4]
        assert health == ["/bin/sh", "-c", "/usr/local/bin/prober-healthcheck"], (name, health)
        assert ("TARGET_URL=http://target:8000/" in args) == (name != "target"), name
    everywhere = podman_compose_commands(tmp_path / "b", "compose.ha.yaml", env={"PROBER_BIND": "0.0.0.0"})["nginx"]
    assert everywhere[everywhere.index("-p") + 1] == "0.0.0.0:8080:8080"


def test_compose_services_share_the_checks_and_keep_data_in_volumes() -> None:
    services = compose()["services"]
    assert set(services) == {"hub", "agent-eu-west", "agent-us-east", "target"}
    for name in ("hub", "agent-eu-west", "agent-us-east"):
        service = services[name]
        assert service["healthcheck"]["test"] == ["CMD", "/usr/local/bin/prober-healthcheck"]
        assert "./checks:/etc/prober/checks:ro" in service["volumes"]
        assert any(v.endswith(":/data") for v in service["volumes"])
        assert service["environment"]["TARGET_URL"] == "${TARGET_URL:-http://target:8000/}"
        assert service["stop_grace_period"] == "20s"
    target = services["target"]
    assert "/data" in target["tmpfs"]  # no anonymous volume left behind by `down -v`
    assert (DOCKER / "target" / "index.html").is_file() and (DOCKER / "target" / "healthz").is_file()
    assert target["environment"]["PROBER_LISTEN"] == "127.0.0.1:8000"  # its healthcheck asks the page's /healthz


def test_compose_agents_push_to_the_hub_with_their_own_secret_file() -> None:
    doc = compose()
    services = doc["services"]
    hub_env = services["hub"]["environment"]
    for location in ("eu-west", "us-east"):
        agent = services[f"agent-{location}"]
        env = agent["environment"]
        secret = location.replace("-", "_") + "_token"
        assert env["PROBER_LOCATION"] == location and env["PROBER_PUSH"] == "http://hub:8080"
        assert env["PROBER_TOKEN_FILE"] == f"/run/secrets/{secret}"
        assert agent["secrets"] == [secret]
        assert secret in services["hub"]["secrets"]
        assert hub_env[secret.upper() + "_FILE"] == f"/run/secrets/{secret}"
        assert doc["secrets"][secret] == {"file": f"./secrets/{secret}"}


def test_compose_checks_validate_probe_the_target_and_list_both_agent_locations() -> None:
    config = load_config([DOCKER / "checks"], env=TOKENS_ENV)
    assert set(config.ingest.tokens) == {"eu-west", "us-east"}
    assert [str(c.model.url) for c in config.checks] == ["http://target:8000/"]  # type: ignore[attr-defined]
    for location in ("eu-west", "us-east"):
        assert config.select(location=location)
    mine = load_config([DOCKER / "checks"], env={**TOKENS_ENV, "TARGET_URL": "https://example.org/"})
    assert [str(c.model.url) for c in mine.checks] == ["https://example.org/"]  # type: ignore[attr-defined]


def test_monitoring_files_exist_where_compose_mounts_them() -> None:
    monitoring = compose("compose.monitoring.yaml")["services"]
    for name in ("prometheus", "grafana"):
        for volume in monitoring[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DOCKER / source).exists(), source
    datasource = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/prober.yml").read_text())
    dashboard_mount = next(v for v in monitoring["grafana"]["volumes"] if "grafana-dashboard" in v)
    assert dashboard_mount.split(":")[1].startswith(provider["providers"][0]["options"]["path"] + "/")


def test_promtool_accepts_the_prometheus_config_with_the_alert_rules(tmp_path: Path) -> None:
    config = yaml.safe_load((DOCKER / "prometheus/prometheus.yml").read_text())
    (tmp_path / "rules").mkdir()
    shutil.copy(DOCKER / "prometheus-alerts.yml", tmp_path / "rules" / "prober.yml")
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]  # where compose mounts the rules
    config["rule_files"] = [str(tmp_path / "rules" / "*.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    done = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr
    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert jobs["prober"] == ["hub:8080"]


def test_promtool_refuses_a_broken_prometheus_config(tmp_path: Path) -> None:
    (tmp_path / "prometheus.yml").write_text("scrape_configs:\n  - job_name: prober\n    scrape_interval: soon\n")
    done = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0


# ---- the Dockerfile, .dockerignore and the docs -----------------------------------------------------------------


def dockerignore_allows(path: str) -> bool:
    """Whether .dockerignore (the allow-list form: `*`, then `!path` exceptions, then exclusions) keeps a path."""
    keep = True
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if re.fullmatch(f"{regex}(/.*)?", path):
            keep = negate
    return keep


def test_dockerfile_has_both_targets_a_builder_a_non_root_user_the_volume_and_the_healthcheck() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\S+)$", text, flags=re.MULTILINE)
    assert {"base", "builder", "slim", "full"} <= set(stages)
    first, *later = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert first == "${DEBIAN_BASE}" and all(f in stages for f in later)  # every stage derives from the base
    assert "USER 10001:10001" in text and 'VOLUME ["/data"]' in text and "STOPSIGNAL SIGTERM" in text
    assert "HEALTHCHECK" in text and "prober-healthcheck" in text
    assert "PROBER_LISTEN=0.0.0.0:8080" in text
    for label in ("title", "source", "licenses", "version", "revision", "created", "base.name"):
        assert text.count(f"org.opencontainers.image.{label}=") == 2, label  # in both targets
    # wheels are built in the image by its Python, never taken from the host
    assert "/build/bin/pip" in text and ".cache/containers" not in text


def test_dockerignore_lets_in_only_what_the_dockerfile_copies() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    sources = [s for line in re.findall(r"^COPY (?!--from)(.+) \S+$", text, flags=re.MULTILINE) for s in line.split()]
    assert sources, text
    for source in sources:
        assert dockerignore_allows(source), f"COPY {source}: excluded by .dockerignore"
    outside = [".venv/bin/python", ".git/HEAD", "rootfs/etc/passwd", ".cache/containers/x.tar", "tests/x.py"]
    outside += ["prober/__pycache__/x.pyc", "docker/secrets/eu_west_token", "prober.db", "artifacts/a.png"]
    for path in outside:
        assert not dockerignore_allows(path), path
    assert dockerignore_allows("prober/api/static/page.js") and dockerignore_allows("pyproject.toml")


def test_the_deployment_page_gives_the_commands_the_container_test_runs() -> None:
    page = (ROOT / "docs" / "deployment.md").read_text()
    for needed in ("scripts/build-images", 'eval "$(scripts/build-images --env)"', "down -v",
                   "podman network rm prober_default", "podman healthcheck run", "stop_grace_period", "/livez",
                   "-f docker/compose.monitoring.yaml", "PROBER_BIND", "TARGET_URL"):  # fmt: skip
        assert needed in page, needed
    for marker in ("<!-- container-test: up -->", "<!-- container-test: down -->"):
        assert page.count(marker) == 1, marker
    assert re.search(r"\| `slim` \|[^\n]*\| [\d,]+ MB \|", page) and re.search(
        r"\| `full` \|[^\n]*\| [\d,]+ MB \|", page
    )


# ---- the entrypoint -----------------------------------------------------------------------------------------


def entrypoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run docker/entrypoint.sh with `env` (PROBER_BIN=env prints the environment prober would get)."""
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env={"PATH": "/usr/bin:/bin", "PROBER_BIN": "env", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def environment(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


@pytest.mark.parametrize(
    ("pod", "shard", "expected"),
    [
        ("agent-eu-west-0", "ordinal/3", "1/3"),
        ("agent-eu-west-2", "ordinal/3", "3/3"),
        ("agent-us-east-11", "auto/12", "12/12"),
    ],
)
def test_the_pod_ordinal_becomes_the_shard(pod: str, shard: str, expected: str) -> None:
    assert environment(entrypoint({"PROBER_SHARD": shard, "PROBER_POD_NAME": pod}))["PROBER_SHARD"] == expected


def test_the_ordinal_comes_from_the_hostname_without_a_pod_name() -> None:
    assert environment(entrypoint({"PROBER_SHARD": "ordinal/2", "HOSTNAME": "agent-x-1"}))["PROBER_SHARD"] == "2/2"


def test_an_explicit_shard_and_no_shard_are_left_alone() -> None:
    assert environment(entrypoint({"PROBER_SHARD": "2/5", "PROBER_POD_NAME": "agent-a-0"}))["PROBER_SHARD"] == "2/5"
    assert "PROBER_SHARD" not in environment(entrypoint({"PROBER_POD_NAME": "agent-a-0"}))


@pytest.mark.parametrize(
    ("pod", "shard", "message"),
    [
        ("agent-eu-west-3", "ordinal/3", "ordinal 3 but PROBER_SHARD=ordinal/3 has only 3 share"),
        ("agent-eu-west", "ordinal/3", "needs a pod name ending in -<ordinal>"),
        ("agent-eu-west-1", "ordinal/x", "expected ordinal/N with N >= 1"),
        ("agent-eu-west-0", "ordinal/0", "expected ordinal/N with N >= 1"),
    ],
)
def test_an_ordinal_that_cannot_be_a_shard_stops_with_a_sentence(pod: str, shard: str, message: str) -> None:
    done = entrypoint({"PROBER_SHARD": shard, "PROBER_POD_NAME": pod})
    assert done.returncode == 2
    assert message in done.stderr and done.stdout == ""


def test_secret_files_become_variables_but_prober_options_stay_files(tmp_path: Path) -> None:
    (tmp_path / "eu").write_text("s3cr3t-eu\n")
    env = environment(
        entrypoint(
            {
                "EU_WEST_TOKEN_FILE": str(tmp_path / "eu"),
                "PROBER_TOKEN_FILE": str(tmp_path / "eu"),
                "PROBER_SECRETS_DIR": str(tmp_path),
            }
        )
    )
    assert env["EU_WEST_TOKEN"] == "s3cr3t-eu"  # the trailing newline is gone
    assert env["PROBER_TOKEN_FILE"] == str(tmp_path / "eu") and "PROBER_TOKEN" not in env


def test_files_outside_the_secrets_directory_are_not_read(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    env = environment(entrypoint({"SSL_CERT_FILE": str(bundle), "PROBER_SECRETS_DIR": str(tmp_path / "secrets")}))
    assert env["SSL_CERT_FILE"] == str(bundle) and "SSL_CERT" not in env
    assert "SSL_CERT" not in environment(entrypoint({"SSL_CERT_FILE": str(bundle)}))  # default: /run/secrets only


def test_a_variable_already_set_wins_over_its_file(tmp_path: Path) -> None:
    (tmp_path / "eu").write_text("from-file")
    done = entrypoint(
        {"EU_WEST_TOKEN_FILE": str(tmp_path / "eu"), "EU_WEST_TOKEN": "from-env", "PROBER_SECRETS_DIR": str(tmp_path)}
    )
    assert environment(done)["EU_WEST_TOKEN"] == "from-env"
    assert "both EU_WEST_TOKEN and EU_WEST_TOKEN_FILE are set" in done.stderr


def test_an_unreadable_secret_file_stops_the_start_naming_it(tmp_path: Path) -> None:
    done = entrypoint({"EU_WEST_TOKEN_FILE": str(tmp_path / "missing"), "PROBER_SECRETS_DIR": str(tmp_path)})
    assert done.returncode == 2
    assert f"EU_WEST_TOKEN_FILE={tmp_path / 'missing'} cannot be read" in done.stderr


@pytest.mark.slow
def test_the_entrypoint_execs_prober_with_the_arguments() -> None:
    done = subprocess.run(
        ["sh", str(ENTRYPOINT), "--version"],
        env={**os.environ, "PROBER_BIN": str(Path(sys.executable).parent / "prober")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.startswith("prober, version")


# ---- the healthcheck ----------------------------------------------------------------------------------------


@pytest.fixture
async def healthz() -> AsyncIterator[tuple[int, dict[str, int]]]:
    answer = {"status": 200}
    app = web.Application()

    async def handler(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok" if answer["status"] == 200 else "error"}, status=answer["status"])

    app.router.add_get("/healthz", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield port, answer
    finally:
        await runner.cleanup()


async def run_healthcheck(listen: str) -> tuple[int, str]:
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HEALTHCHECK),
        env={**os.environ, "PROBER_LISTEN": listen},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_healthcheck_passes_on_200_and_fails_on_503(healthz: tuple[int, dict[str, int]]) -> None:
    port, answer = healthz
    code, out = await run_healthcheck(f"0.0.0.0:{port}")  # 0.0.0.0 is asked through 127.0.0.1
    assert code == 0, out
    answer["status"] = 503
    code, out = await run_healthcheck(f"127.0.0.1:{port}")
    assert code == 1 and "503" in out


async def test_healthcheck_fails_when_nothing_listens(free_port: int) -> None:
    port = free_port
    code, out = await run_healthcheck(f"127.0.0.1:{port}")
    assert code == 1 and "refused" in out.lower()


async def test_healthcheck_with_the_api_off_passes_and_says_so() -> None:
    code, out = await run_healthcheck("off")
    assert code == 0 and "PROBER_LISTEN is off" in out


def test_healthcheck_asks_loopback_for_wildcard_addresses() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("prober_healthcheck", HEALTHCHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.target("0.0.0.0:8080") == "http://127.0.0.1:8080/healthz"
    assert module.target("[::]:9000") == "http://[::1]:9000/healthz"
    assert module.target("10.1.2.3:8080") == "http://10.1.2.3:8080/healthz"
    assert module.target("[fd00::5]:8080") == "http://[fd00::5]:8080/healthz"
    assert module.target("off") is None and module.target("") is None
