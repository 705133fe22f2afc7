"""Independent cases of one test run at once: each case finishes (and stops what it started) before the first
failure is raised, so a failing case never leaves a sibling's server or encoder running. It must never hide a
failure or let a case share state with another."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def run_cases(*cases: Awaitable[T]) -> list[T]:
    """The results of `cases`, in order, once every case has ended; a failing case's exception as it is, or a
    group of them when several failed."""
    outcomes = await asyncio.gather(*cases, return_exceptions=True)
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise BaseExceptionGroup(f"{len(failures)} of {len(outcomes)} cases failed", failures)
    return [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
