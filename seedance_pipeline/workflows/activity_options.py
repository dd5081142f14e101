"""Timeouts and retry policies per activity, in one place, and the one way to call a stub.

`create_task` gets one attempt: whether another create is safe is the workflow's decision,
made from the error type (never pay twice), and it has a schedule-to-start bound so a submit
queue with no worker is a classified failure, not a job that waits forever. Everything else is
idempotent and retried by Temporal.

The two routing lookups (`resolve_model`, `choose_model`) run as local activities
(`call_local`): they read the worker's config and its cached breaker view, take milliseconds,
and come first in every job. As local activities their results are still recorded in history
(one marker each, so a resolve stays pinned on replay), but they run inside the job's first
workflow task: no activity task to schedule, dispatch and complete, and no workflow task after
each. That is 10 events and four server round trips fewer per job (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError, FailureError

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core import error_types as et
    from seedance_pipeline.core.copy_deadline import CopyRetry

A = TypeVar("A")
R = TypeVar("R")


@dataclass(frozen=True)
class Options:
    start_to_close: timedelta
    retry: RetryPolicy
    heartbeat: timedelta | None = None
    schedule_to_start: timedelta | None = None
    schedule_to_close: timedelta | None = None
    """The bound on every attempt together (a copy: its URL's own expiry)."""


async def call(
    activity: Callable[[A], Awaitable[R]],
    arg: A,
    options: Options,
    *,
    task_queue: str | None = None,
) -> R:
    """Run the activity of `activity` (a stub from `activity_stubs`) with `options`.

    A workflow cancellation that arrives while the activity runs surfaces as an ActivityError
    caused by CancelledError; it is turned back into asyncio.CancelledError here, so no
    caller's `except ActivityError` can swallow the cancel and carry on.
    """
    try:
        return await workflow.execute_activity(
            activity,
            arg,
            task_queue=task_queue,
            start_to_close_timeout=options.start_to_close,
            schedule_to_start_timeout=options.schedule_to_start,
            schedule_to_close_timeout=options.schedule_to_close,
            heartbeat_timeout=options.heartbeat,
            retry_policy=options.retry,
        )
    except ActivityError as err:
        _raise_if_cancel(err)
        raise


async def call_local(activity: Callable[[A], Awaitable[R]], arg: A, options: Options) -> R:
    """Run `activity` as a local activity: on this worker, inside the workflow task, its
    result recorded as a marker. Only for short lookups with no provider or storage I/O.

    The SDK raises a local activity's failure bare (the `ApplicationError` or timeout itself,
    not an `ActivityError` around it, as `call` gets): it is wrapped here, so callers and
    `ending.error_from` read both kinds the same way; a cancel is turned back as in `call`.
    """
    try:
        return await workflow.execute_local_activity(
            activity,
            arg,
            start_to_close_timeout=options.start_to_close,
            schedule_to_close_timeout=options.schedule_to_close,
            retry_policy=options.retry,
        )
    except ActivityError as err:
        _raise_if_cancel(err)
        raise
    except CancelledError as err:
        raise asyncio.CancelledError() from err
    except FailureError as err:
        raise ActivityError(
            err.message,
            scheduled_event_id=0,
            started_event_id=0,
            identity="",
            activity_type=getattr(activity, "__name__", ""),  # the stubs' names are theirs
            activity_id="",
            retry_state=None,
        ) from err


def _raise_if_cancel(err: ActivityError) -> None:
    """A workflow cancel the activity's failure carries goes on as asyncio.CancelledError."""
    if isinstance(err.cause, CancelledError):
        raise asyncio.CancelledError() from err


def create_options(timeout_seconds: float, schedule_to_start_seconds: float) -> Options:
    """One attempt, bounded both in running and in waiting for a submit worker."""
    return Options(
        timedelta(seconds=timeout_seconds),
        RetryPolicy(maximum_attempts=1),
        schedule_to_start=timedelta(seconds=schedule_to_start_seconds),
    )


RESOLVE = Options(
    timedelta(seconds=30),
    RetryPolicy(maximum_attempts=5, non_retryable_error_types=[*et.REQUEST_PROBLEMS]),
)
GET = Options(
    timedelta(seconds=60),
    RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=8,
        non_retryable_error_types=[*et.FINAL_GET_ERRORS],
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
BREAKER = Options(timedelta(seconds=10), RetryPolicy(maximum_attempts=2))
CAPACITY_CHECK = Options(timedelta(seconds=120), RetryPolicy(maximum_attempts=3))
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
APP_WEBHOOK = Options(
    timedelta(seconds=30),
    RetryPolicy(
        initial_interval=timedelta(seconds=10),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(hours=1),
        maximum_attempts=0,
        non_retryable_error_types=[*et.APP_WEBHOOK_FINAL],
    ),
    schedule_to_close=timedelta(hours=24),
)
"""The application's completion webhook: retried with backoff for up to a day."""


def copy_options(plan: CopyRetry) -> Options:
    """A copy retried without an attempt limit until its URL's own expiry (`core.copy_deadline`);
    the store phase and the task follower both use it instead of `COPY`."""
    return Options(
        plan.start_to_close,
        plan.retry_policy,
        heartbeat=plan.heartbeat,
        schedule_to_close=plan.schedule_to_close,
    )


def _quick_read(non_retryable: list[str]) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=3,
        non_retryable_error_types=non_retryable,
    )


POLL_GET = Options(timedelta(seconds=30), _quick_read([*et.FINAL_GET_ERRORS]))
"""One read of a task being waited for (the job's wait, the follower): a few quick retries,
then the poll loop itself is the retry, on timers that hold no activity slot through an
outage of minutes or hours."""
POLL_LIST = Options(timedelta(seconds=60), _quick_read([et.PROVIDER_AUTH]))
"""The provider's list read in place of a GET that got no usable answer (the job's wait): as
quick as `POLL_GET`, since the wait's next poll is the retry."""
START_FOLLOWER = Options(
    timedelta(seconds=30),
    RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
)
"""Idempotent (one follower per task ID): retried until Temporal takes the start."""
CLAIM = Options(
    timedelta(seconds=30),
    RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=20,
    ),
)
"""A claim is one row in the ledger: retried through a ledger restart."""
