"""Reruns add rows, task claims decide who owns a provider task, and billed tasks nobody can
claim are still recorded: on SQLite and on a real PostgreSQL server, plus the migration from a
ledger written before runs (version 3) on both."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from temporalio.exceptions import ApplicationError

from seedance_pipeline.activities.ledger import LedgerActivities
from seedance_pipeline.adapters.ledger import open_ledger
from seedance_pipeline.adapters.ledger_schema import (
    LATEST,
    MIGRATIONS,
    Ledger,
    TaskClaimedElsewhere,
)
from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.models import ClaimTaskInput, FindClaimsInput, UnattributedTask
from tests.adapters.ledger.support import T0, entry

RUN_1 = "0b0e6f0c-run-one"
RUN_2 = "5d1c2a7e-run-two"


def claim(
    task_id: str, job_id: str = "job-1", run: str = RUN_1, submit_no: int = 1
) -> ClaimTaskInput:
    return ClaimTaskInput(
        job_id=job_id, run=run, submit_no=submit_no, route="byteplus", task_id=task_id
    )


def unattributed(task_id: str, **fields: object) -> UnattributedTask:
    base: dict[str, object] = {
        "task_id": task_id,
        "route": "byteplus",
        "model_id": "dreamina-seedance-2-0-mini-260615",
        "status": "succeeded",
        "tokens": 108_000,
        "unit_price": 3.5,
        "currency": "USD",
        "cost": 0.378,
        "candidates": ["job-a", "job-b"],
        "note": "two creates of this shape were ambiguous",
        "seen_at": T0,
    }
    base.update(fields)
    return UnattributedTask.model_validate(base)


# ---- reruns ---------------------------------------------------------------------------------


def test_a_rerun_adds_rows_beside_the_previous_runs(ledger: Ledger) -> None:
    first = entry(run=RUN_1, provider_task_id="cgt-first")
    second = entry(run=RUN_2, provider_task_id="cgt-second", finished_at=T0 + timedelta(hours=1))
    ledger.upsert(first)
    ledger.upsert(second)
    assert ledger.entries() == [first, second]


def test_a_later_write_replaces_only_its_own_runs_row(ledger: Ledger) -> None:
    ledger.upsert(entry(run=RUN_1, provider_task_id="cgt-first", tokens=0, billed=False, cost=0))
    ledger.upsert(entry(run=RUN_2, provider_task_id="cgt-second"))
    ledger.upsert(entry(run=RUN_1, provider_task_id="cgt-first", tokens=108_900, cost=0.38115))
    rows = {(e.run, e.provider_task_id): (e.tokens, e.billed) for e in ledger.entries()}
    assert rows == {(RUN_1, "cgt-first"): (108_900, True), (RUN_2, "cgt-second"): (108_000, True)}


def test_a_late_unbilled_write_never_undoes_a_bill(ledger: Ledger) -> None:
    """A job's "cancelled, 0 tokens" row landing after its follower recorded the bill."""
    billed = entry(run=RUN_1, provider_task_id="cgt-late", outcome="followed_stored")
    ledger.upsert(billed)
    ledger.upsert(billed.model_copy(update={"tokens": 0, "billed": False, "cost": 0.0}))
    assert ledger.entries() == [billed]


# ---- claims ---------------------------------------------------------------------------------


def test_the_first_claim_of_a_task_wins_for_good(ledger: Ledger) -> None:
    mine = ledger.claim(claim("cgt-x", "job-a"), T0)
    theirs = ledger.claim(claim("cgt-x", "job-b"), T0 + timedelta(seconds=1))
    again = ledger.claim(claim("cgt-x", "job-a"), T0 + timedelta(seconds=2))
    assert mine.won and not theirs.won and again.won
    assert (theirs.job_id, theirs.claimed_at) == ("job-a", T0)
    assert ledger.claims(["cgt-x", "cgt-unknown"]) == {
        "cgt-x": mine.model_copy(update={"won": False})
    }


