"""The ledger store on both backends: round trip, idempotent upserts, windows, migrations."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from seedance_pipeline.activities.ledger import LedgerActivities
from seedance_pipeline.adapters.ledger import open_ledger
from seedance_pipeline.adapters.ledger_schema import LATEST, Ledger, LedgerSchemaError, redact
from tests.adapters.ledger.support import T0, entry


def test_a_row_reads_back_as_written(ledger: Ledger) -> None:
    written = entry(
        error_code="OutputVideoSensitiveContentDetected",
        error_message="the output video may be related to copyright restrictions",
        billed=False,
        tokens=0,
        cost=0.0,
        outcome="rejected_moderation",
    )
    ledger.upsert(written)
    assert ledger.entries() == [written]


def test_timestamps_come_back_in_utc_whatever_zone_they_were_written_in(ledger: Ledger) -> None:
    beijing = timezone(timedelta(hours=8))
    ledger.upsert(entry(finished_at=datetime(2026, 11, 24, 18, 0, tzinfo=beijing)))
    (row,) = ledger.entries()
    assert row.finished_at == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert row.finished_at.utcoffset() == timedelta(0)


async def test_a_retried_activity_never_duplicates_a_row(ledger: Ledger) -> None:
    acts = LedgerActivities(ledger)
    row = entry()
    for _ in range(5):
        await acts.record_cost(row)
    assert ledger.entries() == [row]


def test_concurrent_writes_of_the_same_attempt_leave_one_row(ledger_url: str) -> None:
    """Two workers (two connections) retrying the same activity at once."""
    stores = [open_ledger(ledger_url), open_ledger(ledger_url)]
    try:
        rows = [entry(f"job-{i % 3}", submit_no=1 + i % 2) for i in range(24)]
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(lambda ir: stores[ir[0] % 2].upsert(ir[1]), enumerate(rows)))
        keys = [(e.job_id, e.submit_no) for e in stores[0].entries()]
        assert sorted(keys) == sorted({(r.job_id, r.submit_no) for r in rows})
    finally:
        for store in stores:
            store.close()


def test_a_later_write_of_an_attempt_replaces_the_row(ledger: Ledger) -> None:
    ledger.upsert(entry(tokens=0, billed=False, cost=0.0, outcome="failed_infra"))
    ledger.upsert(entry(tokens=108_900, cost=0.381150))
    (row,) = ledger.entries()
    assert (row.tokens, row.billed, row.cost, row.outcome) == (108_900, True, 0.38115, "succeeded")


def test_attempts_of_one_job_are_separate_rows(ledger: Ledger) -> None:
    ledger.upsert(entry(submit_no=1, tokens=0, billed=False, cost=0.0, outcome="failed"))
    ledger.upsert(entry(submit_no=2))
    assert [(e.submit_no, e.billed) for e in ledger.entries()] == [(1, False), (2, True)]


def test_entries_window_is_half_open_on_finished_at(ledger: Ledger) -> None:
    for i, hours in enumerate((-1, 0, 5, 24)):
        ledger.upsert(entry(f"job-{i}", finished_at=T0 + timedelta(hours=hours)))
    got = ledger.entries(T0, T0 + timedelta(hours=24))
    assert [e.job_id for e in got] == ["job-1", "job-2"]
    assert [e.job_id for e in ledger.entries(since=T0 + timedelta(hours=5))] == ["job-2", "job-3"]


def test_opening_again_applies_no_migration_twice(ledger_url: str) -> None:
    for _ in range(3):
        store = open_ledger(ledger_url)
        assert store.schema_version() == LATEST
        store.close()


def test_a_schema_from_a_newer_release_is_refused(ledger_url: str, ledger: Ledger) -> None:
    """An old worker must not write rows into a schema it does not know."""
    ledger.close()
    if ledger_url.startswith("sqlite"):
        with sqlite3.connect(ledger_url.removeprefix("sqlite:///")) as conn:
            conn.execute("INSERT INTO schema_version VALUES (?, 'future', 'now')", (LATEST + 1,))
    else:
        import psycopg

        with psycopg.connect(ledger_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO schema_version (version, description) VALUES (%s, 'future')",
                (LATEST + 1,),
            )
    with pytest.raises(LedgerSchemaError, match=f"version {LATEST + 1}"):
        open_ledger(ledger_url)


def test_a_ledger_file_from_before_migrations_is_adopted(tmp_path: Path) -> None:
    """Files written by the first release: same table, no schema_version, pydantic ISO text."""
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(LEGACY_SCHEMA)
        conn.execute(
            "INSERT INTO ledger VALUES ('old-job', 1, 'byteplus', 'mini', "
            "'dreamina-seedance-2-0-mini-260615', 'default', '720p', '16:9', 5, 'cgt-old', "
            "108000, 108000, 1, 3.5, 'USD', 0.378, 'succeeded', NULL, NULL, "
            "'2026-11-24T09:58:00Z', '2026-11-24T18:00:00.5+08:00')"
        )
    store = open_ledger(f"sqlite:///{path}")
    try:
        assert store.schema_version() == LATEST
        (row,) = store.entries(since=datetime(2026, 11, 24, 9, 59, 59, tzinfo=UTC))
        assert row.job_id == "old-job"
        assert row.finished_at == datetime(2026, 11, 24, 10, 0, 0, 500000, tzinfo=UTC)
        assert row.billed is True
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        stored = conn.execute("SELECT requested_at, finished_at FROM ledger").fetchone()
    assert stored == ("2026-11-24T09:58:00.000000Z", "2026-11-24T10:00:00.500000Z")


def test_unsupported_urls_are_refused_without_leaking_a_password() -> None:
    with pytest.raises(ValueError, match="not supported") as caught:
        open_ledger("mysql://ledger:hunter2@db/ledger")
    assert "hunter2" not in str(caught.value)
    assert redact("postgresql://seedance:hunter2@db:5432/ledger") == (
        "postgresql://seedance:***@db:5432/ledger"
    )


LEGACY_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    job_id TEXT NOT NULL, submit_no INTEGER NOT NULL, route TEXT NOT NULL,
    model_alias TEXT NOT NULL, model_id TEXT NOT NULL, service_tier TEXT NOT NULL,
    resolution TEXT, ratio TEXT, duration INTEGER, provider_task_id TEXT,
    tokens INTEGER NOT NULL, estimated_tokens INTEGER, billed INTEGER NOT NULL,
    unit_price REAL NOT NULL, currency TEXT NOT NULL, cost REAL NOT NULL, outcome TEXT NOT NULL,
    error_code TEXT, error_message TEXT, requested_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    PRIMARY KEY (job_id, submit_no)
)
"""


def test_a_ledger_server_that_comes_back_is_waited_for(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker started while Postgres restarts waits for it instead of crashing."""
    from seedance_pipeline.adapters import ledger as ledger_module
    from seedance_pipeline.adapters.ledger_schema import LedgerUnavailable

    dead = "postgresql://seedance@127.0.0.1:1/nothing"
    waits: list[float] = []
    with pytest.raises(LedgerUnavailable, match="cannot connect"):
        ledger_module.open_ledger_when_up(dead, within=3.0, sleep=waits.append)
    assert waits == [0.5, 1.0, 2.0]
    tries = iter([dead, dead, pg_url])
    real = ledger_module.open_ledger
    monkeypatch.setattr(ledger_module, "open_ledger", lambda _url: real(next(tries)))
    store = ledger_module.open_ledger_when_up(dead, within=60.0, sleep=lambda _s: None)
    assert store.schema_version() == LATEST
    store.close()
