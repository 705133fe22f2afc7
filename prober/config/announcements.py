"""Announcements: what the operators tell the status page's audience (top-level `announcements:` in the
check files), and which of them to show at a given moment. Pure code.

An announcement is shown from its `from` (or always, without one) until its `until` (or until it is
removed from the files). A `maintenance` announcement is also listed ahead of time, for up to
UPCOMING before its `from`, as scheduled; `info` and `outage` ones appear only inside their window.
`checks` (name globs) says which checks it is about; none means the whole page.

It must never read the clock or do I/O: the moment is always passed in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence, Set
from dataclasses import dataclass
from datetime import datetime, timedelta

from prober.config.maintenance import name_matches
from prober.config.models import Announcement

__all__ = ["UPCOMING", "ShownAnnouncement", "announcement_id", "applies", "shown_announcements"]

UPCOMING = timedelta(days=7)
"""How long ahead a maintenance announcement is listed as scheduled."""


@dataclass(frozen=True, slots=True)
class ShownAnnouncement:
    id: str
    announcement: Announcement
    active: bool
    """Inside its window now (False: a maintenance announcement listed ahead of time)."""
    affected: tuple[str, ...]
    """Names of the configured checks its globs match (none when it has no globs: it is about the page)."""


def announcement_id(announcement: Announcement) -> str:
    """A stable id (12 hex digits) from the title and the start, so a page can tell announcements apart."""
    starts = announcement.starts.isoformat() if announcement.starts is not None else ""
    return hashlib.sha256(f"{announcement.title}\x00{starts}".encode()).hexdigest()[:12]


def applies(announcement: Announcement, check: str) -> bool:
    """True when the announcement is about this check (it has no globs, or one matches)."""
    return not announcement.checks or name_matches(check, announcement.checks)


def _is_active(announcement: Announcement, now: datetime) -> bool:
    if announcement.starts is not None and now < announcement.starts:
        return False
    return announcement.until is None or now < announcement.until


def _is_upcoming(announcement: Announcement, now: datetime) -> bool:
    starts = announcement.starts
    return announcement.severity == "maintenance" and starts is not None and now < starts <= now + UPCOMING


def shown_announcements(
    announcements: Iterable[Announcement],
    now: datetime,
    checks: Sequence[str] = (),
    *,
    matching: Callable[[Sequence[str]], Set[str]] | None = None,
) -> list[ShownAnnouncement]:
    """The announcements to show at `now`, active ones first (each group in definition order). `checks`
    are the configured check names; `matching` (globs → the names they match) may cache that work."""
    if now.tzinfo is None:
        raise ValueError(f"announcement times must carry a timezone (UTC), got naive {now.isoformat()}")
    active: list[ShownAnnouncement] = []
    upcoming: list[ShownAnnouncement] = []
    for announcement in announcements:
        is_active = _is_active(announcement, now)
        if not is_active and not _is_upcoming(announcement, now):
            continue
        if not announcement.checks:
            affected: tuple[str, ...] = ()
        elif matching is not None:
            matched = matching(announcement.checks)
            affected = tuple(name for name in checks if name in matched)
        else:
            affected = tuple(name for name in checks if applies(announcement, name))
        item = ShownAnnouncement(announcement_id(announcement), announcement, is_active, affected)
        (active if is_active else upcoming).append(item)
    return active + upcoming
