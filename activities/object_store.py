"""Object storage backends: a local directory (`file://`) and any S3 endpoint (boto3).

Both take a stream of chunks and return URI, size and sha256, so bytes never travel through
workflow history and memory stays bounded by one part. Writes are atomic per key (temp file +
rename; S3 multipart complete), and keys are deterministic, so a retried copy overwrites itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from core.models import StoredObject

S3_PART_BYTES = 8 * 1024 * 1024


class UnsafeKey(ValueError):
    """An object key that would escape the configured prefix."""


def safe_key(*parts: str) -> str:
    """Join key parts, refusing anything that could climb out of the prefix."""
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\\" in part or "\x00" in part:
            raise UnsafeKey(f"unsafe key part {part!r}")
    return "/".join(parts)


class ObjectStore(Protocol):
    def uri(self, key: str) -> str: ...

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str
    ) -> StoredObject: ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject: ...

    async def get_bytes(self, key: str) -> bytes: ...


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise UnsafeKey(f"key {key!r} escapes {self.root}")
        return path

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str
    ) -> StoredObject:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        digest, size = hashlib.sha256(), 0
        with tmp.open("wb") as out:
            async for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        tmp.replace(path)
        return StoredObject(
            uri=path.as_uri(), size=size, sha256=digest.hexdigest(), content_type=content_type
        )

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        return await self.put_stream(key, _one(data), content_type)

    async def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()


class S3Store:
    """S3 (MinIO, R2, GCS interop, moto). boto3 is blocking: calls run in threads."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self._s3 = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str
    ) -> StoredObject:
        full = self._key(key)
        digest, size = hashlib.sha256(), 0
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
                if len(buffer) >= S3_PART_BYTES:
                    if upload_id is None:
                        created = await asyncio.to_thread(
                            self._s3.create_multipart_upload,
                            Bucket=self.bucket,
                            Key=full,
                            ContentType=content_type,
                        )
                        upload_id = created["UploadId"]
                    parts.append(
                        await self._upload_part(full, upload_id, len(parts) + 1, bytes(buffer))
                    )
                    buffer.clear()
            if upload_id is None:
                await asyncio.to_thread(
                    self._s3.put_object,
                    Bucket=self.bucket,
                    Key=full,
                    Body=bytes(buffer),
                    ContentType=content_type,
                )
            else:
                if buffer:
                    parts.append(
                        await self._upload_part(full, upload_id, len(parts) + 1, bytes(buffer))
                    )
                await asyncio.to_thread(
                    self._s3.complete_multipart_upload,
                    Bucket=self.bucket,
                    Key=full,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            if upload_id is not None:
                await asyncio.to_thread(
                    self._s3.abort_multipart_upload,
                    Bucket=self.bucket,
                    Key=full,
                    UploadId=upload_id,
                )
            raise
        return StoredObject(
            uri=self.uri(key), size=size, sha256=digest.hexdigest(), content_type=content_type
        )

    async def _upload_part(
        self, key: str, upload_id: str, number: int, data: bytes
    ) -> dict[str, Any]:
        result = await asyncio.to_thread(
            self._s3.upload_part,
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
        )
        return {"ETag": result["ETag"], "PartNumber": number}

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        return await self.put_stream(key, _one(data), content_type)

    async def get_bytes(self, key: str) -> bytes:
        result = await asyncio.to_thread(
            self._s3.get_object, Bucket=self.bucket, Key=self._key(key)
        )
        body: bytes = result["Body"].read()
        return body


def open_store(uri: str, *, s3_endpoint_url: str = "", s3_region: str = "us-east-1") -> ObjectStore:
    """`s3://bucket/prefix`, `file:///dir` or a plain directory path."""
    parts = urlsplit(uri)
    if parts.scheme == "s3":
        import boto3  # local: only S3 deployments pay for the import

        client = boto3.client("s3", endpoint_url=s3_endpoint_url or None, region_name=s3_region)
        return S3Store(client, parts.netloc, parts.path)
    if parts.scheme == "file":
        return FileStore(Path(parts.path))
    if parts.scheme:
        raise ValueError(f"storage URI scheme {parts.scheme!r} not supported (file://, s3://)")
    return FileStore(Path(uri))
