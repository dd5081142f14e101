"""Refusals, and the reason at the bottom of a Temporal failure chain (workflow -> activity ->
the error the activity raised), for a one-line answer instead of the whole chain."""

from __future__ import annotations

from temporalio.exceptions import FailureError


class Refused(RuntimeError):
    """The job (or the worker) refused the operation and said why."""


def root_message(error: BaseException) -> str:
    cause: BaseException = error
    while True:
        below = cause.__cause__ if not isinstance(cause, FailureError) else cause.cause
        if below is None:
            break
        cause = below
    return (cause.message if isinstance(cause, FailureError) else "") or str(cause)
