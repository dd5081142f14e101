"""API keys and the tenants they belong to, and the jobs page's signed session cookies.

Keys are random tokens (`sdp_` + 32 random bytes), so a plain SHA-256 is the right hash: there
is nothing to brute-force, and a lookup stays one hash per request. Only hashes are
configured (`api.tenants.<name>.key_hashes_env` / `key_hashes_file`), read at each request, so
adding or removing a hash in the file rotates keys without a restart. Comparison is
constant-time. `python -m seedance_pipeline.api keygen` prints a new key and its hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from seedance_pipeline.core.settings import ApiSettings

KEY_PREFIX = "sdp_"
HASH_PREFIX = "sha256:"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return HASH_PREFIX + hashlib.sha256(key.encode()).hexdigest()


def tenant_for_key(settings: ApiSettings, key: str) -> str | None:
    """The tenant one of whose hashes matches `key` (every hash is compared: constant time
    over the configured set, not over where the match is)."""
    if not key:
        return None
    presented = hash_key(key)
    found: str | None = None
    for name, tenant in settings.tenants.items():
        for known in tenant.key_hashes():
            if hmac.compare_digest(known, presented):
                found = name
    return found


@dataclass(frozen=True)
class Sessions:
    """Signed, expiring tokens naming a tenant: the jobs page's cookie and its page links.

    `kind` separates a page link (short, for a URL) from a session (the cookie), so a leaked
    cookie value cannot be replayed as a link or the other way round."""

    secret: bytes

    @classmethod
    def for_settings(cls, settings: ApiSettings) -> Sessions:
        return cls(settings.session_secret() or secrets.token_bytes(32))

    def issue(self, tenant: str, kind: str, seconds: int) -> tuple[str, int]:
        expires = int(time.time()) + seconds
        payload = _b64(json.dumps({"t": tenant, "k": kind, "e": expires}).encode())
        return f"{payload}.{self._mac(payload)}", expires

    def verify(self, token: str, kind: str) -> str | None:
        """The tenant of a valid, unexpired token of this kind, else None."""
        payload, _, mac = token.partition(".")
        if not payload or not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("k") != kind:
            return None
        expires, tenant = data.get("e"), data.get("t")
        if not isinstance(expires, int) or expires < time.time() or not isinstance(tenant, str):
            return None
        return tenant

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self.secret, payload.encode(), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
