"""`/v1/costs`: the ledger's report, filtered to the caller's tenant."""

from __future__ import annotations

from datetime import UTC, datetime

from seedance_pipeline.adapters.ledger import open_ledger
from seedance_pipeline.core.models import LedgerEntry
from tests.api.conftest import ApiEnv


def entry(job_id: str, tenant: str | None, cost: float) -> LedgerEntry:
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    return LedgerEntry(
        job_id=job_id,
        submit_no=1,
        route="byteplus",
        model_alias="mini",
        model_id="dreamina-seedance-2-0-mini-260615",
        service_tier="default",
        resolution="720p",
        ratio="16:9",
        duration=5,
        provider_task_id=f"cgt-{job_id}",
        tokens=108_000,
        estimated_tokens=108_000,
        billed=True,
        unit_price=3.5,
        currency="USD",
        cost=cost,
        outcome="succeeded",
        requested_at=at,
        finished_at=at,
        tenant=tenant,
    )


async def test_costs_are_the_tenants_own(api: ApiEnv) -> None:
    ledger = open_ledger(api.pipeline.settings.ledger.url)
    try:
        ledger.upsert(entry(f"{api.acme.name}:a", api.acme.name, 0.25))
        ledger.upsert(entry(f"{api.acme.name}:b", api.acme.name, 0.5))
        ledger.upsert(entry(f"{api.globex.name}:c", api.globex.name, 7.0))
        ledger.upsert(entry("job-cli", None, 9.0))
    finally:
        ledger.close()
    report = await api.client.costs(by="model")
    assert report.tenant == api.acme.name
    (total,) = report.totals
    assert (total.jobs, total.cost, total.currency) == (2, 0.75, "USD")
    theirs = await api.other.costs()
    assert [t.cost for t in theirs.totals] == [7.0]
    window = await api.client.costs(since=datetime(2026, 11, 21).date())
    assert window.lines == [] and window.totals == []
