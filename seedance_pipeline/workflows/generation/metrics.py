"""The job's metrics, through the workflow's meter (the SDK does not emit them on replay)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core import metric_names as names
    from seedance_pipeline.core.models import JobRecord, Outcome, ProviderTask


def provider_started(rec: JobRecord, task: ProviderTask) -> None:
    """How long the task sat in the provider's queue."""
    if task.created_at and task.updated_at:
        workflow.metric_meter().create_histogram_float(
            names.PROVIDER_QUEUE_SECONDS, "provider created -> running", "s"
        ).record(max(0, task.updated_at - task.created_at), {"model": rec.model_alias or "unknown"})


def job_finished(rec: JobRecord) -> None:
    meter = workflow.metric_meter()
    tags = {
        "outcome": rec.outcome.value if rec.outcome else "unknown",
        "model": rec.model_alias or "unknown",
        "route": rec.route or "unknown",
    }
    meter.create_counter(names.JOBS, "finished jobs").add(1, tags)
    if rec.requested_at and rec.finished_at:
        meter.create_histogram_float(names.JOB_SECONDS, "request to record", "s").record(
            (rec.finished_at - rec.requested_at).total_seconds(), tags
        )
    _billed(rec)
    if rec.provider_created_at and rec.provider_updated_at and rec.outcome == Outcome.SUCCEEDED:
        meter.create_histogram_float(
            names.PROVIDER_RUN_SECONDS, "provider created -> done", "s"
        ).record(
            (rec.provider_updated_at - rec.provider_created_at).total_seconds(),
            {"model": tags["model"]},
        )
    _callbacks(rec)


def _billed(rec: JobRecord) -> None:
    if rec.cost is None or not any(a.billed_tokens > 0 for a in rec.attempts):
        return
    meter = workflow.metric_meter()
    money = {
        "route": rec.route or "unknown",
        "model": rec.model_alias or "unknown",
        "currency": rec.currency or "unknown",
    }
    meter.create_histogram_float(names.COST, "cost per billed job").record(rec.cost, money)
    meter.create_counter(names.VIDEO_SECONDS, "seconds of video billed").add(
        max(0, rec.duration or 0), {"route": money["route"], "model": money["model"]}
    )


def _callbacks(rec: JobRecord) -> None:
    if not rec.callbacks_received:
        return
    counter = workflow.metric_meter().create_counter(names.CALLBACKS, "callbacks received")
    counter.add(rec.callbacks_received - rec.callbacks_ignored, {"result": "accepted"})
    if rec.callbacks_ignored:
        counter.add(rec.callbacks_ignored, {"result": "ignored"})
