"""The bench's embedded stack, plus the levers chaos pulls.

`ChaosStack` is `bench.stack.BenchStack` on a SQLite *file* (so a stopped dev server comes back
with every workflow), with a cuttable proxy on the provider's network path, and with methods to
SIGKILL a worker, stop and restart Temporal on the same file and port, stop and restart the
webhook receiver on its port, and stop and restart the Postgres ledger on its port. Each restart
reuses the child's own argv and environment. A scenario's `Deployment` says how many workers
run and whether they store on S3 (moto) and record in Postgres (`chaos.deployment.Services`).
"""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from bench.procs import Proc, http_ok, port_open
from bench.stack import BenchStack, WorkerConfig
from chaos.deployment import Deployment, Services
from chaos.proxy import CuttableProxy
from seedance_pipeline.stack.ports import free_port


class ChaosStack(BenchStack):
    def __init__(self, data: Path, *, fault_seed: int | None = None) -> None:
        super().__init__(data, temporal_db="file")
        self.proxy = CuttableProxy("127.0.0.1", self.ports.emulator, free_port())
        self.fault_seed = fault_seed
        self.worker_configs: dict[str, WorkerConfig] = {}
        self.services = Services(self.data, self.src, f"sqlite:///{self.ledger_path}")
        self.deployment = Deployment()

    @property
    def ledger_path(self) -> Path:
        return self.data / "ledger.sqlite3"

    @property
    def ledger_url(self) -> str:
        """The ledger of the deployment running now."""
        return self.services.ledger_url(self.deployment)

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

    def start_chaos_workers(self, config: WorkerConfig, deployment: Deployment) -> list[Proc]:
        """The deployment's workers, `worker`, `worker-2`, ... on the same queues."""
        self.deployment = deployment
        self.services.ensure(deployment)
        env = {**config.extra_env, **self.services.worker_env(deployment)}
        config = dataclasses.replace(
            config,
            callbacks=deployment.callbacks,
            storage_uri=self.services.storage_uri(deployment, self.outputs),
            extra_env=env,
        )
        names = ["worker", *(f"worker-{n}" for n in range(2, deployment.workers + 1))]
        self.worker_configs = dict.fromkeys(names, config)
        return [self.start_worker(config, name) for name in names]

    # ---- process faults -------------------------------------------------------------------

    def kill_worker(self, name: str = "worker") -> int:
        """SIGKILL a worker's process group: no drain, no goodbye, activities left running.
        Returns the dead worker's pid (its Temporal identity is `<pid>@<host>`)."""
        proc = self.workers.pop(name, None)
        assert proc is not None and proc.popen is not None, f"no worker {name} to kill"
        pid = proc.popen.pid
        os.killpg(pid, signal.SIGKILL)
        proc.popen.wait(10)
        proc.popen = None
        return pid

    def restart_worker(self, name: str = "worker") -> Proc:
        config = self.worker_configs.get(name)
        assert config is not None, "start_chaos_workers first"
        return self.start_worker(config, name)

    def stop_postgres(self) -> None:
        self.services.stop_postgres()

    def start_postgres_again(self) -> None:
        self.services.start_postgres_again()

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
            self.services.stop()
