"""Salvage the reconcile's salvageable findings: start a follower for each (`core.salvage`).

Part of the reconcile activity (it holds the listed tasks). Before it starts anything it makes
sure nobody else is on the task: a job that is still running stores and records its own
outputs, and a follower that is still running is already salvaging. A salvage that ran already
(its workflow ID is per task) did what could be done while the URL lived: the finding stays,
with a note, for an operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from seedance_pipeline.activities.followers import start_follower
from seedance_pipeline.core.follow import follower_id
from seedance_pipeline.core.models import JobRecord, ProviderTask
from seedance_pipeline.core.reconcile import Finding
from seedance_pipeline.core.salvage import NotSalvageable, for_job, for_orphan, route_timing
from seedance_pipeline.core.settings import Settings

log = structlog.get_logger(__name__)


@dataclass
class Salvaged:
    started: list[str] = field(default_factory=list)
    """Follower workflow IDs now recording and storing a finding's task."""
    task_ids: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


class Salvager:
    def __init__(self, client: Client, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self._queue = settings.temporal.task_queue

    async def salvage(
        self, route: str, findings: list[Finding], tasks: Mapping[str, ProviderTask]
    ) -> Salvaged:
        done = Salvaged()
        for finding in findings:
            task = tasks.get(finding.task_id or "")
            if not finding.salvageable or task is None:
                continue
            try:
                await self._one(route, finding, task, done)
            except NotSalvageable as exc:
                done.notes.append(f"task {task.id}: not salvaged: {exc}")
        return done

    async def _one(self, route: str, finding: Finding, task: ProviderTask, done: Salvaged) -> None:
        await self._nobody_else_on(route, finding, task)
        timing = route_timing(self._settings.route(route), self._settings.polling)
        if finding.job_id:
            inp = for_job(finding, await self._record(finding), task, timing)
        else:
            inp = for_orphan(task, route, self._settings, timing)
        started = await start_follower(self._client, self._queue, inp)
        if started.existed:
            raise NotSalvageable(
                f"its salvage {started.workflow_id} ran already and could not fix it"
            )
        done.started.append(started.workflow_id)
        done.task_ids.add(task.id)
        log.warning(
            "reconcile.salvage_started",
            kind=finding.kind,
            task_id=task.id,
            job_id=finding.job_id,
            workflow_id=started.workflow_id,
        )

    async def _nobody_else_on(self, route: str, finding: Finding, task: ProviderTask) -> None:
        """A running job or follower of the task is still doing this work."""
        watchers = [
            follower_id(route, task.id),
            follower_id(route, task.id, unattributed=True),
            follower_id(route, task.id, salvage=True),
        ]
        if finding.job_id:
            watchers.insert(0, finding.job_id)
        for workflow_id in watchers:
            run = finding.run if workflow_id == finding.job_id else None
            if await self._running(workflow_id, run):
                raise NotSalvageable(f"{workflow_id} is still running and on it")

    async def _running(self, workflow_id: str, run: str | None) -> bool:
        try:
            described = await self._client.get_workflow_handle(workflow_id, run_id=run).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise NotSalvageable(f"cannot tell whether {workflow_id} runs: {exc.message}") from None
        return described.status == WorkflowExecutionStatus.RUNNING

    async def _record(self, finding: Finding) -> JobRecord:
        """The job's record (a query: a closed job answers from its history on this worker)."""
        job_id = finding.job_id or ""
        handle = self._client.get_workflow_handle(job_id, run_id=finding.run or None)
        try:
            record: JobRecord = await handle.query("status", result_type=JobRecord)
        except (RPCError, WorkflowQueryFailedError) as exc:
            raise NotSalvageable(f"cannot read job {job_id}'s record: {exc}") from None
        return record
