"""The one outcome table: provider errors -> outcome class and whether a retry can help.

Used by activities (to raise typed, retryable or not, ApplicationErrors) and by the workflow
(to classify a task that ended `failed`/`expired`). Unknown codes fall back to `failed_infra`
and keep the raw error, so a new provider code is visible rather than mis-filed.
Source: ../shared/reference/modelark-video-api.md sections 9 and 14.
"""

from __future__ import annotations

from dataclasses import dataclass

from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.models import Outcome


@dataclass(frozen=True)
class Classification:
    outcome: Outcome
    retryable: bool
    error_type: str
    """The ApplicationError type name used across the activity boundary."""


INFRA = Classification(Outcome.FAILED_INFRA, True, et.PROVIDER_UNAVAILABLE)
RATE_LIMITED = Classification(Outcome.FAILED_INFRA, True, et.PROVIDER_RATE_LIMITED)
INPUT = Classification(Outcome.FAILED_INPUT, False, et.PROVIDER_INPUT_ERROR)
MODERATION = Classification(Outcome.REJECTED_MODERATION, False, et.PROVIDER_MODERATION)
QUOTA = Classification(Outcome.FAILED_QUOTA, False, et.PROVIDER_QUOTA)
AUTH = Classification(Outcome.FAILED_INPUT, False, et.PROVIDER_AUTH)
MODEL_UNAVAILABLE = Classification(Outcome.FAILED_INPUT, False, et.PROVIDER_MODEL_UNAVAILABLE)

# Exact codes first, then prefixes (longest wins). Moderation is never retried automatically.
_EXACT: dict[str, Classification] = {
    "AuthenticationError": AUTH,
    "AccessDenied": AUTH,
    "AccountOverdueError": QUOTA,
    "QuotaExceeded": QUOTA,
    "SetLimitExceeded": QUOTA,
    "ModelNotOpen": MODEL_UNAVAILABLE,
    "UnsupportedModel": MODEL_UNAVAILABLE,
    "InvalidEndpoint.ClosedEndpoint": MODEL_UNAVAILABLE,
    "MissingParameter": INPUT,
    "InternalServiceError": INFRA,
    "InternalServerError": INFRA,
    "ServerOverloaded": RATE_LIMITED,
    "ModelLoadingError": RATE_LIMITED,
}
_PREFIXES: tuple[tuple[str, Classification], ...] = (
    ("InvalidParameter", INPUT),
    ("InvalidEndpointOrModel", MODEL_UNAVAILABLE),
    ("InvalidEndpoint", MODEL_UNAVAILABLE),
    ("NotFound", INPUT),
    ("SensitiveContentDetected", MODERATION),
    ("InputTextSensitiveContentDetected", MODERATION),
    ("InputImageSensitiveContentDetected", MODERATION),
    ("InputVideoSensitiveContentDetected", MODERATION),
    ("InputAudioSensitiveContentDetected", MODERATION),
    ("OutputVideoSensitiveContentDetected", MODERATION),
    ("OutputAudioSensitiveContentDetected", MODERATION),
    ("OutputImageSensitiveContentDetected", MODERATION),
    ("InputTextRiskDetection", MODERATION),
    ("InputImageRiskDetection", MODERATION),
    ("OutputTextRiskDetection", MODERATION),
    ("OutputImageRiskDetection", MODERATION),
    ("ContentSecurityDetectionError", MODERATION),
    ("RateLimitExceeded", RATE_LIMITED),
    ("ModelAccountRpmRateLimitExceeded", RATE_LIMITED),
    ("ModelAccountTpmRateLimitExceeded", RATE_LIMITED),
)


def classify_code(code: str | None) -> Classification | None:
    """Classify by provider code alone; None when the code is unknown."""
    if not code:
        return None
    if code in _EXACT:
        return _EXACT[code]
    best: tuple[int, Classification] | None = None
    for prefix, cls in _PREFIXES:
        if (code == prefix or code.startswith(prefix + ".")) and (
            best is None or len(prefix) > best[0]
        ):
            best = (len(prefix), cls)
    return best[1] if best else None


def classify_http(status: int, code: str | None) -> Classification:
    """Classify a failed HTTP call by status and provider code."""
    known = classify_code(code)
    if known is not None:
        return known
    if status == 429:
        return RATE_LIMITED
    if status in (401,):
        return AUTH
    if status == 403:
        return AUTH
    if status == 404:
        return MODEL_UNAVAILABLE
    if 400 <= status < 500 and status not in (408, 409):
        return INPUT
    return INFRA


def classify_task_failure(status: str, code: str | None) -> Classification:
    """Classify a task that ended `failed`, `expired` or `cancelled` at the provider."""
    if status == "cancelled":
        return Classification(Outcome.CANCELLED, False, et.PROVIDER_CANCELLED)
    if status == "expired":
        return Classification(Outcome.FAILED_INFRA, True, et.PROVIDER_EXPIRED)
    known = classify_code(code)
    if known is None:
        return INFRA
    return known
