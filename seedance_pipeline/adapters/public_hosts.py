"""Is a host on the public internet? The check every outbound URL a user gives us passes
(references before a paid call and in the starter, completion webhooks before a delivery), so
the worker never becomes a proxy into its own network. Which addresses count as public is
`core.addresses.public`; this module resolves the name.
"""

from __future__ import annotations

import asyncio
import socket

from seedance_pipeline.core.addresses import public

RESOLVE_TIMEOUT = 5.0


class HostUnresolvable(LookupError):
    """The name does not resolve (may be temporary: callers usually retry)."""


async def addresses(host: str) -> list[str]:
    """Every address `host` resolves to (HostUnresolvable when it does not, in time)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT
        )
    except (OSError, TimeoutError, UnicodeError):
        raise HostUnresolvable(f"host {host!r} does not resolve") from None
    return sorted({str(info[4][0]) for info in infos})


async def private_address(host: str) -> str | None:
    """The first address of `host` that is not public, or None when all of them are."""
    return next((a for a in await addresses(host) if not public(a)), None)
