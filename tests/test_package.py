"""The package's public face is honest: `__all__` names what exists, the README documents every command."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import prober
from prober.cli import cli

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


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_cli_command_is_documented_in_the_readme(command: str) -> None:
    assert README.exists(), "README.md is missing"
    text = README.read_text(encoding="utf-8")
    assert f"prober {command}" in text, f"README.md does not mention `prober {command}`"


def test_the_commands_of_the_foundation_exist() -> None:
    assert {"validate", "check"} <= set(cli.commands)
