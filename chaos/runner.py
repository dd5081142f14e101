"""Run one scenario: fresh emulator and workers (as its deployment says), paced job starts,
fault phases and disruptions alongside, wait for every job (and every task follower) to close
or its deadline to pass, rerun some jobs when the scenario says so, gather evidence, check the
invariants. Returns a `ScenarioResult`; an exception inside becomes its `error`, not a crash.
"""

from __future__ import annotations

import asyncio
import random
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.service import RPCError

from bench import jobs as bench_jobs
from chaos import disruptions, evidence, invariants, paid_work
from chaos.deployment import BUCKET, PREFIX
from chaos.report import InvariantResult, ScenarioResult
from chaos.scenarios import FaultPhase, Scenario, injections
from chaos.stack import ChaosStack
from chaos.stored import Storage
from seedance_pipeline.clients.jobs import start_job
from seedance_pipeline.core.capacity import gate_id
from seedance_pipeline.core.models import GenerationRequest, Outcome
from seedance_pipeline.core.settings import Settings

QUEUE_DEADLINE = 60
EXECUTION_DEADLINE = 60
DEADLINE_SECONDS = float(QUEUE_DEADLINE + EXECUTION_DEADLINE)
SLACK_SECONDS = 150.0
"""Per job on top of its deadline: create retries (429 Retry-After), reconcile rounds, copies,
and activities orphaned by a SIGKILL (they wait out their 60 s timeout before a retry)."""
START_RETRY_SECONDS = 120.0
GATE_LEASE_SECONDS = 20
GATE_AUDIT_SECONDS = 5
GATE_SETTLE_SECONDS = GATE_LEASE_SECONDS + 4 * GATE_AUDIT_SECONDS
"""After the jobs closed: how long the gate may take to free what a check must free."""


def worker_env() -> dict[str, str]:
    """Short timeouts and deadlines so a fault costs seconds, not the production minutes."""
    env = {
        "SEEDANCE_RETRIES__CREATE_TIMEOUT_SECONDS": "10",
        "SEEDANCE_RETRIES__RECONCILE_GRACE_SECONDS": "5",
        "SEEDANCE_RETRIES__HTTP_TIMEOUT_SECONDS": "10",
        # A slot whose holder went quiet is checked after a lease: seconds here, not minutes,
        # so the gate has settled when the invariants look at it.
        "SEEDANCE_CAPACITY__LEASE_SECONDS": str(GATE_LEASE_SECONDS),
        "SEEDANCE_CAPACITY__AUDIT_SECONDS": str(GATE_AUDIT_SECONDS),
    }
    for model in ("MINI", "FAST", "PRO"):
        env[f"SEEDANCE_MODELS__{model}__QUEUE_DEADLINE_SECONDS"] = str(QUEUE_DEADLINE)
        env[f"SEEDANCE_MODELS__{model}__EXECUTION_DEADLINE_SECONDS"] = str(EXECUTION_DEADLINE)
        env[f"SEEDANCE_MODELS__{model}__EXPECTED_LATENCY_SECONDS"] = "3"
    return env


def request_for(job_id: str, index: int, scenario: Scenario) -> GenerationRequest:
    last_frame = bool(scenario.last_frame_every) and index % scenario.last_frame_every == 0
    return GenerationRequest(
        prompt=f"{job_id}{evidence.PROMPT_SEPARATOR}a red fox in snow, take {index}",
        model="mini",
        duration=4,
        resolution="480p",
        return_last_frame=last_frame,
    )


async def _start_all(
    client: Client,
    settings: Settings,
    scenario: Scenario,
    ids: Sequence[str],
    t0: float,
    *,
    rerun: bool = False,
) -> None:
    """Paced starts; a start refused while Temporal is down is tried again (same job ID, so a
    start that did land is found, not doubled)."""

    async def one(i: int, job_id: str) -> None:
        await asyncio.sleep(max(0.0, t0 + i / scenario.start_rate - time.monotonic()))
        give_up = time.monotonic() + START_RETRY_SECONDS
        request = request_for(job_id, i, scenario)
        while True:
            try:
                await start_job(client, settings, request, job_id=job_id, rerun=rerun)
                return
            except RPCError:
                if time.monotonic() > give_up:
                    raise
                await asyncio.sleep(0.5)

    await asyncio.gather(*(one(i, j) for i, j in enumerate(ids)))


async def _install_faults(emulator_url: str, phases: Sequence[FaultPhase], t0: float) -> None:
    async with httpx.AsyncClient(base_url=emulator_url, timeout=30) as http:
        for phase in phases:
            await asyncio.sleep(max(0.0, t0 + phase.at - time.monotonic()))
            resp = await http.put("/_emulator/faults", json=list(phase.rules))
            resp.raise_for_status()


