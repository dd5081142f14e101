"""Capacity: the job's create asks its account's gate for a slot, and the job gives the slot
back when its provider task ends.

The ask rides in the create (`CreateTaskInput.ask`): the create activity asks the gate first
and calls the provider only when the slot is granted, which is most of the time, so a job with
room pays no message of its own for it. The release of a task that succeeded rides in the read
that finds it so (`TaskRef.release_to`), in the same way. When the gate holds the create back,
the job waits on a condition for the gate's grant (a signal), durably and holding no activity
slot, for at most the gate's bound (extendable with `extend`); past it the job ends
`failed_quota` naming the limit that held it. A create refused with 429 is backpressure: the
job tells the gate (which learns) and asks again; it never counts toward a breaker, never falls
back and never ends the job. The slot is kept across safe re-creates on the same model and
given back when the task is terminal, when the create made no task, or when the job ends (with
`still_running` when its task may still run, so the gate keeps the slot until a check sees the
task end).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core.capacity import (
        CapacityGranted,
        CapacityRefusal,
        CapacityRelease,
        CapacityRequest,
        CapacityWaiting,
        GateAsk,
        GateRef,
        Waiter,
    )
    from seedance_pipeline.core.models import (
        CapacityWait,
        ErrorInfo,
        JobState,
        Outcome,
        ResolvedModel,
    )
    from seedance_pipeline.workflows import signals
    from seedance_pipeline.workflows.generation.ending import ended
    from seedance_pipeline.workflows.generation.job import Job

MAX_ASK_BACKOFF_SECONDS = 60


def ask(job: Job, model: ResolvedModel) -> GateAsk | None:
    """The ask the next create on `model` carries (None: no gate, or the job holds the slot)."""
    ref, inbox, book = model.capacity, job.inbox, job.book
    if ref is None or inbox.holding == model.model_id:
        return None
    now = book.now()
    wait = book.record.capacity
    if inbox.asking != model.model_id or wait is None or wait.granted_at is not None:
        inbox.granted, inbox.asking = None, model.model_id
        inbox.capacity_since = inbox.capacity_since or now
        wait = book.record.capacity = _wait_record(job, ref, model, now)
    waiter = Waiter(
        job_id=job.job_id,
        model_id=model.model_id,
        priority=job.inp.priority,
        fairness_key=job.inp.fairness_key,
        since=wait.requested_at,
    )
    return GateAsk(ref=ref, request=CapacityRequest(waiter=waiter, limits=ref.limits))


def held(job: Job, model: ResolvedModel, at: datetime | None = None) -> None:
    """The slot on `model` is the job's: granted in its create's answer or by the gate's signal."""
    inbox, wait = job.inbox, job.book.record.capacity
    if model.capacity is None:
        return
    inbox.holding = inbox.asking = model.model_id
    if wait is not None and wait.granted_at is None:
        wait.granted_at = at or job.book.now()
        wait.waited_seconds += max(0.0, (wait.granted_at - wait.requested_at).total_seconds())


async def wait_for_grant(job: Job, model: ResolvedModel, notice: CapacityWaiting | None) -> None:
    """The gate held the create back: wait for its grant, a poke (ask again), or the bound.

    The wait shows as `waiting_for_capacity`, with the place and the limit when the gate
    named them (none: the job is queued behind others while nothing blocks)."""
    ref, inbox, book = model.capacity, job.inbox, job.book
    if ref is None:
        return
    book.move_to(JobState.WAITING_FOR_CAPACITY)
    wait = book.record.capacity
    if notice is not None and wait is not None:
        wait.ahead, wait.blocked_by = notice.ahead, notice.blocked_by
        wait.limit_value, wait.estimate_seconds = notice.limit_value, notice.estimate_seconds
    book.flush()
    try:
        await workflow.wait_condition(
            lambda: inbox.granted == model.model_id or inbox.poked, timeout=_left(job, ref)
        )
    except TimeoutError:
        await release(job, model)
        raise _waited_too_long(job, ref, model) from None
    if inbox.granted == model.model_id:
        held(job, model)
    else:
        inbox.poked = False  # ask again (a gate that was lost is started anew by the ask)


