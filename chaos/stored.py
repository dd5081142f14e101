"""Reading back what the pipeline stored, from a directory or an S3 bucket: a URI's size and
sha256, every video a job has anywhere under its folders (its runs, its followed tasks), and
the bucket's multipart uploads still open. Evidence only; the pipeline never calls this."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from seedance_pipeline.core.layout import VIDEO

CHUNK = 1 << 20


@dataclass
class StoredFile:
    exists: bool
    size: int = 0
    sha256: str = ""
    uri: str = ""


@dataclass
class Storage:
    """A directory (`root`) or a bucket and prefix with a boto3 client."""

    root: Path | None = None
    s3: Any = None
    bucket: str = ""
    prefix: str = ""
    kind: str = field(init=False)

    def __post_init__(self) -> None:
        self.kind = "s3" if self.s3 is not None else "file"

    def read(self, uri: str | None) -> StoredFile | None:
        """Size and sha256 of the object at `uri` (None: no URI; `exists` False: not there)."""
        if not uri:
            return None
        parts = urlsplit(uri)
        if parts.scheme == "s3":
            return self._read_s3(parts.path.lstrip("/"), uri)
        path = Path(parts.path)
        if not path.is_file():
            return StoredFile(exists=False, uri=uri)
        with path.open("rb") as fh:
            return _digest(iter(lambda: fh.read(CHUNK), b""), uri)

    def _read_s3(self, key: str, uri: str) -> StoredFile:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except self.s3.exceptions.NoSuchKey:
            return StoredFile(exists=False, uri=uri)
        return _digest(iter(lambda: body.read(CHUNK), b""), uri)

    def videos_by_job(self, job_ids: set[str]) -> dict[str, list[StoredFile]]:
        """Every `video.mp4` under each job's folders (`{yyyy}/{mm}/{dd}/{job}/...`)."""
        found: dict[str, list[StoredFile]] = {}
        for job_id, uri in self._video_uris():
            if job_id in job_ids:
                stored = self.read(uri)
                if stored is not None:
                    found.setdefault(job_id, []).append(stored)
        return found

    def _video_uris(self) -> Iterable[tuple[str, str]]:
        """(job ID, URI) of every stored video."""
        if self.s3 is None:
            return _file_videos(self.root) if self.root is not None else []
        out: list[tuple[str, str]] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        prefix = f"{self.prefix}/" if self.prefix else ""
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix) :].split("/")
                if len(rel) >= 5 and rel[-1] == VIDEO:
                    out.append((rel[3], f"s3://{self.bucket}/{obj['Key']}"))
        return out

    def open_uploads(self) -> list[str]:
        """Multipart uploads neither completed nor aborted (`key` and when it began)."""
        if self.s3 is None:
            return []
        found = self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        return [f"{u['Key']} (upload {u['UploadId'][:12]}, begun {u['Initiated']})" for u in found]


def _file_videos(root: Path) -> list[tuple[str, str]]:
    if not root.exists():
        return []
    return [
        (path.relative_to(root).parts[3], path.as_uri())
        for path in root.rglob(VIDEO)
        if len(path.relative_to(root).parts) >= 5
    ]


def _digest(chunks: Iterable[bytes], uri: str) -> StoredFile:
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return StoredFile(exists=True, size=size, sha256=digest.hexdigest(), uri=uri)