async def _wait_closed(client: Client, query: str, within: float, done: asyncio.Event) -> None:
    """Until no job of the scenario is running (visibility), or `within` seconds pass."""
    give_up = time.monotonic() + within
    while time.monotonic() < give_up:
        try:
            if (await client.count_workflows(query)).count == 0:
                done.set()
                return
        except RPCError:
            pass  # Temporal restarting: ask again
        await asyncio.sleep(1.0)


async def run(
    stack: ChaosStack, scenario: Scenario, known_jobs: set[str], seed: int
) -> ScenarioResult:
    result = ScenarioResult(key=scenario.key, title=scenario.title, kind=scenario.kind)
    result.jobs = scenario.jobs
    result.note = scenario.note
    started = time.monotonic()
    try:
        await _run(stack, scenario, known_jobs, seed, result)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    finally:
        await asyncio.to_thread(stack.stop_worker)
        result.seconds = round(time.monotonic() - started, 1)
    return result


async def _run(
    stack: ChaosStack,
    scenario: Scenario,
    known_jobs: set[str],
    seed: int,
    result: ScenarioResult,
) -> None:
    tag = f"{scenario.key}-{bench_jobs.run_tag()}"
    await asyncio.to_thread(stack.start_emulator, scenario.provider)
    config = bench_jobs.worker_config(
        tag,
        expected_latency=scenario.provider.mean_latency,
        extra_env=worker_env() | dict(scenario.worker_env),
    )
    gate = gate_id("byteplus", config.extra_env["SEEDANCE_CAPACITY__SCOPE"])
    await asyncio.to_thread(stack.start_chaos_workers, config, scenario.deployment)
    settings = bench_jobs.settings_for(config)
    client = await stack.client()
    ids = [f"chaos-{tag}-{i:04d}" for i in range(scenario.jobs)]
    known_jobs.update(ids)
    result.deployment = scenario.deployment.describe()
    result.injected = injections(scenario)
    query = (
        f"TaskQueue = '{config.task_queue}' AND WorkflowType = 'GenerationWorkflow' "
        "AND ExecutionStatus = 'Running'"
    )
    everything = f"TaskQueue = '{config.task_queue}' AND ExecutionStatus = 'Running'"
    """Jobs and the task followers they started (same queue)."""
    log = disruptions.DisruptionLog()
    done = asyncio.Event()
    t0 = time.monotonic()
    ctx = disruptions.Context(
        stack=stack,
        client=client,
        query_running=query,
        t0=t0,
        rng=random.Random(f"{seed}-{scenario.key}"),
        log=log,
        done=done,
        jobs=scenario.jobs,
    )
    plays = [asyncio.create_task(disruptions.play(ctx, d)) for d in scenario.disruptions]
    await asyncio.gather(
        _start_all(client, settings, scenario, ids, t0),
        _install_faults(stack.emulator_url, scenario.faults, t0),
    )
    last_start = time.monotonic()
    await asyncio.gather(*plays)
    await _wait_closed(client, everything, last_start + DEADLINE_SECONDS + SLACK_SECONDS, done)
    if scenario.reruns:
        await _rerun(client, settings, scenario, ids, ctx, everything)
    result.wall_to_last_close = round(time.monotonic() - t0, 1)
    await _gate_settled(client, stack.emulator_url, gate, GATE_SETTLE_SECONDS)
    async with httpx.AsyncClient(base_url=stack.emulator_url, timeout=30) as http:
        stats = (await http.get("/_emulator/stats")).json()
        await http.put("/_emulator/faults", json=[])
    ev = await evidence.gather(
        client,
        stack.emulator_url,
        stack.ledger_url,
        _storage(stack, scenario),
        ids,
        known_jobs=known_jobs,
        deadline_seconds=DEADLINE_SECONDS,
        slack_seconds=SLACK_SECONDS,
        task_queue=config.task_queue,
        gate_id=gate,
    )
    found = invariants.check_all(ev)
    result.invariants = {
        key: InvariantResult.of(key, invariants.INVARIANTS[key][0], violations)
        for key, violations in found.items()
    }
    result.faults = disruptions.fault_counts(stats, log)
    result.callbacks = {k: int(v) for k, v in (stats.get("callbacks") or {}).items()}
    result.effects = dict(log.effects)
    result.kills = log.kills
    result.kill_phases = log.phases_hit()
    result.events = log.events
    result.outcomes = dict(
        Counter(
            (j.record.outcome.value if j.record and j.record.outcome else "none")
            for j in ev.jobs.values()
        )
    )
    result.error_codes = dict(
        Counter(
            j.record.error.code
            for j in ev.jobs.values()
            if j.record and j.record.error and j.record.outcome != Outcome.SUCCEEDED
        )
    )
    took = {
        j.job_id: (j.closed_at - j.started_at).total_seconds()
        for j in ev.jobs.values()
        if j.closed_at is not None and j.started_at is not None
    }
    if took:
        slowest = max(took, key=took.__getitem__)
        result.slowest_job = {
            "job_id": slowest,
            "seconds": round(took[slowest], 1),
            "deadline_seconds": round(invariants.deadline_of(ev, ev.jobs[slowest]).total_seconds()),
        }
    result.capacity = _gate_summary(ev)
    result.required_kill_phases = list(scenario.kill_phases)
    result.provider_tasks = len(ev.tasks)
    result.billed_tasks = sum(1 for t in ev.tasks if int(t.get("billed_tokens") or 0) > 0)
    recorded = {r.provider_task_id for r in ev.ledger if r.billed}
    result.billed_not_in_ledger = [
        _unrecorded(ev, t)
        for t in ev.tasks
        if int(t.get("billed_tokens") or 0) > 0 and t["id"] not in recorded
    ]
    owed, ours, _ = paid_work.money(ev)
    result.money = {
        c: {"billed": float(owed.get(c, 0)), "recorded": float(ours.get(c, 0))}
        for c in sorted(set(owed) | set(ours))
    }
    result.provider_killed_urls = paid_work.provider_killed_urls(ev)
    result.jobs_lost = len(found["terminal_within_deadline"])
    result.duplicate_billed = len(found["one_billed_task_per_job"])
    result.mismatched = len({v.subject for v in found["succeeded_jobs_complete"]}) + len(
        found["no_orphan_ledger_rows"]
    )


