"""The embedded stack, started the way `stack/embedded.py` starts it, on bench ports.

Same binaries and entry points (the `temporal` CLI beside the venv's python with the project's
search attributes, `python -m emulator`, `python -m webhook`, `python worker.py`) and the same
environment wiring as `stack.embedded.stack_env()`, but on freshly chosen loopback ports and a
temporary data directory, so a developer's `make up` on the default ports is never touched.
Children run from a copy of the source tree taken when the run starts, so edits made
in the working tree while a long run is going (the workflow sandbox re-imports workflow
modules from disk) cannot change the code under measurement half-way.
The emulator and the worker are restarted per scenario (emulator timing and padding are
start-up flags; callbacks on/off and storage are worker settings); Temporal and the webhook
receiver live for the whole run, so the floor baseline and the pipeline share one server.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.procs import Proc, cpu_seconds, http_ok, port_open
from seedance_pipeline.core.search_attributes import dev_server_flags
from seedance_pipeline.emulator.wiring import emulated_env
from seedance_pipeline.stack.binaries import sqlite_file_flags, temporal_cli
from seedance_pipeline.stack.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT_IGNORE = shutil.ignore_patterns(
    ".*", "__pycache__", "*.egg-info", "results", "docs", "tests", "deploy", "examples"
)
EMULATOR_KEY = "ek-emulator-local"
"""The key `stack.embedded` gives the emulator; the worker sends it as ARK_API_KEY."""
MODEL = "mini"
"""Every bench job uses the default model alias, as `starter.py generate` does."""


def iowait_seconds() -> float:
    """Machine-wide time CPUs sat idle waiting for I/O so far (/proc/stat), in seconds."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()
    return int(fields[5]) / os.sysconf("SC_CLK_TCK")


def cores_used(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, float]:
    """CPU seconds per part between two `BenchStack.cpu_seconds()` snapshots, divided by the
    wall time: how many of the machine's cores each part kept busy, their total, and how many
    cores sat waiting for I/O (`iowait`, machine-wide, not in the total)."""
    used = {k: round((after[k] - before[k]) / wall, 3) for k in after if k in before}
    used["total"] = round(sum(v for k, v in used.items() if k != "iowait"), 3)
    return used


@dataclass(frozen=True)
class EmulatorSpec:
    """Emulator start-up flags for one scenario (timing, padding, caps)."""

    queue_seconds: float
    run_seconds: float
    jitter: float = 0.0
    min_video_bytes: int = 0
    unlimited: bool = True
    """Throughput and latency scenarios run 600+ jobs a minute of one model, past the
    published limits (10 running, 600 RPM per model, 120 queued): they measure the pipeline,
    not the provider's capacity, so they need an emulator without limits. A capacity
    scenario sets False to get the published limits."""
    account: str = "enterprise"
    """The emulator's limits preset when limited: `enterprise` (10 / 600) or `individual`
    (3 / 180), 120 queued per account either way."""
    concurrency: int | None = None
    rpm: int | None = None
    max_queued: int | None = None
    """Overrides of the preset (None: the preset's own figure)."""

    @property
    def mean_latency(self) -> float:
        """Mean create-to-succeeded time (jitter is symmetric)."""
        return self.queue_seconds + self.run_seconds

    def argv(self) -> list[str]:
        return [
            "--queue-seconds",
            str(self.queue_seconds),
            "--run-seconds",
            str(self.run_seconds),
            "--jitter",
            str(self.jitter),
            "--min-video-bytes",
            str(self.min_video_bytes),
            *(["--unlimited"] if self.unlimited else ["--account", self.account]),
            *_flag("--concurrency", self.concurrency),
            *_flag("--rpm", self.rpm),
            *_flag("--max-queued", self.max_queued),
        ]


def _flag(name: str, value: int | None) -> list[str]:
    return [] if value is None else [name, str(value)]


@dataclass
class Ports:
    temporal: int = field(default_factory=free_port)
    emulator: int = field(default_factory=free_port)
    webhook: int = field(default_factory=free_port)
    metrics: int = field(default_factory=free_port)
    floor_metrics: int = field(default_factory=free_port)
    api: int = field(default_factory=free_port)


UNLIMITED_ACCOUNT = {
    "CONCURRENCY_PER_MODEL": "100000",
    "RPM_PER_MODEL": "1000000",
    "QUEUED_PER_ACCOUNT": "100000",
}


def _clean_base_env() -> dict[str, str]:
    """The caller's environment minus what would point children at other servers.

    EMULATOR_* variables are strict in the emulator (an unknown one is an error) and TEMPORAL_*
    ones could name another cluster or namespace, so neither is inherited; EMULATOR_MEDIA_DIR,
    a cache of generated videos that changes no answer, is (the test suite shares one).
    """
    return {
        k: v
        for k, v in os.environ.items()
        if k == "EMULATOR_MEDIA_DIR" or not k.startswith(("EMULATOR_", "TEMPORAL_"))
    }


