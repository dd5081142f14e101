"""A missing worker, said in one line: which queue nobody polls, on which Temporal, and
where the worker's log is (the CLI adds the path from the stack's record)."""

from __future__ import annotations

from collections.abc import Iterable

from temporalio.client import Client

from seedance_pipeline.adapters.task_queues import PollerKind, live_pollers


def no_worker_message(queue: str, address: str, log: str | None) -> str:
    where = f"; the worker's log: {log}" if log else ""
    return (
        f"no worker polls {queue} on {address}{where}. Start one (`make up`, or "
        "`python worker.py` with the same SEEDANCE_TEMPORAL__TASK_QUEUE)"
    )


class NoWorker(RuntimeError):
    """No worker polls the queue a job needs; `with_log(log)` says which and where to look."""

    def __init__(self, queue: str, address: str) -> None:
        super().__init__(no_worker_message(queue, address, None))
        self.queue = queue
        self.address = address

    def with_log(self, log: str | None) -> str:
        return no_worker_message(self.queue, self.address, log)


async def require_worker(
    client: Client, queue: str, kinds: Iterable[PollerKind] = ("workflow",)
) -> None:
    """Raise NoWorker unless a worker polled `queue` recently."""
    if not await live_pollers(client, queue, kinds):
        raise NoWorker(queue, client.service_client.config.target_host)
