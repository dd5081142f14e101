"""How a job ends early, and what a failed activity says.

Phases raise `JobEnded` when the job has its outcome (a moderation rejection, a missing worker,
an expired output); the shell catches it and closes the book. `CreateExhausted` tells the
attempts policy that a model keeps refusing creates, so it falls back. Neither escapes `run`.
A broken invariant is a bug: `invariant_broken` fails the run with its name instead of failing
the workflow task forever (an `assert` would).
"""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ActivityError, ApplicationError, TimeoutType
from temporalio.exceptions import TimeoutError as TemporalTimeout
from temporalio.workflow import unsafe

with unsafe.imports_passed_through():
    from seedance_pipeline.core import error_types as et
    from seedance_pipeline.core.models import ErrorInfo, Outcome

ACTIVITY_TIMEOUT = "ActivityTimeout"
"""An activity ran past its start-to-close bound: for a create, the answer is unknown."""
NOT_STARTED = "ActivityNotStarted"
"""No worker took the activity from its queue within its schedule-to-start bound."""


class JobEnded(Exception):
    """The job has its outcome before the end of the happy path."""

    def __init__(self, outcome: Outcome, error: ErrorInfo) -> None:
        super().__init__(error.message)
        self.outcome = outcome
        self.error = error


class CreateExhausted(Exception):
    """Creates on this model keep being refused: the attempts policy should fall back."""

    def __init__(self, error: ErrorInfo) -> None:
        super().__init__(error.message)
        self.error = error


def pipeline_error(code: str, message: str) -> ErrorInfo:
    return ErrorInfo(code=code, message=message, source="pipeline")


def ended(outcome: Outcome, code: str, message: str) -> JobEnded:
    return JobEnded(outcome, pipeline_error(code, message))


def invariant_broken(what: str) -> ApplicationError:
    """Fail the run on purpose, naming the invariant (a bug report, not a stuck job)."""
    return ApplicationError(
        f"invariant broken: {what}", type=et.INVARIANT_BROKEN, non_retryable=True
    )


def error_from(err: BaseException) -> tuple[str, ErrorInfo, Outcome]:
    """(type, the error verbatim, outcome class) of an activity failure."""
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError):
        return cause.type or "ApplicationError", _info(cause), _outcome(cause)
    if isinstance(cause, TemporalTimeout):
        kind = NOT_STARTED if cause.type == TimeoutType.SCHEDULE_TO_START else ACTIVITY_TIMEOUT
        return kind, pipeline_error(kind, str(cause)), Outcome.FAILED_INFRA
    name = type(cause).__name__ if cause else "Error"
    return name, pipeline_error(name, str(cause or err)), Outcome.FAILED_INFRA


def _details(cause: ApplicationError) -> dict[str, Any]:
    if cause.details and isinstance(cause.details[0], dict):
        return cause.details[0]
    return {}


def _info(cause: ApplicationError) -> ErrorInfo:
    det = _details(cause)
    status = det.get("http_status")
    return ErrorInfo(
        code=str(det.get("code") or cause.type or "Error"),
        message=str(det.get("message") or cause.message),
        http_status=status if isinstance(status, int) else None,
    )


def _outcome(cause: ApplicationError) -> Outcome:
    value = _details(cause).get("outcome")
    return (
        Outcome(value)
        if isinstance(value, str) and value in Outcome._value2member_map_
        else Outcome.FAILED_INFRA
    )
