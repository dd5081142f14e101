"""Durable links: `/v1/jobs/{id}/video` and `/last-frame` never expire (unlike the provider's
24 h URLs). On S3 storage they redirect to a presigned URL that lives `api.presign_seconds`;
on the file store the object is streamed here, with HTTP range requests (players seek)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from seedance_pipeline.api.errors import ApiError
from seedance_pipeline.api.routes_jobs import ERRORS, NOT_FOUND, JobIdPath, owned
from seedance_pipeline.api.state import State, Tenant
from seedance_pipeline.core.settings import Settings

router = APIRouter(prefix="/v1", tags=["media"], responses={**ERRORS, **NOT_FOUND})
MEDIA: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the stored object (file store; `Range` requests answer 206)",
        "content": {"video/mp4": {}, "image/png": {}},
    },
    206: {"description": "the requested range of the stored object"},
    307: {"description": "S3 storage: a presigned URL to the object (short-lived)"},
    416: {"description": "the requested range is outside the object"},
}
CONTENT_TYPES = {"video": "video/mp4", "last_frame": "image/png"}


async def _serve(
    job_id: str, kind: Literal["video", "last_frame"], tenant: str, state: State
) -> Response:
    jobs = await state.jobs()
    desc = await owned(jobs, tenant, job_id)
    record = await jobs.record(desc)
    uri = record.video_uri if kind == "video" else record.last_frame_uri
    if not uri:
        what = "video" if kind == "video" else "last frame"
        hint = (
            " (ask for it with return_last_frame)"
            if kind == "last_frame" and not (record.request and record.request.return_last_frame)
            else ""
        )
        raise ApiError(
            404,
            "not_stored",
            f"job {job_id!r} has no stored {what} (state {record.state.value}){hint}",
        )
    parts = urlsplit(uri)
    if parts.scheme == "s3":
        url = await asyncio.to_thread(
            _presign, state.settings, parts.netloc, parts.path.lstrip("/")
        )
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    path = _inside_storage(state.settings, Path(unquote(parts.path)))
    filename = f"{job_id.replace(':', '_')}{'.mp4' if kind == 'video' else '.png'}"
    return FileResponse(
        path,
        media_type=CONTENT_TYPES[kind],
        filename=filename,
        content_disposition_type="inline",
        headers={"Cache-Control": "private, max-age=3600"},
    )


def _inside_storage(settings: Settings, path: Path) -> Path:
    """Only objects under the configured file store are served, whatever a record says."""
    uri = settings.storage.uri
    root = Path(unquote(urlsplit(uri).path) if uri.startswith("file:") else uri).resolve()
    resolved = path.resolve()
    if root not in resolved.parents or not resolved.is_file():
        raise ApiError(
            404, "not_stored", "the stored object is not in this API's storage (or was removed)"
        )
    return resolved


def _presign(settings: Settings, bucket: str, key: str) -> str:
    import boto3  # local: only S3 deployments pay for the import

    s3 = boto3.client(
        "s3",
        endpoint_url=settings.storage.s3_endpoint_url or None,
        region_name=settings.storage.s3_region,
    )
    url: str = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": key},
        ExpiresIn=settings.api.presign_seconds,
    )
    return url


@router.get(
    "/jobs/{job_id}/video",
    responses=MEDIA,
    response_class=Response,
    summary="The stored video (durable link)",
)
async def video(job_id: JobIdPath, tenant: Tenant, state: State, request: Request) -> Response:
    return await _serve(job_id, "video", tenant, state)


@router.get(
    "/jobs/{job_id}/last-frame",
    responses=MEDIA,
    response_class=Response,
    summary="The stored last frame (durable link)",
)
async def last_frame(job_id: JobIdPath, tenant: Tenant, state: State, request: Request) -> Response:
    return await _serve(job_id, "last_frame", tenant, state)
