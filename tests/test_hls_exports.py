"""The new hls keys as users write them (`content`) and the Prometheus names of the metrics added for
renditions, LL-HLS, keys and content checks, and the arithmetic of `pts_gap` (the MPEG-TS timestamp wrap)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hls_origin import load_hls_check

from prober.api.metrics import family_name
from prober.config.loader import ConfigError
from prober.probes.hls import probe as hls
from prober.probes.hls.metrics import METRICS
from prober.probes.media.content import ContentSettings, Decoded, compare


@pytest.mark.parametrize(
    ("metric", "exported"),
    [
        ("renditions_failed", "probe_hls_renditions_failed"),
        ("part_target", "probe_hls_part_target_seconds"),
        ("part_stale_for", "probe_hls_part_stale_seconds"),
        ("part_fresh", "probe_hls_part_fresh"),
        ("blocking_reload", "probe_hls_blocking_reload_seconds"),
        ("key_status", "probe_hls_key_status_code"),
        ("frozen_for", "probe_hls_frozen_seconds"),
        ("black_ratio", "probe_hls_black_ratio"),
        ("audio_level", "probe_hls_audio_level_dbfs"),
        ("audio_silent", "probe_hls_audio_silent"),
        ("pts_gap", "probe_hls_pts_gap_seconds"),
        ("decoded_duration", "probe_hls_decoded_duration_seconds"),
    ],
)
def test_new_hls_metrics_export_under_probe_hls_names(metric: str, exported: str) -> None:
    spec = METRICS[metric]
    assert family_name("hls", spec.name, spec.unit) == exported


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ({"frozen_for": -1}, "field 'content.frozen_for': a duration cannot be negative"),
        ("yes_please", "field 'content': expected true, false or a block of thresholds such as {frozen_for: 20s}"),
        ({"frozen": 3}, "content.frozen"),
    ],
)
def test_a_bad_content_key_is_one_clear_problem(content: Any, says: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_hls_check(tmp_path, {"url": "http://127.0.0.1:9/live.m3u8", "content": content})
    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (True, {"has_video": True, "frozen_for": "<= 10s", "black_ratio": "< 0.98", "audio_silent": "!= true"}),
        ({"frozen_for": "20s", "black_ratio": 0.9}, {"frozen_for": "<= 20s", "black_ratio": "< 0.9"}),
        (False, {}),
    ],
)
def test_content_adds_its_default_expectations(content: Any, expected: dict[str, Any], tmp_path: Path) -> None:
    spec = load_hls_check(tmp_path, {"url": "http://127.0.0.1:9/live.m3u8", "content": content})
    assert isinstance(spec.model, hls.HlsCheck)
    defaults = hls.HlsProbe().default_expect(spec.model)
    assert {key: defaults[key] for key in expected} == expected
    if not expected:
        assert "has_video" not in defaults


WRAP = 2**33 / 90000


@pytest.mark.parametrize(
    ("end_before", "first_after", "gap"),
    [(WRAP - 1.0, 1.0, 0.0), (10.0, 12.0, 0.0), (10.0, 40.0, 28.0)],
    ids=["mpegts-wrap", "continuous", "jump"],
)
def test_pts_gap_ignores_the_mpegts_timestamp_wrap_but_not_a_jump(
    end_before: float, first_after: float, gap: float
) -> None:
    """Segment 5 ended at `end_before`; segment 6 (2 s) sits between; segment 7 starts at `first_after`."""
    decoded = Decoded(has_video=True, first_pts=first_after, end_pts=first_after + 2, thumbs=[bytes(64 * 36)])
    previous = {"sequence": 5, "discontinuity": 0, "end_pts": end_before, "first_pts": end_before - 2}
    findings = compare(
        decoded,
        previous,
        settings=ContentSettings(),
        now=1e9,
        sequence=7,
        discontinuity=0,
        extinf=2.0,
        between=2.0,
        resolution=None,
    )
    assert findings.metrics["pts_gap"] == pytest.approx(gap, abs=0.01)
