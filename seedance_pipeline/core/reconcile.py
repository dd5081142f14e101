"""The `reconcile` comparison: our ledger against the provider's task list and an invoice.

Pure: the worker's activities (`activities.reconcile`) fetch the rows, the tasks and which
job owns which task, and call these functions; `ReconcileWorkflow` merges the parts. The
models are what crosses Temporal: one input (`ReconcileInput`, a route and a window) and one
result (`ReconcileResult`, the findings), so a scheduled run per route can share them.

Against the provider, per route and per model ID used there, over the route's retention
window (`retention_hours`: the provider forgets tasks after it, so an older row is gone, not
missing):
- orphan: a task no ledger row and no job owns. The design promises never two paid tasks for
  one job; an orphan is where that promise would leak money.
- unrecorded: a finished task a job owns (its `ProviderTaskId` in Temporal) without a row.
- unknown_task: a ledger row whose task the provider does not know (deleted, other account).
- token_mismatch: the row's billed tokens differ from the task's `usage.completion_tokens`
  (0 unless succeeded), e.g. a job cancelled while running whose task then succeeded.
A job writes its rows when it ends, so a task without a row is only judged once it has not
changed for `grace`; before that it is listed as in flight, as is an unfinished task a job
owns.

Against an invoice CSV (`date,model,tokens,amount,currency`, one line per model and day,
repeated lines summed): billed tokens and cost per (day, model, currency) must agree, the
amount within `tolerance`. Days are taken in `invoice_timezone`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from seedance_pipeline.core.models import LedgerEntry, ProviderTask

WINDOW_MARGIN = timedelta(minutes=10)
"""Slack at the window's edges: the provider's clock is not ours, and a row this close to
the retention edge may have a task the provider has just dropped."""
CANCELLED_RETENTION = timedelta(hours=24)
"""Cancelled records are deleted after 24 h whatever the retention (reference §10)."""
DEFAULT_GRACE = timedelta(hours=1)

FindingKind = Literal[
    "orphan",
    "unrecorded",
    "unstored",
    "unknown_task",
    "token_mismatch",
    "invoice_mismatch",
    "unchecked",
]
SALVAGEABLE: frozenset[str] = frozenset({"orphan", "unrecorded", "unstored"})
"""Findings a follower can still fix while the task lives: a billed success without its ledger
row or without its stored video."""


class InvoiceError(ValueError):
    """The invoice cannot be read; the message names the line."""


class Finding(BaseModel):
    kind: FindingKind
    message: str
    route: str | None = None
    model: str | None = None
    task_id: str | None = None
    job_id: str | None = None
    task_status: str | None = None
    billed_tokens: int = 0
    """What the provider bills for the task (orphans and unrecorded ones: money to chase)."""
    run: str | None = None
    submit_no: int | None = None
    """The create the ledger row names (an unstored billed video)."""

    @property
    def salvageable(self) -> bool:
        return (
            self.kind in SALVAGEABLE and self.task_status == "succeeded" and self.billed_tokens > 0
        )


class InvoiceLine(BaseModel):
    day: date
    model: str
    tokens: int
    amount: Decimal
    currency: str


class InvoiceComparison(BaseModel):
    day: date
    model: str
    currency: str
    ledger_tokens: int = 0
    ledger_amount: Decimal = Decimal(0)
    invoice_tokens: int = 0
    invoice_amount: Decimal = Decimal(0)
    in_ledger: bool = False
    in_invoice: bool = False

    def status(self, tolerance: Decimal) -> str:
        if not self.in_invoice:
            return "missing_in_invoice"
        if not self.in_ledger:
            return "missing_in_ledger"
        same_amount = abs(self.ledger_amount - self.invoice_amount) <= tolerance
        return "ok" if self.ledger_tokens == self.invoice_tokens and same_amount else "mismatch"


class ReconcileInput(BaseModel):
    """Input of `ReconcileWorkflow`: which route, which window, what to compare."""

    route: str | None = None
    """One route (a scheduled run per route), or None for every configured route."""
    since: datetime | None = None
    """Window start; None or older than the route's retention: the retention edge."""
    until: datetime | None = None
    """Window end (tasks created and rows requested before it); None: now."""
    grace_seconds: float = Field(default=DEFAULT_GRACE.total_seconds(), ge=0)
    provider: bool = True
    """Compare with the provider's task list (on the worker, with its keys)."""
    salvage: bool = True
    """Hand every billed success without its row or its stored video to a follower (the
    scheduled reconcile does; `starter.py reconcile --no-salvage` only reports)."""
    invoice: list[InvoiceLine] | None = None
    invoice_since: date | None = None
    invoice_timezone: str = "UTC"
    tolerance: Decimal = Decimal("0.01")


