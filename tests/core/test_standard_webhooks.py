"""Our Standard Webhooks signature, checked by the spec's own library, and the message ID."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from seedance_pipeline.core.standard_webhooks import (
    BadWebhookSecret,
    new_secret,
    sign,
    webhook_id,
)


def test_the_reference_library_verifies_our_signature() -> None:
    secret = new_secret()
    body = b'{"type":"job.succeeded"}'
    now = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(secret, "msg_1", now, body),
    }
    assert Webhook(secret).verify(body, headers) == {"type": "job.succeeded"}
    theirs = Webhook(secret).sign("msg_1", datetime.fromtimestamp(now, UTC), body.decode())
    assert theirs == headers["webhook-signature"]


def test_the_message_id_is_stable_per_event_and_run() -> None:
    assert webhook_id("acme:a", "job.succeeded", "r1") == webhook_id(
        "acme:a", "job.succeeded", "r1"
    )
    assert webhook_id("acme:a", "job.succeeded", "r1") != webhook_id("acme:a", "job.failed", "r1")
    assert webhook_id("acme:a", "job.succeeded", "r1") != webhook_id(
        "acme:a", "job.succeeded", "r2"
    )
    assert webhook_id("acme:a", "job.succeeded").startswith("msg_")


@pytest.mark.parametrize("secret", ["plain", "whsec_not base64!", "whsec_c2hvcnQ="])
def test_a_bad_secret_says_what_is_wrong(secret: str) -> None:
    with pytest.raises(BadWebhookSecret):
        sign(secret, "msg_1", 1, b"{}")
