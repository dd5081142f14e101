"""What the receiver answered, as one value shared by the handler, the log line and the metrics.

Keeping the status code, the JSON body and the metric label together means the three can never
disagree about what happened to a callback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from starlette.responses import JSONResponse


class Result(StrEnum):
    """The `result` label of `seedance_webhook_callbacks_total`."""

    ACCEPTED = "accepted"
    IGNORED = "ignored"
    FORGED = "forged"
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    UNKNOWN_JOB = "unknown_job"
    UNAVAILABLE = "unavailable"
    ERROR = "error"
    """A bug of ours caught by the safety net; logged with its traceback."""


@dataclass(frozen=True)
class Answer:
    result: Result
    status_code: int
    body: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status_code, headers=self.headers)


ACCEPTED = Answer(Result.ACCEPTED, 200, {"status": "accepted"})
IGNORED_FINISHED = Answer(Result.IGNORED, 200, {"status": "ignored", "reason": "job finished"})
FORGED = Answer(Result.FORGED, 403, {"error": "invalid callback token"})
UNKNOWN_JOB = Answer(Result.UNKNOWN_JOB, 404, {"error": "unknown job"})
# 503 is the one 5xx we send: the fault is ours (Temporal), so the provider should retry.
UNAVAILABLE = Answer(
    Result.UNAVAILABLE, 503, {"error": "temporal unavailable, retry later"}, {"Retry-After": "5"}
)


def too_large(limit: int) -> Answer:
    return Answer(Result.TOO_LARGE, 413, {"error": f"body exceeds {limit} bytes"})


def malformed(status_code: int, reason: str) -> Answer:
    return Answer(Result.MALFORMED, status_code, {"error": reason})
