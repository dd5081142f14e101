"""Is a host on the public internet? The check every outbound URL a user gives us passes
(references before a paid call, completion webhooks before a delivery), so the worker never
becomes a proxy into its own network.

Only globally routable unicast addresses pass: `is_private` alone misses the shared address
space 100.64.0.0/10, where Volcengine (100.96.0.96) and Alibaba Cloud (100.100.100.200) serve
instance metadata, and the benchmarking range 198.18.0.0/15; IPv4-mapped IPv6 forms are judged
as the IPv4 address they carry.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket


class HostUnresolvable(LookupError):
    """The name does not resolve (may be temporary: callers usually retry)."""


async def private_address(host: str) -> str | None:
    """The first address of `host` that is not public, or None when all of them are."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise HostUnresolvable(f"host {host!r} does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            return str(address)
    return None
