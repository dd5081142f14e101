"""Provider failures -> typed ApplicationErrors, classified by the one outcome table.

The workflow reads `type` (what happened) and `details[0]` (the provider's code and message,
verbatim, plus the outcome class) and decides; activities never decide retries of a create.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError

from seedance_pipeline.adapters.provider_client import (
    ProviderAmbiguous,
    ProviderBadResponse,
    ProviderError,
    ProviderHTTPError,
    ProviderMissingKey,
    ProviderNotReached,
)
from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.models import Outcome
from seedance_pipeline.core.outcomes import classify_http


def details(
    code: str, message: str, outcome: Outcome, http_status: int | None = None
) -> dict[str, object]:
    return {"code": code, "message": message, "outcome": outcome.value, "http_status": http_status}


def to_application_error(exc: ProviderError, op: str) -> ApplicationError:
    if isinstance(exc, ProviderNotReached):
        return ApplicationError(
            str(exc),
            details(et.PROVIDER_NOT_REACHED, str(exc), Outcome.FAILED_INFRA),
            type=et.PROVIDER_NOT_REACHED,
        )
    if isinstance(exc, ProviderAmbiguous):
        return ApplicationError(
            str(exc),
            details(et.PROVIDER_AMBIGUOUS, str(exc), Outcome.FAILED_INFRA),
            type=et.PROVIDER_AMBIGUOUS,
        )
    if isinstance(exc, ProviderMissingKey):
        return ApplicationError(
            str(exc),
            details("MissingApiKey", str(exc), Outcome.FAILED_INPUT),
            type=et.PROVIDER_AUTH,
            non_retryable=True,
        )
    if isinstance(exc, ProviderHTTPError):
        if op != "create" and exc.status == 404:
            return ApplicationError(
                f"{op}: provider does not know the task ({exc.code}: {exc.message})",
                details(exc.code, exc.message, Outcome.FAILED_INFRA, exc.status),
                type=et.PROVIDER_TASK_NOT_FOUND,
                non_retryable=True,
            )
        cls = classify_http(exc.status, exc.code)
        delay = timedelta(seconds=exc.retry_after) if exc.retry_after is not None else None
        return ApplicationError(
            f"{op}: HTTP {exc.status} {exc.code}: {exc.message}",
            details(exc.code, exc.message, cls.outcome, exc.status),
            type=cls.error_type,
            non_retryable=not cls.retryable,
            next_retry_delay=delay,
        )
    if isinstance(exc, ProviderBadResponse):
        return ApplicationError(
            str(exc),
            details(et.PROVIDER_BAD_RESPONSE, str(exc), Outcome.FAILED_INFRA),
            type=et.PROVIDER_BAD_RESPONSE,
        )
    return ApplicationError(str(exc), type=et.PROVIDER_ERROR)
