"""Wait: follow the job's provider task until it ends.

Callbacks first: they arrive as signals and move the book forward (a terminal one only makes
the wait confirm it with a GET, or with the provider's list when the GET gets no usable
answer). A slow poll on workflow timers repairs missed callbacks, with
no activity slot held between polls. A GET the provider does not answer is a note and another
wait, never the end. The model's deadlines bound the wait (counted from the provider's
acceptance): past the queue deadline a still-queued task is cancelled (a refused cancel means it
runs: the wait goes on to the execution deadline); past the execution deadline the job ends
naming it, and its task goes to a follower. A task the provider cannot be asked about at a
deadline is not judged unseen: the job waits on, up to the task's own expiry.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core import error_types as et
    from seedance_pipeline.core.attribution import around
    from seedance_pipeline.core.follow import (
        DEFAULT_EXECUTION_EXPIRES_AFTER,
        EXPIRY_MARGIN_SECONDS,
    )
    from seedance_pipeline.core.models import (
        Outcome,
        ProviderTask,
        ResolvedModel,
        TaskRef,
    )
    from seedance_pipeline.workflows import activity_options as opts
    from seedance_pipeline.workflows import activity_stubs as stubs
    from seedance_pipeline.workflows.generation import capacity, metrics
    from seedance_pipeline.workflows.generation.ending import (
        JobEnded,
        ended,
        error_from,
        invariant_broken,
    )
    from seedance_pipeline.workflows.generation.job import Job


NOTED_FAILURES = frozenset({1, 2, 10, 100, 1000})
"""Unanswered reads worth a note: the first ones and then each order of magnitude, so an
outage of hours does not grow the record by a note a poll."""


async def until_terminal(job: Job, model: ResolvedModel) -> ProviderTask:
    """The task in a terminal state (succeeded, failed, expired, cancelled)."""
    book, inbox = job.book, job.inbox
    clock = Deadlines(accepted=book.now())
    interval = model.poll_first_seconds
    while True:
        left = (clock.next(job, model) - book.now()).total_seconds()
        timeout = min(interval, left) if left > 0 else interval  # past it: wait on, unjudged
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: inbox.look_now, timeout=timedelta(seconds=timeout)
            )
        confirming = inbox.terminal_hint
        inbox.looked()
        task = await read_task(job, model)
        if task is None and confirming:
            task = await listed_task(job, model)  # a terminal callback the GET cannot confirm
        if task is not None:
            _count_read(job, task, confirming=confirming)
            if task.terminal:
                return task
        if book.now() >= clock.next(job, model):
            listed = await past_deadline(job, model, task, clock)
            if listed is not None:
                return listed
        interval = min(
            max(interval * model.poll_backoff, model.poll_min_seconds), model.poll_max_seconds
        )


@dataclass
class Deadlines:
    """The wait's bounds, counted from the provider's acceptance: the queue deadline while the
    task is queued, then the execution deadline (both extendable), and past either, while the
    provider does not answer, the task's own expiry (no job outlives its task)."""

    accepted: datetime
    left_queue: bool = False
    """The provider refused to cancel at the queue deadline: the task runs or has finished."""
    unreadable_noted: bool = False

    def next(self, job: Job, model: ResolvedModel) -> datetime:
        queued = job.book.record.provider_status == "queued" and not self.left_queue
        seconds = model.queue_deadline_seconds if queued else model.execution_deadline_seconds
        return self.accepted + timedelta(seconds=seconds) + job.inbox.extension

    def task_expiry(self, job: Job) -> datetime:
        expires = job.inp.request.execution_expires_after or DEFAULT_EXECUTION_EXPIRES_AFTER
        margin = EXPIRY_MARGIN_SECONDS + job.inbox.extension.total_seconds()
        return self.accepted + timedelta(seconds=expires + margin)


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
    answer (the task is gone, the key refused) ends the job. A read that finds the task
    succeeded has given the job's capacity slot back too."""
    ref = _ref(job, model, release_to=capacity.release_with_read(job, model))
    try:
        task = await opts.call(stubs.get_task, ref, opts.POLL_GET)
    except ActivityError as err:
        kind, info, outcome = error_from(err)
        if kind in et.FINAL_GET_ERRORS:
            raise JobEnded(outcome, info) from None
        rec = job.book.record
        rec.unanswered_gets += 1
        if rec.unanswered_gets in NOTED_FAILURES:
            job.book.note(
                f"the provider did not answer a GET ({info.code}: {info.message[:300]}; "
                f"{rec.unanswered_gets} so far); still waiting"
            )
        return None
    if ref.release_to is not None and task.status == "succeeded":
        capacity.released_by_read(job)
    return task


