"""A Temporal client connected on first use and then kept.

The receiver must start, and answer `/healthz`, before Temporal is up (deploy order should not
matter), so nothing connects at import or startup. A failed attempt is not cached: the next
request tries again. Attempts are serialised by a lock so a burst of callbacks during an outage
makes one connection attempt at a time, each bounded by `connect_timeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from temporalio.client import Client

ClientFactory = Callable[[], Awaitable[Client]]

log = structlog.get_logger(__name__)


class TemporalDown(Exception):
    """No client could be had within the time allowed."""


class TemporalLink:
    def __init__(self, factory: ClientFactory, *, connect_timeout: float) -> None:
        self._factory = factory
        self._connect_timeout = connect_timeout
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def get(self) -> Client:
        if self._client is not None:
            return self._client
        try:
            async with asyncio.timeout(self._connect_timeout):
                async with self._lock:
                    if self._client is None:
                        self._client = await self._factory()
                        log.info("temporal_connected")
                    return self._client
        except TimeoutError:
            log.warning("temporal_connect_failed", error="timed out")
            raise TemporalDown("connect timed out") from None
        except Exception as exc:  # the factory's failure modes are not ours to enumerate
            log.warning("temporal_connect_failed", error=f"{type(exc).__name__}: {exc}")
            raise TemporalDown(str(exc)) from exc
