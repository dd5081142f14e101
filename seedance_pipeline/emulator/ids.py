"""Identifier formats copied from what the real service emits.

Task IDs look like ``cgt-20250507173314-t4pkt``: the timestamp is Beijing time
(UTC+8) and the suffix is five lowercase alphanumerics (reference section 4).
Server request IDs imitate the long hex "logid" found in real error messages.
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8))
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits


def task_id(now: float) -> str:
    """A new ``cgt-<yyyymmddhhmmss UTC+8>-<5 lc alnum>`` task ID for time ``now``."""
    stamp = datetime.fromtimestamp(now, tz=UTC).astimezone(BEIJING).strftime("%Y%m%d%H%M%S")
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
    return f"cgt-{stamp}-{suffix}"


def request_id(now: float) -> str:
    """A server request ID: ``02`` + millisecond timestamp + 38 hex chars (53 chars)."""
    return f"02{int(now * 1000):013d}{secrets.token_hex(19)}"
