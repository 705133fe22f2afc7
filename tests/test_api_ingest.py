"""POST /api/v1/ingest: bearer tokens per location, validation, duplicates, size limit (docs/api.md, Ingest)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

from api_helpers import NOW, fake_daemon, result, serve

CONFIG = """
version: 1
ingest:
  tokens: {eu-west: "eu-secret-token-1234", us-east: "us-secret-token-5678", unused: ""}
checks:
  - {name: api, type: http, url: "https://api.example.com/", locations: [default, eu-west, us-east]}
"""
EU = {"Authorization": "Bearer eu-secret-token-1234"}


def batch(*statuses: str, location: str = "eu-west") -> list:
    return [
        result("api", status, location=location, at=NOW + timedelta(seconds=index))  # type: ignore[arg-type]
        for index, status in enumerate(statuses)
    ]


def body(results: list) -> dict:
    return {"results": [item.to_json() for item in results]}


async def test_accepts_a_batch_and_counts_a_repeated_push_as_duplicates(tmp_path: Path) -> None:
    results = batch("up", "down", "down")
    async with fake_daemon(tmp_path, CONFIG) as daemon:
        async with serve(daemon) as client:
            first = await client.post("/api/v1/ingest", json=body(results), headers=EU)
            assert first.status == 200 and await first.json() == {"accepted": 3, "duplicates": 0}
            again = await client.post("/api/v1/ingest", json=body([*results, results[0]]), headers=EU)
            assert await again.json() == {"accepted": 0, "duplicates": 4}
        assert [item.id for item in daemon.accepted] == [item.id for item in results]  # alerts saw each once
        assert daemon.store.current("api")[0]["consecutive_down"] == 2
        assert daemon.store.current("api")[0]["location"] == "eu-west"


async def test_two_copies_of_one_push_racing_are_accepted_once(tmp_path: Path) -> None:
    results = batch(*["up"] * 50)
    async with fake_daemon(tmp_path, CONFIG) as daemon:
        async with serve(daemon) as client:
            answers = await asyncio.gather(
                *(client.post("/api/v1/ingest", json=body(results), headers=EU) for _ in range(2))
            )
            counts = [await answer.json() for answer in answers]
        assert sorted(item["accepted"] for item in counts) == [0, 50]
        assert len(daemon.accepted) == 50


async def test_missing_or_wrong_token_is_401_and_another_locations_result_is_403(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG) as daemon:
        async with serve(daemon) as client:
            none = await client.post("/api/v1/ingest", json=body(batch("up")))
            assert none.status == 401 and none.headers["WWW-Authenticate"].startswith("Bearer")
            wrong = await client.post(
                "/api/v1/ingest", json=body(batch("up")), headers={"Authorization": "Bearer nope"}
            )
            assert wrong.status == 401
            empty = await client.post("/api/v1/ingest", json=body(batch("up")), headers={"Authorization": "Bearer "})
            assert empty.status == 401  # the empty token configured for `unused` never matches
            mixed = batch("up") + batch("up", location="us-east")
            forbidden = await client.post("/api/v1/ingest", json=body(mixed), headers=EU)
            assert forbidden.status == 403
            assert "us-east" in (await forbidden.json())["error"]
        assert daemon.accepted == [] and daemon.store.current() == []  # nothing of a refused batch is stored


async def test_malformed_bodies_are_400_naming_the_bad_result(tmp_path: Path) -> None:
    good = batch("up")[0].to_json()
    async with fake_daemon(tmp_path, CONFIG) as daemon:
        async with serve(daemon) as client:
            not_json = await client.post("/api/v1/ingest", data=b"{nope", headers=EU)
            assert not_json.status == 400
            no_list = await client.post("/api/v1/ingest", json={"results": {}}, headers=EU)
            assert no_list.status == 400
            bad_status = await client.post(
                "/api/v1/ingest", json={"results": [good, {**good, "id": "x", "status": "ok"}]}, headers=EU
            )
            assert bad_status.status == 400
            assert "results[1]" in (await bad_status.json())["error"]
            missing = await client.post("/api/v1/ingest", json={"results": [{"id": "y"}]}, headers=EU)
            assert missing.status == 400 and "missing key" in (await missing.json())["error"]
        assert daemon.accepted == []


async def test_a_400_lists_every_refused_result_by_id_so_an_agent_can_send_the_rest(tmp_path: Path) -> None:
    good, ghost, late = batch("up", "up", "up")
    items = [good.to_json(), {**ghost.to_json(), "check": "ghost"}, {**late.to_json(), "status": "ok"}]
    async with fake_daemon(tmp_path, CONFIG) as daemon:
        async with serve(daemon) as client:
            answer = await client.post("/api/v1/ingest", json={"results": items}, headers=EU)
            assert answer.status == 400
            data = await answer.json()
        assert daemon.accepted == []
    assert "results[1] (check 'ghost')" in data["error"]
    assert [(item["index"], item["id"], item["check"], item["reason"]) for item in data["rejected"]] == [
        (1, ghost.id, "ghost", "unknown_check"),
        (2, late.id, "api", "malformed"),
    ]
    assert "is not defined on this hub" in data["rejected"][0]["error"]


async def test_bodies_over_the_limit_are_413(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG) as daemon:
        async with serve(daemon, max_ingest_bytes=10_000) as client:
            big = json.dumps(body(batch(*["up"] * 100))).encode()
            assert len(big) > 10_000
            declared = await client.post("/api/v1/ingest", data=big, headers={**EU, "Content-Type": "application/json"})
            assert declared.status == 413

            async def chunks():  # no Content-Length: the limit applies while reading
                for start in range(0, len(big), 1000):
                    yield big[start : start + 1000]

            streamed = await client.post("/api/v1/ingest", data=chunks(), headers=EU)
            assert streamed.status == 413
            small = await client.post("/api/v1/ingest", json=body(batch("up")), headers=EU)
            assert small.status == 200
        assert len(daemon.accepted) == 1
