"""Finish: record what the provider billed, release the budget hold, write the manifest, and
publish the final state, whatever the outcome. Cancellation (Temporal's own, from the CLI or
the Web UI) deletes a still-queued provider task first.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
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
    from seedance_pipeline.workflows.generation import capacity, metrics, routing, wait
    from seedance_pipeline.workflows.generation.ending import error_from, pipeline_error
    from seedance_pipeline.workflows.generation.job import Job


async def close(job: Job, outcome: Outcome, error: ErrorInfo | None) -> None:
    book = job.book
    rec = book.record
    task_may_run = rec.provider_task_id is not None and rec.provider_status not in TERMINAL
    await capacity.release(job, job.model, still_running=task_may_run)
    book.close(outcome, error)
    for attempt in book.record.attempts:
        if attempt.provider_task_id is not None:
            await opts.call(stubs.record_cost, ledger_entry(job, attempt), opts.RECORD)
    await routing.release_budget(job)
    await _write_manifest(job)
    book.final_state()
    metrics.job_finished(book.record)
    await _notify_application(job)


async def cancelled(job: Job) -> None:
    """Temporal cancel: delete a queued provider task; a running one cannot be cancelled."""
    rec, model = job.book.record, job.model
    message = "cancelled by request"
    if model is not None and rec.provider_task_id and not job.book.finished:
        if rec.provider_status in (None, "queued"):
            deleted = await wait.cancel_provider_task(job, model)
            message += (
                "; provider task deleted while queued"
                if deleted
                else "; the provider refused the cancel and may still bill the task"
            )
        else:
            message += "; the provider task was running and may still be billed"
    await close(job, Outcome.CANCELLED, pipeline_error("Cancelled", message))


def ledger_entry(job: Job, attempt: Attempt) -> LedgerEntry:
    """One row per create the provider may bill, at the attempt's own price."""
    rec = job.book.record
    latest = attempt.provider_task_id == rec.provider_task_id
    finished = rec.finished_at or job.book.now()
    return LedgerEntry(
        job_id=rec.job_id,
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
        manifest=build_manifest(rec, job.inp.request),
        requested_at=rec.requested_at or job.book.now(),
    )
    try:
        rec.manifest_uri = (await opts.call(stubs.write_manifest, write, opts.RECORD)).uri
    except ActivityError as err:
        job.book.note(f"manifest not written: {error_from(err)[1].message}")
