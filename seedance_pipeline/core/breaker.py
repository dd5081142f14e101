"""The circuit breaker's rules, pure: one `Breaker` per model, fed with outcomes, asked for
admission. `ModelHealthWorkflow` holds one and makes it durable and shared by every worker.

closed --(failure rate over the window >= threshold with enough samples, or N consecutive
infrastructure failures)--> open --(cool-down)--> half_open --(K probe successes)--> closed
half_open --(a probe failure)--> open. Only infrastructure failures count: moderation, input
and quota outcomes are never reported as failures.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerConfig(BaseModel):
    window: int = Field(default=20, ge=1)
    min_samples: int = Field(default=5, ge=1)
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    consecutive_failures: int = Field(default=5, ge=1)
    cooldown_seconds: float = Field(default=60.0, gt=0)
    probe_successes: int = Field(default=2, ge=1)


class HealthReport(BaseModel):
    """One provider outcome of one job on this model."""

    job_id: str
    ok: bool
    probe: bool = False
    error_code: str | None = None
    at: datetime


class Admission(BaseModel):
    allowed: bool
    probe: bool = False
    state: BreakerState
    cached: bool = False
    """Given by the worker from a recent "closed" answer, without asking the breaker."""


class Breaker(BaseModel):
    """Serialisable breaker state (carried across continue-as-new)."""

    model: str
    config: BreakerConfig = BreakerConfig()
    state: BreakerState = BreakerState.CLOSED
    window: list[bool] = Field(default_factory=list)
    """Recent outcomes, oldest first: True = success."""
    consecutive_failures: int = 0
    changed_at: datetime | None = None
    opened_at: datetime | None = None
    probes_in_flight: int = 0
    probe_successes: int = 0
    last_error: str | None = None
    forced: bool = False

    @property
    def failures(self) -> int:
        return self.window.count(False)

    def reopen_at(self) -> datetime | None:
        if self.state != BreakerState.OPEN or self.opened_at is None or self.forced:
            return None
        return self.opened_at + timedelta(seconds=self.config.cooldown_seconds)

    def record(self, report: HealthReport) -> None:
        if report.ok:
            self.consecutive_failures = 0
        else:
            self.consecutive_failures += 1
            self.last_error = report.error_code
        self.window = [*self.window, report.ok][-self.config.window :]
        if self.state == BreakerState.HALF_OPEN and report.probe:
            self.probes_in_flight = max(0, self.probes_in_flight - 1)
            if not report.ok:
                self._move(BreakerState.OPEN, report.at)
                return
            self.probe_successes += 1
            if self.probe_successes >= self.config.probe_successes:
                self._move(BreakerState.CLOSED, report.at)
            return
        if self.state == BreakerState.CLOSED and self._tripped():
            self._move(BreakerState.OPEN, report.at)

    def _tripped(self) -> bool:
        cfg = self.config
        if self.consecutive_failures >= cfg.consecutive_failures:
            return True
        samples = len(self.window)
        return samples >= cfg.min_samples and self.failures / samples >= cfg.failure_rate

    def cool_down(self, now: datetime) -> None:
        """Open -> half-open once the cool-down has passed (called on the workflow's timer)."""
        reopen = self.reopen_at()
        if reopen is not None and now >= reopen:
            self._move(BreakerState.HALF_OPEN, now)

    def admit(self, now: datetime) -> Admission:
        """Whether a new job may use this model now; half-open admits a few probes."""
        self.cool_down(now)
        if self.state == BreakerState.CLOSED:
            return Admission(allowed=True, state=self.state)
        if self.state == BreakerState.HALF_OPEN:
            stale = self.changed_at is not None and now - self.changed_at > timedelta(
                seconds=self.config.cooldown_seconds
            )
            if stale:  # probes that never reported (a job died): let new ones through
                self.probes_in_flight, self.changed_at = 0, now
            if self.probes_in_flight < self.config.probe_successes:
                self.probes_in_flight += 1
                return Admission(allowed=True, probe=True, state=self.state)
        return Admission(allowed=False, state=self.state)

    def force(self, state: BreakerState, now: datetime) -> None:
        """Operator override: `open` stays open until reset; `closed` starts afresh."""
        self._move(state, now)
        self.forced = state == BreakerState.OPEN

    def _move(self, state: BreakerState, now: datetime) -> None:
        self.state = state
        self.changed_at = now
        self.forced = False
        if state == BreakerState.OPEN:
            self.opened_at = now
        if state != BreakerState.HALF_OPEN:
            self.probes_in_flight = 0
        self.probe_successes = 0
        if state == BreakerState.CLOSED:
            self.window, self.consecutive_failures = [], 0
