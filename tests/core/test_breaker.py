"""The breaker's rules, without a server: when it opens, cools down, probes and closes."""

from datetime import UTC, datetime, timedelta

from seedance_pipeline.core.breaker import Breaker, BreakerConfig, BreakerState, HealthReport

T0 = datetime(2026, 11, 24, tzinfo=UTC)
CFG = BreakerConfig(
    window=10,
    min_samples=4,
    failure_rate=0.5,
    consecutive_failures=3,
    cooldown_seconds=60,
    probe_successes=2,
)


def report(ok: bool, seconds: float = 0, probe: bool = False) -> HealthReport:
    return HealthReport(job_id="j", ok=ok, probe=probe, at=T0 + timedelta(seconds=seconds))


def test_opens_after_consecutive_failures() -> None:
    b = Breaker(model="mini", config=CFG)
    for _ in range(2):
        b.record(report(False))
    assert b.state == BreakerState.CLOSED
    b.record(report(False))
    assert b.state == BreakerState.OPEN and b.opened_at == T0


def test_opens_on_failure_rate_only_with_enough_samples() -> None:
    b = Breaker(model="mini", config=CFG)
    for ok in (False, True, False):
        b.record(report(ok))
    assert b.state == BreakerState.CLOSED  # 2/3 failures, but fewer than min_samples
    b.record(report(True))
    assert b.state == BreakerState.OPEN  # 2/4 = 0.5 >= threshold


def test_successes_keep_it_closed() -> None:
    b = Breaker(model="mini", config=CFG)
    for i in range(20):
        b.record(report(i % 4 != 0))  # one failure in four stays under 0.5
    assert b.state == BreakerState.CLOSED


def test_open_refuses_until_cool_down_then_admits_limited_probes() -> None:
    b = Breaker(model="mini", config=CFG)
    for _ in range(3):
        b.record(report(False))
    assert not b.admit(T0 + timedelta(seconds=59)).allowed
    first = b.admit(T0 + timedelta(seconds=61))
    second = b.admit(T0 + timedelta(seconds=61))
    third = b.admit(T0 + timedelta(seconds=61))
    assert b.state == BreakerState.HALF_OPEN
    assert (first.allowed, first.probe, second.allowed, third.allowed) == (True, True, True, False)


def test_probe_successes_close_and_a_probe_failure_reopens() -> None:
    b = Breaker(model="mini", config=CFG)
    for _ in range(3):
        b.record(report(False))
    b.admit(T0 + timedelta(seconds=61))
    b.record(report(True, 62, probe=True))
    assert b.state == BreakerState.HALF_OPEN
    b.record(report(True, 63, probe=True))
    assert b.state == BreakerState.CLOSED and b.window == []

    for _ in range(3):
        b.record(report(False, 70))
    b.admit(T0 + timedelta(seconds=131))
    b.record(report(False, 132, probe=True))
    assert b.state == BreakerState.OPEN and b.opened_at == T0 + timedelta(seconds=132)


def test_forced_open_stays_open_until_reset() -> None:
    b = Breaker(model="mini", config=CFG)
    b.force(BreakerState.OPEN, T0)
    assert not b.admit(T0 + timedelta(days=1)).allowed
    b.force(BreakerState.CLOSED, T0 + timedelta(days=1))
    assert b.admit(T0 + timedelta(days=1)).allowed