async def _rerun(
    client: Client,
    settings: Settings,
    scenario: Scenario,
    ids: Sequence[str],
    ctx: disruptions.Context,
    everything: str,
) -> None:
    """Start the chosen finished jobs again under their IDs, and wait for them to close."""
    chosen = [j for j in ids if ctx.rng.random() < scenario.reruns]
    t0 = time.monotonic()
    await _start_all(client, settings, scenario, chosen, t0, rerun=True)
    ctx.log.counts["job_rerun"] += len(chosen)
    ctx.log.note(ctx.t0, f"{len(chosen)} finished jobs started again (rerun)")
    await _wait_closed(
        client, everything, time.monotonic() + DEADLINE_SECONDS + SLACK_SECONDS, asyncio.Event()
    )


def _storage(stack: ChaosStack, scenario: Scenario) -> Storage:
    if scenario.deployment.storage == "s3":
        return Storage(s3=stack.services.s3_client(), bucket=BUCKET, prefix=PREFIX)
    return Storage(root=stack.outputs)


async def _gate_settled(client: Client, emulator_url: str, gate: str, within: float) -> None:
    """Until every slot the gate holds has a live provider task and nobody waits (or `within`
    seconds pass: the invariant then reports what is still held)."""
    give_up = time.monotonic() + within
    while time.monotonic() < give_up:
        state = await evidence.query_gate(client, gate)
        if state is None:
            return
        live = evidence.live_tasks(list((await bench_jobs.emulator_tasks(emulator_url)).values()))
        owners = {job for job in live.values() if job}
        held = [
            h for h in state.holders.values() if h.task_id not in live and h.job_id not in owners
        ]
        if not held and not state.waiting_ids:
            return
        await asyncio.sleep(1.0)


def _gate_summary(ev: evidence.Evidence) -> dict[str, Any]:
    g = ev.gate
    if g is None:
        return {}
    return {
        "gate_id": f"capacity:{g.route}",
        "held_at_end": len(g.holders),
        "waiting_at_end": g.waiting(),
        "granted": sum(s.granted_total for s in g.models.values()),
        "refusals": g.refusals_total,
    }


def _unrecorded(ev: evidence.Evidence, task: dict[str, Any]) -> dict[str, Any]:
    """A billed task no ledger row records, with the job it was made for and how that ended."""
    job_id = evidence.job_of_task(task)
    job = ev.jobs.get(job_id or "")
    rec = job.record if job else None
    return {
        "task_id": task["id"],
        "billed_tokens": int(task.get("billed_tokens") or 0),
        "job_id": job_id,
        "job_outcome": rec.outcome.value if rec and rec.outcome else None,
        "job_task_id": rec.provider_task_id if rec else None,
        "error_code": rec.error.code if rec and rec.error else None,
        "error_message": rec.error.message if rec and rec.error else None,
        "notes": rec.notes[-6:] if rec else [],
    }
