"""The reference in docs/ is generated from the code and must not be stale; the README and docs stand alone."""

from __future__ import annotations

import re
from pathlib import Path

import click

from prober import docs
from prober.cli.commands import cli
from prober.probes import PROBES

REPO = Path(__file__).resolve().parents[1]


def test_the_generated_reference_pages_are_current() -> None:
    for name, build in docs.PAGES.items():
        committed = (REPO / "docs" / name).read_text(encoding="utf-8")
        assert committed == build(), f"docs/{name} is stale: run `python -m prober.docs`"


def test_the_check_command_exits_1_on_a_stale_page(tmp_path: Path) -> None:
    assert docs.main(["--out", str(tmp_path)]) == 0
    assert docs.main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "metrics.md").write_text("old\n")
    assert docs.main(["--out", str(tmp_path), "--check"]) == 1


def test_every_type_key_and_metric_is_in_the_reference() -> None:
    configuration = (REPO / "docs" / "configuration.md").read_text()
    metrics = (REPO / "docs" / "metrics.md").read_text()
    for type_name, probe in PROBES.items():
        assert f"### `{type_name}`" in configuration
        for name, info in probe.Config.model_fields.items():
            assert f"`{info.alias or name}`" in configuration, (type_name, name)
        for metric in probe.metrics:
            assert f"| `{metric}` |" in metrics, (type_name, metric)


def test_every_cli_command_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    assert isinstance(cli, click.Group)
    for name in cli.commands:
        assert f"prober {name}" in readme, f"`prober {name}` is not documented in the README"


def test_no_document_links_outside_the_repository() -> None:
    for path in [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        assert "../shared" not in text, path.name
        for target in re.findall(r"\]\(([^)#]+)\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            assert (path.parent / target).resolve().exists(), f"{path.name} links to missing {target}"
