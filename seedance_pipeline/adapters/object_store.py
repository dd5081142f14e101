"""Object storage backends: a local directory (`file://`) and any S3 endpoint (boto3).

Both take a stream of chunks and return URI, size and sha256, so bytes never travel through
workflow history and memory stays bounded by a few batches or parts. Writes are atomic per key
(temp file + rename; S3 multipart complete), and keys are deterministic, so a retried copy
overwrites itself. A stream shorter or longer than the size it promised is never committed:
the temp file is removed, the multipart upload aborted. A copy killed mid-upload (SIGKILL: no
abort runs) leaves its multipart upload open; the next copy of the same key aborts every other
open upload of that key once its own object is committed, so none outlives the retry.

The download runs on the event loop; hashing, file writes and part uploads run on threads of
`adapters.offload`, so they overlap it instead of following it (see that module).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlsplit

from seedance_pipeline.adapters.offload import Offload, batches, joined
from seedance_pipeline.core.models import StoredObject

FILE_BATCH_BYTES = 1024 * 1024
"""Bytes per hash-and-write job: large enough that a thread hop per batch costs nothing and
sha256/write run long without the GIL, small enough that the batches in flight stay tiny."""
FILE_BATCHES_IN_FLIGHT = 4
S3_PART_BYTES = 8 * 1024 * 1024
S3_PARTS_IN_FLIGHT = 3
"""Parts uploading at once. Three 8 MiB parts in flight plus the next one (its chunks and the
joined part) keep a copy near 40 MiB of buffers whatever its size, under the 64 MiB budget
(boto3's managed upload, 10 threads of 8 MiB, holds twice that)."""


class UnsafeKey(ValueError):
    """An object key that would escape the configured prefix."""


class IncompleteStream(ValueError):
    """The stream ended with a size other than the one promised (Content-Length)."""

    def __init__(self, key: str, size: int, expected: int) -> None:
        super().__init__(f"{key}: got {size} of {expected} bytes")
        self.size = size
        self.expected = expected


def safe_key(*parts: str) -> str:
    """Join key parts, refusing anything that could climb out of the prefix."""
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\\" in part or "\x00" in part:
            raise UnsafeKey(f"unsafe key part {part!r}")
    return "/".join(parts)


class ObjectStore(Protocol):
    def uri(self, key: str) -> str: ...

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str,
        expected_size: int | None = None,
    ) -> StoredObject: ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject: ...

    async def get_bytes(self, key: str) -> bytes: ...

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under `key` (reconcile: is a billed video stored?)."""
        ...


def _check_size(key: str, size: int, expected: int | None) -> None:
    """Called before committing: a short (or long) stream must not become an object."""
    if expected is not None and size != expected:
        raise IncompleteStream(key, size, expected)


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
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str,
        expected_size: int | None = None,
    ) -> StoredObject:
        """Download on the loop, hash and write on one thread (in order), rename when whole."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
        digest, size = hashlib.sha256(), 0
        try:
            with tmp.open("wb") as out:
                async with Offload(workers=1, depth=FILE_BATCHES_IN_FLIGHT, name="file") as disk:
                    async for batch in batches(chunks, FILE_BATCH_BYTES):
                        size += sum(len(chunk) for chunk in batch)
                        await disk.submit(_hash_and_write, digest, out, batch)
                    await disk.drain()
            _check_size(key, size, expected_size)
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return StoredObject(
            uri=path.as_uri(), size=size, sha256=digest.hexdigest(), content_type=content_type
        )

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        return await self.put_stream(key, _one(data), content_type)

    async def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    async def exists(self, key: str) -> bool:
        return self._path(key).is_file()


def _hash_and_write(digest: Any, out: BinaryIO, batch: list[bytes]) -> None:
    data = joined(batch)
    digest.update(data)
    out.write(data)


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
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str,
        expected_size: int | None = None,
    ) -> StoredObject:
        """Download on the loop; hash on one thread, in order; upload up to
        `S3_PARTS_IN_FLIGHT` parts at once; complete only when whole, else abort."""
        full = self._key(key)
        digest, size = hashlib.sha256(), 0
        upload_id: str | None = None
        parts: list[Future[dict[str, Any]]] = []
        single = b""
        try:
            async with (
                Offload(workers=1, depth=2, name="s3-hash") as hasher,
                Offload(workers=S3_PARTS_IN_FLIGHT, depth=S3_PARTS_IN_FLIGHT, name="s3") as up,
            ):
                async for batch in batches(chunks, S3_PART_BYTES):
                    data = joined(batch)
                    batch.clear()  # the chunks now live in `data` only (the bound counts parts)
                    size += len(data)
                    await hasher.submit(digest.update, data)
                    if upload_id is None and len(data) < S3_PART_BYTES:
                        single = data  # only the last batch is short: one PUT below
                        continue
                    if upload_id is None:
                        created = await asyncio.to_thread(
                            self._s3.create_multipart_upload,
                            Bucket=self.bucket,
                            Key=full,
                            ContentType=content_type,
                        )
                        upload_id = created["UploadId"]
                    number = len(parts) + 1
                    parts.append(await up.submit(self._upload_part, full, upload_id, number, data))
                await hasher.drain()
                await up.drain()
            _check_size(key, size, expected_size)
            if upload_id is None:
                await asyncio.to_thread(
                    self._s3.put_object,
                    Bucket=self.bucket,
                    Key=full,
                    Body=single,
                    ContentType=content_type,
                )
            else:
                await asyncio.to_thread(
                    self._s3.complete_multipart_upload,
                    Bucket=self.bucket,
                    Key=full,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": [part.result() for part in parts]},
                )
            await asyncio.to_thread(self._abort_stale, full)
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

    def _abort_stale(self, key: str) -> None:
        """Abort the open multipart uploads of `key` (left by attempts killed mid-upload); the
        key's object is committed by now, so none of them can be needed."""
        found = self._s3.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
        for upload in found.get("Uploads", []):
            if upload.get("Key") == key:
                self._s3.abort_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload["UploadId"]
                )

    def _upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        result = self._s3.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
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

    async def exists(self, key: str) -> bool:
        try:
            await asyncio.to_thread(self._s3.head_object, Bucket=self.bucket, Key=self._key(key))
        except self._s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True


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
