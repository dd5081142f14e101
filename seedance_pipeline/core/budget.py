"""Spending caps per route: the periods a cap covers and whether one more job fits.

Pure arithmetic (no I/O, no clock): the ledger activity measures the spend inside a locked
transaction and asks `decide` for the verdict, so workers racing for the last dollar of a
cap are serialised by the database while the rule itself stays testable on plain numbers.

What counts against a cap, and why:
- billed cost of ledger rows that finished inside the period (what the provider charges);
- holds: the estimate of every job that passed the check and has not recorded its cost yet.
  Without them a batch of N concurrent jobs would all see the same spend and overshoot the cap
  by N estimates. A hold is released when the job records its cost (or its end) and expires
  after `hold_minutes`, so a crashed job cannot block a cap for ever;
- the new job's own estimate.
A job is refused when that total would exceed a cap. A job whose estimate is 0 (no price
configured) adds nothing and is never refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

PeriodName = Literal["daily", "monthly"]
EPSILON = 1e-9
"""Ledger amounts are rounded to 1e-6; a float sum may miss a cap by less than this."""


class RouteBudget(BaseModel):
    """Caps for one route, in the route's currency. A missing cap means no limit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    daily: float | None = Field(default=None, ge=0)
    monthly: float | None = Field(default=None, ge=0)
    timezone: str = "UTC"
    """Where a day and a month begin (IANA name)."""
    hold_minutes: float = Field(default=240, gt=0)
    """How long an in-flight job's estimate counts when the job never records its cost."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def capped(self) -> bool:
        return self.daily is not None or self.monthly is not None


class BudgetCheckInput(BaseModel):
    """Activity input: may this job submit? `estimate` is in the route's currency."""

    job_id: str
    route: str
    currency: str
    estimate: float = Field(ge=0)
    at: datetime | None = None
    """The moment of the check (the workflow's time); the worker's clock when absent."""
    tenant: str | None = None
    """The job's API tenant: its own caps on this route apply too (`api.tenants.<t>.budgets`)."""


class BudgetRelease(BaseModel):
    """Activity input: the job is over; its hold no longer counts."""

    job_id: str


class BudgetVerdict(BaseModel):
    """The answer. `message` names the cap and the spend so far when the job is refused."""

    allowed: bool
    message: str
    route: str
    currency: str
    estimate: float
    cap: PeriodName | None = None
    """The cap that refused the job (or the tightest one that let it pass)."""
    limit: float | None = None
    spent: float = 0.0
    """Billed cost in that cap's period so far."""
    held: float = 0.0
    """Estimates of other jobs in flight."""
    held_jobs: int = 0


@dataclass(frozen=True)
class Period:
    """One cap's window, [start, end) in UTC."""

    name: PeriodName
    start: datetime
    end: datetime
    limit: float


@dataclass(frozen=True)
class Spend:
    """What the ledger holds against a route's caps at the moment of a check."""

    billed: Mapping[PeriodName, float]
    held: float = 0.0
    held_jobs: int = 0


def periods(budget: RouteBudget, at: datetime) -> list[Period]:
    """The windows of the configured caps that contain `at` (aware; naive means UTC)."""
    zone = ZoneInfo(budget.timezone)
    local = _aware(at).astimezone(zone)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    out: list[Period] = []
    if budget.daily is not None:
        out.append(Period("daily", _utc(day), _utc(_next_day(day)), budget.daily))
    if budget.monthly is not None:
        out.append(Period("monthly", _utc(month), _utc(_next_month(month)), budget.monthly))
    return out


def hold_cutoff(budget: RouteBudget, at: datetime) -> datetime:
    """Holds placed before this moment have expired."""
    return _aware(at).astimezone(UTC) - timedelta(minutes=budget.hold_minutes)


def decide(check: BudgetCheckInput, windows: Sequence[Period], spend: Spend) -> BudgetVerdict:
    """Allowed unless billed + held + this estimate would exceed one of the caps."""
    base = {"route": check.route, "currency": check.currency, "estimate": check.estimate}
    if not windows:
        return BudgetVerdict(allowed=True, message=f"no cap on route {check.route}", **base)
    owner = f"tenant {check.tenant}'s " if check.tenant else ""
    tightest: tuple[float, Period] | None = None
    for window in windows:
        spent = spend.billed.get(window.name, 0.0)
        total = spent + spend.held + check.estimate
        headroom = window.limit - total
        if check.estimate > 0 and headroom < -EPSILON:
            return BudgetVerdict(
                allowed=False,
                message=_refusal(check, window, spent, spend),
                cap=window.name,
                limit=window.limit,
                spent=round(spent, 6),
                held=round(spend.held, 6),
                held_jobs=spend.held_jobs,
                **base,
            )
        if tightest is None or headroom < tightest[0]:
            tightest = (headroom, window)
    assert tightest is not None
    headroom, window = tightest
    spent = spend.billed.get(window.name, 0.0)
    return BudgetVerdict(
        allowed=True,
        message=(
            f"{owner}{window.name} budget for route {check.route}: "
            f"{_money(headroom, check.currency)} "
            f"left of {_money(window.limit, check.currency)} after this job"
        ),
        cap=window.name,
        limit=window.limit,
        spent=round(spent, 6),
        held=round(spend.held, 6),
        held_jobs=spend.held_jobs,
        **base,
    )


def _refusal(check: BudgetCheckInput, window: Period, spent: float, spend: Spend) -> str:
    cur = check.currency
    total = spent + spend.held + check.estimate
    since = window.start.strftime("%Y-%m-%d %H:%M UTC")
    held = (
        f" + {_money(spend.held, cur)} held by {spend.held_jobs} job(s) in flight"
        if spend.held_jobs
        else ""
    )
    owner = f"tenant {check.tenant}'s " if check.tenant else ""
    return (
        f"{owner}{window.name} budget for route {check.route} is {_money(window.limit, cur)}: "
        f"{_money(spent, cur)} billed since {since}{held}; this job's estimate of "
        f"{_money(check.estimate, cur)} would bring it to {_money(total, cur)}"
    )


def _money(value: float, currency: str) -> str:
    return f"{value:,.4f} {currency}"


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _utc(local: datetime) -> datetime:
    return local.astimezone(UTC)


def _next_day(day: datetime) -> datetime:
    # A calendar day in local terms: a DST day is 23 or 25 hours long.
    return (day.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=day.tzinfo)


def _next_month(month: datetime) -> datetime:
    if month.month == 12:
        return month.replace(year=month.year + 1, month=1)
    return month.replace(month=month.month + 1)
