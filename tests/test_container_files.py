"""The deployment files under docker/: they parse, agree with each other, and the image's helpers behave.

Static checks of docker/compose.yaml, docker/k8s/ (kustomize-friendly manifests), the Prometheus and Grafana
provisioning and the Dockerfile; the entrypoint script (secrets from *_FILE, --shard from the pod ordinal) and
the healthcheck run for real. Building and running the images is scripts/test-containers.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from prober.config.loader import load_config

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
K8S = DOCKER / "k8s"
ENTRYPOINT = DOCKER / "entrypoint.sh"
HEALTHCHECK = DOCKER / "healthcheck.py"
TOKENS_ENV = {"EU_WEST_TOKEN": "t-eu", "US_EAST_TOKEN": "t-us"}


def k8s_documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    documents = []
    for resource in kustomization["resources"]:
        documents += [doc for doc in yaml.safe_load_all((K8S / resource).read_text()) if doc]
    return documents


def find(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def container(statefulset: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = statefulset["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(item: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in item.get("env", [])}


# ---- YAML parses, and kustomization lists every manifest ---------------------------------------------------


def test_every_yaml_file_under_docker_parses() -> None:
    files = sorted(DOCKER.rglob("*.yml")) + sorted(DOCKER.rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert documents, f"{path} is empty"
        assert all(isinstance(d, dict) for d in documents), path


def test_kustomization_lists_every_manifest_in_the_directory_and_nothing_else() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    for doc in k8s_documents():
        assert {"apiVersion", "kind", "metadata"} <= set(doc), doc
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"]), doc["metadata"]["name"]


def test_kustomize_renders_every_object_into_the_namespace_with_the_image() -> None:
    done = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    rendered = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert len(rendered) == len(k8s_documents())
    for doc in rendered:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "prober", doc["metadata"]["name"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "prober"
    images = {container(d)["image"] for d in rendered if d["kind"] == "StatefulSet"}
    assert images == {"localhost/prober:slim"}


def test_kustomize_refuses_a_kustomization_naming_a_missing_manifest(tmp_path: Path) -> None:
    shutil.copytree(K8S, tmp_path / "k8s")
    (tmp_path / "k8s" / "agent-us-east.yaml").unlink()
    done = subprocess.run(
        ["kubectl", "kustomize", str(tmp_path / "k8s")], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0 and "agent-us-east.yaml" in done.stderr


# ---- Kubernetes: the hub ------------------------------------------------------------------------------------


def test_the_hub_is_one_statefulset_replica_with_a_volume_and_probes_on_healthz() -> None:
    docs = k8s_documents()
    hub = find(docs, "StatefulSet", "hub")
    assert hub["spec"]["replicas"] == 1
    assert [t["metadata"]["name"] for t in hub["spec"]["volumeClaimTemplates"]] == ["data"]
    c = container(hub)
    assert {"name": "data", "mountPath": "/data"} in c["volumeMounts"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["ports"] == [{"name": "http", "containerPort": 8080}]
    service = find(docs, "Service", "hub")
    assert service["spec"]["ports"][0]["port"] == 8080
    assert service["spec"]["selector"] == hub["spec"]["selector"]["matchLabels"]
    assert find(docs, "Service", hub["spec"]["serviceName"])["spec"]["clusterIP"] == "None"


def test_every_pod_runs_as_uid_10001_with_a_read_only_root() -> None:
    for doc in k8s_documents():
        if doc["kind"] != "StatefulSet":
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["fsGroup"] == 10001
        c = container(doc)
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert pod["terminationGracePeriodSeconds"] >= 20  # 10 s for in-flight runs, 5 s for the last push


# ---- Kubernetes: agents, their shards, tokens and checks -----------------------------------------------------


def agents(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        env_of(container(d))["PROBER_LOCATION"]: d
        for d in docs
        if d["kind"] == "StatefulSet" and d["metadata"]["name"].startswith("agent-")
    }


def test_each_agent_statefulset_shards_by_pod_ordinal_over_its_replicas() -> None:
    found = agents(k8s_documents())
    assert set(found) == {"eu-west", "us-east"}
    for location, statefulset in found.items():
        assert statefulset["metadata"]["name"] == f"agent-{location}"
        env = env_of(container(statefulset))
        assert env["PROBER_SHARD"] == f"ordinal/{statefulset['spec']['replicas']}", location
        assert env["PROBER_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert env["PROBER_PUSH"].startswith("http://hub.prober.svc")
        assert env["PROBER_TOKEN_FILE"] == f"/run/secrets/prober/{location}"
        for probe in ("readinessProbe", "livenessProbe"):
            assert container(statefulset)[probe]["httpGet"]["path"] == "/healthz"


def test_tokens_checks_and_locations_agree_between_secret_configmap_hub_and_agents() -> None:
    docs = k8s_documents()
    secret_keys = set(find(docs, "Secret", "prober-tokens")["stringData"])
    locations = set(agents(docs))
    assert secret_keys == locations
    hub_env = env_of(container(find(docs, "StatefulSet", "hub")))
    for location in locations:
        variable = location.upper().replace("-", "_") + "_TOKEN_FILE"
        assert hub_env[variable] == f"/run/secrets/prober/{location}"
    for location, statefulset in agents(docs).items():
        tokens = next(v for v in statefulset["spec"]["template"]["spec"]["volumes"] if v["name"] == "tokens")
        assert tokens["secret"]["items"] == [{"key": location, "path": location}]  # an agent sees its own only


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
    docs = k8s_documents()
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


# ---- compose ------------------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return doc


def test_compose_has_a_hub_two_agents_and_an_optional_monitoring_profile() -> None:
    services = compose()["services"]
    core = {name for name, s in services.items() if not s.get("profiles")}
    assert core == {"hub", "agent-eu-west", "agent-us-east"}
    assert {name for name, s in services.items() if s.get("profiles") == ["monitoring"]} == {"prometheus", "grafana"}
    for name in core:
        service = services[name]
        assert service["healthcheck"]["test"] == ["CMD", "/usr/local/bin/prober-healthcheck"]
        assert "./checks:/etc/prober/checks:ro" in service["volumes"]
        assert any(v.endswith(":/data") for v in service["volumes"])
        assert service["build"] == {"context": "..", "dockerfile": "docker/Dockerfile", "target": "slim"}


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


def test_compose_checks_validate_and_list_both_agent_locations() -> None:
    config = load_config([DOCKER / "checks"], env=TOKENS_ENV)
    assert set(config.ingest.tokens) == {"eu-west", "us-east"}
    for location in ("eu-west", "us-east"):
        assert config.select(location=location)


def test_monitoring_files_exist_where_compose_mounts_them() -> None:
    for name in ("prometheus", "grafana"):
        for volume in compose()["services"][name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DOCKER / source).exists(), source
    datasource = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/prober.yml").read_text())
    dashboard_mount = next(v for v in compose()["services"]["grafana"]["volumes"] if "grafana-dashboard" in v)
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


# ---- the Dockerfile -----------------------------------------------------------------------------------------


def test_dockerfile_has_both_targets_a_non_root_user_the_volume_and_the_healthcheck() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\S+)$", text, flags=re.MULTILINE)
    assert {"slim", "full"} <= set(stages)
    assert re.match(r"(?s).*?^FROM \$\{DEBIAN_BASE\} AS base$", text, flags=re.MULTILINE)
    first, *later = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert first == "${DEBIAN_BASE}" and all(f in stages for f in later)  # so `podman build --from` swaps it
    assert "USER 10001:10001" in text and 'VOLUME ["/data"]' in text and "STOPSIGNAL SIGTERM" in text
    assert "HEALTHCHECK" in text and "prober-healthcheck" in text
    assert "PROBER_LISTEN=0.0.0.0:8080" in text
    for label in ("title", "source", "licenses", "version", "revision", "created"):
        assert f"org.opencontainers.image.{label}" in text
    assert "pip wheel" in text and "--no-index" in text
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignore and ".git" in ignore and "!.cache/containers/wheels" in ignore


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
