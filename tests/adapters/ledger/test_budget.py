"""Budgets: the pure arithmetic, then the activity refusing jobs on both ledger backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from seedance_pipeline.activities.ledger import LedgerActivities
from seedance_pipeline.adapters.ledger import open_ledger
from seedance_pipeline.adapters.ledger_schema import Ledger
from seedance_pipeline.core.budget import (
    BudgetCheckInput,
    BudgetRelease,
    Period,
    RouteBudget,
    Spend,
    decide,
    hold_cutoff,
    periods,
)
from tests.adapters.ledger.support import entry

NOW = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
DAY = datetime(2026, 11, 24, tzinfo=UTC)


def check(job: str = "new-job", estimate: float = 0.378, at: datetime = NOW) -> BudgetCheckInput:
    return BudgetCheckInput(job_id=job, route="byteplus", currency="USD", estimate=estimate, at=at)


class TestArithmetic:
    def test_periods_are_the_utc_day_and_month_around_the_check(self) -> None:
        got = periods(RouteBudget(daily=50, monthly=1000), NOW)
        assert got == [
            Period("daily", DAY, DAY + timedelta(days=1), 50),
            Period(
                "monthly",
                datetime(2026, 11, 1, tzinfo=UTC),
                datetime(2026, 12, 1, tzinfo=UTC),
                1000,
            ),
        ]

    def test_a_zone_moves_the_boundaries(self) -> None:
        """17:00 UTC on 30 November is already 1 December in Beijing."""
        at = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
        daily, monthly = periods(RouteBudget(daily=1, monthly=1, timezone="Asia/Shanghai"), at)
        assert daily.start == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
        assert monthly.start == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
        assert monthly.end == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)

    def test_december_rolls_into_the_next_year(self) -> None:
        (monthly,) = periods(RouteBudget(monthly=1), datetime(2026, 12, 31, 23, tzinfo=UTC))
        assert monthly.end == datetime(2027, 1, 1, tzinfo=UTC)

    def test_unknown_zone_is_a_config_error(self) -> None:
        with pytest.raises(ValidationError, match="unknown time zone"):
            RouteBudget(daily=1, timezone="Mars/Olympus")

    def test_fits_exactly_at_the_cap(self) -> None:
        windows = periods(RouteBudget(daily=1.0), NOW)
        verdict = decide(
            check(estimate=0.25), windows, Spend({"daily": 0.5}, held=0.25, held_jobs=1)
        )
        assert verdict.allowed
        assert "0.0000 USD left of 1.0000 USD" in verdict.message

    def test_refusal_names_the_cap_and_the_spend_so_far(self) -> None:
        windows = periods(RouteBudget(daily=1.0, monthly=100.0), NOW)
        verdict = decide(check(), windows, Spend({"daily": 0.5, "monthly": 40.0}, 0.3, 2))
        assert not verdict.allowed
        assert (verdict.cap, verdict.limit, verdict.spent, verdict.held) == ("daily", 1.0, 0.5, 0.3)
        assert verdict.message == (
            "daily budget for route byteplus is 1.0000 USD: 0.5000 USD billed since "
            "2026-11-24 00:00 UTC + 0.3000 USD held by 2 job(s) in flight; this job's "
            "estimate of 0.3780 USD would bring it to 1.1780 USD"
        )

    def test_the_monthly_cap_refuses_when_the_day_is_fine(self) -> None:
        windows = periods(RouteBudget(daily=10.0, monthly=100.0), NOW)
        verdict = decide(check(estimate=1.0), windows, Spend({"daily": 0.0, "monthly": 99.5}))
        assert (verdict.allowed, verdict.cap) == (False, "monthly")
        assert "monthly budget for route byteplus is 100.0000 USD" in verdict.message

    def test_a_free_job_is_never_refused(self) -> None:
        windows = periods(RouteBudget(daily=0.0), NOW)
        assert decide(check(estimate=0.0), windows, Spend({"daily": 5.0})).allowed
        assert not decide(check(estimate=0.01), windows, Spend({"daily": 0.0})).allowed

    def test_holds_expire(self) -> None:
        assert hold_cutoff(RouteBudget(daily=1, hold_minutes=90), NOW) == NOW - timedelta(
            minutes=90
        )


@pytest.fixture
def acts(ledger: Ledger) -> LedgerActivities:
    return LedgerActivities(ledger, {"byteplus": RouteBudget(daily=1.0, monthly=2.0)})


class TestActivity:
    async def test_no_cap_no_refusal(self, ledger: Ledger) -> None:
        acts = LedgerActivities(ledger, {"volcengine": RouteBudget(daily=0.0)})
        verdict = await acts.check_budget(check(estimate=1e6))
        assert verdict.allowed and verdict.message == "no cap on route byteplus"

    async def test_billed_spend_today_refuses_the_job(
        self, ledger: Ledger, acts: LedgerActivities
    ) -> None:
        yesterday = DAY - timedelta(hours=1)
        ledger.upsert(entry("old", finished_at=yesterday, cost=0.9))  # another day
        ledger.upsert(entry("a", finished_at=DAY + timedelta(hours=1), cost=0.4))
        ledger.upsert(entry("b", finished_at=DAY + timedelta(hours=2), cost=0.3))
        ledger.upsert(
            entry("free", finished_at=DAY + timedelta(hours=3), cost=0.0, billed=False, tokens=0)
        )
        ledger.upsert(entry("cny", finished_at=DAY + timedelta(hours=3), cost=9.0, currency="CNY"))
        assert (await acts.check_budget(check(estimate=0.3))).allowed
        await acts.release_budget(BudgetRelease(job_id="new-job"))
        verdict = await acts.check_budget(check(estimate=0.31))
        assert not verdict.allowed
        assert verdict.spent == pytest.approx(0.7)
        assert "0.7000 USD billed since 2026-11-24 00:00 UTC" in verdict.message

    async def test_jobs_in_flight_hold_their_estimate(
        self, ledger: Ledger, acts: LedgerActivities
    ) -> None:
        for job in ("j1", "j2", "j3"):
            assert (await acts.check_budget(check(job, estimate=0.3))).allowed
        refused = await acts.check_budget(check("j4", estimate=0.3))
        assert not refused.allowed
        assert refused.held_jobs == 3 and refused.held == pytest.approx(0.9)
        # j1 ends without a bill (e.g. refused by the provider): its hold goes.
        await acts.release_budget(BudgetRelease(job_id="j1"))
        assert (await acts.check_budget(check("j4", estimate=0.3))).allowed

    async def test_recording_the_cost_replaces_the_hold(
        self, ledger: Ledger, acts: LedgerActivities
    ) -> None:
        assert (await acts.check_budget(check("j1", estimate=0.5))).allowed
        await acts.record_cost(entry("j1", finished_at=NOW, cost=0.2))
        verdict = await acts.check_budget(check("j2", estimate=0.8))
        assert verdict.allowed, verdict.message  # 0.2 billed, nothing held: 1.0 fits
        assert (verdict.spent, verdict.held, verdict.held_jobs) == (0.2, 0.0, 0)

    async def test_rechecking_a_job_replaces_its_own_hold(self, acts: LedgerActivities) -> None:
        """A retried activity, or a fallback to a dearer model, must not count the job twice."""
        for estimate in (0.6, 0.6, 0.9):
            assert (await acts.check_budget(check("j1", estimate=estimate))).allowed
        refused = await acts.check_budget(check("j2", estimate=0.2))
        assert (refused.allowed, refused.held, refused.held_jobs) == (False, 0.9, 1)

    async def test_stale_holds_stop_counting(self, acts: LedgerActivities) -> None:
        assert (await acts.check_budget(check("crashed", estimate=1.0))).allowed
        assert not (await acts.check_budget(check("j2", estimate=0.5))).allowed
        later = NOW + timedelta(minutes=241)  # past the default hold_minutes, same day
        assert (await acts.check_budget(check("j2", estimate=0.5, at=later))).allowed

    async def test_racing_workers_never_overshoot_the_cap(self, ledger_url: str) -> None:
        """Eight jobs, two workers with their own connections, room for three."""
        budgets = {"byteplus": RouteBudget(daily=1.0)}
        stores = [open_ledger(ledger_url), open_ledger(ledger_url)]
        try:
            workers = [LedgerActivities(s, budgets) for s in stores]
            verdicts = await asyncio.gather(
                *(workers[i % 2].check_budget(check(f"j{i}", estimate=0.3)) for i in range(8))
            )
        finally:
            for s in stores:
                s.close()
        assert sum(v.allowed for v in verdicts) == 3
        assert all("held by" in v.message for v in verdicts if not v.allowed)
