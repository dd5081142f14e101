"""Tenants in the ledger (both backends): the column, reports per tenant, a tenant's own
caps on a route beside the route's, holds per scope, and the migration of an older file."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from seedance_pipeline.activities.ledger import LedgerActivities
from seedance_pipeline.adapters.ledger import open_ledger
from seedance_pipeline.adapters.ledger_schema import LATEST, MIGRATIONS, Ledger
from seedance_pipeline.core.budget import BudgetCheckInput, BudgetRelease, RouteBudget
from tests.adapters.ledger.support import T0, entry

NOW = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)


def check(job: str, tenant: str | None, estimate: float = 0.4) -> BudgetCheckInput:
    return BudgetCheckInput(
        job_id=job, route="byteplus", currency="USD", estimate=estimate, at=NOW, tenant=tenant
    )


def test_rows_keep_their_tenant_and_reports_filter_by_it(ledger: Ledger) -> None:
    ledger.upsert(entry("acme:1", tenant="acme"))
    ledger.upsert(entry("globex:1", tenant="globex"))
    ledger.upsert(entry("job-cli"))
    assert [e.job_id for e in ledger.entries(tenant="acme")] == ["acme:1"]
    assert {e.tenant for e in ledger.entries()} == {"acme", "globex", None}
    assert ledger.entries(since=T0.replace(hour=11), tenant="acme") == []


async def test_a_tenants_cap_counts_only_its_own_spend(ledger: Ledger) -> None:
    acts = LedgerActivities(
        ledger,
        budgets={"byteplus": RouteBudget(daily=100)},
        tenant_budgets={"acme": {"byteplus": RouteBudget(daily=1.0)}},
    )
    ledger.upsert(entry("globex:big", tenant="globex", cost=50.0, finished_at=NOW))
    ledger.upsert(entry("acme:old", tenant="acme", cost=0.5, finished_at=NOW))
    first = await acts.check_budget(check("acme:a", "acme"))
    assert first.allowed and "tenant acme's daily budget" in first.message
    assert first.spent == 0.5  # globex's 50 is not acme's
    second = await acts.check_budget(check("acme:b", "acme"))  # 0.5 + 0.4 held + 0.4 > 1
    assert not second.allowed
    assert "tenant acme's daily budget for route byteplus is 1.0000 USD" in second.message
    assert second.held_jobs == 1
    # The refused job holds nothing in either scope: the route cap sees only acme:a's hold.
    route = await acts.check_budget(check("cli-job", None))
    assert route.allowed and route.held_jobs == 1
    other = await acts.check_budget(check("globex:a", "globex"))
    assert other.allowed and "route byteplus" in other.message and "tenant" not in other.message
    await acts.release_budget(BudgetRelease(job_id="acme:a"))
    third = await acts.check_budget(check("acme:c", "acme"))
    assert third.allowed and third.held_jobs == 0


async def test_the_route_cap_still_applies_to_a_tenants_job(ledger: Ledger) -> None:
    acts = LedgerActivities(
        ledger,
        budgets={"byteplus": RouteBudget(daily=0.5)},
        tenant_budgets={"acme": {"byteplus": RouteBudget(daily=100)}},
    )
    ledger.upsert(entry("globex:spent", tenant="globex", cost=0.3, finished_at=NOW))
    verdict = await acts.check_budget(check("acme:a", "acme"))
    assert not verdict.allowed and "tenant" not in verdict.message


def test_a_version_3_file_migrates_with_its_holds(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
        "applied_at TEXT NOT NULL)"
    )
    for migration in MIGRATIONS[:3]:
        for statement in migration.sqlite:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_version VALUES (?, ?, ?)",
            (migration.version, migration.description, "2026-11-01T00:00:00.000000Z"),
        )
    conn.execute(
        "INSERT INTO budget_holds VALUES ('old-job', 'byteplus', 'USD', 0.4, "
        "'2026-11-24T15:00:00.000000Z')"
    )
    conn.close()
    ledger = open_ledger(f"sqlite:///{path}")
    try:
        assert ledger.schema_version() == LATEST
        ledger.upsert(entry("acme:1", tenant="acme"))
        assert ledger.entries(tenant="acme")[0].tenant == "acme"
    finally:
        ledger.close()
    rows = (
        sqlite3.connect(path).execute("SELECT job_id, scope, tenant FROM budget_holds").fetchall()
    )
    assert rows == [("old-job", "route", None)]
