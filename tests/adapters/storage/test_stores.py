"""FileStore and S3Store (moto server on loopback) with the pipelined copy: the digest is the
sha256 of exactly the bytes stored, a stream that breaks or comes up short leaves no object
(no temp file; the multipart upload aborted), a failed part fails the copy, and memory stays
bounded by the batches and parts in flight, not by the object's size."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from seedance_pipeline.adapters.object_store import (
    S3_PART_BYTES,
    S3_PARTS_IN_FLIGHT,
    FileStore,
    IncompleteStream,
    S3Store,
)

MiB = 1024 * 1024


def _pattern(size: int) -> bytes:
    """Bytes that differ everywhere, so a reordered or repeated chunk changes the digest."""
    out = bytearray()
    n = 0
    while len(out) < size:
        out += hashlib.sha256(n.to_bytes(8, "big")).digest()
        n += 1
    return bytes(out[:size])


def _uneven(data: bytes) -> list[bytes]:
    """Chunks of odd sizes around httpx's 64 KiB reads, as a socket delivers them."""
    sizes = [65536, 1, 4095, 65536, 12345, 70000, 7]
    chunks, at, i = [], 0, 0
    while at < len(data):
        chunks.append(data[at : at + sizes[i % len(sizes)]])
        at += sizes[i % len(sizes)]
        i += 1
    return chunks


async def _stream(chunks: list[bytes], fail_after: int | None = None) -> AsyncIterator[bytes]:
    sent = 0
    for chunk in chunks:
        if fail_after is not None and sent >= fail_after:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete body")
        sent += len(chunk)
        yield chunk


