"""The HTTP API of `prober run` (docs/api.md): status feed, status page, Statuspage-compatible JSON,
Prometheus metrics, badges, health, and ingest from remote locations.

    from prober.api import create_app
    app = create_app(daemon)       # daemon: anything with store, config, options.location, accept()

| endpoint                                   | module        |
|--------------------------------------------|---------------|
| GET /                                      | static/       |
| GET /api/v1/status (+ .schema.json)        | feed.py       |
| GET /api/v1/history?days=90                | summaries.py  |
| GET /api/v1/checks/{name}/results          | views.py      |
| GET /api/v1/incidents                      | views.py      |
| GET /api/v2/summary.json, /status.json     | statuspage.py |
| GET /metrics                               | metrics.py    |
| GET /badge/{name}.svg                      | badges.py     |
| GET /healthz                               | views.py      |
| GET /livez                                 | app.py        |
| POST /api/v1/ingest                        | ingest.py     |

The API only reads, except ingest, which hands results to the source's `accept`. It never exposes a
check's headers, a notifier URL, an ingest token or an unredacted URL.
"""

from __future__ import annotations

from prober.api.app import SCHEMA_PATH, STATIC_DIR, create_app
from prober.api.feed import FEED_VERSION
from prober.api.source import ApiSource, StoreUnavailableError

__all__ = ["FEED_VERSION", "SCHEMA_PATH", "STATIC_DIR", "ApiSource", "StoreUnavailableError", "create_app"]
