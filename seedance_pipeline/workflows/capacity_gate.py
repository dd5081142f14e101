"""CapacityGateWorkflow: one durable gate per route's account (ID `capacity:<route>`).

Jobs ask it for a slot in their create (update `ask`, sent by the create activity before it
calls the provider; a worker gathers its jobs' asks into one update, and the first ask of an
account starts the gate). The answer is the slot when there is room, which is most of the time,
so a job with room costs the gate nothing but its share of an update and its release. Otherwise
the job waits, durably and holding no activity slot, for the `capacity_granted` signal. Jobs
give the slot back when their provider task ends, or their place in the queue when they stop
waiting (both `release`: the gate frees whichever the job has; a worker's reads that find their
tasks succeeded send theirs together, as `releases`), and tell the gate when the
provider refused a create (`refused`: backpressure, the gate learns). The rules live in
`core.capacity`; this class adds time (the rate window, pauses, the holder check),
persistence, delivery of grants, and continue-as-new. A grant that cannot be delivered (the job
is gone) frees its slot at once; a holder not heard from for a lease is checked by an activity
(is its job alive? is its task still running at the provider?), so no slot is ever leaked.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core import error_types as et
    from seedance_pipeline.core import metric_names as names
    from seedance_pipeline.core.capacity import (
        CapacityAnswer,
        CapacityAnswers,
        CapacityAsks,
        CapacityGranted,
        CapacityRefusal,
        CapacityRelease,
        CapacityReleases,
        CapacityWaiting,
        Gate,
        Grant,
        HolderCheck,
        HolderChecks,
        Waiter,
    )
    from seedance_pipeline.workflows import activity_options as opts
    from seedance_pipeline.workflows import activity_stubs as stubs
    from seedance_pipeline.workflows import signals
    from seedance_pipeline.workflows.payloads import one

GRANTED_SIGNAL = "capacity_granted"


@workflow.defn
class CapacityGateWorkflow:
    @workflow.init
    def __init__(self, gate: Any) -> None:
        # Validated here, not by the SDK: a gate started by hand with a malformed input would
        # fail its first task forever, and with it every job's request.
        self._gate: Gate | None = one((gate,), Gate)
        self._changed = False
        self._deliveries: set[asyncio.Task[None]] = set()
        self._next_audit: datetime | None = None

    @workflow.run
    async def run(self, gate: Any) -> None:
        g = self._require()
        while True:
            self._admit()
            self._publish_metrics()
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._changed or workflow.info().is_continue_as_new_suggested(),
                    timeout=self._timeout(),
                )
            self._changed = False
            if self._audit_due():
                await self._audit()
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._deliveries:
                    await asyncio.gather(*self._deliveries)
                workflow.continue_as_new(g)

    def _require(self) -> Gate:
        if self._gate is None:
            raise ApplicationError(
                "invalid gate input: not a Gate", type=et.GATE_INVALID, non_retryable=True
            )
        return self._gate

    # ---- what jobs say ----------------------------------------------------------------------

    @workflow.update
    def ask(self, batch: CapacityAsks) -> CapacityAnswers:
        """A worker's asks, answered in the same call: granted, or wait (with the place and
        the limit that holds the job). Answered in the handler, not the run loop, so asks that
        land while the gate drains for continue-as-new are answered too. A job that holds its
        slot already (its create's answer was lost) is granted it again."""
        g = self._require()
        for request in batch.asks:
            g.request(request.waiter, request.limits)
        self._changed = True
        mine = self._admit(answering={r.waiter.job_id for r in batch.asks})
        answers = CapacityAnswers()
        for request in batch.asks:
            waiter = request.waiter
            grant = mine.get(waiter.job_id)
            holder = g.holders.get(waiter.job_id)
            if grant is None and holder is not None and holder.model_id == waiter.model_id:
                grant = Grant(job_id=waiter.job_id, model_id=holder.model_id, at=holder.granted_at)
            if grant is not None:
                granted = CapacityGranted(model_id=grant.model_id, at=grant.at)
                answers.answers[waiter.job_id] = CapacityAnswer(granted=granted)
            else:
                answers.answers[waiter.job_id] = CapacityAnswer(waiting=self._waiting(waiter))
        return answers

    @workflow.signal
    def release(self, *payload: Any) -> None:
        msg = one(payload, CapacityRelease)
        if msg is not None:
            self._release(msg)

    @workflow.signal
    def releases(self, *payload: Any) -> None:
        """A worker's releases at once: the reads that found their jobs' tasks succeeded."""
        batch = one(payload, CapacityReleases)
        for msg in batch.releases if batch is not None else []:
            self._release(msg)

    def _release(self, msg: CapacityRelease) -> None:
        if self._gate is not None:
            self._gate.release(
                msg.job_id, task_id=msg.task_id, still_running=msg.still_running, now=workflow.now()
            )
            self._changed = True

    @workflow.signal
    def refused(self, *payload: Any) -> None:
        msg = one(payload, CapacityRefusal)
        if msg is not None and self._gate is not None:
            limit = self._gate.refused(
                msg.job_id, msg.code, msg.retry_after_seconds, workflow.now()
            )
            workflow.metric_meter().create_counter(names.CAPACITY_REFUSALS, "429s").add(
                1, {"route": self._gate.route, "limit": limit.value}
            )
            self._changed = True

    @workflow.query
    def state(self) -> Gate:
        return self._require()

    @workflow.query
    def place(self, job_id: str) -> int | None:
        return self._require().place(job_id)

    # ---- grants ----------------------------------------------------------------------------

    def _admit(self, answering: frozenset[str] | set[str] = frozenset()) -> dict[str, Grant]:
        """Grant what the limits allow; each grant goes out as a signal, except those for the
        jobs being answered (returned, by job ID)."""
        mine: dict[str, Grant] = {}
        for grant in self._require().admit(workflow.now()):
            if grant.job_id in answering:
                mine[grant.job_id] = grant
            else:
                self._spawn(self._deliver(grant))
        return mine

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, grant: Grant) -> None:
        message = CapacityGranted(model_id=grant.model_id, at=grant.at)
        if not await signals.signal(grant.job_id, GRANTED_SIGNAL, message):  # the job is gone
            self._require().release(
                grant.job_id, task_id=None, still_running=False, now=workflow.now()
            )
            self._changed = True

    def _waiting(self, waiter: Waiter) -> CapacityWaiting | None:
        """Why a waiter waits: its place (an estimate), the limit and when its turn may come."""
        g = self._require()
        state = g.models[waiter.model_id]
        blocked = g.blocked_by(state, workflow.now())
        if blocked is None or g.waiting_ids.get(waiter.job_id) != waiter.model_id:
            return None
        ahead = g.ahead_of(waiter)
        per_slot = state.limits.expected_latency_seconds / max(1, state.limits.concurrency)
        return CapacityWaiting(
            model_id=waiter.model_id,
            ahead=ahead,
            blocked_by=blocked,
            limit_value=g.limit_value(state, blocked),
            estimate_seconds=round(ahead * per_slot, 1),
        )

    def _timeout(self) -> timedelta | None:
        g = self._require()
        now = workflow.now()
        wakes = [t for t in (g.next_wake(now), self._next_audit if g.holders else None) if t]
        if not wakes:
            return None
        return max(timedelta(seconds=0.001), min(wakes) - now)

    # ---- the holder check ------------------------------------------------------------------

    def _audit_due(self) -> bool:
        g = self._require()
        now = workflow.now()
        if self._next_audit is None:
            self._next_audit = now + timedelta(seconds=g.config.audit_seconds)
        return bool(g.holders) and now >= self._next_audit

    async def _audit(self) -> None:
        g = self._require()
        now = workflow.now()
        self._next_audit = now + timedelta(seconds=g.config.audit_seconds)
        stale = g.stale_holders(now)
        if not stale:
            return
        check = HolderChecks(
            route=g.route,
            holders=[
                HolderCheck(job_id=h.job_id, task_id=h.task_id, orphan=h.orphan) for h in stale
            ],
        )
        try:
            result = await opts.call(stubs.check_capacity_holders, check, opts.CAPACITY_CHECK)
        except ActivityError as err:
            workflow.logger.warning("capacity: holder check failed: %s", err)
            return
        for job_id in result.released:
            g.release(job_id, task_id=None, still_running=False, now=now)
        for job_id in result.alive:
            g.still_held(job_id, now)
        self._changed = self._changed or bool(result.released)

    def _publish_metrics(self) -> None:
        g = self._require()
        meter = workflow.metric_meter()
        waiting = meter.create_gauge(names.CAPACITY_WAITING, "jobs waiting for a slot")
        in_flight = meter.create_gauge(names.CAPACITY_IN_FLIGHT, "slots held")
        rpm = meter.create_gauge_float(names.CAPACITY_RPM_LEARNED, "learned creates/min")
        for model_id, state in g.models.items():
            tags = {"route": g.route, "model_id": model_id}
            waiting.set(sum(1 for m in g.waiting_ids.values() if m == model_id), tags)
            in_flight.set(sum(1 for h in g.holders.values() if h.model_id == model_id), tags)
            rpm.set(state.rpm_learned, tags)
        meter.create_gauge_float(names.CAPACITY_QUEUED_LEARNED, "learned queued cap").set(
            g.queued_learned, {"route": g.route}
        )
