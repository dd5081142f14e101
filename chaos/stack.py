"""The bench's embedded stack, plus the levers chaos pulls.

`ChaosStack` is `bench.stack.BenchStack` on a SQLite *file* (so a stopped dev server comes back
with every workflow), with a cuttable proxy on the provider's network path, and with methods to
SIGKILL the worker, stop and restart Temporal on the same file and port, and stop and restart
the webhook receiver on its port. Each restart reuses the child's own argv and environment.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from bench.procs import Proc, free_port, http_ok, port_open
from bench.stack import BenchStack, WorkerConfig
from chaos.proxy import CuttableProxy


class ChaosStack(BenchStack):
    def __init__(self, data: Path, *, fault_seed: int | None = None) -> None:
        super().__init__(data, temporal_db="file")
        self.proxy = CuttableProxy("127.0.0.1", self.ports.emulator, free_port())
        self.fault_seed = fault_seed
        self.worker_config: WorkerConfig | None = None

    @property
    def ledger_path(self) -> Path:
        return self.data / "ledger.sqlite3"

    @property
    def temporal_db_path(self) -> Path:
        return self.data / "temporal.sqlite"

    def env(self) -> dict[str, str]:
        """Provider calls and file downloads go through the proxy; admin calls do not."""
        env = super().env()
        base = f"{self.proxy.url}/api/v3"
        for route in ("BYTEPLUS", "VOLCENGINE"):
            env[f"SEEDANCE_ROUTES__{route}__BASE_URL"] = base
        env["EMULATOR_PUBLIC_URL"] = self.proxy.url
        if self.fault_seed is not None:
            env["EMULATOR_FAULT_SEED"] = str(self.fault_seed)
        return env

    def start(self) -> None:
        self.proxy.start()
        super().start()

    async def client(self) -> Client:
        """The harness's client; its retries while Temporal is down on purpose are expected,
        so the core SDK's per-retry warnings are not printed."""
        if self._client is None:
            quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
            runtime = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet)))
            self._client = await Client.connect(
                self.temporal_address, data_converter=pydantic_data_converter, runtime=runtime
            )
        return self._client

    def start_chaos_worker(self, config: WorkerConfig) -> Proc:
        self.worker_config = config
        return self.start_worker(config)

    # ---- process faults -------------------------------------------------------------------

    def kill_worker(self) -> int:
        """SIGKILL the worker's process group: no drain, no goodbye, activities left running.
        Returns the dead worker's pid (its Temporal identity is `<pid>@<host>`)."""
        proc = self.workers.pop("worker", None)
        assert proc is not None and proc.popen is not None, "no worker to kill"
        pid = proc.popen.pid
        os.killpg(pid, signal.SIGKILL)
        proc.popen.wait(10)
        proc.popen = None
        return pid

    def restart_worker(self) -> Proc:
        assert self.worker_config is not None, "start_chaos_worker first"
        return self.start_worker(self.worker_config)

    def stop_temporal(self) -> None:
        assert self.temporal is not None
        self.temporal.stop()

    def start_temporal_again(self) -> None:
        """Same binary, flags, SQLite file and port as the first start."""
        old = self.temporal
        assert old is not None
        self.temporal = self._proc("temporal", old.argv, old.env)
        self.temporal.wait_ready(lambda: port_open(self.ports.temporal), timeout=90)

    def stop_webhook(self) -> None:
        assert self.webhook is not None
        self.webhook.stop()

    def start_webhook_again(self) -> None:
        old = self.webhook
        assert old is not None
        self.webhook = self._proc("webhook", old.argv, old.env)
        url = f"http://127.0.0.1:{self.ports.webhook}/healthz"
        self.webhook.wait_ready(lambda: http_ok(url))

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self.proxy.stop()
