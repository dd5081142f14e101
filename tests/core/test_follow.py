"""The follower's input from a job's record (`handover`) and its bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from seedance_pipeline.core.follow import (
    DEFAULT_EXECUTION_EXPIRES_AFTER,
    EXPIRY_MARGIN_SECONDS,
    FollowProgress,
    follower_id,
    give_up_at,
    handover,
    retention_until,
)
from seedance_pipeline.core.models import (
    Attempt,
    GenerationRequest,
    JobRecord,
    Outcome,
    ProviderTask,
)
from tests.workflows.support import model

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def record(**fields: object) -> JobRecord:
    base: dict[str, object] = {
        "job_id": "job-1",
        "run": "run-1",
        "request": GenerationRequest(prompt="a fox", duration=4),
        "requested_at": T0,
        "outcome": Outcome.CANCELLED,
        "resolution": "720p",
        "ratio": "16:9",
        "duration": 4,
        "currency": "USD",
    }
    base.update(fields)
    return JobRecord.model_validate(base)


def attempt(task_id: str | None = "cgt-1") -> Attempt:
    return Attempt(
        submit_no=2,
        model_alias="fast",
        model_id="dreamina-seedance-2-0-fast-260128",
        route="byteplus",
        provider_task_id=task_id,
        submitted_at=T0 + timedelta(seconds=5),
        unit_price=5.6,
        currency="USD",
    )


def test_handover_carries_the_create_its_price_and_the_jobs_outcome() -> None:
    rec = record()
    inp = handover(
        rec, attempt(), model(), rec.request or GenerationRequest(prompt="x"), reason="cancelled"
    )
    assert (inp.job_id, inp.run, inp.submit_no, inp.task_id) == ("job-1", "run-1", 2, "cgt-1")
    assert (inp.model_alias, inp.unit_price, inp.currency) == ("fast", 5.6, "USD")
    assert inp.accepted_at == T0 + timedelta(seconds=5) and inp.requested_at == T0
    assert inp.job_outcome == Outcome.CANCELLED and inp.store is True
    assert inp.capacity_gate_id is None and inp.capacity_holder_id is None
    assert follower_id(inp.route, inp.task_id) == "task-follower:byteplus:cgt-1"


def test_handover_names_the_capacity_holder_only_with_a_gate() -> None:
    rec = record()
    inp = handover(
        rec,
        attempt(),
        model(),
        GenerationRequest(prompt="x"),
        reason="deadline",
        capacity_gate_id="gate:mini",
    )
    assert (inp.capacity_gate_id, inp.capacity_holder_id) == ("gate:mini", "job-1")


def test_an_attempt_without_a_task_cannot_be_handed_over() -> None:
    with pytest.raises(ValueError, match="no provider task"):
        handover(record(), attempt(None), model(), GenerationRequest(prompt="x"), reason="x")


def test_the_follower_stops_at_the_tasks_expiry_or_the_retention_whichever_first() -> None:
    rec = record()
    inp = handover(
        rec,
        attempt(),
        model(task_retention_seconds=7 * 86_400),
        GenerationRequest(prompt="x"),
        reason="x",
    )
    expiry = DEFAULT_EXECUTION_EXPIRES_AFTER + EXPIRY_MARGIN_SECONDS
    assert give_up_at(inp) == inp.accepted_at + timedelta(seconds=expiry)
    short = inp.model_copy(update={"task_retention_seconds": 3600.0})
    assert give_up_at(short) == inp.accepted_at + timedelta(hours=1)
    own = inp.model_copy(
        update={"request": GenerationRequest(prompt="x", execution_expires_after=3600)}
    )
    assert give_up_at(own) == inp.accepted_at + timedelta(seconds=3600 + EXPIRY_MARGIN_SECONDS)


def test_retention_counts_from_the_providers_creation_time_when_known() -> None:
    rec = record()
    created = int((T0 + timedelta(minutes=1)).timestamp())
    seen = ProviderTask(id="cgt-1", status="running", created_at=created)
    inp = handover(
        rec, attempt(), model(task_retention_seconds=600), GenerationRequest(prompt="x"), reason="x"
    )
    assert retention_until(inp) == inp.accepted_at + timedelta(seconds=600)
    later = inp.model_copy(update={"progress": FollowProgress(last_seen=seen)})
    assert retention_until(later) == T0 + timedelta(minutes=1, seconds=600)


def test_an_unattributed_watch_has_its_own_workflow_id_and_stores_nothing() -> None:
    from seedance_pipeline.core.follow import id_of, watch_unattributed

    rec = record(finished_at=T0 + timedelta(minutes=5))
    listed = ProviderTask(id="cgt-9", status="running", created_at=int(T0.timestamp()), model="m-9")
    inp = watch_unattributed(
        listed, rec, model(), GenerationRequest(prompt="x"), candidates=["b", "a", "a"], reason="x"
    )
    assert inp.unattributed_candidates == ["a", "b"] and inp.store is False
    assert (inp.model_id, inp.accepted_at) == ("m-9", T0)
    assert id_of(inp) == "task-follower-unattributed:byteplus:cgt-9"
    owned = handover(rec, attempt("cgt-9"), model(), GenerationRequest(prompt="x"), reason="x")
    assert id_of(owned) == "task-follower:byteplus:cgt-9"
