"""What a task follower does once its task has settled: record the bill, store a success.

The ledger row is the create's own (job, run, submit number): it replaces the row the job wrote
when it ended (say "cancelled, 0 tokens") with the provider's tokens at the attempt's unit
price, and it is written before any copy, so the money is recorded even while a copy waits out
a flaky host for hours. A succeeded task's video (and last frame, when asked) is then copied
for as long as its URL lives, into the run's `followed-<submit>/` folder, with a manifest
beside it, unless the input says to discard; the row's outcome is updated to what happened.

A follower watching a task no create could prove its own (`unattributed_candidates`) writes no
job's row and stores nothing: a billed task is kept as unattributed, with its candidates, unless
a create has claimed it by then (its owner's row records it). A salvage of an orphan (`salvage`,
no candidates) also stores the video, in the orphan's own folder (`core.salvage`).
"""

from __future__ import annotations

from typing import Literal

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core import error_types as et
    from seedance_pipeline.core.follow import (
        TERMINAL_OUTCOMES,
        FollowOutcome,
        FollowTaskInput,
        FollowTaskResult,
        retention_until,
    )
    from seedance_pipeline.core.manifest import build_followed_manifest
    from seedance_pipeline.core.models import (
        CopyOutputInput,
        LedgerEntry,
        ManifestInput,
        ProviderTask,
        StoredObject,
        TaskRef,
        UnattributedTask,
    )
    from seedance_pipeline.core.pricing import cost
    from seedance_pipeline.workflows import activity_options as opts
    from seedance_pipeline.workflows import activity_stubs as stubs
    from seedance_pipeline.workflows.output_copy import (
        CopyGaveUp,
        Kind,
        Source,
        copy_while_url_lives,
    )

How = Literal["terminal", "gone", "bound"]


async def settle(inp: FollowTaskInput, task: ProviderTask | None, how: How) -> FollowTaskResult:
    """Record, then store; the follower's result."""
    result = _result(inp, task, how)
    if inp.unattributed_candidates is not None:
        return await _unattributed(inp, task, result)
    await record(inp, task, result)
    if result.outcome != FollowOutcome.BILLED or task is None:
        return result
    task = await _store_all(inp, task, result)
    result.outcome = FollowOutcome.STORED if result.video else FollowOutcome.NOT_STORED
    await record(inp, task, result)
    return result


async def _store_all(
    inp: FollowTaskInput, task: ProviderTask, result: FollowTaskResult
) -> ProviderTask:
    """The video, the last frame when asked, and the manifest; the task as last read."""
    result.video, task = await store(inp, task, "video")
    if result.video is not None and inp.request.return_last_frame:
        result.last_frame, task = await store(inp, task, "last_frame")
    if result.video is not None:
        result.manifest_uri = await write_manifest(inp, task, result)
    result.notes = list(inp.progress.notes)
    return task


def _result(inp: FollowTaskInput, task: ProviderTask | None, how: How) -> FollowTaskResult:
    status = task.status if task is not None else None
    succeeded = how == "terminal" and status == "succeeded"
    tokens = task.usage.completion_tokens if succeeded and task and task.usage else 0
    if succeeded:
        outcome = FollowOutcome.BILLED if inp.store else FollowOutcome.DISCARDED
    elif how == "terminal" and status in TERMINAL_OUTCOMES:
        outcome = TERMINAL_OUTCOMES[status]
    else:
        outcome = FollowOutcome.GONE if how == "gone" else FollowOutcome.ABANDONED
    return FollowTaskResult(
        task_id=inp.task_id,
        job_id=inp.job_id,
        run=inp.run,
        submit_no=inp.submit_no,
        outcome=outcome,
        provider_status=status,
        tokens=tokens,
        cost=cost(tokens, inp.unit_price),
        currency=inp.currency,
        polls=inp.progress.polls,
        notes=list(inp.progress.notes),
    )


async def record(inp: FollowTaskInput, task: ProviderTask | None, result: FollowTaskResult) -> None:
    """Upsert the create's ledger row with what the provider billed."""
    entry = ledger_entry(inp, task, result)
    try:
        await opts.call(stubs.record_cost, entry, opts.RECORD)
    except ActivityError as err:
        cause = err.cause
        if not (isinstance(cause, ApplicationError) and cause.type == et.TASK_CLAIMED_ELSEWHERE):
            raise
        _note(inp, result, f"not recorded here: {cause.message}")


