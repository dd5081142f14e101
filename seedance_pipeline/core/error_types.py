"""The one vocabulary of `ApplicationError` type names that cross the activity boundary.

Raisers (activities), the workflow (which decides from the type) and retry policies (which list
the non-retryable ones) all import these names from here, so a rename is one edit and a typo is
an import error. The tree, by who raises and what the workflow does with it:

    request / config (resolve, references)          -> the job ends failed_input
        REQUEST_INVALID, CONFIG_ERROR, REFERENCE_INVALID, REFERENCE_UNREACHABLE
    provider, the request never reached it          -> another create is safe
        PROVIDER_NOT_REACHED
    provider, refused for its own limits (429)      -> backpressure: wait, never a failure
        PROVIDER_RATE_LIMITED
    provider, answered with a server error (5xx)    -> safe to create again; counts to the breaker
        PROVIDER_UNAVAILABLE
    the create's capacity ask, the gate unreachable -> nothing was sent: wait and ask again
        CAPACITY_ASK_FAILED
    a read that found its task succeeded, the gate  -> an unanswered read: the next one
    unreachable for the slot's release                 releases the slot
        CAPACITY_RELEASE_FAILED
    provider, may or may not have made a task       -> reconcile before any new create
        PROVIDER_AMBIGUOUS, PROVIDER_BAD_RESPONSE
    provider, final answers                         -> classified by core.outcomes, never retried
        PROVIDER_INPUT_ERROR, PROVIDER_MODERATION, PROVIDER_QUOTA, PROVIDER_AUTH,
        PROVIDER_MODEL_UNAVAILABLE, PROVIDER_TASK_NOT_FOUND
    provider task ended without success             -> classified by core.outcomes
        PROVIDER_CANCELLED, PROVIDER_EXPIRED
    copy of the output                              -> a fresh URL, or the job ends failed_infra
        OUTPUT_URL_EXPIRED, OUTPUT_HOST_REFUSED, OUTPUT_INCOMPLETE
        (retried until the URL's own expiry: `core.copy_deadline`)
    ledger                                          -> never retried: a bug or a workflow reset
        TASK_CLAIMED_ELSEWHERE (a row for a task another create claimed: never two rows)
    task follower                                   -> fails the follower with the reason
        FOLLOWER_INPUT_INVALID
    the workflow itself                             -> fails the run with the reason
        INVARIANT_BROKEN, BREAKER_INVALID, GATE_INVALID
    an update a finished job refuses                -> the client says "already finished"
        JOB_FINISHED
    a job that does not succeed fails its workflow with its Outcome value as the type
    completion webhook to the application           -> retried with backoff (up to 24 h) or
                                                       given up; never changes the outcome
        APP_WEBHOOK_FAILED (retryable), APP_WEBHOOK_NO_SECRET (retryable: config can be fixed),
        APP_WEBHOOK_URL_REFUSED, APP_WEBHOOK_GONE (non-retryable)
"""

from __future__ import annotations

from typing import Final

REQUEST_INVALID: Final = "RequestInvalid"
CONFIG_ERROR: Final = "ConfigError"
REFERENCE_INVALID: Final = "ReferenceInvalid"
REFERENCE_UNREACHABLE: Final = "ReferenceUnreachable"
"""A reference could not be fetched for the check (retried; then the job ends failed_input)."""

PROVIDER_NOT_REACHED: Final = "ProviderNotReached"
PROVIDER_RATE_LIMITED: Final = "ProviderRateLimited"
PROVIDER_UNAVAILABLE: Final = "ProviderUnavailable"
PROVIDER_AMBIGUOUS: Final = "ProviderAmbiguous"
PROVIDER_BAD_RESPONSE: Final = "ProviderBadResponse"
PROVIDER_INPUT_ERROR: Final = "ProviderInputError"
PROVIDER_MODERATION: Final = "ProviderModeration"
PROVIDER_QUOTA: Final = "ProviderQuota"
PROVIDER_AUTH: Final = "ProviderAuth"
PROVIDER_MODEL_UNAVAILABLE: Final = "ProviderModelUnavailable"
PROVIDER_TASK_NOT_FOUND: Final = "ProviderTaskNotFound"
PROVIDER_CANCELLED: Final = "ProviderCancelled"
PROVIDER_EXPIRED: Final = "ProviderExpired"
CAPACITY_ASK_FAILED: Final = "CapacityAskFailed"
"""The create could not reach its account's gate: the provider was not called (non-retryable
as an activity; the job backs off and asks again, within its capacity wait bound)."""
CAPACITY_RELEASE_FAILED: Final = "CapacityReleaseFailed"
"""A read found the task succeeded but could not give its slot back to the gate: retried as
a read (the task stays succeeded, so the next read releases it)."""
PROVIDER_ERROR: Final = "ProviderError"
"""A provider failure of no known kind (a bug in the client's error tree if ever seen)."""

OUTPUT_URL_EXPIRED: Final = "OutputUrlExpired"
OUTPUT_HOST_REFUSED: Final = "OutputHostRefused"
OUTPUT_INCOMPLETE: Final = "OutputIncomplete"

TASK_CLAIMED_ELSEWHERE: Final = "TaskClaimedElsewhere"
"""A ledger row names a provider task that another create (job, run, submit) claimed first:
writing it would record one bill twice. Raised by `record_cost`, non-retryable."""
FOLLOWER_INPUT_INVALID: Final = "FollowerInputInvalid"

INVARIANT_BROKEN: Final = "InvariantBroken"
"""A bug: workflow state that must not happen. Fails the run loudly instead of its task forever."""
BREAKER_INVALID: Final = "BreakerInvalid"
GATE_INVALID: Final = "GateInvalid"
JOB_FINISHED: Final = "JobFinished"
"""The job's outcome is decided, though its workflow may still be closing (handing its task on
to a follower, say): an update is refused with the outcome as its one detail."""

APP_WEBHOOK_FAILED: Final = "AppWebhookFailed"
"""The application's endpoint answered non-2xx (or not at all): try again later."""
APP_WEBHOOK_NO_SECRET: Final = "AppWebhookNoSecret"  # noqa: S105 (an error type name)
"""The tenant has no usable `whsec_` secret configured; retried so a fix loses no event."""
APP_WEBHOOK_URL_REFUSED: Final = "AppWebhookUrlRefused"
"""The URL resolves to a private address (or does not parse): never retried."""
APP_WEBHOOK_GONE: Final = "AppWebhookGone"
"""The endpoint answered 410 Gone: the application asked us to stop."""
APP_WEBHOOK_FINAL: Final = frozenset({APP_WEBHOOK_URL_REFUSED, APP_WEBHOOK_GONE})

SAFE_TO_CREATE_AGAIN: Final = frozenset(
    {PROVIDER_NOT_REACHED, PROVIDER_RATE_LIMITED, PROVIDER_UNAVAILABLE}
)
"""Create failures that prove no task was made."""
CREATE_AMBIGUOUS: Final = frozenset({PROVIDER_AMBIGUOUS, PROVIDER_BAD_RESPONSE})
"""Create failures after which a task may exist: reconcile before any new create."""
REQUEST_PROBLEMS: Final = frozenset({REQUEST_INVALID, CONFIG_ERROR})
FINAL_GET_ERRORS: Final = frozenset(
    {PROVIDER_TASK_NOT_FOUND, PROVIDER_AUTH, PROVIDER_MODEL_UNAVAILABLE, PROVIDER_QUOTA}
)
"""Answers to a GET that no retry changes: the job ends; any other failure is waited out."""
