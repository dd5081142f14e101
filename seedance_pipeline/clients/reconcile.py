"""`starter.py reconcile`: start `ReconcileWorkflow` on the worker and wait for its result.

The comparison runs where the keys and the ledger are (`activities.reconcile`), so the CLI
needs no provider key and reports on the stack's ledger, not on a file its shell points at.
Only the invoice is read here: it is the user's file, on this machine.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowFailureError

from seedance_pipeline.clients.failures import Refused, root_message
from seedance_pipeline.clients.pollers import require_worker
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
