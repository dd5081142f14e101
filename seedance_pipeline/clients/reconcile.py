"""The `reconcile` report: our ledger against the provider's task list and an invoice export.

Against the provider (its list endpoint shows the last 7 days only), per configured route
with a key and per model ID we use there:
- orphan: a task no ledger row and no job owns. The design promises never two paid tasks for
  one job; an orphan is where that promise would leak money.
- unrecorded: a finished task a job owns (its `ProviderTaskId` in Temporal) without a row.
- unknown_task: a ledger row whose task the provider does not know (deleted, other account).
- token_mismatch: the row's billed tokens differ from the task's `usage.completion_tokens`
  (0 unless succeeded), e.g. a job cancelled while running whose task then succeeded.
A job writes its rows when it ends, so a task without a row is only judged once it has not
changed for `grace`; before that it is listed as in flight, as is an unfinished task a job
owns (or any unfinished one when Temporal is not consulted, since ownership is then unknown).

Against an invoice CSV (`date,model,tokens,amount,currency`, one line per model and day,
repeated lines summed): billed tokens and cost per (day, model, currency) must agree, the
amount within `tolerance`. Days are taken in `invoice_timezone`.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from seedance_pipeline.adapters.ledger_schema import Ledger
from seedance_pipeline.adapters.provider_client import ProviderClient, ProviderError
from seedance_pipeline.core.models import LedgerEntry, ProviderTask
from seedance_pipeline.core.settings import Settings

PROVIDER_WINDOW = timedelta(days=7)
WINDOW_MARGIN = timedelta(minutes=10)
"""Slack at the window's edges: the provider's clock is not ours, and a row this close to
the 7-day edge may have a task the provider has just dropped."""
CANCELLED_RETENTION = timedelta(hours=24)
PAGE_SIZE = 100
MAX_PAGES = 500  # the API's page_num limit

FindingKind = Literal[
    "orphan", "unrecorded", "unknown_task", "token_mismatch", "invoice_mismatch", "unchecked"
]
OwnerLookup = Callable[[list[str]], Awaitable[dict[str, str]]]
"""task IDs -> {task ID: owning job ID} for the ones a job claims (Temporal visibility)."""


class InvoiceError(ValueError):
    """The invoice file cannot be read; the message names the line."""


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    message: str
    route: str | None = None
    model: str | None = None
    task_id: str | None = None
    job_id: str | None = None


@dataclass(frozen=True)
class InvoiceLine:
    day: date
    model: str
    tokens: int
    amount: Decimal
    currency: str


@dataclass
class InvoiceComparison:
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


@dataclass
class ReconcileReport:
    now: datetime
    provider_since: datetime | None
    routes_checked: list[str] = field(default_factory=list)
    provider_tasks: int = 0
    ledger_rows: int = 0
    matched: int = 0
    in_flight: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    invoice: list[InvoiceComparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.findings,
            "now": self.now.isoformat(),
            "provider_since": self.provider_since.isoformat() if self.provider_since else None,
            "routes_checked": self.routes_checked,
            "provider_tasks": self.provider_tasks,
            "ledger_rows": self.ledger_rows,
            "matched": self.matched,
            "in_flight": self.in_flight,
            "findings": [asdict(f) for f in self.findings],
            "invoice": [
                {
                    "day": c.day.isoformat(),
                    "model": c.model,
                    "currency": c.currency,
                    "ledger_tokens": c.ledger_tokens,
                    "invoice_tokens": c.invoice_tokens,
                    "ledger_amount": float(c.ledger_amount),
                    "invoice_amount": float(c.invoice_amount),
                    "status": c.status(self.tolerance),
                }
                for c in self.invoice
            ],
            "notes": self.notes,
        }


# ---- provider ------------------------------------------------------------------------------


async def reconcile_provider(
    report: ReconcileReport,
    settings: Settings,
    ledger: Ledger,
    provider: ProviderClient,
    since: datetime | None,
    *,
    owners: OwnerLookup | None = None,
    grace: timedelta = timedelta(hours=1),
) -> None:
    """Compare the ledger with the provider's task list (findings appended to `report`)."""
    now = report.now
    start = now - PROVIDER_WINDOW
    if since is not None and since > start:
        start = since
    elif since is not None:
        report.notes.append(
            f"the provider lists only the last 7 days: compared from {start:%Y-%m-%d %H:%M} UTC"
        )
    report.provider_since = start
    # Tasks are read from a little before `start` (the provider's clock is not ours), and
    # every task created since then finished after it, so `rows` holds all their rows.
    floor = start - WINDOW_MARGIN
    rows = await _entries(ledger, floor)
    judged_after = max(start, now - PROVIDER_WINDOW + WINDOW_MARGIN)
    report.ledger_rows = len(rows)
    by_task = {e.provider_task_id: e for e in rows if e.provider_task_id}
    seen: dict[str, ProviderTask] = {}
    for route_name, route in settings.routes.items():
        route_rows = [e for e in rows if e.route == route_name]
        if route.api_key() is None:
            if route_rows:
                report.findings.append(
                    Finding(
                        "unchecked",
                        f"route {route_name}: {len(route_rows)} ledger rows but no API key "
                        f"(set {route.api_key_env}); not compared with the provider",
                        route=route_name,
                    )
                )
            else:
                report.notes.append(f"route {route_name}: no API key, no rows; skipped")
            continue
        models = sorted(
            {spec.ids[route_name] for spec in settings.models.values() if route_name in spec.ids}
            | {e.model_id for e in route_rows}
        )
        tasks, failed = await _route_tasks(provider, route_name, settings, models, floor)
        if failed:
            report.findings.append(Finding("unchecked", failed, route=route_name))
            continue
        report.routes_checked.append(route_name)
        for task in tasks:
            seen[task.id] = task
        for entry in route_rows:
            gone = entry.provider_task_id and entry.provider_task_id not in seen
            if gone and entry.requested_at >= judged_after and not _may_have_vanished(entry, now):
                report.findings.append(_unknown(entry))
    if not report.routes_checked and not any(f.kind == "unchecked" for f in report.findings):
        report.findings.append(
            Finding("unchecked", "no route has an API key: nothing compared with the provider")
        )
    report.provider_tasks = len(seen)
    suspects: list[ProviderTask] = []
    for task in seen.values():
        owned = by_task.get(task.id)
        if owned is not None:
            mismatch = _token_mismatch(owned, task)
            if mismatch:
                report.findings.append(mismatch)
            else:
                report.matched += 1
        elif _recent(task, now, grace):
            report.in_flight.append(f"{task.id} ({task.model}, {task.status})")
        else:
            suspects.append(task)
    if suspects and owners is None:
        report.notes.append(
            "job ownership not checked (Temporal not consulted): finished tasks without a "
            "ledger row count as orphans, unfinished ones as in flight"
        )
    claimed = await owners([t.id for t in suspects]) if owners and suspects else {}
    for task in suspects:
        owner = claimed.get(task.id)
        if not task.terminal and (owner or owners is None):
            report.in_flight.append(f"{task.id} ({task.model}, {task.status}, job {owner})")
        else:
            report.findings.append(_orphan(task, owner))


