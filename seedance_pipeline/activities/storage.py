"""Storage activities: copy provider outputs to our store at once, and write the manifest.

Provider URLs expire in about 24 h, so the copy starts as soon as a success is confirmed. The
copy streams (bounded memory), hashes as it goes, checks the length against Content-Length,
heartbeats, and only follows URLs on the route's configured output hosts.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from urllib.parse import urlsplit

import httpx
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from seedance_pipeline.adapters.object_store import IncompleteStream, ObjectStore, safe_key
from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.layout import LAST_FRAME, MANIFEST, VIDEO, key_parts
from seedance_pipeline.core.models import CopyOutputInput, ManifestInput, StoredObject
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.observability import metrics

log = structlog.get_logger(__name__)
HEARTBEAT_EVERY_SECONDS = 1.0
"""A heartbeat per chunk (thousands per video) cost the worker a third of its CPU during a copy
(`Worker.record_activity_heartbeat` in the profile); the heartbeat timeout is 60 s, and the SDK
forwards at most one per 0.8 x that to the server anyway."""
_NAMES = {"video": (VIDEO, "video/mp4"), "last_frame": (LAST_FRAME, "image/png")}


def object_key(
    job_id: str,
    requested_at: datetime,
    name: str,
    *,
    run: str = "",
    followed_submit_no: int | None = None,
) -> str:
    """`{yyyy}/{mm}/{dd}/{job_id}/{run}/[followed-{n}/]{name}` (`core.layout`; the store adds
    its prefix)."""
    return safe_key(
        *key_parts(job_id, requested_at, name, run=run, followed_submit_no=followed_submit_no)
    )


class StorageActivities:
    def __init__(self, http: httpx.AsyncClient, store: ObjectStore, settings: Settings) -> None:
        self._http = http
        self._store = store
        self._settings = settings

    @activity.defn(name="copy_output")
    async def copy_output(self, data: CopyOutputInput) -> StoredObject:
        structlog.contextvars.bind_contextvars(job_id=data.job_id, kind=data.kind)
        host = urlsplit(data.url).hostname or ""
        route = self._settings.route(data.route)
        if not route.allows_output_host(host):
            raise ApplicationError(
                f"refusing to download {data.kind} from host {host!r}: not one of the route's "
                f"output hosts {list(route.output_hosts)}",
                type=et.OUTPUT_HOST_REFUSED,
                non_retryable=True,
            )
        name, content_type = _NAMES[data.kind]
        key = object_key(
            data.job_id,
            data.requested_at,
            name,
            run=data.run,
            followed_submit_no=data.followed_submit_no,
        )
        try:
            async with self._http.stream("GET", data.url) as response:
                if response.status_code in (401, 403, 404, 410):
                    raise ApplicationError(
                        f"{data.kind} URL answered HTTP {response.status_code}: expired or revoked",
                        type=et.OUTPUT_URL_EXPIRED,
                        non_retryable=True,
                    )
                response.raise_for_status()
                length = response.headers.get("Content-Length")
                expected = int(length) if length is not None else None
                stored = await self._store.put_stream(
                    key, self._chunks(response), content_type, expected
                )
        except httpx.HTTPError as exc:
            raise ApplicationError(
                f"download of {data.kind} failed: {type(exc).__name__}", type=et.OUTPUT_INCOMPLETE
            ) from None
        except IncompleteStream as exc:
            raise ApplicationError(
                f"{data.kind} truncated: got {exc.size} of {exc.expected} bytes",
                type=et.OUTPUT_INCOMPLETE,
            ) from None
        if stored.size == 0:
            raise ApplicationError(f"{data.kind} is empty", type=et.OUTPUT_INCOMPLETE)
        if data.provider_succeeded_at is not None:
            metrics.completion_to_storage(time.time() - data.provider_succeeded_at, data.kind)
        log.info("storage.copied", uri=stored.uri, size=stored.size, sha256=stored.sha256)
        return stored

    async def _chunks(self, response: httpx.Response) -> AsyncIterator[bytes]:
        """The body as httpx reads it (no re-chunking: the store batches), heartbeating the
        byte count about once a second while bytes arrive."""
        received, next_beat = 0, 0.0
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            now = time.monotonic()
            if now >= next_beat:
                activity.heartbeat(received)
                next_beat = now + HEARTBEAT_EVERY_SECONDS
            yield chunk

    @activity.defn(name="write_manifest")
    async def write_manifest(self, data: ManifestInput) -> StoredObject:
        key = object_key(
            data.job_id,
            data.requested_at,
            MANIFEST,
            run=data.run,
            followed_submit_no=data.followed_submit_no,
        )
        body = json.dumps(data.manifest, indent=2, sort_keys=True, default=str).encode()
        return await self._store.put_bytes(key, body, "application/json")
