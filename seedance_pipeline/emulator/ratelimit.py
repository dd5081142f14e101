"""Requests-per-minute limiting for create calls (off unless configured).

The real per-endpoint RPM limits are unknown (reference section 12), so the
emulator only enforces one when asked, using a sliding 60 s window per
(API key, model) on the emulator clock, and answers like the provider:
429 ``RateLimitExceeded.EndpointRPMExceeded`` with ``Retry-After``.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque

WINDOW_SECONDS = 60.0


class RpmLimiter:
    """Sliding-window counter; ``limit=None`` disables it."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._hits: defaultdict[tuple[str, str], deque[float]] = defaultdict(deque)

    def check(self, key: str, model: str, now: float) -> int | None:
        """Record a request; return seconds to wait if it is over the limit, else None."""
        if self.limit is None:
            return None
        window = self._hits[(key, model)]
        while window and window[0] <= now - WINDOW_SECONDS:
            window.popleft()
        if len(window) >= self.limit:
            return max(1, math.ceil(window[0] + WINDOW_SECONDS - now))
        window.append(now)
        return None

    def clear(self) -> None:
        """Forget all windows (``POST /_emulator/reset``)."""
        self._hits.clear()
