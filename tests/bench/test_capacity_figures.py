"""The capacity benchmark's arithmetic on hand-built evidence: what counts as an ending, a
fallback or a breaker opening caused by the provider's limits, and how utilisation, cost,
makespan, batch spread and the learned rate are read from the provider's side."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bench import capacity_figures as cf
from seedance_pipeline.core.models import Attempt, ErrorInfo, JobRecord, Outcome

QUEUE = "RateLimitExceeded.QueuedTaskLimitExceeded"
MINI = "dreamina-seedance-2-0-mini-260615"
FAST = "dreamina-seedance-2-0-fast-260128"


def attempt(alias: str, code: str | None = None) -> Attempt:
    error = ErrorInfo(code=code, message="x") if code else None
    return Attempt(submit_no=1, model_alias=alias, model_id=alias, route="byteplus", error=error)


def record(job: str, outcome: Outcome, *attempts: Attempt, code: str | None = None) -> JobRecord:
    return JobRecord(
        job_id=job,
        request=None,
        outcome=outcome,
        model_alias=attempts[-1].model_alias if attempts else None,
        attempts=list(attempts),
        error=ErrorInfo(code=code, message="x") if code else None,
    )


def task(job: str, model: str = MINI, **times: float) -> dict[str, Any]:
    return {
        "model": model,
        "request": {"content": [{"type": "text", "text": f"{job}: a red fox"}]},
        **times,
    }


def test_jobs_ended_by_limits_are_429_codes_or_a_wait_past_its_bound() -> None:
    records = [
        record("ok", Outcome.SUCCEEDED, attempt("mini")),
        record("q", Outcome.FAILED_INFRA, attempt("pro", QUEUE), code=QUEUE),
        record("w", Outcome.FAILED_QUOTA, code="CapacityWaitExceeded"),
        record("mod", Outcome.REJECTED_MODERATION, code="OutputVideoSensitiveContentDetected"),
        record("5xx", Outcome.FAILED_INFRA, code="InternalServiceError"),
    ]
    assert cf.ended_by_limits(records) == ["q", "w"]


def test_a_fallback_counts_when_the_model_changed_right_after_a_refused_create() -> None:
    by_429 = record(
        "a", Outcome.SUCCEEDED, attempt("mini", QUEUE), attempt("mini", QUEUE), attempt("fast")
    )
    by_5xx = record("b", Outcome.SUCCEEDED, attempt("mini", "InternalError"), attempt("fast"))
    retried = record("c", Outcome.SUCCEEDED, attempt("mini", QUEUE), attempt("mini"))
    assert cf.fallbacks_by_limits([by_429, by_5xx, retried]) == ["a"]
    assert cf.delivered_on_other_models([by_429, by_5xx, retried], "mini") == 2


def test_breaker_openings_are_attributed_by_their_last_error() -> None:
    openings = [
        cf.BreakerOpening("mini", "t1", QUEUE),
        cf.BreakerOpening("fast", "t2", "ModelAccountRpmRateLimitExceeded"),
        cf.BreakerOpening("pro", "t3", "InternalServiceError"),
    ]
    assert [o.model_alias for o in cf.openings_by_limits(openings)] == ["mini", "fast"]


def test_refusals_count_only_limit_codes() -> None:
    capacity = {"rate_limited": {QUEUE: 7, "ModelAccountRpmRateLimitExceeded": 2, "Other": 1}}
    assert cf.refusals(capacity) == 9
    assert cf.refused_share(9, 90) == pytest.approx(0.1)
    assert math.isnan(cf.refused_share(0, 0))


def test_cost_per_delivered_video_prices_every_billed_task() -> None:
    tasks = [
        {"model": MINI, "billed_tokens": 1_000_000},
        {"model": FAST, "billed_tokens": 1_000_000},
        {"model": MINI, "billed_tokens": 0},  # failed: not billed
    ]
    prices = {MINI: 3.5, FAST: 5.6}
    # two videos delivered: (3.5 + 5.6) / 2
    assert cf.cost_per_delivered(tasks, prices, 2) == pytest.approx(4.55)
    assert math.isnan(cf.cost_per_delivered(tasks, prices, 0))


def test_mean_running_is_time_weighted_over_the_window() -> None:
    series = [
        {"t": 0.0, "model": MINI, "running": 10},
        {"t": 5.0, "model": FAST, "running": 3},  # another model: ignored
        {"t": 8.0, "model": MINI, "running": 5},
        {"t": 12.0, "model": MINI, "running": 10},
    ]
    # 10 for 8 s, 5 for 2 s over [0, 10]
    assert cf.mean_running(series, MINI, 0.0, 10.0) == pytest.approx(9.0)
    # a window starting mid-step takes the level it starts in
    assert cf.mean_running(series, MINI, 9.0, 13.0) == pytest.approx((5 * 3 + 10) / 4)


def test_the_busy_window_runs_from_the_first_start_to_the_last_start() -> None:
    tasks = [
        task("a", started_at=10.0, finished_at=16.0),
        task("b", started_at=12.0, finished_at=20.0),
        task("c", model=FAST, started_at=1.0, finished_at=2.0),
    ]
    window = cf.busy_window(tasks, MINI)
    assert window == cf.BusyWindow(first_start=10.0, last_start=12.0, last_finish=20.0)
    assert window.seconds == 2.0
    assert cf.busy_window([], MINI) is None


def test_ideal_makespan_and_batch_spread() -> None:
    assert cf.ideal_makespan(500, 5.7, 10, 0.3) == pytest.approx(285.3)
    assert cf.finish_spread({"a": 110.0, "b": 121.0}, started=10.0) == pytest.approx(0.11)
    assert math.isnan(cf.finish_spread({"a": 110.0}, started=10.0))


def test_first_create_reads_the_job_from_the_prompt() -> None:
    tasks = [task("x", created_at=5.0), task("j", created_at=9.0), task("j", created_at=7.0)]
    assert cf.first_create(tasks, "j") == 7.0
    assert cf.first_create(tasks, "nobody") is None
    assert cf.job_of_task({"request": {"content": [{"type": "image_url"}]}}) is None


def test_the_learned_rate_is_read_from_counter_samples() -> None:
    created = [(0.0, 0), (30.0, 50), (60.0, 100), (120.0, 190)]
    refused = [(0.0, 0), (30.0, 0), (45.0, 3), (60.0, 3), (120.0, 4)]
    assert cf.creates_per_minute(created, 60.0, 120.0) == pytest.approx(90.0)
    assert math.isnan(cf.creates_per_minute(created, 200.0, 300.0))
    assert cf.first_refusal_at(refused) == 45.0
    assert cf.refusals_between(refused, 45.0, 105.0) == 3
    assert cf.first_refusal_at([(0.0, 0)]) is None
