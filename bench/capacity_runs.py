"""One capacity burst, driven and recorded: the emulator with an account's limits, two worker
processes, two equal batches started together and one interactive job started in the middle.

The harness starts the jobs the way `starter.py batch` and `generate` do (`start_job` with a
batch, its priority and fairness key), samples the provider's counters, the model breakers and
(optionally) the gate once a second while the burst runs, and afterwards reads back every job's
record, the emulator's task log and its running/queued series. What the numbers mean is
`bench.capacity_figures`; what they are judged against is `bench.scenarios.capacity`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from temporalio.client import Client

from bench import jobs
from bench.capacity_figures import PROMPT_SEPARATOR, BreakerOpening, refusals
from bench.stack import BenchStack, EmulatorSpec, WorkerConfig, cores_used
from seedance_pipeline.clients.jobs import start_job
from seedance_pipeline.core.breaker import Breaker
from seedance_pipeline.core.capacity import Gate, gate_id
from seedance_pipeline.core.models import GenerationRequest, JobRecord
from seedance_pipeline.workflows.model_health import workflow_id as breaker_id

BATCH_PRIORITY = 4
"""A batch row's priority (`starter.py batch`)."""
INTERACTIVE_PRIORITY = 2
"""A single `generate`'s priority: before batch rows."""
ALIASES = ("mini", "fast", "pro")
"""Mini and its fallback chain: where a job that falls back goes."""
ROUTE = "byteplus"
SAMPLE_SECONDS = 1.0


@dataclass(frozen=True)
class Account:
    """The limits the worker is configured with (`[account_limits.<name>]` and the route's
    account class), which may differ from what the emulator enforces."""

    name: str
    concurrency: int
    rpm: int
    queued: int

    def scaled(self, factor: float) -> Account:
        return Account(
            self.name,
            max(1, round(self.concurrency * factor)),
            max(1, round(self.rpm * factor)),
            max(1, round(self.queued * factor)),
        )


ENTERPRISE = Account("enterprise", 10, 600, 120)
INDIVIDUAL = Account("individual", 3, 180, 120)


@dataclass(frozen=True)
class Burst:
    label: str
    provider: EmulatorSpec
    configured: Account
    gate: bool
    jobs: int
    """Batch rows in all, split into two equal batches started together."""
    interactive: bool = True
    workers: int = 2
    poll_gate: bool = False

    @property
    def enforced(self) -> Account:
        """The limits the emulator enforces (which may differ from the configured ones)."""
        return limits_of(self.provider)

    @property
    def concurrency(self) -> int:
        return self.enforced.concurrency


def limits_of(spec: EmulatorSpec) -> Account:
    """The limits the emulator enforces: its preset, with the spec's overrides."""
    preset = INDIVIDUAL if spec.account == "individual" else ENTERPRISE
    return Account(
        preset.name,
        spec.concurrency if spec.concurrency is not None else preset.concurrency,
        spec.rpm if spec.rpm is not None else preset.rpm,
        spec.max_queued if spec.max_queued is not None else preset.queued,
    )


@dataclass
class BurstRun:
    burst: Burst
    tag: str
    started: float
    """Wall-clock time of the first start call."""
    batches: dict[str, list[str]]
    interactive_id: str | None
    interactive_started: float | None
    records: dict[str, JobRecord]
    closes: dict[str, float]
    tasks: list[dict[str, Any]]
    capacity: dict[str, Any]
    """The emulator's capacity block with its series (`GET /_emulator/capacity`)."""
    creates: int
    """Creates the emulator answered (accepted and refused)."""
    created_samples: list[tuple[float, int]] = field(default_factory=list)
    refused_samples: list[tuple[float, int]] = field(default_factory=list)
    gate_samples: list[dict[str, Any]] = field(default_factory=list)
    openings: list[BreakerOpening] = field(default_factory=list)
    gate: Gate | None = None
    cores: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def all_ids(self) -> list[str]:
        ids = [j for batch in self.batches.values() for j in batch]
        return ids + ([self.interactive_id] if self.interactive_id else [])


