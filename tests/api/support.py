"""Helpers for the API tests: tenants with real keys and secrets, the API served by uvicorn
on a free loopback port, and a webhook receiver that answers what a test scripts."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from seedance_pipeline.api.app import create_app
from seedance_pipeline.api.keys import hash_key, new_key
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.core.standard_webhooks import new_secret
from tests.webhook.support import serve


@dataclass(frozen=True)
class TenantKeys:
    name: str
    key: str
    secret: str


def make_tenant(name: str, directory: Path, monkeypatch: Any) -> tuple[TenantKeys, dict[str, Any]]:
    """A tenant whose key hash lives in a file and whose secret in an environment variable,
    as a deployment would configure it; returns its keys and its `api.tenants` entry."""
    keys = TenantKeys(name=name, key=new_key(), secret=new_secret())
    hashes = directory / f"{name}.keys"
    hashes.write_text(f"# {name}'s keys\n{hash_key(keys.key)}\n")
    secret_env = f"TEST_WHSEC_{name.upper().replace('-', '_')}"
    monkeypatch.setenv(secret_env, keys.secret)
    return keys, {"key_hashes_file": str(hashes), "webhook_secret_env": secret_env}


@contextlib.contextmanager
def running_api(settings: Settings, temporal_target: str) -> Iterator[str]:
    """The API on a free port, its own thread and loop (like its own process)."""

    async def factory() -> Client:
        return await Client.connect(temporal_target, data_converter=pydantic_data_converter)

    with serve(create_app(settings, client_factory=factory)) as url:
        yield url


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """Answers each POST with the next scripted status (the last one repeats)."""

    statuses: list[int] = field(default_factory=lambda: [200])
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self._lock:
                self.received.append(Received(dict(request.headers), body))
                index = min(len(self.received) - 1, len(self.statuses) - 1)
                status = self.statuses[index]
            return Response(status_code=status)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                await asyncio.sleep(0.05)
        return list(self.received)


@contextlib.contextmanager
def webhook_receiver(*statuses: int) -> Iterator[tuple[WebhookReceiver, str]]:
    receiver = WebhookReceiver(statuses=list(statuses) or [200])
    with serve(receiver.app()) as url:
        yield receiver, f"{url}/hook"
