"""Fixtures for the webhook tests: a worker for the recording workflow and a served receiver."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from seedance_pipeline.clients.temporal_client import connect
from seedance_pipeline.webhook.app import create_app
from tests.webhook.support import SECRET, CallbackRecorder, serve


@pytest.fixture(scope="session")
def temporal_target(client: Client) -> str:
    return client.service_client.config.target_host


@pytest_asyncio.fixture(scope="session")
async def task_queue(client: Client) -> AsyncIterator[str]:
    """A worker for CallbackRecorder on its own queue, for the whole session."""
    queue = f"webhook-tests-{uuid.uuid4().hex}"
    async with Worker(client, task_queue=queue, workflows=[CallbackRecorder]):
        yield queue


@pytest.fixture(scope="session")
def webhook_url(temporal_target: str) -> Iterator[str]:
    """The receiver, served by uvicorn, connecting lazily with the production factory."""
    app = create_app(
        client_factory=functools.partial(connect, target_host=temporal_target), secret=SECRET
    )
    with serve(app) as url:
        yield url


@pytest_asyncio.fixture(scope="session")
async def http(webhook_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=webhook_url, timeout=10) as http_client:
        yield http_client
