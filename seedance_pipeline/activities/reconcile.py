"""Reconcile where the keys are: the worker reads its ledger, lists the provider's tasks with
its route keys and asks Temporal which job owns a task, then `core.reconcile` compares.

`starter.py reconcile` starts `ReconcileWorkflow`, which runs these, so the CLI needs no key
and judges the stack's ledger, not whatever file its own shell points at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfoNotFoundError

import structlog
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from seedance_pipeline.activities.directory import JobDirectoryActivities
from seedance_pipeline.activities.salvage import Salvaged, Salvager
from seedance_pipeline.adapters.ledger_schema import Ledger
from seedance_pipeline.adapters.object_store import ObjectStore, safe_key
from seedance_pipeline.adapters.provider_client import ProviderClient, ProviderError
from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.layout import VIDEO, key_parts
from seedance_pipeline.core.models import LedgerEntry, ProviderTask, TaskOwnersInput
from seedance_pipeline.core.reconcile import (
    Finding,
    InvoiceReconcile,
    InvoiceReconcileInput,
    ProviderReconcileInput,
    RouteReconcile,
    Window,
    compare_invoice,
    in_window,
    invoice_days,
    judge_suspects,
    recent,
    sort_tasks,
    unchecked_route,
    unstored,
    window,
)
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.observability.metrics import reconcile_finding

PAGE_SIZE = 100
MAX_PAGES = 500  # the API's page_num limit
RECONCILE_PROVIDER = "reconcile_provider"
RECONCILE_INVOICE = "reconcile_invoice"
log = structlog.get_logger(__name__)


class ReconcileActivities:
    def __init__(
        self,
        client: Client,
        settings: Settings,
        ledger: Ledger,
        provider: ProviderClient,
        store: ObjectStore,
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._provider = provider
        self._store = store
        self._directory = JobDirectoryActivities(client)
        self._salvager = Salvager(client, settings)

    @activity.defn(name=RECONCILE_PROVIDER)
    async def reconcile_provider(self, data: ProviderReconcileInput) -> list[RouteReconcile]:
        """Each selected route's ledger rows against its task list, over its retention."""
        routes = self._settings.routes
        if data.route is not None and data.route not in routes:
            raise ApplicationError(
                f"unknown route {data.route!r} (the worker has: {', '.join(sorted(routes))})",
                type=et.REQUEST_INVALID,
                non_retryable=True,
            )
        names = [data.route] if data.route is not None else list(routes)
        grace = timedelta(seconds=data.grace_seconds)
        return [await self._route(name, data, grace) for name in names]

    async def _route(
        self, name: str, data: ProviderReconcileInput, grace: timedelta
    ) -> RouteReconcile:
        route = self._settings.route(name)
        now = datetime.now(UTC)
        win = window(now, timedelta(hours=route.retention_hours), data.since, data.until)
        rows = await asyncio.to_thread(self._ledger.entries, win.floor, data.until)
        route_rows = [e for e in rows if e.route == name]
        if route.api_key() is None:
            return unchecked_route(name, route.api_key_env, len(route_rows))
        result = RouteReconcile(
            route=name,
            since=win.start,
            retention_hours=route.retention_hours,
            ledger_rows=len(route_rows),
        )
        if win.note:
            result.notes.append(f"route {name}: {win.note}")
        models = sorted(
            {spec.ids[name] for spec in self._settings.models.values() if name in spec.ids}
            | {e.model_id for e in route_rows}
        )
        try:
            tasks = await self._tasks(name, models, win)
        except ProviderError as exc:
            message = f"route {name}: cannot list its tasks: {exc}"
            result.findings.append(Finding(kind="unchecked", message=message, route=name))
            return result
        result.checked = True
        result.provider_tasks = len(tasks)
        sorted_ = sort_tasks(route_rows, rows, tasks, win, now, grace)
        result.matched = sorted_.matched
        result.findings += sorted_.findings
        result.in_flight += sorted_.in_flight
        owners = await self._owners(t.id for t in sorted_.suspects)
        judged, in_flight = judge_suspects(name, sorted_.suspects, owners)
        result.findings += await self._not_unattributed(judged, win, result)
        result.in_flight += in_flight
        result.findings += await self._unstored(name, route_rows, tasks, now, grace, result)
        salvaged = Salvaged()
        if data.salvage:
            salvaged = await self._salvager.salvage(name, result.findings, tasks)
            result.salvaged, result.notes = salvaged.started, result.notes + salvaged.notes
        report_findings(name, result.findings, salvaged.task_ids)
        return result

    async def _not_unattributed(
        self, findings: list[Finding], win: Window, result: RouteReconcile
    ) -> list[Finding]:
        """Orphans already recorded as unattributed billed tasks are accounted for: a note."""
        kept = await asyncio.to_thread(self._ledger.unattributed, win.floor)
        recorded = {u.task_id: u for u in kept}
        out = []
        for finding in findings:
            known = recorded.get(finding.task_id or "")
            if finding.kind == "orphan" and known is not None:
                who = ", ".join(known.candidates) or "no candidate"
                result.notes.append(
                    f"task {known.task_id}: recorded as unattributed ({known.cost} "
                    f"{known.currency}; candidates {who})"
                )
                continue
            out.append(finding)
        return out

    async def _unstored(
        self,
        route: str,
        rows: list[LedgerEntry],
        tasks: Mapping[str, ProviderTask],
        now: datetime,
        grace: timedelta,
        result: RouteReconcile,
    ) -> list[Finding]:
        """Billed successes whose video is in neither of its run's places in storage (one
        that succeeded within the grace may still be copying: in flight)."""
        found = []
        for entry in rows:
            task = tasks.get(entry.provider_task_id or "")
            if task is None or task.status != "succeeded" or not entry.billed:
                continue
            if await self._stored(entry):
                continue
            if recent(task, now, grace):
                result.in_flight.append(f"{task.id} ({task.model}, copying, job {entry.job_id})")
                continue
            found.append(unstored(route, entry, task))
        return found

    async def _stored(self, entry: LedgerEntry) -> bool:
        places = [None, entry.submit_no]  # where the job stores; where its follower stores
        for followed in places:
            parts = key_parts(
                entry.job_id, entry.requested_at, VIDEO, run=entry.run, followed_submit_no=followed
            )
            if await self._store.exists(safe_key(*parts)):
                return True
        return False

    async def _tasks(self, name: str, models: list[str], win: Window) -> dict[str, ProviderTask]:
        """Every task of these models created in the window, paging (a heartbeat a page)."""
        route = self._settings.route(name)
        found: dict[str, ProviderTask] = {}
        for model in models:
            for page in range(1, MAX_PAGES + 1):
                total, items = await self._provider.list(
                    route, name, model=model, page_num=page, page_size=PAGE_SIZE
                )
                activity.heartbeat(f"{name} {model} page {page}")
                found.update((t.id, t) for t in items if in_window(t, win))
                if not items or page * PAGE_SIZE >= total:
                    break
        return found

    async def _owners(self, task_ids: Iterable[str]) -> dict[str, str]:
        ids = list(task_ids)
        if not ids:
            return {}
        return await self._directory.task_owners(TaskOwnersInput(job_id="", task_ids=ids))

    @activity.defn(name=RECONCILE_INVOICE)
    async def reconcile_invoice(self, data: InvoiceReconcileInput) -> InvoiceReconcile:
        """Billed ledger totals per (day, model, currency) against the invoice's lines."""
        lines = [line for line in data.lines if data.since is None or line.day >= data.since]
        if not lines:
            return InvoiceReconcile(
                notes=["the invoice has no lines in the window; nothing compared"]
            )
        try:
            start, end = invoice_days(lines, data.timezone)
        except (ValueError, ZoneInfoNotFoundError):
            raise ApplicationError(
                f"unknown time zone {data.timezone!r} (an IANA name such as Asia/Shanghai)",
                type=et.REQUEST_INVALID,
                non_retryable=True,
            ) from None
        rows: list[LedgerEntry] = await asyncio.to_thread(
            self._ledger.entries, start.astimezone(UTC), end.astimezone(UTC)
        )
        return compare_invoice(rows, lines, data.timezone, data.tolerance)


def report_findings(route: str, findings: list[Finding], salvaged: set[str]) -> None:
    """A log line and a count for each finding; those not being salvaged need an operator."""
    for finding in findings:
        fixing = (finding.task_id or "") in salvaged
        reconcile_finding(route, finding.kind, salvaged=fixing)
        event = "reconcile.salvaging" if fixing else "reconcile.unfixed"
        log.warning(
            event,
            route=route,
            kind=finding.kind,
            task_id=finding.task_id,
            job_id=finding.job_id,
            detail=finding.message,
        )