def test_two_runs_or_two_creates_of_one_job_are_different_claimants(ledger: Ledger) -> None:
    assert ledger.claim(claim("cgt-y", run=RUN_1, submit_no=1), T0).won
    assert not ledger.claim(claim("cgt-y", run=RUN_2, submit_no=1), T0).won
    assert not ledger.claim(claim("cgt-y", run=RUN_1, submit_no=2), T0).won


def test_two_jobs_racing_for_one_task_on_two_connections_never_both_win(ledger_url: str) -> None:
    """Two workers (two connections), many jobs, one listed task each round."""
    stores = [open_ledger(ledger_url), open_ledger(ledger_url)]
    try:
        for round_no in range(8):
            task_id = f"cgt-race-{round_no}"
            asks = [claim(task_id, f"job-{n}") for n in range(6)]
            with ThreadPoolExecutor(max_workers=6) as pool:
                answers = list(
                    pool.map(lambda ia: stores[ia[0] % 2].claim(ia[1], T0), enumerate(asks))
                )
            winners = [a.job_id for a in answers if a.won]
            assert len(winners) == 1, winners
            assert {a.job_id for a in answers} == set(winners)  # everyone sees the same owner
    finally:
        for store in stores:
            store.close()


def test_a_row_for_a_task_another_create_claimed_is_refused(ledger: Ledger) -> None:
    ledger.claim(claim("cgt-z", "job-a"), T0)
    with pytest.raises(TaskClaimedElsewhere, match="claimed by job job-a"):
        ledger.upsert(entry("job-b", provider_task_id="cgt-z"))
    assert ledger.entries() == []
    ledger.upsert(entry("job-a", run=RUN_1, provider_task_id="cgt-z"))
    assert [e.job_id for e in ledger.entries()] == ["job-a"]


def test_every_recorded_task_is_claimed_by_its_row(ledger: Ledger) -> None:
    ledger.upsert(entry("job-a", run=RUN_1, provider_task_id="cgt-w"))
    assert not ledger.claim(claim("cgt-w", "job-b"), T0).won
    (owner,) = ledger.claims(["cgt-w"]).values()
    assert owner.owned_by("job-a", RUN_1, 1)


async def test_record_cost_refuses_a_second_row_for_one_bill(ledger: Ledger) -> None:
    acts = LedgerActivities(ledger)
    await acts.record_cost(entry("job-a", run=RUN_1, provider_task_id="cgt-v"))
    with pytest.raises(ApplicationError) as caught:
        await acts.record_cost(entry("job-a", run=RUN_2, provider_task_id="cgt-v"))
    assert caught.value.type == et.TASK_CLAIMED_ELSEWHERE and caught.value.non_retryable
    assert len(ledger.entries()) == 1
    won = await acts.claim_task(claim("cgt-new", "job-c"))
    found = await acts.find_claims(FindClaimsInput(task_ids=["cgt-new", "cgt-none"]))
    assert won.won and list(found) == ["cgt-new"] and found["cgt-new"].job_id == "job-c"


# ---- unattributed billed tasks ---------------------------------------------------------------


def test_an_unattributed_task_is_kept_with_its_candidates(ledger: Ledger) -> None:
    kept = unattributed("cgt-orphan")
    assert ledger.record_unattributed(kept) is True
    assert ledger.record_unattributed(kept.model_copy(update={"note": "seen again"})) is True
    assert ledger.unattributed() == [kept.model_copy(update={"note": "seen again"})]
    assert ledger.unattributed(since=T0 + timedelta(seconds=1)) == []


def test_a_claimed_task_is_never_unattributed(ledger: Ledger) -> None:
    ledger.claim(claim("cgt-owned", "job-a"), T0)
    assert ledger.record_unattributed(unattributed("cgt-owned")) is False
    assert ledger.unattributed() == []


