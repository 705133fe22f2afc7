"""Retention for run artifacts (browser screenshots): files older than the raw-result retention are deleted,
so the results that point at them and the files go away together. Only `*.png` files directly in the
artifacts directory are touched; anything else there is left alone."""

from __future__ import annotations

import time
from pathlib import Path

__all__ = ["prune_artifacts"]


def prune_artifacts(directory: Path, max_age: float, now: float | None = None) -> int:
    """Delete screenshots older than `max_age` seconds; return how many were deleted."""
    if not directory.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - max_age
    deleted = 0
    for path in directory.glob("*.png"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                deleted += 1
        except OSError:  # deleted meanwhile, or not ours to delete: leave it
            continue
    return deleted
