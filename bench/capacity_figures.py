"""The capacity benchmark's arithmetic, pure: what a burst did, read from the provider's side.

Every figure comes from a source of truth, never from the pipeline's view of itself: the
emulator's task log (which tasks it accepted, when they ran, what they billed), its capacity
block and time series (refusals, running tasks per model over time), and the jobs' final
records (how each ended, which models it tried and why). `bench/scenarios/capacity.py` turns
these into the report's figures; `tests/bench/test_capacity_figures.py` checks them on
hand-built evidence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from seedance_pipeline.core.models import JobRecord, Outcome
from seedance_pipeline.emulator.limits import QUEUE_CAP_CODE, RPM_CODE_ENDPOINT, RPM_CODE_MODEL

PROMPT_SEPARATOR = ": "
"""Burst prompts are `<job id>: <text>`, so every provider task names the job that made it."""
LIMIT_CODES = frozenset({QUEUE_CAP_CODE, RPM_CODE_ENDPOINT, RPM_CODE_MODEL})
"""The provider's 429 codes for its own limits (reference section 0, C3, C4; emulator)."""
WAIT_EXCEEDED = "CapacityWaitExceeded"
"""A job that waited for capacity past its bound (the gate's own ending for a limit)."""


def job_of_task(task: Mapping[str, Any]) -> str | None:
    """The job a provider task was created for, from its create body's prompt."""
    for item in (task.get("request") or {}).get("content") or []:
        text = str(item.get("text", "")) if item.get("type") == "text" else ""
        if PROMPT_SEPARATOR in text:
            return text.split(PROMPT_SEPARATOR, 1)[0]
    return None


def is_limit_code(code: str | None) -> bool:
    """A refusal for the provider's limits (any 429 code naming a rate or queue limit)."""
    if not code:
        return False
    return code in LIMIT_CODES or "RateLimit" in code or "QueuedTask" in code


# ---- how the jobs ended --------------------------------------------------------------------


def ended_by_limits(records: Iterable[JobRecord]) -> list[str]:
    """Jobs that did not succeed because of the provider's limits: a 429 code as their
    error, or a wait for capacity past its bound."""
    return [
        r.job_id
        for r in records
        if r.outcome != Outcome.SUCCEEDED
        and r.error is not None
        and (is_limit_code(r.error.code) or r.error.code == WAIT_EXCEEDED)
    ]


def fallbacks_by_limits(records: Iterable[JobRecord]) -> list[str]:
    """Jobs that moved to another model right after a create refused for the limits."""
    out = []
    for r in records:
        for before, after in zip(r.attempts, r.attempts[1:], strict=False):
            if before.model_alias != after.model_alias and is_limit_code(
                before.error.code if before.error else None
            ):
                out.append(r.job_id)
                break
    return out


def delivered_on_other_models(records: Iterable[JobRecord], alias: str) -> int:
    return sum(
        1 for r in records if r.outcome == Outcome.SUCCEEDED and r.model_alias not in (alias, None)
    )


@dataclass(frozen=True)
class BreakerOpening:
    model_alias: str
    opened_at: str
    last_error: str | None


def openings_by_limits(openings: Iterable[BreakerOpening]) -> list[BreakerOpening]:
    """Breaker openings whose last counted failure was a refusal for the limits."""
    return [o for o in openings if is_limit_code(o.last_error)]


# ---- what the provider saw -----------------------------------------------------------------


def refusals(capacity: Mapping[str, Any]) -> int:
    """429s the provider answered to creates for its limits (the emulator's capacity block)."""
    return sum(int(v) for k, v in (capacity.get("rate_limited") or {}).items() if is_limit_code(k))


def refused_share(refused: int, creates: int) -> float:
    """Refused creates as a share of every create sent (accepted or refused)."""
    return refused / creates if creates else math.nan


def cost_per_delivered(
    tasks: Iterable[Mapping[str, Any]], price_of: Mapping[str, float], delivered: int
) -> float:
    """Everything the provider billed (every task, whatever became of its job), priced at
    each model's rate per 1M tokens, divided by the videos delivered."""
    billed = sum(
        int(t.get("billed_tokens") or 0) * price_of.get(str(t.get("model")), math.nan) / 1e6
        for t in tasks
        if int(t.get("billed_tokens") or 0) > 0
    )
    return billed / delivered if delivered else math.nan


def mean_running(
    series: Sequence[Mapping[str, Any]], model: str, start: float, end: float
) -> float:
    """Time-weighted mean of the model's running tasks over [start, end] (a step function:
    each sample holds until the next one of the same model)."""
    if end <= start:
        return math.nan
    points = [(float(s["t"]), int(s["running"])) for s in series if s["model"] == model]
    level = 0
    area = 0.0
    at = start
    for t, running in points:
        if t > end:
            break
        if t > at:
            area += level * (t - at)
            at = t
        level = running
    area += level * (end - at)
    return area / (end - start)


@dataclass(frozen=True)
class BusyWindow:
    """While the provider had work it could run: from the first task's start to the moment
    the last task started (after it, no task was waiting anywhere: the tail drains)."""

    first_start: float
    last_start: float
    last_finish: float

    @property
    def seconds(self) -> float:
        return self.last_start - self.first_start


def busy_window(tasks: Iterable[Mapping[str, Any]], model: str) -> BusyWindow | None:
    mine = [t for t in tasks if t.get("model") == model and t.get("started_at")]
    if not mine:
        return None
    starts = [float(t["started_at"]) for t in mine]
    ends = [float(t.get("finished_at") or t["started_at"]) for t in mine]
    return BusyWindow(first_start=min(starts), last_start=max(starts), last_finish=max(ends))


def ideal_makespan(jobs: int, slot_seconds: float, concurrency: int, queue_seconds: float) -> float:
    """The shortest possible burst: every running slot busy from the first task's queue time
    on, each task holding a slot for `slot_seconds` (N x run time / concurrency, plus the
    provider's own queue time of the first tasks)."""
    return queue_seconds + jobs * slot_seconds / concurrency


def finish_spread(finishes: Mapping[str, float], started: float) -> float:
    """How far apart the batches finished: (latest - earliest) / earliest, from `started`."""
    times = [t - started for t in finishes.values()]
    if len(times) < 2 or min(times) <= 0:
        return math.nan
    return (max(times) - min(times)) / min(times)


def first_create(tasks: Iterable[Mapping[str, Any]], job_id: str) -> float | None:
    """When the provider accepted the job's first create (its first task's creation time)."""
    times = [float(t["created_at"]) for t in tasks if job_of_task(t) == job_id]
    return min(times) if times else None


def creates_per_minute(samples: Sequence[tuple[float, int]], start: float, end: float) -> float:
    """Accepted creates per minute over [start, end] from (time, tasks created so far)."""
    inside = [(t, n) for t, n in samples if start <= t <= end]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return math.nan
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]) * 60


def first_refusal_at(samples: Sequence[tuple[float, int]]) -> float | None:
    """The time of the first sample with a refusal counted (from (time, refusals so far))."""
    return next((t for t, n in samples if n > 0), None)


def refusals_between(samples: Sequence[tuple[float, int]], start: float, end: float) -> int:
    inside = [n for t, n in samples if start <= t <= end]
    before = [n for t, n in samples if t < start]
    return (inside[-1] if inside else 0) - (before[-1] if before else 0)
