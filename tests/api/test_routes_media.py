"""Durable links: `/v1/jobs/{id}/video` and `/last-frame`, streamed with ranges from the file
store and redirected to a presigned URL on S3 (moto's real S3 HTTP endpoint)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import httpx
import pytest

from seedance_pipeline.api_client import ApiError, JobCreate, SeedanceClient
from seedance_pipeline.core.models import Outcome
from tests.api.conftest import ApiEnv, ApiFactory


async def _finished(api: ApiEnv, last_frame: bool = True) -> Any:
    body = JobCreate(prompt=f"media {uuid.uuid4().hex[:8]}", return_last_frame=last_frame)
    job = (await api.client.create_job(body)).job
    done = await asyncio.wait_for(api.client.wait(job.job_id, interval=0.2), 60)
    assert done.outcome == Outcome.SUCCEEDED, done.error
    return done


async def test_file_store_streams_the_video_with_ranges(api: ApiEnv, tmp_path: Path) -> None:
    done = await _finished(api)
    stored = Path(unquote(urlsplit(done.video_uri).path)).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == done.video_sha256

    headers = {"Authorization": f"Bearer {api.acme.key}"}
    async with httpx.AsyncClient(headers=headers) as http:
        whole = await http.get(done.links.video)
        assert whole.status_code == 200
        assert whole.headers["content-type"] == "video/mp4"
        assert whole.headers["accept-ranges"] == "bytes"
        assert whole.content == stored
        part = await http.get(done.links.video, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-199/{len(stored)}"
        assert part.content == stored[100:200]
        frame = await http.get(done.links.last_frame)
        assert frame.status_code == 200 and frame.content.startswith(b"\x89PNG")

    # The sync client downloads by the same link.
    def download() -> Path:
        with SeedanceClient(api.url, api.acme.key) as sync:
            return sync.download_video(done.job_id, tmp_path / "fox.mp4")

    assert (await asyncio.to_thread(download)).read_bytes() == stored


async def test_no_stored_object_is_a_404_that_says_why(api: ApiEnv) -> None:
    done = await _finished(api, last_frame=False)
    with pytest.raises(ApiError) as missing:
        await api.client.fetch_video(done.job_id, kind="last-frame")
    assert missing.value.status == 404 and missing.value.code == "not_stored"
    assert "return_last_frame" in missing.value.message


async def test_s3_redirects_to_a_presigned_url(
    api_factory: ApiFactory, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")  # moto accepts any credentials
    bucket = f"api-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    storage = {"uri": f"s3://{bucket}/out", "s3_endpoint_url": moto_endpoint}
    async with api_factory(storage=storage, api={"presign_seconds": 120}) as api:
        done = await _finished(api)
        assert done.video_uri.startswith(f"s3://{bucket}/out/")
        headers = {"Authorization": f"Bearer {api.acme.key}"}
        async with httpx.AsyncClient(headers=headers) as http:
            redirect = await http.get(done.links.video)
        assert redirect.status_code == 307
        location = redirect.headers["location"]
        assert location.startswith(f"{moto_endpoint}/{bucket}/out/")
        assert "Signature" in location and ("Expires=" in location)
        async with httpx.AsyncClient() as plain:  # no API key goes to the storage
            fetched = await plain.get(location)
        assert fetched.status_code == 200
        assert hashlib.sha256(fetched.content).hexdigest() == done.video_sha256
        assert await api.client.fetch_video(done.job_id) == fetched.content
