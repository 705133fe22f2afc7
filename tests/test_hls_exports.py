"""The Prometheus names of the hls metrics added for renditions, LL-HLS, keys and content checks."""

from __future__ import annotations

import pytest

from prober.api.metrics import family_name
from prober.probes.hls_metrics import METRICS


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
