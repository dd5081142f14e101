"""Callback tokens: the provider's `callback_url` names the job and proves we issued it.

The provider signs nothing (reference section 8), so the URL itself must be unguessable:
`/callbacks/{token}` with token = base64url("{submit_no}:{job_id}") + "." + HMAC-SHA256 over
that payload with a secret known only to the worker and the webhook receiver. The secret never
enters workflow history; the token does (it is a capability for one job only). `submit_no`
tells the workflow which of its create calls a callback answers, which is how an orphan task
from an ambiguous create announces itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from seedance_pipeline.core.models import JOB_ID_PATTERN

_MAC_CHARS = 43  # full SHA-256 in unpadded base64url
MAX_TOKEN_CHARS = 400


class InvalidToken(ValueError):
    """The token is malformed or its MAC does not match."""


@dataclass(frozen=True)
class CallbackTarget:
    job_id: str
    submit_no: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(payload: str, secret: bytes) -> str:
    return _b64(hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest())


def make_token(job_id: str, submit_no: int, secret: bytes) -> str:
    if not secret:
        raise ValueError("callback secret is empty")
    if not JOB_ID_PATTERN.fullmatch(job_id) or submit_no < 0:
        raise ValueError("job_id or submit_no out of shape")
    payload = _b64(f"{submit_no}:{job_id}".encode())
    return f"{payload}.{_mac(payload, secret)}"


def read_token(token: str, secret: bytes) -> CallbackTarget:
    """The job a token names; raises InvalidToken for anything forged or malformed."""
    if not secret or len(token) > MAX_TOKEN_CHARS or not token.isascii() or token.count(".") != 1:
        raise InvalidToken("malformed token")
    payload, mac = token.split(".")
    if len(mac) != _MAC_CHARS or not hmac.compare_digest(mac, _mac(payload, secret)):
        raise InvalidToken("bad signature")
    try:
        submit_text, job_id = _unb64(payload).decode("utf-8").split(":", 1)
        submit_no = int(submit_text)
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken("malformed payload") from None
    if not JOB_ID_PATTERN.fullmatch(job_id) or submit_no < 0:
        raise InvalidToken("malformed payload")
    return CallbackTarget(job_id=job_id, submit_no=submit_no)


def callback_url(base_url: str, job_id: str, submit_no: int, secret: bytes) -> str:
    return f"{base_url.rstrip('/')}/callbacks/{make_token(job_id, submit_no, secret)}"
