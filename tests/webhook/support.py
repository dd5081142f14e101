"""Helpers for the webhook tests: a recording workflow, a real uvicorn server, task bodies."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from seedance_pipeline.core.models import ProviderCallback
from seedance_pipeline.stack.ports import free_port

SECRET = b"webhook-test-secret-0123456789"
OTHER_SECRET = b"some-other-secret-9876543210"


@workflow.defn(sandboxed=False)
class CallbackRecorder:
    """Stands in for GenerationWorkflow: keeps every `provider_callback` it is sent."""

    def __init__(self) -> None:
        self.callbacks: list[ProviderCallback] = []
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        return len(self.callbacks)

    @workflow.signal(name="provider_callback")
    def provider_callback(self, callback: ProviderCallback) -> None:
        self.callbacks.append(callback)

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def received(self) -> list[ProviderCallback]:
        return self.callbacks


def new_job_id(prefix: str = "job") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def task_body(status: str = "running", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "cgt-20261123-0001",
        "model": "seedance-1-0-pro-250528",
        "status": status,
        "created_at": 1_763_900_000,
        "updated_at": 1_763_900_010,
    }
    body.update(extra)
    return body


async def signal_events(handle: WorkflowHandle[Any, Any]) -> list[Any]:
    """Every WorkflowExecutionSignaled event's attributes, read from the server's history."""
    history = await handle.fetch_history()
    return [
        event.workflow_execution_signaled_event_attributes
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]


async def callbacks_in_history(client: Client, handle: WorkflowHandle[Any, Any]) -> list[Any]:
    """The `provider_callback` signals in history, decoded with the client's converter."""
    decoded = []
    for attrs in await signal_events(handle):
        if attrs.signal_name == "provider_callback":
            (callback,) = await client.data_converter.decode(
                attrs.input.payloads, [ProviderCallback]
            )
            decoded.append(callback)
    return decoded


async def wait_for_received(
    handle: WorkflowHandle[Any, Any], count: int, timeout: float = 10.0
) -> list[ProviderCallback]:
    async with asyncio.timeout(timeout):
        while True:
            received = await handle.query(CallbackRecorder.received)
            if len(received) >= count:
                return received
            await asyncio.sleep(0.05)


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Run `app` with uvicorn on a free loopback port in a thread; yield its base URL.

    A thread with its own event loop, like a real deployment's separate process: the app's
    Temporal client is created lazily in that loop by its factory, and uvicorn installs no
    signal handlers off the main thread.
    """
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"webhook-{port}", daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        if not thread.is_alive():
            raise RuntimeError("webhook server did not start")
        threading.Event().wait(0.01)
    else:
        raise RuntimeError("webhook server did not start within 5 s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
