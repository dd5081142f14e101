"""Opening the cost ledger by URL: `sqlite:///path` (default, one host) or `postgresql://...`
(several workers). Used by the worker's ledger activities and by the CLI's reports."""

from __future__ import annotations

from seedance_pipeline.adapters.ledger_schema import Ledger, redact
from seedance_pipeline.adapters.ledger_sqlite import SqliteLedger


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
