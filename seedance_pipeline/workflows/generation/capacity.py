"""Capacity: the job asks its account's gate for a slot before each create and gives it back
when its provider task ends.

Waiting costs no activity slot: the job signals the gate and waits on a condition for the
gate's grant (a signal), durably, for at most the gate's bound (extendable with `extend`);
past it the job ends `failed_quota` naming the limit that held it. A create refused with 429
is backpressure: the job tells the gate (which learns) and waits again; it never counts
toward a breaker, never falls back and never ends the job. The slot is kept across safe
re-creates on the same model and given back when the task is terminal, when the create made
no task, or when the job ends (with `still_running` when its task may still run, so the gate
keeps the slot until a check sees the task end).
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
        CapacityWithdrawal,
        GateRef,
        OpenGate,
        Waiter,
    )
    from seedance_pipeline.core.models import (
        CapacityWait,
        ErrorInfo,
        JobState,
        Outcome,
        ResolvedModel,
    )
    from seedance_pipeline.workflows import activity_options as opts
    from seedance_pipeline.workflows import activity_stubs as stubs
    from seedance_pipeline.workflows import signals
    from seedance_pipeline.workflows.generation.ending import ended
    from seedance_pipeline.workflows.generation.job import Job


async def acquire(job: Job, model: ResolvedModel) -> None:
    """Hold a slot on `model` before a create (at once when the job holds one already)."""
    ref, inbox = model.capacity, job.inbox
    if ref is None or inbox.holding == model.model_id:
        return
    book = job.book
    now = book.now()
    inbox.granted, inbox.told_to_wait = None, False
    inbox.capacity_since = inbox.capacity_since or now
    wait = book.record.capacity = _wait_record(job, ref, model, now)
    waiter = Waiter(
        job_id=job.job_id,
        model_id=model.model_id,
        priority=job.inp.priority,
        fairness_key=job.inp.fairness_key,
        since=now,
    )
    book.move_to(JobState.WAITING_FOR_CAPACITY)  # quiet: shown once the gate says "wait"
    request = CapacityRequest(waiter=waiter, limits=ref.limits)
    await _request(job, ref, request)
    await _until_granted(job, ref, model, request)
    inbox.holding, inbox.told_to_wait, wait.granted_at = model.model_id, False, book.now()
    wait.waited_seconds += (wait.granted_at - now).total_seconds()


async def _until_granted(
    job: Job, ref: GateRef, model: ResolvedModel, request: CapacityRequest
) -> None:
    """Wait for the grant. Most come at once, so there is no timer until the gate says the
    job must wait; then the wait's own bound runs. A poke sends the request again (the gate
    ignores a repeat; a gate that was lost is started anew with it)."""
    inbox, book = job.inbox, job.book
    since = inbox.capacity_since or book.now()
    deadline = since + timedelta(seconds=ref.max_wait_seconds)
    while inbox.granted != model.model_id:
        timed = inbox.told_to_wait
        timeout = max(timedelta(0), deadline + inbox.extension - book.now()) if timed else None
        try:
            await _news(job, model.model_id, timed=timed, within=timeout)
        except TimeoutError:
            await _tell(ref, "withdraw", CapacityWithdrawal(job_id=job.job_id))
            raise _waited_too_long(job, ref, model) from None
        if inbox.poked and inbox.granted != model.model_id:
            inbox.poked = False
            await _request(job, ref, request)


async def _news(job: Job, model_id: str, *, timed: bool, within: timedelta | None) -> None:
    """Until the grant, a poke, or (before the bound runs) the gate's "wait"."""
    inbox = job.inbox
    await workflow.wait_condition(
        lambda: inbox.granted == model_id or inbox.poked or (inbox.told_to_wait and not timed),
        timeout=within,
    )


async def refused(
    job: Job, model: ResolvedModel, info: ErrorInfo, retry_after: float | None
) -> None:
    """The provider refused the create for its limits: the gate learns; the job waits again."""
    ref = model.capacity
    if ref is None:
        return
    job.inbox.holding = None
    if job.book.record.capacity is not None:
        job.book.record.capacity.refusals += 1
    job.book.note(f"create refused for the provider's limits ({info.code}); waiting for capacity")
    refusal = CapacityRefusal(job_id=job.job_id, code=info.code, retry_after_seconds=retry_after)
    await _tell(ref, "refused", refusal)


async def release(job: Job, model: ResolvedModel | None, *, still_running: bool = False) -> None:
    """Give the slot back (or the place in the queue, when the job was still waiting)."""
    ref = model.capacity if model else None
    inbox = job.inbox
    if ref is None:
        return
    if inbox.holding is None:
        if inbox.granted is None and inbox.capacity_since is not None:
            await _tell(ref, "withdraw", CapacityWithdrawal(job_id=job.job_id))
        return
    inbox.holding = None
    task_id = job.book.record.provider_task_id
    message = CapacityRelease(job_id=job.job_id, task_id=task_id, still_running=still_running)
    await _tell(ref, "release", message)


def granted(job: Job, message: CapacityGranted) -> None:
    """Handler side: the gate's grant (a late grant for a job that stopped waiting is ignored
    here; the gate frees it when the job's release or withdrawal arrives)."""
    job.inbox.granted = message.model_id


def waiting(job: Job, message: CapacityWaiting) -> None:
    """Handler side: the gate says the job must wait; show it, with the place and the limit."""
    wait = job.book.record.capacity
    if wait is None or wait.model_id != message.model_id or job.inbox.granted is not None:
        return
    job.inbox.told_to_wait = True
    wait.ahead, wait.blocked_by = message.ahead, message.blocked_by
    wait.limit_value, wait.estimate_seconds = message.limit_value, message.estimate_seconds
    job.book.flush()  # the quiet waiting_for_capacity state becomes visible


async def _request(job: Job, ref: GateRef, request: CapacityRequest) -> None:
    if not await _tell(ref, "request", request):  # no gate yet for this account: start it
        await opts.call(
            stubs.open_capacity_gate, OpenGate(ref=ref, request=request), opts.GATE_OPEN
        )


async def _tell(ref: GateRef, name: str, message: object) -> bool:
    """Signal the gate; False when it is gone (a gone gate has no slot to free)."""
    return await signals.signal(ref.gate_id, name, message)


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
