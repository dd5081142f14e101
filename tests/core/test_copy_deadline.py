"""The copy's deadline comes from the URL itself when it says, else the route's URL lifetime,
never past the task's retention; the retry policy has no attempt limit, only that bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.copy_deadline import (
    EXPIRY_MARGIN,
    MIN_WINDOW,
    copy_deadline,
    copy_retry,
    signed_url_expiry,
)

SIGNED_AT = datetime(2026, 8, 1, 9, 30, tzinfo=UTC)
TOS = (
    "https://ark-content-generation-ap-southeast-1.tos-ap-southeast-1.volces.com/out/v.mp4"
    "?X-Tos-Algorithm=TOS4-HMAC-SHA256&X-Tos-Credential=AKLT%2F20260801%2Fap-southeast-1%2Ftos"
    "%2Frequest&X-Tos-Date=20260801T093000Z&X-Tos-Expires=86400&X-Tos-Signature=abc"
    "&X-Tos-SignedHeaders=host"
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(TOS, SIGNED_AT + timedelta(days=1), id="tos"),
        pytest.param(
            "https://b.s3.amazonaws.com/v.mp4?X-Amz-Date=20260801T093000Z&X-Amz-Expires=3600",
            SIGNED_AT + timedelta(hours=1),
            id="sigv4",
        ),
        pytest.param(
            "https://b.s3.amazonaws.com/v.mp4?x-amz-date=20260801T093000Z&x-amz-expires=60",
            SIGNED_AT + timedelta(seconds=60),
            id="lower-case names",
        ),
        pytest.param(
            f"http://127.0.0.1:8700/_files/cgt-1/video.mp4?expires={int(SIGNED_AT.timestamp())}"
            "&signature=f00",
            SIGNED_AT,
            id="emulator absolute expires",
        ),
        pytest.param("https://host/v.mp4", None, id="unsigned"),
        pytest.param("https://host/v.mp4?X-Tos-Date=garbage&X-Tos-Expires=60", None, id="bad date"),
        pytest.param(
            "https://host/v.mp4?X-Tos-Date=20260801T093000Z&X-Tos-Expires=-5", None, id="neg"
        ),
        pytest.param("https://host/v.mp4?expires=99999999999999", None, id="absurd expiry"),
    ],
)
def test_a_signed_url_says_when_it_expires(url: str, expected: datetime | None) -> None:
    assert signed_url_expiry(url) == expected


def test_the_urls_own_expiry_bounds_the_copy() -> None:
    deadline = copy_deadline(TOS, succeeded_at=SIGNED_AT, url_lifetime_seconds=3600)
    assert deadline.source == "signed_url"
    assert deadline.at == SIGNED_AT + timedelta(days=1) - EXPIRY_MARGIN


def test_an_unsigned_url_lives_the_routes_lifetime_from_the_success() -> None:
    deadline = copy_deadline("https://h/v.mp4", succeeded_at=SIGNED_AT, url_lifetime_seconds=7200)
    assert (deadline.source, deadline.at) == (
        "url_lifetime",
        SIGNED_AT + timedelta(hours=2) - EXPIRY_MARGIN,
    )


def test_the_tasks_retention_comes_first_when_it_is_sooner() -> None:
    retention = SIGNED_AT + timedelta(hours=3)
    deadline = copy_deadline(
        TOS, succeeded_at=SIGNED_AT, url_lifetime_seconds=86400, retention_until=retention
    )
    assert (deadline.source, deadline.at) == ("retention", retention - EXPIRY_MARGIN)
    assert deadline.passed(retention) and not deadline.passed(SIGNED_AT)
    assert "retention" in deadline.describe()


def test_the_retry_policy_has_no_attempt_limit_only_the_urls_bound() -> None:
    deadline = copy_deadline(TOS, succeeded_at=SIGNED_AT, url_lifetime_seconds=86400)
    now = SIGNED_AT + timedelta(minutes=5)
    plan = copy_retry(deadline, now)
    assert plan.retry_policy.maximum_attempts == 0
    assert plan.schedule_to_close == deadline.at - now
    assert plan.start_to_close <= plan.schedule_to_close
    assert set(plan.retry_policy.non_retryable_error_types or []) == {
        et.OUTPUT_URL_EXPIRED,
        et.OUTPUT_HOST_REFUSED,
    }
    assert et.OUTPUT_INCOMPLETE not in (plan.retry_policy.non_retryable_error_types or [])


def test_a_deadline_already_past_still_gets_one_real_try() -> None:
    deadline = copy_deadline("https://h/v.mp4", succeeded_at=SIGNED_AT, url_lifetime_seconds=60)
    plan = copy_retry(deadline, SIGNED_AT + timedelta(days=2))
    assert plan.schedule_to_close == MIN_WINDOW


def test_the_jobs_copy_deadline_comes_from_its_record_and_model() -> None:
    from seedance_pipeline.core.copy_deadline import job_copy_deadline
    from seedance_pipeline.core.models import JobRecord
    from tests.workflows.support import model

    created = SIGNED_AT - timedelta(minutes=2)
    record = JobRecord(
        job_id="j", request=None, provider_created_at=created, provider_updated_at=SIGNED_AT
    )
    pinned = model(output_url_seconds=3600.0, task_retention_seconds=86_400.0)
    unsigned = job_copy_deadline("https://h/v.mp4", record, pinned, SIGNED_AT)
    assert (unsigned.source, unsigned.at) == (
        "url_lifetime",
        SIGNED_AT + timedelta(hours=1) - EXPIRY_MARGIN,
    )
    short = model(task_retention_seconds=600.0)
    assert job_copy_deadline(TOS, record, short, SIGNED_AT).at == created + timedelta(seconds=540)
