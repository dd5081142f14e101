"""PostgreSQL ledger: for deployments where several workers (hosts) share one ledger.

One connection per process, guarded by a lock (the ledger sees one write per finished job, so
a pool would buy nothing) and reopened when the server dropped it; a failed call raises and
Temporal retries the activity. Budget checks of one route and currency are serialised with a
transaction-scoped advisory lock, and migrations with another, so racing workers neither
overshoot a cap nor apply a migration twice; everything that decides a task's claim holds a
lock on that task for its transaction. Money is NUMERIC, so sums are exact.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from seedance_pipeline.adapters.ledger_schema import (
    CLAIM_COLUMNS,
    COLUMNS,
    KEY,
    UNATTRIBUTED_COLUMNS,
    BudgetDecision,
    Hold,
    LedgerSchemaError,
    LedgerUnavailable,
    TaskClaimedElsewhere,
    claim_from_row,
    entry_from_row,
    pending,
    redact,
    unattributed_from_row,
)
from seedance_pipeline.core.budget import BudgetVerdict, Period, Spend
from seedance_pipeline.core.models import ClaimTaskInput, LedgerEntry, TaskClaim, UnattributedTask
from seedance_pipeline.core.settings import POSTGRES_URL_SCHEMES

SCHEMES = POSTGRES_URL_SCHEMES
MIGRATION_LOCK = 0x5EED_A11CE  # any constant shared by every worker of this project

# Column names are the constants of ledger_schema, never user input; values are bound.
_UPSERT = (
    f"INSERT INTO ledger ({', '.join(COLUMNS)}) VALUES ({', '.join('%s' for _ in COLUMNS)}) "  # noqa: S608
    f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c not in KEY)
    # The provider never un-bills: a late unbilled write of a billed task keeps the bill.
    + " WHERE NOT (ledger.billed AND NOT EXCLUDED.billed "
    "AND ledger.provider_task_id IS NOT DISTINCT FROM EXCLUDED.provider_task_id)"
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
_CLAIM = (
    f"INSERT INTO task_claims ({', '.join(CLAIM_COLUMNS)}) VALUES (%s, %s, %s, %s, %s, %s) "  # noqa: S608
    "ON CONFLICT (provider_task_id) DO NOTHING"
)
_OWNER = f"SELECT {', '.join(CLAIM_COLUMNS)} FROM task_claims WHERE provider_task_id = %s"  # noqa: S608
_OWNERS = f"SELECT {', '.join(CLAIM_COLUMNS)} FROM task_claims WHERE provider_task_id = ANY(%s)"  # noqa: S608
_UNATTRIBUTED = (
    f"INSERT INTO unattributed_tasks ({', '.join(UNATTRIBUTED_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('%s' for _ in UNATTRIBUTED_COLUMNS)}) ON CONFLICT (provider_task_id) "
    "DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in UNATTRIBUTED_COLUMNS if c != "provider_task_id")
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
                raise LedgerUnavailable(
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
            if entry.provider_task_id:
                owner = _claim(conn, _claim_of(entry), datetime.now(UTC))
                if not owner.won:
                    raise TaskClaimedElsewhere(entry, owner)
            conn.execute(_UPSERT, [row[c] for c in COLUMNS])
            conn.execute("DELETE FROM budget_holds WHERE job_id = %s", (entry.job_id,))

    def claim(self, claim: ClaimTaskInput, at: datetime) -> TaskClaim:
        with self._transaction() as conn:
            return _claim(conn, claim, at)

    def claims(self, task_ids: Sequence[str]) -> dict[str, TaskClaim]:
        with self._transaction() as conn:
            rows = conn.execute(_OWNERS, (list(dict.fromkeys(task_ids)),)).fetchall()
        return {r["provider_task_id"]: claim_from_row(r) for r in rows}

    def record_unattributed(self, task: UnattributedTask) -> bool:
        with self._transaction() as conn:
            _lock_task(conn, task.task_id)
            if conn.execute(_OWNER, (task.task_id,)).fetchone() is not None:
                return False
            conn.execute(
                _UNATTRIBUTED,
                (
                    task.task_id,
                    task.route,
                    task.model_id,
                    task.status,
                    task.tokens,
                    task.unit_price,
                    task.currency,
                    task.cost,
                    Jsonb(task.candidates),
                    task.note,
                    task.seen_at,
                ),
            )
        return True

    def unattributed(self, since: datetime | None = None) -> list[UnattributedTask]:
        where, params = ("WHERE seen_at >= %s", [since]) if since else ("", [])
        sql = (
            f"SELECT {', '.join(UNATTRIBUTED_COLUMNS)} FROM unattributed_tasks {where} "  # noqa: S608
            "ORDER BY seen_at, provider_task_id"
        )
        with self._transaction() as conn:
            rows = conn.execute(sql.encode(), params).fetchall()
        return [unattributed_from_row(r) for r in rows]

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
        sql = f"{_SELECT}{where} ORDER BY finished_at, job_id, run, submit_no"
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


def _claim_of(entry: LedgerEntry) -> ClaimTaskInput:
    return ClaimTaskInput(
        job_id=entry.job_id,
        run=entry.run,
        submit_no=entry.submit_no,
        route=entry.route,
        task_id=entry.provider_task_id or "",
    )


def _lock_task(conn: psycopg.Connection[dict[str, Any]], task_id: str) -> None:
    """Serialise claims and unattributed records of one task until the transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"seedance-task:{task_id}",))


def _claim(
    conn: psycopg.Connection[dict[str, Any]], claim: ClaimTaskInput, at: datetime
) -> TaskClaim:
    """Inside a transaction: take the claim if nobody has; the owner, `won` when it is this
    create. A won claim attributes the task, so it is no longer an unattributed one."""
    _lock_task(conn, claim.task_id)
    conn.execute(_CLAIM, (claim.task_id, claim.job_id, claim.run, claim.submit_no, claim.route, at))
    owner = claim_from_row(_one(conn.execute(_OWNER, (claim.task_id,)).fetchone()))
    won = owner.owned_by(claim.job_id, claim.run, claim.submit_no)
    if won:
        conn.execute("DELETE FROM unattributed_tasks WHERE provider_task_id = %s", (claim.task_id,))
    return owner.model_copy(update={"won": won})


def _current(conn: psycopg.Connection[dict[str, Any]]) -> int:
    row = _one(conn.execute("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version").fetchone())
    return int(row["v"])


def _one(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:  # an aggregate always returns a row; this guards the type, not the data
        raise RuntimeError("the ledger returned no row for an aggregate query")
    return row