async def _generated(total: int, chunk: int = 65536) -> AsyncIterator[bytes]:
    """A long stream made on the fly (never held whole), every chunk a fresh allocation."""
    base = _pattern(chunk)
    for n in range(total // chunk):
        yield n.to_bytes(8, "big") + base[8:]


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# --- file store -------------------------------------------------------------------------


async def test_file_store_digest_and_bytes_are_exactly_the_stream(tmp_path: Path) -> None:
    data = _pattern(5 * MiB + 321)
    store = FileStore(tmp_path)
    stored = await store.put_stream("a/b/video.mp4", _stream(_uneven(data)), "video/mp4")
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size == len(data)
    assert (tmp_path / "a/b/video.mp4").read_bytes() == data
    assert _files(tmp_path) == [tmp_path / "a/b/video.mp4"], "a temp file was left behind"


async def test_file_store_empty_and_tiny_streams(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    empty = await store.put_stream("e", _stream([]), "video/mp4", expected_size=0)
    assert (empty.size, empty.sha256) == (0, hashlib.sha256(b"").hexdigest())
    tiny = await store.put_bytes("t", b"{}", "application/json")
    assert (tmp_path / "t").read_bytes() == b"{}" and tiny.sha256 == hashlib.sha256(
        b"{}"
    ).hexdigest()


async def test_file_store_broken_stream_leaves_nothing(tmp_path: Path) -> None:
    data = _pattern(6 * MiB)
    store = FileStore(tmp_path)
    with pytest.raises(httpx.RemoteProtocolError):
        await store.put_stream("v.mp4", _stream(_uneven(data), fail_after=3 * MiB), "video/mp4")
    assert _files(tmp_path) == []


async def test_file_store_short_stream_is_not_committed(tmp_path: Path) -> None:
    data = _pattern(3 * MiB)
    store = FileStore(tmp_path)
    (tmp_path / "v.mp4").write_bytes(b"previous copy")
    with pytest.raises(IncompleteStream) as info:
        await store.put_stream("v.mp4", _stream(_uneven(data)), "video/mp4", len(data) + 1)
    assert (info.value.size, info.value.expected) == (len(data), len(data) + 1)
    assert _files(tmp_path) == [tmp_path / "v.mp4"]
    assert (tmp_path / "v.mp4").read_bytes() == b"previous copy", "the short copy replaced it"


async def test_file_store_memory_stays_bounded_by_the_batches_in_flight(tmp_path: Path) -> None:
    total = 64 * MiB
    store = FileStore(tmp_path)
    tracemalloc.start()
    try:
        stored = await store.put_stream("big", _generated(total), "video/mp4", total)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored.size == total
    assert peak < 12 * MiB, f"peak {peak / MiB:.1f} MiB for a {total // MiB} MiB copy"


# --- S3 (moto server) ---------------------------------------------------------------------


def _uploads(s3: Any, bucket: str) -> list[Any]:
    return list(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def _objects(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


async def test_s3_multipart_digest_and_bytes_are_exactly_the_stream(s3: Any, bucket: str) -> None:
    data = _pattern(2 * S3_PART_BYTES + 3 * MiB + 17)  # three parts, the last one short
    store = S3Store(s3, bucket, "pre")
    stored = await store.put_stream("k/video.mp4", _stream(_uneven(data)), "video/mp4", len(data))
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size == len(data) and stored.uri == f"s3://{bucket}/pre/k/video.mp4"
    got = s3.get_object(Bucket=bucket, Key="pre/k/video.mp4")
    assert got["Body"].read() == data
    assert got["ContentType"] == "video/mp4"
    assert got["ETag"].strip('"').endswith("-3"), "not a three-part multipart upload"
    assert _uploads(s3, bucket) == []


async def test_s3_small_and_empty_objects_are_one_put(s3: Any, bucket: str) -> None:
    store = S3Store(s3, bucket)
    data = _pattern(MiB + 5)
    stored = await store.put_stream("small", _stream(_uneven(data)), "video/mp4", len(data))
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    head = s3.head_object(Bucket=bucket, Key="small")
    assert "-" not in head["ETag"] and head["ContentLength"] == len(data)
    empty = await store.put_stream("empty", _stream([]), "video/mp4", 0)
    assert empty.size == 0 and s3.head_object(Bucket=bucket, Key="empty")["ContentLength"] == 0
    assert await store.get_bytes("small") == data


async def test_s3_broken_stream_aborts_the_upload(s3: Any, bucket: str) -> None:
    data = _pattern(3 * S3_PART_BYTES)
    store = S3Store(s3, bucket)
    broken = _stream(_uneven(data), fail_after=2 * S3_PART_BYTES + MiB)
    with pytest.raises(httpx.RemoteProtocolError):
        await store.put_stream("v.mp4", broken, "video/mp4", len(data))
    assert _objects(s3, bucket) == []
    assert _uploads(s3, bucket) == [], "the multipart upload was left open"


async def test_s3_short_stream_is_not_completed(s3: Any, bucket: str) -> None:
    data = _pattern(S3_PART_BYTES + MiB)
    store = S3Store(s3, bucket)
    with pytest.raises(IncompleteStream):
        await store.put_stream("v.mp4", _stream(_uneven(data)), "video/mp4", len(data) + 10)
    with pytest.raises(IncompleteStream):  # a short single-PUT object is not written either
        await store.put_stream("w.mp4", _stream([b"abc"]), "video/mp4", 4)
    assert _objects(s3, bucket) == []
    assert _uploads(s3, bucket) == []


class _PartRefused(Exception):
    pass


async def test_s3_a_failed_part_fails_the_copy_and_aborts(s3: Any, bucket: str) -> None:
    def refuse_part_two(params: dict[str, Any], **_: Any) -> None:
        if params.get("PartNumber") == 2:
            raise _PartRefused("part 2 refused")

    s3.meta.events.register("provide-client-params.s3.UploadPart", refuse_part_two)
    try:
        data = _pattern(4 * S3_PART_BYTES)
        store = S3Store(s3, bucket)
        with pytest.raises(_PartRefused):
            await store.put_stream("v.mp4", _stream(_uneven(data)), "video/mp4", len(data))
    finally:
        s3.meta.events.unregister("provide-client-params.s3.UploadPart", refuse_part_two)
    assert _objects(s3, bucket) == []
    assert _uploads(s3, bucket) == []


async def test_s3_memory_stays_bounded_by_the_parts_in_flight(s3: Any, bucket: str) -> None:
    total = 12 * S3_PART_BYTES
    store = S3Store(s3, bucket)
    tracemalloc.start()
    try:
        stored = await store.put_stream("big", _generated(total), "video/mp4", total)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored.size == total
    # Parts uploading, the next one as chunks and as the joined part, one part's worth of
    # botocore's request handling (measured: 32 MiB with one part in flight), plus slack. An
    # unbounded copy would hold the whole 96 MiB.
    bound = (S3_PARTS_IN_FLIGHT + 3) * S3_PART_BYTES + 4 * MiB
    assert peak < bound, f"peak {peak / MiB:.1f} MiB for a {total // MiB} MiB copy"


async def test_s3_uploads_left_by_a_killed_copy_are_aborted_by_the_next(
    s3: Any, bucket: str
) -> None:
    """A worker SIGKILLed mid-copy runs no abort: its upload stays open until the retry of the
    same key has committed the object (other keys' uploads are left alone)."""
    dead = [
        s3.create_multipart_upload(Bucket=bucket, Key="pre/k/video.mp4")["UploadId"]
        for _ in range(2)
    ]
    s3.upload_part(
        Bucket=bucket, Key="pre/k/video.mp4", UploadId=dead[0], PartNumber=1, Body=b"x" * MiB
    )
    other = s3.create_multipart_upload(Bucket=bucket, Key="pre/k/video.mp4.other")["UploadId"]
    store = S3Store(s3, bucket, "pre")
    data = _pattern(S3_PART_BYTES + MiB)
    await store.put_stream("k/video.mp4", _stream(_uneven(data)), "video/mp4", len(data))
    assert s3.get_object(Bucket=bucket, Key="pre/k/video.mp4")["Body"].read() == data
    assert [u["UploadId"] for u in _uploads(s3, bucket)] == [other]
    small = await store.put_stream("k/video.mp4.other", _stream([b"abc"]), "video/mp4", 3)
    assert small.size == 3 and _uploads(s3, bucket) == []
