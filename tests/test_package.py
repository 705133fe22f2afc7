"""The package's public face is honest: `__all__` names what exists, the README documents every command."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import prober
from prober.cli.commands import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_name_in_all_exists_and_is_not_private() -> None:
    assert prober.__all__, "prober.__all__ is empty"
    for name in prober.__all__:
        assert hasattr(prober, name), f"prober.__all__ lists {name!r}, which prober does not define"
        assert not name.startswith("_")
    assert len(set(prober.__all__)) == len(prober.__all__)


def test_the_public_api_covers_loading_running_and_reading_a_result() -> None:
    for name in ("load_config", "Config", "ConfigError", "Runner", "Result", "Assertion", "Status"):
        assert name in prober.__all__


def test_every_module_declares_an_honest_all() -> None:
    for module_info in pkgutil.walk_packages(prober.__path__, "prober."):
        if module_info.name == "prober.__main__":
            continue  # importing it runs the CLI
        module = importlib.import_module(module_info.name)
        for name in getattr(module, "__all__", ()):
            assert hasattr(module, name), f"{module_info.name}.__all__ lists {name!r}, which it does not define"


def test_the_version_is_a_version_string() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", prober.__version__)


def test_the_version_is_the_one_in_pyproject() -> None:
    """Written once, in pyproject.toml; the package reads it from the installed metadata."""
    project = tomllib.loads((README.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert prober.__version__ == project["version"]


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_cli_command_is_documented_in_the_readme(command: str) -> None:
    assert README.exists(), "README.md is missing"
    text = README.read_text(encoding="utf-8")
    assert f"prober {command}" in text, f"README.md does not mention `prober {command}`"


def test_the_commands_of_the_foundation_exist() -> None:
    assert {"validate", "check"} <= set(cli.commands)


def _module_imports() -> dict[str, set[str]]:
    """prober's modules and the prober modules each one imports, at the top or inside a function (an import
    deferred into a function still makes a cycle: it only hides it until that function first runs)."""
    package = Path(prober.__file__).parent
    names = {
        ".".join(path.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__"): path
        for path in package.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("prober"):
                assert node.module is not None
                for alias in node.names:  # `from prober.probes import http` imports the module prober.probes.http
                    submodule = f"{node.module}.{alias.name}"
                    edges.add(submodule if submodule in names else node.module)
            elif isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names if alias.name.startswith("prober"))
        graph[name] = edges - {name}
    return graph


def test_no_module_of_prober_imports_itself_back() -> None:
    """No import cycle (`probes/__init__` ↔ every probe, a probe's package ↔ its modules): the order
    modules load in never decides whether a name exists yet."""
    graph = _module_imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target in graph and target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_importing_the_alerts_imports_no_probe_and_no_http_library() -> None:
    """The pure parts stay pure to import: `prober/__init__` loads its names on first use."""
    code = (
        "import sys, prober.alerts\n"
        "loaded = [name for name in sys.modules if name.startswith(('prober.probes', 'aiohttp', 'playwright', 'av'))]\n"
        "print(loaded)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert run.stdout.strip() == "[]", run.stdout


HEAVY = ("aiohttp", "playwright", "apprise", "av", "websockets", "prober.probes.http", "prober.probes.hls.probe")


def _modules_after(code: str, *argv: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `code` (argv as sys.argv[1:])."""
    import json
    import subprocess
    import sys

    probe = f"import sys\nsys.argv[1:] = {list(argv)!r}\ntry:\n{_indent(code)}\nexcept SystemExit:\n    pass\n"
    probe += "import json\nprint(json.dumps(sorted(sys.modules)), file=sys.__stderr__)\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def _indent(code: str) -> str:
    return "\n".join("    " + line for line in code.splitlines())


def test_importing_the_alert_machine_loads_no_network_library_and_no_probe() -> None:
    loaded = _modules_after("import prober.alerts")
    assert "prober.alerts" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert not {name for name in loaded if name.startswith("prober.probes.") and name != "prober.probes.base"}


def test_prober_help_loads_no_probe_pydantic_rich_or_asyncio() -> None:
    loaded = _modules_after("from prober.cli.commands import main\nmain()", "--help")
    assert "click" in loaded
    heavy = set(HEAVY) | {"pydantic", "rich", "asyncio", "yaml", "prober.probes", "prober.config.loader"}
    assert not loaded & heavy, sorted(loaded & heavy)


def test_prober_validate_of_http_checks_loads_only_the_http_model(tmp_path: Path) -> None:
    checks = tmp_path / "checks.yaml"
    checks.write_text(
        "defaults: {schedule: every 30s}\n"
        "checks:\n  - {name: a, type: http, url: 'http://127.0.0.1:9/', expect: {status: 200, latency: '< 1s'}}\n"
    )
    loaded = _modules_after("from prober.cli.commands import main\nmain()", "validate", str(checks))
    assert "prober.probes.http" in loaded  # its Config model validates the check
    heavy = {"aiohttp", "playwright", "apprise", "av", "websockets", "rich", "cryptography", "prober.probes.hls.probe"}
    assert not loaded & heavy, sorted(loaded & heavy)


def test_a_type_is_listed_before_its_module_is_imported_and_imported_on_lookup() -> None:
    code = (
        "from prober.probes import PROBES\n"
        "assert sorted(PROBES) == ['browser', 'dash', 'dns', 'flv', 'grpc', 'heartbeat', 'hls', 'http', 'icmp', "
        "'multistep', 'rtmp', 'tcp', 'tls', 'websocket'], sorted(PROBES)\n"
        "assert 'tls' in PROBES and PROBES.loaded() == ()\n"
        "assert PROBES['tls'].type_name == 'tls' and PROBES.loaded() == ('tls',)\n"
    )
    loaded = _modules_after(code)
    assert "prober.probes.tls" in loaded
    assert "prober.probes.hls.probe" not in loaded and "playwright" not in loaded


def test_exporting_http_metrics_imports_no_other_probe() -> None:
    """A hub that only runs http checks is scraped without importing the HLS or browser probes (PyAV,
    Playwright): /metrics reads each type's export declarations when a result of that type is exported."""
    loaded = _modules_after(
        "from prober.api import metrics\n"
        "assert metrics._exports_of('http')['latency']\n"
        "assert not metrics._exports_of('nope')"
    )
    assert not {"prober.probes.hls.probe", "prober.probes.browser.probe", "av", "playwright"} & loaded
