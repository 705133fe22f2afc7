"""Keeping secrets out of API responses: redacted targets, and a scrubber for free text from results.

Check definitions carry secrets (passwords in URLs, Authorization headers, Socket.IO auth payloads,
browser form values, request bodies) and so do notifier URLs and ingest tokens. Each probe declares where
its checks keep them (`secrets` in `prober.probes.registry`). The API shows a check's target only through
its probe's `target` (credentials masked), never shows headers or notifier URLs at all, and passes every
string that comes from a probe (errors, metrics, details, incident errors) through `Scrubber.text`, which
masks any of the configuration's secret values that a probe or a library quoted by accident (the runner
already scrubbed results of this process; this also covers rows stored before, and ingested ones).

It must never raise on odd input and never return a secret it was told about.
"""

from __future__ import annotations

from prober import redact
from prober.config.loader import CheckSpec, Config

__all__ = ["Scrubber", "check_target"]


def check_target(spec: CheckSpec) -> str | None:
    """What the check probes, with credentials and secret query values masked (`https://user:****@host/`)."""
    target = getattr(spec.probe, "target", None)
    return target(spec.model) if target is not None else None


class Scrubber(redact.Scrubber):
    """`prober.redact.Scrubber`, built from every secret of a configuration."""

    @classmethod
    def from_config(cls, config: Config) -> Scrubber:
        return cls(redact.config_secrets(config))
