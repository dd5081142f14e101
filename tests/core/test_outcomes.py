"""The outcome table: every provider code lands in one class; moderation is never retryable."""

import pytest

from seedance_pipeline.core.models import Outcome
from seedance_pipeline.core.outcomes import classify_code, classify_http, classify_task_failure


@pytest.mark.parametrize(
    ("status", "code", "outcome", "retryable"),
    [
        (400, "InputTextSensitiveContentDetected", Outcome.REJECTED_MODERATION, False),
        (
            400,
            "InputImageSensitiveContentDetected.PrivacyInformation",
            Outcome.REJECTED_MODERATION,
            False,
        ),
        (400, "SensitiveContentDetected.Violence", Outcome.REJECTED_MODERATION, False),
        (400, "InvalidParameter", Outcome.FAILED_INPUT, False),
        (400, "InvalidParameter.TaskTypeConstraint", Outcome.FAILED_INPUT, False),
        (400, "MissingParameter", Outcome.FAILED_INPUT, False),
        (401, "AuthenticationError", Outcome.FAILED_INPUT, False),
        (403, "AccountOverdueError", Outcome.FAILED_QUOTA, False),
        (429, "QuotaExceeded", Outcome.FAILED_QUOTA, False),
        (404, "ModelNotOpen", Outcome.FAILED_INPUT, False),
        (404, "InvalidEndpointOrModel.NotFound", Outcome.FAILED_INPUT, False),
        (429, "RateLimitExceeded.EndpointRPMExceeded", Outcome.FAILED_INFRA, True),
        (429, "ServerOverloaded", Outcome.FAILED_INFRA, True),
        (500, "InternalServiceError", Outcome.FAILED_INFRA, True),
        (503, "SomethingNew", Outcome.FAILED_INFRA, True),
        (418, "SomethingNew", Outcome.FAILED_INPUT, False),
    ],
)
def test_http_classification(status: int, code: str, outcome: Outcome, retryable: bool) -> None:
    cls = classify_http(status, code)
    assert (cls.outcome, cls.retryable) == (outcome, retryable)


@pytest.mark.parametrize(
    ("status", "code", "outcome", "retryable"),
    [
        (
            "failed",
            "OutputVideoSensitiveContentDetected.PolicyViolation",
            Outcome.REJECTED_MODERATION,
            False,
        ),
        (
            "failed",
            "OutputAudioSensitiveContentDetected.PolicyViolation",
            Outcome.REJECTED_MODERATION,
            False,
        ),
        ("failed", "InternalServiceError", Outcome.FAILED_INFRA, True),
        ("failed", "NeverSeenBefore", Outcome.FAILED_INFRA, True),
        ("failed", None, Outcome.FAILED_INFRA, True),
        ("expired", None, Outcome.FAILED_INFRA, True),
        ("cancelled", None, Outcome.CANCELLED, False),
    ],
)
def test_task_failure_classification(
    status: str, code: str | None, outcome: Outcome, retryable: bool
) -> None:
    cls = classify_task_failure(status, code)
    assert (cls.outcome, cls.retryable) == (outcome, retryable)


def test_prefix_does_not_match_mid_word() -> None:
    """`InvalidParameterX` is not `InvalidParameter.*`: unknown stays unknown."""
    assert classify_code("InvalidParameterX") is None