@dataclass
class WorkerConfig:
    """What differs between bench workers: queues, callbacks, storage, expected latency."""

    task_queue: str
    submit_task_queue: str
    callbacks: bool = True
    storage_uri: str | None = None
    expected_latency_seconds: float | None = None
    extra_env: dict[str, str] = field(default_factory=dict)


class BenchStack:
    """Temporal + webhook for the whole run; emulator and worker restarted per scenario."""

    def __init__(self, data: Path, *, temporal_db: str = "memory") -> None:
        self.data = data
        self.temporal_db = temporal_db
        self.src = data / "src"
        self.ports = Ports()
        self.secret = secrets.token_urlsafe(32)
        self.logs = data / "logs"
        self.temporal: Proc | None = None
        self.webhook: Proc | None = None
        self.emulator: Proc | None = None
        self.workers: dict[str, Proc] = {}
        """Pipeline workers by name (the latency scenario runs two side by side)."""
        self.floor_worker: Proc | None = None
        self._metrics_ports: dict[str, int] = {"worker": self.ports.metrics}
        self.emulator_spec: EmulatorSpec | None = None
        self._client: Client | None = None
        self._generation = 0
        self.api_key = ""
        """The demo tenant's key (made with the environment, on first use)."""

    # ---- environment ----------------------------------------------------------------------

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.ports.temporal}"

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.emulator}"

    @property
    def outputs(self) -> Path:
        return self.data / "outputs"

    def env(self) -> dict[str, str]:
        """`stack.embedded.stack_env()` with bench ports and data dir (emulated routes)."""
        env = _clean_base_env()
        env["TEMPORAL_ADDRESS"] = self.temporal_address
        env["TEMPORAL_NAMESPACE"] = "default"
        env["WORKER_METRICS_PORT"] = str(self.ports.metrics)
        env["SEEDANCE_CALLBACK_SECRET"] = self.secret
        env["SEEDANCE_CALLBACKS__BASE_URL"] = f"http://127.0.0.1:{self.ports.webhook}"
        env["SEEDANCE_STORAGE__URI"] = str(self.outputs)
        env["SEEDANCE_LEDGER__URL"] = f"sqlite:///{self.data / 'ledger.sqlite3'}"
        # The naive baseline downloads from the emulator's own address, so outputs stay on
        # loopback here: loopback is added on top of the shipped output_hosts, never instead.
        env.update(
            emulated_env(f"{self.emulator_url}/api/v3", self.emulator_url, loopback_outputs=True)
        )
        for key_env in ("ARK_API_KEY", "VOLC_ARK_API_KEY"):
            env[key_env] = EMULATOR_KEY
        env["EMULATOR_API_KEYS"] = EMULATOR_KEY
        # Throughput and latency need a provider without the account's limits: the capacity
        # gate still runs on every job, with ceilings no burst of theirs reaches. The capacity
        # scenario sets real limits in its own worker config.
        for name, value in UNLIMITED_ACCOUNT.items():
            env[f"SEEDANCE_ACCOUNT_LIMITS__ENTERPRISE__{name}"] = value
        env["SEEDANCE_PROVIDER"] = "emulator"
        env["PYTHONUNBUFFERED"] = "1"
        env["API_PORT"] = str(self.ports.api)
        hashes, secret = self._demo_tenant()
        env["SEEDANCE_API__TENANTS__DEMO__KEY_HASHES_FILE"] = str(hashes)
        env["SEEDANCE_API__TENANTS__DEMO__WEBHOOK_SECRET_FILE"] = str(secret)
        env["SEEDANCE_API__ALLOW_PRIVATE_WEBHOOK_HOSTS"] = "true"
        return env

    def _demo_tenant(self) -> tuple[Path, Path]:
        """The `demo` tenant `stack.embedded` makes, in the bench's data directory."""
        from seedance_pipeline.api.keys import hash_key, new_key
        from seedance_pipeline.core.standard_webhooks import new_secret

        folder = self.data / "api"
        hashes, secret = folder / "demo.keys", folder / "demo.whsec"
        if not hashes.exists():
            folder.mkdir(parents=True, exist_ok=True)
            self.api_key = new_key()
            hashes.write_text(hash_key(self.api_key) + "\n")
            secret.write_text(new_secret() + "\n")
        return hashes, secret

    def worker_env(self, config: WorkerConfig) -> dict[str, str]:
        env = self.env()
        env["SEEDANCE_TEMPORAL__TASK_QUEUE"] = config.task_queue
        env["SEEDANCE_TEMPORAL__SUBMIT_TASK_QUEUE"] = config.submit_task_queue
        if not config.callbacks:
            env["SEEDANCE_CALLBACKS__BASE_URL"] = ""
        if config.storage_uri is not None:
            env["SEEDANCE_STORAGE__URI"] = config.storage_uri
        if config.expected_latency_seconds is not None:
            env[f"SEEDANCE_MODELS__{MODEL.upper()}__EXPECTED_LATENCY_SECONDS"] = str(
                config.expected_latency_seconds
            )
        env.update(config.extra_env)
        return env

    # ---- processes ------------------------------------------------------------------------

    def _proc(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        self._generation += 1
        log = self.logs / f"{self._generation:02d}-{name}.log"
        return Proc(name, argv, env, log, self.src).start()

    def start(self) -> None:
        """Snapshot the source, then the Temporal dev server (SQLite file, as `make up`) and
        the webhook receiver."""
        self.data.mkdir(parents=True, exist_ok=True)
        shutil.copytree(ROOT, self.src, ignore=SNAPSHOT_IGNORE)
        argv = [
            temporal_cli(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.ports.temporal),
            "--headless",
            "--log-level",
            "warn",
            *dev_server_flags(),
        ]
        if self.temporal_db == "file":
            argv += sqlite_file_flags(self.data / "temporal.sqlite")
        self.temporal = self._proc("temporal", argv, self.env())
        self.temporal.wait_ready(lambda: port_open(self.ports.temporal))
        webhook = [sys.executable, "-m", "seedance_pipeline.webhook", "--host", "127.0.0.1"]
        self.webhook = self._proc(
            "webhook", [*webhook, "--port", str(self.ports.webhook)], self.env()
        )
        self.webhook.wait_ready(lambda: http_ok(f"http://127.0.0.1:{self.ports.webhook}/healthz"))

    def start_emulator(self, spec: EmulatorSpec) -> None:
        """(Re)start the emulator on the same port with this scenario's flags."""
        if self.emulator is not None:
            self.emulator.stop()
        argv = [
            sys.executable,
            "-m",
            "seedance_pipeline.emulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.ports.emulator),
            "--data-dir",
            str(self.data / "emulator"),
            "--log-level",
            "warning",
            *spec.argv(),
        ]
        self.emulator = self._proc("emulator", argv, self.env())
        self.emulator.wait_ready(lambda: http_ok(f"{self.emulator_url}/_emulator/stats"))
        self.emulator_spec = spec

    @property
    def worker(self) -> Proc | None:
        """The (first) pipeline worker."""
        return self.workers.get("worker")

    def start_worker(self, config: WorkerConfig, name: str = "worker") -> Proc:
        """(Re)start a `python worker.py` named `name` with this scenario's settings.

        Ready = its `worker.started` log line, written once both its workers poll their queues.
        """
        self.stop_worker(name)
        env = self.worker_env(config)
        port = self._metrics_ports.setdefault(name, free_port())
        env["WORKER_METRICS_PORT"] = str(port)
        worker = self._proc(name, [sys.executable, "worker.py"], env)
        worker.wait_ready(lambda: worker.log_contains("worker.started"))
        self.workers[name] = worker
        return worker

    def worker_metrics_port(self, name: str = "worker") -> int:
        """Where the worker named `name` serves its Prometheus metrics."""
        return self._metrics_ports[name]

    def stop_worker(self, name: str | None = None) -> None:
        """Stop one pipeline worker, or all of them."""
        for key in [name] if name is not None else list(self.workers):
            proc = self.workers.pop(key, None)
            if proc is not None:
                proc.stop()

    def start_floor_worker(self, task_queue: str) -> Proc:
        """The floor baseline's worker, a separate process like the real one."""
        self.stop_floor_worker()
        env = self.env()
        env["WORKER_METRICS_PORT"] = str(self.ports.floor_metrics)
        argv = [sys.executable, "-m", "bench.floor_worker", "--task-queue", task_queue]
        worker = self._proc("floor-worker", argv, env)
        worker.wait_ready(lambda: worker.log_contains("floor.started"))
        self.floor_worker = worker
        return worker

    def stop_floor_worker(self) -> None:
        if self.floor_worker is not None:
            self.floor_worker.stop()
            self.floor_worker = None

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by each running part (and this harness), for phase deltas."""
        parts = {
            "temporal": self.temporal,
            **self.workers,
            "floor_worker": self.floor_worker,
            "webhook": self.webhook,
            "emulator": self.emulator,
        }
        out = {name: cpu_seconds(p.pid) for name, p in parts.items() if p is not None and p.alive()}
        out["harness"] = time.process_time()
        out["iowait"] = iowait_seconds()
        return out

    async def client(self) -> Client:
        if self._client is None:
            self._client = await Client.connect(
                self.temporal_address, data_converter=pydantic_data_converter
            )
        return self._client

    def stop(self) -> None:
        """Stop everything, worker first (it drains), Temporal last."""
        self.stop_floor_worker()
        self.stop_worker()
        for proc in (self.webhook, self.emulator, self.temporal):
            if proc is not None:
                proc.stop()
        self.webhook = self.emulator = self.temporal = None