class ProviderReconcileInput(BaseModel):
    """Input of the `reconcile_provider` activity."""

    route: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    grace_seconds: float = DEFAULT_GRACE.total_seconds()
    salvage: bool = False


class InvoiceReconcileInput(BaseModel):
    """Input of the `reconcile_invoice` activity."""

    lines: list[InvoiceLine]
    since: date | None = None
    timezone: str = "UTC"
    tolerance: Decimal = Decimal("0.01")


class RouteReconcile(BaseModel):
    """One route compared with the provider."""

    route: str
    checked: bool = False
    since: datetime | None = None
    retention_hours: float | None = None
    provider_tasks: int = 0
    ledger_rows: int = 0
    matched: int = 0
    in_flight: list[str] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    salvaged: list[str] = Field(default_factory=list)
    """Followers started for this route's salvageable findings (`core.salvage`)."""
    notes: list[str] = Field(default_factory=list)


class InvoiceReconcile(BaseModel):
    comparisons: list[InvoiceComparison] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class ReconcileResult(BaseModel):
    """What `ReconcileWorkflow` returns and `starter.py reconcile` prints."""

    routes: list[RouteReconcile] = Field(default_factory=list)
    salvaged: list[str] = Field(default_factory=list)
    """Followers the reconcile started to store and record what it found unstored or unrecorded."""
    invoice: list[InvoiceComparison] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    tolerance: Decimal = Decimal("0.01")

    @property
    def mismatches(self) -> list[Finding]:
        return [f for f in self.findings if f.kind != "unchecked"]

    @property
    def exit_code(self) -> int:
        """0 all agree; 1 something does not match; 2 something could not be checked."""
        if self.mismatches:
            return 1
        return 2 if self.findings else 0

    @property
    def routes_checked(self) -> list[str]:
        return [r.route for r in self.routes if r.checked]


def merge(
    routes: list[RouteReconcile], invoice: InvoiceReconcile | None, tolerance: Decimal
) -> ReconcileResult:
    """One result from the parts; nothing compared with the provider is a finding itself."""
    findings = [f for r in routes for f in r.findings]
    notes = [n for r in routes for n in r.notes]
    if routes and not any(r.checked for r in routes) and not findings:
        findings.append(
            Finding(
                kind="unchecked",
                message="no route has an API key on the worker: nothing compared with the provider",
            )
        )
    if invoice is not None:
        findings += invoice.findings
        notes += invoice.notes
    return ReconcileResult(
        routes=routes,
        salvaged=[w for r in routes for w in r.salvaged],
        invoice=invoice.comparisons if invoice else [],
        findings=findings,
        notes=notes,
        tolerance=tolerance,
    )


# ---- provider ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The part of time the provider can still answer for, for one route."""

    start: datetime
    """Compare from here (the asked start, or the retention edge)."""
    floor: datetime
    """Read tasks and rows from here: a margin before `start`."""
    judged_after: datetime
    """Rows requested before this are not judged missing: the provider may have dropped
    their task at the retention edge."""
    until: datetime | None
    note: str | None


def window(
    now: datetime, retention: timedelta, since: datetime | None, until: datetime | None = None
) -> Window:
    edge = now - retention
    start = edge
    note = None
    if since is not None and since > edge:
        start = since
    elif since is not None:
        hours = retention.total_seconds() / 3600
        note = (
            f"the provider keeps tasks {hours:g} h (the route's retention_hours): "
            f"compared from {start:%Y-%m-%d %H:%M} UTC"
        )
    return Window(
        start=start,
        floor=start - WINDOW_MARGIN,
        judged_after=max(start, edge + WINDOW_MARGIN),
        until=until,
        note=note,
    )


@dataclass
class Sorted:
    """First pass over one route: what matches, and the tasks still to be judged."""

    matched: int
    findings: list[Finding]
    in_flight: list[str]
    suspects: list[ProviderTask]


def in_window(task: ProviderTask, win: Window) -> bool:
    if task.created_at is None:
        return True
    if task.created_at < int(win.floor.timestamp()):
        return False
    return win.until is None or task.created_at < int(win.until.timestamp())


