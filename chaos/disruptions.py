"""Process faults, played against a running scenario: worker SIGKILLs, Temporal and Postgres
restarts, a webhook outage, network cuts, and users cancelling running jobs. Each one leaves
the stack whole when it returns (every stopped part is running again), counts what it did, and
for a kill records what the jobs were doing.

What the jobs were doing at a kill is read from Temporal right after the SIGKILL: every
running job's pending activities (create_task = submit, copy_output = copy, record_cost =
ledger write, ...) and its `JobState`. Those activities were running on the dead worker, so
this is the proof that kills landed in each phase, not a guess from timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client
from temporalio.service import RPCError

from chaos.scenarios import (
    Cancels,
    Disruption,
    NetworkCuts,
    PostgresRestarts,
    TemporalRestarts,
    WebhookOutage,
    WorkerKills,
)
from chaos.stack import ChaosStack
from seedance_pipeline.core import search_attributes as sa

PHASE_OF_ACTIVITY = {
    "resolve_model": "resolve",
    "choose_model": "route",
    "report_health": "route",
    "create_task": "submit",
    "find_tasks": "submit",
    "task_owners": "submit",
    "get_task": "wait",
    "copy_output": "copy",
    "record_cost": "ledger",
    "write_manifest": "manifest",
}
WAITING_STATES = {"queued", "running"}


@dataclass
class KillRecord:
    at: float
    """Seconds after the scenario's first start."""
    mode: str
    """`random`, or `ledger-lock` (the ledger's write lock was held when it landed)."""
    jobs_running: int
    job_states: dict[str, int]
    activities: dict[str, int]
    """Activities that were running on the killed worker (started there, not finished), by
    type: the work the kill interrupted."""
    waiting_activities: dict[str, int]
    """Other pending activities (scheduled, or orphaned by an earlier kill and waiting out
    their timeout)."""
    phases: list[str]
    restart_seconds: float
    worker: str = "worker"
    """Which worker process was killed (`worker`, `worker-2`, ...)."""


@dataclass
class DisruptionLog:
    counts: Counter[str] = field(default_factory=Counter)
    """Faults injected by the harness, by kind."""
    effects: Counter[str] = field(default_factory=Counter)
    """What they did (connections reset by a cut): reported, not counted as faults."""
    kills: list[KillRecord] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def note(self, t0: float, text: str) -> None:
        self.events.append(f"t+{time.monotonic() - t0:6.1f}s {text}")

    def phases_hit(self) -> dict[str, int]:
        """Kills that landed while at least one job was in each phase."""
        hit: Counter[str] = Counter()
        for kill in self.kills:
            hit.update(set(kill.phases))
        return dict(sorted(hit.items()))


@dataclass
class Context:
    stack: ChaosStack
    client: Client
    query_running: str
    """Visibility query for this scenario's running jobs."""
    t0: float
    rng: random.Random
    log: DisruptionLog
    done: asyncio.Event
    """Set when every job has closed: periodic disruptions stop early."""
    jobs: int = 0
    """How many jobs the scenario starts."""


async def play(ctx: Context, disruption: Disruption) -> None:
    if isinstance(disruption, WorkerKills):
        await _worker_kills(ctx, disruption)
    elif isinstance(disruption, TemporalRestarts):
        await _temporal_restarts(ctx, disruption)
    elif isinstance(disruption, WebhookOutage):
        await _webhook_outage(ctx, disruption)
    elif isinstance(disruption, NetworkCuts):
        await _network_cuts(ctx, disruption)
    elif isinstance(disruption, PostgresRestarts):
        await _postgres_restarts(ctx, disruption)
    elif isinstance(disruption, Cancels):
        await _cancels(ctx, disruption)


async def _sleep_until(ctx: Context, at: float) -> None:
    await asyncio.sleep(max(0.0, ctx.t0 + at - time.monotonic()))


# ---- worker kills ---------------------------------------------------------------------------


