"""Standard Webhooks (standardwebhooks.com): the signature and the stable message ID.

A delivery carries three headers: `webhook-id` (the same on every retry, so a receiver can
drop duplicates), `webhook-timestamp` (Unix seconds of this attempt, so a receiver can refuse
replays outside its tolerance) and `webhook-signature` (`v1,<base64 HMAC-SHA256>` of
`{id}.{timestamp}.{body}` under the base64 key of a `whsec_` secret). Pure: the delivery
activity posts, this module only computes; the `standardwebhooks` package verifies our output
in the tests, so both sides agree on the spec, not only with each other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from enum import StrEnum

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format prefix, not a secret)
SIGNATURE_VERSION = "v1"


class WebhookEvent(StrEnum):
    """What the application is told when its job ends."""

    SUCCEEDED = "job.succeeded"
    FAILED = "job.failed"
    CANCELLED = "job.cancelled"


class BadWebhookSecret(ValueError):
    """The configured secret is not `whsec_` followed by base64 (the message says so)."""


def new_secret() -> str:
    """A fresh `whsec_` secret: 32 random bytes, base64 (what the spec's libraries expect)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a `whsec_` secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise BadWebhookSecret("a webhook secret starts with whsec_ (make one with new_secret())")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise BadWebhookSecret("the part after whsec_ is not valid base64") from None
    if len(key) < 24:
        raise BadWebhookSecret(f"the secret's key is {len(key)} bytes; use at least 24")
    return key


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one attempt."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def webhook_id(job_id: str, event: str, run_id: str | None = None) -> str:
    """Stable across retries of one event of one job run; a rerun of the job (a new run)
    gets new IDs, so a receiver that deduplicates does not drop the rerun's news."""
    source = f"{job_id}\n{event}\n{run_id or ''}".encode()
    return "msg_" + hashlib.sha256(source).hexdigest()[:32]