def sort_tasks(
    route_rows: Iterable[LedgerEntry],
    all_rows: Iterable[LedgerEntry],
    tasks: Mapping[str, ProviderTask],
    win: Window,
    now: datetime,
    grace: timedelta,
) -> Sorted:
    """Rows without their task, tasks whose row disagrees, and the tasks no row owns."""
    by_task = {e.provider_task_id: e for e in all_rows if e.provider_task_id}
    findings: list[Finding] = []
    for entry in route_rows:
        gone = entry.provider_task_id and entry.provider_task_id not in tasks
        if win.until is not None and entry.requested_at >= win.until:
            continue
        if gone and entry.requested_at >= win.judged_after and not _may_have_vanished(entry, now):
            findings.append(_unknown(entry))
    matched = 0
    in_flight: list[str] = []
    suspects: list[ProviderTask] = []
    for task in tasks.values():
        owned = by_task.get(task.id)
        if owned is not None:
            mismatch = _token_mismatch(owned, task)
            if mismatch:
                findings.append(mismatch)
            else:
                matched += 1
        elif recent(task, now, grace):
            in_flight.append(f"{task.id} ({task.model}, {task.status})")
        else:
            suspects.append(task)
    return Sorted(matched, findings, in_flight, suspects)


def judge_suspects(
    route: str, suspects: Iterable[ProviderTask], owners: Mapping[str, str]
) -> tuple[list[Finding], list[str]]:
    """Tasks without a row: an unfinished one a job owns is in flight; the rest are findings."""
    findings: list[Finding] = []
    in_flight: list[str] = []
    for task in suspects:
        owner = owners.get(task.id)
        if not task.terminal and owner:
            in_flight.append(f"{task.id} ({task.model}, {task.status}, job {owner})")
        else:
            findings.append(_orphan(route, task, owner))
    return findings, in_flight


def billed_tokens(task: ProviderTask) -> int:
    if task.status != "succeeded" or task.usage is None:
        return 0
    return task.usage.completion_tokens


def _token_mismatch(entry: LedgerEntry, task: ProviderTask) -> Finding | None:
    tokens = billed_tokens(task)
    if entry.tokens == tokens and entry.billed == (tokens > 0):
        return None
    state = "billed" if entry.billed else "not billed"
    return Finding(
        kind="token_mismatch",
        message=f"job {entry.job_id} attempt {entry.submit_no}: ledger {entry.tokens:,} tokens "
        f"({state}), provider task {task.id} {task.status} with {tokens:,} billed tokens",
        route=entry.route,
        model=entry.model_id,
        task_id=task.id,
        job_id=entry.job_id,
        task_status=task.status,
        billed_tokens=tokens,
    )


def _unknown(entry: LedgerEntry) -> Finding:
    money = f"{entry.cost:.6f} {entry.currency} billed" if entry.billed else "not billed"
    return Finding(
        kind="unknown_task",
        message=f"job {entry.job_id} attempt {entry.submit_no}: the provider does not know task "
        f"{entry.provider_task_id} ({entry.model_id}, {money})",
        route=entry.route,
        model=entry.model_id,
        task_id=entry.provider_task_id,
        job_id=entry.job_id,
    )


def _orphan(route: str, task: ProviderTask, owner: str | None) -> Finding:
    tokens = billed_tokens(task)
    cost = f"{tokens:,} billed tokens" if tokens else "not billed"
    if owner:
        return Finding(
            kind="unrecorded",
            message=f"task {task.id} ({task.model}, {task.status}, {cost}) belongs to job "
            f"{owner} but has no ledger row",
            route=route,
            model=task.model,
            task_id=task.id,
            job_id=owner,
            task_status=task.status,
            billed_tokens=tokens,
        )
    return Finding(
        kind="orphan",
        message=f"task {task.id} ({task.model}, {task.status}, {cost}) belongs to no job",
        route=route,
        model=task.model,
        task_id=task.id,
        task_status=task.status,
        billed_tokens=tokens,
    )


def unstored(route: str, entry: LedgerEntry, task: ProviderTask) -> Finding:
    """A billed success the ledger records but storage does not hold."""
    tokens = billed_tokens(task)
    return Finding(
        kind="unstored",
        message=f"task {task.id} ({task.model}, succeeded, {tokens:,} billed tokens) of job "
        f"{entry.job_id} run {entry.run or '-'} create {entry.submit_no} has no stored video",
        route=route,
        model=task.model,
        task_id=task.id,
        job_id=entry.job_id,
        task_status=task.status,
        billed_tokens=tokens,
        run=entry.run,
        submit_no=entry.submit_no,
    )


def recent(task: ProviderTask, now: datetime, grace: timedelta) -> bool:
    moment = task.updated_at or task.created_at
    return moment is not None and now.timestamp() - moment < grace.total_seconds()


