"""An httpx transport that connects to a configured address for some host names.

For emulated stacks only (`storage.resolve_hosts`): the emulator serves outputs under the
provider's real storage host names (`ark-content-generation-ap-southeast-1.tos-ap-southeast-1
.volces.com`), so the copy step runs exactly as against the real provider, with the shipped
`output_hosts` allow-list and an unchanged URL, and only the connection goes to the emulator.
The request keeps its URL and Host header (the host check, logs and errors all see the real
name); the transport sends it to the mapped `scheme://address:port` instead of resolving the
name, the way `curl --connect-to` does. Hosts not in the map are untouched.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx


class HostMapTransport(httpx.AsyncBaseTransport):
    """Sends requests for mapped hosts to their target; everything else as usual."""

    def __init__(self, mapping: Mapping[str, str], inner: httpx.AsyncBaseTransport) -> None:
        self._targets = {host.lower(): httpx.URL(target) for host, target in mapping.items()}
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = self._targets.get(request.url.host.lower())
        if target is None:
            return await self._inner.handle_async_request(request)
        original = request.url
        request.url = original.copy_with(scheme=target.scheme, host=target.host, port=target.port)
        request.headers["Host"] = original.netloc.decode("ascii")
        try:
            response = await self._inner.handle_async_request(request)
        finally:
            request.url = original
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def transport_for(
    mapping: Mapping[str, str], *, limits: httpx.Limits
) -> httpx.AsyncBaseTransport | None:
    """The worker's HTTP transport: None (httpx's own) unless hosts are mapped."""
    if not mapping:
        return None
    return HostMapTransport(mapping, httpx.AsyncHTTPTransport(limits=limits))
