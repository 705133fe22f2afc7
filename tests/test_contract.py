"""The check-type contract: every registered probe declares its model, metrics, Prometheus exports,
headline metrics, display target and secret fields, and `register` rejects (for mypy) a probe that does not."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pydantic
import pytest

from prober.api import check_page
from prober.api.check_page import headline_of
from prober.api.metrics import family_name
from prober.config.models import CheckBase
from prober.probes import PROBES, Export, SecretKind
from prober.probes.registry import UNIT_SUFFIX, standard_name
from prober.redact import MASK, check_secrets

PROM_NAME = re.compile(r"^probe_[a-z][a-z0-9_]*$")
SHARED_FAMILIES = {"probe_ssl_earliest_cert_expiry", "probe_http_duration_seconds", "probe_tls_version_info"}
SECRET_FIELD = re.compile(r"url|header|auth|token|password|secret|body|send|value|cookie", re.I)

SAMPLES: dict[str, dict[str, Any]] = {
    "http": {
        "url": "https://u:PlantedPw42x@h.test/?token=PlantedTok42",
        "headers": {"Authorization": "Bearer AbCd1234efgh"},
    },
    "tls": {"host": "h.test", "port": 8443},
    "heartbeat": {"token": "hb-Sample-Token-0123456789", "schedule": "every 1d", "grace": "1h"},
    "multistep": {
        "steps": [
            {"name": "login", "url": "https://u:PlantedPw42x@h.test/login", "capture": {"token": {"json": "t"}}},
            {
                "name": "orders",
                "url": "https://h.test/orders?token=PlantedTok42",
                "headers": {"Authorization": "Bearer {{ steps.login.token }}"},
            },
        ]
    },
    "dns": {"query": "h.test", "record_type": "A", "server": "192.0.2.53:5353"},
    "icmp": {"host": "h.test"},
    "grpc": {"host": "h.test", "port": 50051, "service": "billing"},
    "tcp": {"host": "h.test", "port": 6379, "steps": [{"send": "AUTH PlantedPw42x\r\n"}, {"expect": "+OK"}]},
    "hls": {"url": "https://u:PlantedPw42x@h.test/live.m3u8?token=PlantedTok42"},
    "flv": {"url": "https://u:PlantedPw42x@h.test/live/stream.flv?token=PlantedTok42", "content": True},
    "rtmp": {"url": "rtmp://u:PlantedPw42x@h.test/live/stream?token=PlantedTok42", "content": True},
    "dash": {"url": "https://u:PlantedPw42x@h.test/live.mpd?token=PlantedTok42", "content": True},
    "websocket": {"protocol": "socketio", "url": "ws://u:PlantedPw42x@h.test/", "auth": {"token": "PlantedTok42"}},
    "browser": {"url": "https://h.test/", "steps": [{"fill": "#pw", "value": "PlantedPw42x"}]},
}


def sample(type_name: str) -> Any:
    probe = PROBES[type_name]
    return probe.Config.model_validate({"name": "sample", "type": type_name, **SAMPLES[type_name]})


@pytest.fixture(params=sorted(PROBES))
def type_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_every_registered_type_has_a_sample_here() -> None:
    assert sorted(SAMPLES) == sorted(PROBES), "add a sample check of the new type to SAMPLES"


def test_a_probe_declares_its_model_and_metrics(type_name: str) -> None:
    probe = PROBES[type_name]
    assert probe.type_name == type_name
    assert issubclass(probe.Config, CheckBase)
    assert probe.metrics and all(name == spec.name for name, spec in probe.metrics.items())
    compiled = probe.default_expect(sample(type_name))
    assert set(compiled) <= set(probe.metrics)


def test_every_value_metric_says_how_it_is_exported(type_name: str) -> None:
    probe = PROBES[type_name]
    value_metrics = {name for name, spec in probe.metrics.items() if spec.kind in ("value", "flag")}
    assert set(probe.exports) == value_metrics, "exports must list every value/flag metric (an empty tuple: text)"
    assert any(probe.exports.values()), "a type exports at least one metric"
    for metric, exports in probe.exports.items():
        for export in exports:
            assert isinstance(export, Export)
            assert PROM_NAME.match(export.name), export.name
            assert export.unit in ("", *UNIT_SUFFIX.values()), export.unit
            if export.unit and export.name not in SHARED_FAMILIES:
                assert export.name.endswith("_" + export.unit) or export.unit in metric.split("_"), export.name
            assert (export.kind == "info") == (export.info_label is not None)
            assert set(export.minus) <= set(probe.metrics)


def test_exported_names_do_not_collide_across_metrics() -> None:
    owners: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, str]] = {}
    for type_name, probe in PROBES.items():
        for metric, exports in probe.exports.items():
            for export in exports:
                key = (export.name, export.labels)
                if export.name in SHARED_FAMILIES and key in owners and owners[key][0] != type_name:
                    continue  # one family for several types (the check label tells them apart)
                assert key not in owners, f"{export.name} is exported by {owners.get(key)} and {(type_name, metric)}"
                owners[key] = (type_name, metric)


def test_the_headline_names_metrics_of_the_probe(type_name: str) -> None:
    probe = PROBES[type_name]
    assert probe.headline and set(probe.headline) <= set(probe.metrics)


def test_the_check_page_headline_names_metrics_of_the_probe(type_name: str) -> None:
    headline = headline_of(type_name)
    assert headline and {metric for metric, _, _ in headline} <= set(PROBES[type_name].metrics)


def test_a_type_the_check_page_has_no_words_for_shows_its_registry_headline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new type needs no line in prober/api/check_page.py: its probe's `headline`, in the metrics' units."""
    monkeypatch.delitem(check_page.HEADLINE, "tls")
    assert headline_of("tls") == (("days_remaining", "Days remaining", "days"),)
    assert headline_of("no-such-type") == ()


