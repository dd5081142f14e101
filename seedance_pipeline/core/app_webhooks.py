"""Which completion webhook a finished job sends, and with what body (pure: the workflow's
finish phase calls it, the delivery activity posts what it returns)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from seedance_pipeline.core.models import (
    AppWebhookInput,
    GenerationInput,
    JobLinks,
    JobRecord,
    Outcome,
)
from seedance_pipeline.core.standard_webhooks import WebhookEvent, webhook_id


def event_for(outcome: Outcome | None) -> WebhookEvent:
    if outcome == Outcome.SUCCEEDED:
        return WebhookEvent.SUCCEEDED
    if outcome == Outcome.CANCELLED:
        return WebhookEvent.CANCELLED
    return WebhookEvent.FAILED


def job_path(job_id: str) -> str:
    return f"/v1/jobs/{quote(job_id, safe=':')}"


def links_for(record: JobRecord) -> JobLinks:
    """Paths under the API's base URL; an output's link only once it is stored."""
    base = job_path(record.job_id)
    return JobLinks(
        job=base,
        video=f"{base}/video" if record.video_uri else None,
        last_frame=f"{base}/last-frame" if record.last_frame_uri else None,
    )


def completion_webhook(
    job: GenerationInput, record: JobRecord, run_id: str
) -> AppWebhookInput | None:
    """The delivery for a finished job, or None when the job asked for none (no URL or no
    tenant: a webhook is signed with the tenant's secret)."""
    if not job.webhook_url or not job.tenant:
        return None
    event = event_for(record.outcome)
    return AppWebhookInput(
        job_id=record.job_id,
        tenant=job.tenant,
        url=job.webhook_url,
        event=event.value,
        webhook_id=webhook_id(record.job_id, event.value, run_id),
        job=record.summary(),
        links=links_for(record),
    )


def webhook_body(data: AppWebhookInput, links: dict[str, str | None], at: int) -> dict[str, Any]:
    """The Standard Webhooks payload shape: `type`, `timestamp`, `data`."""
    return {
        "type": data.event,
        "timestamp": datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z"),
        "data": {"job": data.job, "links": links},
    }
