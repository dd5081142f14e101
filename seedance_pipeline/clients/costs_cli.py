"""`costs` and `reconcile`: the ledger's commands, a Typer sub-app merged into starter.py.

Exit codes follow the starter: 0 fine, 1 something does not match (reconcile), 2 invalid
arguments, config or files, or something could not be checked.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import closing
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from seedance_pipeline.activities.directory import JobDirectoryActivities
from seedance_pipeline.adapters.ledger import open_ledger
from seedance_pipeline.adapters.ledger_schema import Ledger
from seedance_pipeline.adapters.provider_client import ProviderClient
from seedance_pipeline.clients.costs import CostLine, CostReport, cost_report, day_window, parse_day
from seedance_pipeline.clients.reconcile import (
    InvoiceError,
    InvoiceLine,
    OwnerLookup,
    ReconcileReport,
    read_invoice,
    reconcile_invoice,
    reconcile_provider,
    utc_now,
)
from seedance_pipeline.clients.temporal_client import TemporalUnavailable, connect
from seedance_pipeline.core.models import TaskOwnersInput
from seedance_pipeline.core.settings import ConfigError, Settings, load_settings

app = typer.Typer(add_completion=False, help="Cost ledger reports.")
out = Console()
err = Console(stderr=True)
EXIT_MISMATCH, EXIT_INVALID = 1, 2
REPORT_WIDTH = 200


class By(StrEnum):
    day = "day"
    model = "model"
    route = "route"
    outcome = "outcome"
    run = "run"


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        err.print(f"[red]config error:[/] {exc}")
        raise typer.Exit(EXIT_INVALID) from None


def _ledger(settings: Settings) -> Ledger:
    try:
        return open_ledger(settings.ledger.url)
    except Exception as exc:  # any driver or file error: say it and stop, no traceback
        err.print(f"[red]ledger unavailable:[/] {exc}")
        raise typer.Exit(EXIT_INVALID) from None


def _day(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return parse_day(value)
    except ValueError as exc:
        err.print(f"[red]{flag}:[/] {exc}")
        raise typer.Exit(EXIT_INVALID) from None


@app.command()
def costs(
    since: Annotated[str | None, typer.Option(help="first day, YYYY-MM-DD (UTC)")] = None,
    until: Annotated[str | None, typer.Option(help="last day, included")] = None,
    by: Annotated[By, typer.Option(help="group lines by")] = By.day,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Jobs, seconds of video, tokens and cost per currency from the ledger."""
    first, last = _day(since, "--since"), _day(until, "--until")
    try:
        start, end = day_window(first, last)
    except ValueError as exc:
        err.print(f"[red]invalid dates:[/] {exc}")
        raise typer.Exit(EXIT_INVALID) from None
    settings = _settings()
    with closing(_ledger(settings)) as ledger:
        orphans = [u for u in ledger.unattributed(start) if end is None or u.seen_at < end]
        report = cost_report(ledger.entries(start, end), by.value, first, last, orphans)
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))  # noqa: T201
        return
    _print_costs(report)


def _print_costs(report: CostReport) -> None:
    window = f"{report.since or 'start'} .. {report.until or 'today'}"
    if not report.lines:
        out.print(f"no ledger rows ({window})")
        return
    table = Table(title=f"costs by {report.by} ({window})")
    for name in ("", "currency", "jobs", "attempts", "billed", "video s", "tokens", "cost"):
        table.add_column(name, justify="left" if name in ("", "currency") else "right")
    table.add_column("per s", justify="right")
    for line in report.lines:
        table.add_row(*_cells(line))
    for line in report.totals:
        table.add_row(*_cells(line), style="bold")
    _print_table(table)


def _print_table(table: Table) -> None:
    # Piped into a file or another program, a report is never cut at 80 columns.
    (out if out.is_terminal else Console(width=REPORT_WIDTH)).print(table)


def _cells(line: CostLine) -> list[str]:
    per_second = f"{line.cost_per_second:.4f}" if line.cost_per_second is not None else "-"
    return [
        line.group,
        line.currency,
        str(line.jobs),
        str(line.attempts),
        str(line.billed_attempts),
        str(line.video_seconds),
        f"{line.tokens:,}",
        f"{line.cost:.4f}",
        per_second,
    ]


