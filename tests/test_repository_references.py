"""The repository explains itself: no text of the product cites a document or a tracker it does not contain.

A reader of prober/, docs/, README.md or CONTRIBUTING.md must be able to follow every citation. A rule
lives in a page of docs/ (or in the code that keeps it), so a comment cites that page; it never cites a
specification file kept elsewhere, a section number of one, or an issue number of a tracker the reader
cannot see. Section signs of public standards (`RFC 8216 §6.2.1`) are fine: anyone can look those up.
It never edits a file; it names the file, the line and the text to replace.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCANNED = ["prober", "docs", "README.md", "CONTRIBUTING.md"]

# Spelled so that this file does not match itself.
OUTSIDE_SPEC = re.compile(r"\bSPEC" + r"\.md\b")
ISSUE_NUMBER = re.compile(r"\b[Ii]ssues?\s*#?\s*\d+" + r"\b")
SECTION_SIGN = "\u00a7"
STANDARD_SECTION = re.compile(r"\b(?:RFC|ISO|ITU-T|ECMA)[\s-]?[\w.-]*\s+$")


def _text_files() -> list[Path]:
    files: list[Path] = []
    for name in SCANNED:
        path = REPO / name
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for candidate in candidates:
            if "__pycache__" in candidate.parts:
                continue
            try:
                candidate.read_text(encoding="utf-8")
            except UnicodeDecodeError:  # images
                continue
            files.append(candidate)
    return files


def citations_outside_the_repository(text: str) -> list[tuple[int, str]]:
    """(line number, the offending text) for every citation a reader of this repository cannot follow."""
    found: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        found += [(number, match.group()) for match in OUTSIDE_SPEC.finditer(line)]
        found += [(number, match.group()) for match in ISSUE_NUMBER.finditer(line)]
        for match in re.finditer(SECTION_SIGN + r"\s*\d+(?:\.\d+)*", line):
            if not STANDARD_SECTION.search(line[: match.start()]):
                found.append((number, match.group()))
    return found


def test_the_product_cites_nothing_outside_the_repository() -> None:
    problems = [
        f"{path.relative_to(REPO)}:{line}: {cited!r} (cite the docs/ page that holds the rule, or drop it)"
        for path in _text_files()
        for line, cited in citations_outside_the_repository(path.read_text(encoding="utf-8"))
    ]
    assert not problems, "citations a reader of this repository cannot follow:\n" + "\n".join(problems)


def test_the_scan_reads_the_product() -> None:
    scanned = {path.relative_to(REPO).as_posix() for path in _text_files()}
    assert {"README.md", "CONTRIBUTING.md", "prober/alerts.py", "docs/api.md", "docs/checks/hls.md"} <= scanned


def test_each_kind_of_outside_citation_is_caught_and_standards_are_not() -> None:
    spec = "SPEC" + ".md"
    text = "\n".join(
        [
            f"The condition language of {spec} {SECTION_SIGN}2.",
            "A fix for issue 10, and one for issue #12; see Issues 3.",
            f"as {SECTION_SIGN}4 says",
            f"RFC 8216 {SECTION_SIGN}6.2.1 and RFC 8216bis {SECTION_SIGN}4.4.3.1 are public.",
            "issued 3 certificates; an issuer; the tissue",
        ]
    )
    assert citations_outside_the_repository(text) == [
        (1, spec),
        (1, f"{SECTION_SIGN}2"),
        (2, "issue 10"),
        (2, "issue #12"),
        (2, "Issues 3"),
        (3, f"{SECTION_SIGN}4"),
    ]
