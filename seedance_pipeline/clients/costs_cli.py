"""`costs`: the ledger's report, a Typer sub-app merged into starter.py.

It reads the ledger where it is: this shell's SEEDANCE_LEDGER__URL when set, else the ledger
the stack `make up` recorded (so a stack on a moved data directory is reported, not an
empty default file), else the configured default. Exit 2 on bad dates or no ledger.
"""

from __future__ import annotations

import os
from contextlib import closing
from datetime import date
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from seedance_pipeline.adapters.ledger import open_ledger
from seedance_pipeline.adapters.ledger_schema import Ledger, redact
from seedance_pipeline.adapters.stack_record import read_record
from seedance_pipeline.clients.cli_session import BadArgument, Session, session
from seedance_pipeline.clients.costs import CostLine, CostReport, cost_report, day_window, parse_day

app = typer.Typer(add_completion=False, help="Cost ledger reports.")


class By(StrEnum):
    day = "day"
    model = "model"
    route = "route"
    outcome = "outcome"
    run = "run"


def ledger_url(session: Session) -> tuple[str, str]:
    """The ledger to report on, and where that choice came from."""
    if os.environ.get("SEEDANCE_LEDGER__URL", "").strip() or os.environ.get("SEEDANCE_CONFIG"):
        return session.settings().ledger.url, "this shell's settings"
    record = read_record()
    if record is not None and record.ledger:
        return record.ledger, "the stack `make up` recorded"
    return session.settings().ledger.url, "the default settings"


def _ledger(session: Session) -> Ledger:
    url, source = ledger_url(session)
    try:
        return open_ledger(url)
    except Exception as exc:  # any driver or file error: say it and stop, no traceback
        raise BadArgument(f"ledger {redact(url)} ({source}) unavailable: {exc}") from None


def _day(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return parse_day(value)
    except ValueError as exc:
        raise BadArgument(f"{flag}: {exc}") from None


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
        raise BadArgument(f"invalid dates: {exc}") from None
    with closing(_ledger(session())) as ledger:
        orphans = [u for u in ledger.unattributed(start) if end is None or u.seen_at < end]
        report = cost_report(ledger.entries(start, end), by.value, first, last, orphans)
    if as_json:
        session().out.json(report.as_dict())
        return
    _print_costs(report)


def _print_costs(report: CostReport) -> None:
    window = f"{report.since or 'start'} .. {report.until or 'today'}"
    if not report.lines:
        session().out.result(f"no ledger rows ({window})")
        return
    table = Table(title=f"costs by {report.by} ({window})")
    for name in ("", "currency", "jobs", "attempts", "billed", "video s", "tokens", "cost"):
        table.add_column(name, justify="left" if name in ("", "currency") else "right")
    table.add_column("per s", justify="right")
    for line in report.lines:
        table.add_row(*_cells(line))
    for line in report.totals:
        table.add_row(*_cells(line), style="bold")
    session().out.table(table)


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
