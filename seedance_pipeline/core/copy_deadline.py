"""How long a copy of a provider output may keep trying: as long as its URL lives.

A signed output URL says when it stops working (the provider's TOS URLs carry `X-Tos-Date` and
`X-Tos-Expires`, reference C2; S3-style hosts `X-Amz-Date` and `X-Amz-Expires`; the emulator
and OSS-style hosts an absolute `expires`/`Expires`). Until then a refused or cut download is
the host being flaky, and retrying costs nothing but time, so the copy's retry policy has no
attempt limit: its bound is the URL's own expiry (a schedule-to-close timeout), less a margin.
A URL that says nothing lives `output_url_seconds` from the provider's success (the route's
setting), and never past the task's retention, after which no fresh URL can be asked for.

When the bound passes, or the host answers that the URL expired (`OutputUrlExpired`), the
workflow GETs the task for a fresh URL and computes a new deadline from it; `OutputHostRefused`
(a host outside the route's allow-list) is final. Pure: the workflow imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from temporalio.common import RetryPolicy

from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.models import JobRecord, ResolvedModel

EXPIRY_MARGIN = timedelta(seconds=60)
"""Stop this long before the URL's stated expiry: a download that starts a second before it
would be cut by the host anyway, and the fresh-URL GET needs the task to still be there."""
MIN_WINDOW = timedelta(seconds=30)
"""The shortest window a copy is given, even when the deadline is closer (one real try)."""
MAX_INTERVAL = timedelta(seconds=120)
"""Between retries of a copy: a host down for hours is asked every two minutes (retries of an
activity are not written to history, so this costs no history)."""
START_TO_CLOSE = timedelta(minutes=30)
HEARTBEAT = timedelta(seconds=60)
NON_RETRYABLE = (et.OUTPUT_URL_EXPIRED, et.OUTPUT_HOST_REFUSED)
"""Answers a retry of the same URL cannot change: ask for a fresh URL, or stop."""

Source = Literal["signed_url", "url_lifetime", "retention"]


@dataclass(frozen=True)
class CopyDeadline:
    at: datetime
    """The copy stops retrying this URL at this moment (margin already taken off)."""
    source: Source
    """What bounded it: the URL's own expiry, the route's URL lifetime, or the task's retention."""

    def passed(self, now: datetime) -> bool:
        return now >= self.at

    def describe(self) -> str:
        return f"{self.at.isoformat(timespec='seconds')} ({self.source.replace('_', ' ')})"


@dataclass(frozen=True)
class CopyRetry:
    """What the workflow passes to the copy activity for one URL."""

    schedule_to_close: timedelta
    start_to_close: timedelta
    heartbeat: timedelta
    retry_policy: RetryPolicy


def signed_url_expiry(url: str) -> datetime | None:
    """When a signed URL stops working, if it says so (query names are case-insensitive)."""
    query = {k.lower(): v for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    for prefix in ("x-tos-", "x-amz-"):
        signed = _stamp(query.get(f"{prefix}date", ""))
        lifetime = query.get(f"{prefix}expires", "")
        if signed is not None and lifetime.isdigit():
            return signed + timedelta(seconds=int(lifetime))
    absolute = query.get("expires", "")
    if absolute.isdigit() and 0 < int(absolute) < 2**35:
        return datetime.fromtimestamp(int(absolute), UTC)
    return None


def _stamp(value: str) -> datetime | None:
    """`20260801T093000Z`, the ISO basic form both TOS and SigV4 use."""
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def copy_deadline(
    url: str,
    *,
    succeeded_at: datetime,
    url_lifetime_seconds: float,
    retention_until: datetime | None = None,
) -> CopyDeadline:
    """The moment to stop retrying a copy of `url`.

    `succeeded_at` is when the provider reported success (its `updated_at`, or when we first
    saw the URL): a URL without its own expiry is assumed signed then. `retention_until` is
    when the provider forgets the task (its creation plus the route's retention)."""
    stated = signed_url_expiry(url)
    source: Source = "url_lifetime"
    at = succeeded_at + timedelta(seconds=url_lifetime_seconds)
    if stated is not None:
        at, source = stated, "signed_url"
    if retention_until is not None and retention_until < at:
        at, source = retention_until, "retention"
    return CopyDeadline(at=at - EXPIRY_MARGIN, source=source)


def job_copy_deadline(
    url: str, record: JobRecord, model: ResolvedModel, now: datetime
) -> CopyDeadline:
    """`copy_deadline` for the job's store phase, from its record and pinned model: the URL was
    signed when the provider reported success (`provider_updated_at`, else now), and the task
    is forgotten `task_retention_seconds` after the provider created it."""
    created = record.provider_created_at or record.submitted_at or now
    return copy_deadline(
        url,
        succeeded_at=record.provider_updated_at or now,
        url_lifetime_seconds=model.output_url_seconds,
        retention_until=created + timedelta(seconds=model.task_retention_seconds),
    )


def copy_retry(deadline: CopyDeadline, now: datetime) -> CopyRetry:
    """Retry the copy without an attempt limit until `deadline` (at least `MIN_WINDOW`)."""
    window = max(deadline.at - now, MIN_WINDOW)
    return CopyRetry(
        schedule_to_close=window,
        start_to_close=min(START_TO_CLOSE, window),
        heartbeat=HEARTBEAT,
        retry_policy=RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=MAX_INTERVAL,
            maximum_attempts=0,
            non_retryable_error_types=list(NON_RETRYABLE),
        ),
    )
