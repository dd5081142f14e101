"""The emulator clock: wall time plus an offset that tests can push forward.

Every time-dependent rule (task timing, ``execution_expires_after``, signed URL
expiry, the 7-day query window) reads this clock, so a test can jump a day
ahead with ``POST /_emulator/clock`` instead of waiting.
"""

from __future__ import annotations

import time


class EmulatorClock:
    """Monotonically advancing time in Unix seconds (float)."""

    def __init__(self) -> None:
        self._offset = 0.0

    @property
    def offset(self) -> float:
        """Seconds added to wall time so far."""
        return self._offset

    def now(self) -> float:
        """Current emulator time (Unix seconds)."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward; returns the new time. Negative values are refused."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds
        return self.now()

    def reset(self) -> None:
        """Back to wall time (used by ``POST /_emulator/reset``)."""
        self._offset = 0.0