async def ask_failed(job: Job, model: ResolvedModel, failures: int) -> None:
    """The create could not reach the gate (nothing was sent): wait a little, within the bound."""
    ref = model.capacity
    if ref is None:
        return
    delay = min(2.0**failures, MAX_ASK_BACKOFF_SECONDS)
    if _left(job, ref) <= timedelta(seconds=delay):
        await release(job, model)
        raise _waited_too_long(job, ref, model)
    job.book.note(f"capacity gate {ref.gate_id} unreachable; asking again in {delay:g}s")
    job.book.flush()
    await workflow.sleep(delay)


async def refused(
    job: Job, model: ResolvedModel, info: ErrorInfo, retry_after: float | None
) -> None:
    """The provider refused the create for its limits: the gate learns; the job asks again."""
    ref = model.capacity
    if ref is None:
        return
    job.inbox.holding = job.inbox.granted = None
    if job.book.record.capacity is not None:
        job.book.record.capacity.refusals += 1
    job.book.note(f"create refused for the provider's limits ({info.code}); waiting for capacity")
    refusal = CapacityRefusal(job_id=job.job_id, code=info.code, retry_after_seconds=retry_after)
    await _tell(ref, "refused", refusal)


async def release(job: Job, model: ResolvedModel | None, *, still_running: bool = False) -> None:
    """Give the slot back, or the place in the queue when the job was still waiting (the gate
    frees whichever it has; a job whose answer was lost may hold a slot it never heard of)."""
    ref = model.capacity if model else None
    inbox = job.inbox
    if ref is None or inbox.asking is None:
        return
    inbox.asking = inbox.holding = inbox.granted = None
    task_id = job.book.record.provider_task_id
    message = CapacityRelease(job_id=job.job_id, task_id=task_id, still_running=still_running)
    await _tell(ref, "release", message)


def release_with_read(job: Job, model: ResolvedModel) -> str | None:
    """The gate a read of the job's task gives the slot back to if it finds the task succeeded
    (None: no slot to give). Cheaper than `release`: no signal and no workflow task of the
    job's own, and the worker sends many jobs' releases as one signal."""
    ref = model.capacity
    return ref.gate_id if ref is not None and job.inbox.asking is not None else None


def released_by_read(job: Job) -> None:
    """The read that found the task succeeded gave the slot back (`release_with_read`)."""
    inbox = job.inbox
    inbox.asking = inbox.holding = inbox.granted = None


def granted(job: Job, message: CapacityGranted) -> None:
    """Handler side: the gate's grant for a waiter. A late grant for a job that stopped
    waiting is ignored; the gate frees it when the job's release arrives."""
    job.inbox.granted = message.model_id


async def _tell(ref: GateRef, name: str, message: object) -> bool:
    """Signal the gate; False when it is gone (a gone gate has no slot to free)."""
    return await signals.signal(ref.gate_id, name, message)


def _left(job: Job, ref: GateRef) -> timedelta:
    """What is left of the job's capacity wait bound (counted from its first ask)."""
    since = job.inbox.capacity_since or job.book.now()
    deadline = since + timedelta(seconds=ref.max_wait_seconds) + job.inbox.extension
    return max(timedelta(0), deadline - job.book.now())


def _wait_record(job: Job, ref: GateRef, model: ResolvedModel, now: datetime) -> CapacityWait:
    previous = job.book.record.capacity
    wait = CapacityWait(gate_id=ref.gate_id, model_id=model.model_id, requested_at=now)
    if previous is not None:
        wait.refusals, wait.waited_seconds = previous.refusals, previous.waited_seconds
    return wait


def _waited_too_long(job: Job, ref: GateRef, model: ResolvedModel) -> Exception:
    wait = job.book.record.capacity
    limit = wait.blocked_by.value if wait and wait.blocked_by else "concurrency"
    value = f" (now {wait.limit_value:g})" if wait and wait.limit_value is not None else ""
    minutes = ref.max_wait_seconds / 60 + job.inbox.extension.total_seconds() / 60
    return ended(
        Outcome.FAILED_QUOTA,
        "CapacityWaitExceeded",
        f"waited {minutes:g} min for a slot of {model.model_id} on {ref.route}: held by the "
        f"account's {limit} limit{value}; raise the account's limits with the provider, set "
        "capacity.max_wait_minutes higher, or `extend` the job",
    )
