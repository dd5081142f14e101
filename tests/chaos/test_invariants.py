"""The invariant functions on hand-built evidence: clean evidence passes, and each kind of
damage is reported against the right job (or ledger row). The smoke run calls the same code
on evidence gathered from a real stack (`test_smoke.py`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chaos.evidence import Evidence, JobEvidence, StoredFile, job_of_task
from chaos.invariants import (
    INVARIANTS,
    check_all,
    no_orphan_ledger_rows,
    no_slot_leaked,
    one_billed_task_per_job,
    states_only_forward,
    succeeded_jobs_complete,
    terminal_within_deadline,
)
from seedance_pipeline.core.capacity import Gate, Holder, ModelLimits, Waiter
from seedance_pipeline.core.models import (
    Attempt,
    GenerationRequest,
    JobRecord,
    JobState,
    LedgerEntry,
    Outcome,
    StateChange,
)
from seedance_pipeline.core.pricing import cost

T0 = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
SHA = "a" * 64
FRAME_SHA = "b" * 64
TOKENS = 49_766
STATES = [
    JobState.RECEIVED,
    JobState.SUBMITTING,
    JobState.QUEUED,
    JobState.RUNNING,
    JobState.STORING,
    JobState.SUCCEEDED,
]


def task(
    task_id: str, job_id: str, *, billed: int = TOKENS, status: str = "succeeded"
) -> dict[str, Any]:
    return {
        "id": task_id,
        "model": "m",
        "status": status,
        "billed_tokens": billed,
        "usage": {"completion_tokens": billed, "total_tokens": billed},
        "request": {
            "content": [{"type": "text", "text": f"{job_id}: a red fox"}],
            "return_last_frame": True,
        },
    }


def job(job_id: str, task_id: str) -> JobEvidence:
    record = JobRecord(
        job_id=job_id,
        request=GenerationRequest(prompt=f"{job_id}: a red fox", return_last_frame=True),
        state=JobState.SUCCEEDED,
        outcome=Outcome.SUCCEEDED,
        provider_task_id=task_id,
        tokens=TOKENS,
        video_uri=f"/out/{job_id}/video.mp4",
        video_sha256=SHA,
        last_frame_uri=f"/out/{job_id}/last_frame.png",
        manifest_uri=f"/out/{job_id}/manifest.json",
        attempts=[
            Attempt(
                submit_no=1,
                model_alias="mini",
                model_id="m",
                route="byteplus",
                provider_task_id=task_id,
            )
        ],
        timeline=[StateChange(state=s, at=T0) for s in STATES],
    )
    return JobEvidence(
        job_id=job_id,
        started_at=T0,
        closed_at=T0 + timedelta(seconds=30),
        status="COMPLETED",
        record=record,
        states=[s.value for s in STATES],
        video=StoredFile(exists=True, size=1000, sha256=SHA),
        last_frame=StoredFile(exists=True, size=10, sha256=FRAME_SHA),
        manifest={
            "provider_task_id": task_id,
            "outcome": "succeeded",
            "outputs": {"video": {"sha256": SHA}},
        },
    )


def row(job_id: str, task_id: str, tokens: int = TOKENS) -> LedgerEntry:
    return LedgerEntry(
        job_id=job_id,
        submit_no=1,
        route="byteplus",
        model_alias="mini",
        model_id="m",
        service_tier="default",
        resolution="480p",
        ratio="16:9",
        duration=4,
        provider_task_id=task_id,
        tokens=tokens,
        estimated_tokens=tokens,
        billed=tokens > 0,
        unit_price=3.5,
        currency="USD",
        cost=cost(tokens, 3.5),
        outcome="succeeded",
        requested_at=T0,
        finished_at=T0,
    )


def clean() -> Evidence:
    jobs = {"j1": job("j1", "t1"), "j2": job("j2", "t2")}
    digests = {}
    for t in ("t1", "t2"):
        digests[(t, "video.mp4")] = {"sha256": SHA, "size": 1000}
        digests[(t, "last_frame.png")] = {"sha256": FRAME_SHA, "size": 10}
    return Evidence(
        jobs=jobs,
        tasks=[task("t1", "j1"), task("t2", "j2")],
        digests=digests,
        ledger=[row("j1", "t1"), row("j2", "t2")],
        known_jobs={"j1", "j2"},
        deadline_seconds=120,
        slack_seconds=60,
        stored_videos={
            j: [StoredFile(exists=True, size=1000, sha256=SHA, uri=f"/out/{j}/video.mp4")]
            for j in jobs
        },
        prices={"m": (3.5, "USD")},
    )


def subjects(violations: list[Any]) -> set[str]:
    return {v.subject for v in violations}


def test_clean_evidence_holds_every_invariant() -> None:
    assert check_all(clean()) == {key: [] for key in INVARIANTS}
    with_gate = clean()
    with_gate.gate = Gate(route="byteplus")  # every slot given back, nobody waiting
    assert check_all(with_gate) == {key: [] for key in INVARIANTS}


def test_prompt_names_the_job_of_each_task() -> None:
    assert job_of_task(task("t9", "chaos-x-0001")) == "chaos-x-0001"
    assert job_of_task({"id": "t", "request": {"content": [{"type": "text", "text": "x"}]}}) is None


def test_open_late_and_unfinished_jobs_are_lost() -> None:
    ev = clean()
    ev.jobs["j1"].closed_at = None
    ev.jobs["j1"].status = "RUNNING"
    ev.jobs["j2"].closed_at = T0 + timedelta(seconds=181)  # deadline 120 + slack 60
    assert subjects(terminal_within_deadline(ev)) == {"j1", "j2"}
    ev.jobs["j2"].closed_at = T0 + timedelta(seconds=179)
    assert subjects(terminal_within_deadline(ev)) == {"j1"}


def test_each_task_a_job_waited_for_adds_its_deadline() -> None:
    ev = clean()
    record = ev.jobs["j1"].record
    assert record is not None
    ev.jobs["j1"].closed_at = T0 + timedelta(seconds=250)  # past one task's 120 + 60
    assert subjects(terminal_within_deadline(ev)) == {"j1"}
    record.attempts.append(
        Attempt(
            submit_no=2, model_alias="fast", model_id="f", route="byteplus", provider_task_id="t0"
        )
    )
    assert terminal_within_deadline(ev) == []


def test_a_closed_job_without_a_terminal_record_is_lost() -> None:
    ev = clean()
    ev.jobs["j1"].record = None
    ev.jobs["j1"].result_error = "WorkflowFailureError: boom"
    record = ev.jobs["j2"].record
    assert record is not None
    record.state = JobState.STORING
    found = terminal_within_deadline(ev)
    assert subjects(found) == {"j1", "j2"}
    assert any("boom" in v.detail for v in found)


def test_two_billed_tasks_for_one_job_are_reported() -> None:
    ev = clean()
    ev.tasks.append(task("t3", "j1"))
    ev.tasks.append(task("t4", "j2", billed=0, status="failed"))  # unbilled: fine
    found = one_billed_task_per_job(ev)
    assert subjects(found) == {"j1"}
    assert "t1" in found[0].detail and "t3" in found[0].detail


@pytest.mark.parametrize(
    ("damage", "expect"),
    [
        (lambda ev: setattr(ev.jobs["j1"], "video", StoredFile(exists=False)), "video missing"),
        (
            lambda ev: ev.digests.__setitem__(
                ("t1", "video.mp4"), {"sha256": "c" * 64, "size": 1000}
            ),
            "stored video sha256",
        ),
        (lambda ev: setattr(ev.jobs["j1"], "last_frame", None), "last frame missing"),
        (lambda ev: setattr(ev.jobs["j1"], "manifest", None), "manifest missing"),
        (lambda ev: ev.ledger.pop(0), "no ledger row"),
        (lambda ev: ev.ledger.__setitem__(0, row("j1", "t1", tokens=5)), "ledger tokens 5"),
        (lambda ev: ev.tasks.__setitem__(0, task("t1", "j1", billed=7)), "record tokens"),
    ],
)
def test_succeeded_job_records_must_match_the_provider(damage: Any, expect: str) -> None:
    ev = clean()
    damage(ev)
    found = succeeded_jobs_complete(ev)
    assert subjects(found) == {"j1"}
    assert any(expect in v.detail for v in found), found


def test_failed_jobs_need_no_video() -> None:
    ev = clean()
    record = ev.jobs["j1"].record
    assert record is not None
    record.outcome, record.state = Outcome.FAILED_INFRA, JobState.FAILED
    ev.jobs["j1"].video = None
    assert succeeded_jobs_complete(ev) == []


def test_ledger_rows_without_a_job_or_with_a_foreign_task() -> None:
    ev = clean()
    ev.ledger.append(row("ghost", "t1"))
    ev.ledger.append(row("j2", "t1"))
    ev.ledger.append(row("j1", "t-unknown"))
    ev.ledger[1] = row("j2", "t2", tokens=TOKENS - 1)
    found = no_orphan_ledger_rows(ev)
    assert [(v.subject, v.detail.split(" ")[0]) for v in found] == [
        ("ledger:j2/1", "tokens"),
        ("ledger:ghost/1", "row"),
        ("ledger:j2/1", "task"),
        ("ledger:j1/1", "task"),
    ]


def test_a_state_moving_backwards_is_reported() -> None:
    ev = clean()
    ev.jobs["j1"].states = ["received", "submitting", "running", "queued", "succeeded"]
    ev.jobs["j2"].states = []
    found = states_only_forward(ev)
    assert subjects(found) == {"j1", "j2"}
    assert any("running -> queued" in v.detail for v in found)


def test_states_published_with_the_next_change_are_in_order_within_the_timeline() -> None:
    """v3 jobs start with JobState set and publish SUBMITTING only with the next change."""
    ev = clean()
    ev.jobs["j1"].states = ["received", "queued", "running", "storing", "succeeded"]
    assert states_only_forward(ev) == []


def test_a_published_state_the_record_never_had_is_reported() -> None:
    ev = clean()
    ev.jobs["j1"].states = ["received", "queued", "succeeded"]
    record = ev.jobs["j1"].record
    assert record is not None
    record.timeline = [c for c in record.timeline if c.state != JobState.QUEUED]
    found = states_only_forward(ev)
    assert subjects(found) == {"j1"} and "differs" in found[0].detail


def test_a_record_timeline_moving_backwards_is_reported() -> None:
    ev = clean()
    record = ev.jobs["j1"].record
    assert record is not None
    record.timeline = [*record.timeline[:3], record.timeline[1], *record.timeline[3:]]
    assert any("record timeline moved" in v.detail for v in states_only_forward(ev))


# ---- capacity slots ----------------------------------------------------------------------


def gate_holding(*holders: Holder, waiting: tuple[str, ...] = ()) -> Gate:
    g = Gate(route="byteplus")
    for h in holders:
        g.holders[h.job_id] = h
    for job_id in waiting:
        waiter = Waiter(job_id=job_id, model_id="m", since=T0)
        g.request(waiter, ModelLimits(concurrency=3, rpm=180))
    return g


def holder(job_id: str, task_id: str | None = None, *, orphan: bool = False) -> Holder:
    return Holder(
        job_id=job_id, model_id="m", granted_at=T0, heard_at=T0, task_id=task_id, orphan=orphan
    )


def test_a_slot_held_after_its_job_closed_and_its_task_ended_is_leaked() -> None:
    ev = clean()
    ev.gate = gate_holding(holder("j1", "t1"))  # t1 succeeded, j1 completed
    found = no_slot_leaked(ev)
    assert subjects(found) == {"j1"}
    assert "no live provider task (job COMPLETED, task t1)" in found[0].detail


def test_a_slot_whose_task_still_runs_is_the_tasks_not_a_leak() -> None:
    ev = clean()
    ev.tasks.append(task("t9", "j1", billed=0, status="running"))
    ev.gate = gate_holding(holder("j1", "t9", orphan=True))
    assert no_slot_leaked(ev) == []
    # its task ID unknown to the gate (killed mid-create): the task log names the job
    ev.gate = gate_holding(holder("j1"))
    assert no_slot_leaked(ev) == []


def test_a_running_job_holds_its_slot_itself() -> None:
    ev = clean()
    ev.jobs["j2"].status = "RUNNING"
    ev.gate = gate_holding(holder("j2", "t2"), waiting=("j2",))
    assert no_slot_leaked(ev) == []


def test_a_closed_job_still_queued_at_the_gate_and_a_stranger_are_reported() -> None:
    ev = clean()
    ev.gate = gate_holding(holder("ghost", "t404"), waiting=("j2",))
    found = {v.subject: v.detail for v in no_slot_leaked(ev)}
    assert found["j2"] == "still queued at the gate for m (job COMPLETED)"
    assert "job not of this scenario" in found["ghost"]


def test_no_gate_no_slots_to_leak() -> None:
    ev = clean()
    ev.gate = None
    assert no_slot_leaked(ev) == []
