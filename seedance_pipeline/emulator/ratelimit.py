"""Requests-per-minute limiting for create calls, per model (reference section 0, C3).

A sliding 60 s window per counter (`limits.bucket`: the model, 4k apart) on the emulator
clock, shared by every key (the emulator is one account). A create over the limit is refused
before it is validated, as a gateway would, and still counts as a request.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque

WINDOW_SECONDS = 60.0


class RpmLimiter:
    """Sliding-window counters; a `None` limit lets everything through."""

    def __init__(self) -> None:
        self._hits: defaultdict[str, deque[float]] = defaultdict(deque)

    def check(self, counter: str, limit: int | None, now: float) -> int | None:
        """Record a request; return seconds until the window has room if it is over the
        limit (the request is then not recorded), else None."""
        if limit is None:
            return None
        window = self._hits[counter]
        while window and window[0] <= now - WINDOW_SECONDS:
            window.popleft()
        if len(window) >= limit:
            return max(1, math.ceil(window[0] + WINDOW_SECONDS - now))
        window.append(now)
        return None

    def clear(self) -> None:
        """Forget all windows (``POST /_emulator/reset``)."""
        self._hits.clear()
