"""Ingest, second hostile round: a time that parses but whose UTC date is out of range is refused saying so.

`0001-01-01T00:00:00+01:00` is a valid ISO 8601 time; in UTC it is in year 0, which does not exist. The hub
used to answer "must be an ISO 8601 time" (wrong: it is one). Each case has its healthy twin.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from api_helpers import NOW, fake_daemon, serve
from test_api_ingest_hostile import CONFIG, EU, good

from prober.api.ingest import REJECTED

OUT_OF_RANGE = [
    ("0001-01-01T00:00:00+01:00", "is out of range: in UTC it falls before year 1"),
    ("9999-12-31T23:59:59-01:00", "is out of range: in UTC it falls after year 9999"),
]


@pytest.mark.parametrize(("started_at", "message"), OUT_OF_RANGE, ids=["year 1 east of UTC", "year 9999 west"])
async def test_a_time_whose_utc_date_is_out_of_range_is_refused_saying_so(
    tmp_path: Any, started_at: str, message: str
) -> None:
    item = good(id="0193aaaa-0000-7000-8000-000000000021", started_at=started_at)
    async with fake_daemon(tmp_path, CONFIG) as daemon, serve(daemon) as client:
        before = REJECTED["time_range"]
        answer = await client.post("/api/v1/ingest", json={"results": [item]}, headers=EU)
        text = (await answer.json())["error"]
        assert answer.status == 400, text
        assert f"results[0] (check 'api') was refused: started_at '{started_at}' {message}" in text, text
        assert "ISO 8601" not in text
        assert REJECTED["time_range"] == before + 1
    assert daemon.accepted == []


async def test_the_twin_with_an_offset_in_range_is_accepted(tmp_path: Any) -> None:
    moment = (NOW - timedelta(minutes=1)).astimezone().isoformat()  # local offset, well inside the range
    twin = good(id="0193aaaa-0000-7000-8000-000000000022", started_at=moment)
    async with fake_daemon(tmp_path, CONFIG) as daemon, serve(daemon) as client:
        answer = await client.post("/api/v1/ingest", json={"results": [twin]}, headers=EU)
        assert answer.status == 200, await answer.text()
    assert len(daemon.accepted) == 1