def worker_env(burst: Burst) -> dict[str, str]:
    """The configured account, the gate on or off, and every model's expected latency set to
    the emulator's (fallback models run at the same speed there)."""
    acc = burst.configured
    prefix = f"SEEDANCE_ACCOUNT_LIMITS__{acc.name.upper()}__"
    env = {
        f"{prefix}CONCURRENCY_PER_MODEL": str(acc.concurrency),
        f"{prefix}RPM_PER_MODEL": str(acc.rpm),
        f"{prefix}QUEUED_PER_ACCOUNT": str(acc.queued),
        f"SEEDANCE_ROUTES__{ROUTE.upper()}__ACCOUNT": acc.name,
        "SEEDANCE_CAPACITY__ENABLED": "true" if burst.gate else "false",
    }
    for alias in ALIASES:
        key = f"SEEDANCE_MODELS__{alias.upper()}__EXPECTED_LATENCY_SECONDS"
        env[key] = str(burst.provider.mean_latency)
    return env


def request(job_id: str, index: int) -> GenerationRequest:
    """The burst's job: Mini, 480p, 4 s (the issue's volume job), its ID in the prompt."""
    return GenerationRequest(
        prompt=f"{job_id}{PROMPT_SEPARATOR}a red fox in snow, take {index}",
        model="mini",
        duration=4,
        resolution="480p",
    )


async def _emulator(stack: BenchStack, path: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.emulator_url, timeout=60) as http:
        resp = await http.get(path)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data


async def query_gate(client: Client, scope: str) -> Gate | None:
    """The route's gate state, or None when there is none (the gate is off)."""
    try:
        handle = client.get_workflow_handle(gate_id(ROUTE, scope))
        return await handle.query("state", result_type=Gate)
    except Exception:  # no gate (yet): the gate is off, or no job asked
        return None


async def _breaker(client: Client, alias: str, scope: str) -> Breaker | None:
    try:
        handle = client.get_workflow_handle(breaker_id(alias, scope))
        return await handle.query("state", result_type=Breaker)
    except Exception:  # not started: no job asked this model yet
        return None


async def _breakers(client: Client, scope: str, seen: dict[tuple[str, str], str | None]) -> None:
    for alias in ALIASES:
        b = await _breaker(client, alias, scope)
        if b is not None and b.opened_at is not None:
            seen.setdefault((alias, b.opened_at.isoformat()), b.last_error)


class Sampler:
    """Once a second until stopped: the provider's counters, the breakers, the gate."""

    def __init__(self, stack: BenchStack, client: Client, scope: str, poll_gate: bool) -> None:
        self.stack, self.client, self.scope, self.poll_gate = stack, client, scope, poll_gate
        self.created: list[tuple[float, int]] = []
        self.refused: list[tuple[float, int]] = []
        self.gate: list[dict[str, Any]] = []
        self.openings: dict[tuple[str, str], str | None] = {}
        self._task: asyncio.Task[None] | None = None

    async def _once(self) -> None:
        now = time.time()
        stats = await _emulator(self.stack, "/_emulator/stats")
        cap = stats.get("capacity") or {}
        created = sum(int(m.get("created", 0)) for m in (cap.get("models") or {}).values())
        self.created.append((now, created))
        self.refused.append((now, refusals(cap)))
        await _breakers(self.client, self.scope, self.openings)
        if self.poll_gate:
            g = await query_gate(self.client, self.scope)
            if g is not None:
                self.gate.append(
                    {
                        "t": now,
                        "rpm_learned": {m: s.rpm_learned for m, s in g.models.items()},
                        "queued_learned": g.queued_learned,
                        "holders": len(g.holders),
                        "waiting": g.waiting(),
                    }
                )

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                await self._once()
            await asyncio.sleep(SAMPLE_SECONDS)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(httpx.HTTPError):
            await self._once()  # the final counts


