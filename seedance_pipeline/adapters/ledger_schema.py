"""What every ledger backend shares: the interface, the columns and the ordered migrations.

The schema belongs to the project, not to an operator: each backend applies the pending
migrations when it opens, under a lock, and records them in `schema_version`, so several
workers starting together migrate once and an old worker refuses a newer schema instead of
writing rows it does not understand. Columns are added only by appending a migration here.

Rows are keyed by (job_id, run, submit_no): a retried write replaces its own row, a rerun of a
job adds rows beside the previous run's. Every provider task a row names is claimed
(`task_claims`) by the create that made it, first come first served, so no task is ever
recorded twice or adopted by two jobs; billed tasks nobody could claim are kept in
`unattributed_tasks` with their candidates, so their money is recorded too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from seedance_pipeline.core.budget import BudgetVerdict, Period, Spend
from seedance_pipeline.core.models import ClaimTaskInput, LedgerEntry, TaskClaim, UnattributedTask

COLUMNS: tuple[str, ...] = (
    "job_id",
    "run",
    "submit_no",
    "route",
    "model_alias",
    "model_id",
    "service_tier",
    "resolution",
    "ratio",
    "duration",
    "provider_task_id",
    "tokens",
    "estimated_tokens",
    "billed",
    "unit_price",
    "currency",
    "cost",
    "outcome",
    "error_code",
    "error_message",
    "requested_at",
    "finished_at",
    "tenant",
)
KEY = ("job_id", "run", "submit_no")
CLAIM_COLUMNS = ("provider_task_id", "job_id", "run", "submit_no", "route", "claimed_at")
UNATTRIBUTED_COLUMNS = (
    "provider_task_id",
    "route",
    "model_id",
    "status",
    "tokens",
    "unit_price",
    "currency",
    "cost",
    "candidates",
    "note",
    "seen_at",
)
TIMESTAMPS = ("requested_at", "finished_at")


class LedgerSchemaError(RuntimeError):
    """The database's schema is newer than this code, or a migration failed."""


class LedgerUnavailable(RuntimeError):
    """The ledger's server did not answer (down, restarting, unreachable); worth retrying."""


class TaskClaimedElsewhere(RuntimeError):
    """A row names a provider task another create claimed first: recording it would count one
    bill twice. Nothing was written."""

    def __init__(self, entry: LedgerEntry, owner: TaskClaim) -> None:
        super().__init__(
            f"provider task {entry.provider_task_id} is claimed by job {owner.job_id} run "
            f"{owner.run or '-'} submit {owner.submit_no}; refusing to record it again for job "
            f"{entry.job_id} run {entry.run or '-'} submit {entry.submit_no}"
        )
        self.owner = owner


@dataclass(frozen=True)
class Hold:
    """A budget check that passed: the job's estimate counts until it records its cost.

    A job holds once per scope it was checked in: the route's caps (`tenant` None) and, for
    an API job, its tenant's caps on that route; each scope measures only its own holds."""

    job_id: str
    route: str
    currency: str
    amount: float
    at: datetime
    tenant: str | None = None

    @property
    def scope(self) -> str:
        return "route" if self.tenant is None else f"tenant:{self.tenant}"


BudgetDecision = Callable[[Spend], BudgetVerdict]


class Ledger(Protocol):
    """A cost ledger: SQLite (one host) or PostgreSQL (several workers)."""

    def upsert(self, entry: LedgerEntry) -> None:
        """Write the row for (job_id, run, submit_no), replacing it if it exists (except that a
        billed row of a task is never replaced by an unbilled one: the provider never un-bills,
        so a job's late "0 tokens" write cannot undo its follower's bill); claim its
        provider task for that create (raises TaskClaimedElsewhere, writing nothing, when
        another create holds the claim); end the job's budget hold, since its cost now counts
        as itself."""

    def claim(self, claim: ClaimTaskInput, at: datetime) -> TaskClaim:
        """Claim a provider task for one create, atomically: the first claim wins for good, a
        repeated claim by the same create wins again (`won`). Returns the task's owner."""

    def claims(self, task_ids: Sequence[str]) -> dict[str, TaskClaim]:
        """The owners of those of `task_ids` that are claimed."""

    def record_unattributed(self, task: UnattributedTask) -> bool:
        """Keep a billed task nobody could claim (upsert by task ID). False, writing nothing,
        when some create has claimed it meanwhile (its own row records it)."""

    def unattributed(self, since: datetime | None = None) -> list[UnattributedTask]:
        """Unattributed tasks seen since `since`, oldest first."""

    def entries(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        tenant: str | None = None,
    ) -> list[LedgerEntry]:
        """Rows whose `finished_at` is in [since, until), oldest first; only `tenant`'s when
        given."""

    def check_budget(
        self,
        hold: Hold,
        windows: Sequence[Period],
        holds_since: datetime,
        decide: BudgetDecision,
    ) -> BudgetVerdict:
        """Atomically: drop the job's old hold in the hold's scope, measure spend and live
        holds for the hold's route and currency (and tenant, in a tenant's scope), ask
        `decide`, and keep the new hold when the job is allowed."""

    def release(self, job_id: str) -> None:
        """Forget the job's holds (it ended without recording a cost, or did record one)."""

    def schema_version(self) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]
    sqlite_rekey: tuple[str, ...] = ()
    """After the statements, the SQLite backend rebuilds `ledger` with this primary key,
    keeping every column and index the table has then (SQLite cannot alter a primary key, and
    a rebuild written out column by column would drop columns other migrations added)."""


