"""Storage fixtures: moto's S3 server in its own process on loopback.

Its own process (as in the bench) so that the memory a test measures with tracemalloc is the
copy's, not the parts moto keeps, and so that moto's CPU does not share the test's GIL.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from seedance_pipeline.stack.ports import free_port

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.moto_server", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",  # moto accepts any credentials
    )


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"store-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name
