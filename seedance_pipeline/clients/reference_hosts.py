"""The starter's check of reference hosts: a reference on a private or loopback address is
refused before anything starts, instead of being accepted as "started" and failing inside
the job (the worker checks again, at every redirect, with its own resolver).

A host that does not resolve here is let through with a warning: the worker may see a
network this machine does not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from seedance_pipeline.adapters.public_hosts import HostUnresolvable, addresses
from seedance_pipeline.core.addresses import public
from seedance_pipeline.core.models import GenerationRequest
from seedance_pipeline.core.settings import Settings


@dataclass
class HostVerdicts:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


async def _addresses(host: str) -> list[str] | None:
    try:
        return await addresses(host)
    except HostUnresolvable:
        return None


async def check_reference_hosts(
    requests: Iterable[tuple[str, GenerationRequest]], settings: Settings
) -> HostVerdicts:
    """Problems (and warnings) per labelled request, each naming the reference and the fix.
    Every distinct host is resolved once, concurrently."""
    verdicts = HostVerdicts()
    if settings.references.allow_private_hosts:
        return verdicts
    wanted: list[tuple[str, int, str]] = []
    for label, request in requests:
        for index, ref in enumerate(request.references):
            parts = urlsplit(ref.url.strip())
            if parts.scheme.lower() in ("http", "https") and parts.hostname:
                wanted.append((label, index, parts.hostname))
    hosts = sorted({host for _, _, host in wanted})
    resolved = dict(zip(hosts, await asyncio.gather(*(_addresses(h) for h in hosts)), strict=True))
    for label, index, host in wanted:
        where = f"{label}references[{index}].url"
        addresses = resolved[host]
        if addresses is None:
            verdicts.warnings.append(
                f"{where}: host {host!r} does not resolve here; the worker checks it again"
            )
            continue
        private = [a for a in addresses if not public(a)]
        if private:
            resolved_to = f" ({private[0]})" if private[0] != host.strip("[]") else ""
            verdicts.problems.append(
                f"{where}: host {host!r} is a private or loopback address{resolved_to}; "
                "use a public URL (or set references.allow_private_hosts on worker and CLI)"
            )
    return verdicts