def test_the_target_is_shown_without_credentials(type_name: str) -> None:
    shown = PROBES[type_name].target(sample(type_name))
    assert isinstance(shown, str) and shown
    assert "PlantedPw42x" not in shown and "PlantedTok42" not in shown


def _field_names(model: type[pydantic.BaseModel], prefix: str = "") -> set[str]:
    names: set[str] = set()
    for name, info in model.model_fields.items():
        if name in CheckBase.model_fields:
            continue
        names.add(prefix + name)
        for arg in [info.annotation, *typing.get_args(info.annotation)]:
            if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel):
                names |= _field_names(arg, f"{prefix}{name}.")
    return names


def test_secret_fields_exist_and_no_secret_looking_field_is_left_out(type_name: str) -> None:
    probe = PROBES[type_name]
    fields = _field_names(probe.Config)
    assert set(probe.secrets) <= fields, f"declared secret fields that {probe.Config.__name__} has not"
    for kind in probe.secrets.values():
        assert kind in typing.get_args(SecretKind)
    undeclared = {name for name in fields if SECRET_FIELD.search(name.rsplit(".", 1)[-1])} - set(probe.secrets)
    allowed = {"verify_tls", "subprotocols", "max_body"}  # flags and sizes, not secrets
    allowed |= {"steps.capture.header", "steps.capture.secret"}  # a header's name, a flag (multistep)
    assert undeclared <= allowed, f"fields that may carry a secret are not declared in secrets: {undeclared}"


def test_planted_secrets_are_found_from_the_declarations(type_name: str) -> None:
    found = check_secrets(sample(type_name), PROBES[type_name].secrets)
    planted = {"PlantedPw42x", "PlantedTok42", "AbCd1234efgh"} & {
        word for value in SAMPLES[type_name].values() for word in re.split(r"[^A-Za-z0-9]+", str(value))
    }
    assert planted <= found
    assert MASK not in found


def test_standard_names_carry_their_unit_once() -> None:
    assert standard_name("hls", "window", "s") == "probe_hls_window_seconds"
    assert standard_name("hls", "segment_bytes", "bytes") == "probe_hls_segment_bytes"
    assert family_name("websocket", "ping_rtt", "s") == "probe_ws_ping_rtt_seconds"
    assert family_name("newtype", "latency", "s") == "probe_newtype_latency_seconds"


