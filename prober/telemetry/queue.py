"""A bounded queue of finished runs drained by one thread that turns them into spans and exports them in batches.

`put` is what the event loop calls for every run: it appends under a lock held for microseconds and never
waits; building the spans and encoding them happen in the thread. When the queue is full the run's spans
are dropped and counted; when an export fails (the collector
is down, after the exporter's own retries) the batch is dropped and counted. The thread, not the loop,
waits for the network. It never retries on its own (the OTLP exporter does, within its timeout) and never
holds more than `max_queue` spans, so a collector that is down for an hour costs bounded memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["SpanQueue"]

log = logging.getLogger("prober.telemetry")


class SpanQueue:
    def __init__(
        self,
        export: Callable[[Sequence[Any]], bool],
        *,
        max_queue: int,
        batch_size: int,
        schedule_delay: float,
        on_drop: Callable[[int], None],
    ) -> None:
        self._export = export
        self._max = max_queue
        self._batch = batch_size
        self._delay = schedule_delay
        self._on_drop = on_drop
        self._items: deque[tuple[Any, int]] = deque()
        self._spans = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._failing_since: float | None = None
        self.exported = 0
        self._thread = threading.Thread(target=self._work, name="prober-otel-spans", daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        """Spans waiting."""
        return self._spans

    def put(self, item: Any, spans: int) -> None:
        """Queue one run (`spans`: how many spans it makes), whole or not at all (a run's tree is never cut)."""
        full = False
        with self._lock:
            if self._stopping or self._spans + spans > self._max:
                dropped = spans
            else:
                self._items.append((item, spans))
                self._spans += spans
                dropped = 0
                full = self._spans >= self._batch
        if dropped:
            self._on_drop(dropped)
        elif full:
            self._wake.set()

    def _take(self) -> tuple[list[Any], int]:
        """Runs making up to one batch of spans (at least one run)."""
        taken: list[Any] = []
        spans = 0
        with self._lock:
            while self._items and (not taken or spans + self._items[0][1] <= self._batch):
                item, count = self._items.popleft()
                taken.append(item)
                spans += count
            self._spans -= spans
        return taken, spans

    def _send(self, batch: tuple[list[Any], int]) -> None:
        items, spans = batch
        try:
            ok = self._export(items)
        except Exception:
            log.debug("exporting spans raised", exc_info=True)
            ok = False
        if ok:
            self.exported += spans
            if self._failing_since is not None:
                log.info("spans reach the OpenTelemetry collector again")
                self._failing_since = None
            return
        self._on_drop(spans)
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
            log.warning(
                "could not export spans to the OpenTelemetry collector; they are dropped and counted in "
                "prober_otel_dropped_total until it answers again",
                extra={"fields": {"spans": spans}},
            )

    def _work(self) -> None:
        while not self._stopping:
            self._wake.wait(self._delay)
            self._wake.clear()
            while self._items and not self._stopping:
                self._send(self._take())
                if self._spans < self._batch:
                    break

    def flush(self) -> None:
        """Export what is queued now, in the caller's thread (tests and shutdown)."""
        while self._items:
            self._send(self._take())

    def shutdown(self, timeout: float) -> None:
        """Stop the thread, then export what is left (within `timeout` seconds for the thread to finish)."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.flush()
