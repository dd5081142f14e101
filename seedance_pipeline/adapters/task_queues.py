"""Who polls a task queue, from Temporal's own task-queue description.

A worker that polls is the only proof that work on a queue will move: a running Temporal and
a started worker process prove nothing (a worker that died at start looks the same from
outside). `make up` waits for the worker's pollers, the worker reports the queues it is
listed on, and the CLI asks before it waits on a job.

The server keeps a poller in the description for a few minutes after its worker is gone, so
"live" means seen recently: an idle worker renews its long poll about every minute.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from temporalio.api.enums.v1 import DescribeTaskQueueMode, TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

PollerKind = Literal["workflow", "activity"]
LIVE_WITHIN = timedelta(seconds=90)
"""A live worker's poll is at most one long-poll interval (about 60 s) old."""
_TYPES: dict[PollerKind, TaskQueueType.ValueType] = {
    "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
}


@dataclass(frozen=True)
class Poller:
    queue: str
    kind: PollerKind
    identity: str
    last_access: datetime | None

    def live(self, now: datetime, within: timedelta = LIVE_WITHIN) -> bool:
        return self.last_access is not None and now - self.last_access <= within


async def pollers(client: Client, queue: str, kind: PollerKind) -> list[Poller]:
    """Pollers over every partition of the queue (the enhanced description: the legacy one
    shows only the root partition, which misses a worker whose polls landed elsewhere)."""
    try:
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                api_mode=DescribeTaskQueueMode.DESCRIBE_TASK_QUEUE_MODE_ENHANCED,
                report_pollers=True,
                task_queue_types=[_TYPES[kind]],
            )
        )
        infos = [
            p
            for version in described.versions_info.values()
            for types in version.types_info.values()
            for p in types.pollers
        ]
    except RPCError as exc:
        if exc.status not in (RPCStatusCode.UNIMPLEMENTED, RPCStatusCode.INVALID_ARGUMENT):
            raise
        legacy = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                task_queue_type=_TYPES[kind],
            )
        )
        infos = list(legacy.pollers)
    found: list[Poller] = []
    for p in infos:
        seen = p.last_access_time.ToDatetime(tzinfo=UTC) if p.HasField("last_access_time") else None
        found.append(Poller(queue, kind, p.identity, seen))
    return found


async def live_pollers(
    client: Client, queue: str, kinds: Iterable[PollerKind] = ("workflow", "activity")
) -> list[Poller]:
    now = datetime.now(UTC)
    found: list[Poller] = []
    for kind in kinds:
        found += [p for p in await pollers(client, queue, kind) if p.live(now)]
    return found
