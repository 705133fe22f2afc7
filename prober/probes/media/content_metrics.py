"""The content metrics every stream type reports when `content` is on, with their sentences.

HLS, DASH, HTTP-FLV and RTMP decode different pieces of a stream (a segment, a GOP), but a frozen picture,
a black screen and silence read the same to a viewer, so they read the same in every result:
`content_metric_specs("the newest segment")` or `content_metric_specs("the stream")`. Pure.
"""

from __future__ import annotations

from typing import Any

from prober.config.conditions import MetricSpec

__all__ = [
    "CONTENT_METRIC_NAMES",
    "black_sentence",
    "content_metric_specs",
    "frozen_sentence",
    "silent_sentence",
]

CONTENT_METRIC_NAMES = (
    "has_video",
    "has_audio",
    "decoded_duration",
    "width",
    "height",
    "black_ratio",
    "frozen",
    "frozen_for",
    "audio_level",
    "audio_silent",
    "pts_gap",
)


def black_sentence(actual: Any, condition: str) -> str | None:
    if isinstance(actual, int | float):
        return f"the picture is black: {actual:.0%} of the decoded frames are black (expected {condition})"
    return None


def frozen_sentence(actual: Any, condition: str) -> str | None:
    if isinstance(actual, int | float):
        return f"the picture has been frozen for {actual:.1f}s (expected {condition})"
    return None


def silent_sentence(actual: Any, condition: str) -> str | None:
    return "the audio is silent (its level is below the silence threshold)" if actual is True else None


def content_metric_specs(what: str) -> dict[str, MetricSpec]:
    """The content metric specs; `what` names the decoded piece in sentences ("the stream")."""

    def no_video(actual: Any, condition: str) -> str | None:
        return f"{what} has no decodable video" if actual is False else None

    def pts_gap(actual: Any, condition: str) -> str | None:
        if isinstance(actual, int | float):
            return f"the timestamps of {what} jumped {actual:.3g}s (expected {condition}): players may stall or skip"
        return None

    specs = (
        MetricSpec("has_video", f"content: {what} has decodable video", describe=no_video),
        MetricSpec("has_audio", f"content: {what} has decodable audio"),
        MetricSpec("decoded_duration", f"content: decoded media duration of {what}", unit="s"),
        MetricSpec("width", "decoded picture width"),
        MetricSpec("height", "decoded picture height"),
        MetricSpec(
            "black_ratio",
            "content: share of decoded frames that are black",
            describe=black_sentence,
            explains=("frozen", "frozen_for"),  # a black screen never changes: black is the cause
        ),
        MetricSpec("frozen", "content: the decoded frames show one unchanging picture"),
        MetricSpec(
            "frozen_for",
            "content: seconds the picture has not changed (across runs)",
            unit="s",
            describe=frozen_sentence,
        ),
        MetricSpec("audio_level", "content: RMS audio level in dBFS", unit="dBFS"),
        MetricSpec("audio_silent", "content: the decoded audio is below the silence level", describe=silent_sentence),
        MetricSpec("pts_gap", f"content: timestamp jump inside {what}", unit="s", describe=pts_gap),
    )
    return {spec.name: spec for spec in specs}
