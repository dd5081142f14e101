"""Routing: which model a job runs on, and whether it may run at all.

resolve (alias -> route, model ID, limits, price, submit queue; pinned in history) -> check
references -> ask the model's breaker (it may route to a fallback) -> check the budget before
every create. After sustained failures the attempts policy calls `fall_back`.
"""

from __future__ import annotations

from temporalio.exceptions import ActivityError
from temporalio.workflow import unsafe

with unsafe.imports_passed_through():
    from seedance_pipeline.core import error_types as et
    from seedance_pipeline.core.budget import BudgetCheckInput, BudgetRelease
    from seedance_pipeline.core.models import (
        CheckReferencesInput,
        ChooseModelInput,
        ErrorInfo,
        Outcome,
        ReportHealthInput,
        ResolvedModel,
        ResolveInput,
    )
    from seedance_pipeline.workflows import activity_options as opts
    from seedance_pipeline.workflows import activity_stubs as stubs
    from seedance_pipeline.workflows.generation.ending import JobEnded, ended, error_from
    from seedance_pipeline.workflows.generation.job import Job


async def resolve(job: Job, alias: str | None = None) -> ResolvedModel:
    """Resolve the request's model (or `alias`, a fallback) and record it on the job."""
    try:
        ask = ResolveInput(job_id=job.job_id, request=job.inp.request, alias=alias)
        model = await opts.call_local(stubs.resolve_model, ask, opts.RESOLVE)
    except ActivityError as err:
        kind, info, _ = error_from(err)
        info.source = "validation"
        bad_request = kind in et.REQUEST_PROBLEMS
        raise JobEnded(
            Outcome.FAILED_INPUT if bad_request else Outcome.FAILED_INFRA, info
        ) from None
    job.model = model
    job.book.use_model(model, fallback=alias is not None)
    return model


async def check_references(job: Job, model: ResolvedModel) -> None:
    """Each reference fetched, typed, sized and hashed before any paid call."""
    if not job.inp.request.references or not model.check_references:
        return
    check = CheckReferencesInput(job_id=job.job_id, request=job.inp.request)
    try:
        job.book.record.references_checked = await opts.call(
            stubs.check_references, check, opts.REFERENCES
        )
    except ActivityError as err:
        _, info, _ = error_from(err)
        info.source = "validation"
        raise JobEnded(Outcome.FAILED_INPUT, info) from None


async def route_by_breaker(job: Job, model: ResolvedModel) -> tuple[ResolvedModel, bool]:
    """Ask the model's breaker (and the fallbacks') which model this job may use."""
    job.breaker = model.breaker
    if not job.breaker:
        return model, False
    ask = ChooseModelInput(job_id=job.job_id, alias=model.alias)
    try:
        choice = await opts.call_local(stubs.choose_model, ask, opts.BREAKER)
    except ActivityError as err:
        job.book.note(f"breaker unavailable ({error_from(err)[1].message}); using {model.alias}")
        return model, False
    states = ", ".join(f"{k}={v}" for k, v in choice.states.items())
    job.book.note(
        f"breakers: {states}; {choice.decided_by} routed to {choice.alias}"
        + (" as a probe" if choice.probe else "")
        + (f" ({choice.reason})" if choice.reason else "")
    )
    if choice.alias != model.alias:
        model = await resolve(job, alias=choice.alias)
    return model, choice.probe


async def report(
    job: Job, model: ResolvedModel, *, ok: bool, probe: bool, code: str | None = None
) -> None:
    """Tell the model's breaker about an infrastructure outcome (never fails the job)."""
    if not job.breaker:
        return
    outcome = ReportHealthInput(
        job_id=job.job_id, alias=model.alias, ok=ok, probe=probe, error_code=code
    )
    try:
        await opts.call(stubs.report_health, outcome, opts.BREAKER)
    except ActivityError as err:
        job.book.note(f"breaker report lost: {error_from(err)[1].message}")


async def fall_back(job: Job, model: ResolvedModel, error: ErrorInfo) -> ResolvedModel:
    """The next model of the chain, or the end of the job when there is none."""
    if not model.fallback:
        raise JobEnded(Outcome.FAILED_INFRA, error)
    job.book.note(f"falling back from {model.alias} to {model.fallback} after {error.code}")
    return await resolve(job, alias=model.fallback)


async def check_budget(job: Job, model: ResolvedModel) -> None:
    """Refuse the job, before any paid call, when it would pass a spending cap."""
    if not model.budgeted:
        return
    job.budget_held = True
    check = BudgetCheckInput(
        job_id=job.job_id,
        route=model.route,
        currency=model.currency,
        estimate=model.estimated_cost,
        at=job.book.now(),
        tenant=job.inp.tenant,
    )
    verdict = await opts.call(stubs.check_budget, check, opts.RECORD)
    if not verdict.allowed:
        raise ended(Outcome.FAILED_QUOTA, "BudgetExceeded", verdict.message)


async def release_budget(job: Job) -> None:
    if job.budget_held:
        await opts.call(stubs.release_budget, BudgetRelease(job_id=job.job_id), opts.RECORD)
