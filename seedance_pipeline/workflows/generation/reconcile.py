"""After an ambiguous create: find the task it made, or prove there is none.

Proof of ownership, strongest first: the task announcing itself on this job's callback URL
(which names the job and the create); the create's seed fingerprint, echoed in the listed task
(`core.fingerprint`: a request that leaves `seed` at -1 is sent a seed derived from the job, its
run and the create); and ownership: a task another job published as its `ProviderTaskId`, or
claimed in the ledger, is not this one's, and an adopter claims its task first (two creates can
never both win a claim). The provider's
list is read for tasks of this model and shape around the create, and sorted
(`core.attribution`): a task that echoes this create's seed is adopted once its claim is won;
with nothing that could be this create's, a new create is safe. A task that carries no seed to
compare (the request pinned one) cannot be proven: a polling-only job still adopts a lone such
candidate if it wins the claim; otherwise the job ends `AmbiguousSubmit` and every candidate is
followed as unattributed billed work (`handover.watch_candidates`), so its money is recorded.
A job with `duration: -1` matches a listed task of any length (reference §0 C5).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core.attribution import Sorted, around, sort_listed
    from seedance_pipeline.core.fingerprint import Fingerprint, expected_seed
    from seedance_pipeline.core.models import (
        Attempt,
        FindClaimsInput,
        Outcome,
        ProviderTask,
        ResolvedModel,
        TaskClaim,
        TaskOwnersInput,
    )
    from seedance_pipeline.workflows import activity_options as opts
    from seedance_pipeline.workflows import activity_stubs as stubs
    from seedance_pipeline.workflows.generation import handover
    from seedance_pipeline.workflows.generation.ending import ended
    from seedance_pipeline.workflows.generation.job import Job

ROUNDS = 3


async def find_own_task(job: Job, model: ResolvedModel, attempt: Attempt) -> str | None:
    """The task ID the ambiguous create `attempt` made, or None when it provably made none."""
    book, submit_no = job.book, attempt.submit_no
    book.note(f"create {submit_no} ambiguous; reconciling before any new create")
    book.flush()
    listed = Sorted((), (), ())
    for round_no in range(1, ROUNDS + 1):
        await _grace(job, model, submit_no, first=round_no == 1)
        announced = job.inbox.announced.get(submit_no)
        if announced is not None and await handover.claim(job, attempt, announced.id):
            book.note(f"task {announced.id} announced itself by callback; adopted")
            return announced.id
        listed = await candidates(job, model, attempt)
        for task in listed.mine:
            if await handover.claim(job, attempt, task.id):
                book.note(f"task {task.id} carries this create's seed; adopted")
                return task.id
        if listed.none_can_be_mine:
            book.note(
                f"no task of this create in the provider's list (round {round_no}); "
                "safe to submit again"
            )
            return None
    lone = listed.unproven[0] if len(listed.unproven) == 1 and not listed.mine else None
    polling_only = not model.callbacks_enabled
    if lone is not None and polling_only and await handover.claim(job, attempt, lone.id):
        book.note(f"task {lone.id} is the lone candidate in the provider's list; claimed")
        return lone.id
    raise await _give_up(job, model, attempt, list(listed.unproven))


async def _give_up(
    job: Job, model: ResolvedModel, attempt: Attempt, unproven: list[ProviderTask]
) -> Exception:
    """Never a second paid create: the job's end, after following every candidate's bill."""
    why = f"create {attempt.submit_no} may have made one of them"
    await handover.watch_candidates(job, model, unproven, why)
    ids = ", ".join(t.id for t in unproven[:10])
    return ended(
        Outcome.FAILED_INFRA,
        "AmbiguousSubmit",
        f"create {attempt.submit_no} may have made a task, and {len(unproven)} candidates no "
        f"create can prove remain ({ids}); not submitting again to avoid paying twice; each is "
        "followed and its bill recorded",
    )


async def _grace(job: Job, model: ResolvedModel, submit_no: int, *, first: bool) -> None:
    """Give the task time to announce itself (callbacks) or to appear in the list (polling)."""
    grace = timedelta(seconds=model.reconcile_grace_seconds)
    if model.callbacks_enabled:
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: submit_no in job.inbox.announced, timeout=grace)
    elif not first and grace > timedelta(0):
        await workflow.sleep(grace)


async def candidates(job: Job, model: ResolvedModel, attempt: Attempt) -> Sorted:
    """Listed tasks of this model and shape around the create, sorted by whose they can be."""
    started = attempt.submitted_at or job.book.now()
    find = around(job.job_id, model, started, job.book.now())
    listed = await opts.call(stubs.find_tasks, find, opts.FIND)
    known = {a.provider_task_id for a in job.book.record.attempts if a.provider_task_id}
    shaped = [t for t in listed if t.id not in known and _same_shape(t, job, model)]
    if not shaped:
        return Sorted((), (), ())
    claims = await _claims(job, model, [t.id for t in shaped])
    me = Fingerprint(job_id=job.job_id, run=job.book.record.run, submit_no=attempt.submit_no)
    seed = expected_seed(job.inp.request, me)
    return sort_listed(shaped, me=me, expected_seed=seed, claims=claims)


async def _claims(job: Job, model: ResolvedModel, task_ids: list[str]) -> dict[str, TaskClaim]:
    """Who owns these tasks: claims in the ledger (adopters claim) and the `ProviderTaskId`
    other jobs publish the moment their create returns (so the common path claims nothing)."""
    claims = await opts.call(stubs.find_claims, FindClaimsInput(task_ids=task_ids), opts.OWNERS)
    ask = TaskOwnersInput(job_id=job.job_id, task_ids=task_ids)
    owners = await opts.call(stubs.task_owners, ask, opts.OWNERS)
    now = job.book.now()
    for task_id, owner in owners.items():
        claims.setdefault(
            task_id,
            TaskClaim(
                task_id=task_id,
                job_id=owner,
                run="",
                submit_no=0,
                route=model.route,
                claimed_at=now,
            ),
        )
    return claims


def _same_shape(task: ProviderTask, job: Job, model: ResolvedModel) -> bool:
    """Could this listed task be the job's? Fields a list item omits match anything (C11)."""
    wanted = job.inp.request.duration
    return (
        task.status != "cancelled"
        and task.resolution in (None, model.resolution)
        and (wanted == -1 or task.duration in (None, wanted))
    )