@app.command()
def reconcile(
    since: Annotated[str | None, typer.Option(help="first day, YYYY-MM-DD (UTC)")] = None,
    invoice: Annotated[
        Path | None, typer.Option(help="invoice CSV: date,model,tokens,amount,currency")
    ] = None,
    provider: Annotated[
        bool, typer.Option(help="compare with the provider's task list (last 7 days)")
    ] = True,
    temporal: Annotated[
        bool, typer.Option(help="ask Temporal which job owns a task missing from the ledger")
    ] = True,
    grace_minutes: Annotated[
        float, typer.Option(help="tasks finished this recently are in flight, not judged")
    ] = 60.0,
    tolerance: Annotated[float, typer.Option(help="invoice amount tolerance")] = 0.01,
    invoice_timezone: Annotated[str, typer.Option(help="time zone of the invoice's days")] = "UTC",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Compare the ledger with the provider's task list and an invoice; exit 1 on mismatch."""
    first = _day(since, "--since")
    lines = None
    if invoice is not None:
        try:
            lines = read_invoice(invoice)
        except InvoiceError as exc:
            err.print(f"[red]invoice:[/] {exc}")
            raise typer.Exit(EXIT_INVALID) from None
    if not provider and lines is None:
        err.print("[red]nothing to compare:[/] give --invoice or leave --provider on")
        raise typer.Exit(EXIT_INVALID)
    settings = _settings()
    with closing(_ledger(settings)) as ledger:
        report = asyncio.run(
            _reconcile(
                settings,
                ledger,
                first,
                lines,
                provider=provider,
                temporal=temporal,
                grace=timedelta(minutes=grace_minutes),
                tolerance=tolerance,
                invoice_timezone=invoice_timezone,
            )
        )
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))  # noqa: T201
    else:
        _print_reconcile(report)
    raise typer.Exit(report.exit_code)


async def _reconcile(
    settings: Settings,
    ledger: Ledger,
    since: date | None,
    lines: list[InvoiceLine] | None,
    *,
    provider: bool,
    temporal: bool,
    grace: timedelta,
    tolerance: float,
    invoice_timezone: str,
) -> ReconcileReport:
    report = ReconcileReport(now=utc_now(), provider_since=None, tolerance=Decimal(str(tolerance)))
    start, _ = day_window(since, None)
    if provider:
        owners = await _owner_lookup(report) if temporal else None
        timeout = httpx.Timeout(settings.retries.http_timeout_seconds, connect=10.0)
        async with httpx.AsyncClient(timeout=timeout) as http:
            await reconcile_provider(
                report, settings, ledger, ProviderClient(http), start, owners=owners, grace=grace
            )
    if lines is not None:
        await reconcile_invoice(
            report, ledger, lines, since=since, invoice_timezone=invoice_timezone
        )
    return report


async def _owner_lookup(report: ReconcileReport) -> OwnerLookup | None:
    try:
        client = await connect()
    except TemporalUnavailable as exc:
        report.notes.append(f"Temporal not consulted: {exc}")
        return None
    directory = JobDirectoryActivities(client)

    async def lookup(task_ids: list[str]) -> dict[str, str]:
        return await directory.task_owners(TaskOwnersInput(job_id="", task_ids=task_ids))

    return lookup


def _print_reconcile(report: ReconcileReport) -> None:
    since = f"{report.provider_since:%Y-%m-%d %H:%M} UTC" if report.provider_since else "-"
    out.print(
        f"provider since {since}: routes {', '.join(report.routes_checked) or 'none'}, "
        f"{report.provider_tasks} tasks, {report.ledger_rows} ledger rows, "
        f"{report.matched} matched, {len(report.in_flight)} in flight"
    )
    if report.invoice:
        table = Table(title="invoice vs ledger (billed)")
        for name in ("day", "model", "currency", "ledger tokens", "invoice tokens"):
            table.add_column(name)
        for name in ("ledger amount", "invoice amount", "status"):
            table.add_column(name)
        for c in report.invoice:
            table.add_row(
                c.day.isoformat(),
                c.model,
                c.currency,
                f"{c.ledger_tokens:,}",
                f"{c.invoice_tokens:,}",
                f"{c.ledger_amount:.6f}",
                f"{c.invoice_amount:.6f}",
                c.status(report.tolerance),
            )
        _print_table(table)
    for note in report.notes:
        out.print(f"note: {note}")
    for finding in report.findings:
        out.print(f"[red]{finding.kind}[/]: {finding.message}")
    if not report.findings:
        out.print("[green]no mismatch found[/]")