async def _worker_kills(ctx: Context, spec: WorkerKills) -> None:
    await _sleep_until(ctx, spec.first_after)
    for n in range(1, spec.count + 1):
        mode = "ledger-lock" if spec.ledger_every and n % spec.ledger_every == 0 else "random"
        victim = ctx.rng.choice(sorted(ctx.stack.workers))
        lock: Any = None
        try:
            if mode == "ledger-lock":
                lock = await asyncio.to_thread(_hold_ledger_lock, ctx.stack)
                await _until_recording(ctx, spec.ledger_hold)
            at = time.monotonic() - ctx.t0
            pid = await asyncio.to_thread(ctx.stack.kill_worker, victim)
            ctx.log.counts["worker_sigkill"] += 1
        finally:
            if lock is not None:  # never leave the ledger locked, whatever happened
                await asyncio.to_thread(_release, lock)
        snap = await _snapshot(ctx, killed=f"{pid}@")
        states, activities = snap.states, snap.in_flight
        phases = sorted(
            {PHASE_OF_ACTIVITY.get(a, a) for a in activities}
            | ({"wait"} if any(s in WAITING_STATES for s in states) else set())
            | ({"submit"} if "submitting" in states else set())
            | ({"capacity"} if "waiting_for_capacity" in states else set())
        )
        started = time.monotonic()
        await asyncio.to_thread(ctx.stack.restart_worker, victim)
        restart = time.monotonic() - started
        ctx.log.kills.append(
            KillRecord(
                at=round(at, 2),
                worker=victim,
                mode=mode,
                jobs_running=snap.running,
                job_states=dict(states),
                activities=dict(activities),
                waiting_activities=dict(snap.waiting),
                phases=phases,
                restart_seconds=round(restart, 2),
            )
        )
        during = ", ".join(phases) or "idle"
        ctx.log.note(ctx.t0, f"SIGKILL #{n} of {victim} ({mode}) during {during}")
        if n < spec.count:
            await asyncio.sleep(ctx.rng.uniform(spec.min_gap, spec.max_gap))


async def _until_recording(ctx: Context, within: float) -> None:
    """While the ledger is locked: until some job is blocked in record_cost (or `within` s)."""
    give_up = time.monotonic() + within
    while time.monotonic() < give_up:
        snap = await _snapshot(ctx)
        if snap.waiting.get("record_cost"):
            return
        await asyncio.sleep(0.3)


POSTGRES_BACK_WITHIN = 60.0
"""Seconds a ledger-lock kill waits for a restarting Postgres before it counts as a failure."""


def _hold_ledger_lock(stack: ChaosStack) -> Any:
    """Take the ledger's write lock (as a second writer would) so record_cost blocks on it:
    SQLite's write lock, or an EXCLUSIVE table lock on Postgres (reads go on, writes wait)."""
    url = stack.ledger_url
    if url.startswith("sqlite:///"):
        conn: Any = sqlite3.connect(
            stack.ledger_path, timeout=30, isolation_level=None, check_same_thread=False
        )
        conn.execute("BEGIN IMMEDIATE")
        return conn
    import psycopg

    # A Postgres restart may be under way (the scenario plays both at once): wait it out.
    give_up = time.monotonic() + POSTGRES_BACK_WITHIN
    while True:
        try:
            conn = psycopg.connect(url, connect_timeout=5)  # not autocommit: held to rollback
            conn.execute("LOCK TABLE ledger IN EXCLUSIVE MODE")
            return conn
        except psycopg.OperationalError:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.5)


def _release(conn: Any) -> None:
    """Drop the lock. A Postgres restart may have ended the connection (and the lock) already."""
    with contextlib.suppress(Exception):
        if isinstance(conn, sqlite3.Connection):
            conn.execute("ROLLBACK")
        else:
            conn.rollback()
    with contextlib.suppress(Exception):
        conn.close()


@dataclass
class Snapshot:
    states: Counter[str] = field(default_factory=Counter)
    in_flight: Counter[str] = field(default_factory=Counter)
    waiting: Counter[str] = field(default_factory=Counter)

    @property
    def running(self) -> int:
        return sum(self.states.values())


async def _snapshot(ctx: Context, killed: str | None = None) -> Snapshot:
    """The scenario's running jobs now: JobState counts, and their pending activities split
    into those started by the worker whose identity begins with `killed` and the rest."""
    snap = Snapshot()
    ids: list[str] = []
    try:
        async for wf in ctx.client.list_workflows(ctx.query_running):
            ids.append(wf.id)
    except RPCError:
        return snap
    gate = asyncio.Semaphore(16)

    async def one(job_id: str) -> None:
        async with gate:
            try:
                desc = await ctx.client.get_workflow_handle(job_id).describe()
            except RPCError:
                return
        if desc.close_time is not None:
            return
        snap.states[desc.typed_search_attributes.get(sa.JOB_STATE) or "starting"] += 1
        for pending in desc.raw_description.pending_activities:
            name = pending.activity_type.name
            on_killed = (
                killed is not None
                and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                and pending.last_worker_identity.startswith(killed)
            )
            (snap.in_flight if on_killed else snap.waiting)[name] += 1

    await asyncio.gather(*(one(j) for j in ids))
    return snap


