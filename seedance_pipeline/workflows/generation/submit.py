"""Submit: the one paid call, made so that a retry never pays twice.

Each create runs once on the model's submit queue. A failure that proves the request never
made a task (not reached, refused) may be followed by another create after a backoff; an
ambiguous one (a timeout after sending, a reset mid-answer, garbage) is reconciled first
(`reconcile.find_own_task`), and only a proof that no task exists allows a new create. A model
that keeps refusing raises `CreateExhausted` (the attempts policy falls back). Each create
first holds a slot of the account's capacity gate (the create carries the ask, and a create the
gate holds back sends nothing); a refusal for the provider's own limits (429) sends the job back
to the gate instead (`capacity`).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core import error_types as et
    from seedance_pipeline.core.capacity import GateAsk
    from seedance_pipeline.core.models import (
        CreateTaskInput,
        CreateTaskResult,
        ErrorInfo,
        JobState,
        Outcome,
        ResolvedModel,
    )
    from seedance_pipeline.workflows import activity_options as opts
    from seedance_pipeline.workflows import activity_stubs as stubs
    from seedance_pipeline.workflows.generation import capacity, reconcile
    from seedance_pipeline.workflows.generation.ending import (
        ACTIVITY_TIMEOUT,
        NOT_STARTED,
        CreateExhausted,
        JobEnded,
        ended,
        error_from,
    )
    from seedance_pipeline.workflows.generation.job import Job

MAX_CREATE_BACKOFF_SECONDS = 300


async def create(job: Job, model: ResolvedModel) -> str:
    """Create the job's provider task on `model`; its task ID, once the provider took it."""
    book = job.book
    book.expect_task()
    job.inbox.terminal_hint = False
    refused = unanswered = unasked = 0
    while True:
        ask = capacity.ask(job, model)
        book.move_to(JobState.SUBMITTING)
        attempt = book.start_attempt(model)
        job.inbox.creating = attempt.submit_no
        try:
            result = await _create_once(job, model, attempt.submit_no, ask)
        except ActivityError as err:
            kind, info, outcome = error_from(err)
            attempt.error = info
            if kind == NOT_STARTED:
                raise _unattended(model) from None
            if kind == et.CAPACITY_ASK_FAILED:
                book.take_back(attempt)
                unasked += 1
                await capacity.ask_failed(job, model, unasked)
                continue
            if kind in et.CREATE_AMBIGUOUS or kind == ACTIVITY_TIMEOUT:
                found = await reconcile.find_own_task(job, model, attempt)
                if found is not None:
                    capacity.held(job, model)
                    return _accepted(job, attempt.submit_no, found)
                unanswered += 1  # the next create asks again: a holder is granted at once
                if unanswered >= model.create_attempts:
                    raise await _exhausted(job, model, info) from None
                continue
            if kind == et.PROVIDER_RATE_LIMITED and model.capacity is not None:
                await capacity.refused(job, model, info, _retry_after(err))
                continue  # backpressure: wait for the gate again, never a failure
            if kind not in et.SAFE_TO_CREATE_AGAIN:
                raise JobEnded(outcome, info) from None
            capacity.held(job, model)  # the provider answered: the create had its slot
            refused += 1
            if refused >= model.create_attempts:
                raise await _exhausted(job, model, info) from None
            await _back_off(job, model, refused, err, info.code)
            continue
        if result.task_id is None:  # the gate held it back: nothing was sent
            book.take_back(attempt)
            job.inbox.creating = None
            await capacity.wait_for_grant(job, model, result.waiting)
            continue
        capacity.held(job, model, result.granted_at)
        return _accepted(job, attempt.submit_no, result.task_id)


async def _exhausted(job: Job, model: ResolvedModel, info: ErrorInfo) -> CreateExhausted:
    """The model keeps refusing creates: give its slot back before the job falls back."""
    await capacity.release(job, model)
    return CreateExhausted(info)


def _retry_after(err: ActivityError) -> float | None:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.next_retry_delay:
        return cause.next_retry_delay.total_seconds()
    return None


async def _create_once(
    job: Job, model: ResolvedModel, submit_no: int, ask: GateAsk | None
) -> CreateTaskResult:
    request = CreateTaskInput(
        job_id=job.job_id,
        run=job.book.record.run,
        submit_no=submit_no,
        request=job.inp.request,
        model=model,
        ask=ask,
    )
    options = opts.create_options(
        model.create_timeout_seconds, model.create_schedule_to_start_seconds
    )
    return await opts.call(stubs.create_task, request, options, task_queue=model.submit_queue)


def _accepted(job: Job, submit_no: int, task_id: str) -> str:
    """The provider has the task: follow it, starting from what its callbacks already said."""
    book, inbox = job.book, job.inbox
    book.task_accepted(task_id)
    announced = inbox.take_announcement(submit_no, task_id)
    inbox.creating = None
    if announced is not None:
        if announced.terminal:
            inbox.terminal_hint = True  # confirmed by the first GET of the wait
        else:
            book.apply(announced)
    if book.record.provider_status is None:
        book.move_to(JobState.QUEUED, "submitted")
        book.record.provider_status = "queued"
    book.flush()  # other jobs' reconciliation looks the task ID up
    return task_id


async def _back_off(
    job: Job, model: ResolvedModel, refused: int, err: ActivityError, code: str
) -> None:
    delay = max(model.create_backoff_seconds * (2 ** (refused - 1)), _retry_after(err) or 0)
    delay = min(delay, MAX_CREATE_BACKOFF_SECONDS)
    job.book.note(f"create refused ({code}); retrying in {delay:.1f}s")
    job.book.flush()
    if delay > 0:  # a zero-length sleep would still cost a server timer (about a second)
        await workflow.sleep(delay)


def _unattended(model: ResolvedModel) -> JobEnded:
    """Nothing polls the submit queue: the create never ran, so nothing was paid."""
    return ended(
        Outcome.FAILED_INFRA,
        "SubmitQueueUnattended",
        f"no worker took the create from task queue {model.submit_queue!r} within "
        f"{model.create_schedule_to_start_seconds:g}s: start a worker that polls it, or make "
        "temporal.submit_task_queue name the queue your workers poll",
    )
