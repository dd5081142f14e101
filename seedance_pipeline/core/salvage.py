"""Salvage: the follower input for a billed success the reconcile found not whole.

The scheduled reconcile (`workflows.reconcile`) compares the provider's task list with the
ledger and the stored objects. A succeeded, billed task without its ledger row, with a row that
records fewer tokens than the provider bills, or without its stored video, is still worth
everything while its URL lives: a follower (`workflows.follow_task`, marked `salvage`) reads
it, records the provider's tokens in the create's row and stores the video, last frame and
manifest in the run's `followed-<submit>/` folder.

A task some job owns is salvaged into that job's run, from the job's own record (its request,
its create's price). A task no job owns (an orphan) is recorded as an unattributed billed task
and its video kept under `orphan-<task ID>/`, with a manifest that says its request is unknown.
The builders are pure; `activities.salvage` reads the records and starts the followers.
"""

from __future__ import annotations

from datetime import UTC, datetime

from seedance_pipeline.core.follow import FollowProgress, FollowTaskInput, FollowTiming, handover
from seedance_pipeline.core.models import (
    Attempt,
    GenerationRequest,
    JobRecord,
    ProviderTask,
)
from seedance_pipeline.core.pricing import unit_price
from seedance_pipeline.core.reconcile import Finding
from seedance_pipeline.core.settings import PollingSettings, RouteSettings, Settings

ORPHAN_JOB_PREFIX = "orphan-"
"""An orphan's outputs live under `orphan-<task ID>/` (no job ever owned them)."""


class NotSalvageable(Exception):
    """Why this finding cannot be salvaged now (the message is the report's note)."""


def route_timing(route: RouteSettings, polling: PollingSettings) -> FollowTiming:
    """A salvage's URL lifetime, retention and polling, from the route's settings of today."""
    return FollowTiming(
        currency=route.currency,
        url_lifetime_seconds=route.output_url_seconds,
        task_retention_seconds=route.task_retention_seconds,
        poll_first_seconds=polling.min_interval_seconds,
        poll_max_seconds=polling.max_interval_seconds,
        poll_backoff=polling.backoff,
    )


def for_job(
    finding: Finding, record: JobRecord, task: ProviderTask, timing: FollowTiming
) -> FollowTaskInput:
    """Salvage into the owning job's run: its record names the create and its price."""
    if record.request is None:
        raise NotSalvageable(f"job {record.job_id}'s record has no request")
    attempt = _attempt(finding, record, task)
    inp = handover(
        record,
        attempt,
        timing,
        record.request,
        reason=f"salvaged by reconcile ({finding.kind})",
        last_seen=task,
    )
    return inp.model_copy(update={"salvage": True})


def _attempt(finding: Finding, record: JobRecord, task: ProviderTask) -> Attempt:
    by_task = [a for a in record.attempts if a.provider_task_id == task.id]
    if by_task:
        return by_task[-1]
    by_no = [a for a in record.attempts if a.submit_no == finding.submit_no]
    if by_no and by_no[-1].provider_task_id is None:  # an ambiguous create's own task
        return by_no[-1].model_copy(update={"provider_task_id": task.id})
    run = record.run or "-"
    raise NotSalvageable(f"job {record.job_id} run {run} records no create of task {task.id}")


def for_orphan(
    task: ProviderTask, route_name: str, settings: Settings, timing: FollowTiming
) -> FollowTaskInput:
    """An orphan: recorded as unattributed (no candidates), its video stored on its own."""
    alias, price = _priced(task, route_name, settings)
    created = datetime.fromtimestamp(task.created_at or task.updated_at or 0, UTC)
    return FollowTaskInput(
        job_id=f"{ORPHAN_JOB_PREFIX}{task.id}",
        submit_no=0,
        route=route_name,
        task_id=task.id,
        model_alias=alias,
        model_id=task.model,
        unit_price=price,
        currency=timing.currency,
        request=GenerationRequest(prompt="", model_id=task.model or None),
        requested_at=created,
        accepted_at=created,
        reason="salvaged by reconcile: a billed task no job owns (its request is unknown)",
        resolution=task.resolution,
        ratio=task.ratio,
        duration=task.duration,
        unattributed_candidates=[],
        salvage=True,
        progress=FollowProgress(last_seen=task),
        **timing.fields(),
    )


def _priced(task: ProviderTask, route_name: str, settings: Settings) -> tuple[str, float]:
    """The alias and unit price of the task's model on the route (0: no price configured)."""
    for alias, spec in settings.models.items():
        if spec.ids.get(route_name) != task.model:
            continue
        resolution = task.resolution or spec.default_resolution
        flex = task.service_tier == "flex"
        price = spec.prices.get(route_name)
        return alias, unit_price(price, resolution, video_input=False, flex=flex)
    return task.model, 0.0
