"""The scheduled reconcile: one Temporal Schedule per route that starts `ReconcileWorkflow`.

The worker keeps them (`ensure_reconcile_schedules` at start): it is where the keys are, and
the settings it runs with say how often (`[reconcile] every_minutes`, 0 removes them). Create
or update is idempotent, so every worker replica may do it at start; the schedule ID names the
task queue as well as the route, so stacks that share a namespace keep their own. Overlapping
runs are skipped (a slow provider listing never piles up), and each run's report stays in its
workflow's history: `starter.py reconcile --last` prints the latest.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from seedance_pipeline.core.reconcile import ReconcileInput
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.workflows.reconcile import ReconcileWorkflow

log = structlog.get_logger(__name__)

RUN_TIMEOUT = timedelta(minutes=15)
"""Listing a retention window of tasks page by page takes minutes at most."""


def schedule_id(task_queue: str, route: str) -> str:
    return f"reconcile:{task_queue}:{route}"


def workflow_id_prefix(task_queue: str, route: str) -> str:
    """The scheduled runs' workflow IDs start with this (Temporal appends the run's time)."""
    return f"reconcile-scheduled:{task_queue}:{route}"


def reconcile_schedule(settings: Settings, route: str) -> Schedule:
    config = settings.reconcile
    queue = settings.temporal.task_queue
    data = ReconcileInput(
        route=route, grace_seconds=config.grace_minutes * 60, salvage=config.salvage
    )
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReconcileWorkflow.run,
            data,
            id=workflow_id_prefix(queue, route),
            task_queue=queue,
            execution_timeout=RUN_TIMEOUT,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=_every(settings))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


def _every(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.reconcile.every_minutes)


async def ensure_reconcile_schedules(client: Client, settings: Settings) -> list[str]:
    """Create or update one schedule per route; with `every_minutes = 0`, delete them."""
    queue = settings.temporal.task_queue
    kept: list[str] = []
    for route in sorted(settings.routes):
        sid = schedule_id(queue, route)
        if settings.reconcile.every_minutes <= 0:
            await _delete(client, sid)
            continue
        await _create_or_update(client, sid, reconcile_schedule(settings, route))
        kept.append(sid)
    if kept:
        log.info("reconcile.scheduled", schedules=kept, every=str(_every(settings)))
    return kept


async def _create_or_update(client: Client, sid: str, schedule: Schedule) -> None:
    try:
        await client.create_schedule(sid, schedule)
    except ScheduleAlreadyRunningError:

        def replace(current: ScheduleUpdateInput) -> ScheduleUpdate:
            schedule.state = current.description.schedule.state  # an operator's pause stays
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(sid).update(replace)


async def _delete(client: Client, sid: str) -> None:
    try:
        await client.get_schedule_handle(sid).delete()
    except RPCError as exc:
        if exc.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.UNIMPLEMENTED):
            raise
