"""The completion-webhook activity against a real receiver, retried by a real Temporal
worker: 500 five times then 200, one `webhook-id` on every attempt, every signature verified
by the `standardwebhooks` library; a forged or replayed delivery fails verification."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError
from temporalio import workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

from seedance_pipeline.activities.app_webhooks import AppWebhookActivities
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.app_webhooks import completion_webhook
from seedance_pipeline.core.models import (
    AppWebhookInput,
    AppWebhookResult,
    GenerationInput,
    GenerationRequest,
    JobRecord,
    Outcome,
)
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.core.standard_webhooks import new_secret
from tests.api.support import webhook_receiver

SECRET_ENV = "TEST_APP_WEBHOOK_SECRET"


@workflow.defn(sandboxed=False)
class DeliverOnce:
    """Stands in for the finish phase: one activity call with a fast retry policy."""

    @workflow.run
    async def run(self, data: AppWebhookInput) -> AppWebhookResult:
        return await workflow.execute_activity(
            "deliver_app_webhook",
            data,
            result_type=AppWebhookResult,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100),
                backoff_coefficient=1.0,
                maximum_attempts=10,
                non_retryable_error_types=[*et.APP_WEBHOOK_FINAL],
            ),
        )


def settings(allow_private: bool = True) -> Settings:
    return load_settings(
        api={
            "tenants": {"acme": {"webhook_secret_env": SECRET_ENV}},
            "allow_private_webhook_hosts": allow_private,
            "public_base_url": "https://videos.example.com",
        }
    )


def delivery(url: str) -> AppWebhookInput:
    job_id = f"acme:order-{uuid.uuid4().hex[:8]}"
    job = GenerationInput(
        job_id=job_id, request=GenerationRequest(prompt="a fox"), tenant="acme", webhook_url=url
    )
    record = JobRecord(
        job_id=job_id,
        request=job.request,
        outcome=Outcome.SUCCEEDED,
        video_uri="file:///x/video.mp4",
        tenant="acme",
    )
    found = completion_webhook(job, record, run_id="run-1")
    assert found is not None
    return found


async def run(client: Client, data: AppWebhookInput, activities: AppWebhookActivities) -> Any:
    queue = f"app-webhooks-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[DeliverOnce],
        activities=[activities.deliver_app_webhook],
    ):
        return await client.execute_workflow(
            DeliverOnce.run, data, id=f"deliver-{uuid.uuid4().hex}", task_queue=queue
        )


async def test_five_500s_then_200(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = new_secret()
    monkeypatch.setenv(SECRET_ENV, secret)
    with webhook_receiver(500, 500, 500, 500, 500, 200) as (receiver, url):
        data = delivery(url)
        async with httpx.AsyncClient() as http:
            result = await run(client, data, AppWebhookActivities(http, settings()))
    received = receiver.received
    assert len(received) == 6
    assert {r.headers["webhook-id"] for r in received} == {data.webhook_id}
    verifier = Webhook(secret)
    for one in received:
        payload = verifier.verify(one.body, one.headers)  # raises when a signature is wrong
        assert payload["type"] == "job.succeeded"
        assert payload["data"]["job"]["job_id"] == data.job_id
        assert payload["data"]["links"]["video"] == (
            f"https://videos.example.com/v1/jobs/{data.job_id}/video"
        )
    assert len({r.headers["webhook-timestamp"] for r in received}) >= 2  # fresh per attempt
    assert [d.status_code for d in result.deliveries] == [500] * 5 + [200]
    assert [d.attempt for d in result.deliveries] == [1, 2, 3, 4, 5, 6]
    assert result.webhook_id == data.webhook_id


async def test_a_forged_or_replayed_delivery_fails_verification(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = new_secret()
    monkeypatch.setenv(SECRET_ENV, secret)
    with webhook_receiver(200) as (receiver, url):
        async with httpx.AsyncClient() as http:
            await run(client, delivery(url), AppWebhookActivities(http, settings()))
    (genuine,) = receiver.received
    verifier = Webhook(secret)
    verifier.verify(genuine.body, genuine.headers)

    tampered = json.loads(genuine.body)
    tampered["data"]["job"]["outcome"] = "failed_infra"
    with pytest.raises(WebhookVerificationError):
        verifier.verify(json.dumps(tampered).encode(), genuine.headers)
    with pytest.raises(WebhookVerificationError):  # signed with another tenant's secret
        Webhook(new_secret()).verify(genuine.body, genuine.headers)
    replayed = dict(genuine.headers)
    replayed["webhook-timestamp"] = str(int(time.time()) - 3600)  # an old capture, resent
    with pytest.raises(WebhookVerificationError):
        verifier.verify(genuine.body, replayed)


async def test_a_private_host_is_refused_without_retrying(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, new_secret())
    with webhook_receiver(200) as (receiver, url):
        async with httpx.AsyncClient() as http:
            acts = AppWebhookActivities(http, settings(allow_private=False))
            with pytest.raises(WorkflowFailureError) as failed:
                await run(client, delivery(url), acts)
    assert receiver.received == []
    cause = failed.value.cause.cause  # type: ignore[attr-defined]
    assert cause.type == et.APP_WEBHOOK_URL_REFUSED
    assert "private address" in str(cause)
    assert cause.details[0]["deliveries"][0]["attempt"] == 1


async def test_410_gone_stops_and_a_missing_secret_says_where(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, new_secret())
    with webhook_receiver(410) as (receiver, url):
        async with httpx.AsyncClient() as http:
            with pytest.raises(WorkflowFailureError) as gone:
                await run(client, delivery(url), AppWebhookActivities(http, settings()))
    assert len(receiver.received) == 1
    assert gone.value.cause.cause.type == et.APP_WEBHOOK_GONE  # type: ignore[attr-defined]

    monkeypatch.delenv(SECRET_ENV)
    acts = AppWebhookActivities(httpx.AsyncClient(), settings())
    with pytest.raises(Exception) as missing:
        await acts._post(delivery("http://127.0.0.1:9/hook"), int(time.time()))
    assert "webhook_secret_env" in str(missing.value)
