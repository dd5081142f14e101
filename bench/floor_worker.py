"""`python -m bench.floor_worker --task-queue Q`: the floor baseline's worker process.

Built like `worker.py` (same SDK runtime with Prometheus metrics, same activity slot count) so
the floor and the pipeline differ only in what their workflow and activities do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from bench.floor_workflow import FloorWorkflow, floor_noop


async def serve(task_queue: str) -> int:
    port = int(os.environ.get("WORKER_METRICS_PORT", "9465"))
    runtime = Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}"))
    )
    client = await Client.connect(
        os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[FloorWorkflow],
        activities=[floor_noop],
        max_concurrent_activities=200,
    )
    async with worker:
        print("floor.started", task_queue, flush=True)
        await stop.wait()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_worker")
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    code = asyncio.run(serve(args.task_queue))
    sys.stdout.flush()
    os._exit(code)  # as worker.py: skip a teardown the SDK's native threads may abort


if __name__ == "__main__":
    main()
