"""Completion webhooks to the application, signed per Standard Webhooks.

One activity attempt is one POST: sign the body with the tenant's `whsec_` secret (read now,
never carried in the input), post it without following redirects, and return on 2xx or raise
a retryable `AppWebhookFailed` otherwise; Temporal's retry policy (backoff, up to 24 h) makes
the schedule. The `webhook-id` comes from the input, so it is the same on every attempt and a
receiver deduplicates; `webhook-timestamp` and the signature are per attempt, so a receiver's
replay window works.

Every attempt is remembered: the list travels from attempt to attempt in the heartbeat
details (Temporal keeps the last ones across retries), is returned with the success, and
rides in the failure's details when the activity gives up, so the job's record can show every
attempt however the delivery ended.

The URL passes the same public-address check as references, at every attempt (DNS may have
changed since the job started) unless `api.allow_private_webhook_hosts`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

import httpx
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from seedance_pipeline.adapters.public_hosts import HostUnresolvable, private_address
from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.app_webhooks import webhook_body
from seedance_pipeline.core.models import (
    AppWebhookInput,
    AppWebhookResult,
    WebhookDelivery,
    webhook_url_problem,
)
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.core.standard_webhooks import BadWebhookSecret, sign

log = structlog.get_logger(__name__)
MAX_REMEMBERED = 50
"""Attempts kept in the list (the oldest are dropped): a day of retries stays small."""
MAX_RETRY_AFTER_SECONDS = 3600
USER_AGENT = "seedance-pipeline-webhooks/1"


class _Refused(Exception):
    def __init__(
        self,
        message: str,
        kind: str,
        retry_after: float | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after
        self.status_code = status_code


class AppWebhookActivities:
    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self._http = http
        self._settings = settings

    @activity.defn(name="deliver_app_webhook")
    async def deliver_app_webhook(self, data: AppWebhookInput) -> AppWebhookResult:
        info = activity.info()
        previous = _previous_attempts(info.heartbeat_details)
        now = datetime.now(UTC)
        delivery = WebhookDelivery(
            event=data.event, webhook_id=data.webhook_id, attempt=info.attempt, at=now
        )
        try:
            delivery.status_code = await self._post(data, int(now.timestamp()))
        except _Refused as refused:
            delivery.status_code = refused.status_code
            delivery.error = str(refused)
            attempts = _remember(previous, delivery)
            activity.heartbeat(attempts)
            log.info(
                "app_webhook.failed",
                job_id=data.job_id,
                webhook_id=data.webhook_id,
                attempt=info.attempt,
                reason=str(refused),
            )
            raise ApplicationError(
                f"webhook {data.event} for job {data.job_id}: {refused}",
                {"deliveries": [a.model_dump(mode="json") for a in attempts]},
                type=refused.kind,
                non_retryable=refused.kind in et.APP_WEBHOOK_FINAL,
                next_retry_delay=(
                    timedelta(seconds=refused.retry_after) if refused.retry_after else None
                ),
            ) from None
        log.info(
            "app_webhook.delivered",
            job_id=data.job_id,
            webhook_id=data.webhook_id,
            attempt=info.attempt,
            status=delivery.status_code,
        )
        return AppWebhookResult(
            webhook_id=data.webhook_id, deliveries=_remember(previous, delivery)
        )

    async def _post(self, data: AppWebhookInput, timestamp: int) -> int:
        """The status code of a 2xx answer; anything else raises `_Refused`."""
        await self._check_url(data.url)
        tenant = self._settings.api.tenants.get(data.tenant)
        secret = tenant.webhook_secret() if tenant else None
        if not secret:
            where = (
                f"api.tenants.{data.tenant}.webhook_secret_env or webhook_secret_file"
                if tenant
                else f"a tenant named {data.tenant!r} in api.tenants"
            )
            raise _Refused(
                f"no webhook secret for tenant {data.tenant!r}: set {where}",
                et.APP_WEBHOOK_NO_SECRET,
            )
        body = json.dumps(
            webhook_body(data, self._absolute(data), timestamp), separators=(",", ":")
        ).encode()
        try:
            signature = sign(secret, data.webhook_id, timestamp, body)
        except BadWebhookSecret as exc:
            raise _Refused(f"tenant {data.tenant!r}: {exc}", et.APP_WEBHOOK_NO_SECRET) from None
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": data.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }
        try:
            response = await self._http.post(
                data.url,
                content=body,
                headers=headers,
                follow_redirects=False,
                timeout=self._settings.api.webhook_timeout_seconds,
            )
        except httpx.HTTPError as exc:
            host = urlsplit(data.url).hostname
            raise _Refused(f"{type(exc).__name__} reaching {host}", et.APP_WEBHOOK_FAILED) from None
        status = response.status_code
        if 200 <= status < 300:
            return status
        if status == 410:
            raise _Refused(
                "410 Gone: the endpoint asked us to stop", et.APP_WEBHOOK_GONE, status_code=410
            )
        raise _Refused(
            f"HTTP {status}",
            et.APP_WEBHOOK_FAILED,
            _retry_after(response.headers.get("retry-after")),
            status_code=status,
        )

    async def _check_url(self, url: str) -> None:
        problem = webhook_url_problem(url)
        if problem:
            raise _Refused(f"webhook_url: {problem}", et.APP_WEBHOOK_URL_REFUSED)
        if self._settings.api.allow_private_webhook_hosts:
            return
        host = urlsplit(url).hostname or ""
        try:
            address = await private_address(host)
        except HostUnresolvable as exc:
            raise _Refused(str(exc), et.APP_WEBHOOK_FAILED) from None
        if address is not None:
            raise _Refused(
                f"host {host!r} resolves to a private address ({address}); refused",
                et.APP_WEBHOOK_URL_REFUSED,
            )

    def _absolute(self, data: AppWebhookInput) -> dict[str, str | None]:
        base = self._settings.api.base_url()
        return {
            name: urljoin(base, path) if path else None
            for name, path in data.links.model_dump().items()
        }


def _previous_attempts(details: object) -> list[WebhookDelivery]:
    """The attempts an earlier try heartbeated (lenient: a bad entry is dropped, not fatal)."""
    if not isinstance(details, list | tuple) or not details:
        return []
    found = details[0]
    if not isinstance(found, list):
        return []
    out = []
    for item in found:
        try:
            out.append(WebhookDelivery.model_validate(item))
        except ValueError:
            continue
    return out


def _remember(previous: list[WebhookDelivery], attempt: WebhookDelivery) -> list[WebhookDelivery]:
    return [*previous, attempt][-MAX_REMEMBERED:]


def _retry_after(value: str | None) -> float | None:
    """A receiver's `Retry-After` in seconds (numbers only), capped."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds <= 0 or seconds != seconds:
        return None
    return min(seconds, MAX_RETRY_AFTER_SECONDS)