_ISO_CANONICAL = "____-__-__T__:__:__.______Z"
RUN_KEY = ("job_id", "run", "submit_no")

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "ledger table: one row per billable job attempt, keyed by (job_id, submit_no)",
        # IF NOT EXISTS: a file written before migrations existed already has this table.
        sqlite=(
            """
            CREATE TABLE IF NOT EXISTS ledger (
                job_id TEXT NOT NULL,
                submit_no INTEGER NOT NULL,
                route TEXT NOT NULL,
                model_alias TEXT NOT NULL,
                model_id TEXT NOT NULL,
                service_tier TEXT NOT NULL,
                resolution TEXT,
                ratio TEXT,
                duration INTEGER,
                provider_task_id TEXT,
                tokens INTEGER NOT NULL,
                estimated_tokens INTEGER,
                billed INTEGER NOT NULL,
                unit_price REAL NOT NULL,
                currency TEXT NOT NULL,
                cost REAL NOT NULL,
                outcome TEXT NOT NULL,
                error_code TEXT,
                error_message TEXT,
                requested_at TEXT NOT NULL,
                finished_at TEXT NOT NULL,
                PRIMARY KEY (job_id, submit_no)
            )
            """,
        ),
        postgres=(
            """
            CREATE TABLE IF NOT EXISTS ledger (
                job_id TEXT NOT NULL,
                submit_no INTEGER NOT NULL,
                route TEXT NOT NULL,
                model_alias TEXT NOT NULL,
                model_id TEXT NOT NULL,
                service_tier TEXT NOT NULL,
                resolution TEXT,
                ratio TEXT,
                duration INTEGER,
                provider_task_id TEXT,
                tokens BIGINT NOT NULL,
                estimated_tokens BIGINT,
                billed BOOLEAN NOT NULL,
                unit_price DOUBLE PRECISION NOT NULL,
                currency TEXT NOT NULL,
                cost NUMERIC(20, 6) NOT NULL,
                outcome TEXT NOT NULL,
                error_code TEXT,
                error_message TEXT,
                requested_at TIMESTAMPTZ NOT NULL,
                finished_at TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (job_id, submit_no)
            )
            """,
        ),
    ),
    Migration(
        2,
        "canonical UTC timestamps (SQLite) and indexes for reports, budgets and reconcile",
        sqlite=(
            # Rows written before this migration hold pydantic's ISO form ("...Z", optional
            # fraction, maybe an offset); text comparison needs one fixed-width UTC form.
            *(
                f"UPDATE ledger SET {col} = strftime('%Y-%m-%dT%H:%M:%f', {col}) || '000Z' "  # noqa: S608 (constants)
                f"WHERE {col} NOT LIKE '{_ISO_CANONICAL}'"
                for col in TIMESTAMPS
            ),
            "CREATE INDEX IF NOT EXISTS ledger_finished ON ledger (finished_at)",
            "CREATE INDEX IF NOT EXISTS ledger_budget ON ledger (route, currency, finished_at)",
            "CREATE INDEX IF NOT EXISTS ledger_task ON ledger (provider_task_id)",
        ),
        postgres=(
            "CREATE INDEX IF NOT EXISTS ledger_finished ON ledger (finished_at)",
            "CREATE INDEX IF NOT EXISTS ledger_budget ON ledger (route, currency, finished_at)",
            "CREATE INDEX IF NOT EXISTS ledger_task ON ledger (provider_task_id)",
        ),
    ),
    Migration(
        3,
        "budget holds: estimates of jobs in flight that passed a budget check",
        sqlite=(
            """
            CREATE TABLE budget_holds (
                job_id TEXT PRIMARY KEY,
                route TEXT NOT NULL,
                currency TEXT NOT NULL,
                amount REAL NOT NULL,
                held_at TEXT NOT NULL
            )
            """,
            "CREATE INDEX budget_holds_route ON budget_holds (route, currency, held_at)",
        ),
        postgres=(
            """
            CREATE TABLE budget_holds (
                job_id TEXT PRIMARY KEY,
                route TEXT NOT NULL,
                currency TEXT NOT NULL,
                amount NUMERIC(20, 6) NOT NULL,
                held_at TIMESTAMPTZ NOT NULL
            )
            """,
            "CREATE INDEX budget_holds_route ON budget_holds (route, currency, held_at)",
        ),
    ),
    Migration(
        4,
        "tenants: the API tenant of each row, and budget holds per scope (route or tenant)",
        sqlite=(
            "ALTER TABLE ledger ADD COLUMN tenant TEXT",
            "CREATE INDEX ledger_tenant ON ledger (tenant, route, currency, finished_at)",
            # SQLite cannot change a primary key in place: rebuild the small holds table.
            """
            CREATE TABLE budget_holds_v4 (
                job_id TEXT NOT NULL,
                scope TEXT NOT NULL,
                route TEXT NOT NULL,
                currency TEXT NOT NULL,
                amount REAL NOT NULL,
                held_at TEXT NOT NULL,
                tenant TEXT,
                PRIMARY KEY (job_id, scope)
            )
            """,
            "INSERT INTO budget_holds_v4 (job_id, scope, route, currency, amount, held_at) "
            "SELECT job_id, 'route', route, currency, amount, held_at FROM budget_holds",
            "DROP TABLE budget_holds",
            "ALTER TABLE budget_holds_v4 RENAME TO budget_holds",
            "CREATE INDEX budget_holds_scope ON budget_holds (scope, route, currency, held_at)",
        ),
        postgres=(
            "ALTER TABLE ledger ADD COLUMN tenant TEXT",
            "CREATE INDEX ledger_tenant ON ledger (tenant, route, currency, finished_at)",
            "ALTER TABLE budget_holds ADD COLUMN scope TEXT NOT NULL DEFAULT 'route'",
            "ALTER TABLE budget_holds ADD COLUMN tenant TEXT",
            "ALTER TABLE budget_holds DROP CONSTRAINT budget_holds_pkey",
            "ALTER TABLE budget_holds ADD PRIMARY KEY (job_id, scope)",
            "DROP INDEX IF EXISTS budget_holds_route",
            "CREATE INDEX budget_holds_scope ON budget_holds (scope, route, currency, held_at)",
        ),
    ),
    # Its own step after the tenants' (4): it adds a column and changes the key, nothing
    # else, whatever came before.
    Migration(
        5,
        "reruns add, never replace: the run joins the key (job_id, run, submit_no); rows "
        "written before are run ''",
        sqlite=("ALTER TABLE ledger ADD COLUMN run TEXT NOT NULL DEFAULT ''",),
        postgres=(
            "ALTER TABLE ledger ADD COLUMN run TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE ledger DROP CONSTRAINT ledger_pkey",
            f"ALTER TABLE ledger ADD PRIMARY KEY ({', '.join(RUN_KEY)})",
        ),
        sqlite_rekey=RUN_KEY,
    ),
    Migration(
        6,
        "task claims (a provider task belongs to the one create that claimed it first) and "
        "unattributed billed tasks; claims taken for every task the ledger already records",
        sqlite=(
            """
            CREATE TABLE task_claims (
                provider_task_id TEXT PRIMARY KEY,
                job_id TEXT NOT NULL,
                run TEXT NOT NULL,
                submit_no INTEGER NOT NULL,
                route TEXT NOT NULL,
                claimed_at TEXT NOT NULL
            )
            """,
            "CREATE INDEX task_claims_create ON task_claims (job_id, run, submit_no)",
            f"INSERT INTO task_claims ({', '.join(CLAIM_COLUMNS)}) "  # noqa: S608 (constants)
            "SELECT provider_task_id, job_id, run, submit_no, route, finished_at FROM ledger "
            "WHERE provider_task_id IS NOT NULL ORDER BY finished_at "
            "ON CONFLICT (provider_task_id) DO NOTHING",
            """
            CREATE TABLE unattributed_tasks (
                provider_task_id TEXT PRIMARY KEY,
                route TEXT NOT NULL,
                model_id TEXT NOT NULL,
                status TEXT NOT NULL,
                tokens INTEGER NOT NULL,
                unit_price REAL NOT NULL,
                currency TEXT NOT NULL,
                cost REAL NOT NULL,
                candidates TEXT NOT NULL,
                note TEXT NOT NULL,
                seen_at TEXT NOT NULL
            )
            """,
            "CREATE INDEX unattributed_seen ON unattributed_tasks (seen_at)",
        ),
        postgres=(
            """
            CREATE TABLE task_claims (
                provider_task_id TEXT PRIMARY KEY,
                job_id TEXT NOT NULL,
                run TEXT NOT NULL,
                submit_no INTEGER NOT NULL,
                route TEXT NOT NULL,
                claimed_at TIMESTAMPTZ NOT NULL
            )
            """,
            "CREATE INDEX task_claims_create ON task_claims (job_id, run, submit_no)",
            f"INSERT INTO task_claims ({', '.join(CLAIM_COLUMNS)}) "  # noqa: S608 (constants)
            "SELECT provider_task_id, job_id, run, submit_no, route, finished_at FROM ledger "
            "WHERE provider_task_id IS NOT NULL ORDER BY finished_at "
            "ON CONFLICT (provider_task_id) DO NOTHING",
            """
            CREATE TABLE unattributed_tasks (
                provider_task_id TEXT PRIMARY KEY,
                route TEXT NOT NULL,
                model_id TEXT NOT NULL,
                status TEXT NOT NULL,
                tokens BIGINT NOT NULL,
                unit_price DOUBLE PRECISION NOT NULL,
                currency TEXT NOT NULL,
                cost NUMERIC(20, 6) NOT NULL,
                candidates JSONB NOT NULL,
                note TEXT NOT NULL,
                seen_at TIMESTAMPTZ NOT NULL
            )
            """,
            "CREATE INDEX unattributed_seen ON unattributed_tasks (seen_at)",
        ),
    ),
)
LATEST = MIGRATIONS[-1].version


