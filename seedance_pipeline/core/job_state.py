"""Forward-only state rules, for jobs and for the provider's task status.

Callbacks are unsigned hints that arrive duplicated, late and out of order; polls race them.
Ranking both state spaces lets every handler ask one question: does this move forward?
"""

from __future__ import annotations

from seedance_pipeline.core.models import JobState

_JOB_RANK: dict[JobState, int] = {
    JobState.RECEIVED: 0,
    JobState.WAITING_FOR_CAPACITY: 1,
    JobState.SUBMITTING: 1,
    JobState.QUEUED: 2,
    JobState.RUNNING: 3,
    JobState.STORING: 4,
    JobState.SUCCEEDED: 9,
    JobState.FAILED: 9,
    JobState.REJECTED: 9,
    JobState.CANCELLED: 9,
}

TERMINAL_JOB_STATES = frozenset(s for s, rank in _JOB_RANK.items() if rank == 9)

_PROVIDER_RANK = {
    "queued": 1,
    "running": 2,
    "succeeded": 3,
    "failed": 3,
    "expired": 3,
    "cancelled": 3,
}


BEFORE_THE_PROVIDER = frozenset({JobState.WAITING_FOR_CAPACITY, JobState.SUBMITTING})
"""One rank: a create refused for the provider's limits sends the job back to wait."""


def job_moves_forward(current: JobState, new: JobState) -> bool:
    """True when `new` is later than `current` (terminal states never move); waiting for
    capacity and submitting alternate (a refused create goes back to wait)."""
    if current in TERMINAL_JOB_STATES:
        return False
    if current in BEFORE_THE_PROVIDER and new in BEFORE_THE_PROVIDER:
        return current != new
    return _JOB_RANK[new] > _JOB_RANK[current]


def provider_moves_forward(current: str | None, new: str) -> bool:
    """True when a provider status is news: later than what we know, and we are not terminal."""
    if current is None:
        return new in _PROVIDER_RANK
    if _PROVIDER_RANK.get(current, 0) >= 3:
        return False
    return _PROVIDER_RANK.get(new, 0) > _PROVIDER_RANK.get(current, 0)
