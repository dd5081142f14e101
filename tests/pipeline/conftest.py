"""End-to-end fixtures: the real emulator, webhook receiver and workers on loopback.

`pipeline_factory(...)` builds settings pointing every route at the emulator, starts the job
and submit workers on fresh task queues, and yields a `Pipeline` with helpers to run jobs and
read the emulator's task log. Secrets are set through the environment, as in production.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from seedance_pipeline.clients.jobs import job_result, job_status, start_job
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.models import GenerationRequest, JobRecord
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.emulator.testing import EmulatorHandle, running_emulator
from seedance_pipeline.emulator.wiring import resolve_hosts
from seedance_pipeline.webhook.app import create_app
from seedance_pipeline.worker import running_workers
from tests.conftest import shared_media_dir
from tests.webhook.support import serve

API_KEY = "ek-pipeline-test-key-0001"
CALLBACK_SECRET = "pipeline-callback-secret-0123456789"


EMULATOR_SETTINGS: dict[str, Any] = {
    "api_keys": [API_KEY],
    "queue_seconds": 0.1,
    "run_seconds": 0.3,
    "callback_timeout": 2.0,
    "callback_retry_interval": 0.2,
    "tos_urls": True,  # outputs on the provider's TOS host names (pipeline_overrides maps them)
}
"""The pipeline tests' emulator; a test that needs its own starts one with these plus its
overrides."""


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    with running_emulator(
        data_dir=tmp_path_factory.mktemp("emulator"),
        media_dir=shared_media_dir(),
        **EMULATOR_SETTINGS,
    ) as handle:
        yield handle


@pytest.fixture(scope="session")
def webhook_url(dev_env: WorkflowEnvironment) -> Iterator[str]:
    target = dev_env.client.service_client.config.target_host

    async def factory() -> Client:
        return await Client.connect(target, data_converter=pydantic_data_converter)

    app = create_app(client_factory=factory, secret=CALLBACK_SECRET.encode())
    with serve(app) as url:
        yield url


@dataclass
class Pipeline:
    client: Client
    settings: Settings
    emulator: EmulatorHandle
    storage: Path

    async def start(self, request: GenerationRequest, job_id: str | None = None) -> str:
        started = await start_job(
            self.client, self.settings, request, job_id=job_id or f"job-{uuid.uuid4().hex[:16]}"
        )
        return started.job_id

    async def run(self, request: GenerationRequest, job_id: str | None = None) -> JobRecord:
        """Start a job and wait for its final record (the workflow result)."""
        job = await self.start(request, job_id)
        return await self.result(job)

    async def result(self, job_id: str) -> JobRecord:
        return await job_result(self.client.get_workflow_handle(job_id))

    async def status(self, job_id: str) -> JobRecord:
        return await job_status(self.client, job_id)

    async def tasks_for(self, record: JobRecord) -> list[dict[str, Any]]:
        """The emulator's tasks created for this job (matched by prompt, unique per test)."""
        tasks = await self.emulator.atasks()
        prompt = record.request.prompt if record.request else None
        return [t for t in tasks if _prompt(t) == prompt]

    async def create_calls(self) -> int:
        stats = await self.emulator.astats()
        return _count_op(stats, "create")


def _prompt(task: dict[str, Any]) -> str | None:
    body = task.get("request") or task.get("request_body") or {}
    for item in body.get("content", []):
        if item.get("type") == "text":
            return str(item.get("text"))
    return None


def _count_op(stats: dict[str, Any], op: str) -> int:
    requests = stats.get("requests", stats)
    value = requests.get(op, 0)
    if isinstance(value, dict):
        return sum(int(v) for v in value.values())
    return int(value)


def pipeline_overrides(
    emulator: EmulatorHandle,
    webhook_url: str,
    tmp: Path,
    *,
    callbacks: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    # The shipped output_hosts, unchanged: the download client connects the TOS host names
    # the emulator serves outputs under to the emulator (storage.resolve_hosts).
    routes = {name: {"base_url": emulator.api_base} for name in ("byteplus", "volcengine")}
    queue = f"jobs-{uuid.uuid4().hex[:8]}"
    fast = {
        "expected_latency_seconds": 0.4,
        "queue_deadline_seconds": 60,
        "execution_deadline_seconds": 120,
    }
    base: dict[str, Any] = {
        "routes": routes,
        "models": {"mini": dict(fast), "fast": dict(fast), "pro": dict(fast)},
        "storage": {"uri": str(tmp / "outputs"), "resolve_hosts": resolve_hosts(emulator)},
        "ledger": {"url": f"sqlite:///{tmp / 'ledger.sqlite3'}"},
        "callbacks": {"base_url": webhook_url if callbacks else ""},
        "temporal": {"task_queue": queue, "submit_task_queue": f"submit-{queue}"},
        "breaker": {"scope": queue},
        "capacity": {"scope": queue},
        "reconcile": {"every_minutes": 0},  # a test that wants the schedule turns it on
        "polling": {
            "min_interval_seconds": 0.2,
            "max_interval_seconds": 1.0,
            "first_poll_factor": 1.0,
            "callback_margin_factor": 3.0,
        },
        "retries": {
            "create_backoff_seconds": 0.1,
            "reconcile_grace_seconds": 2.0,
            "create_timeout_seconds": 10.0,
            "http_timeout_seconds": 5.0,
        },
    }
    return _merge(base, overrides)


def pipeline_settings(
    emulator: EmulatorHandle,
    webhook_url: str,
    tmp: Path,
    *,
    callbacks: bool = True,
    **overrides: Any,
) -> Settings:
    return load_settings(
        **pipeline_overrides(emulator, webhook_url, tmp, callbacks=callbacks, **overrides)
    )


def settings_env(overrides: dict[str, Any], prefix: str = "SEEDANCE_") -> dict[str, str]:
    """The same overrides as environment variables, for a worker run as a subprocess."""
    env: dict[str, str] = {}
    for key, value in overrides.items():
        name = f"{prefix}{key.upper()}"
        if isinstance(value, dict):
            env.update(settings_env(value, name + "__"))
        elif isinstance(value, list | tuple):
            env[name] = json.dumps(list(value))
        elif isinstance(value, bool):
            env[name] = "true" if value else "false"
        else:
            env[name] = str(value)
    return env


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        out[key] = (
            _merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


PipelineFactory = Callable[..., contextlib.AbstractAsyncContextManager[Pipeline]]


@pytest_asyncio.fixture
async def pipeline_factory(
    client: Client,
    emulator: EmulatorHandle,
    webhook_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[PipelineFactory]:
    monkeypatch.setenv("ARK_API_KEY", API_KEY)
    monkeypatch.setenv("VOLC_ARK_API_KEY", API_KEY)
    monkeypatch.setenv("SEEDANCE_CALLBACK_SECRET", CALLBACK_SECRET)
    await emulator.areset()

    @contextlib.asynccontextmanager
    async def make(
        *, callbacks: bool = True, workers: bool = True, **overrides: Any
    ) -> AsyncIterator[Pipeline]:
        """`workers=False`: the test runs its own workers (another client or runtime)."""
        settings = pipeline_settings(
            emulator, webhook_url, tmp_path, callbacks=callbacks, **overrides
        )
        pipeline = Pipeline(client, settings, emulator, tmp_path / "outputs")
        if not workers:
            yield pipeline
            return
        async with running_workers(client, settings):
            yield pipeline

    yield make


@pytest_asyncio.fixture
async def pipeline(pipeline_factory: PipelineFactory) -> AsyncIterator[Pipeline]:
    async with pipeline_factory() as p:
        yield p