def test_claiming_an_unattributed_task_attributes_it(ledger: Ledger) -> None:
    ledger.record_unattributed(unattributed("cgt-late"))
    assert ledger.claim(claim("cgt-late", "job-b"), T0).won
    assert ledger.unattributed() == []


# ---- migration from version 3 ----------------------------------------------------------------

V3_ROW = (
    "job-old", 1, "byteplus", "mini", "dreamina-seedance-2-0-mini-260615", "default", "720p",
    "16:9", 5, "cgt-old", 108000, 108000, True, 3.5, "USD", 0.378, "succeeded", None, None,
    "2026-11-24T09:58:00.000000Z", "2026-11-24T10:00:00.000000Z",
)  # fmt: skip


def _sqlite_v3(path: Path, extra_column: bool) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT "
            "NULL, applied_at TEXT NOT NULL)"
        )
        for migration in MIGRATIONS[:3]:
            for statement in migration.sqlite:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version VALUES (?, ?, 'then')",
                (migration.version, migration.description),
            )
        row = tuple(int(v) if isinstance(v, bool) else v for v in V3_ROW)
        conn.execute(f"INSERT INTO ledger VALUES ({', '.join('?' for _ in row)})", row)  # noqa: S608
        if extra_column:  # what another branch's migration (a tenant column) leaves behind
            conn.execute("ALTER TABLE ledger ADD COLUMN tenant TEXT NOT NULL DEFAULT 'acme'")
            conn.execute("CREATE INDEX ledger_tenant ON ledger (tenant)")


def _postgres_v3(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT "
            "NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        for migration in MIGRATIONS[:3]:
            for statement in migration.postgres:
                conn.execute(statement.encode())
            conn.execute(
                "INSERT INTO schema_version (version, description) VALUES (%s, %s)",
                (migration.version, migration.description),
            )
        conn.execute(
            f"INSERT INTO ledger VALUES ({', '.join('%s' for _ in V3_ROW)})".encode(),  # noqa: S608
            V3_ROW,
        )


def _migrated_rows_and_claims(url: str) -> None:
    store = open_ledger(url)
    try:
        assert store.schema_version() == LATEST
        (old,) = store.entries()
        assert (old.job_id, old.run, old.submit_no, old.tokens) == ("job-old", "", 1, 108000)
        (owner,) = store.claims(["cgt-old"]).values()
        assert owner.owned_by("job-old", "", 1)
        store.upsert(entry("job-old", run=RUN_1, provider_task_id="cgt-rerun"))
        assert [(e.run, e.provider_task_id) for e in store.entries()] == [
            ("", "cgt-old"),
            (RUN_1, "cgt-rerun"),
        ]
    finally:
        store.close()


def test_a_version_3_sqlite_ledger_migrates_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v3.sqlite3"
    _sqlite_v3(path, extra_column=False)
    _migrated_rows_and_claims(f"sqlite:///{path}")


def test_the_sqlite_rekey_keeps_columns_and_indexes_other_migrations_added(
    tmp_path: Path,
) -> None:
    """Migration 4 (tenants) adds a column and an index; the rekey of 5 (runs) keeps both."""
    path = tmp_path / "v3.sqlite3"
    _sqlite_v3(path, extra_column=False)
    _migrated_rows_and_claims(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        columns = {row[1]: row[5] for row in conn.execute("PRAGMA table_info(ledger)")}
        indexes = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
        tenants = conn.execute("SELECT DISTINCT tenant FROM ledger").fetchall()
    assert {name for name, pk in columns.items() if pk} == {"job_id", "run", "submit_no"}
    assert "tenant" in columns and tenants == [(None,)]  # rows from before tenants
    assert {"ledger_tenant", "ledger_finished", "ledger_task"} <= indexes


def test_a_version_3_postgres_ledger_migrates_keeping_its_rows(pg_url: str) -> None:
    _postgres_v3(pg_url)
    _migrated_rows_and_claims(pg_url)
