"""Folding per-rendition findings into one result, the same way for every segmented stream type (HLS, DASH):
the worst HTTP status, "all known are true", and the one-line content problem shown per rendition. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["all_true", "content_problem", "round6", "worst_status"]


def worst_status(values: Sequence[int | None]) -> int | None:
    """200 is fine; any other code is worse, no answer (None) is worst of all."""
    if not values:
        return None
    return max(values, key=lambda status: (2, 0) if status is None else (int(status != 200), status))


def all_true(values: Sequence[bool | None]) -> bool | None:
    """True when every known value is true; None when none is known."""
    known = [value for value in values if value is not None]
    return all(known) if known else None


def round6(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def content_problem(content: Mapping[str, Any] | None) -> str | None:
    """What the decoded picture or sound of one rendition shows wrong, in a few words; None when nothing."""
    content = content or {}
    if content.get("frozen"):
        return f"the picture has been frozen for {content.get('frozen_for') or 0:g}s"
    if (content.get("black_ratio") or 0) >= 0.98:
        return "the picture is black"
    if content.get("audio_silent"):
        return "the audio is silent"
    return None
