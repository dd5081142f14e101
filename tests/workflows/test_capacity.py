"""Jobs and the real capacity gate, on scripted activities: a job waits for a slot (shown as
waiting, with its place and the limit), a 429 is backpressure (no fallback, no breaker report,
the gate learns), the wait has its own bound, priority goes first, and no slot is leaked by a
job that is cancelled while waiting or terminated while holding one. A job with room gets its
slot in its create's answer; a repeated ask is one request; a burst's asks share updates."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowHandle

from seedance_pipeline.activities.capacity import GateAsker
from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.capacity import CapacityRequest, Gate, GateAsk, Limit, Waiter
from seedance_pipeline.core.models import GenerationInput, JobRecord, JobState, Outcome
from tests.workflows.support import (
    Script,
    app_error,
    failed,
    finish,
    gated,
    job_input,
    new_queue,
    scripted_worker,
    start,
    task,
)

RUNNING_LONG = [task("t1", "running")] * 200


async def _record(handle: WorkflowHandle[Any, Any]) -> JobRecord:
    return await handle.query("status", result_type=JobRecord)


async def _gate(client: Client, script: Script) -> Gate:
    gate_id = script.models["mini"].capacity.gate_id  # type: ignore[union-attr]
    return await client.get_workflow_handle(gate_id).query("state", result_type=Gate)


async def _until(predicate: Any, what: str, timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.05)


def _slow_models(queue: str, **kw: Any) -> dict[str, Any]:
    """Gated models whose tasks are polled each second, so a task can be held running."""
    models = gated(queue, **kw)
    return {
        a: m.model_copy(update={"poll_min_seconds": 1, "poll_max_seconds": 1})
        for a, m in models.items()
    }


async def test_a_second_job_waits_for_the_slot_and_shows_why(client: Client) -> None:
    queue = new_queue()
    script = Script(
        models=_slow_models(queue),
        gets={"t1": [task("t1", "running")] * 3 + [task("t1", "succeeded")]},
    )
    async with scripted_worker(client, script, queue):
        first = await start(client, queue, job_input())
        await _until(lambda: _has_state(first, "running"), "first job running")
        second = await start(client, queue, job_input())

        async def waiting() -> bool:
            rec = await _record(second)
            return rec.capacity is not None and rec.capacity.blocked_by is not None

        await _until(waiting, "second job told to wait")
        rec = await _record(second)
        assert rec.state == JobState.WAITING_FOR_CAPACITY
        assert (
            rec.capacity
            and rec.capacity.blocked_by == Limit.CONCURRENCY
            and rec.capacity.ahead == 1
        )
        assert script.calls["create_task"] == 1  # nothing sent while the account is full
        done = [await finish(first), await finish(second)]
        gate = await _gate(client, script)
    assert [r.record.outcome for r in done] == [Outcome.SUCCEEDED, Outcome.SUCCEEDED]
    assert done[1].record.capacity and done[1].record.capacity.granted_at
    assert gate.holders == {} and gate.waiting() == 0
    # The first job had room: its slot came in its create's answer and went back in the read
    # that found its task succeeded, with no signal to or from the gate. The second was held
    # back and got its grant by signal; the create the gate held back is no attempt (one
    # submit, numbered 1). The gate has no holder left (above): both releases reached it.
    assert await _signals(first) == (set(), [])
    assert await _signals(second) == (set(), ["capacity_granted"])
    assert script.calls["release_by_read"] == 2
    assert [a.submit_no for a in done[1].record.attempts] == [1]
    assert script.calls["ask"] == 2 and script.calls["create_task"] == 2


async def test_a_failed_task_gives_its_slot_back_by_signal_before_the_retry_asks(
    client: Client,
) -> None:
    """Only a read that finds the task succeeded releases the slot (the job's last task). A
    failed task is followed by another ask, so the job itself signals its release first: a
    late copy of a read's release can never free the retry's slot."""
    queue = new_queue()
    script = Script(
        models=gated(queue),
        creates=["t1", "t2"],
        gets={"t1": [failed("t1", "InternalServiceError")], "t2": [task("t2", "succeeded")]},
    )
    async with scripted_worker(client, script, queue):
        job = await start(client, queue, job_input())
        ran = await finish(job)
        gate = await _gate(client, script)
    assert ran.record.outcome == Outcome.SUCCEEDED
    assert [a.provider_task_id for a in ran.record.attempts] == ["t1", "t2"]
    sent, _ = await _signals(job)  # (the retry may be paced, and granted by signal)
    assert sent == {"release"}  # t1's, by the job
    assert script.calls["release_by_read"] == 1  # t2's, by the read that found it succeeded
    assert script.calls["ask"] == 2 and gate.holders == {} and gate.waiting() == 0


async def _signals(handle: WorkflowHandle[Any, Any]) -> tuple[set[str], list[str]]:
    """The signals a job sent (by name) and the ones it received that are not callbacks."""
    sent, received = set(), []
    async for event in handle.fetch_history_events():
        if event.HasField("signal_external_workflow_execution_initiated_event_attributes"):
            sent.add(
                event.signal_external_workflow_execution_initiated_event_attributes.signal_name
            )
        if event.HasField("workflow_execution_signaled_event_attributes"):
            name = event.workflow_execution_signaled_event_attributes.signal_name
            if name != "provider_callback":
                received.append(name)
    return sent, received


async def _has_state(handle: WorkflowHandle[Any, Any], provider_status: str) -> bool:
    return (await _record(handle)).provider_status == provider_status


async def test_a_429_is_backpressure_not_a_failure(client: Client) -> None:
    queue = new_queue()
    limited = app_error(
        et.PROVIDER_RATE_LIMITED, "ModelAccountRpmRateLimitExceeded", next_retry_delay=None
    )
    script = Script(models=gated(queue, concurrency=5, rpm=100), creates=[limited, "t2"])
    async with scripted_worker(client, script, queue):
        ran = await finish(await start(client, queue, job_input()))
        gate = await _gate(client, script)
    rec = ran.record
    assert rec.outcome == Outcome.SUCCEEDED
    assert [a.model_alias for a in rec.attempts] == ["mini", "mini"]  # no fallback
    assert rec.capacity and rec.capacity.refusals == 1
    assert script.reports == []  # never told the breaker
    mini = next(iter(gate.models.values()))
    assert mini.rpm_learned < 100 and mini.refusals == {"ModelAccountRpmRateLimitExceeded": 1}


async def test_an_unreachable_gate_is_waited_out_and_costs_no_attempt(client: Client) -> None:
    """The create could not get the gate's answer, so nothing was sent: the job waits a little
    and asks again; it is no attempt, no fallback and no breaker report."""
    queue = new_queue()
    unreachable = app_error(et.CAPACITY_ASK_FAILED, non_retryable=True)
    script = Script(models=gated(queue, concurrency=5), creates=[unreachable, "t2"])
    async with scripted_worker(client, script, queue):
        ran = await finish(await start(client, queue, job_input()))
        gate = await _gate(client, script)
    rec = ran.record
    assert rec.outcome == Outcome.SUCCEEDED
    assert [(a.submit_no, a.provider_task_id) for a in rec.attempts] == [(1, "t2")]
    assert any("unreachable; asking again" in n for n in rec.notes)
    assert script.reports == [] and gate.holders == {}


async def test_many_429s_never_end_the_job(client: Client) -> None:
    queue = new_queue()
    limited = app_error(et.PROVIDER_RATE_LIMITED, "RateLimitExceeded.QueuedTaskLimitExceeded")
    script = Script(models=gated(queue, concurrency=5, rpm=100), creates=[limited] * 3 + ["t4"])
    async with scripted_worker(client, script, queue):
        ran = await finish(await start(client, queue, job_input()))
    assert ran.record.outcome == Outcome.SUCCEEDED
    assert ran.record.capacity and ran.record.capacity.refusals == 3
    assert {a.model_alias for a in ran.record.attempts} == {"mini"}


async def test_the_wait_has_its_own_bound_naming_the_limit(client: Client) -> None:
    queue = new_queue()
    script = Script(models=_slow_models(queue, max_wait=1), gets={"t1": RUNNING_LONG})
    async with scripted_worker(client, script, queue):
        holder = await start(client, queue, job_input())
        await _until(lambda: _has_state(holder, "running"), "holder running")
        ran = await finish(await start(client, queue, job_input()))
        await holder.cancel()
    assert ran.record.outcome == Outcome.FAILED_QUOTA and ran.record.error
    assert ran.record.error.code == "CapacityWaitExceeded"
    assert "concurrency" in ran.record.error.message
    assert script.calls["create_task"] == 1


async def test_priority_goes_first(client: Client) -> None:
    queue = new_queue()
    script = Script(
        models=_slow_models(queue),
        gets={"t1": [task("t1", "running")] * 2 + [task("t1", "succeeded")]},
    )
    async with scripted_worker(client, script, queue):
        holder = await start(client, queue, job_input())
        await _until(lambda: _has_state(holder, "running"), "holder running")
        batch = await start(client, queue, _with(job_input(), priority=4, fairness_key="batch"))
        await _until(lambda: _waiting(client, script, 1), "batch row queued")
        interactive = await start(client, queue, _with(job_input(), priority=2))
        await _until(lambda: _waiting(client, script, 2), "interactive queued")
        results = [await finish(h) for h in (holder, interactive, batch)]
    granted = [r.record.capacity.granted_at for r in results[1:]]  # type: ignore[union-attr]
    assert granted[0] and granted[1] and granted[0] < granted[1]


async def test_a_waiting_job_that_is_cancelled_leaves_no_trace_at_the_gate(client: Client) -> None:
    queue = new_queue()
    script = Script(models=_slow_models(queue), gets={"t1": RUNNING_LONG})
    async with scripted_worker(client, script, queue):
        holder = await start(client, queue, job_input())
        await _until(lambda: _has_state(holder, "running"), "holder running")
        waiter = await start(client, queue, job_input())
        await _until(lambda: _waiting(client, script, 1), "waiter queued")
        await waiter.cancel()
        ran = await finish(waiter)
        assert ran.record.outcome == Outcome.CANCELLED, (ran.record.error, ran.record.notes)
        await _until(lambda: _waiting(client, script, 0), "withdrawn")
        await holder.cancel()
        await finish(holder)
        gate = await _gate(client, script)
    # The cancelled holder's task still runs at the provider: its slot went with the task to
    # the task's follower, which gives it back when the task ends.
    assert gate.waiting() == 0 and len(gate.holders) == 1
    [follow] = script.followed
    assert follow.capacity_gate_id == script.models["mini"].capacity.gate_id  # type: ignore[union-attr]
    assert follow.capacity_holder_id == holder.id


async def test_a_holder_terminated_by_hand_gives_its_slot_back_by_check(client: Client) -> None:
    queue = new_queue()
    models = _slow_models(queue, lease_seconds=1, audit_seconds=1)
    script = Script(models=models, gets={"t1": RUNNING_LONG})
    async with scripted_worker(client, script, queue):
        holder = await start(client, queue, job_input())
        await _until(lambda: _has_state(holder, "running"), "holder running")
        waiter = await start(client, queue, job_input())
        await _until(lambda: _waiting(client, script, 1), "waiter queued")
        await holder.terminate("an operator's terminate: no code of the job runs")
        ran = await finish(waiter)
    assert ran.record.outcome == Outcome.SUCCEEDED
    assert script.calls["check_capacity_holders"] >= 1


async def _waiting(client: Client, script: Script, n: int) -> bool:
    try:
        return (await _gate(client, script)).waiting() == n
    except Exception:  # the gate may not exist yet
        return False


def _with(inp: GenerationInput, **fields: Any) -> GenerationInput:
    return inp.model_copy(update=fields)


def _ask(ref: Any, job_id: str) -> GateAsk:
    waiter = Waiter(job_id=job_id, model_id="m", since=datetime.now(UTC))
    return GateAsk(ref=ref, request=CapacityRequest(waiter=waiter, limits=ref.limits))


async def test_a_repeated_ask_gets_the_same_answer(client: Client) -> None:
    """A create whose answer was lost (its worker died) asks again: that must be one request,
    the same slot or the same place in the queue, never a second slot or a second place."""
    queue = new_queue()
    script = Script(models=gated(queue))
    ref = script.models["mini"].capacity
    assert ref is not None
    asker = GateAsker(client)
    async with scripted_worker(client, script, queue):
        first, again = await asker.ask(_ask(ref, "a")), await asker.ask(_ask(ref, "a"))
        assert first.granted is not None and again.granted == first.granted
        told, retold = await asker.ask(_ask(ref, "b")), await asker.ask(_ask(ref, "b"))
        assert told.granted is None and told.waiting is not None
        assert told.waiting.blocked_by == Limit.CONCURRENCY and retold == told
        gate = await _gate(client, script)
    assert list(gate.holders) == ["a"] and gate.waiting() == 1


async def test_a_burst_of_asks_shares_updates(client: Client) -> None:
    """Temporal allows 10 updates in flight per workflow: a worker's burst of asks goes out as
    a few updates, one at a time, and every ask gets its own answer."""
    queue = new_queue()
    script = Script(models=gated(queue, concurrency=5))
    ref = script.models["mini"].capacity
    assert ref is not None
    asker = GateAsker(client)
    async with scripted_worker(client, script, queue):
        answers = await asyncio.gather(*(asker.ask(_ask(ref, f"j{i}")) for i in range(40)))
        handle = client.get_workflow_handle(ref.gate_id)
        updates = [
            e
            async for e in handle.fetch_history_events()
            if e.HasField("workflow_execution_update_accepted_event_attributes")
        ]
    assert sum(a.granted is not None for a in answers) == 5
    assert sum(a.waiting is not None for a in answers) == 35
    assert 1 <= len(updates) <= 4, len(updates)
