"""The copy baseline: a plain streamed httpx download of the same URL to the same destination.

What an integrator writes without a pipeline: `httpx.stream` and a loop writing chunks to a
file, or boto3's `upload_fileobj` reading from the response for S3 (boto3's managed multipart
upload, default part size and threads). No hashing, no heartbeats, no length check. Runs as its
own process so its throughput and peak memory are measured like the worker's; prints one JSON
object with bytes, seconds, CPU seconds and resident memory before and at peak.

    python -m bench.plain_copy --url URL --dest /path/file.mp4
    python -m bench.plain_copy --url URL --dest s3://bucket/key --s3-endpoint http://127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.procs import peak_rss_bytes, reset_peak_rss, rss_bytes


class StreamReader:
    """A file-like `read(n)` over an iterator of byte chunks (what upload_fileobj wants)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()
        self._done = False

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                self._done = True
        if size < 0:
            size = len(self._buffer)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


def copy_to_file(url: str, path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with httpx.stream("GET", url, timeout=60) as response, path.open("wb") as out:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            out.write(chunk)
            size += len(chunk)
    return size


def copy_to_s3(url: str, s3: Any, bucket: str, key: str) -> int:
    with httpx.stream("GET", url, timeout=60) as response:
        response.raise_for_status()
        s3.upload_fileobj(StreamReader(response.iter_bytes()), bucket, key)
    head = s3.head_object(Bucket=bucket, Key=key)
    return int(head["ContentLength"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plain_copy", description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--dest", required=True, help="a file path or s3://bucket/key")
    parser.add_argument("--s3-endpoint", default="")
    args = parser.parse_args(argv)
    dest = urlsplit(args.dest)
    s3: Any = None
    if dest.scheme == "s3":
        import boto3

        s3 = boto3.client("s3", endpoint_url=args.s3_endpoint or None, region_name="us-east-1")
    pid = os.getpid()
    before = rss_bytes(pid)
    reset_peak_rss(pid)
    started, cpu_started = time.perf_counter(), time.process_time()
    if s3 is not None:
        size = copy_to_s3(args.url, s3, dest.netloc, dest.path.lstrip("/"))
    else:
        size = copy_to_file(args.url, Path(args.dest))
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    peak = peak_rss_bytes(pid)
    report = {"bytes": size, "seconds": seconds, "cpu_seconds": cpu}
    json.dump({**report, "rss_before": before, "rss_peak": peak}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
