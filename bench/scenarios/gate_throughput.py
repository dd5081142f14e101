"""Throughput with the capacity gate on and off: what the gate costs a job when no limit binds.

The throughput benchmark (`bench.scenarios.throughput.measure`), alternating the shipped config
(gate on, with limits no run reaches) and the gate off, on a dev server of its own: after the
capacity bursts a server holds thousands of closed jobs and its floor drifts by a third between
two runs (587 and 737 jobs/min in the 12-01 run), which swamps what the gate costs. A scenario of
its own, apart from `capacity`, so it can be measured again alone on a quiet box
(`--only gate_throughput`) without the half hour of bursts.
"""

from __future__ import annotations

from typing import Any

from bench.plan import Plan
from bench.report import Figure, ScenarioResult
from bench.scenarios import throughput
from bench.stack import BenchStack
from bench.stats import median, ratio

TARGET_FLOOR = 0.60
GATE_OFF = {"SEEDANCE_CAPACITY__ENABLED": "false"}


async def run(stack: BenchStack, plan: Plan, result: ScenarioResult) -> None:
    n, reps = plan.capacity_throughput_jobs, plan.capacity_throughput_reps
    result.how.append(_how(n, reps))
    if not n:
        return
    fresh = BenchStack(stack.data / "gate-throughput")
    on: list[throughput.Pass] = []
    off: list[throughput.Pass] = []
    try:
        fresh.start()
        for _ in range(reps):
            on.append(await throughput.measure(fresh, plan, "gate on", n, 1, False))
            off.append(
                await throughput.measure(fresh, plan, "gate off", n, 1, False, extra_env=GATE_OFF)
            )
    finally:
        fresh.stop()
    on_ratio, off_ratio = _median_ratio(on), _median_ratio(off)
    failed = [job for p in on + off for job in p.failures]
    result.figures.append(
        Figure(
            "throughput benchmark with the gate on, of the floor",
            on_ratio,
            "of floor",
            off_ratio,
            "gate off, same server and run",
            target=f">= {TARGET_FLOOR:.2f}",
            met=not failed and on_ratio >= TARGET_FLOOR,
            ratio_label="on / off",
        )
    )
    details: dict[str, Any] = {
        "gate_on": _rates(on),
        "gate_off": _rates(off),
        "jobs": n,
        "reps": reps,
        "failed": failed,
        "history_events": {
            "gate_on": on[0].details["job_shape"]["history_events"],
            "gate_off": off[0].details["job_shape"]["history_events"],
        },
    }
    result.details["throughput"] = details
    result.bounds.append(_bound(details))


def _how(n: int, reps: int) -> str:
    if not n:
        return "Not run in this plan (`capacity_throughput_jobs` = 0)."
    return (
        f"`python -m bench --only gate_throughput`: `bench.scenarios.throughput.measure` on a dev "
        f"server of its own, {n} jobs per run, {reps} runs each with the gate on (the shipped "
        "config; limits no run reaches, as in the throughput scenario) and off "
        f"(`{next(iter(GATE_OFF))}=false`), alternating; each run against the floor run just "
        "before it, the figure the median ratio."
    )


def _bound(tp: dict[str, Any]) -> str:
    on, off, events = tp["gate_on"], tp["gate_off"], tp["history_events"]
    return (
        f"{tp['jobs']} jobs per run: gate on {_runs(on)}, off {_runs(off)} (jobs/min / floor's "
        f"jobs/min (ratio)); history events per job {events['gate_on']} on, "
        f"{events['gate_off']} off. The gate costs each job a share of its worker's batched ask "
        "(carried by the create) and of its batched releases (carried by the read that finds "
        "the task succeeded); a job the gate holds back also gets a grant signal."
    )


def _runs(side: dict[str, Any]) -> str:
    pairs = zip(side["rates"], side["floors"], strict=True)
    return ", ".join(f"{r:.0f} / {f:.0f} ({r / f:.2f})" for r, f in pairs)


def _median_ratio(passes: list[throughput.Pass]) -> float:
    """Each run against the floor measured just before it, then the median over runs."""
    return median([ratio(p.rate, p.floor_rate) for p in passes])


def _rates(passes: list[throughput.Pass]) -> dict[str, Any]:
    return {
        "rate": median([p.rate for p in passes]),
        "floor": median([p.floor_rate for p in passes]),
        "rates": [p.rate for p in passes],
        "floors": [p.floor_rate for p in passes],
        "ratios": [ratio(p.rate, p.floor_rate) for p in passes],
    }
