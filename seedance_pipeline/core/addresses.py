"""Which addresses outbound fetches may reach: only globally routable unicast ones.

`is_private` alone misses the shared address space 100.64.0.0/10, where Volcengine
(100.96.0.96) and Alibaba Cloud (100.100.100.200) serve instance metadata, and the
benchmarking range 198.18.0.0/15; an IPv4-mapped IPv6 address is judged as its IPv4 form.
Used by the worker's reference check and by the starter, which refuses such references
before anything starts.
"""

from __future__ import annotations

import ipaddress


def public(address: str) -> bool:
    """Whether `address` (an IP literal) is globally routable unicast."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
