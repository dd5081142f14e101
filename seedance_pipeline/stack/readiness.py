"""When a part of the embedded stack is ready, and what to say when it died instead.

Ready for the worker means Temporal lists *this* worker process (its pid is the start of the
SDK's default identity, `pid@host`) among the pollers of every queue it serves: a process
that is alive and serves metrics can still die a second later on a bad setting, and a poller
left over from a worker that died before is not this one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from seedance_pipeline.adapters.task_queues import PollerKind, pollers
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.settings import ConfigError, TemporalSettings

LOG_LINES_SHOWN = 8
LOG_LINE_CHARS = 400


@dataclass(frozen=True)
class QueueNeed:
    queue: str
    kinds: tuple[PollerKind, ...]


def worker_needs() -> list[QueueNeed]:
    """The queues the worker will poll with the settings it starts with (this environment).

    Settings that do not load give the defaults: the worker then exits on them, and `up`
    prints the worker's own error rather than ours.
    """
    try:
        temporal = load_settings().temporal
    except ConfigError:
        temporal = TemporalSettings()
    return [
        QueueNeed(temporal.task_queue, ("workflow", "activity")),
        QueueNeed(temporal.submit_task_queue, ("activity",)),
        QueueNeed(temporal.entity_queue, ("workflow",)),
    ]


async def _missing(address: str, pid: int, needs: list[QueueNeed]) -> list[str]:
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    prefix = f"{pid}@"
    missing: list[str] = []
    for need in needs:
        for kind in need.kinds:
            found = await pollers(client, need.queue, kind)
            if not any(p.identity.startswith(prefix) for p in found):
                missing.append(f"{need.queue} ({kind})")
    return missing


def missing_pollers(address: str, pid: int, needs: list[QueueNeed]) -> list[str]:
    """`queue (kind)` for each queue the worker `pid` does not poll yet; [] when ready."""
    try:
        return asyncio.run(_missing(address, pid, needs))
    except RuntimeError as exc:  # Temporal not answering (yet): nothing is polled
        return [f"Temporal at {address} ({exc})"]


async def _namespace_id(address: str, namespace: str) -> str:
    client = await Client.connect(address, namespace=namespace)
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )
    return str(described.namespace_info.id)


def namespace_id(address: str, namespace: str = "default") -> str:
    """The namespace's ID on the server at `address` (recorded so the CLI can tell this
    server from another one on the same port later)."""
    try:
        return asyncio.run(_namespace_id(address, namespace))
    except RuntimeError:
        return ""


def log_tail(path: Path, offset: int = 0) -> list[str]:
    """The last lines a part wrote since `offset` (its start): its own last words."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    shown = lines[-LOG_LINES_SHOWN:]
    return [
        line if len(line) <= LOG_LINE_CHARS else line[:LOG_LINE_CHARS] + " ..." for line in shown
    ]