async def past_deadline(
    job: Job, model: ResolvedModel, task: ProviderTask | None, clock: Deadlines
) -> ProviderTask | None:
    """Classify the task at a deadline (read by GET, else found in the provider's list): a
    terminal one is returned; a still-queued one is cancelled (a refused cancel means it left
    the queue: the wait goes on to the execution deadline); a running one ends the job naming
    the deadline (its follower takes the task when the job finishes). A task the provider
    cannot be asked about at all is not judged: the job keeps waiting, up to its expiry."""
    task = task or await listed_task(job, model)
    if task is not None and task.terminal:
        return task
    status = task.status if task else (job.book.record.provider_status or "unknown")
    which = "queue" if status == "queued" and not clock.left_queue else "execution"
    task_id = job.book.record.provider_task_id
    if task is None:
        _unreadable(job, clock, f"provider task {task_id} (last seen {status})", which)
        return None
    message = f"provider task {task_id} still {status} past the {which} deadline"
    if which == "queue":
        if not await cancel_provider_task(job, model):
            clock.left_queue = True
            job.book.note(f"{message}; cancel refused: it left the queue, waiting on")
            return None
        message += "; cancelled at the provider"
    else:
        message += "; the provider cannot cancel a running task and may still bill it"
    job.book.note(message)
    raise ended(Outcome.FAILED_INFRA, f"{which.capitalize()}DeadlineExceeded", message)


async def listed_task(job: Job, model: ResolvedModel) -> ProviderTask | None:
    """The job's task as the provider's list shows it, when a GET gets no usable answer (an
    outage of one endpoint, a body the client refuses); None when the list cannot say."""
    rec = job.book.record
    find = around(job.job_id, model, rec.submitted_at or job.book.now(), job.book.now())
    try:
        listed = await opts.call(stubs.find_tasks, find, opts.POLL_LIST)
    except ActivityError:
        return None
    found = next((t for t in listed if t.id == rec.provider_task_id), None)
    if found is not None:
        job.book.note(f"task {found.id} read from the provider's list: {found.status}")
        job.book.apply(found)
    return found


def _unreadable(job: Job, clock: Deadlines, what: str, which: str) -> None:
    """Past a deadline while the provider does not answer a GET: note once, end only past the
    task's own expiry (the task may be running or done: it is not judged unseen)."""
    if job.book.now() >= clock.task_expiry(job):
        message = f"{what}: the provider did not answer past the task's own expiry"
        raise ended(Outcome.FAILED_INFRA, et.PROVIDER_UNAVAILABLE, message)
    if not clock.unreadable_noted:
        clock.unreadable_noted = True
        job.book.note(f"{what} past the {which} deadline; the provider does not answer: waiting")


async def cancel_provider_task(job: Job, model: ResolvedModel) -> bool:
    """DELETE the task while it is queued; False when the provider refuses."""
    if job.book.record.provider_task_id is None:
        return False
    return await opts.call(stubs.cancel_task, _ref(job, model), opts.CANCEL)


def _ref(job: Job, model: ResolvedModel, release_to: str | None = None) -> TaskRef:
    task_id = job.book.record.provider_task_id
    if task_id is None:
        raise invariant_broken("a GET or cancel before the provider took the create")
    return TaskRef(job_id=job.job_id, route=model.route, task_id=task_id, release_to=release_to)
