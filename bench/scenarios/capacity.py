"""Capacity: bursts of Mini jobs within the account's limits, against today's behaviour.

The emulator enforces the published limits (reference section 0, C3/C4): enterprise 10 running
/ 600 creates per minute per model / 120 queued per account, and the individual preset 3 / 180.
Provider latency is Mini's expected 30 s scaled by the plan (full run: x0.2, 0.3 s queued then
5.7 s running, +/-30% jitter), so a burst of 50x the concurrency fits in minutes. A burst is two
equal batches started together plus one interactive job started halfway through the ideal
makespan, through two worker processes; the same burst with the gate off (today's behaviour:
429s retried per job, counted against the breaker, then fallback) is its baseline in the same
run. Then learning (the configured limits 3x too high, with the provider's RPM binding, and
3x too low) and worker memory with thousands of jobs waiting for capacity. The throughput
benchmark with the gate on and off is a scenario of its own (`gate_throughput`).
"""

from __future__ import annotations

from bench import capacity_bounds, capacity_scale
from bench.capacity_figures import ideal_makespan
from bench.capacity_runs import ENTERPRISE, INDIVIDUAL, Account, Burst, limits_of, run_burst
from bench.capacity_shown import Prices, Shown, show
from bench.plan import Plan
from bench.report import Figure, ScenarioResult
from bench.stack import BenchStack, EmulatorSpec
from seedance_pipeline.config.loader import load_settings

QUEUE_SHARE = 0.05
"""Of the task latency, the time a task stays `queued` at the provider with a free slot."""
JITTER = 0.3
TARGET_REFUSED = 0.02
TARGET_REFUSED_LEARNING = 0.05
TARGET_UTILISATION = 0.90
TARGET_LEARNED = 0.85
TARGET_MAKESPAN = 1.10
TARGET_SPREAD = 0.10
TARGET_FLAT_SHARE = 0.20
"""Growth per waiting job past the cache, as a share of a cached one's, that counts as not
growing with the jobs (the gate's own waiter entries and allocator noise remain)."""


def pct(share: float) -> float:
    """A share as a percentage (the report prints the unit beside the number)."""
    return share * 100


TODAY = "gate off (today), same burst"


def provider(plan: Plan, account: str, **limits: int) -> EmulatorSpec:
    seconds = plan.capacity_task_seconds
    return EmulatorSpec(
        queue_seconds=round(seconds * QUEUE_SHARE, 3),
        run_seconds=round(seconds * (1 - QUEUE_SHARE), 3),
        jitter=JITTER,
        unlimited=False,
        account=account,
        concurrency=limits.get("concurrency"),
        rpm=limits.get("rpm"),
        max_queued=limits.get("max_queued"),
    )


def label(spec: EmulatorSpec) -> str:
    acc = limits_of(spec)
    return f"{acc.name} ({acc.concurrency} running / {acc.rpm} RPM / {acc.queued} queued)"


def _fig(
    name: str,
    value: float,
    baseline: float,
    unit: str,
    target: str,
    met: bool | None,
    baseline_name: str = TODAY,
) -> Figure:
    return Figure(name, value, unit, baseline, baseline_name, target=target, met=met)


def burst_figures(on: Shown, off: Shown, where: str, latency: float) -> list[Figure]:
    """The issue's "Must show" for one burst, each beside the gate-off burst."""
    return [
        _fig(
            f"jobs ended by provider limits, {where}",
            on.ended_by_limits,
            off.ended_by_limits,
            "jobs",
            "0",
            on.ended_by_limits == 0,
        ),
        _fig(
            f"fallbacks caused by 429s, {where}",
            on.fallbacks,
            off.fallbacks,
            "jobs",
            "0",
            on.fallbacks == 0,
        ),
        _fig(
            f"breaker openings caused by 429s, {where}",
            on.openings,
            off.openings,
            "openings",
            "0",
            on.openings == 0,
        ),
        _fig(
            f"cost per delivered video, of Mini's price, {where}",
            on.cost_ratio,
            off.cost_ratio,
            "x",
            "1.00x",
            abs(on.cost_ratio - 1) < 0.005,
        ),
        _fig(
            f"refused creates, share of creates, {where}",
            pct(on.refused_share),
            pct(off.refused_share),
            "%",
            f"<= {TARGET_REFUSED:.0%}",
            on.refused_share <= TARGET_REFUSED,
        ),
        _fig(
            f"provider utilisation during the burst (mean running / concurrency), {where}",
            pct(on.utilisation),
            pct(off.utilisation),
            "%",
            f">= {TARGET_UTILISATION:.0%}",
            on.utilisation >= TARGET_UTILISATION,
        ),
        _fig(
            f"makespan, of the ideal (N x run time / concurrency), {where}",
            on.makespan_ratio,
            off.makespan_ratio,
            "x ideal",
            f"<= {TARGET_MAKESPAN:.2f}x",
            on.makespan_ratio <= TARGET_MAKESPAN,
        ),
        _fig(
            f"interactive job started mid-burst: start to its create at the provider, {where}",
            on.interactive_seconds,
            off.interactive_seconds,
            "s",
            f"<= {latency:g} s (one task latency)",
            on.interactive_seconds <= latency,
        ),
        _fig(
            f"two equal batches started together: finish-time spread, {where}",
            pct(on.spread),
            pct(off.spread),
            "%",
            f"<= {TARGET_SPREAD:.0%}",
            on.spread <= TARGET_SPREAD,
        ),
    ]