async def _unattributed(
    inp: FollowTaskInput, task: ProviderTask | None, result: FollowTaskResult
) -> FollowTaskResult:
    if result.tokens <= 0:
        return result  # not billed: nothing to record
    kept = UnattributedTask(
        task_id=inp.task_id,
        route=inp.route,
        model_id=(task.model if task and task.model else inp.model_id),
        status=result.provider_status or "unknown",
        tokens=result.tokens,
        unit_price=inp.unit_price,
        currency=inp.currency,
        cost=result.cost,
        candidates=list(inp.unattributed_candidates or []),
        note=inp.reason,
        seen_at=workflow.now(),
    )
    recorded = await opts.call(stubs.record_unattributed, kept, opts.RECORD)
    result.outcome = FollowOutcome.UNATTRIBUTED if recorded else FollowOutcome.OWNED_ELSEWHERE
    if recorded and inp.salvage and inp.store and task is not None:
        await _store_all(inp, task, result)  # an orphan's video, kept under its own folder
        result.outcome = FollowOutcome.UNATTRIBUTED
    return result


def ledger_entry(
    inp: FollowTaskInput, task: ProviderTask | None, result: FollowTaskResult
) -> LedgerEntry:
    error = task.error if task is not None else None
    return LedgerEntry(
        job_id=inp.job_id,
        run=inp.run,
        submit_no=inp.submit_no,
        route=inp.route,
        model_alias=inp.model_alias,
        model_id=inp.model_id,
        service_tier=inp.request.service_tier,
        resolution=(task.resolution if task else None) or inp.resolution,
        ratio=(task.ratio if task else None) or inp.ratio,
        duration=(task.duration if task else None) or inp.duration,
        provider_task_id=inp.task_id,
        tokens=result.tokens,
        estimated_tokens=inp.estimated_tokens,
        billed=result.tokens > 0,
        unit_price=inp.unit_price,
        currency=inp.currency,
        cost=result.cost,
        outcome=result.outcome.value,
        error_code=error.code if error else None,
        error_message=error.message if error else None,
        requested_at=inp.requested_at,
        finished_at=workflow.now(),
    )


async def store(
    inp: FollowTaskInput, task: ProviderTask, kind: Kind
) -> tuple[StoredObject | None, ProviderTask]:
    """Copy one output while its URL lives; (None, task) with a note when no copy was possible."""
    base = CopyOutputInput(
        job_id=inp.job_id,
        route=inp.route,
        url="",
        kind=kind,
        requested_at=inp.requested_at,
        run=inp.run,
        followed_submit_no=inp.submit_no,
    )
    source = Source(
        task=task,
        refresh=lambda: _fresh(inp),
        url_lifetime_seconds=inp.url_lifetime_seconds,
        retention_until=retention_until(inp),
    )
    try:
        copied = await copy_while_url_lives(base, source)
    except CopyGaveUp as gave_up:
        inp.progress.notes.append(f"{kind} not stored: {gave_up}")
        return None, task
    return copied.stored, copied.task


async def _fresh(inp: FollowTaskInput) -> ProviderTask | None:
    """The task read again for a fresh URL; None when the provider no longer has it."""
    ref = TaskRef(job_id=inp.job_id, route=inp.route, task_id=inp.task_id)
    try:
        return await opts.call(stubs.get_task, ref, opts.GET)
    except ActivityError as err:
        inp.progress.notes.append(f"fresh URL not available: {err.cause or err}")
        return None


async def write_manifest(
    inp: FollowTaskInput, task: ProviderTask, result: FollowTaskResult
) -> str | None:
    write = ManifestInput(
        job_id=inp.job_id,
        requested_at=inp.requested_at,
        manifest=build_followed_manifest(inp, task, result),
        run=inp.run,
        followed_submit_no=inp.submit_no,
    )
    try:
        return (await opts.call(stubs.write_manifest, write, opts.RECORD)).uri
    except ActivityError as err:
        inp.progress.notes.append(f"manifest not written: {err.cause or err}")
        return None


def _note(inp: FollowTaskInput, result: FollowTaskResult, text: str) -> None:
    inp.progress.notes.append(text)
    result.notes.append(text)
