"""`starter.py reconcile`: the ledger against the provider's task list and an invoice, compared
on the worker (where the keys and the ledger are); this command only asks and prints.

Exit codes: 0 everything agrees, 1 something does not match, 2 a bad flag or file, or a part
could not be checked (a route with ledger rows but no key on the worker). Billed successes
without their ledger row or stored video are handed to followers (`--no-salvage`: report
only), as the worker's hourly schedule does; `--last` prints that schedule's latest report.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from seedance_pipeline.clients.cli_output import table
from seedance_pipeline.clients.cli_session import BadArgument, session
from seedance_pipeline.clients.costs import parse_day
from seedance_pipeline.clients.reconcile import (
    ScheduledReport,
    last_scheduled,
    read_invoice,
    run_reconcile,
)
from seedance_pipeline.core.reconcile import InvoiceLine, ReconcileInput, ReconcileResult

app = typer.Typer(add_completion=False, help="Ledger against provider and invoice.")


@app.command()
def reconcile(
    since: Annotated[
        str | None, typer.Option(help="first day, YYYY-MM-DD (UTC); default: the retention")
    ] = None,
    route: Annotated[str | None, typer.Option(help="one route (default: every route)")] = None,
    invoice: Annotated[
        Path | None, typer.Option(help="invoice CSV: date,model,tokens,amount,currency")
    ] = None,
    provider: Annotated[
        bool, typer.Option(help="compare with the provider's task list (the route's retention)")
    ] = True,
    grace_minutes: Annotated[
        float, typer.Option(min=0, help="tasks changed this recently are in flight, not judged")
    ] = 60.0,
    tolerance: Annotated[float, typer.Option(min=0, help="invoice amount tolerance")] = 0.01,
    invoice_timezone: Annotated[str, typer.Option(help="time zone of the invoice's days")] = "UTC",
    salvage: Annotated[
        bool,
        typer.Option(help="start a follower for each billed success without its row or video"),
    ] = True,
    last: Annotated[
        bool, typer.Option("--last", help="print the latest scheduled run's report instead")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Compare the ledger with the provider's task list and an invoice, on the worker (no key
    needed here), salvaging what can be; exit 1 on a mismatch."""
    if last:
        raise typer.Exit(_print_last(route, as_json))
    first = _day(since)
    try:
        ZoneInfo(invoice_timezone)
    except (ValueError, ZoneInfoNotFoundError):
        raise BadArgument(
            f"--invoice-timezone {invoice_timezone!r}: not a time zone (e.g. UTC, Asia/Shanghai)"
        ) from None
    lines: list[InvoiceLine] | None = read_invoice(invoice) if invoice is not None else None
    if not provider and lines is None:
        raise BadArgument("nothing to compare: give --invoice or leave --provider on")
    data = ReconcileInput(
        route=route,
        since=datetime.combine(first, time(), UTC) if first else None,
        grace_seconds=grace_minutes * 60,
        provider=provider,
        salvage=salvage,
        invoice=lines,
        invoice_since=first,
        invoice_timezone=invoice_timezone,
        tolerance=Decimal(str(tolerance)),
    )
    queue = session().settings().temporal.task_queue
    result = asyncio.run(_run(queue, data))
    if as_json:
        session().out.json(_dumped(result))
    else:
        _print(result)
    raise typer.Exit(result.exit_code)


def _dumped(result: ReconcileResult) -> dict[str, Any]:
    dumped = result.model_dump(mode="json")
    dumped.update(ok=not result.findings, routes_checked=result.routes_checked)
    for line, comparison in zip(dumped["invoice"], result.invoice, strict=True):
        line["status"] = comparison.status(result.tolerance)
    return dumped


def _print_last(route: str | None, as_json: bool) -> int:
    """The latest scheduled report per route; exit 2 when a route has none to show."""
    settings = session().settings()
    routes = [route] if route else sorted(settings.routes)

    async def read() -> list[ScheduledReport]:
        return await last_scheduled(await session().client(), settings.temporal.task_queue, routes)

    reports = asyncio.run(read())
    if as_json:
        session().out.json(
            [
                {
                    "route": r.route,
                    "workflow_id": r.workflow_id,
                    "started_at": r.started_at.isoformat() if r.started_at else None,
                    "problem": r.problem or None,
                    "report": _dumped(r.result) if r.result else None,
                }
                for r in reports
            ]
        )
    for r in [] if as_json else reports:
        when = f"{r.started_at:%Y-%m-%d %H:%M:%S} UTC" if r.started_at else "-"
        session().out.result(f"route {r.route}: scheduled run {r.workflow_id or '-'} at {when}")
        if r.result is None:
            session().out.result(f"  {r.problem}")
        else:
            _print(r.result)
    codes = [r.result.exit_code if r.result else 2 for r in reports]
    return max(codes, default=2)


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return parse_day(value)
    except ValueError as exc:
        raise BadArgument(f"--since: {exc}") from None


async def _run(queue: str, data: ReconcileInput) -> ReconcileResult:
    return await run_reconcile(await session().client(), queue, data)


def _print(result: ReconcileResult) -> None:
    out = session().out
    for r in result.routes:
        if not r.checked:
            continue
        since = f"{r.since:%Y-%m-%d %H:%M} UTC" if r.since else "-"
        out.result(
            f"route {r.route}: since {since} (retention {r.retention_hours:g} h): "
            f"{r.provider_tasks} tasks, {r.ledger_rows} ledger rows, {r.matched} matched, "
            f"{len(r.in_flight)} in flight"
        )
    if result.invoice:
        t = table(
            "day",
            "model",
            "currency",
            "ledger tokens",
            "invoice tokens",
            "ledger amount",
            "invoice amount",
            "status",
            title="invoice vs ledger (billed)",
        )
        for c in result.invoice:
            t.add_row(
                c.day.isoformat(),
                c.model,
                c.currency,
                f"{c.ledger_tokens:,}",
                f"{c.invoice_tokens:,}",
                f"{c.ledger_amount:.6f}",
                f"{c.invoice_amount:.6f}",
                c.status(result.tolerance),
            )
        out.table(t)
    for note in result.notes:
        out.result(f"note: {note}")
    for finding in result.findings:
        out.result(f"{finding.kind}: {finding.message}")
    for workflow_id in result.salvaged:
        out.result(f"salvaging: {workflow_id} records and stores its task")
    if not result.findings:
        out.result("no mismatch found")
