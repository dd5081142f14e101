"""Opening the cost ledger by URL: `sqlite:///path` (default, one host) or `postgresql://...`
(several workers). Used by the worker's ledger activities and by the CLI's reports."""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from seedance_pipeline.adapters.ledger_schema import Ledger, LedgerUnavailable, redact
from seedance_pipeline.adapters.ledger_sqlite import SqliteLedger

log = structlog.get_logger(__name__)


def open_ledger(url: str) -> Ledger:
    """The ledger behind `url`, migrated to the current schema."""
    if url.startswith("sqlite:///"):
        return SqliteLedger.from_url(url)
    # Imported here so SQLite-only installs and the workflow sandbox never load the driver.
    from seedance_pipeline.adapters.ledger_postgres import PostgresLedger, is_postgres_url

    if is_postgres_url(url):
        return PostgresLedger(url)
    raise ValueError(
        f"ledger URL {redact(url)!r} not supported: use sqlite:///path or postgresql://..."
    )


def open_ledger_when_up(
    url: str, within: float = 120.0, *, sleep: Callable[[float], None] = time.sleep
) -> Ledger:
    """`open_ledger`, waiting up to `within` seconds for a ledger server that is down or
    restarting (a worker started during a Postgres restart comes up instead of crashing)."""
    give_up = time.monotonic() + within
    delay = 0.5
    while True:
        try:
            return open_ledger(url)
        except LedgerUnavailable as exc:
            if time.monotonic() + delay > give_up:
                raise
            log.warning("ledger.unavailable", error=str(exc), retry_in=delay)
            sleep(delay)
            delay = min(delay * 2, 10.0)
