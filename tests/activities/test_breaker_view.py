"""The worker's view of the breakers: closed answers expire, and a burst of jobs shares one
answer instead of each asking."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from seedance_pipeline.activities.breaker_view import ClosedBreakerCache
from seedance_pipeline.core.breaker import Admission, BreakerState, HealthReport


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _report(i: int, ok: bool = True) -> HealthReport:
    return HealthReport(job_id=f"job-{i}", ok=ok, at=datetime.now(UTC))


def test_a_closed_answer_is_remembered_for_the_ttl_only() -> None:
    clock = FakeClock()
    cache = ClosedBreakerCache(2.0, clock)
    assert not cache.is_closed("mini")
    cache.remember("mini", BreakerState.CLOSED)
    clock.now += 1.9
    assert cache.is_closed("mini") and not cache.is_closed("fast")
    clock.now += 0.2
    assert not cache.is_closed("mini")


@pytest.mark.parametrize("state", [BreakerState.OPEN, BreakerState.HALF_OPEN])
def test_any_other_answer_forgets_the_model_at_once(state: BreakerState) -> None:
    cache = ClosedBreakerCache(60.0, FakeClock())
    cache.remember("mini", BreakerState.CLOSED)
    cache.remember("mini", state)
    assert not cache.is_closed("mini")


def test_a_zero_ttl_never_caches() -> None:
    cache = ClosedBreakerCache(0.0, FakeClock())
    cache.remember("mini", BreakerState.CLOSED)
    assert not cache.is_closed("mini")


class Asker:
    def __init__(self, *answers: BreakerState) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self) -> Admission:
        self.calls += 1
        await asyncio.sleep(0.02)
        state = self.answers.pop(0)
        return Admission(allowed=state != BreakerState.OPEN, state=state)


async def test_a_burst_of_jobs_shares_one_closed_answer() -> None:
    cache = ClosedBreakerCache(2.0)
    ask = Asker(BreakerState.CLOSED)
    answers = await asyncio.gather(*(cache.admit("mini", ask) for _ in range(20)))
    assert ask.calls == 1
    assert all(a.allowed for a in answers)
    assert sum(not a.cached for a in answers) == 1  # the one that asked
    assert (await cache.admit("mini", ask)).cached  # and later ones within the TTL


async def test_jobs_waiting_on_a_non_closed_answer_ask_for_themselves() -> None:
    """Half-open probes are handed out one by one by the breaker, never shared."""
    cache = ClosedBreakerCache(2.0)
    ask = Asker(BreakerState.HALF_OPEN, BreakerState.OPEN, BreakerState.OPEN)
    answers = await asyncio.gather(*(cache.admit("mini", ask) for _ in range(3)))
    assert ask.calls == 3
    assert [a.state for a in answers].count(BreakerState.HALF_OPEN) == 1
    assert not any(a.cached for a in answers)


async def test_a_failed_ask_leaves_nothing_cached() -> None:
    cache = ClosedBreakerCache(2.0)

    async def broken() -> Admission:
        raise RuntimeError("no server")

    with pytest.raises(RuntimeError):
        await cache.admit("mini", broken)
    assert not cache.is_closed("mini")
