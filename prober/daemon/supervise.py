"""Supervised background work: a long-lived task that raises is logged once and restarted with backoff.

    supervisor = Supervisor()
    supervisor.spawn("tick", daemon.tick)        # restarted after 1 s, 2 s, 4 s … (at most 60 s) on errors
    supervisor.restarts                          # {"tick": 1}: exported as prober_task_restarts_total{task}

A task that returns normally is finished; cancelling it (at shutdown) stops it for good. The backoff starts
over once a task has run for a minute without failing. It must never swallow CancelledError and never
restart a task faster than `base_delay`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

__all__ = ["Supervisor"]

log = logging.getLogger("prober.supervise")


class Supervisor:
    def __init__(self, *, base_delay: float = 1.0, max_delay: float = 60.0, healthy_after: float = 60.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.healthy_after = healthy_after
        self.restarts: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, name: str, factory: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """Start `factory()` as a supervised task in the running loop."""
        self.restarts.setdefault(name, 0)
        task = asyncio.get_running_loop().create_task(self.run(name, factory), name=f"prober-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def delay(self, failures: int) -> float:
        return float(min(self.max_delay, self.base_delay * 2 ** min(failures - 1, 30)))

    async def run(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        """Run `factory()` until it returns, restarting it after every unexpected exception."""
        self.restarts.setdefault(name, 0)
        failures = 0
        while True:
            began = time.monotonic()
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                if time.monotonic() - began >= self.healthy_after:
                    failures = 0
                failures += 1
                self.restarts[name] += 1
                delay = self.delay(failures)
                log.exception(
                    "background task %s failed unexpectedly; restarting it in %.3g s",
                    name,
                    delay,
                    extra={"fields": {"task": name, "restarts": self.restarts[name]}},
                )
            await asyncio.sleep(delay)

    async def aclose(self) -> None:
        """Cancel every task this supervisor started and wait for them."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