# ---- Temporal, webhook, network --------------------------------------------------------------


async def _running(ctx: Context) -> int | str:
    """How many of the scenario's jobs are running (visibility), for the event log."""
    try:
        return (await ctx.client.count_workflows(ctx.query_running)).count
    except RPCError:
        return "?"


async def _temporal_restarts(ctx: Context, spec: TemporalRestarts) -> None:
    for at in spec.at:
        await _sleep_until(ctx, at)
        running = await _running(ctx)
        await asyncio.to_thread(ctx.stack.stop_temporal)
        ctx.log.note(ctx.t0, f"Temporal dev server stopped with {running} jobs running")
        await asyncio.sleep(spec.down)
        await asyncio.to_thread(ctx.stack.start_temporal_again)
        ctx.log.counts["temporal_restart"] += 1
        ctx.log.note(ctx.t0, "Temporal dev server started again (same SQLite file, same port)")


async def _webhook_outage(ctx: Context, spec: WebhookOutage) -> None:
    await _sleep_until(ctx, spec.at)
    running = await _running(ctx)
    await asyncio.to_thread(ctx.stack.stop_webhook)
    ctx.log.note(ctx.t0, f"webhook receiver stopped with {running} jobs running")
    await asyncio.sleep(spec.down)
    await asyncio.to_thread(ctx.stack.start_webhook_again)
    ctx.log.counts["webhook_outage"] += 1
    ctx.log.note(ctx.t0, f"webhook receiver started again after {spec.down:.0f}s down")


async def _network_cuts(ctx: Context, spec: NetworkCuts) -> None:
    for n in range(spec.count):
        await _sleep_until(ctx, spec.first_after + n * spec.every)
        if ctx.done.is_set():
            return
        running = await _running(ctx)
        reset = await asyncio.to_thread(ctx.stack.proxy.cut, spec.down)
        ctx.log.counts["network_cut"] += 1
        ctx.log.effects["connections_reset"] += reset
        ctx.log.note(
            ctx.t0,
            f"network cut with {running} jobs running: {reset} connections reset, "
            f"new ones refused for {spec.down}s",
        )
    await asyncio.sleep(spec.down)  # the path is back before the scenario moves on


async def _postgres_restarts(ctx: Context, spec: PostgresRestarts) -> None:
    for at in spec.at:
        await _sleep_until(ctx, at)
        running = await _running(ctx)
        await asyncio.to_thread(ctx.stack.stop_postgres)
        ctx.log.note(ctx.t0, f"Postgres ledger stopped with {running} jobs running")
        await asyncio.sleep(spec.down)
        await asyncio.to_thread(ctx.stack.start_postgres_again)
        ctx.log.counts["postgres_restart"] += 1
        ctx.log.note(ctx.t0, f"Postgres ledger started again after {spec.down:.0f}s (same port)")


async def _cancels(ctx: Context, spec: Cancels) -> None:
    """Cancel chosen jobs as soon as they are seen running (visibility), as a user would."""
    chosen: dict[str, bool] = {}
    give_up = time.monotonic() + spec.within
    query = f"{ctx.query_running} AND JobState = 'running'"
    while time.monotonic() < give_up and not ctx.done.is_set():
        try:
            running = [wf.id async for wf in ctx.client.list_workflows(query)]
        except RPCError:
            running = []
        for job_id in running:
            if job_id in chosen:
                continue
            chosen[job_id] = ctx.rng.random() < spec.fraction
            if chosen[job_id]:
                with contextlib.suppress(RPCError):
                    await ctx.client.get_workflow_handle(job_id).cancel()
                    ctx.log.counts["job_cancel_while_running"] += 1
        if len(chosen) >= ctx.jobs:
            return
        await asyncio.sleep(0.5)


def fault_counts(stats: dict[str, Any], log: DisruptionLog) -> dict[str, int]:
    """Every fault of the scenario by kind: the emulator's own hit counters plus ours."""
    counts = {f"provider:{k}": int(v) for k, v in (stats.get("faults") or {}).items() if v}
    counts.update({k: int(v) for k, v in log.counts.items() if v})
    return dict(sorted(counts.items()))
