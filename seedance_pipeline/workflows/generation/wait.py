"""Wait: follow the job's provider task until it ends.

Callbacks first: they arrive as signals and move the book forward (a terminal one only makes
the wait confirm it with a GET). A slow poll on workflow timers repairs missed callbacks, with
no activity slot held between polls. The model's deadlines bound the wait (counted from the
provider's acceptance); past one the job reads the task once more, cancels it if still queued,
and ends with the deadline named.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core import error_types as et
    from seedance_pipeline.core.models import Outcome, ProviderTask, ResolvedModel, TaskRef
    from seedance_pipeline.workflows import activity_options as opts
    from seedance_pipeline.workflows import activity_stubs as stubs
    from seedance_pipeline.workflows.generation import metrics
    from seedance_pipeline.workflows.generation.ending import (
        JobEnded,
        ended,
        error_from,
        invariant_broken,
    )
    from seedance_pipeline.workflows.generation.job import Job


async def until_terminal(job: Job, model: ResolvedModel) -> ProviderTask:
    """The task in a terminal state (succeeded, failed, expired, cancelled)."""
    book, inbox = job.book, job.inbox
    accepted = book.now()
    interval = model.poll_first_seconds
    while True:
        timeout = max(
            0.0, min(interval, (_deadline(job, model, accepted) - book.now()).total_seconds())
        )
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: inbox.look_now, timeout=timedelta(seconds=timeout)
            )
        confirming = inbox.terminal_hint
        inbox.looked()
        task = await read_task(job, model)
        if task is not None:
            _count_read(job, task, confirming=confirming)
            if task.terminal:
                return task
        if book.now() >= _deadline(job, model, accepted):
            return await past_deadline(job, model, task)
        interval = min(
            max(interval * model.poll_backoff, model.poll_min_seconds), model.poll_max_seconds
        )


def _count_read(job: Job, task: ProviderTask, *, confirming: bool) -> None:
    book = job.book
    if confirming:
        book.record.confirm_gets += 1  # one GET to confirm an unsigned terminal callback
    else:
        book.record.polls += 1
    if book.apply(task) and task.status == "running":
        metrics.provider_started(book.record, task)


async def read_task(job: Job, model: ResolvedModel) -> ProviderTask | None:
    """GET the job's task; None while the provider cannot answer (an outage outlasting the
    activity's retries keeps the job waiting within its deadlines, never ends it). A final
    answer (the task is gone, the key refused) ends the job."""
    try:
        return await opts.call(stubs.get_task, _ref(job, model), opts.GET)
    except ActivityError as err:
        kind, info, outcome = error_from(err)
        if kind in et.FINAL_GET_ERRORS:
            raise JobEnded(outcome, info) from None
        job.book.note(f"the provider did not answer a GET ({info.code}); still waiting")
        return None


def _deadline(job: Job, model: ResolvedModel, accepted: datetime) -> datetime:
    queued = job.book.record.provider_status == "queued"
    seconds = model.queue_deadline_seconds if queued else model.execution_deadline_seconds
    return accepted + timedelta(seconds=seconds) + job.inbox.extension


async def past_deadline(job: Job, model: ResolvedModel, task: ProviderTask | None) -> ProviderTask:
    """Read once more, cancel a still-queued task, and end the job naming the deadline (a task
    that may still run goes to a follower when the job finishes)."""
    task = task or await read_task(job, model)
    status = task.status if task else (job.book.record.provider_status or "unknown")
    which = "queue" if status == "queued" else "execution"
    task_id = job.book.record.provider_task_id
    message = f"provider task {task_id} still {status} past the {which} deadline"
    if status == "queued":
        cancelled = await cancel_provider_task(job, model)
        message += "; cancelled at the provider" if cancelled else "; cancel refused"
    else:
        message += "; the provider cannot cancel a running task and may still bill it"
    job.book.note(message)
    raise ended(Outcome.FAILED_INFRA, f"{which.capitalize()}DeadlineExceeded", message)


async def cancel_provider_task(job: Job, model: ResolvedModel) -> bool:
    """DELETE the task while it is queued; False when the provider refuses."""
    if job.book.record.provider_task_id is None:
        return False
    return await opts.call(stubs.cancel_task, _ref(job, model), opts.CANCEL)


def _ref(job: Job, model: ResolvedModel) -> TaskRef:
    task_id = job.book.record.provider_task_id
    if task_id is None:
        raise invariant_broken("a GET or cancel before the provider took the create")
    return TaskRef(job_id=job.job_id, route=model.route, task_id=task_id)
