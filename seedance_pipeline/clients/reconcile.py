"""`starter.py reconcile`: start `ReconcileWorkflow` on the worker and wait for its result.

The comparison runs where the keys and the ledger are (`activities.reconcile`), so the CLI
needs no provider key and reports on the stack's ledger, not on a file its shell points at.
Only the invoice is read here: it is the user's file, on this machine.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.service import RPCError, RPCStatusCode

from seedance_pipeline.clients.failures import Refused, root_message
from seedance_pipeline.clients.pollers import require_worker
from seedance_pipeline.clients.reconcile_schedule import schedule_id
from seedance_pipeline.core.reconcile import (
    InvoiceError,
    InvoiceLine,
    ReconcileInput,
    ReconcileResult,
    parse_invoice,
)
from seedance_pipeline.workflows.reconcile import ReconcileWorkflow

RUN_TIMEOUT = timedelta(minutes=15)
"""Listing a retention window of tasks page by page takes minutes at most; past this the run
is stuck (and Temporal ends it)."""


def read_invoice(path: Path) -> list[InvoiceLine]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvoiceError(f"cannot read invoice {path}: {exc}") from None
    return parse_invoice(text, str(path))


async def run_reconcile(client: Client, queue: str, data: ReconcileInput) -> ReconcileResult:
    """Run the comparison on a worker polling `queue`; Refused with the worker's reason."""
    await require_worker(client, queue, ("workflow", "activity"))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    handle = await client.start_workflow(
        ReconcileWorkflow.run,
        data,
        id=f"reconcile-{stamp}-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        execution_timeout=RUN_TIMEOUT,
    )
    try:
        return await handle.result()
    except WorkflowFailureError as exc:
        raise Refused(f"reconcile on the worker: {root_message(exc.cause)}") from None


@dataclass(frozen=True)
class ScheduledReport:
    route: str
    workflow_id: str | None
    started_at: datetime | None
    result: ReconcileResult | None
    problem: str = ""
    """Why there is no report (no schedule, never ran, still running, failed)."""


async def last_scheduled(client: Client, queue: str, routes: list[str]) -> list[ScheduledReport]:
    """Each route's latest scheduled reconcile (`clients.reconcile_schedule`) and its report."""
    return [await _last(client, queue, route) for route in routes]


async def _last(client: Client, queue: str, route: str) -> ScheduledReport:
    sid = schedule_id(queue, route)
    try:
        described = await client.get_schedule_handle(sid).describe()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        return ScheduledReport(route, None, None, None, f"no schedule {sid} (every_minutes = 0?)")
    done = [
        (a.started_at, a.action)
        for a in described.info.recent_actions
        if isinstance(a.action, ScheduleActionExecutionStartWorkflow)
    ]
    if not done:
        return ScheduledReport(route, None, None, None, f"schedule {sid} has not run yet")
    started, action = done[-1]
    handle = client.get_workflow_handle(
        action.workflow_id, run_id=action.first_execution_run_id, result_type=ReconcileResult
    )
    wid = action.workflow_id
    if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        return ScheduledReport(route, wid, started, None, "the latest run is still running")
    try:
        result = await handle.result()
    except WorkflowFailureError as exc:
        return ScheduledReport(route, wid, started, None, f"failed: {root_message(exc.cause)}")
    return ScheduledReport(route, wid, started, result)
