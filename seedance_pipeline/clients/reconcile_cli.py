"""`starter.py reconcile`: the ledger against the provider's task list and an invoice, compared
on the worker (where the keys and the ledger are); this command only asks and prints.

Exit codes: 0 everything agrees, 1 something does not match, 2 a bad flag or file, or a part
could not be checked (a route with ledger rows but no key on the worker).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from seedance_pipeline.clients.cli_output import table
from seedance_pipeline.clients.cli_session import BadArgument, session
from seedance_pipeline.clients.costs import parse_day
from seedance_pipeline.clients.reconcile import read_invoice, run_reconcile
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
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Compare the ledger with the provider's task list and an invoice, on the worker (no key
    needed here); exit 1 on a mismatch."""
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
        invoice=lines,
        invoice_since=first,
        invoice_timezone=invoice_timezone,
        tolerance=Decimal(str(tolerance)),
    )
    queue = session().settings().temporal.task_queue
    result = asyncio.run(_run(queue, data))
    if as_json:
        dumped = result.model_dump(mode="json")
        dumped.update(ok=not result.findings, routes_checked=result.routes_checked)
        for line, comparison in zip(dumped["invoice"], result.invoice, strict=True):
            line["status"] = comparison.status(result.tolerance)
        session().out.json(dumped)
    else:
        _print(result)
    raise typer.Exit(result.exit_code)


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
    if not result.findings:
        out.result("no mismatch found")