def pending(current: int) -> list[Migration]:
    """Migrations to apply on a database at `current`; refuses a schema from the future."""
    if current > LATEST:
        raise LedgerSchemaError(
            f"the ledger schema is at version {current} but this code knows only up to "
            f"{LATEST}; upgrade the worker (or the CLI) before it writes to this ledger"
        )
    return [m for m in MIGRATIONS if m.version > current]


def entry_from_row(row: Mapping[str, Any]) -> LedgerEntry:
    """A stored row back as the model the workflow wrote (either backend's types)."""
    data = dict(row)
    data["billed"] = bool(data["billed"])
    for name in ("cost", "unit_price"):
        if isinstance(data[name], Decimal):
            data[name] = float(data[name])
    for name in TIMESTAMPS:
        data[name] = as_utc(data[name])
    return LedgerEntry.model_validate(data)


def claim_from_row(row: Mapping[str, Any], *, won: bool = False) -> TaskClaim:
    return TaskClaim(
        task_id=row["provider_task_id"],
        job_id=row["job_id"],
        run=row["run"],
        submit_no=int(row["submit_no"]),
        route=row["route"],
        claimed_at=as_utc(row["claimed_at"]),
        won=won,
    )


def unattributed_from_row(row: Mapping[str, Any]) -> UnattributedTask:
    data = dict(row)
    candidates = data["candidates"]
    data["candidates"] = json.loads(candidates) if isinstance(candidates, str) else candidates
    data["task_id"] = data.pop("provider_task_id")
    data["seen_at"] = as_utc(data["seen_at"])
    for name in ("cost", "unit_price"):
        if isinstance(data[name], Decimal):
            data[name] = float(data[name])
    return UnattributedTask.model_validate(data)


def as_utc(value: datetime | str) -> datetime:
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def sqlite_time(value: datetime) -> str:
    """Fixed-width UTC text (microseconds, `Z`), so text order is time order."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def redact(url: str) -> str:
    """A database URL safe for logs and error messages (no password)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))