async def _start(
    client: Client, config: WorkerConfig, job_id: str, index: int, *, batch: str | None
) -> None:
    await start_job(
        client,
        jobs.settings_for(config),
        request(job_id, index),
        job_id=job_id,
        batch=batch,
        priority=BATCH_PRIORITY if batch else INTERACTIVE_PRIORITY,
    )


async def _start_batches(
    client: Client, config: WorkerConfig, batches: dict[str, list[str]], concurrency: int = 32
) -> None:
    """Both batches at once, their rows interleaved (a0, b0, a1, b1, ...) so neither is
    started first."""
    gate = asyncio.Semaphore(concurrency)
    rows = [
        (name, i, job_id)
        for i, pair in enumerate(zip(*batches.values(), strict=True))
        for name, job_id in zip(batches, pair, strict=True)
    ]

    async def one(name: str, i: int, job_id: str) -> None:
        async with gate:
            await _start(client, config, job_id, i, batch=name)

    await asyncio.gather(*(one(n, i, j) for n, i, j in rows))


async def run_burst(stack: BenchStack, burst: Burst, *, interactive_after: float) -> BurstRun:
    """Run one burst to its end; `interactive_after` s after the first start, one interactive
    job is started (if the burst has one)."""
    stack.start_emulator(burst.provider)
    tag = jobs.run_tag()
    config = jobs.worker_config(
        tag, expected_latency=burst.provider.mean_latency, extra_env=worker_env(burst)
    )
    for n in range(burst.workers):
        stack.start_worker(config, name="worker" if n == 0 else f"worker-{n + 1}")
    client = await stack.client()
    scope = f"bench-{tag}"
    # breakers and gate alike (`jobs.worker_config`)
    half = burst.jobs // 2
    batches = {
        f"cap-{tag}-{name}": [f"cap-{tag}-{name}-{i:04d}" for i in range(half)] for name in "ab"
    }
    interactive_id = f"cap-{tag}-interactive" if burst.interactive else None
    sampler = Sampler(stack, client, scope, burst.poll_gate)
    cpu0 = stack.cpu_seconds()
    t0 = time.monotonic()
    started = time.time()
    sampler.start()
    interactive_started: float | None = None

    async def interactive() -> None:
        nonlocal interactive_started
        if interactive_id is None:
            return
        await asyncio.sleep(interactive_after)
        interactive_started = time.time()
        await _start(client, config, interactive_id, 0, batch=None)

    await asyncio.gather(_start_batches(client, config, batches), interactive())
    ids = [j for b in batches.values() for j in b] + ([interactive_id] if interactive_id else [])
    ideal_bound = 600 + 4 * burst.jobs * burst.provider.mean_latency / burst.concurrency
    records = await jobs.results(client, ids, ideal_bound)
    closes = await jobs.close_times(client, ids)
    await sampler.stop()
    seconds = time.monotonic() - t0
    cores = cores_used(cpu0, stack.cpu_seconds(), seconds)
    gate = await query_gate(client, scope)  # a query needs a worker: before they stop
    stack.stop_worker()
    tasks = list((await jobs.emulator_tasks(stack.emulator_url)).values())
    capacity = await _emulator(stack, "/_emulator/capacity?since=0")
    stats = await _emulator(stack, "/_emulator/stats")
    return BurstRun(
        burst=burst,
        tag=tag,
        started=started,
        batches=batches,
        interactive_id=interactive_id,
        interactive_started=interactive_started,
        records={r.job_id: r for r in records},
        closes=dict(zip(ids, closes, strict=True)),
        tasks=tasks,
        capacity=capacity,
        creates=int(stats.get("request_totals", {}).get("create", 0)),
        created_samples=sampler.created,
        refused_samples=sampler.refused,
        gate_samples=sampler.gate,
        openings=[BreakerOpening(a, at, err) for (a, at), err in sampler.openings.items()],
        gate=gate,
        cores=cores,
        seconds=seconds,
    )
