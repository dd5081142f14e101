"""Journeys through a job that need the workflow's wiring (issue 18; the lead wires it):

- the finish phase calls `deliver_app_webhook` with `core.app_webhooks.completion_webhook(...)`
  after the record is final, without blocking it, and records the attempts in
  `JobRecord.webhook_deliveries`;
- the record carries the input's `tenant` and `metadata`; the ledger rows carry the tenant;
- the budget check passes the tenant, so a tenant's own caps apply.

Until then these fail on exactly those points (each assertion says which).
"""

from __future__ import annotations

import asyncio
import uuid

from standardwebhooks import Webhook

from seedance_pipeline.api_client import JobCreate
from seedance_pipeline.core.models import Outcome
from tests.api.conftest import ApiEnv, ApiFactory
from tests.api.support import webhook_receiver


async def test_a_finished_job_posts_one_signed_webhook_and_records_it(api: ApiEnv) -> None:
    with webhook_receiver(500, 200) as (receiver, url):
        body = JobCreate(
            prompt=f"hook {uuid.uuid4().hex[:8]}", webhook_url=url, metadata={"o": "1"}
        )
        job = (await api.client.create_job(body)).job
        done = await asyncio.wait_for(api.client.wait(job.job_id, interval=0.2), 60)
        assert done.outcome == Outcome.SUCCEEDED
        assert done.tenant == api.acme.name, "the record must carry the input's tenant"
        assert done.metadata == {"o": "1"}, "the record must carry the input's metadata"
        got = await receiver.wait_for(2, timeout=30)  # the finish phase has to call the activity
        assert {g.headers["webhook-id"] for g in got} == {got[0].headers["webhook-id"]}
        payload = Webhook(api.acme.secret).verify(got[-1].body, got[-1].headers)
        assert payload["type"] == "job.succeeded"
        assert payload["data"]["links"]["video"].endswith(f"/v1/jobs/{job.job_id}/video")
        for _ in range(100):
            record = await api.client.get_job(job.job_id)
            if len(record.webhook_deliveries) == 2:
                break
            await asyncio.sleep(0.1)
        assert [d.status_code for d in record.webhook_deliveries] == [500, 200]
    costs = await api.client.costs()
    assert costs.totals and costs.totals[0].jobs >= 1, "ledger rows must carry the tenant"


async def test_a_tenants_budget_refuses_its_job(api_factory: ApiFactory) -> None:
    async with api_factory(acme_budgets={"byteplus": {"daily": 0.000001}}) as api:
        job = (await api.client.create_job(JobCreate(prompt="over budget"))).job
        done = await asyncio.wait_for(api.client.wait(job.job_id, interval=0.2), 60)
        assert done.outcome == Outcome.FAILED_QUOTA, "check_budget must receive the tenant"
        assert done.error and "tenant" in done.error.message
