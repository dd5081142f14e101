"""SQLite ledger: one file, no server; the default for one host.

WAL mode lets reports read while a worker writes. The connection runs in autocommit mode and
every multi-statement change is an explicit `BEGIN IMMEDIATE` transaction: it takes the write
lock up front, so two worker processes sharing the file serialise their budget checks
instead of both reading the same spend. Timestamps are stored as fixed-width UTC text.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from seedance_pipeline.adapters.ledger_schema import (
    COLUMNS,
    KEY,
    TIMESTAMPS,
    BudgetDecision,
    Hold,
    entry_from_row,
    pending,
    sqlite_time,
)
from seedance_pipeline.core.budget import BudgetVerdict, Period, Spend
from seedance_pipeline.core.models import LedgerEntry

PREFIX = "sqlite:///"

# Column names are the constants of ledger_schema, never user input; values are bound.
_UPSERT = (
    f"INSERT INTO ledger ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)}) "  # noqa: S608
    f"ON CONFLICT({', '.join(KEY)}) DO UPDATE SET "
    + ", ".join(f"{c}=excluded.{c}" for c in COLUMNS if c not in KEY)
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM ledger"  # noqa: S608
_BILLED = (
    "SELECT COALESCE(SUM(cost), 0) FROM ledger WHERE billed = 1 AND route = ? "
    "AND currency = ? AND finished_at >= ? AND finished_at < ?"
)
_BILLED_TENANT = _BILLED + " AND tenant = ?"
_HELD = (
    "SELECT COALESCE(SUM(amount), 0), COUNT(*) FROM budget_holds "
    "WHERE scope = ? AND route = ? AND currency = ? AND held_at >= ?"
)
_HOLD = (
    "INSERT INTO budget_holds (job_id, scope, route, currency, amount, held_at, tenant) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


class SqliteLedger:
    """The ledger in one SQLite file (created, with its directory, on first open)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(
            path, check_same_thread=False, timeout=30, isolation_level=None
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._lock = threading.Lock()
        self._migrate()

    @classmethod
    def from_url(cls, url: str) -> SqliteLedger:
        if not url.startswith(PREFIX):
            raise ValueError(f"ledger URL {url!r} not supported (expected sqlite:///path)")
        return cls(Path(url[len(PREFIX) :]))

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                with suppress(sqlite3.Error):  # SQLite may already have rolled back
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            for migration in pending(_current(conn)):
                for statement in migration.sqlite:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version VALUES (?, ?, ?)",
                    (migration.version, migration.description, sqlite_time(datetime.now(UTC))),
                )

    def schema_version(self) -> int:
        with self._lock:
            return _current(self._conn)

    def upsert(self, entry: LedgerEntry) -> None:
        row = entry.model_dump()
        values = [_param(c, row[c]) for c in COLUMNS]
        with self._transaction() as conn:
            conn.execute(_UPSERT, values)
            conn.execute("DELETE FROM budget_holds WHERE job_id = ?", (entry.job_id,))

    def entries(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        tenant: str | None = None,
    ) -> list[LedgerEntry]:
        clauses: list[str] = []
        params: list[str] = []
        if tenant is not None:
            clauses.append("tenant = ?")
            params.append(tenant)
        if since is not None:
            clauses.append("finished_at >= ?")
            params.append(sqlite_time(since))
        if until is not None:
            clauses.append("finished_at < ?")
            params.append(sqlite_time(until))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            cursor = self._conn.execute(
                f"{_SELECT}{where} ORDER BY finished_at, job_id, submit_no", params
            )
            rows = cursor.fetchall()
        return [entry_from_row(dict(zip(COLUMNS, r, strict=True))) for r in rows]

    def check_budget(
        self,
        hold: Hold,
        windows: Sequence[Period],
        holds_since: datetime,
        decide: BudgetDecision,
    ) -> BudgetVerdict:
        with self._transaction() as conn:
            conn.execute(
                "DELETE FROM budget_holds WHERE job_id = ? AND scope = ?",
                (hold.job_id, hold.scope),
            )
            billed = {}
            for w in windows:
                params = [hold.route, hold.currency, sqlite_time(w.start), sqlite_time(w.end)]
                sql = _BILLED if hold.tenant is None else _BILLED_TENANT
                if hold.tenant is not None:
                    params.append(hold.tenant)
                billed[w.name] = float(conn.execute(sql, params).fetchone()[0])
            held, count = conn.execute(
                _HELD, (hold.scope, hold.route, hold.currency, sqlite_time(holds_since))
            ).fetchone()
            verdict = decide(Spend(billed=billed, held=float(held), held_jobs=int(count)))
            if verdict.allowed and hold.amount > 0:
                conn.execute(
                    _HOLD,
                    (
                        hold.job_id,
                        hold.scope,
                        hold.route,
                        hold.currency,
                        hold.amount,
                        sqlite_time(hold.at),
                        hold.tenant,
                    ),
                )
        return verdict

    def release(self, job_id: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM budget_holds WHERE job_id = ?", (job_id,))

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _current(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])


def _param(column: str, value: Any) -> Any:
    if column in TIMESTAMPS:
        return sqlite_time(value)
    if column == "billed":
        return int(bool(value))
    return value
