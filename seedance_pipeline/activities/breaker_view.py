"""A worker's short-lived view of the breakers.

Asking `ModelHealthWorkflow` for every job (an update) and telling it every outcome (a signal)
made the breaker entity the hottest workflow on the server: two workflow tasks per job, all
serialised on one workflow, and at a few hundred jobs a minute the jobs queued behind it for
admission. A healthy breaker's answer is always "closed, go", so a worker may remember it for a
moment; only open and half-open breakers (rare, and where probes must be counted centrally)
are asked every time. Reports go out by group commit (`group_commit`), as one update whose
answer is the breaker after them: the worker that reported the failure that opened it knows at
once, other workers within `admission_cache_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from seedance_pipeline.core.breaker import Admission, BreakerState


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
