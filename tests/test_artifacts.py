"""Screenshots follow the raw-result retention: old ones are deleted, recent ones and other files stay."""

from __future__ import annotations

import os
import time
from pathlib import Path

from prober.store.artifacts import prune_artifacts


def test_screenshots_older_than_retention_are_deleted_and_everything_else_stays(tmp_path: Path) -> None:
    now = time.time()
    old, recent, other = tmp_path / "old.png", tmp_path / "recent.png", tmp_path / "notes.txt"
    for path in (old, recent, other):
        path.write_bytes(b"x")
    os.utime(old, (now - 15 * 86400, now - 15 * 86400))
    os.utime(other, (now - 30 * 86400, now - 30 * 86400))
    assert prune_artifacts(tmp_path, 14 * 86400, now=now) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "recent.png"]


def test_a_missing_artifacts_directory_is_not_an_error(tmp_path: Path) -> None:
    assert prune_artifacts(tmp_path / "never-made", 60) == 0
