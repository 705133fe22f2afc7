"""The reference in docs/ is generated from the code and must not be stale; the README and docs stand alone."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import click
import pytest
from certs_factory import make_cert

from prober import docs
from prober.cli.commands import cli
from prober.config.loader import ConfigError, load_config
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


def _documents() -> list[Path]:
    return [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").rglob("*.md"))]


def test_no_document_links_outside_the_repository() -> None:
    for path in _documents():
        text = path.read_text(encoding="utf-8")
        assert "../shared" not in text, path.name
        for target in re.findall(r"\]\(([^)#]+)\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            assert (path.parent / target).resolve().exists(), f"{path.name} links to missing {target}"


def test_every_document_is_reachable_from_the_readme() -> None:
    """A newcomer starts at README.md: every page of docs/ is linked from it, or from a page it links to."""
    linked: set[Path] = set()
    todo = [REPO / "README.md"]
    while todo:
        page = todo.pop()
        if page in linked or page.suffix != ".md" or not page.is_file():
            continue
        linked.add(page)
        for target in re.findall(r"\]\(([^)#]+)", page.read_text(encoding="utf-8")):
            if not target.startswith(("http://", "https://", "mailto:")):
                todo.append((page.parent / target).resolve())
    unreachable = [str(path.relative_to(REPO)) for path in _documents() if path.resolve() not in linked]
    assert not unreachable, f"not reachable by links from README.md: {unreachable}"


def test_the_readme_stays_a_guide() -> None:
    lines = len((REPO / "README.md").read_text(encoding="utf-8").splitlines())
    assert lines <= 350, f"README.md has {lines} lines; move reference text to a page in docs/ (at most 350)"


def _yaml_examples(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [block for block in re.findall(r"```yaml\n(.*?)```", text, re.S) if block.lstrip().startswith("checks:")]


CHECK_PAGES = sorted((REPO / "docs" / "checks").glob("*.md"))


class _AnyVariable(Mapping[str, str]):
    """The environment of an example: every `${VAR}` it names is set (to a 12-character value)."""

    def __getitem__(self, name: str) -> str:
        return "x" * 12

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


EXAMPLE_ENV = _AnyVariable()


@pytest.mark.parametrize("page", CHECK_PAGES, ids=[page.stem for page in CHECK_PAGES])
def test_the_examples_of_a_check_page_are_valid_checks(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    examples = _yaml_examples(page)
    for named in re.findall(r"(?:ca_file|file): ([\w./-]+)", "".join(examples)):
        assert not named.startswith("/"), f"docs/checks/{page.name}: name a relative file in examples, not {named}"
        (tmp_path / named).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / named).write_bytes(make_cert("good", tmp_path).ca.read_bytes())
    assert examples, f"docs/checks/{page.name} has no example (a ```yaml block starting with checks:)"
    for number, example in enumerate(examples, 1):
        path = tmp_path / f"example{number}.yaml"
        path.write_text("version: 1\n" + example, encoding="utf-8")
        try:
            config = load_config([path], env=EXAMPLE_ENV)
        except ConfigError as exc:
            raise AssertionError(f"docs/checks/{page.name}, example {number} is not valid: {exc}") from None
        assert {spec.model.type for spec in config.checks} == {page.stem}, page.name


def test_the_readme_check_types_table_has_a_valid_example_per_type(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z0-9_]+)` \|[^|]*\| `(\{.*?\})` \| \[docs/checks/", readme, re.M))
    assert sorted(rows) == sorted(PROBES), "the README's 'Check types' table needs one row per registered type"
    path = tmp_path / "types.yaml"
    path.write_text("version: 1\nchecks:\n" + "".join(f"  - {row}\n" for row in rows.values()), encoding="utf-8")
    try:
        load_config([path], env={})
    except ConfigError as exc:
        raise AssertionError(f"a one-line example of the README's 'Check types' table is not valid: {exc}") from None