async def _entries(ledger: Ledger, since: datetime) -> list[LedgerEntry]:
    return await asyncio.to_thread(ledger.entries, since)


async def _route_tasks(
    provider: ProviderClient,
    route_name: str,
    settings: Settings,
    models: Iterable[str],
    start: datetime,
) -> tuple[list[ProviderTask], str | None]:
    """All tasks of these models created since `start`, paging; or why they could not be read."""
    route = settings.route(route_name)
    found: dict[str, ProviderTask] = {}
    floor = int(start.timestamp())
    for model in models:
        try:
            for page in range(1, MAX_PAGES + 1):
                total, items = await provider.list(
                    route, route_name, model=model, page_num=page, page_size=PAGE_SIZE
                )
                for task in items:
                    if task.created_at is None or task.created_at >= floor:
                        found[task.id] = task
                if not items or page * PAGE_SIZE >= total:
                    break
        except ProviderError as exc:
            return [], f"route {route_name}: cannot list tasks of {model}: {exc}"
    return list(found.values()), None


def _billed_tokens(task: ProviderTask) -> int:
    if task.status != "succeeded" or task.usage is None:
        return 0
    return task.usage.completion_tokens


def _token_mismatch(entry: LedgerEntry, task: ProviderTask) -> Finding | None:
    tokens = _billed_tokens(task)
    if entry.tokens == tokens and entry.billed == (tokens > 0):
        return None
    state = "billed" if entry.billed else "not billed"
    return Finding(
        "token_mismatch",
        f"job {entry.job_id} attempt {entry.submit_no}: ledger {entry.tokens:,} tokens "
        f"({state}), provider task {task.id} {task.status} with {tokens:,} billed tokens",
        route=entry.route,
        model=entry.model_id,
        task_id=task.id,
        job_id=entry.job_id,
    )


def _unknown(entry: LedgerEntry) -> Finding:
    money = f"{entry.cost:.6f} {entry.currency} billed" if entry.billed else "not billed"
    return Finding(
        "unknown_task",
        f"job {entry.job_id} attempt {entry.submit_no}: the provider does not know task "
        f"{entry.provider_task_id} ({entry.model_id}, {money})",
        route=entry.route,
        model=entry.model_id,
        task_id=entry.provider_task_id,
        job_id=entry.job_id,
    )


