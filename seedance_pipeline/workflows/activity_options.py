"""Timeouts and retry policies per activity, in one place, and a typed way to call by name.

`create_task` gets one attempt: whether another create is safe is the workflow's decision,
made from the error type (never pay twice). Everything else is idempotent and retried by
Temporal.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core import error_types as et

T = TypeVar("T")


@dataclass(frozen=True)
class Options:
    start_to_close: timedelta
    retry: RetryPolicy
    heartbeat: timedelta | None = None


async def call(
    name: str, arg: Any, result_type: type[T], options: Options, task_queue: str | None = None
) -> T:
    """Run activity `name` (activities are called by name: no I/O imports in workflows).

    A workflow cancellation that arrives while the activity runs surfaces as an ActivityError
    caused by CancelledError; it is turned back into asyncio.CancelledError here, so no
    caller's `except ActivityError` can swallow the cancel and carry on.
    """
    try:
        result = await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            task_queue=task_queue,
            start_to_close_timeout=options.start_to_close,
            heartbeat_timeout=options.heartbeat,
            retry_policy=options.retry,
        )
    except ActivityError as err:
        if isinstance(err.cause, CancelledError):
            raise asyncio.CancelledError() from err
        raise
    return cast(T, result)


RESOLVE = Options(
    timedelta(seconds=30),
    RetryPolicy(maximum_attempts=5, non_retryable_error_types=[*et.REQUEST_PROBLEMS]),
)
CREATE_RETRY = RetryPolicy(maximum_attempts=1)
GET = Options(
    timedelta(seconds=60),
    RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=8,
        non_retryable_error_types=[
            et.PROVIDER_TASK_NOT_FOUND,
            et.PROVIDER_AUTH,
            et.PROVIDER_MODEL_UNAVAILABLE,
            et.PROVIDER_QUOTA,
        ],
    ),
)
FIND = Options(
    timedelta(seconds=120),
    RetryPolicy(
        initial_interval=timedelta(seconds=2),
        maximum_attempts=5,
        non_retryable_error_types=[et.PROVIDER_AUTH],
    ),
)
REFERENCES = Options(
    timedelta(minutes=5),
    RetryPolicy(
        initial_interval=timedelta(seconds=2),
        maximum_attempts=3,
        non_retryable_error_types=[et.REFERENCE_INVALID],
    ),
)
OWNERS = Options(timedelta(seconds=30), RetryPolicy(maximum_attempts=5))
HEALTH = Options(timedelta(seconds=10), RetryPolicy(maximum_attempts=2))
CANCEL = Options(timedelta(seconds=60), RetryPolicy(maximum_attempts=3))
COPY = Options(
    timedelta(minutes=30),
    RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=5,
        non_retryable_error_types=[et.OUTPUT_URL_EXPIRED, et.OUTPUT_HOST_REFUSED],
    ),
    heartbeat=timedelta(seconds=60),
)
RECORD = Options(
    timedelta(seconds=60),
    RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
)
