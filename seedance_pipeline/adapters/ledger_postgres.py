"""PostgreSQL ledger: for deployments where several workers (hosts) share one ledger.

One connection per process, guarded by a lock (the ledger sees one write per finished job, so
a pool would buy nothing) and reopened when the server dropped it; a failed call raises and
Temporal retries the activity. Budget checks of one route and currency are serialised with a
transaction-scoped advisory lock, and migrations with another, so racing workers neither
overshoot a cap nor apply a migration twice. Money is NUMERIC, so sums are exact.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from seedance_pipeline.adapters.ledger_schema import (
    COLUMNS,
    KEY,
    BudgetDecision,
    Hold,
    LedgerSchemaError,
    entry_from_row,
    pending,
    redact,
)
from seedance_pipeline.core.budget import BudgetVerdict, Period, Spend
from seedance_pipeline.core.models import LedgerEntry
from seedance_pipeline.core.settings import POSTGRES_URL_SCHEMES

SCHEMES = POSTGRES_URL_SCHEMES
MIGRATION_LOCK = 0x5EED_A11CE  # any constant shared by every worker of this project

# Column names are the constants of ledger_schema, never user input; values are bound.
_UPSERT = (
    f"INSERT INTO ledger ({', '.join(COLUMNS)}) VALUES ({', '.join('%s' for _ in COLUMNS)}) "  # noqa: S608
    f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c not in KEY)
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM ledger"  # noqa: S608
_BILLED = (
    "SELECT COALESCE(SUM(cost), 0) AS total FROM ledger WHERE billed AND route = %s "
    "AND currency = %s AND finished_at >= %s AND finished_at < %s"
)
_BILLED_TENANT = _BILLED + " AND tenant = %s"
_HELD = (
    "SELECT COALESCE(SUM(amount), 0) AS total, COUNT(*) AS n FROM budget_holds "
    "WHERE scope = %s AND route = %s AND currency = %s AND held_at >= %s"
)
_HOLD = (
    "INSERT INTO budget_holds (job_id, scope, route, currency, amount, held_at, tenant) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


def is_postgres_url(url: str) -> bool:
    return url.startswith(SCHEMES)


class PostgresLedger:
    """The ledger in a PostgreSQL database (the schema is created on first open)."""

    def __init__(self, url: str) -> None:
        if not is_postgres_url(url):
            raise ValueError(f"ledger URL {redact(url)!r} is not a postgresql:// URL")
        self._url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[dict[str, Any]] | None = None
        self._migrate()

    @classmethod
    def from_url(cls, url: str) -> PostgresLedger:
        return cls(url)

    def _connection(self) -> psycopg.Connection[dict[str, Any]]:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            try:
                conn = psycopg.connect(
                    self._url, autocommit=True, connect_timeout=10, row_factory=dict_row
                )
            except psycopg.OperationalError as exc:
                # libpq's message names host and port, never the password; the URL is redacted.
                raise psycopg.OperationalError(
                    f"cannot connect to the ledger at {redact(self._url)}: {exc}"
                ) from None
            conn.execute("SET TIME ZONE 'UTC'")
            self._conn = conn
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                yield conn

    def _migrate(self) -> None:
        with self._transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            try:
                for migration in pending(_current(conn)):
                    for statement in migration.postgres:
                        conn.execute(statement.encode())
                    conn.execute(
                        "INSERT INTO schema_version (version, description) VALUES (%s, %s)",
                        (migration.version, migration.description),
                    )
            except psycopg.Error as exc:
                raise LedgerSchemaError(f"ledger migration failed: {exc}") from exc

    def schema_version(self) -> int:
        with self._transaction() as conn:
            return _current(conn)

    def upsert(self, entry: LedgerEntry) -> None:
        row = entry.model_dump()
        with self._transaction() as conn:
            conn.execute(_UPSERT, [row[c] for c in COLUMNS])
            conn.execute("DELETE FROM budget_holds WHERE job_id = %s", (entry.job_id,))

    def entries(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        tenant: str | None = None,
    ) -> list[LedgerEntry]:
        clauses: list[str] = []
        params: list[datetime | str] = []
        if tenant is not None:
            clauses.append("tenant = %s")
            params.append(tenant)
        if since is not None:
            clauses.append("finished_at >= %s")
            params.append(since)
        if until is not None:
            clauses.append("finished_at < %s")
            params.append(until)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"{_SELECT}{where} ORDER BY finished_at, job_id, submit_no"
        with self._transaction() as conn:
            rows = conn.execute(sql.encode(), params).fetchall()
        return [entry_from_row(r) for r in rows]

    def check_budget(
        self,
        hold: Hold,
        windows: Sequence[Period],
        holds_since: datetime,
        decide: BudgetDecision,
    ) -> BudgetVerdict:
        with self._transaction() as conn:
            # hashtext() maps the key to the int4 the lock takes; a collision only serialises
            # two unrelated routes, never breaks a cap.
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))",
                (f"seedance-budget:{hold.scope}:{hold.route}:{hold.currency}",),
            )
            conn.execute(
                "DELETE FROM budget_holds WHERE job_id = %s AND scope = %s",
                (hold.job_id, hold.scope),
            )
            billed = {}
            for w in windows:
                if hold.tenant is None:
                    found = conn.execute(_BILLED, (hold.route, hold.currency, w.start, w.end))
                else:
                    found = conn.execute(
                        _BILLED_TENANT, (hold.route, hold.currency, w.start, w.end, hold.tenant)
                    )
                billed[w.name] = float(_one(found.fetchone())["total"])
            held = _one(
                conn.execute(_HELD, (hold.scope, hold.route, hold.currency, holds_since)).fetchone()
            )
            spend = Spend(billed=billed, held=float(held["total"]), held_jobs=int(held["n"]))
            verdict = decide(spend)
            if verdict.allowed and hold.amount > 0:
                conn.execute(
                    _HOLD,
                    (
                        hold.job_id,
                        hold.scope,
                        hold.route,
                        hold.currency,
                        hold.amount,
                        hold.at,
                        hold.tenant,
                    ),
                )
        return verdict

    def release(self, job_id: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM budget_holds WHERE job_id = %s", (job_id,))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _current(conn: psycopg.Connection[dict[str, Any]]) -> int:
    row = _one(conn.execute("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version").fetchone())
    return int(row["v"])


def _one(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:  # an aggregate always returns a row; this guards the type, not the data
        raise RuntimeError("the ledger returned no row for an aggregate query")
    return row
