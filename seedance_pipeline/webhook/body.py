"""Read a request body without letting the caller decide how much memory we spend.

Content-Length is only a hint (chunked requests have none), so the stream itself is counted and
reading stops one chunk past the limit.
"""

from __future__ import annotations

from starlette.requests import Request


class BodyTooLarge(Exception):
    """The body is longer than the limit (declared or actually sent)."""


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise BodyTooLarge
        except ValueError:
            pass  # the HTTP server already refuses invalid framing; count the stream instead
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise BodyTooLarge
    return bytes(received)