def _may_have_vanished(entry: LedgerEntry, now: datetime) -> bool:
    """A task cancelled while queued costs nothing and its record is gone after 24 h."""
    cancelled = entry.outcome == "cancelled" or entry.error_code in (
        "Cancelled",
        "QueueDeadlineExceeded",
    )
    return not entry.billed and cancelled and now - entry.finished_at > CANCELLED_RETENTION


def unchecked_route(route: str, key_env: str, rows: int) -> RouteReconcile:
    """A route the worker has no key for: a finding when it has rows, else a note."""
    if rows:
        return RouteReconcile(
            route=route,
            ledger_rows=rows,
            findings=[
                Finding(
                    kind="unchecked",
                    message=f"route {route}: {rows} ledger rows but no API key on the worker "
                    f"(set {key_env}); not compared with the provider",
                    route=route,
                )
            ],
        )
    return RouteReconcile(route=route, notes=[f"route {route}: no API key, no rows; skipped"])


# ---- invoice -------------------------------------------------------------------------------

INVOICE_COLUMNS = ("date", "model", "tokens", "amount", "currency")


def parse_invoice(text: str, name: str) -> list[InvoiceLine]:
    """Parse the invoice CSV: a header naming the five columns (any order, extra ignored)."""
    reader = csv.DictReader(text.splitlines())
    header = {(h or "").strip().lower(): h for h in reader.fieldnames or []}
    missing = [c for c in INVOICE_COLUMNS if c not in header]
    if missing:
        raise InvoiceError(
            f"{name}: header lacks {', '.join(missing)} (need {', '.join(INVOICE_COLUMNS)})"
        )
    lines: list[InvoiceLine] = []
    for number, raw in enumerate(reader, start=2):
        row = {c: (raw.get(header[c]) or "").strip() for c in INVOICE_COLUMNS}
        if not any(row.values()):
            continue
        try:
            line = InvoiceLine(
                day=date.fromisoformat(row["date"]),
                model=row["model"],
                tokens=int(row["tokens"].replace(",", "")),
                amount=Decimal(row["amount"].replace(",", "")),
                currency=row["currency"].upper(),
            )
        except (ValueError, InvalidOperation):
            raise InvoiceError(f"{name} line {number}: cannot read {row}") from None
        if not line.model or not line.currency:
            raise InvoiceError(f"{name} line {number}: model and currency are required")
        lines.append(line)
    return lines


def invoice_days(lines: Iterable[InvoiceLine], zone_name: str) -> tuple[datetime, datetime]:
    """The UTC span of the invoice's days, read in its time zone."""
    zone = ZoneInfo(zone_name)
    days = [line.day for line in lines]
    start = datetime.combine(min(days), datetime.min.time(), zone)
    end = datetime.combine(max(days) + timedelta(days=1), datetime.min.time(), zone)
    return start, end


def compare_invoice(
    rows: Iterable[LedgerEntry],
    invoice: Iterable[InvoiceLine],
    zone_name: str,
    tolerance: Decimal,
) -> InvoiceReconcile:
    """Billed ledger totals per (day, model, currency) against the invoice's lines."""
    zone = ZoneInfo(zone_name)
    table: dict[tuple[date, str, str], InvoiceComparison] = {}
    for entry in rows:
        if not entry.billed:
            continue
        day = entry.finished_at.astimezone(zone).date()
        item = table.setdefault(
            (day, entry.model_id, entry.currency),
            InvoiceComparison(day=day, model=entry.model_id, currency=entry.currency),
        )
        item.in_ledger = True
        item.ledger_tokens += entry.tokens
        item.ledger_amount += Decimal(str(entry.cost))
    for line in invoice:
        item = table.setdefault(
            (line.day, line.model, line.currency),
            InvoiceComparison(day=line.day, model=line.model, currency=line.currency),
        )
        item.in_invoice = True
        item.invoice_tokens += line.tokens
        item.invoice_amount += line.amount
    result = InvoiceReconcile(comparisons=[table[k] for k in sorted(table)])
    for item in result.comparisons:
        status = item.status(tolerance)
        if status == "ok":
            continue
        result.findings.append(
            Finding(
                kind="invoice_mismatch",
                message=f"{item.day} {item.model} {item.currency}: {status.replace('_', ' ')}: "
                f"ledger {item.ledger_tokens:,} tokens / {item.ledger_amount:.6f}, invoice "
                f"{item.invoice_tokens:,} tokens / {item.invoice_amount:.6f}",
                model=item.model,
            )
        )
    return result
