"""The attempts policy: which model to try next, and when to stop.

A task that ends with a retryable infrastructure failure (an internal error, an expiry) is
tried again on the same model up to `task_attempts` times, then the job falls back along the
model's chain; so does a model whose creates keep being refused. Moderation, input and quota
outcomes end the job at once (moderation is never retried automatically). Only infrastructure
outcomes are reported to the model's breaker.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core.models import ErrorInfo, Outcome, ProviderTask, ResolvedModel
    from seedance_pipeline.core.outcomes import classify_task_failure
    from seedance_pipeline.workflows.generation import capacity, routing, submit, wait
    from seedance_pipeline.workflows.generation.ending import CreateExhausted, JobEnded
    from seedance_pipeline.workflows.generation.job import Job


@dataclass(frozen=True)
class Success:
    task: ProviderTask
    model: ResolvedModel
    probe: bool
    """The job was let through a half-open breaker as a probe."""


async def until_success(job: Job, model: ResolvedModel, probe: bool) -> Success:
    """Submit and wait on `model` (then its fallbacks) until a task succeeds; else JobEnded."""
    tries = 0
    while True:
        await routing.check_budget(job, model)
        try:
            await submit.create(job, model)
        except CreateExhausted as exhausted:
            await routing.report(job, model, ok=False, probe=probe, code=exhausted.error.code)
            model, probe, tries = await routing.fall_back(job, model, exhausted.error), False, 0
            continue
        task = await wait.until_terminal(job, model)
        await capacity.release(job, model)  # the provider's slot is free once the task ended
        tries += 1
        if task.status == "succeeded":
            return Success(task, model, probe)
        error = await _failed(job, model, task, probe)
        if tries < model.task_attempts:
            job.book.note(
                f"task {task.id} ended {task.status} ({error.code}); retrying on {model.alias}"
            )
            continue
        model, probe, tries = await routing.fall_back(job, model, error), False, 0


async def _failed(job: Job, model: ResolvedModel, task: ProviderTask, probe: bool) -> ErrorInfo:
    """Record a task that ended without success; end the job unless a retry can help."""
    code = task.error.code if task.error else None
    cls = classify_task_failure(task.status, code)
    error = ErrorInfo(
        code=code or task.status,
        message=task.error.message if task.error else f"provider task ended {task.status}",
    )
    job.book.attempt.error = error
    if cls.outcome == Outcome.FAILED_INFRA:
        await routing.report(job, model, ok=False, probe=probe, code=error.code)
    if not cls.retryable:
        raise JobEnded(cls.outcome, error)
    return error
