"""The API's response cache on a fake clock: fresh for its ttl and not a moment longer, one computation for a
burst, the oldest key forgotten first, and a clock set back never keeps an old answer alive."""

from __future__ import annotations

import asyncio

from fake_clock import FakeClock

from prober.api.cache import Cached, ResponseCache


class Producer:
    """Counts its calls; each answer says which call made it. `gate` holds a call until the test opens it."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self) -> Cached:
        self.calls += 1
        made = self.calls
        await self.gate.wait()
        return Cached(f"answer {made}".encode(), "text/plain")


async def test_an_answer_is_served_for_its_ttl_and_recomputed_after_it() -> None:
    clock, produce = FakeClock(), Producer()
    cache = ResponseCache(1.0, clock=clock)
    assert (await cache.get("/status", produce)).body == b"answer 1"
    clock.advance(0.999)
    assert (await cache.get("/status", produce)).body == b"answer 1", "recomputed inside its ttl"
    clock.advance(0.001)
    assert (await cache.get("/status", produce)).body == b"answer 2", "served at its ttl"
    assert (produce.calls, cache.computed) == (2, 2)


async def test_the_age_counts_from_when_the_computation_began() -> None:
    clock, produce = FakeClock(), Producer()
    cache = ResponseCache(1.0, clock=clock)
    produce.gate.clear()
    pending = asyncio.ensure_future(cache.get("/status", produce))
    await asyncio.sleep(0)
    clock.advance(0.6)  # the computation takes 0.6 s
    produce.gate.set()
    assert (await pending).created == clock.value - 0.6
    clock.advance(0.4)
    assert (await cache.get("/status", produce)).body == b"answer 2", "data read 1 s ago was served again"


async def test_a_burst_shares_one_computation_and_other_keys_are_their_own() -> None:
    clock, produce = FakeClock(), Producer()
    cache = ResponseCache(1.0, clock=clock)
    produce.gate.clear()
    burst = [asyncio.ensure_future(cache.get("/status", produce)) for _ in range(20)]
    other = asyncio.ensure_future(cache.get("/badge", produce))
    await asyncio.sleep(0)
    produce.gate.set()
    bodies = {answer.body for answer in await asyncio.gather(*burst)}
    assert len(bodies) == 1 and (await other).body not in bodies
    assert produce.calls == 2


async def test_a_clock_set_back_expires_the_answer_rather_than_keeping_it() -> None:
    clock, produce = FakeClock(), Producer()
    cache = ResponseCache(1.0, clock=clock)
    await cache.get("/status", produce)
    clock.advance(-3600)
    assert (await cache.get("/status", produce)).body == b"answer 2"


async def test_the_oldest_key_is_forgotten_first_beyond_max_entries() -> None:
    clock, produce = FakeClock(), Producer()
    cache = ResponseCache(60.0, max_entries=2, clock=clock)
    for key in ("a", "b", "c"):
        await cache.get(key, produce)
    assert (await cache.get("c", produce)).body == b"answer 3"
    assert (await cache.get("b", produce)).body == b"answer 2"
    assert (await cache.get("a", produce)).body == b"answer 4", "the oldest key was still kept"


async def test_a_ttl_of_zero_computes_every_time() -> None:
    produce = Producer()
    cache = ResponseCache(0, clock=FakeClock())
    assert [(await cache.get("/status", produce)).body for _ in range(3)] == [b"answer 1", b"answer 2", b"answer 3"]
