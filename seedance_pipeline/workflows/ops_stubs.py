"""Typed stubs of the operator activities (`activities.worker_checks`, `activities.reconcile`)
for the operator workflows: the name and signature of each, no I/O imports, so a workflow
calls `workflow.execute_activity(stub, ...)` type-checked. A test holds the names to the
worker's registrations."""

from __future__ import annotations

from temporalio import activity

from seedance_pipeline.core.checks import WorkerChecksInput, WorkerReport
from seedance_pipeline.core.reconcile import (
    InvoiceReconcile,
    InvoiceReconcileInput,
    ProviderReconcileInput,
    RouteReconcile,
)


@activity.defn(name="worker_checks")
async def worker_checks(data: WorkerChecksInput) -> WorkerReport:
    """The worker's own doctor checks."""
    raise NotImplementedError


@activity.defn(name="reconcile_provider")
async def reconcile_provider(data: ProviderReconcileInput) -> list[RouteReconcile]:
    """Ledger rows against the provider's task list, per route."""
    raise NotImplementedError


@activity.defn(name="reconcile_invoice")
async def reconcile_invoice(data: InvoiceReconcileInput) -> InvoiceReconcile:
    """Billed ledger totals against an invoice's lines."""
    raise NotImplementedError


OPS_STUBS = (worker_checks, reconcile_provider, reconcile_invoice)