async def _pair(
    stack: BenchStack, spec: EmulatorSpec, configured: Account, jobs: int, *, interactive: bool
) -> tuple[Shown, Shown]:
    """The burst with the gate on, then the same burst with it off."""
    prices = Prices.of(load_settings())
    out = []
    for gate in (True, False):
        burst = Burst(
            label(spec),
            spec,
            configured,
            gate=gate,
            jobs=jobs,
            interactive=interactive,
            poll_gate=gate,
        )
        ideal = ideal_makespan(jobs + 1, spec.run_seconds, burst.concurrency, spec.queue_seconds)
        out.append(show(await run_burst(stack, burst, interactive_after=ideal / 2), prices))
    return out[0], out[1]


async def _bursts(stack: BenchStack, plan: Plan, result: ScenarioResult) -> Shown | None:
    main = None
    sizes = (
        ("enterprise", ENTERPRISE, plan.capacity_enterprise_jobs),
        ("individual", INDIVIDUAL, plan.capacity_individual_jobs),
    )
    for key, account, jobs in sizes:
        if not jobs:
            continue
        limits = {"max_queued": plan.capacity_max_queued} if plan.capacity_max_queued else {}
        spec = provider(plan, key, **limits)
        on, off = await _pair(stack, spec, account, jobs, interactive=True)
        result.figures += burst_figures(on, off, label(spec), spec.mean_latency)
        result.details[key] = {"gate_on": on.as_dict(), "gate_off": off.as_dict()}
        main = main or on
    return main


async def _learning(
    stack: BenchStack, plan: Plan, result: ScenarioResult, main: Shown | None
) -> None:
    """Configured 3x too high (the provider's RPM binding: the one limit with one model that
    answers 429 rather than queueing), and 3x too low (the published limits enforced)."""
    rpm = plan.capacity_learning_rpm
    spec = provider(plan, "enterprise", rpm=rpm)
    high = limits_of(spec).scaled(3)
    on, off = await _pair(stack, spec, high, plan.capacity_learning_jobs, interactive=False)
    where = (
        f"configured 3x too high ({high.concurrency} / {high.rpm} / {high.queued}) on {label(spec)}"
    )
    result.figures += [
        _fig(
            f"refused creates, share of creates, {where}",
            pct(on.refused_share),
            pct(off.refused_share),
            "%",
            f"<= {TARGET_REFUSED_LEARNING:.0%}",
            on.refused_share <= TARGET_REFUSED_LEARNING,
        ),
        _fig(
            f"accepted creates per minute once learned, of the provider's {rpm} RPM, {where}",
            pct(on.learned_rate),
            pct(off.learned_rate),
            "%",
            f">= {TARGET_LEARNED:.0%}",
            on.learned_rate >= TARGET_LEARNED,
        ),
    ]
    result.details["too_high"] = {"gate_on": on.as_dict(), "gate_off": off.as_dict()}
    if not plan.capacity_low_jobs or main is None:
        return
    spec = provider(plan, "enterprise")
    low = ENTERPRISE.scaled(1 / 3)
    burst = Burst(label(spec), spec, low, gate=True, jobs=plan.capacity_low_jobs, poll_gate=True)
    ideal = ideal_makespan(burst.jobs + 1, spec.run_seconds, burst.concurrency, spec.queue_seconds)
    shown = show(
        await run_burst(stack, burst, interactive_after=ideal / 2), Prices.of(load_settings())
    )
    where = f"configured 3x too low ({low.concurrency} / {low.rpm} / {low.queued}) on {label(spec)}"
    right = "gate with the published limits (first burst)"
    result.figures += [
        _fig(
            f"provider utilisation, {where}",
            pct(shown.utilisation),
            pct(main.utilisation),
            "%",
            "reported (the gate never passes the configured ceilings)",
            None,
            right,
        ),
        _fig(
            f"makespan, of the ideal, {where}",
            shown.makespan_ratio,
            main.makespan_ratio,
            "x ideal",
            "reported",
            None,
            right,
        ),
        _fig(
            f"refused creates, share of creates, {where}",
            pct(shown.refused_share),
            pct(main.refused_share),
            "%",
            "reported",
            None,
            right,
        ),
    ]
    result.details["too_low"] = shown.as_dict()


async def _scale(stack: BenchStack, plan: Plan, result: ScenarioResult) -> None:
    steps, cache = plan.capacity_scale_steps, plan.capacity_scale_cache
    d = await capacity_scale.run(stack, steps, cache)
    top = max(steps)
    rss = d["rss_mb"]
    result.figures += [
        _fig(
            f"worker RSS with {top - d['holders']:,} jobs waiting for capacity "
            f"(max_cached_workflows = {cache:,})",
            rss[top],
            rss[cache],
            "MB",
            "reported",
            None,
            f"the same worker with {cache - d['holders']:,} waiting (the cache full)",
        ),
        _fig(
            "worker RSS growth per 1,000 jobs waiting, past the cache",
            d["past_cache_mb_per_1000"],
            d["below_cache_mb_per_1000"],
            "MB",
            f"<= {TARGET_FLAT_SHARE:.0%} of the growth while the cache fills",
            d["past_cache_mb_per_1000"] <= TARGET_FLAT_SHARE * d["below_cache_mb_per_1000"],
            "growth per 1,000 while the cache fills",
        ),
    ]
    result.details["scale"] = d


async def run(stack: BenchStack, plan: Plan, result: ScenarioResult) -> None:
    main = await _bursts(stack, plan, result)
    if plan.capacity_learning_jobs:
        await _learning(stack, plan, result, main)
    if plan.capacity_scale_steps:
        await _scale(stack, plan, result)
    result.how += capacity_bounds.how(plan, provider(plan, "enterprise"))
    result.bounds += capacity_bounds.bounds(result.details, result.figures)