BAD_PROBES = {
    "no metrics": "    exports = {}\n    headline = ('x',)\n    secrets = {}\n"
    "    def default_expect(self, check: HttpCheck) -> Mapping[str, Any]: return {}\n",
    "wrong run": "    metrics = {}\n    exports = {}\n    headline = ('x',)\n    secrets = {}\n"
    "    def default_expect(self, check: HttpCheck) -> Mapping[str, Any]: return {}\n"
    "    def target(self, check: HttpCheck) -> str: return ''\n"
    "    async def run(self, check: HttpCheck) -> Observation: return Observation()\n",
}
GOOD_BODY = (
    "    metrics: ClassVar[Mapping[str, MetricSpec]] = {}\n"
    "    exports: ClassVar[Mapping[str, tuple[Export, ...]]] = {}\n"
    "    headline: ClassVar[tuple[str, ...]] = ('x',)\n"
    "    secrets: ClassVar[Mapping[str, SecretKind]] = {}\n"
    "    def default_expect(self, check: HttpCheck) -> Mapping[str, Any]: return {}\n"
    "    def target(self, check: HttpCheck) -> str: return ''\n"
    "    async def run(self, check: HttpCheck, ctx: ProbeContext) -> Observation: return Observation()\n"
)
HEADER = (
    "from collections.abc import Mapping\nfrom typing import Any, ClassVar\n"
    "from prober.config.conditions import MetricSpec\nfrom prober.probes.base import Observation, ProbeContext\n"
    "from prober.probes.http import HttpCheck\n"
    "from prober.probes.registry import Export, SecretKind, register\n\n"
    "@register('bad')\nclass Bad:\n    type_name: ClassVar[str]\n    Config = HttpCheck\n"
)


def _mypy(tmp_path: Path, bodies: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], dict[str, Path]]:
    """One strict mypy run over one module per body (independent modules: one's errors never touch another's)."""
    sources = {}
    for index, (what, body) in enumerate(bodies.items()):
        source = tmp_path / f"probe_case_{index}.py"
        source.write_text(HEADER + body)
        sources[what] = source
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "c")]
        + [str(source) for source in sources.values()],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent.parent,
    )
    return checked, sources


@pytest.mark.slow
def test_mypy_rejects_a_probe_that_breaks_the_contract_and_accepts_one_that_keeps_it(tmp_path: Path) -> None:
    checked, sources = _mypy(tmp_path, {"good": GOOD_BODY, **BAD_PROBES})
    errors = [line for line in checked.stdout.splitlines() if ": error:" in line]
    assert checked.returncode == 1, checked.stdout
    by_case = {what: [line for line in errors if line.startswith(str(source))] for what, source in sources.items()}
    assert sum(len(lines) for lines in by_case.values()) == len(errors), checked.stdout  # nothing else failed
    assert by_case.pop("good") == [], checked.stdout
    assert set(by_case) == set(BAD_PROBES)
    for what, lines in by_case.items():
        assert any('Value of type variable "ProbeClass"' in line for line in lines), (what, checked.stdout)


def test_the_feed_schema_names_exactly_the_registered_types() -> None:
    schema = json.loads((Path(__file__).parent.parent / "prober/api/feed.schema.json").read_text())
    described = schema["$defs"]["check"]["properties"]["type"]["description"]
    assert sorted(word.strip() for word in described.split(",")) == sorted(PROBES)


def test_every_registered_type_has_a_reference_page_linked_from_the_readme() -> None:
    root = Path(__file__).parent.parent
    readme = (root / "README.md").read_text()
    for type_name in PROBES:
        page = root / "docs" / "checks" / f"{type_name}.md"
        assert page.is_file(), f"docs/checks/{type_name}.md is missing: every check type has a reference page"
        first = page.read_text().lstrip().splitlines()[0]
        assert first.startswith("# ") and f"`{type_name}`" in first, (
            f"docs/checks/{type_name}.md must open with a '# ' heading naming `{type_name}`; it opens with {first!r}"
        )
        assert f"docs/checks/{type_name}.md" in readme, (
            f"README.md does not link to docs/checks/{type_name}.md (add a row to its 'Check types' table)"
        )


def test_the_cli_table_shows_the_headline_metrics_in_their_unit(type_name: str) -> None:
    from datetime import UTC, datetime

    from prober.cli.render import metric_summary
    from prober.config.durations import format_duration
    from prober.results import Result

    probe = PROBES[type_name]
    metrics = {name: 0.0417 if probe.metrics[name].unit == "s" else 7 for name in probe.headline}
    metrics["not_a_headline"] = 99
    result = Result(type_name, type_name, "default", datetime.now(UTC), 1.0, "up", metrics=metrics)
    summary = metric_summary(result)
    for name in probe.headline:
        assert f"{name}={format_duration(0.0417) if probe.metrics[name].unit == 's' else 7}" in summary
    assert "not_a_headline" not in summary


def test_no_probe_module_imports_the_package_it_is_registered_in() -> None:
    import ast

    package = Path(__file__).parent.parent / "prober" / "probes"
    for source in package.glob("*.py"):
        if source.name == "__init__.py":
            continue
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "prober.probes", f"{source.name} imports from the package __init__"
                if source.name in ("registry.py", "base.py"):
                    assert not (node.module or "").startswith("prober.probes.") or node.module == "prober.probes.base"
