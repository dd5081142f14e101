"""SQLite ledger: one file, no server; the default for one host.

WAL mode lets reports read while a worker writes. The connection runs in autocommit mode and
every multi-statement change is an explicit `BEGIN IMMEDIATE` transaction: it takes the write
lock up front, so two worker processes sharing the file serialise their budget checks
instead of both reading the same spend (and claims of one task are decided one at a time).
Timestamps are stored as fixed-width UTC text.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from seedance_pipeline.adapters.ledger_schema import (
    CLAIM_COLUMNS,
    COLUMNS,
    KEY,
    TIMESTAMPS,
    UNATTRIBUTED_COLUMNS,
    BudgetDecision,
    Hold,
    TaskClaimedElsewhere,
    claim_from_row,
    entry_from_row,
    pending,
    sqlite_time,
    unattributed_from_row,
)
from seedance_pipeline.core.budget import BudgetVerdict, Period, Spend
from seedance_pipeline.core.models import ClaimTaskInput, LedgerEntry, TaskClaim, UnattributedTask

PREFIX = "sqlite:///"

# Column names are the constants of ledger_schema, never user input; values are bound.
_UPSERT = (
    f"INSERT INTO ledger ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)}) "  # noqa: S608
    f"ON CONFLICT({', '.join(KEY)}) DO UPDATE SET "
    + ", ".join(f"{c}=excluded.{c}" for c in COLUMNS if c not in KEY)
    # The provider never un-bills: a late unbilled write of a billed task (a job's "cancelled,
    # 0 tokens" row landing after its follower's bill) keeps the bill.
    + " WHERE NOT (ledger.billed = 1 AND excluded.billed = 0 "
    "AND ledger.provider_task_id IS excluded.provider_task_id)"
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
_CLAIM = (
    f"INSERT INTO task_claims ({', '.join(CLAIM_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?) "  # noqa: S608
    "ON CONFLICT (provider_task_id) DO NOTHING"
)
_OWNER = f"SELECT {', '.join(CLAIM_COLUMNS)} FROM task_claims WHERE provider_task_id = ?"  # noqa: S608
_UNATTRIBUTED = (
    f"INSERT INTO unattributed_tasks ({', '.join(UNATTRIBUTED_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' for _ in UNATTRIBUTED_COLUMNS)}) ON CONFLICT (provider_task_id) "
    "DO UPDATE SET "
    + ", ".join(f"{c}=excluded.{c}" for c in UNATTRIBUTED_COLUMNS if c != "provider_task_id")
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
                if migration.sqlite_rekey:
                    _rebuild(conn, "ledger", migration.sqlite_rekey)
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
            if entry.provider_task_id:
                owner = _claim(conn, _claim_of(entry), datetime.now(UTC))
                if not owner.won:
                    raise TaskClaimedElsewhere(entry, owner)
            conn.execute(_UPSERT, values)
            conn.execute("DELETE FROM budget_holds WHERE job_id = ?", (entry.job_id,))

    def claim(self, claim: ClaimTaskInput, at: datetime) -> TaskClaim:
        with self._transaction() as conn:
            return _claim(conn, claim, at)

    def claims(self, task_ids: Sequence[str]) -> dict[str, TaskClaim]:
        found: dict[str, TaskClaim] = {}
        with self._lock:
            for task_id in dict.fromkeys(task_ids):
                row = self._conn.execute(_OWNER, (task_id,)).fetchone()
                if row is not None:
                    found[task_id] = claim_from_row(dict(zip(CLAIM_COLUMNS, row, strict=True)))
        return found

    def record_unattributed(self, task: UnattributedTask) -> bool:
        with self._transaction() as conn:
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
                    json.dumps(task.candidates),
                    task.note,
                    sqlite_time(task.seen_at),
                ),
            )
        return True

    def unattributed(self, since: datetime | None = None) -> list[UnattributedTask]:
        where, params = ("WHERE seen_at >= ?", [sqlite_time(since)]) if since else ("", [])
        sql = (
            f"SELECT {', '.join(UNATTRIBUTED_COLUMNS)} FROM unattributed_tasks {where} "  # noqa: S608
            "ORDER BY seen_at, provider_task_id"
        )
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [
            unattributed_from_row(dict(zip(UNATTRIBUTED_COLUMNS, r, strict=True))) for r in rows
        ]

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
                f"{_SELECT}{where} ORDER BY finished_at, job_id, run, submit_no", params
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


def _claim_of(entry: LedgerEntry) -> ClaimTaskInput:
    return ClaimTaskInput(
        job_id=entry.job_id,
        run=entry.run,
        submit_no=entry.submit_no,
        route=entry.route,
        task_id=entry.provider_task_id or "",
    )


def _claim(conn: sqlite3.Connection, claim: ClaimTaskInput, at: datetime) -> TaskClaim:
    """Inside a write transaction: take the claim if nobody has; the owner, `won` when it is
    this create. A won claim attributes the task, so it is no longer an unattributed one."""
    conn.execute(
        _CLAIM,
        (claim.task_id, claim.job_id, claim.run, claim.submit_no, claim.route, sqlite_time(at)),
    )
    row = conn.execute(_OWNER, (claim.task_id,)).fetchone()
    owner = claim_from_row(dict(zip(CLAIM_COLUMNS, row, strict=True)))
    won = owner.owned_by(claim.job_id, claim.run, claim.submit_no)
    if won:
        conn.execute("DELETE FROM unattributed_tasks WHERE provider_task_id = ?", (claim.task_id,))
    return owner.model_copy(update={"won": won})


def _rebuild(conn: sqlite3.Connection, table: str, key: Sequence[str]) -> None:
    """Recreate `table` with primary key `key`, keeping every column, row and index it has.

    Names come from the migrations (constants) and from SQLite's own catalogue."""
    columns = conn.execute(f"PRAGMA table_info({table})").fetchall()
    indexes = [
        sql
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",
            (table,),
        )
    ]
    defs = []
    for _, name, type_, notnull, default, _ in columns:
        text = f"{name} {type_}".strip()
        if notnull:
            text += " NOT NULL"
        if default is not None:
            text += f" DEFAULT {default}"
        defs.append(text)
    names = ", ".join(c[1] for c in columns)
    rekeyed = f"{table}_rekeyed"
    conn.execute(f"CREATE TABLE {rekeyed} ({', '.join(defs)}, PRIMARY KEY ({', '.join(key)}))")
    conn.execute(f"INSERT INTO {rekeyed} ({names}) SELECT {names} FROM {table}")  # noqa: S608
    conn.execute(f"DROP TABLE {table}")
    conn.execute(f"ALTER TABLE {rekeyed} RENAME TO {table}")
    for sql in indexes:
        conn.execute(sql)


def _param(column: str, value: Any) -> Any:
    if column in TIMESTAMPS:
        return sqlite_time(value)
    if column == "billed":
        return int(bool(value))
    return value
