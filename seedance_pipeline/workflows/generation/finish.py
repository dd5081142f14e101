"""Finish: record what the provider billed, release the budget hold, write the manifest, and
publish the final state, whatever the outcome. Cancellation (Temporal's own, from the CLI or
the Web UI) deletes a still-queued provider task first.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core import error_types as et
    from seedance_pipeline.core.app_webhooks import completion_webhook
    from seedance_pipeline.core.manifest import build_manifest
    from seedance_pipeline.core.models import TERMINAL_PROVIDER_STATUSES as TERMINAL
    from seedance_pipeline.core.models import (
        Attempt,
        ErrorInfo,
        LedgerEntry,
        ManifestInput,
        Outcome,
        WebhookDelivery,
    )
    from seedance_pipeline.core.pricing import cost
    from seedance_pipeline.workflows import activity_options as opts
    from seedance_pipeline.workflows import activity_stubs as stubs
    from seedance_pipeline.workflows.generation import capacity, handover, metrics, routing, wait
    from seedance_pipeline.workflows.generation.ending import error_from, pipeline_error
    from seedance_pipeline.workflows.generation.job import Job


async def close(job: Job, outcome: Outcome, error: ErrorInfo | None) -> None:
    book = job.book
    rec = book.record
    book.close(outcome, error)
    await _follow_what_may_bill(job, outcome, error)
    task_may_run = rec.provider_task_id is not None and rec.provider_status not in TERMINAL
    await capacity.release(job, job.model, still_running=task_may_run)
    for attempt in book.record.attempts:
        if attempt.provider_task_id is not None:
            await _record_cost(job, attempt)
    await routing.release_budget(job)
    await _write_manifest(job)
    book.final_state()
    metrics.job_finished(book.record)
    await _notify_application(job)


async def cancelled(job: Job) -> None:
    """Temporal cancel: delete a queued provider task; a running one (or one whose cancel the
    provider refused) is followed to its end, its bill recorded and its video stored."""
    rec, model = job.book.record, job.model
    message = "cancelled by request"
    if model is not None and rec.provider_task_id and not job.book.finished:
        if rec.provider_status in (None, "queued"):
            deleted = await wait.cancel_provider_task(job, model)
            if deleted:
                rec.provider_status = job.book.attempt.status = "cancelled"
            message += (
                "; provider task deleted while queued"
                if deleted
                else "; the provider refused the cancel: the task is followed to its end"
            )
        else:
            message += "; the provider task was running: it is followed to its end"
    await close(job, Outcome.CANCELLED, pipeline_error("Cancelled", message))


async def _follow_what_may_bill(job: Job, outcome: Outcome, error: ErrorInfo | None) -> None:
    """Every task of this job the provider may still bill goes to a follower."""
    model = job.model
    if model is None:
        return
    await handover.adopt_late_announcements(job, model)
    if handover.task_may_still_bill(job):
        why = f"the job ended {outcome.value}" + (f" ({error.code})" if error else "")
        await handover.to_follower(job, model, why)


async def _record_cost(job: Job, attempt: Attempt) -> None:
    try:
        await opts.call(stubs.record_cost, ledger_entry(job, attempt), opts.RECORD)
    except ActivityError as err:
        kind, info, _ = error_from(err)
        if kind != et.TASK_CLAIMED_ELSEWHERE:
            raise
        job.book.note(f"ledger row of create {attempt.submit_no} refused: {info.message}")


def ledger_entry(job: Job, attempt: Attempt) -> LedgerEntry:
    """One row per create the provider may bill, at the attempt's own price."""
    rec = job.book.record
    latest = attempt.provider_task_id == rec.provider_task_id
    finished = rec.finished_at or job.book.now()
    return LedgerEntry(
        job_id=rec.job_id,
        run=rec.run,
        submit_no=attempt.submit_no,
        route=attempt.route,
        model_alias=attempt.model_alias,
        model_id=attempt.model_id,
        service_tier=job.inp.request.service_tier,
        resolution=rec.resolution,
        ratio=rec.ratio,
        duration=rec.duration,
        provider_task_id=attempt.provider_task_id,
        tokens=attempt.billed_tokens,
        estimated_tokens=rec.estimated_tokens,
        billed=attempt.billed_tokens > 0,
        unit_price=attempt.unit_price,
        currency=attempt.currency or rec.currency or "",
        cost=cost(attempt.billed_tokens, attempt.unit_price),
        outcome=rec.outcome.value if latest and rec.outcome else attempt.status or "unknown",
        error_code=attempt.error.code if attempt.error else None,
        error_message=attempt.error.message if attempt.error else None,
        requested_at=rec.requested_at or finished,
        finished_at=finished,
        tenant=rec.tenant,
    )


async def _notify_application(job: Job) -> None:
    """The signed completion webhook, after the record is final (its outcome, ledger rows and
    manifest are written and published before): the delivery never changes the outcome. Its
    attempts go into the record; the workflow closes once delivered or given up (24 h)."""
    rec = job.book.record
    delivery = completion_webhook(job.inp, rec, workflow.info().run_id)
    if delivery is None:
        return
    try:
        result = await opts.call(stubs.deliver_app_webhook, delivery, opts.APP_WEBHOOK)
    except ActivityError as err:
        cause = err.cause
        details = cause.details if isinstance(cause, ApplicationError) else ()
        if details and isinstance(details[0], dict):
            attempts = details[0].get("deliveries", [])
            rec.webhook_deliveries = [WebhookDelivery.model_validate(d) for d in attempts]
        job.book.note(f"completion webhook not delivered: {error_from(err)[1].message}")
        return
    rec.webhook_deliveries = result.deliveries


async def _write_manifest(job: Job) -> None:
    rec = job.book.record
    write = ManifestInput(
        job_id=rec.job_id,
        run=rec.run,
        manifest=build_manifest(rec, job.inp.request),
        requested_at=rec.requested_at or job.book.now(),
    )
    try:
        rec.manifest_uri = (await opts.call(stubs.write_manifest, write, opts.RECORD)).uri
    except ActivityError as err:
        job.book.note(f"manifest not written: {error_from(err)[1].message}")
