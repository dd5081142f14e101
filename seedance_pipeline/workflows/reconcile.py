"""ReconcileWorkflow: compare the ledger with the provider and an invoice, on the worker.

The comparison runs as activities where the keys and the ledger are (`activities.reconcile`);
the CLI starts this workflow, waits and prints the result, so it needs no provider key. One
input (a route or all, and a window) and one result (the findings, and the salvages started
for billed successes without their row or their stored video, `core.salvage`): a Temporal
Schedule per route (`clients.reconcile_schedule`, hourly by default) starts the same workflow,
so each report stays in that run's history.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core import error_types as et
    from seedance_pipeline.core.reconcile import (
        InvoiceReconcile,
        InvoiceReconcileInput,
        ProviderReconcileInput,
        ReconcileInput,
        ReconcileResult,
        RouteReconcile,
        merge,
    )
    from seedance_pipeline.workflows.activity_stubs import reconcile_invoice, reconcile_provider

RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_attempts=3,
    non_retryable_error_types=[et.REQUEST_INVALID],
)


@workflow.defn
class ReconcileWorkflow:
    @workflow.run
    async def run(self, data: ReconcileInput) -> ReconcileResult:
        provider = self._provider(data) if data.provider else None
        invoice = self._invoice(data) if data.invoice is not None else None
        routes: list[RouteReconcile] = []
        billed: InvoiceReconcile | None = None
        if provider is not None and invoice is not None:
            routes, billed = await asyncio.gather(provider, invoice)
        elif provider is not None:
            routes = await provider
        elif invoice is not None:
            billed = await invoice
        return merge(routes, billed, data.tolerance)

    async def _provider(self, data: ReconcileInput) -> list[RouteReconcile]:
        return await workflow.execute_activity(
            reconcile_provider,
            ProviderReconcileInput(
                route=data.route,
                since=data.since,
                until=data.until,
                grace_seconds=data.grace_seconds,
                salvage=data.salvage,
            ),
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=60),
            retry_policy=RETRY,
        )

    async def _invoice(self, data: ReconcileInput) -> InvoiceReconcile:
        return await workflow.execute_activity(
            reconcile_invoice,
            InvoiceReconcileInput(
                lines=data.invoice or [],
                since=data.invoice_since,
                timezone=data.invoice_timezone,
                tolerance=data.tolerance,
            ),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
