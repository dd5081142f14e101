"""TaskFollowerWorkflow: follow one provider task to its end after its job has ended.

    read the task (slow poll on timers) -> terminal, gone, or past its own expiry
      -> release the capacity slot -> record the bill -> store a success -> result

One follower per provider task: its workflow ID is `task-follower:<route>:<task ID>`
(`core.follow.follower_id`), so a job that hands the same task over twice, or two jobs that
both think a task is theirs, start one follower. Between reads it holds no activity slot: each
read is one short `get_task` (a few quick retries), and the waits are workflow timers that
back off to the job's slowest poll and honour the provider's `Retry-After`. A GET outage of
hours is waited out; the follower stops reading only when the task is terminal, when the
provider twice says it has no such task, or past the task's own `execution_expires_after`
(plus a margin) or the route's retention, whichever comes first. Long follows continue as new
with their progress, so the history stays short.

What it records and stores is in `workflows.follow_settle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from seedance_pipeline.core import error_types as et
    from seedance_pipeline.core.capacity import CapacityRelease
    from seedance_pipeline.core.follow import (
        GONE_AFTER_NOT_FOUND,
        POLLS_PER_RUN,
        FollowerView,
        FollowTaskInput,
        FollowTaskResult,
        give_up_at,
    )
    from seedance_pipeline.core.models import ProviderTask, TaskRef
    from seedance_pipeline.workflows import activity_options as opts
    from seedance_pipeline.workflows import activity_stubs as stubs
    from seedance_pipeline.workflows import signals
    from seedance_pipeline.workflows.follow_settle import How, settle

MIN_WAIT_SECONDS = 1.0
"""The server fires timers with about a second of resolution; shorter waits buy nothing."""


@dataclass(frozen=True)
class Settled:
    how: How
    task: ProviderTask | None
    """The task as last seen (None: never read successfully)."""


@workflow.defn(name="TaskFollowerWorkflow")
class TaskFollowerWorkflow:
    @workflow.init
    def __init__(self, inp: Any) -> None:
        # Validated here, not by the SDK: a follower started by hand with a malformed input
        # fails with the reason instead of failing its first workflow task forever.
        try:
            self._inp: FollowTaskInput | None = FollowTaskInput.model_validate(inp)
            self._problem = ""
        except ValidationError as exc:
            self._inp, self._problem = None, f"{exc.error_count()} problems: {_fields(exc)}"
        self._result: FollowTaskResult | None = None

    @workflow.query
    def status(self) -> FollowerView:
        inp = self._inp
        if inp is None:
            return FollowerView(problem=self._problem)
        return FollowerView(
            task_id=inp.task_id,
            job_id=inp.job_id,
            run=inp.run,
            submit_no=inp.submit_no,
            reason=inp.reason,
            progress=inp.progress,
            result=self._result,
        )

    @workflow.run
    async def run(self, inp: Any) -> FollowTaskResult:
        follow = self._inp
        if follow is None:
            raise ApplicationError(
                f"invalid task follower input: {self._problem}",
                type=et.FOLLOWER_INPUT_INVALID,
                non_retryable=True,
            )
        if follow.progress.started_at is None:
            follow.progress.started_at = workflow.now()
        settled = await until_settled(follow)
        await release_capacity(follow)
        self._result = await settle(follow, settled.task, settled.how)
        return self._result


async def until_settled(inp: FollowTaskInput) -> Settled:
    """Read the task until it is terminal, provably gone, or past its bound."""
    progress = inp.progress
    progress.interval_seconds = progress.interval_seconds or inp.poll_first_seconds
    reads = 0
    while True:
        task, retry_after = await read(inp)
        reads += 1
        if task is not None and task.terminal:
            return Settled("terminal", task)
        if progress.not_found >= GONE_AFTER_NOT_FOUND:
            note(inp, f"the provider no longer knows task {inp.task_id}; gone")
            return Settled("gone", progress.last_seen)
        left = (give_up_at(inp) - workflow.now()).total_seconds()
        if left <= 0:
            note(inp, f"task {inp.task_id} still {_status(progress.last_seen)} past its bound")
            return Settled("bound", progress.last_seen)
        if reads >= POLLS_PER_RUN or workflow.info().is_continue_as_new_suggested():
            workflow.continue_as_new(inp)
        wait = min(max(progress.interval_seconds, retry_after), left)
        await workflow.sleep(timedelta(seconds=max(wait, MIN_WAIT_SECONDS)))
        progress.interval_seconds = min(
            max(progress.interval_seconds * inp.poll_backoff, inp.poll_first_seconds),
            inp.poll_max_seconds,
        )


async def read(inp: FollowTaskInput) -> tuple[ProviderTask | None, float]:
    """One GET: (the task, 0) or (None, the provider's Retry-After in seconds, else 0)."""
    progress = inp.progress
    ref = TaskRef(job_id=inp.job_id, route=inp.route, task_id=inp.task_id)
    try:
        task = await opts.call(stubs.get_task, ref, opts.POLL_GET)
    except ActivityError as err:
        cause = err.cause
        kind = cause.type if isinstance(cause, ApplicationError) else type(cause).__name__
        if kind == et.PROVIDER_TASK_NOT_FOUND:
            progress.not_found += 1
            return None, 0.0
        progress.not_found = 0
        progress.get_failures += 1
        if progress.get_failures in (1, 10, 100, 1000):
            note(inp, f"reading task {inp.task_id} failed ({kind}); still following")
        delay = cause.next_retry_delay if isinstance(cause, ApplicationError) else None
        return None, delay.total_seconds() if delay else 0.0
    progress.polls += 1
    progress.not_found = 0
    progress.last_seen = task
    return task, 0.0


async def release_capacity(inp: FollowTaskInput) -> None:
    """The provider slot this task held is free: tell the account's capacity gate.

    Called exactly once, as soon as the task no longer runs at the provider (terminal, gone,
    or past its own expiry) and before any copy, which needs no provider slot. The job handed
    its slot over with the task; a gate that is gone has no slot to free."""
    if inp.capacity_gate_id is None or inp.capacity_holder_id is None:
        return
    release = CapacityRelease(job_id=inp.capacity_holder_id, task_id=inp.task_id)
    if not await signals.signal(inp.capacity_gate_id, "release", release):
        note(inp, f"capacity gate {inp.capacity_gate_id} is gone; no slot to release")
        return
    note(inp, f"capacity slot of {inp.capacity_holder_id} released at {inp.capacity_gate_id}")


def note(inp: FollowTaskInput, text: str) -> None:
    inp.progress.notes.append(text)


def _status(task: ProviderTask | None) -> str:
    return task.status if task is not None else "unread"


def _fields(exc: ValidationError) -> str:
    """Which fields are wrong and why, never their values."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}"
        for err in exc.errors(include_url=False, include_input=False)[:5]
    )
