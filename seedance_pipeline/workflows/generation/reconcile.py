"""After an ambiguous create: find the task it may have made, or prove there is none.

Proof of ownership is the task announcing itself on this job's callback URL, which names the
job and the create. Without it, the provider's list is read and every task another job already
claims (its `ProviderTaskId`) is set aside: when nothing unclaimed is left after a few grace
rounds, a new create is safe. With callbacks on, an unclaimed candidate is never adopted from
the list alone (it may be another job's whose create is in the same state); polling-only jobs
adopt a lone candidate. A job with `duration: -1` matches a listed task of any length: the
provider reports the length it chose (reference §0 C5).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core.models import (
        Attempt,
        FindTasksInput,
        Outcome,
        ProviderTask,
        ResolvedModel,
        TaskOwnersInput,
    )
    from seedance_pipeline.workflows import activity_options as opts
    from seedance_pipeline.workflows import activity_stubs as stubs
    from seedance_pipeline.workflows.generation.ending import ended
    from seedance_pipeline.workflows.generation.job import Job

ROUNDS = 3
LIST_MARGIN_SECONDS = 60
"""Listed tasks created this long before the create or after now are still candidates (clocks
differ)."""


async def find_own_task(job: Job, model: ResolvedModel, attempt: Attempt) -> str | None:
    """The task ID the ambiguous create `attempt` made, or None when it provably made none."""
    book, submit_no = job.book, attempt.submit_no
    book.note(f"create {submit_no} ambiguous; reconciling before any new create")
    book.flush()
    unclaimed: list[ProviderTask] = []
    for round_no in range(1, ROUNDS + 1):
        await _grace(job, model, submit_no, first=round_no == 1)
        announced = job.inbox.announced.get(submit_no)
        if announced is not None:
            book.note(f"task {announced.id} announced itself by callback; adopted")
            return announced.id
        unclaimed = await unclaimed_candidates(job, model, attempt)
        if not unclaimed:
            book.note(
                f"no unclaimed task in the provider's list (round {round_no}); safe to submit again"
            )
            return None
    if not model.callbacks_enabled and len(unclaimed) == 1:
        book.note(
            f"task {unclaimed[0].id} is the lone unclaimed candidate in the provider's list; "
            "adopted"
        )
        return unclaimed[0].id
    ids = ", ".join(t.id for t in unclaimed[:10])
    raise ended(
        Outcome.FAILED_INFRA,
        "AmbiguousSubmit",
        f"create {submit_no} may have made a task, and {len(unclaimed)} unclaimed candidates "
        f"remain ({ids}); not submitting again to avoid paying twice",
    )


async def _grace(job: Job, model: ResolvedModel, submit_no: int, *, first: bool) -> None:
    """Give the task time to announce itself (callbacks) or to appear in the list (polling)."""
    grace = timedelta(seconds=model.reconcile_grace_seconds)
    if model.callbacks_enabled:
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: submit_no in job.inbox.announced, timeout=grace)
    elif not first and grace > timedelta(0):
        await workflow.sleep(grace)


async def unclaimed_candidates(
    job: Job, model: ResolvedModel, attempt: Attempt
) -> list[ProviderTask]:
    """Listed tasks of this model and shape, around the create, that no other job owns."""
    started = attempt.submitted_at or job.book.now()
    find = FindTasksInput(
        job_id=job.job_id,
        route=model.route,
        model_id=model.model_id,
        created_after=int(started.timestamp()) - LIST_MARGIN_SECONDS,
        created_before=int(job.book.now().timestamp()) + LIST_MARGIN_SECONDS,
    )
    listed = await opts.call(stubs.find_tasks, find, opts.FIND)
    known = {a.provider_task_id for a in job.book.record.attempts if a.provider_task_id}
    shaped = [t for t in listed if t.id not in known and _same_shape(t, job, model)]
    if not shaped:
        return []
    ask = TaskOwnersInput(job_id=job.job_id, task_ids=[t.id for t in shaped])
    owners = await opts.call(stubs.task_owners, ask, opts.OWNERS)
    return [t for t in shaped if t.id not in owners]


def _same_shape(task: ProviderTask, job: Job, model: ResolvedModel) -> bool:
    """Could this listed task be the job's? Fields a list item omits match anything (C11)."""
    wanted = job.inp.request.duration
    return (
        task.status != "cancelled"
        and task.resolution in (None, model.resolution)
        and (wanted == -1 or task.duration in (None, wanted))
    )
