"""Pre-signed output URLs shaped like the provider's (Volcano Engine TOS, reference section 0,
C1/C2), and their check.

A real `video_url` looks like
``https://ark-content-generation-ap-southeast-1.tos-ap-southeast-1.volces.com/
<model ID without its date>/0217...ffff...b26890.mp4?X-Tos-Algorithm=TOS4-HMAC-SHA256&
X-Tos-Credential=AKLT...%2F20260405%2Fap-southeast-1%2Ftos%2Frequest&X-Tos-Date=20260405T024433Z&
X-Tos-Expires=86400&X-Tos-Signature=<64 hex>&X-Tos-SignedHeaders=host``; the last frame is the
same object name with ``_last-frame.png``. The emulator builds exactly that shape, on the
region's TOS host (``tos_urls``) or on its own address, and answers an expired or tampered URL
the way TOS does (403 with a JSON error body). The signature is an HMAC over the path, the
date and the lifetime with the emulator's own secret, not TOS's algorithm.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from urllib.parse import quote

ALGORITHM = "TOS4-HMAC-SHA256"
ACCESS_KEY = "AKLTZW11bGF0b3ItYWNjZXNzLWtleQ"
"""A fake AK in the AKLT... form of Volcano Engine access keys (never a real credential)."""
REGIONS = {"byteplus": "ap-southeast-1", "volcengine": "cn-beijing"}
FILE_SUFFIX = {"video.mp4": ".mp4", "last_frame.png": "_last-frame.png"}
_DATE = "%Y%m%dT%H%M%SZ"


class SignatureCheck(Enum):
    """Outcome of checking a file URL's query parameters."""

    OK = "ok"
    EXPIRED = "expired"
    BAD = "bad"


@dataclass(frozen=True)
class ObjectRef:
    """Which task file an object path names."""

    task_id: str
    name: str


def model_prefix(model_id: str) -> str:
    """The first path segment: the model ID without its date suffix (``...-2-0-260128`` ->
    ``...-2-0``), as real output URLs have it."""
    head, _, tail = model_id.rpartition("-")
    return head if head and tail.isdigit() else model_id


class UrlSigner:
    """Builds TOS-shaped URLs for task files and checks them."""

    def __init__(self, secret: str, base_url: str) -> None:
        self._key = secret.encode()
        self.base_url = base_url.rstrip("/")
        self._objects: dict[str, ObjectRef] = {}

    def _mac(self, path: str, date: str, expires: str) -> str:
        return hmac.new(self._key, f"{path}|{date}|{expires}".encode(), hashlib.sha256).hexdigest()

    def object_path(self, task_id: str, name: str, model_id: str, created_at: float) -> str:
        """``/{model prefix}/{object}{suffix}``: the object name has the real one's shape
        (``021`` + creation time in ms + zero padding + ``ffff`` + an address + 6 hex)."""
        tag = hmac.new(self._key, task_id.encode(), hashlib.sha256).hexdigest()[:6]
        stem = f"021{int(created_at * 1000):013d}{'0' * 20}ffff7f000001{tag}"
        path = f"/{quote(model_prefix(model_id))}/{stem}{FILE_SUFFIX[name]}"
        self._objects[path] = ObjectRef(task_id, name)
        return path

    def url(
        self,
        path: str,
        issued_at: float,
        ttl: int,
        *,
        region: str = "byteplus",
        base_url: str | None = None,
    ) -> str:
        """A full URL for `path`, valid for `ttl` seconds from `issued_at`."""
        date = datetime.fromtimestamp(int(issued_at), UTC).strftime(_DATE)
        scope = f"{ACCESS_KEY}/{date[:8]}/{REGIONS.get(region, region)}/tos/request"
        expires = str(ttl)
        query = (
            f"X-Tos-Algorithm={ALGORITHM}&X-Tos-Credential={quote(scope, safe='')}"
            f"&X-Tos-Date={date}&X-Tos-Expires={expires}"
            f"&X-Tos-Signature={self._mac(path, date, expires)}&X-Tos-SignedHeaders=host"
        )
        return f"{(base_url or self.base_url).rstrip('/')}{path}?{query}"

    def lookup(self, path: str) -> ObjectRef | None:
        """The task file behind an object path (None: no such key)."""
        return self._objects.get(path)

    def check(
        self, path: str, date: str | None, expires: str | None, signature: str | None, now: float
    ) -> SignatureCheck:
        """Is this request authorised at time `now`? Bad signatures win over expiry."""
        if not date or not expires or not signature or not expires.isdigit():
            return SignatureCheck.BAD
        if not hmac.compare_digest(self._mac(path, date, expires), signature):
            return SignatureCheck.BAD
        try:
            issued = datetime.strptime(date, _DATE).replace(tzinfo=UTC).timestamp()
        except ValueError:
            return SignatureCheck.BAD
        if now >= issued + int(expires):
            return SignatureCheck.EXPIRED
        return SignatureCheck.OK

    def clear(self) -> None:
        """Forget every object (``POST /_emulator/reset``)."""
        self._objects.clear()
