"""A worker's short-lived view of the breakers, and group commit of health reports.

Asking `ModelHealthWorkflow` for every job (an update) and telling it every outcome (a signal)
made the breaker entity the hottest workflow on the server: two workflow tasks per job, all
serialised on one workflow, and at a few hundred jobs a minute the jobs queued behind it for
admission. A healthy breaker's answer is always "closed, go", so a worker may remember it for a
moment; only open and half-open breakers (rare, and where probes must be counted centrally)
are asked every time. Reports are gathered for a few milliseconds and sent as one update, whose
answer is the breaker after them: the worker that reported the failure that opened it knows at
once, other workers within `admission_cache_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from seedance_pipeline.core.breaker import Admission, Breaker, BreakerState, HealthReport

SendReports = Callable[[str, list[HealthReport]], Awaitable[Breaker]]
"""Deliver reports for one model alias; returns the breaker after applying them."""


class ClosedBreakerCache:
    """Which models' breakers were seen closed within the last `ttl` seconds (per worker)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._closed_at: dict[str, float] = {}
        self._asking: dict[str, asyncio.Future[Admission]] = {}

    async def admit(self, alias: str, ask: Callable[[], Awaitable[Admission]]) -> Admission:
        """Admission for one job: from the cache, from the answer another job on this worker is
        already waiting for (when that answer is "closed"), or by asking (`ask`). Without the
        second case a burst of new jobs would all ask before the first answer came back."""
        if self.is_closed(alias):
            return Admission(allowed=True, state=BreakerState.CLOSED, cached=True)
        shared = self._asking.get(alias)
        if shared is not None and self._ttl > 0:
            with contextlib.suppress(Exception):
                answer = await asyncio.shield(shared)
                if answer.state == BreakerState.CLOSED:
                    return Admission(allowed=True, state=BreakerState.CLOSED, cached=True)
        mine = asyncio.get_running_loop().create_future()
        mine.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._asking.setdefault(alias, mine)
        try:
            admission = await ask()
        except asyncio.CancelledError:
            mine.cancel()
            raise
        except Exception as err:  # the jobs sharing this answer ask for themselves
            mine.set_exception(err)
            raise
        finally:
            if self._asking.get(alias) is mine:
                del self._asking[alias]
        self.remember(alias, admission.state)
        mine.set_result(admission)
        return admission

    def is_closed(self, alias: str) -> bool:
        seen = self._closed_at.get(alias)
        return seen is not None and self._clock() - seen < self._ttl

    def remember(self, alias: str, state: BreakerState) -> None:
        """Record a state the entity just returned; anything but closed forgets the model."""
        if state == BreakerState.CLOSED and self._ttl > 0:
            self._closed_at[alias] = self._clock()
        else:
            self._closed_at.pop(alias, None)


@dataclass
class _Pending:
    done: asyncio.Future[Breaker]
    reports: list[HealthReport] = field(default_factory=list)
    full: asyncio.Event = field(default_factory=asyncio.Event)


class ReportBatcher:
    """Group commit: reports for a model that arrive within `linger` seconds (or until
    `max_batch`) go out in one call; each caller waits for the call that carried its report,
    so an activity that returns has delivered its report (or raises, and Temporal retries it)."""

    def __init__(self, send: SendReports, *, linger: float, max_batch: int) -> None:
        self._send = send
        self._linger = linger
        self._max_batch = max_batch
        self._pending: dict[str, _Pending] = {}
        self._flushers: set[asyncio.Task[None]] = set()

    async def report(self, alias: str, report: HealthReport) -> Breaker:
        pending = self._pending.get(alias)
        if pending is None:
            pending = _Pending(done=asyncio.get_running_loop().create_future())
            # Waiters may all be cancelled before the send ends: mark its error as seen.
            pending.done.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._pending[alias] = pending
            flusher = asyncio.create_task(self._flush_later(alias, pending))
            self._flushers.add(flusher)
            flusher.add_done_callback(self._flushers.discard)
        pending.reports.append(report)
        if len(pending.reports) >= self._max_batch:
            pending.full.set()
        return await asyncio.shield(pending.done)

    async def _flush_later(self, alias: str, pending: _Pending) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pending.full.wait(), self._linger)
        if self._pending.get(alias) is pending:  # later reports start the next batch
            del self._pending[alias]
        try:
            breaker = await self._send(alias, list(pending.reports))
        except asyncio.CancelledError:  # the worker is shutting down
            pending.done.cancel()
            raise
        except Exception as err:  # every waiter sees the failure; Temporal retries them
            pending.done.set_exception(err)
        else:
            pending.done.set_result(breaker)