def _orphan(task: ProviderTask, owner: str | None) -> Finding:
    tokens = _billed_tokens(task)
    cost = f"{tokens:,} billed tokens" if tokens else "not billed"
    if owner:
        return Finding(
            "unrecorded",
            f"task {task.id} ({task.model}, {task.status}, {cost}) belongs to job {owner} "
            "but has no ledger row",
            model=task.model,
            task_id=task.id,
            job_id=owner,
        )
    return Finding(
        "orphan",
        f"task {task.id} ({task.model}, {task.status}, {cost}) belongs to no job",
        model=task.model,
        task_id=task.id,
    )


def _recent(task: ProviderTask, now: datetime, grace: timedelta) -> bool:
    moment = task.updated_at or task.created_at
    return moment is not None and now.timestamp() - moment < grace.total_seconds()


def _may_have_vanished(entry: LedgerEntry, now: datetime) -> bool:
    """A task cancelled while queued costs nothing and its record is gone after 24 h."""
    cancelled = entry.outcome == "cancelled" or entry.error_code in (
        "Cancelled",
        "QueueDeadlineExceeded",
    )
    return not entry.billed and cancelled and now - entry.finished_at > CANCELLED_RETENTION


# ---- invoice -------------------------------------------------------------------------------

INVOICE_COLUMNS = ("date", "model", "tokens", "amount", "currency")


def read_invoice(path: Path) -> list[InvoiceLine]:
    """Parse the invoice CSV: a header naming the five columns (any order, extra ignored)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvoiceError(f"cannot read invoice {path}: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    header = {(h or "").strip().lower(): h for h in reader.fieldnames or []}
    missing = [c for c in INVOICE_COLUMNS if c not in header]
    if missing:
        raise InvoiceError(
            f"{path}: header lacks {', '.join(missing)} (need {', '.join(INVOICE_COLUMNS)})"
        )
    lines: list[InvoiceLine] = []
    for number, raw in enumerate(reader, start=2):
        row = {c: (raw.get(header[c]) or "").strip() for c in INVOICE_COLUMNS}
        if not any(row.values()):
            continue
        try:
            lines.append(
                InvoiceLine(
                    day=date.fromisoformat(row["date"]),
                    model=row["model"],
                    tokens=int(row["tokens"].replace(",", "")),
                    amount=Decimal(row["amount"].replace(",", "")),
                    currency=row["currency"].upper(),
                )
            )
        except (ValueError, InvalidOperation):
            raise InvoiceError(f"{path} line {number}: cannot read {row}") from None
        if not lines[-1].model or not lines[-1].currency:
            raise InvoiceError(f"{path} line {number}: model and currency are required")
    return lines


async def reconcile_invoice(
    report: ReconcileReport,
    ledger: Ledger,
    invoice: list[InvoiceLine],
    *,
    since: date | None = None,
    invoice_timezone: str = "UTC",
) -> None:
    """Compare billed ledger totals per (day, model, currency) with the invoice's lines."""
    invoice = [line for line in invoice if since is None or line.day >= since]
    if not invoice:
        report.notes.append("the invoice has no lines in the window; nothing compared")
        return
    zone = ZoneInfo(invoice_timezone)
    first, last = min(i.day for i in invoice), max(i.day for i in invoice)
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    rows = await asyncio.to_thread(ledger.entries, start, end)
    table: dict[tuple[date, str, str], InvoiceComparison] = {}
    for entry in rows:
        if not entry.billed:
            continue
        day = entry.finished_at.astimezone(zone).date()
        item = table.setdefault(
            (day, entry.model_id, entry.currency),
            InvoiceComparison(day, entry.model_id, entry.currency),
        )
        item.in_ledger = True
        item.ledger_tokens += entry.tokens
        item.ledger_amount += Decimal(str(entry.cost))
    for line in invoice:
        item = table.setdefault(
            (line.day, line.model, line.currency),
            InvoiceComparison(line.day, line.model, line.currency),
        )
        item.in_invoice = True
        item.invoice_tokens += line.tokens
        item.invoice_amount += line.amount
    report.invoice = [table[k] for k in sorted(table)]
    for item in report.invoice:
        status = item.status(report.tolerance)
        if status == "ok":
            continue
        report.findings.append(
            Finding(
                "invoice_mismatch",
                f"{item.day} {item.model} {item.currency}: {status.replace('_', ' ')}: ledger "
                f"{item.ledger_tokens:,} tokens / {item.ledger_amount:.6f}, invoice "
                f"{item.invoice_tokens:,} tokens / {item.invoice_amount:.6f}",
                model=item.model,
            )
        )


def utc_now() -> datetime:
    return datetime.now(UTC)
