"""Every run of a job ID, and the task followers a job handed its tasks to: what `status`
lists beside the latest record, so a rerun never hides the first run's video and bill, and a
cancelled job shows the video its follower stored after it ended."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from seedance_pipeline.clients.jobs import job_result
from seedance_pipeline.core.follow import FollowerView
from seedance_pipeline.core.models import JOB_ID_PATTERN, JobRecord

CLOSED_READABLE = (
    WorkflowExecutionStatus.COMPLETED,
    WorkflowExecutionStatus.FAILED,
    WorkflowExecutionStatus.CANCELED,
)


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    status: str
    started_at: datetime | None
    closed_at: datetime | None
    outcome: str | None = None
    video_uri: str | None = None
    manifest_uri: str | None = None
    cost: float | None = None
    currency: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("started_at", "closed_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


async def job_runs(client: Client, job_id: str) -> list[RunSummary]:
    """Every run started under `job_id`, oldest first, with what each produced and cost."""
    if not JOB_ID_PATTERN.fullmatch(job_id):  # never a quote inside the visibility query
        return []
    executions = [e async for e in client.list_workflows(f"WorkflowId = '{job_id}'")]
    runs = await asyncio.gather(*(_summary(client, job_id, e) for e in executions))
    return sorted(runs, key=lambda r: (r.started_at is None, r.started_at))


async def _summary(client: Client, job_id: str, execution: Any) -> RunSummary:
    status = execution.status
    base = RunSummary(
        run_id=execution.run_id,
        status=status.name if status else "UNKNOWN",
        started_at=execution.start_time,
        closed_at=execution.close_time,
    )
    if status not in CLOSED_READABLE:
        return base
    try:
        record: JobRecord = await job_result(
            client.get_workflow_handle(job_id, run_id=execution.run_id)
        )
    except (RPCError, ValueError):
        return base
    return RunSummary(
        **{
            **asdict(base),
            "outcome": record.outcome.value if record.outcome else None,
            "video_uri": record.video_uri,
            "manifest_uri": record.manifest_uri,
            "cost": record.cost,
            "currency": record.currency,
        }
    )


async def follower_views(client: Client, record: JobRecord) -> list[FollowerView]:
    """The `status` of each follower the job handed a task to (running or finished)."""
    views: list[FollowerView] = []
    for workflow_id in record.followers:
        try:
            handle = client.get_workflow_handle(workflow_id)
            views.append(await handle.query("status", result_type=FollowerView))
        except RPCError as exc:
            views.append(FollowerView(problem=f"{workflow_id}: {exc.message}"))
    return views
