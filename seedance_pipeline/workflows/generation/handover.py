"""Handover: the job follows its provider task to the end, even when the job itself ends first.

A job that ends while its task may still run or bill (cancelled while running, past its
execution deadline, a GET outage, a copy that could not finish while the provider had billed)
hands the task to a follower (`TaskFollowerWorkflow`, one per task): it reads the task until it
ends, records what the provider billed in this create's own ledger row, stores a succeeded
task's video (unless the operator asked to discard it) and gives the capacity slot back. The
follower's ID goes into the record. A task that announced itself after the job stopped waiting
for it is claimed and handed over too; listed tasks nobody can prove are watched as
unattributed billed work, so no money the provider bills is ever left unrecorded.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core.follow import handover, watch_unattributed
    from seedance_pipeline.core.models import (
        TERMINAL_PROVIDER_STATUSES,
        Attempt,
        ClaimTaskInput,
        ProviderTask,
        ResolvedModel,
    )
    from seedance_pipeline.workflows import activity_options as opts
    from seedance_pipeline.workflows import activity_stubs as stubs
    from seedance_pipeline.workflows.generation.job import Job

MAX_WATCHED = 10
"""Unattributed candidates watched after one ambiguous create (the list is narrowed by model,
shape and time window first; more would mean a flood of identical requests)."""


async def claim(job: Job, attempt: Attempt, task_id: str) -> bool:
    """Claim `task_id` for this create (first claim wins, forever): True when it is ours."""
    ask = ClaimTaskInput(
        job_id=job.job_id,
        run=job.book.record.run,
        submit_no=attempt.submit_no,
        route=attempt.route,
        task_id=task_id,
    )
    owner = await opts.call(stubs.claim_task, ask, opts.CLAIM)
    return owner.won


def task_may_still_bill(job: Job) -> bool:
    """The job knows its task, and either the task has not ended or it succeeded (billed) and
    its video is not stored."""
    rec = job.book.record
    if rec.provider_task_id is None:
        return False
    unstored_success = rec.provider_status == "succeeded" and rec.video_uri is None
    return rec.provider_status not in TERMINAL_PROVIDER_STATUSES or unstored_success


async def to_follower(job: Job, model: ResolvedModel, reason: str) -> None:
    """Hand the job's task (and its capacity slot, if it holds one) to the task's follower."""
    rec, inbox = job.book.record, job.inbox
    attempt = next(a for a in reversed(rec.attempts) if a.provider_task_id == rec.provider_task_id)
    gate = model.capacity.gate_id if model.capacity and inbox.holding else None
    follow = handover(
        rec,
        attempt,
        model,
        job.inp.request,
        reason=reason,
        store=not inbox.discard,
        capacity_gate_id=gate,
    )
    started = await opts.call(stubs.start_task_follower, follow, opts.START_FOLLOWER)
    rec.followers.append(started.workflow_id)
    if gate is not None:
        inbox.holding = inbox.asking = None  # the follower releases it when the task ends
    job.book.note(f"task {follow.task_id} handed to {started.workflow_id} ({reason})")


async def adopt_late_announcements(job: Job, model: ResolvedModel) -> None:
    """Tasks that announced themselves for a create the job had given up on: claim, record on
    their attempt, and follow (each is billed work of this job)."""
    rec = job.book.record
    for submit_no, task in sorted(job.inbox.announced.items()):
        attempt = next((a for a in rec.attempts if a.submit_no == submit_no), None)
        if attempt is None or attempt.provider_task_id is not None:
            continue
        if not await claim(job, attempt, task.id):
            job.book.note(
                f"task {task.id} announced itself for create {submit_no}; another create claimed it"
            )
            continue
        attempt.provider_task_id = task.id
        follow = handover(rec, attempt, model, job.inp.request, reason="announced late")
        started = await opts.call(stubs.start_task_follower, follow, opts.START_FOLLOWER)
        rec.followers.append(started.workflow_id)
        job.book.note(f"task {task.id} announced itself late; handed to {started.workflow_id}")
    job.inbox.announced.clear()


async def watch_candidates(
    job: Job, model: ResolvedModel, tasks: list[ProviderTask], reason: str
) -> None:
    """Listed tasks this create may have made but cannot prove: followed as unattributed, so a
    billed one is recorded with its candidate jobs even if no create ever claims it."""
    rec = job.book.record
    for task in tasks[:MAX_WATCHED]:
        watch = watch_unattributed(
            task, rec, model, job.inp.request, candidates=[job.job_id], reason=reason
        )
        started = await opts.call(stubs.start_task_follower, watch, opts.START_FOLLOWER)
        rec.followers.append(started.workflow_id)
