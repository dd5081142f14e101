"""The `costs` report: what the ledger says we spent, grouped by day, model, route or outcome.

Aggregated here rather than in SQL so both backends give the same figures from the same
code. Money is never added across currencies: every line and total is per currency. Only
billed attempts count towards seconds, tokens and cost (the provider bills succeeded tasks
only); `jobs` and `attempts` count everything, so failures still show up in the volume.
Dates are UTC days on `finished_at`, the moment the provider's bill is decided. `--by run`
lists each run of each job apart (a rerun adds rows; the first run's stay). Billed tasks that no
create could claim (`unattributed`) are a line of their own and count in the totals: the
provider billed them, so the money is ours to see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

from seedance_pipeline.core.models import LedgerEntry, UnattributedTask

GroupBy = Literal["day", "model", "route", "outcome", "run"]
UNATTRIBUTED = "unattributed"


def parse_day(value: str) -> date:
    """A `YYYY-MM-DD` CLI date; the error names the value."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD): {value!r}") from None


def day_window(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    """[since 00:00 UTC, the day after `until` 00:00 UTC): both days are included."""
    start = datetime.combine(since, time(), UTC) if since else None
    end = datetime.combine(until + timedelta(days=1), time(), UTC) if until else None
    if start and end and end <= start:
        raise ValueError(f"--until {until} is before --since {since}")
    return start, end


@dataclass
class CostLine:
    """One group in one currency."""

    group: str
    currency: str
    jobs: int = 0
    attempts: int = 0
    billed_attempts: int = 0
    video_seconds: int = 0
    tokens: int = 0
    estimated_tokens: int = 0
    cost: float = 0.0
    cost_per_second: float | None = None
    _jobs: set[str] = field(default_factory=set, repr=False)
    _cost: Decimal = field(default=Decimal(0), repr=False)

    def add(self, entry: LedgerEntry) -> None:
        self._jobs.add(entry.job_id)
        self.jobs = len(self._jobs)
        self.attempts += 1
        if entry.billed:
            self.billed_attempts += 1
            self.video_seconds += max(0, entry.duration or 0)
            self.tokens += entry.tokens
            self.estimated_tokens += entry.estimated_tokens or 0
            # Decimal: a month of micro-amounts must not drift by float accumulation.
            self._cost += Decimal(str(entry.cost))
        self.cost = float(self._cost.quantize(Decimal("0.000001")))
        self.cost_per_second = (
            float((self._cost / self.video_seconds).quantize(Decimal("0.000001")))
            if self.video_seconds
            else None
        )

    def add_unattributed(self, task: UnattributedTask) -> None:
        """A billed task nobody could claim: billed money, no job."""
        self.attempts += 1
        self.billed_attempts += 1
        self.tokens += task.tokens
        self._cost += Decimal(str(task.cost))
        self.cost = float(self._cost.quantize(Decimal("0.000001")))

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


@dataclass(frozen=True)
class CostReport:
    by: GroupBy
    since: date | None
    until: date | None
    lines: list[CostLine]
    totals: list[CostLine]

    def as_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "lines": [line.as_dict() for line in self.lines],
            "totals": [line.as_dict() for line in self.totals],
        }


def group_key(entry: LedgerEntry, by: GroupBy) -> str:
    if by == "day":
        return entry.finished_at.astimezone(UTC).date().isoformat()
    if by == "model":
        return entry.model_id
    if by == "route":
        return entry.route
    if by == "run":
        return f"{entry.job_id} {entry.run or '(before runs)'}"
    return entry.outcome


def cost_report(
    entries: Iterable[LedgerEntry],
    by: GroupBy = "day",
    since: date | None = None,
    until: date | None = None,
    unattributed: Iterable[UnattributedTask] = (),
) -> CostReport:
    """Group rows (already filtered to the window) into lines and per-currency totals."""
    lines: dict[tuple[str, str], CostLine] = {}
    totals: dict[str, CostLine] = {}
    for entry in entries:
        key = (group_key(entry, by), entry.currency)
        lines.setdefault(key, CostLine(*key)).add(entry)
        totals.setdefault(entry.currency, CostLine("total", entry.currency)).add(entry)
    for task in unattributed:
        key = (UNATTRIBUTED, task.currency)
        lines.setdefault(key, CostLine(*key)).add_unattributed(task)
        totals.setdefault(task.currency, CostLine("total", task.currency)).add_unattributed(task)
    return CostReport(
        by=by,
        since=since,
        until=until,
        lines=[lines[k] for k in sorted(lines)],
        totals=[totals[c] for c in sorted(totals)],
    )
