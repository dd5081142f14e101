"""Reading stored outputs back for the invariants, from a directory and from S3 (moto): every
video under a job's folders (both runs, a followed task), digests that are the bytes', and the
multipart uploads a killed copy left open."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from chaos.stored import Storage
from tests.adapters.storage.conftest import bucket, moto_endpoint, s3

__all__ = ["bucket", "moto_endpoint", "s3"]

KEYS = {
    "2026/11/24/job-a/run-1/video.mp4": b"first run",
    "2026/11/24/job-a/run-2/video.mp4": b"second run",
    "2026/11/24/job-a/run-1/followed-2/video.mp4": b"followed",
    "2026/11/24/job-a/run-1/manifest.json": b"{}",
    "2026/11/24/job-b/run-1/video.mp4": b"other job",
}


def _storage(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Storage:
    if kind == "file":
        for key, body in KEYS.items():
            (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / key).write_bytes(body)
        return Storage(root=tmp_path)
    client: Any = request.getfixturevalue("s3")
    name: str = request.getfixturevalue("bucket")
    for key, body in KEYS.items():
        client.put_object(Bucket=name, Key=f"videos/{key}", Body=body)
    return Storage(s3=client, bucket=name, prefix="videos")


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_every_video_of_a_job_is_found_with_its_digest(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    storage = _storage(kind, tmp_path, request)
    found = storage.videos_by_job({"job-a"})
    assert set(found) == {"job-a"}
    digests = sorted(f.sha256 for f in found["job-a"])
    want = [b"first run", b"second run", b"followed"]
    assert digests == sorted(hashlib.sha256(b).hexdigest() for b in want)
    one = found["job-a"][0]
    again = storage.read(one.uri)
    assert again is not None and (again.sha256, again.size, again.exists) == (
        one.sha256,
        one.size,
        True,
    )
    missing = storage.read(one.uri.replace("video.mp4", "nothing.mp4"))
    assert missing is not None and not missing.exists
    assert storage.read(None) is None


def test_open_uploads_in_the_bucket_are_listed(s3: Any, bucket: str) -> None:
    storage = Storage(s3=s3, bucket=bucket, prefix="videos")
    assert storage.open_uploads() == []
    s3.create_multipart_upload(Bucket=bucket, Key="videos/2026/11/24/job-a/run-1/video.mp4")
    (left,) = storage.open_uploads()
    assert left.startswith("videos/2026/11/24/job-a/run-1/video.mp4 (upload ")
    assert Storage(root=Path("/nonexistent")).open_uploads() == []
