"""Expiring signed file URLs, like the object-store URLs the provider returns.

Real ``video_url`` values are pre-signed TOS URLs that stop working after 24 h.
Clients that keep the URL and download later must fail the same way against
the emulator, so each URL carries ``expires`` (Unix seconds, emulator clock)
and an HMAC over the path and expiry; anything else is refused with 403.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import Enum
from urllib.parse import quote


class SignatureCheck(Enum):
    """Outcome of checking a file URL's query parameters."""

    OK = "ok"
    EXPIRED = "expired"
    BAD = "bad"


class UrlSigner:
    """Builds and checks ``/_files/{task_id}/{name}?expires=..&signature=..`` URLs."""

    def __init__(self, secret: str, base_url: str) -> None:
        self._key = secret.encode()
        self.base_url = base_url.rstrip("/")

    def _mac(self, task_id: str, name: str, expires: int) -> str:
        msg = f"{task_id}/{name}:{expires}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def url(self, task_id: str, name: str, expires: int) -> str:
        """A full URL for ``name`` of ``task_id`` valid until ``expires``."""
        sig = self._mac(task_id, name, expires)
        path = f"/_files/{quote(task_id)}/{quote(name)}"
        return f"{self.base_url}{path}?expires={expires}&signature={sig}"

    def check(
        self, task_id: str, name: str, expires: str | None, signature: str | None, now: float
    ) -> SignatureCheck:
        """Is this request authorised at time ``now``? Bad signatures win over expiry."""
        if not expires or not signature or not expires.isdigit():
            return SignatureCheck.BAD
        expected = self._mac(task_id, name, int(expires))
        if not hmac.compare_digest(expected, signature):
            return SignatureCheck.BAD
        if now >= int(expires):
            return SignatureCheck.EXPIRED
        return SignatureCheck.OK
